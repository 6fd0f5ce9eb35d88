"""GL(d), SL(d) and Aff(d): minimal frames from selected data rows.

**Conventions.** A group element acts on the right on every row, ``g.x = x T + b``, with
``T`` invertible (``det T = 1`` for SL) and a translation row ``b`` for Aff only. The
frame element of a sample is ``H = phi``, ``d`` of its frame-defining rows chosen by an
invariant rule (for SL rescaled, see 'SL'), with the centroid ``t`` for Aff. The
canonical input ``(x - t) phi^{-1}`` is computed by a batched linear solve
``phi^T c^T = (x - t)^T``, never an explicit inverse, and maps the chosen rows to
``e_1 .. e_d``; an equivariant output ``y`` is restored as ``y phi + t`` (points) or
``y phi`` (vectors). The same indices are chosen for ``x`` and ``g.x``, so
``phi(x T) = phi(x) T`` and the canonical input is invariant.

**Frame.** For Aff, ``t`` is the centroid of the first point field, and every point
field is centred by it *before* the rank guard: the points must span ``R^d`` affinely
(``n >= d + 1``, not all in one hyperplane), which a test of the uncentred rows would
miss. The frame-defining rows, points first, are stacked into ``Z`` (``m`` rows) and
whitened by a thin QR, ``Z = Q R``. Under ``Z -> Z T`` the factor ``Q`` changes only by
a right orthogonal factor, ``Q -> Q O``, so the norms and residuals of its rows (the
leverages ``|q_i|^2`` among them) are GL-invariant, and the Euclidean row selection of
:func:`~mfa_sklearn.groups._selection.select_rows` on the rows of ``Q`` returns the same
indices ``S`` for ``x`` and ``g.x``. ``phi = Z[S]``, in selection order.
``rule="pivoted"`` (default) picks rows of high leverage, so ``phi`` is well conditioned
relative to the data; ``rule="first"`` picks the first ``d`` independent rows;
``rule="first_above"`` the first rows of leverage residual at least a tenth of the
largest.
At step ``j`` the squared residuals of ``Q``'s rows sum to ``d - j``, so ``d`` rows are always
found once the rank guard has passed.

**SL.** ``H = D phi / |det phi|^(1/d)`` with ``D = diag(sign det phi, 1, ..., 1)``, so
``det H = +1`` for every ``d``. ``det phi`` is SL-invariant, so its sign and size are
read consistently for ``x`` and ``g.x``. Dividing by ``sign(det phi) |det phi|^(1/d)``
alone would leave ``det H = -1`` for even ``d`` and ``det phi < 0``: still equivariant,
but the canonical form would not lie in the SL-orbit of ``x``.

**Rank guard and tolerances.** Every sample needs ``sigma_min(Z) / sigma_max(Z) > tol``
(``tol = sqrt(eps)`` by default, ``eps`` of the least precise of the input and the
working precision); for Aff, ``sigma_min`` must also exceed ``16 n eps |t|``, the
rounding level that centring leaves. Otherwise :class:`RankDeficientError` is raised.
Every full-rank ``Z`` is GL-equivalent to an orthonormal one, so no GL-invariant notion
of numerical rank exists: the guard is a documented sanity check, not an invariant
decision. To avoid an SVD per sample, a pivoted Gram-Schmidt of the rows of ``R``
estimates the ratio first; by the classical bounds of QR with column pivoting the
estimate is off by at most a factor ``2^(d-1) sqrt(d)``, and only samples that it does
not clear with that margin get an SVD. The selection's tie band is
``delta = eps^(1/3)``. Before the centroid and the QR, each sample's rows are
multiplied by the power of two that brings their largest absolute entry into
``[1/2, 1)``, so that no centroid, norm or product of the guard overflows (rows near
``1e154``) or underflows (rows near ``1e-154``); the factor is exact and every rounded
operation commutes with it, so the decisions are those of the unscaled rows, and
``phi``, ``t`` and the snapping level are scaled back exactly. SL frames are normalised
from the scaled ``phi``: the same for ``x`` and ``2^k x``, bit for bit.

**Exact canonical rows.** The chosen row of slot ``j`` maps to ``e_j`` in exact
arithmetic (for SL to ``D e_j |det phi|^(1/d)``), whatever the data, and for Aff the
centred rows of the first point field sum to zero, so where all but one of them were
chosen the last one maps to minus the sum of the others' canonical rows. The solve
gives these rows only up to rounding, so every sample of one orbit (``d`` independent
rows under GL, ``d + 1`` affinely independent points under Aff) would get a canonical
form of its own in the last bits, and nearest neighbours or trees would tell them
apart. :meth:`LinearFrame.snap` sets the entries of these rows to their exact values
where they lie within the rounding level ``16 (m + d) d eps (max_i |z_i| + |t|) /
sigma_min(H)`` of them (``1 / sigma_min`` bounded above by ``1 / (f |det(H / f)|)``,
``f = |H|_F``, with no SVD); every other row is data and stays as computed.

**Stabilizers.** A sample whose rows span ``R^d`` has a trivial stabilizer: its frame
has one element. A rank-deficient sample is fixed by every ``T`` that fixes its row
space, which includes an arbitrary block acting on the complement: a non-compact group,
with no invariant probability measure, so no frame average exists. A projection onto the
row space would be equivariant for exactly rank-deficient data, but it is not an
average, the discarded coordinates have no canonical meaning, and numerical rank is not
GL-invariant, so that branch could not be taken consistently. Rank-deficient input is
therefore an error (:class:`RankDeficientError`), never a projection.

**Cost.** A thin QR and ``d`` selection steps, ``O(m d^2)`` per sample, the guard's
estimate ``O(d^3)`` (an SVD only for samples it does not clear), and one batched solve
per field, all vectorized over the batch. Rounding errors grow like
``eps cond(phi) cond(T)``; ``cond(phi)`` is reported by the ``conditioning`` diagnostic,
computed (one SVD per sample) only when asked for.

References
----------
* G. Lin, J. Helwig, S. Gui, S. Ji. Equivariance via Minimal Frame Averaging for More
  Symmetries and Efficiency. ICML 2024, arXiv:2406.07598.
* P. Businger, G. H. Golub. Linear least squares solutions by Householder
  transformations. Numerische Mathematik 7, 1965 (column pivoting and its bounds).
"""

