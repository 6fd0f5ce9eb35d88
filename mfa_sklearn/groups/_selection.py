"""Invariant row selection (Gram-Schmidt with pivoting) and the kernels frames share.

**What** :func:`select_rows` **computes.** Given the frame-defining rows ``z_1 .. z_m``
of each sample and a product (Euclidean, Hermitian for complex rows, or a diagonal
indefinite metric such as Minkowski's ``eta``), it chooses up to ``d`` rows, one per
step, and turns them into frame vectors ``w_1 .. w_r`` with ``|<w_j, w_j>| = 1``. At
each step the residual ``v = z - sum_j s_j <z, w_j> w_j``, with
``s_j = <w_j, w_j> = +-1``, of every unchosen row against the vectors chosen so far is
known, so a row skipped earlier can be chosen later. The chosen residual is
re-orthogonalised against the earlier vectors and divided by ``sqrt(|<v, v>|)``: each
frame vector is a *positive* multiple of its residual, which fixes signs and complex
phases from the data. Every decision reads invariant numbers (residual norms or
Minkowski squares, relative thresholds, row indices), so for ``T`` in the group the rows
``Z T`` give the same choices and the frame vectors ``W(Z T) = W(Z) T``. The slots
``r .. d-1`` where nothing was chosen hold zero vectors.

**Rules.**

* ``"first"``: the lowest-index eligible row. For a definite product this is the scan
  "keep a row iff it is not in the span of the rows kept", which yields the
  lexicographically first basis: the first linearly independent rows, the choice of Lin
  et al. (2024).
* ``"pivoted"`` (default): the lowest index among the eligible rows whose squared
  residual ``q`` (``|<v, v>|`` for an indefinite metric) lies within the relative band
  ``q >= (1 - delta) q_max`` of the largest, as in QR with column pivoting (Businger and
  Golub 1965). No frame vector comes from a small residual while a large one is
  available, which bounds the amplification of rounding; the band makes exact ties
  (equal norms, symmetric data) resolve by index, the same way for ``x`` and ``g.x``,
  instead of by rounding noise.
* ``"first_above"``: the lowest-index eligible row whose residual norm is at least
  :data:`ROW_FRACTION` (a tenth) of the largest eligible residual norm, i.e. squared
  residual ``q >= (1 - delta) ROW_FRACTION^2 q_max``: pivoting with the fraction 1/10
  instead of 1, and the same band, so that data whose norms have ratio exactly 1/10
  (integer coordinates, say) are decided alike for ``x`` and ``g.x``, not by
  rounding. On generic data it takes the rows in index order, as ``"first"`` does,
  so it jumps far less often than pivoting (which jumps wherever two residual norms
  cross), yet no chosen residual is smaller than a fixed fraction of the largest, so a
  tiny leading row cannot make the frame ill-conditioned: chosen norms are within a
  factor ``1 / ROW_FRACTION`` of the pivoted choice at every step. It jumps where a
  leading row's residual crosses that fraction (on random paths of 5-point clouds
  about 4 times per path, against 5 for "first", whose near-dependent leading rows
  move the frame abruptly too, and 16 for pivoting).
* Indefinite metric, every rule: *timelike first*. While no timelike vector has been
  chosen and some eligible residual has ``<v, v> > 0``, only those compete. After a
  timelike vector, every residual lies in its definite complement, so null residuals
  never become frame vectors.

**Tolerances.** A row is eligible iff its squared residual exceeds a threshold relative
to an invariant scale of the same sample, so decisions do not depend on the data's
scale:

* Euclidean or Hermitian: ``|v|^2 > tol^2 max_i |z_i|^2``;
* indefinite, with ``s = ||Z eta Z^T||_F`` (computed from the ``d x d`` Gram matrix
  ``Z^T Z`` by :func:`metric_scale`, in ``O(m d^2)`` instead of the ``O(m^2 d)`` of all
  pairwise products): ``|<v, v>| > tol s`` while no timelike vector has been chosen,
  where a residual can be nearly null, small in its Minkowski square only, and
  normalising it would amplify its rounding error; ``|<v, v>| > tol^2 s`` afterwards,
  where every residual lies in the definite complement of the timelike vector and
  ``|<v, v>|`` is a squared Euclidean norm there, as for the definite products (with
  ``tol s`` there, rows independent to about ``sqrt(tol)`` would count as dependent);
* optionally, ``|v|^2 > floor``: the rounding level of rows computed by cancellation
  (centred points), below which the relative rule alone would read noise as a direction.

Callers pass ``tol = sqrt(eps)`` and ``delta = eps^(1/3)``; chosen rows are not excluded
explicitly, since their residual is rounding noise, far below the threshold. Squares of
rows near ``1e154`` overflow float64 and those of rows near ``1e-154`` underflow, so
callers first multiply each sample by the power of two that brings its largest entry
near 1 (:func:`largest_entry`, :func:`scale_rows` and
:func:`~mfa_sklearn.groups._namespace.power_of_two_scale`); that changes no decision
and no frame vector, bit for bit.

**Completions.** :func:`cofactor_vector` is the generalized cross product of ``d - 1``
rows ``W``, ``C_k = (-1)^(d-1+k) det(W without column k)``: ``W C^T = 0`` and
``det [W; C] = |C|^2``, so ``|C| = 1`` when the rows of ``W`` are orthonormal. It
completes the frames of SO, SU and SO(1,d-1) at rank ``d - 1`` deterministically (``d``
determinants of size ``d - 1``, explicit formulas up to 3 x 3 in :func:`det_small`).

**Layout and cost.** Everything here works on *coordinate-major* data: a list of ``d``
arrays, entry ``k`` holding coordinate ``k`` of every row of every sample, shaped
``(m, B)``. Elementwise arithmetic on these long contiguous arrays is several times
faster than reductions over a short trailing axis of size ``d``, and it is plain
array-API code, so numpy and torch share it. Loops run over at most ``d`` items; a
selection costs ``d`` steps of ``O(m d)`` per sample. For numpy with the Euclidean
product and ``"pivoted"``, residual norms are downdated, ``q_i <- q_i - <z_i, w>^2``,
instead of recomputed (about half the passes over the data) until the largest one nears
the rounding level, where exact residuals take over. numpy updates buffers in place;
torch stays out of place, as autograd needs.

References
----------
* G. Lin, J. Helwig, S. Gui, S. Ji. Equivariance via Minimal Frame Averaging for More
  Symmetries and Efficiency. ICML 2024, arXiv:2406.07598.
* P. Businger, G. H. Golub. Linear least squares solutions by Householder
  transformations. Numerische Mathematik 7, 1965 (column pivoting).
"""

