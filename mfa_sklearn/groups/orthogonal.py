"""O(d), SO(d), E(d), SE(d): minimal frames and PCA frames (groups.md sections 4.1-4.4)."""

import itertools

import numpy as np

from ._base import Frame, Group, GroupElement
from ._namespace import subtract_inplace, work_dtype, work_eps, work_float
from ._selection import (cofactor_vector, det_small, dot_rows, select_rows,
                         to_coordinate_major)


class OrthogonalGroup(Group):
    """The orthogonal group O(d) and its relatives SO(d), E(d) and SE(d).

    Parameters
    ----------
    d : int
        Dimension of the rows the group acts on (``d >= 1``).
    special : bool, default=False
        Restrict to determinant +1 (SO, SE).
    translations : bool, default=False
        Include translations (E, SE).
    """

    frame_methods = ("minimal", "pca")

    def __init__(self, d, *, special=False, translations=False):
        if int(d) != d or d < 1:
            raise ValueError(f"the dimension d must be a positive integer; got {d!r}")
        self.d = int(d)
        self.special = bool(special)
        self.has_translations = bool(translations)

    @property
    def name(self):
        stem = ("S" if self.special else "") + ("E" if self.has_translations else "O")
        return f"{stem}({self.d})"

    # ------------------------------------------------------------------ frames
    def frame(self, points=None, vectors=None, *, scalars=None, others=None, edges=None,
              method="minimal", tol=None, rule="pivoted"):
        """Frames of a batch from its frame-defining rows.

        Parameters
        ----------
        points : array of shape (B, n, d), or a sequence of them
            Point rows. For E/SE the centroid of the first array is the translation,
            and every point array is centred by it before it joins the row selection.
        vectors : array of shape (B, m, d), or a sequence of them, optional
            Vector rows (never centred), e.g. velocities.
        scalars, others, edges : ignored
            The frame depends on the frame-defining rows alone.
        method : {"minimal", "pca"}, default="minimal"
            Minimal frames (one element per sample), or the sign-flip PCA frames of
            Puny et al. (``2^d`` elements, ``2^(d-1)`` for SO/SE) as a baseline.
        tol : float, optional
            Relative rank tolerance; default ``sqrt(eps)`` of the input dtype.
        rule : {"pivoted", "first"}, default="pivoted"
            Row selection rule (groups.md section 3.2).

        Returns
        -------
        Frame
        """
        xp, points, vectors, eps, tol = self._frame_inputs(points, vectors, method, tol)
        arrays = points + vectors
        # coordinate-major float64 rows, in new memory (select_rows updates them in place)
        Z = [work_float(xp, xp.concat(coords, axis=0)) if len(coords) > 1
             else work_float(xp, coords[0])
             for coords in zip(*(to_coordinate_major(xp, a) for a in arrays))]
        t = floor = t_sq = None
        if self.has_translations:
            n_first, n_points = points[0].shape[1], sum(p.shape[1] for p in points)
            t = [xp.mean(Zk[:n_first], axis=0) for Zk in Z]
            Z = [subtract_inplace(Zk, tk) if n_points == Zk.shape[0]
                 else xp.concat([Zk[:n_points] - tk, Zk[n_points:]], axis=0)
                 for Zk, tk in zip(Z, t)]
            # Centring a sample whose points all coincide leaves rounding noise of
            # about n eps |t|, not zeros; no frame vector may come from it.
            t_sq = dot_rows(t, t)
            floor = (16.0 * n_first * work_eps(xp)) ** 2 * t_sq
            t = xp.stack(t, axis=-1)
        if method == "pca":
            return self._pca_frame(xp, xp.permute_dims(xp.stack(Z, axis=-1), (1, 0, 2)), t)
        return self._minimal_frame(xp, Z, t, t_sq, tol=tol, delta=eps ** (1.0 / 3.0),
                                   rule=rule, floor=floor)

    def _minimal_frame(self, xp, Z, t, t_sq, *, tol, delta, rule, floor):
        """Frames from the selected rows; ``t_sq`` is ``|t|^2`` (B,) or None."""
        d = self.d
        selection = select_rows(Z, tol=tol, delta=delta, rule=rule, floor=floor)
        W, rank, norms, scale = selection.W, selection.rank, selection.norms, selection.scale
        if self.special:
            W = self._fix_determinant(xp, W, rank)
        # Stored with the frame vectors as contiguous columns: to_canonical multiplies by
        # H^T, and a contiguous right operand makes numpy's small matmuls ~3x faster.
        packed = xp.reshape(xp.stack([wk for w in W for wk in w], axis=0), (d, d, -1))
        H_T = xp.reshape(xp.reshape(xp.permute_dims(packed, (2, 1, 0)), (-1,)), (-1, d, d))
        H = H_T.mT[:, None]
        full = rank >= (d - 1 if self.special else d)
        frame = Frame(H, t, rank=rank, conditioning=_conditioning(xp, norms, rank),
                      projected=~full, projection_is_average=xp.ones_like(full))
        magnitude = xp.sqrt(scale)
        if t_sq is not None:
            magnitude = magnitude + xp.sqrt(t_sq)
        frame.snap_level = (8.0 * d * work_eps(xp)) * magnitude
        return frame

    def _fix_determinant(self, xp, W, rank):
        """SO: det +1 at full rank; the cofactor completes rank d - 1 (groups.md 3.4)."""
        d = self.d
        if d == 1:  # SO(1) is trivial: H = [1] exactly, whatever the data
            return [[xp.ones_like(W[0][0])]]
        last = W[d - 1]
        complete = rank == d - 1
        if xp is np and d > 3 and not complete.any():
            # no completion needed: one d x d determinant beats d minors of size d - 1
            C, det = None, det_small(W)
        else:
            C = cofactor_vector(W[: d - 1], d, like=W[0][0])
            det = dot_rows(last, C)  # det H = last row . cofactor of the others
        flip = xp.where((rank == d) & (det < 0), -1.0, 1.0)
        W[d - 1] = [lk * flip for lk in last] if C is None else [
            xp.where(complete, Ck, lk * flip) for Ck, lk in zip(C, last)]
        return W

    def _pca_frame(self, xp, rows, t):
        """Sign-flip PCA frames of Puny et al.: ``diag(s) U^T`` for the eigenvectors U."""
        d = self.d
        _, U = xp.linalg.eigh(rows.mT @ rows)
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d)))
        if self.special:
            # With det U made +1, the det +1 frames are the sign patterns of product +1.
            first = xp.where(xp.linalg.det(U) < 0, -1.0, 1.0)
            U = xp.concat([U[..., :1] * first[:, None, None], U[..., 1:]], axis=-1)
            signs = signs[np.prod(signs, axis=1) > 0]
        S = xp.asarray(signs, dtype=work_dtype(xp), device=rows.device)   # (K, d)
        H = S[None, :, :, None] * U.mT[:, None]                       # (B, K, d, d)
        B = rows.shape[0]
        return Frame(H, t, rank=xp.full((B,), d, dtype=xp.int64, device=rows.device),
                     projected=xp.zeros((B,), dtype=xp.bool, device=rows.device),
                     projection_is_average=xp.ones((B,), dtype=xp.bool, device=rows.device))

    # ------------------------------------------------------------- elements
    def random_element(self, size, random_state=None, *, translation_scale=10.0):
        """Haar-random elements (plus N(0, translation_scale^2) translations for E/SE).

        Parameters
        ----------
        size : int
            Number of elements.
        random_state : int, numpy Generator or None

        Returns
        -------
        GroupElement
            numpy float64 arrays ``T`` of shape (size, d, d) and ``b`` (size, d) or None.
        """
        rng = np.random.default_rng(random_state)
        Q = haar_orthogonal(size, self.d, rng)
        if self.special:
            negative = np.linalg.det(Q) < 0
            Q[negative, :, 0] *= -1.0
        b = None
        if self.has_translations:
            b = translation_scale * rng.standard_normal((size, self.d))
        return GroupElement(Q, b)


def haar_orthogonal(size, d, rng):
    """Haar-distributed orthogonal matrices via QR with the sign fix of Mezzadri."""
    Q, R = np.linalg.qr(rng.standard_normal((size, d, d)))
    signs = np.sign(np.diagonal(R, axis1=1, axis2=2))
    signs[signs == 0] = 1.0
    return Q * signs[:, None, :]


def _conditioning(xp, norms, rank):
    """Largest over smallest chosen residual norm (1 where nothing or one was chosen)."""
    stacked = xp.stack(norms, axis=0)
    largest = xp.max(stacked, axis=0)
    big = xp.asarray(np.inf, dtype=stacked.dtype, device=stacked.device)
    smallest = xp.min(xp.where(stacked > 0, stacked, big), axis=0)
    return xp.where(rank > 0, largest / xp.where(rank > 0, smallest, 1.0), 1.0)