import numpy as np

from ..exceptions import RankDeficientError
from ._base import Frame, Group, GroupElement, check_dimension, identity_where_empty, to_numpy
from ._namespace import (
    get_namespace,
    machine_eps,
    power_of_two_scale,
    work_dtype,
    work_eps,
    work_float,
)
from ._selection import check_row_rule, det_small, select_rows, to_coordinate_major
from .orthogonal import haar_orthogonal

_KINDS = ("GL", "SL", "Aff")


class LinearFrame(Frame):
    """Frames whose elements ``H`` are invertible but not orthogonal (GL, SL, Aff).

    ``x H^{-1}`` is computed by a batched linear solve ``H^T c^T = x^T``, never with an
    explicit inverse; outputs are restored by ``y H`` as for every frame.
    """

    # cond(H) is an SVD per sample, the largest cost of a linear frame: it is computed
    # when asked for (the ``conditioning`` property), not with every frame
    diagnostic_names = ("rank", "projected", "projection_is_average")

    @property
    def conditioning(self):
        """``cond(phi)`` of the chosen rows per sample (scaling by SL does not change it)."""
        xp = get_namespace(self.H)
        sv = xp.linalg.svdvals(self.H[:, 0])
        return sv[:, 0] / sv[:, -1]

    @property
    def diagnostics(self):
        values = dict(super().diagnostics)
        values["conditioning"] = self.conditioning
        return values

    def _apply_inverse(self, x):
        """``x H^{-1}`` for x of shape (B, 1, n, d) against H of shape (B, K, d, d)."""
        xp = get_namespace(x, self.H)
        B, K, d, _ = self.H.shape
        rhs = xp.broadcast_to(x.mT, (B, K, d, x.shape[-2]))
        return xp.linalg.solve(self.H.mT, rhs).mT

    #: set by :meth:`LinearGroup.frame` (None: nothing to snap): per sample, the
    #: positions (B, d) of the chosen rows among the stacked frame-defining rows, in
    #: slot order, and the diagonal (B, d) of their canonical rows
    snap_rows = snap_diagonal = None
    #: Aff: number of rows of the first point field, whose centroid is the translation
    snap_first_rows = None
    #: present rows (B, n) of the frame-defining fields, or None (all present)
    snap_present = None

    def snap(self, canon, offset=0):
        """The exact canonical rows of the rows that chose the frame, where the computed
        ones are within the rounding level of them.

        The chosen row of slot ``j`` maps to ``e_j`` exactly (``D e_j / s`` for SL, with
        ``s = |det phi|^(-1/d)`` and ``D = diag(sign det phi, 1, ..., 1)``); computed by
        the solve, it differs from it by rounding, so samples of one orbit (any ``d``
        independent rows for GL, ``d + 1`` affinely independent points for Aff) would
        get canonical forms that differ in the last bits, and a nearest-neighbour or
        tree model on them would answer differently. For Aff, the centred rows of the
        first point field sum to zero, so where all but one of them were chosen the
        last one maps to minus the sum of the chosen rows' canonical rows, exactly.
        Other rows are data and are left as computed. An entry is replaced only where
        it lies within ``snap_level`` of the exact one: the rounding level of the solve,
        ``16 (m + d) d eps (max_i |z_i| + |t|) / sigma_min(H)``, bounded above without
        an SVD (plus the rounding of ``canon``'s own dtype).

        Parameters
        ----------
        canon : array of shape (B, K, n, d)
            Canonical form of one frame-defining field.
        offset : int, default=0
            Position of the field's first row among the stacked frame-defining rows
            (point fields first, then vector fields).

        Returns
        -------
        array of shape (B, K, n, d)
            ``canon`` with the exact rows set (in place for numpy arrays).
        """
        if self.snap_rows is None:
            return canon
        xp = get_namespace(canon, self.H)
        n, d = canon.shape[2], canon.shape[3]
        rows = xp.reshape(xp.arange(n, dtype=xp.int64, device=canon.device), (1, n))
        local = self.snap_rows - offset                                        # (B, d)
        known = None
        for k in range(d):
            here = rows == local[:, k:k + 1]                                   # (B, n)
            known = here if known is None else known | here
        # the sum rule fixes a row only where at most d rows (the chosen ones) remain
        present = self.snap_present
        sum_rule = self.snap_first_rows == n and offset == 0 and (
            present is not None or n - 1 <= d)
        if sum_rule:
            count = xp.sum(xp.astype(known, xp.int64), axis=1, keepdims=True)
            if present is None:
                last = ~known & (count == n - 1)
            else:  # the count of present rows decides, per sample
                n_here = xp.sum(xp.astype(present, xp.int64), axis=1, keepdims=True)
                last = ~known & present & (count == n_here - 1) & (n_here - 1 <= d)
            known = known | last
        # NaN on the rows that stay as computed: no comparison with it holds. Built
        # transposed, (B, d, n), the layout of the solve's output, along which numpy
        # broadcasts fastest. The chosen row of slot k is nonzero in column k alone.
        base = xp.where(known, 0.0, float("nan"))[:, None, :]                # (B, 1, n)
        diagonal = self.snap_diagonal[:, :, None]                              # (B, d, 1)
        exact = xp.where(local[:, :, None] == rows[:, None, :], diagonal, base)
        if sum_rule:
            inside = ((local >= 0) & (local < n))[:, :, None]
            # 0 - x, not -x: +0.0 where no chosen row contributes
            rest = 0.0 - xp.where(inside, diagonal, 0.0)                       # (B, d, 1)
            exact = xp.where(last[:, None, :], rest, exact)
        exact = xp.astype(exact.mT, canon.dtype, copy=False)[:, None]        # (B, 1, n, d)
        # canon's own rounding (float32 outputs) on top of the solve's
        level = self.snap_level + machine_eps(canon.dtype) * xp.max(xp.abs(diagonal),
                                                                   axis=(1, 2))
        replace = xp.abs(canon - exact) <= level[:, None, None, None]
        if isinstance(canon, np.ndarray):
            np.copyto(canon, exact, where=replace)
            return canon
        return xp.where(replace, exact, canon)