from typing import Any, NamedTuple

import numpy as np

from ._base import present_major
from ._namespace import (
    first_true,
    get_namespace,
    isdtype,
    power_of_two_scale,
    subtract_inplace,
    sum_rows,
    work_dtype,
    work_eps,
    work_float,
)

#: the row selection rules of :func:`select_rows` (see the module docstring, 'Rules')
ROW_RULES = ("first", "pivoted", "first_above")
#: ``"first_above"`` takes the first row whose residual norm is at least this fraction
#: of the largest one
ROW_FRACTION = 0.1


class BandedRule(str):
    """``"first_above"`` at another ``fraction``, reporting its decision margins.

    A string equal to ``"first_above"``, so it travels wherever a rule name does (through
    every group's ``frame``); :func:`select_rows` then compares with ``fraction``
    instead of :data:`ROW_FRACTION` and returns :attr:`Selection.breaks`. Weighted
    frames near ties (:func:`~mfa_sklearn.groups._ensemble.banded_frame`) compute
    the frames of the two edges of a band of fractions with it.

    Parameters
    ----------
    fraction : float
        Residual norm fraction, in (0, 1].
    """

    def __new__(cls, fraction):
        rule = super().__new__(cls, "first_above")
        rule.fraction = float(fraction)
        return rule


def check_row_rule(rule):
    """Raise a clear ValueError unless ``rule`` is one of :data:`ROW_RULES`."""
    if not isinstance(rule, str) or rule not in ROW_RULES:
        raise ValueError(f"the row rule must be one of {list(ROW_RULES)}; got {rule!r}")


