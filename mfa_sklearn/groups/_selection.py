"""Invariant row selection and the small dense kernels the frames share.

Everything here works on *coordinate-major* data: a list of ``d`` arrays, entry ``k``
holding coordinate ``k`` of every row of every sample, shaped ``(m, B)``. Elementwise
arithmetic on these long contiguous arrays is several times faster than reductions over
a short trailing axis of size ``d``, and it is plain array-API code, so numpy and torch
share it. Loops run over at most ``d`` items.
"""

import numpy as np

from ._namespace import first_true, get_namespace, subtract_inplace


def to_coordinate_major(xp, rows):
    """(B, m, d) -> list of d contiguous arrays of shape (m, B); new memory for numpy."""
    B, m, d = rows.shape
    permuted = xp.permute_dims(rows, (2, 1, 0))
    if xp is np:
        packed = np.array(permuted, order="C", copy=True)
    else:  # reshape of a permuted view copies into C order
        packed = xp.reshape(xp.reshape(permuted, (-1,)), (d, m, B))
    return [packed[k] for k in range(d)]


def dot_rows(u, w, work=None):
    """Per-row products of coordinate-major ``u`` (entries (m, B)) with ``w`` (entries
    (B,) or (m, B)).

    For numpy the sum accumulates in place, in the buffers ``work = (result, scratch)``
    when given: fresh arrays of a chunk's size are page-faulted in on every allocation,
    which made these passes several times slower. Torch stays out of place for autograd.
    """
    if isinstance(u[0], np.ndarray):
        if work is None:
            shape = np.broadcast_shapes(u[0].shape, w[0].shape)
            work = (np.empty(shape), np.empty(shape))
        acc, scratch = work
        np.multiply(u[0], w[0], out=acc)
        for uk, wk in zip(u[1:], w[1:]):
            acc += np.multiply(uk, wk, out=scratch)
        return acc
    acc = u[0] * w[0]
    for uk, wk in zip(u[1:], w[1:]):
        acc = acc + uk * wk
    return acc


def subtract_scaled(V, overlap, w, scratch=None):
    """``V_k - overlap * w_k`` for every coordinate: in place for numpy (the caller owns
    ``V``; ``scratch`` is an optional buffer, see :func:`dot_rows`), out of place else."""
    if isinstance(overlap, np.ndarray):
        scratch = np.empty_like(overlap) if scratch is None else scratch
        return [subtract_inplace(Vk, np.multiply(overlap, wk, out=scratch))
                for Vk, wk in zip(V, w)]
    return [Vk - overlap * wk for Vk, wk in zip(V, w)]


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


def select_rows(Z, *, tol, delta, rule="pivoted", floor=None):
    """Choose up to ``d`` orthonormal frame vectors from the rows of ``Z``, invariantly.

    At each step every unchosen row's residual against the vectors chosen so far is
    known; rows whose squared residual exceeds ``tol**2 * max_i |z_i|^2`` are eligible.
    ``"pivoted"`` takes the lowest-index row among those within a relative band
    ``delta`` of the largest residual (QR with column pivoting, ties broken by index);
    ``"first"`` takes the lowest-index eligible row. The new frame vector is the chosen
    residual, re-orthogonalised once against the earlier vectors and normalised, so it
    is a positive multiple of the residual and every sign is fixed invariantly.

    Parameters
    ----------
    Z : list of d arrays of shape (m, B), float64
        Coordinate-major rows. Numpy arrays are overwritten (the residuals are updated
        in place), so pass arrays of your own.
    tol : float
        Relative rank tolerance (``sqrt(eps)`` by default upstream).
    delta : float
        Relative width of the pivoting tie band.
    rule : {"pivoted", "first"}
    floor : array of shape (B,), optional
        Squared residuals at or below it are never eligible: the rounding level of
        rows computed by cancellation (centred points), where the relative rule alone
        would read noise as a direction.

    Returns
    -------
    W : list of d frame vectors, each a list of d arrays of shape (B,)
        Zero vectors in the slots beyond each sample's rank.
    rank : array of shape (B,), int64
    norms : list of d arrays of shape (B,)
        Norms of the chosen residuals (0 beyond the rank).
    """
    if rule not in ("pivoted", "first"):
        raise ValueError(f"rule must be 'pivoted' or 'first'; got {rule!r}")
    xp = get_namespace(Z[0])
    d = len(Z)
    m, B = Z[0].shape
    # numpy: two (m, B) buffers reused by every pass below (see dot_rows)
    work = (np.empty((m, B)), np.empty((m, B))) if xp is np else None
    q = dot_rows(Z, Z, work)
    threshold = (tol * tol) * xp.max(q, axis=0)
    if floor is not None:
        threshold = xp.maximum(threshold, floor)
    above = xp.nextafter(threshold, xp.asarray(np.inf, dtype=threshold.dtype,
                                                device=threshold.device))  # q > thr <=> q >= above
    columns = xp.arange(B, device=Z[0].device)
    zero = xp.zeros((B,), dtype=Z[0].dtype, device=Z[0].device)
    rank = xp.zeros((B,), dtype=xp.int64, device=Z[0].device)
    W, norms = [], []
    V = Z
    for step in range(d):
        if step:
            q = dot_rows(V, V, work)
        # Chosen rows are never excluded explicitly: their residual is ~eps times their
        # norm after the update below, far under the tol**2 = eps threshold.
        if rule == "pivoted":
            eligible = q >= xp.maximum(above, (1.0 - delta) * xp.max(q, axis=0))
        else:
            eligible = q >= above
        found = xp.any(eligible, axis=0)
        if xp is np and not found.any():  # numpy only: torch avoids the host sync
            break
        flat = first_true(xp, eligible) * B + columns
        v = [xp.take(xp.reshape(Vk, (-1,)), flat) for Vk in V]
        for w in W:
            overlap = dot_rows(v, w)
            v = [vk - overlap * wk for vk, wk in zip(v, w)]
        norm = xp.sqrt(dot_rows(v, v))
        inverse = xp.where(found, 1.0 / xp.where(found, norm, 1.0), zero)
        w = [vk * inverse for vk in v]
        W.append(w)
        norms.append(xp.where(found, norm, zero))
        rank = rank + xp.astype(found, xp.int64)
        if step < d - 1:
            # q is spent: its buffer takes the overlaps, the other one the products
            scratch = None if work is None else work[1]
            V = subtract_scaled(V, dot_rows(V, w, work), w, scratch)
    while len(W) < d:
        W.append([zero] * d)
        norms.append(zero)
    return W, rank, norms
