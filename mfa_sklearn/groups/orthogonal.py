"""O(d), SO(d), E(d), SE(d): minimal frames, and sign-flip PCA frames as a baseline.

Minimal frame averaging (Lin et al. 2024) makes any backbone exactly invariant or
equivariant: each input is moved to a canonical form by one group element ``h`` (its
*minimal frame*), the backbone is called once on the canonical form, and an equivariant
output is mapped back by ``h``. This module computes ``h`` for the orthogonal and
Euclidean groups.

**Conventions.** A sample is an ``n x d`` array of rows. A group element acts on the
right, on every row: ``g.x = x T + b`` with ``T`` orthogonal (``det T = +1`` for SO, SE)
and a translation row ``b`` (E and SE; ``b = 0`` for O and SO). A frame element is a
``d x d`` matrix ``H``, whose rows ``w_1 .. w_d`` are the *frame vectors*, and a
translation ``t``. Since ``H^{-1} = H^T``, the canonical input is ``(x - t) H^T`` for
points and ``v H^T`` for vectors; an equivariant output ``y`` is restored as ``y H + t``
(points) or ``y H`` (vectors). The frame is equivariant, ``H(x T + b) = H(x) T`` and
``t(x T + b) = t(x) T + b``, so the canonical input is invariant.

**Frame.** For E and SE, ``t`` is the centroid of the first point field, and every point
field is centred by it before anything else (vector fields, e.g. velocities, are never
centred). The frame-defining rows, points first, are stacked into ``Z`` (``m`` rows),
and up to ``d`` of them are turned into frame vectors by Gram-Schmidt with an invariant
choice of the next row (:func:`~mfa_sklearn.groups._selection.select_rows`):

* ``rule="pivoted"`` (default) takes the row with the largest residual against the frame
  vectors chosen so far, as in QR with column pivoting; this bounds the amplification of
  rounding by small residuals;
* ``rule="first"`` takes the lowest-index row not in the span of those already chosen
  (the first linearly independent rows, the choice of the paper);
* ``rule="first_above"`` takes the lowest-index row whose residual norm is at least a
  tenth of the largest: index order where the leading rows are not tiny (few jumps for
  smooth learners), no frame vector from a tiny residual (conditioning within a factor
  10 per step of pivoting's).

Each frame vector is its row's residual divided by the residual's norm, a *positive*
multiple of it, so all signs are fixed by the data and ``H(x T) = H(x) T`` holds
exactly. With ``r`` frame vectors found, rows ``r .. d-1`` of ``H`` are zero.

**SO and SE.** At full rank ``r = d``, the last frame vector is negated where
``det H = -1``. At ``r = d - 1`` the missing row is the cofactor vector (generalized
cross product) of the chosen rows ``W``, ``C_k = (-1)^(d-1+k) det(W without column k)``:
a unit vector orthogonal to them with ``det [W; C] = +1``, computed from the data, never
drawn at random. At ``r <= d - 2`` the frame projects (see 'Stabilizers'). SO(1) is
trivial, so its frame is ``H = [1]`` whatever the data.

**Tolerances.** Every decision compares an invariant quantity with a threshold relative
to an invariant scale of the same sample, so rescaling the data never changes a
decision; there are no absolute cut-offs.

* Before any product, each sample's frame-defining rows are multiplied by the power of
  two that brings their largest entry (centroid not yet subtracted) into ``[1/2, 1)``:
  squared norms of rows near ``1e154`` would overflow and those of rows near
  ``1e-154`` underflow to 0. The factor is exact and every rounded operation commutes
  with it, so ``H`` is that of the unscaled rows bit for bit (it is scale-free), and
  ``t`` and the snapping level are scaled back exactly.

* A residual ``v`` is eligible iff ``|v|^2 > tol^2 max_i |z_i|^2``. The default
  ``tol = sqrt(eps)`` (``eps`` of the least precise of the input and the working
  precision; 1.5e-8 for float64) sits far from both the rounding noise of a dependent
  row (about ``eps``) and the residual of an independent one (about 1).
* For centred points, squared residuals must also exceed ``(16 n eps |t|)^2``, the
  rounding level that centring leaves, so coincident points yield no direction.
* ``"pivoted"`` takes the lowest index among the rows whose squared residual lies within
  the relative band ``delta = eps^(1/3)`` of the largest: exact ties (equal norms,
  symmetric clouds) are broken by index in the same way for ``x`` and ``g.x``, not by
  rounding noise.
* The chosen rows have zero coordinates along the later frame vectors in exact
  arithmetic; computed, they are rounding noise, which a downstream scaler or a tree's
  bin edges could magnify. Canonical coordinates at or below
  ``8 d eps (sqrt(max_i |z_i|^2) + |t|)`` are therefore set to exactly 0
  (:meth:`Frame.snap <mfa_sklearn.groups.Frame.snap>`); no value the data resolves is
  lost.

**Stabilizers.** Rows are ordered, so a sample whose rows span ``R^d`` is fixed by no
group element but the identity: its frame has one element. A sample spanning only
``r < d`` dimensions is fixed by the group ``K = O(d - r)`` (``SO(d - r)`` for SO and
SE) acting on the orthogonal complement of its span. The frame average over ``K`` has a
closed form: the Haar mean of ``O(k)`` (``k >= 1``) and of ``SO(k)`` (``k >= 2``) is the
zero matrix, so averaging an output over ``K`` removes its component outside the span.
The zero rows of ``H`` do exactly that: ``y H`` keeps only the span's coordinates. One
backbone call therefore gives the exact minimal frame average, and the diagnostic
``projection_is_average`` is always True. For SO at ``r = d - 1`` the stabilizer SO(1)
is trivial and there is nothing to average, hence the completion instead. Finite
stabilizers (symmetric clouds whose symmetries permute the rows) arise only in the
``S_n x G`` groups.

**PCA frames** (``method="pca"``, Puny et al. 2022) are a baseline: ``H = diag(s) U^T``
for the eigenvectors ``U`` of ``Z^T Z`` and all ``2^d`` sign patterns ``s`` (for SO and
SE, ``det U`` made +1 and the ``2^(d-1)`` patterns of product +1). They need one
backbone call per element, and they are not equivariant where eigenvalues repeat (the
eigenvectors are not unique there); minimal frames have neither problem. Where
eigenvalues repeat (a linear molecule, a square) the eigenvectors' derivative is
infinite; their gradient leaves out the pairs of eigenvalues closer than ``sqrt(eps)``
of the largest (torch's own gives NaN, which would poison a training batch).

**Discontinuity.** No canonical form of O(d) or SO(d) is continuous everywhere (Dym,
Lawrence and Siegel 2024): this one jumps where a selection decision flips. Since every
decision reads invariant numbers, equivariance stays exact on both sides of a jump.

**Cost.** ``d`` selection steps over the ``m`` rows, ``O(m d^2)`` per sample, as
vectorized passes over the whole batch (Python loops run over at most ``d`` items); the
SO completion adds ``d`` determinants of size ``d - 1``. One backbone call per sample.

References
----------
* G. Lin, J. Helwig, S. Gui, S. Ji. Equivariance via Minimal Frame Averaging for More
  Symmetries and Efficiency. ICML 2024, arXiv:2406.07598.
* O. Puny, M. Atzmon, H. Ben-Hamu, I. Misra, A. Grover, E. J. Smith, Y. Lipman. Frame
  Averaging for Invariant and Equivariant Network Design. ICLR 2022, arXiv:2110.03336.
* N. Dym, H. Lawrence, J. W. Siegel. Equivariant Frames and the Impossibility of
  Continuous Canonicalization. ICML 2024, arXiv:2402.16077.
* P. Businger, G. H. Golub. Linear least squares solutions by Householder
  transformations. Numerische Mathematik 7, 1965 (column pivoting).
"""