def to_coordinate_major(xp, rows):
    """(B, m, d) -> list of d contiguous arrays of shape (m, B); new memory for numpy."""
    B, m, d = rows.shape
    permuted = xp.permute_dims(rows, (2, 1, 0))
    if xp is np:
        packed = np.array(permuted, order="C", copy=True)
    else:  # reshape of a permuted view copies into C order
        packed = xp.reshape(xp.reshape(permuted, (-1,)), (d, m, B))
    return [packed[k] for k in range(d)]


def dot_rows(u, w, work=None, signature=None):
    """Per-row products ``sum_k s_k u_k w_k`` of coordinate-major ``u`` (entries (m, B))
    with ``w`` (entries (B,) or (m, B)); ``s`` is the metric ``signature`` (all +1 when
    None). Bilinear: pass ``conj(w)`` for Hermitian products. ``u`` and ``w`` may be
    lists of coordinates or arrays with the coordinates along their first axis.

    For numpy the sum accumulates in place, in the buffers ``work = (result, scratch)``
    when given: fresh arrays of a chunk's size are page-faulted in on every allocation,
    which made these passes several times slower. Torch stays out of place for autograd.
    Two numpy arrays of the same shape (one frame vector per sample, (d, B)) take one
    product of all coordinates, summed in coordinate order as below: the same bits in
    ``d`` calls instead of ``2 d - 1``, each of which hands the GIL over between
    joblib's threads. (``np.add.reduce`` over the coordinates would take one call, but
    sums pairwise, other bits, when the batch has one sample.)
    """
    signs = (1.0,) * len(u) if signature is None else signature
    if isinstance(u, np.ndarray) and isinstance(w, np.ndarray) and u.shape == w.shape:
        product = u * w
        if min(signs) < 0:
            negative = np.less(signs, 0).reshape((-1,) + (1,) * (u.ndim - 1))
            np.negative(product, out=product, where=negative)
        acc = product[0]
        for term in product[1:]:
            acc += term
        return acc
    if isinstance(u[0], np.ndarray):
        if work is None:
            shape = np.broadcast_shapes(u[0].shape, w[0].shape)
            dtype = np.result_type(u[0], w[0])
            work = (np.empty(shape, dtype), np.empty(shape, dtype))
        acc, scratch = work
        np.multiply(u[0], w[0], out=acc)
        if signs[0] < 0:
            np.negative(acc, out=acc)
        for uk, wk, sk in zip(u[1:], w[1:], signs[1:]):
            product = np.multiply(uk, wk, out=scratch)
            if sk < 0:
                acc -= product
            else:
                acc += product
        return acc
    acc = u[0] * w[0] if signs[0] > 0 else -(u[0] * w[0])
    for uk, wk, sk in zip(u[1:], w[1:], signs[1:]):
        acc = acc + uk * wk if sk > 0 else acc - uk * wk
    return acc


def _conj(xp, v):
    """Entrywise complex conjugates of an array or a list of arrays (themselves when
    real)."""
    if not isdtype(xp, v[0].dtype, "complex floating"):
        return v
    return [xp.conj(vk) for vk in v] if isinstance(v, list) else xp.conj(v)


def _square(xp, v, signature=None, work=None):
    """``<v, v>`` of coordinate-major rows (real: Hermitian squares are real)."""
    q = dot_rows(v, _conj(xp, v), work, signature)
    return xp.real(q) if isdtype(xp, q.dtype, "complex floating") else q


def subtract_scaled(V, overlap, w, scratch=None):
    """``V_k - overlap * w_k`` for every coordinate: in place for numpy (the caller owns
    ``V``; ``scratch`` is an optional buffer, see :func:`dot_rows`), out of place else.
    ``V`` is a list of coordinates, or a numpy array of stacked ones (see
    :func:`_stacked`)."""
    if isinstance(V, np.ndarray):
        V -= overlap * w
        return V
    if isinstance(overlap, np.ndarray):
        scratch = np.empty_like(overlap) if scratch is None else scratch
        return [subtract_inplace(Vk, np.multiply(overlap, wk, out=scratch))
                for Vk, wk in zip(V, w)]
    return [Vk - overlap * wk for Vk, wk in zip(V, w)]