class LinearGroup(Group):
    """The general linear group GL(d), the special linear group SL(d), or the affine
    group Aff(d) = GL(d) with translations.

    An element acts on the right on every row, ``g.x = x T + b`` (``b = 0`` for GL
    and SL). The minimal frame [1]_ of a sample is ``d`` of its own rows, chosen by a
    pivoted row selection on the whitened rows (for SL rescaled to det +1), plus the
    centroid for Aff; the canonical input maps the chosen rows to the unit vectors.
    Frames need the frame-defining rows of every sample to span ``R^d`` (for Aff: the
    points to affinely span it); otherwise :class:`RankDeficientError` is raised, since
    the stabilizer of a rank-deficient sample is non-compact and no frame average
    exists. The module docstring of ``mfa_sklearn.groups.linear`` details the frame,
    the rank guard and the stabilizers.

    Parameters
    ----------
    d : int
        Dimension of the rows the group acts on (``d >= 1``).
    kind : {"GL", "SL", "Aff"}, default="GL"
        Which group.

    References
    ----------
    .. [1] G. Lin, J. Helwig, S. Gui, S. Ji. "Equivariance via Minimal Frame Averaging
       for More Symmetries and Efficiency." ICML 2024, arXiv:2406.07598.
    """

    #: why weighted frames near ties (``tie_band``) are not offered
    no_row_breaks_because = ("its frames snap the rows that chose them to exact unit rows, "
                             "one chosen set per sample, and two weighted frames would "
                             "need one each")

    def __init__(self, d, *, kind="GL"):
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {list(_KINDS)}; got {kind!r}")
        self.d = check_dimension(d)
        self.kind = kind
        self.has_translations = kind == "Aff"

    @property
    def name(self):
        return f"{self.kind}({self.d})"

    # ------------------------------------------------------------------ frames
    def _frame(self, points, vectors, present, method, tol, rule):
        """:meth:`Group.frame` of GL(d), SL(d) and Aff(d). For Aff the centroid of the
        first point array is the translation, and every point array is centred by it
        before it joins the row selection; vectors are never centred. Absent rows are
        left out of the centroid, the rank guard and the row selection; every sample
        with a present row needs its present rows to span ``R^d``. ``tol`` is the
        relative tolerance of the rank guard ``sigma_min / sigma_max > tol`` on the
        frame-defining rows; the rule selects among the whitened rows (see the module
        docstring, 'Frame').

        Returns
        -------
        LinearFrame
            ``H`` of shape (B, 1, d, d) (the selected rows ``phi``, for SL rescaled to
            det +1), ``t`` the centroid (Aff) or None.

        Raises
        ------
        RankDeficientError
            If the rows of some sample do not span ``R^d`` numerically (Aff: the points
            do not affinely span it).
        """
        check_row_rule(rule)
        xp, points, vectors, eps, tol = self._frame_inputs(points, vectors, method, tol)
        present = self._present(xp, present, points + vectors)
        if present is not None:  # absent rows are zeros: they change no singular value
            mask = present[..., None]
            points = [xp.where(mask, p, xp.zeros_like(p)) for p in points]
            vectors = [xp.where(mask, v, xp.zeros_like(v)) for v in vectors]
        # largest |entry| near 1 before the centroid and any product (see the module
        # docstring, 'Rank guard and tolerances'); new arrays, the inputs stay as given
        largest = None
        for a in points + vectors:
            here = xp.max(xp.abs(a), axis=(1, 2))
            largest = here if largest is None else xp.maximum(largest, here)
        factor, inverse = power_of_two_scale(xp, work_float(xp, largest))
        points = [work_float(xp, p) * factor[:, None, None] for p in points]
        vectors = [work_float(xp, v) * factor[:, None, None] for v in vectors]
        t = floor = None
        if self.has_translations:
            # centre before the rank guard: Aff needs the points to span R^d affinely,
            # which the uncentred rows could do while all lying in one hyperplane
            if present is None:
                t = xp.mean(points[0], axis=1)
                n_first = points[0].shape[1]
            else:  # the mean over the present rows
                n_first = xp.astype(xp.sum(xp.astype(present, xp.int64), axis=1),
                                    points[0].dtype)
                t = xp.sum(points[0], axis=1) / xp.maximum(n_first, 1.0)[:, None]
            points = [p - t[:, None, :] for p in points]
            if present is not None:  # centring moved the absent rows to -t
                points = [xp.where(mask, p, xp.zeros_like(p)) for p in points]
            # Centring coincident points leaves rounding noise of about n eps |t|; no
            # direction may be read from it.
            norm_t = xp.sqrt(xp.sum(t * t, axis=-1))
            floor = 16.0 * n_first * work_eps(xp) * norm_t
        Z = xp.concat(points + vectors, axis=1) if len(points + vectors) > 1 \
            else (points + vectors)[0]
        B, m, d = Z.shape
        if B == 0:
            return self._empty_frame(xp, Z, None if t is None else t * inverse[:, None])
        self._check_count(m, B)
        empty = None
        if present is not None and m >= d:
            # samples without present rows get stand-in rows e_1 .. e_d, hence phi = I
            empty = ~xp.any(present, axis=1)
            eye = xp.concat([xp.eye(d, dtype=Z.dtype, device=Z.device),
                             xp.zeros((m - d, d), dtype=Z.dtype, device=Z.device)], axis=0)
            Z = xp.where(empty[:, None, None], eye, Z)
        Q, R = xp.linalg.qr(Z)
        self._check_rank(xp, R, tol, floor)
        selection = select_rows(to_coordinate_major(xp, Q), tol=tol,
                                delta=eps ** (1.0 / 3.0), rule=rule)
        if not xp.all(selection.rank == d):  # unreachable once the guard has passed:
            # the squared residuals of the orthonormal-column Q sum to d - j at step j
            raise RankDeficientError(f"{self._requirement()}; the row selection found "
                                     "fewer than d independent whitened rows")
        offsets = xp.arange(B, dtype=xp.int64, device=Z.device) * m
        flat = xp.reshape(Z, (B * m, d))
        phi = xp.stack([xp.take(flat, offsets + k, axis=0) for k in selection.index],
                       axis=1)                                        # (B, d, d)
        # GL, Aff: the data rows, scaled back. SL normalises the scale away; from the
        # scaled rows log |det phi| stays near 0, where exp(-log |det phi| / d) is
        # accurate to eps (not eps |log det phi|) and its gradient finite.
        if self.kind == "SL":
            H, diagonal = self._special(xp, phi)
            diagonal = diagonal * inverse[:, None]
            bound = _inverse_norm_bound(xp, H)
        else:
            H = phi * inverse[:, None, None]
            diagonal = xp.ones((B, d), dtype=phi.dtype, device=phi.device)
            bound = _inverse_norm_bound(xp, phi) * factor   # H * H would overflow
        frame = LinearFrame(H[:, None], None if t is None else t * inverse[:, None],
                            rank=selection.rank,
                            projected=xp.zeros((B,), dtype=xp.bool, device=Z.device),
                            projection_is_average=xp.ones((B,), dtype=xp.bool,
                                                          device=Z.device))
        frame.snap_rows = xp.stack(selection.index, axis=1)
        if empty is not None:  # nothing to snap: the stand-in rows are not data
            frame.snap_rows = xp.where(empty[:, None], m, frame.snap_rows)
        frame.snap_diagonal = diagonal
        frame.snap_present = present
        if self.has_translations:
            frame.snap_first_rows = points[0].shape[1]
        # rounding level of the canonical rows (see LinearFrame.snap): the rows' size,
        # centroid included, over sigma_min(H)
        magnitude = xp.sqrt(xp.max(xp.sum(Z * Z, axis=-1), axis=1))
        if t is not None:
            magnitude = magnitude + xp.sqrt(xp.sum(t * t, axis=-1))
        frame.snap_level = ((16.0 * (m + d) * d * work_eps(xp)) * magnitude * inverse
                            * bound)
        return identity_where_empty(xp, frame, present)

    def _special(self, xp, phi):
        """SL: ``D phi / |det phi|^(1/d)`` with ``D = diag(sign det phi, 1, ..., 1)``, so
        that det H = +1 for every d (dividing by ``sign * |det|^(1/d)`` alone gives
        det -1 for even d and det phi < 0).

        Returns H (B, d, d) and the diagonal (B, d) of the chosen rows' canonical rows
        ``phi H^{-1} = D |det phi|^(1/d)``."""
        sign, logabsdet = xp.linalg.slogdet(phi)
        scale = xp.exp(-logabsdet / self.d)                          # (B,)
        first = phi[:, :1, :] * (sign * scale)[:, None, None]
        H = xp.concat([first, phi[:, 1:, :] * scale[:, None, None]], axis=1)
        size = xp.exp(logabsdet / self.d)
        diagonal = xp.stack([size * sign] + [size] * (self.d - 1), axis=1)
        return H, diagonal

    def _requirement(self):
        d = self.d
        if self.has_translations:
            return (f"group {self.name} needs the points of every sample to affinely span "
                    f"R^{d} (n >= {d + 1} points, not all in one hyperplane)")
        return (f"group {self.name} needs the frame-defining rows of every sample to span "
                f"R^{d} (n >= {d}, numerically full rank)")

    def _check_count(self, m, B):
        """Too few rows: every sample fails, whatever its values."""
        available = m - 1 if self.has_translations else m
        if available < self.d:
            what = "point(s)" if self.has_translations else "frame-defining row(s)"
            raise RankDeficientError(
                f"{self._requirement()}; all {B} sample(s) fail: each has only {m} {what}")

    def _check_rank(self, xp, R, tol, floor):
        """The guard ``sigma_min(Z) / sigma_max(Z) > tol`` (Aff: also sigma_min above the
        rounding level of the centring). ``Z`` and its QR factor ``R`` share singular
        values. A documented sanity check: numerical rank is not GL-invariant."""
        # Cheap screen first: by the pivoting, the last over the first residual norm of a
        # pivoted Gram-Schmidt of R's rows is at most 2^(d-1) sqrt(d) times sigma_min over
        # sigma_max (Businger-Golub bounds, with margin): samples well above the tolerance
        # by this estimate need no SVD, which costs more than the rest of the frame.
        d = R.shape[-1]
        # tol=0 lets exactly zero residuals be chosen; only their norms (0) are read,
        # and the frame vectors they would divide by 0 for are never used
        with np.errstate(divide="ignore", invalid="ignore"):
            norms = select_rows(to_coordinate_major(xp, R), tol=0.0, delta=0.0).norms
        estimate = norms[-1] / xp.where(norms[0] > 0, norms[0], 1.0)
        margin = 2.0 ** d * d ** 1.5
        unclear = ~(estimate > margin * tol)
        if floor is not None:
            unclear = unclear | ~(norms[-1] > margin * floor)
        if not bool(xp.any(unclear)):
            return
        sv = xp.linalg.svdvals(R)
        largest, smallest = sv[:, 0], sv[:, -1]
        limit = tol * largest
        if floor is not None:
            limit = xp.maximum(limit, floor)
        bad = smallest <= limit
        if not xp.any(bad):
            return
        bad = to_numpy(bad)
        ratio = to_numpy(xp.where(largest > 0, smallest / xp.where(largest > 0, largest,
                                                                       1.0), 0.0))
        idx = np.flatnonzero(bad)
        shown = ", ".join(str(int(i)) for i in idx[:10])
        shown += ", ..." if idx.size > 10 else ""
        note = ""
        if floor is not None and np.any(to_numpy(smallest > tol * largest) & bad):
            note = ("; centred points at the rounding level of their centroid count as "
                    "coincident")
        raise RankDeficientError(
            f"{self._requirement()}; {idx.size} sample(s) fail (first: [{shown}]; "
            f"smallest \u03c3_min/\u03c3_max = {float(ratio[bad].min()):.2g}, "
            f"tolerance {tol:.2g}{note}).")

    def _empty_frame(self, xp, Z, t):
        d = self.d
        z = dict(dtype=work_dtype(xp), device=Z.device)
        return LinearFrame(xp.zeros((0, 1, d, d), **z), t,
                           rank=xp.zeros((0,), dtype=xp.int64, device=Z.device),
                           projected=xp.zeros((0,), dtype=xp.bool, device=Z.device),
                           projection_is_average=xp.zeros((0,), dtype=xp.bool,
                                                          device=Z.device))

    # ------------------------------------------------------------- elements
    def random_element(self, size, random_state=None, *, kappa=10.0,
                       translation_scale=10.0):
        """Random elements with condition number ``kappa``.

        ``T = U diag(sigma) V^T * lambda`` with Haar-orthogonal ``U`` and ``V``, singular
        values ``sigma`` log-uniform on ``[1, kappa]`` with both ends included (so
        ``cond(T) = kappa`` for ``d >= 2``; ``sigma = 1`` for ``d = 1``) and
        ``lambda ~ LogNormal(0, 1)``. SL: one
        column negated where det < 0, then divided by ``det^(1/d)``. Aff: plus a
        translation ``b ~ N(0, translation_scale^2)``.

        Parameters
        ----------
        size, random_state
            As for :meth:`Group.random_element`.
        kappa : float, default=10.0
            Condition number of the linear parts (``>= 1``).
        translation_scale : float, default=10.0
            Standard deviation of the translations (Aff only; ignored otherwise).

        Returns
        -------
        GroupElement
            numpy float64 arrays ``T`` of shape (size, d, d) and ``b`` (size, d) or None.
        """
        if not kappa >= 1.0:
            raise ValueError(f"kappa must be a condition number >= 1; got {kappa!r}")
        rng = np.random.default_rng(random_state)
        d = self.d
        U = haar_orthogonal(size, d, rng)
        V = haar_orthogonal(size, d, rng)
        log_sigma = rng.uniform(0.0, np.log(kappa), (size, d))
        if d >= 2:  # both ends of [1, kappa] included
            log_sigma[:, 0], log_sigma[:, 1] = 0.0, np.log(kappa)
        else:       # one singular value: the scale is lambda alone
            log_sigma[:] = 0.0
        scale = rng.lognormal(0.0, 1.0, size)
        T = (U * np.exp(log_sigma)[:, None, :]) @ np.swapaxes(V, 1, 2)
        T = T * scale[:, None, None]
        if self.kind == "SL":
            det = np.linalg.det(T)
            T[det < 0, :, 0] *= -1.0
            T = T / np.abs(det)[:, None, None] ** (1.0 / d)
        b = None
        if self.has_translations:
            b = translation_scale * rng.standard_normal((size, d))
        return GroupElement(T, b)


def _inverse_norm_bound(xp, H):
    """An upper bound of ``|H^{-1}|_2 = 1 / sigma_min(H)`` per sample, without an SVD.

    ``sigma_min >= |det H| / sigma_max^(d-1)`` and ``sigma_max <= |H|_F``; with
    ``f = |H|_F``, ``1 / sigma_min <= 1 / (f |det(H / f)|)``, which overflows for no
    scale of ``H`` and exceeds ``1 / sigma_min`` by at most ``d^((d-1)/2)``. Inf where
    ``H`` is singular.
    """
    d = H.shape[-1]
    f = xp.sqrt(xp.sum(H * H, axis=(1, 2)))
    unit = H / xp.where(f > 0, f, 1.0)[:, None, None]
    if d <= 3:
        det = det_small([[unit[:, i, k] for k in range(d)] for i in range(d)])
    else:
        det = xp.linalg.det(unit)
    bound = f * xp.abs(det)
    inf = xp.asarray(np.inf, dtype=bound.dtype, device=bound.device)
    return xp.where(bound > 0, 1.0 / xp.where(bound > 0, bound, 1.0), inf)