import functools
import itertools

import numpy as np

from ._base import Frame, Group, GroupElement, check_dimension, identity_where_empty
from ._namespace import subtract_inplace, sum_rows, work_dtype, work_eps
from ._selection import (
    BandedRule,
    cofactor_vector,
    det_small,
    dot_rows,
    frame_rows,
    replay_rows,
    select_rows,
)


def _centre(xp, Z, n_rows, n_points, present, count, weights):
    """The mean ``t`` of the first point field's present rows of coordinate-major ``Z``,
    and ``Z`` with ``t`` subtracted from its ``n_points`` point rows (in place for numpy)
    and its absent rows zero again; ``count`` is the number of present rows (B,) (the
    field's row count ``n_rows`` when all are present), ``weights`` the present rows."""
    if present is not None:
        count = xp.maximum(count, 1.0)
    t = [sum_rows(xp, Zk[:n_rows]) / count for Zk in Z]
    Z = [subtract_inplace(Zk, tk) if n_points == Zk.shape[0]
         else xp.concat([Zk[:n_points] - tk, Zk[n_points:]], axis=0)
         for Zk, tk in zip(Z, t)]
    if weights is not None:  # centring moved the absent rows to -t
        Z = [Zk * weights for Zk in Z]
    return t, Z


class OrthogonalGroup(Group):
    """The orthogonal group O(d) and its relatives SO(d), E(d) and SE(d).

    An element acts on the right on every row, ``g.x = x T + b`` (``b = 0`` without
    translations). The minimal frame of a sample is one matrix ``H`` whose rows are
    orthonormal vectors built from the data by pivoted Gram-Schmidt [1]_, plus the
    centroid ``t`` for E and SE; rank-deficient samples are averaged over their
    continuous stabilizer in closed form (zero rows of ``H``). ``method="pca"`` gives
    the sign-flip PCA frames of [2]_ as a baseline. The module docstring of
    ``mfa_sklearn.groups.orthogonal`` details the frame, tolerances and stabilizers.

    Parameters
    ----------
    d : int
        Dimension of the rows the group acts on (``d >= 1``).
    special : bool, default=False
        Restrict to determinant +1 (SO, SE).
    translations : bool, default=False
        Include translations (E, SE).

    References
    ----------
    .. [1] G. Lin, J. Helwig, S. Gui, S. Ji. "Equivariance via Minimal Frame Averaging
       for More Symmetries and Efficiency." ICML 2024, arXiv:2406.07598.
    .. [2] O. Puny, M. Atzmon, H. Ben-Hamu, I. Misra, A. Grover, E. J. Smith,
       Y. Lipman. "Frame Averaging for Invariant and Equivariant Network Design."
       ICLR 2022, arXiv:2110.03336.
    """

    frame_methods = ("minimal", "pca")
    row_breaks = True
    # minimal frames read the present rows only through sums and maxima in which the
    # absent rows are exact zeros, and row-wise products; PCA covariances are BLAS sums
    # whose rounding depends on the number of rows
    compact_methods = ("minimal",)

    def __init__(self, d, *, special=False, translations=False):
        self.d = check_dimension(d)
        self.special = bool(special)
        self.has_translations = bool(translations)

    @property
    def name(self):
        stem = ("S" if self.special else "") + ("E" if self.has_translations else "O")
        return f"{stem}({self.d})"

    # ------------------------------------------------------------------ frames
    def replay_frame(self, points=None, vectors=None, *, choices, present=None, tol=None,
                     rule="pivoted"):
        """The minimal frames of a batch whose row choices an earlier call made.

        The same rows (e.g. on another device, or with gradients) and the
        ``row_choices`` of their frame: only the arithmetic is done again (centroid,
        the chosen rows' Gram-Schmidt, see
        :func:`~mfa_sklearn.groups._selection.replay_rows`), none of the decisions
        that read every row. The frame is that of :meth:`frame`, bit for bit where
        both run on torch.

        Parameters
        ----------
        points, vectors, present, tol
            As for :meth:`frame`.
        choices : tuple (index, rank)
            ``row_choices`` of the earlier frame: chosen rows (B, d), rank (B,).
        rule : str, default="pivoted"
            The earlier frame's rule: it decides nothing here, but weighted frames'
            rules (``BandedRule``) centre the rows twice, which the replay repeats.

        Returns
        -------
        Frame
        """
        return self._frame(points, vectors, present, "minimal", tol, rule, choices=choices)

    def _frame(self, points, vectors, present, method, tol, rule, choices=None):
        """:meth:`Group.frame` of O(d), SO(d), E(d) and SE(d), or :meth:`replay_frame`
        with ``choices``. For E/SE the centroid of the first point array is the
        translation, and every point array is centred by it before it joins the row
        selection; vectors (velocities, say) are never centred. Absent rows are left
        out of the centroid, the row selection and the PCA covariance. ``method`` is
        "minimal" (one element per sample, recording its row choices in
        ``row_choices``), or "pca": the sign-flip PCA frames of Puny et al. (``2^d``
        elements, ``2^(d-1)`` for SO/SE) as a baseline."""
        xp, points, vectors, eps, tol = self._frame_inputs(points, vectors, method, tol)
        arrays = points + vectors
        present = self._present(xp, present, arrays)
        # absent rows are zeros here and after centring: they never count; the largest
        # entry is near 1 before any product or centroid (see 'Tolerances')
        Z, weights, inverse = frame_rows(xp, arrays, present)
        t = floor = t_sq = None
        if self.has_translations:
            n_first, n_points = points[0].shape[1], sum(p.shape[1] for p in points)
            if present is not None:
                n_first = xp.astype(xp.sum(xp.astype(present, xp.int64), axis=1),
                                    Z[0].dtype)
            t, Z = _centre(xp, Z, points[0].shape[1], n_points, present, n_first, weights)
            if isinstance(rule, BandedRule):
                # Weighted frames read ratios of residual norms, which for nearly
                # degenerate clouds are ratios of small numbers. The rounding of the
                # centroid (~eps |t| when the cloud sits far from the origin) shifts
                # every centred row alike, so it does not cancel there; a second pass
                # removes the mean of the centred rows, leaving ~eps times their size.
                shift, Z = _centre(xp, Z, points[0].shape[1], n_points, present, n_first,
                                   weights)
                t = [tk + sk for tk, sk in zip(t, shift)]
            # Centring a sample whose points all coincide leaves rounding noise of
            # about n eps |t|, not zeros; no frame vector may come from it.
            t_sq = dot_rows(t, t)
            floor = (16.0 * n_first * work_eps(xp)) ** 2 * t_sq
            t = xp.stack(t, axis=-1)
        if method == "pca":
            frame = self._pca_frame(xp, xp.permute_dims(xp.stack(Z, axis=-1), (1, 0, 2)),
                                    None if t is None else t * inverse[:, None])
            return identity_where_empty(xp, frame, present)
        frame = self._minimal_frame(xp, Z, t, t_sq, inverse, tol=tol,
                                    delta=eps ** (1.0 / 3.0), rule=rule, floor=floor,
                                    choices=choices)
        return identity_where_empty(xp, frame, present)

    def _minimal_frame(self, xp, Z, t, t_sq, inverse, *, tol, delta, rule, floor,
                       choices=None):
        """Frames from the selected rows, which are scaled by ``1 / inverse`` (B,), as
        are ``t`` and ``t_sq = |t|^2`` (B,) (or None); ``H`` is scale-free, lengths
        are scaled back. ``choices``: the rows an earlier selection chose."""
        d = self.d
        if choices is None:
            selection = select_rows(Z, tol=tol, delta=delta, rule=rule, floor=floor)
        else:
            selection = replay_rows(Z, *choices)
        W, rank, norms, scale = selection.W, selection.rank, selection.norms, selection.scale
        if self.special:
            W = self._fix_determinant(xp, W, rank)
        # Stored with the frame vectors as contiguous columns: to_canonical multiplies by
        # H^T, and a contiguous right operand makes numpy's small matmuls ~3x faster.
        packed = xp.reshape(xp.stack([wk for w in W for wk in w], axis=0), (d, d, -1))
        H_T = xp.reshape(xp.reshape(xp.permute_dims(packed, (2, 1, 0)), (-1,)), (-1, d, d))
        H = H_T.mT[:, None]
        full = rank >= (d - 1 if self.special else d)
        if t is not None:
            t = t * inverse[:, None]
        frame = Frame(H, t, rank=rank, conditioning=residual_conditioning(xp, norms, rank),
                      projected=~full, projection_is_average=xp.ones_like(full))
        magnitude = xp.sqrt(scale)
        if t_sq is not None:
            magnitude = magnitude + xp.sqrt(t_sq)
        frame.snap_level = (8.0 * d * work_eps(xp)) * magnitude * inverse
        frame.row_breaks = selection.breaks
        frame.row_choices = (xp.stack(selection.index, axis=1), rank)
        return frame

    def _fix_determinant(self, xp, W, rank):
        """SO: det +1 at full rank; the cofactor completes rank d - 1 (see the module
        docstring, 'SO and SE')."""
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
        covariance = rows.mT @ rows
        if getattr(covariance, "requires_grad", False):
            U = _eigenvectors_autograd().apply(covariance)
        else:
            _, U = xp.linalg.eigh(covariance)
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
        size, random_state
            As for :meth:`Group.random_element`.

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