def largest_entry(Z):
    """Largest absolute entry per sample of coordinate-major rows ``Z`` (list of d
    arrays (m, B)): (B,). Complex rows count their real and imaginary parts separately,
    the magnitudes that a real scale factor multiplies."""
    xp = get_namespace(Z[0])
    if isdtype(xp, Z[0].dtype, "complex floating"):
        Z = [part for Zk in Z for part in (xp.real(Zk), xp.imag(Zk))]
    # numpy: |Z_k| into one reused buffer (see dot_rows), the maxima accumulated in place
    buffer = np.empty(Z[0].shape, Z[0].dtype) if xp is np else None
    largest = None
    for Zk in Z:
        here = xp.max(np.abs(Zk, out=buffer) if xp is np else xp.abs(Zk), axis=0)
        if largest is None:
            largest = here
        elif xp is np:
            np.maximum(largest, here, out=largest)
        else:
            largest = xp.maximum(largest, here)
    return largest


def scale_rows(Z, factor):
    """Coordinate-major rows ``Z`` times a per-sample ``factor`` (B,): in place for numpy
    (callers pass arrays they own), out of place else. ``Z`` is a list of coordinates, or
    a numpy array of stacked ones (see :func:`_stacked`)."""
    if isinstance(Z, np.ndarray):
        Z *= factor
        return Z
    if isinstance(Z[0], np.ndarray):
        for Zk in Z:
            Zk *= factor
        return Z
    return [Zk * factor for Zk in Z]


def frame_rows(xp, arrays, present, convert=work_float):
    """The frame-defining rows of a batch as the row selection takes them.

    Coordinate-major and in new memory (:func:`select_rows` updates them in place), with
    the absent rows zero, and scaled per sample by a power of two that brings the
    largest entry (real or imaginary part) near 1 before any product is taken.

    Parameters
    ----------
    arrays : list of arrays of shape (B, m_i, d)
        The frame-defining fields, stacked in this order.
    present : bool array of shape (B, n), or None
        Present rows of every field (None: all).
    convert : callable, default=work_float
        ``convert(xp, rows)``: the rows in the dtype the frames are computed in.

    Returns
    -------
    Z : list of d arrays of shape (sum m_i, B)
        The scaled rows.
    weights : array of shape (sum m_i, B), or None
        1 at present rows, 0 at absent ones, in the working real dtype (None where
        ``present`` is None).
    inverse : array of shape (B,)
        The inverse of the scale factor (exact: a power of two).
    """
    Z = [convert(xp, xp.concat(coords, axis=0) if len(coords) > 1 else coords[0])
         for coords in zip(*(to_coordinate_major(xp, a) for a in arrays))]
    weights = None
    if present is not None:
        weights = present_major(xp, present, len(arrays), work_dtype(xp))
        Z = [Zk * weights for Zk in Z]
    factor, inverse = power_of_two_scale(xp, largest_entry(Z))
    return scale_rows(Z, factor), weights, inverse


def metric_scale(Z, signature):
    """Invariant scale of rows under a metric: ``|| Z eta Z^T ||_F`` per sample.

    Computed as ``sqrt(sum_kl eta_k eta_l G_kl^2)`` with the d x d Gram matrix
    ``G = Z^T Z``, in O(m d^2) instead of the O(m^2 d) of all pairwise products.
    """
    xp = get_namespace(Z[0])
    d = len(Z)
    total = 0.0
    for k in range(d):
        for m in range(k, d):
            G_kl = sum_rows(xp, Z[k] * Z[m])
            weight = signature[k] * signature[m] * (1.0 if k == m else 2.0)
            total = total + weight * G_kl * G_kl
    return xp.sqrt(xp.abs(total))


def det_small(M):
    """Determinants of a batch of k x k matrices given as nested lists of (B,) arrays.

    Explicit formulas for k <= 3 (these are the completions of d <= 4 groups and much
    faster than a batched LU of tiny matrices); a batched ``linalg.det`` beyond.
    """
    k = len(M)
    xp = get_namespace(M[0][0])
    if k == 1:
        return M[0][0]
    if k == 2:
        return M[0][0] * M[1][1] - M[0][1] * M[1][0]
    if k == 3:
        return (M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1])
                - M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0])
                + M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0]))
    stacked = xp.stack([xp.stack(row, axis=-1) for row in M], axis=-2)
    return xp.linalg.det(stacked)


def cofactor_vector(rows, d, like):
    """Generalized cross product of ``d - 1`` vectors (each a list of d (B,) arrays).

    ``C_k = (-1)^(d-1+k) det(rows with column k deleted)``, so that ``rows . C = 0`` and
    ``det([rows; C]) = |C|^2``; unit length when the rows are orthonormal.
    """
    xp = get_namespace(like)
    if d == 1:
        return [xp.ones_like(like)]
    C = []
    for k in range(d):
        minor = [[row[c] for c in range(d) if c != k] for row in rows]
        sign = -1.0 if (d - 1 + k) % 2 else 1.0
        C.append(sign * det_small(minor))
    return C


class Selection(NamedTuple):
    """Result of :func:`select_rows`, one entry per step (slot) ``j = 0..d-1``."""

    #: frame vectors, each a list of d arrays (B,); zero where nothing was chosen
    W: list
    #: number of chosen vectors per sample, (B,) int64
    rank: Any
    #: norms sqrt(|<v, v>|) of the chosen residuals, (B,) each (0 where none)
    norms: list
    #: signs <w, w> = +-1 of the chosen vectors (B,) each (+1 for definite metrics)
    signs: list
    #: index of the chosen row, (B,) int64 each (meaningless where nothing was chosen)
    index: list
    #: the invariant scale of the rows, (B,): max |z_i|^2, or ||Z eta Z^T||_F
    scale: Any = None
    #: with a :class:`BandedRule` only, ``(low, high)`` of shape (B,) each: the smallest
    #: norm fraction (residual norm over the largest eligible one) of a chosen row, and
    #: the largest of an eligible row passed over for a later one, over all steps
    #: (``inf`` and ``0`` where there is none). The choices are the same for every
    #: fraction in ``(high, low]``: these are where they change.
    breaks: Any = None