@functools.cache
def _eigenvectors_autograd():
    """A torch autograd Function: the eigenvectors of symmetric matrices (B, d, d),
    whose backward leaves out the pairs of eigenvalues closer than ``sqrt(eps)`` of
    the largest. ``dU = U (F o U^T dA U)`` with ``F_ij = 1 / (l_j - l_i)``, infinite for
    repeated eigenvalues, so ``gA = U (F o U^T gU) U^T`` with those ``F_ij`` set to 0.
    Second derivatives treat ``F`` as a constant (a baseline's training on forces needs
    them with respect to the weights only, which are exact)."""
    import torch

    class Eigenvectors(torch.autograd.Function):
        @staticmethod
        def forward(ctx, A):
            values, vectors = torch.linalg.eigh(A)
            ctx.save_for_backward(values, vectors)
            return vectors

        @staticmethod
        def backward(ctx, grad):
            values, U = ctx.saved_tensors
            gap = values[..., None, :] - values[..., :, None]           # l_j - l_i
            level = (torch.finfo(values.dtype).eps ** 0.5) * values.abs().amax(
                dim=-1, keepdim=True)[..., None]
            apart = gap.abs() > level
            F = torch.where(apart, 1.0 / torch.where(apart, gap, torch.ones_like(gap)),
                            torch.zeros_like(gap))
            return U @ (F * (U.mT @ grad)) @ U.mT

    return Eigenvectors


def haar_orthogonal(size, d, rng):
    """Haar-distributed orthogonal matrices via QR with the sign fix of Mezzadri."""
    Q, R = np.linalg.qr(rng.standard_normal((size, d, d)))
    signs = np.sign(np.diagonal(R, axis1=1, axis2=2))
    signs[signs == 0] = 1.0
    return Q * signs[:, None, :]


def residual_conditioning(xp, norms, rank):
    """Largest over smallest chosen residual norm (1 where nothing or one was chosen)."""
    stacked = xp.stack(norms, axis=0)
    largest = xp.max(stacked, axis=0)
    big = xp.full((), np.inf, dtype=stacked.dtype, device=stacked.device)
    smallest = xp.min(xp.where(stacked > 0, stacked, big), axis=0)
    return xp.where(rank > 0, largest / xp.where(rank > 0, smallest, 1.0), 1.0)