def select_rows(Z, *, tol, delta, rule="pivoted", floor=None, signature=None, scale=None):
    """Choose up to ``d`` frame vectors from the rows of ``Z``, invariantly.

    At each step every unchosen row's residual against the vectors chosen so far is
    known. Euclidean (or unitary) metric: rows whose squared residual exceeds
    ``tol**2 * max_i |z_i|^2`` are eligible. Indefinite metric ``signature`` (e.g.
    Minkowski ``(1, -1, -1, -1)``): rows with ``|<v, v>| > tol * ||Z eta Z^T||_F`` are
    eligible while no timelike vector is chosen, and the timelike eligible rows are
    preferred (see the module docstring, 'Rules'), so null residuals never become
    frame vectors; once a timelike vector is chosen the residuals lie in its definite
    complement and ``|<v, v>| > tol**2 * ||Z eta Z^T||_F`` suffices.
    ``"pivoted"`` takes the lowest-index row among those within a relative band
    ``delta`` of the largest ``|<v, v>|`` (QR with column pivoting, ties broken by
    index); ``"first"`` takes the lowest-index eligible row; ``"first_above"`` the
    lowest-index eligible row with ``|<v, v>| >= (1 - delta) ROW_FRACTION**2`` times the
    largest.
    The new frame vector is the chosen residual, re-orthogonalised once against the
    earlier vectors and scaled to ``|<w, w>| = 1``, so it is a positive multiple of the
    residual and every sign (and complex phase) is fixed invariantly.

    Parameters
    ----------
    Z : list of d arrays of shape (m, B), float64 or complex128
        Coordinate-major rows. Numpy arrays are overwritten (the residuals are updated
        in place), so pass arrays of your own.
    tol : float
        Relative rank tolerance (``sqrt(eps)`` by default upstream).
    delta : float
        Relative width of the pivoting tie band.
    rule : {"pivoted", "first", "first_above"}
    floor : array of shape (B,), optional
        Squared residuals at or below it are never eligible: the rounding level of
        rows computed by cancellation (centred points), or of Minkowski squares (then
        only while no timelike vector is chosen), where the relative rule alone would
        read noise as a direction.
    signature : tuple of +1/-1, optional
        Diagonal metric; None for the Euclidean (Hermitian for complex Z) product.
    scale : array of shape (B,), optional
        An indefinite metric's scale :func:`metric_scale` of ``Z``, where the caller
        has computed it already.

    Returns
    -------
    Selection
    """
    check_row_rule(rule)
    xp = get_namespace(Z[0])
    d = len(Z)
    m, B = Z[0].shape
    device = Z[0].device
    is_complex = isdtype(xp, Z[0].dtype, "complex floating")
    # numpy: two (m, B) buffers reused by every pass below (see dot_rows)
    work = (np.empty((m, B), Z[0].dtype), np.empty((m, B), Z[0].dtype)) if xp is np else None

    def square(v, buffers=None):
        return _square(xp, v, signature, buffers)

    # squared residuals at or above `relative` times the largest compete (not "first"):
    # pivoting is the fraction 1, "first_above" ROW_FRACTION, each with the tie band
    fraction = getattr(rule, "fraction", ROW_FRACTION)
    relative = (1.0 - delta) * (1.0 if rule == "pivoted" else fraction ** 2)
    banded = isinstance(rule, BandedRule)
    q = square(Z, work)
    # numpy, Euclidean, pivoted: classical Gram-Schmidt with downdated residual norms
    # q_i <- q_i - <z_i, w>^2 and the rows left as they are: about half the passes over
    # the data of updating every residual. Downdated norms carry errors of a few eps
    # |z_i|^2, so once the largest one is within `guard` of that level (a rank decision
    # near rounding: rank-deficient samples) the exact residuals take over.
    downdate = xp is np and signature is None and not is_complex and rule == "pivoted"
    if downdate:
        q = q.copy()  # its own buffer: `work` serves the overlaps
        guard = (1e3 * d * work_eps(xp)) * xp.max(q, axis=0)
    if signature is None:
        scale = xp.max(q, axis=0)
    elif scale is None:
        scale = metric_scale(Z, signature)
    infinity = xp.full((), np.inf, dtype=scale.dtype, device=device)   # no host copy

    def lowest_eligible(threshold):
        """|q| > threshold  <=>  |q| >= lowest_eligible(threshold)"""
        return xp.nextafter(threshold, infinity)

    above = lowest_eligible(tol * tol * scale)
    if signature is not None:
        # Minkowski squares: tol * s while a residual may be nearly null, tol^2 * s once
        # a timelike vector is chosen and the residuals lie in its definite complement
        # (where nothing is nearly null: no floor)
        above, above_definite = lowest_eligible(tol * scale), above
    if floor is not None:
        above = xp.maximum(above, lowest_eligible(floor))
    columns = xp.arange(B, device=device)
    rank = xp.zeros((B,), dtype=xp.int64, device=device)
    have_timelike = xp.zeros((B,), dtype=xp.bool, device=device)
    W, norms, signs, index = [], [], [], []
    if banded:
        rows = xp.arange(m, device=device)[:, None]
        low = xp.full((B,), np.inf, dtype=work_dtype(xp), device=device)
        high = xp.zeros((B,), dtype=work_dtype(xp), device=device)
    V = Z
    for step in range(d):
        if downdate and step and bool(np.any(xp.max(q, axis=0) < above + guard)):
            downdate = False  # exact residuals from here on: Z is ours to overwrite
            for w in W:
                V = subtract_scaled(V, dot_rows(V, w, work), w, work[1])
        if step and not downdate:
            q = square(V, work)
        # Chosen rows are never excluded explicitly: their residual is ~eps times their
        # norm after the update below, far under the eligibility threshold (downdated
        # norms of chosen rows are set to 0 instead).
        if signature is None:
            # the largest residual is eligible whenever any is: one comparison decides
            largest = xp.max(q, axis=0)
            found = largest >= above
            level = above if rule == "first" else xp.maximum(above, relative * largest)
            eligible = q >= level
            size = q
            candidate = q >= above if banded else None
        else:
            size = xp.abs(q)
            eligible = size >= xp.where(have_timelike, above_definite, above)
            timelike = eligible & (q > 0)
            prefer = ~have_timelike & xp.any(timelike, axis=0)
            eligible = xp.where(prefer, timelike, eligible)
            largest = xp.max(xp.where(eligible, size, 0.0), axis=0)
            candidate = eligible
            if rule != "first":
                eligible = eligible & (size >= relative * largest)
            found = xp.any(eligible, axis=0)
        if xp is np and not found.any():  # numpy only: torch avoids the host sync
            break
        chosen = first_true(xp, eligible)
        flat = chosen * B + columns
        if banded:
            low, high = _breaks(xp, size, candidate, largest, found, rows < chosen,
                                flat, low, high)
        v = _stacked(xp, [xp.take(xp.reshape(Vk, (-1,)), flat) for Vk in V])
        # Gram-Schmidt on the chosen row: a second pass over exact residuals, or both
        # passes over a row that the downdating left as it was
        w, norm, sign, q_v = _frame_vector(xp, v, W, signs, found, signature,
                                           passes=2 if downdate else 1)
        if signature is not None:
            have_timelike = have_timelike | (found & (q_v > 0))
        W.append(w)
        norms.append(norm)
        signs.append(sign)
        index.append(chosen)
        rank = rank + xp.astype(found, xp.int64)
        if step < d - 1 and downdate:
            overlap = dot_rows(V, w, work)
            q -= np.multiply(overlap, overlap, out=work[1])
            q.reshape(-1)[flat[found]] = 0.0
        elif step < d - 1:
            # q is spent: its buffer takes the overlaps, the other one the products
            scratch = None if work is None else work[1]
            overlap = dot_rows(V, _conj(xp, w), work, signature)
            scaled = w if signature is None else [sign * wk for wk in w]
            V = subtract_scaled(V, overlap, scaled, scratch)
    _pad_steps(xp, d, Z[0], W, norms, signs, index)
    return Selection(W, rank, norms, signs, index, scale,
                     (low, high) if banded else None)


def replay_rows(Z, index, rank, *, signature=None):
    """The :class:`Selection` of the rows ``Z`` with the choices of an earlier one.

    Only the arithmetic of :func:`select_rows` is done again: the residual of each
    chosen row against the frame vectors before it (the updates the selection applies
    to every row, applied to that row alone), its re-orthogonalisation and its
    normalisation. The decisions, which read all rows, are taken from ``index`` and
    ``rank``, so a frame decided on a host copy of the rows is recomputed on their device, and
    differentiably, in ``O(d^3)`` per sample instead of ``O(m d^2)``. The operations
    are those of a selection that does not downdate (torch, and numpy with a rule
    other than "pivoted"): its frame vectors come out the same bit for bit.

    Parameters
    ----------
    Z : list of d arrays of shape (m, B)
        Coordinate-major rows, as for :func:`select_rows` (left unchanged).
    index : array of shape (B, d)
        The rows chosen at each step by the earlier selection (its
        :attr:`Selection.index`, stacked).
    rank : array of shape (B,)
        Its number of chosen rows.
    signature : tuple of +1/-1, optional
        Diagonal metric, as for :func:`select_rows`.

    Returns
    -------
    Selection
        Without ``breaks``.
    """
    xp = get_namespace(Z[0])
    d, B = len(Z), Z[0].shape[1]
    device = Z[0].device
    rank = xp.asarray(rank, device=device)
    given = xp.asarray(index, device=device)
    q = _square(xp, Z, signature)
    scale = xp.max(q, axis=0) if signature is None else metric_scale(Z, signature)
    flat_rows = [xp.reshape(Zk, (-1,)) for Zk in Z]
    columns = xp.arange(B, device=device)
    W, norms, signs, index = [], [], [], []
    for step in range(d):
        found = rank > step
        where = given[:, step]
        v = [xp.take(Zk, where * B + columns) for Zk in flat_rows]
        for w, sign in zip(W, signs):      # the selection's update of every row
            overlap = dot_rows(v, _conj(xp, w), signature=signature)
            v = subtract_scaled(v, overlap, w if signature is None else
                                [sign * wk for wk in w])
        w, norm, sign, _ = _frame_vector(xp, _stacked(xp, v), W, signs, found, signature,
                                         passes=1)
        W.append(w)
        norms.append(norm)
        signs.append(sign)
        index.append(where)
    _pad_steps(xp, d, Z[0], W, norms, signs, index)
    return Selection(W, rank, norms, signs, index, scale)


def _stacked(xp, v):
    """The coordinates ``v`` (d arrays (B,)) of one vector per sample, as
    :func:`_frame_vector` takes them: numpy stacks them, (d, B), so that each of its
    steps is one call over all coordinates instead of one per coordinate (every numpy
    call hands the GIL over between joblib's threads); torch keeps the list, since
    autograd through row views of a stacked tensor fills a gradient of the whole stack
    for every row."""
    return np.stack(v) if xp is np else v


def _frame_vector(xp, v, W, signs, found, signature, passes):
    """The frame vector of a chosen residual v (:func:`_stacked` coordinates, (B,)
    each): ``passes`` rounds of re-orthogonalisation against the earlier vectors ``W``,
    then ``|<w, w>| = 1``.

    Returns ``(w, norm, sign, q)``: zero ``w`` (coordinates like ``v``) and ``norm``
    where not ``found``, the sign ``<w, w>`` and ``q = <v, v>`` of the
    re-orthogonalised residual."""
    for _ in range(passes):
        for w, sign in zip(W, signs):
            overlap = dot_rows(v, _conj(xp, w), signature=signature) * sign
            v = subtract_scaled(v, overlap, w)
    q_v = _square(xp, v, signature)
    real_zero = xp.zeros_like(q_v)
    # where nothing was chosen q_v can be exactly 0, whose sqrt has an infinite
    # derivative: 0 times it in the unused branch of `where` is a NaN gradient
    norm = xp.sqrt(xp.where(found, xp.abs(q_v), 1.0))
    inverse = xp.where(found, 1.0 / norm, real_zero)
    w = scale_rows(v, inverse)
    sign = (xp.ones_like(q_v) if signature is None
            else xp.where(q_v < 0, -1.0, 1.0))
    return w, xp.where(found, norm, real_zero), sign, q_v


def _pad_steps(xp, d, like, W, norms, signs, index):
    """The frame vectors ``W`` (:func:`_stacked` coordinates) as lists of d coordinates
    (B,), and the slots after the last step taken (up to ``d``) filled with zero
    vectors, in place; ``like`` is a row array (m, B) of the selection."""
    W[:] = [list(w) for w in W]
    B = like.shape[-1]
    zero = xp.zeros((B,), dtype=like.dtype, device=like.device)
    real_zero = xp.zeros((B,), dtype=work_dtype(xp), device=like.device)
    while len(W) < d:
        W.append([zero] * d)
        norms.append(real_zero)
        signs.append(xp.ones((B,), dtype=work_dtype(xp), device=like.device))
        index.append(xp.zeros((B,), dtype=xp.int64, device=like.device))


def _breaks(xp, size, candidate, largest, found, before, flat, low, high):
    """One step's update of :attr:`Selection.breaks`: ``size`` (m, B) the squared
    residuals that compete, ``candidate`` those above the rank tolerance, ``largest``
    (B,) the largest candidate, ``before`` (m, B) the rows ahead of the chosen one."""
    denominator = xp.where(found, largest, 1.0)
    chosen = xp.take(xp.reshape(size, (-1,)), flat) / denominator
    passed = xp.max(xp.where(candidate & before, size, 0.0), axis=0) / denominator
    inf = xp.asarray(np.inf, dtype=low.dtype, device=low.device)
    # the unused branches of `where` take sqrt(1), not sqrt of a zero residual: the
    # infinite derivative of sqrt at 0 made a NaN gradient through them (rank-deficient
    # clouds under tie_band: a step that finds no vector, as for `high` where no row
    # passed over)
    low = xp.minimum(low, xp.where(found, xp.sqrt(xp.where(found, chosen, 1.0)), inf))
    passed_any = found & (passed > 0)
    high = xp.maximum(high, xp.where(passed_any,
                                     xp.sqrt(xp.where(passed_any, passed, 1.0)), 0.0))
    return low, high
