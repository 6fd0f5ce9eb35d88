"""Weighted orders near ties of the canonical ranking of S_n x G (``tie_band``).

**Where S_n x G frames jump.** Their canonical order of the rows sorts them by an
invariant key, the squared norm of the first frame-defining row (its quantised Gram
diagonal, :mod:`~mfa_sklearn.groups.permutation._invariant_graph`), ties broken by
further keys. Where two rows' keys cross, the order swaps, the backbone sees its rows in
another order, and the frame-averaged model jumps.

**Weights over orders.** Let ``y_i = |z_i|^2 / s`` be the key of row ``i`` over the
sample's invariant scale ``s`` (the largest squared norm of its frame-defining rows) and
``b = beta f`` the band of keys, for ``tie_band = beta`` and the row fraction ``f``
(:data:`~mfa_sklearn.groups._selection.ROW_FRACTION`: for ``beta = 0.2``, keys within
0.02 of each other). Every order ``sigma`` of the rows gets the weight

    ``W(sigma) = prod_p phi(y_sigma(p+1) - y_sigma(p))``, normalised to sum 1,

with ``phi(D) = 1`` for ``D >= 0``, ``s(1 + D / b)`` for ``-b < D < 0`` and 0 below,
``s(u) = 3u^2 - 2u^3``: an order loses weight for every step down between consecutive
rows, and has none as soon as one step goes down by ``b`` or more. So:

* Where all keys are more than ``b`` apart, only the sorted order, the plain canonical
  order, has weight: one frame, as without the band.
* Two keys ``g < b`` apart: the swapped order has weight ``s(1 - g/b) / (1 + s(1 -
  g/b))``, which is 1/2 at the tie and goes to 0, smoothly, at the band's edge.
* Chains (three or more rows, consecutive keys within ``b``; clusters) get every order
  of the cluster whose steps down are all smaller than ``b``, weighted by the same
  product. An order that moves a row past a gap of ``b`` or more has weight 0, so
  clusters never mix, and a row joining a cluster (its gap reaching ``b``) adds orders
  of weight 0 only.

``W`` reads the keys of the rows, not their canonical positions: relabelling the rows
relabels the orders and keeps their weights. The weighted set of orders is therefore
the same on both sides of every swap of the canonical order, whatever decided it (a
quantisation bin, a secondary key, colour refinement), and the averaged model is
continuous across swaps of near-tied keys, also in chains; it is exactly equivariant for
every weight, as the weights are functions of invariant keys. Secondary keys (other
fields, charges) are not weighted: keys within the band are averaged over both orders
whatever the secondary keys say, and rows whose keys tie exactly (symmetric clouds) get
equal weights.

**Frames.** The orders act on the canonical form ``c = h^{-1} . x`` of the plain S_n x G
frame ``h``, whose rows are in canonical order: element ``j`` is the order ``sigma_j`` of
``c``'s rows, followed by the G-frame ``k_j`` of the rows in that order (with the
band's weighted G-frames, :func:`~mfa_sklearn.groups._ensemble.banded_frame`, and
``n_frames`` ensembles), so that the backbone sees the rows in order ``sigma_j``.
Outputs are mapped back by ``k_j``, their rows put back by ``sigma_j^{-1}``, averaged with
the weights, and mapped back by ``h`` (which averages over a finite stabilizer of ``c``).
Since ``c`` is invariant, so is the weighted average before ``h``, and the model is
exactly equivariant (:class:`RankedFrame`).

**Cost.** Every sample has room for :data:`MAX_TIE_ORDERS` orders, a fixed number of
frame elements (``MAX_TIE_ORDERS`` times the elements of a weighted G-frame ensemble),
so that batches concatenate. The G-frames of order ``j`` are computed for the samples
that have ``j + 1`` orders or more only, slots that no sample of the batch uses reuse
order 0's canonical inputs, and elements of weight 0 get no backbone call; the
canonical inputs of the used slots are computed for every sample. A sample whose
clusters need more orders than that (five rows of equal norm: 120) is an error that
names it: lower ``tie_band``.
"""

import itertools

import numpy as np

from ._base import select, to_numpy, weighted_mean
from ._ensemble import ComposedFrame, banded_frame, canonical_fields, ramp, reordered_frames
from ._namespace import get_namespace, take_rows
from ._selection import ROW_FRACTION

#: orders per sample that weighted S_n x G frames have room for (every order of a
#: cluster of 4 near-tied rows)
MAX_TIE_ORDERS = 24


def ranking_keys(xp, points, vectors):
    """Keys ``y_i = |z_i|^2 / s`` (B, n) of the first frame-defining field's rows, over
    the largest squared norm ``s`` of all frame-defining rows (0 where all are 0)."""
    rows = list(points) + list(vectors)
    # rows near 1e154 would overflow their squares and rows near 1e-154 underflow:
    # divide by the sample's largest entry first (the ratios do not change)
    largest = xp.max(xp.stack([xp.max(xp.abs(a), axis=(1, 2)) for a in rows]), axis=0)
    unit = xp.where(largest > 0, largest, 1.0)[:, None, None]
    squares = [xp.sum((a / unit) ** 2, axis=-1) for a in rows]
    scale = squares[0]
    for sq in squares[1:]:
        scale = xp.maximum(scale, sq)
    scale = xp.max(scale, axis=1)
    return squares[0] / xp.where(scale > 0, scale, 1.0)[:, None]


def _step_weights(xp, down, band):
    """``phi`` of the steps ``down`` between consecutive keys (see the module
    docstring): 1 for steps up, falling smoothly to 0 at steps down by ``band``."""
    return ramp(xp, 1.0 + down / band)


def near_tie_orders(keys, present, band):
    """Orders of the rows of each sample whose weight ``W`` is not 0.

    Parameters
    ----------
    keys : ndarray of shape (B, n)
        Keys of the rows, sorted (the present rows' ascending, absent rows last).
    present : ndarray of shape (B, n) of bool or None
        Present rows (first in canonical order); absent rows never move.
    band : float
        The band ``b`` of keys.

    Returns
    -------
    perms : ndarray of shape (B, MAX_TIE_ORDERS, n), int64
        Orders of the positions in ``keys``; order 0 is the identity (the sorted order),
        unused slots too.
    count : ndarray of shape (B,), int64
        Orders of nonzero weight per sample.
    """
    B, n = keys.shape
    near = np.abs(np.diff(keys, axis=1)) < band
    if present is not None:
        near &= present[:, 1:]     # absent rows come last: both rows present
    # clusters: maximal runs of near-tied neighbours; the orders are expanded cluster
    # by cluster (the c-th of every sample at once), as flat (sample, order) rows
    new = near.copy()
    new[:, 1:] &= ~near[:, :-1]
    remaining = np.zeros((B, n), np.int64)     # near gaps in a row from gap p on
    for p in range(n - 2, -1, -1):
        remaining[:, p] = np.where(near[:, p], remaining[:, p + 1] + 1, 0)
    rank = np.cumsum(new, axis=1)
    n_clusters = rank[:, -1] if n > 1 else np.zeros(B, np.int64)
    # A cluster of m rows has at least F(m + 1) orders of nonzero weight (Fibonacci:
    # any set of disjoint swaps of neighbours takes steps down smaller than b only),
    # more than MAX_TIE_ORDERS from m = 8 on: refuse before listing m! orders.
    longest = remaining.max(axis=1) + 1 if n > 1 else np.ones(B, np.int64)
    if B and longest.max() >= _LONGEST_CLUSTER:
        _too_many_orders(np.flatnonzero(longest >= _LONGEST_CLUSTER), band,
                         f"at least {_fibonacci(int(longest.max()) + 1)}")
    sample = np.arange(B)
    perms = np.broadcast_to(np.arange(n), (B, n)).copy()
    count = np.ones(B, np.int64)     # the identity order alone, without clusters
    for c in range(int(n_clusters.max()) if B else 0):
        has = n_clusters > c
        start = np.argmax(new & (rank == c + 1), axis=1)
        length = np.where(has, remaining[np.arange(B), start] + 1, 0)
        for m in np.unique(length[has]):
            table = np.array(list(itertools.permutations(range(m))))  # identity first
            chosen = length[sample] == m
            rows, keep = np.flatnonzero(chosen), np.flatnonzero(~chosen)
            grown = np.repeat(perms[rows], len(table), axis=0)
            first = np.repeat(start[sample[rows]], len(table))[:, None]
            source = first + np.tile(table, (len(rows), 1))
            np.put_along_axis(grown, first + np.arange(m),
                              np.take_along_axis(grown, source, axis=1), axis=1)
            sample = np.concatenate([sample[keep], np.repeat(sample[rows], len(table))])
            perms = np.concatenate([perms[keep], grown])
            # back in sample order, each sample's identity first
            order = np.argsort(sample, kind="stable")
            sample, perms = sample[order], perms[order]
        # the weights are products over the clusters (steps between clusters go up by b
        # or more): orders of weight 0 go now, and too many orders stop the listing
        if len(perms) > B:
            weight = _order_weights(np, keys[sample], perms,
                                    None if present is None else present[sample], band)
            nonzero = weight > 0
            sample, perms = sample[nonzero], perms[nonzero]
        count = np.bincount(sample, minlength=B)
        if B and count.max() > MAX_TIE_ORDERS:
            _too_many_orders(np.flatnonzero(count > MAX_TIE_ORDERS), band,
                             f"up to {int(count.max())}")
    slot = np.arange(len(sample)) - np.searchsorted(sample, sample)
    out = np.broadcast_to(np.arange(n), (B, MAX_TIE_ORDERS, n)).copy()
    out[sample, slot] = perms
    return out, count


def _fibonacci(k):
    a, b = 0, 1
    for _ in range(k):
        a, b = b, a + b
    return a


#: clusters of this many near-tied rows have more than MAX_TIE_ORDERS orders of weight
#: (at least F(m + 1), see near_tie_orders): 8 for 24
_LONGEST_CLUSTER = next(m for m in itertools.count(1) if _fibonacci(m + 1) > MAX_TIE_ORDERS)


def _too_many_orders(samples, band, how_many):
    raise ValueError(
        f"tie_band: samples {samples[:10].tolist()} have {how_many} orders of near-tied "
        f"rows (rows whose ranking keys lie within {band:g} of each other, in chains), "
        f"more than the {MAX_TIE_ORDERS} that weighted S_n x G frames have room for; use "
        "a smaller tie_band")


def _order_weights(xp, keys, perms, present, band):
    """Unnormalised ``W`` of orders ``perms`` (B, M, n) of rows with ``keys`` (B, n)."""
    B, M, n = perms.shape if perms.ndim == 3 else (perms.shape[0], 1, perms.shape[1])
    flat = xp.reshape(perms, (B, M * n))
    ordered = xp.reshape(take_rows(xp, keys[..., None], flat), (B, M, n))
    steps = _step_weights(xp, ordered[..., 1:] - ordered[..., :-1], band)
    if present is not None:   # absent rows (last, never moved) take no steps
        both = xp.asarray(present[:, None, 1:], device=steps.device)
        steps = xp.where(both, steps, 1.0)
    weight = xp.prod(steps, axis=-1)
    return weight if perms.ndim == 3 else weight[:, 0]


def ranked_frame(group, frame_of, points, vectors, present, n_frames, *, rule, tol,
                 tie_band):
    """Weighted frames of S_n x G near ties of its canonical ranking (see the module
    docstring), with the band's weighted G-frames for each order.

    Parameters
    ----------
    group : PermutationProductGroup
    frame_of : callable
        ``frame_of(points, vectors, present)`` -> the plain S_n x G frame of a batch.
    points, vectors : list of arrays of shape (B, n, d)
    present : bool array of shape (B, n) or None
    n_frames : int
        Ensemble members per order (fixed re-orderings of the ordered rows).
    rule : str
        The row rule of G (``"first_above"``).
    tol : float or None
        Rank tolerance of G.
    tie_band : float
        The band ``beta`` in (0, 1).

    Returns
    -------
    RankedFrame
    """
    outer = frame_of(points, vectors, present)
    cpoints, cvectors, cpresent = canonical_fields(outer, points, vectors, present)
    xp = get_namespace(*(cpoints + cvectors))
    band = tie_band * ROW_FRACTION
    keys = ranking_keys(xp, cpoints, cvectors)
    host_present = None if cpresent is None else to_numpy(cpresent)
    # Colour refinement's canonical order sorts the rows by key; nauty's labeling
    # (symmetric samples, twin rows) need not, and an order with a step down of b or
    # more has weight 0, the plain order too (weights 0/0: NaN outputs). The orders are
    # listed from the rows sorted by key (absent rows stay last); W reads the keys, not
    # the positions, so the weighted set of orders is the same.
    host_keys = to_numpy(keys)
    by_key = np.argsort(host_keys if host_present is None else
                        np.where(host_present, host_keys, np.inf), axis=1, kind="stable")
    perms, count = near_tie_orders(np.take_along_axis(host_keys, by_key, axis=1),
                                   host_present, band)
    perms = np.take_along_axis(np.broadcast_to(by_key[:, None, :], perms.shape), perms,
                               axis=2)
    device = keys.device
    perms_x = xp.asarray(perms, device=device)
    weights = _order_weights(xp, keys, perms_x, host_present, band)
    slots = xp.asarray(np.arange(MAX_TIE_ORDERS)[None, :] < count[:, None], device=device)
    weights = xp.where(slots, weights, 0.0)
    weights = weights / xp.sum(weights, axis=1, keepdims=True)
    factor = group.ordered_factor

    def factor_frame(p, v, rows, rule=rule):
        return factor.frame(p or None, v or None, present=rows, rule=rule, tol=tol)

    def banded(p, v, rows):
        return banded_frame(factor_frame, p, v, rows, tie_band)

    def member(index, order):
        def move(a):
            return take_rows(xp, select(a, index), order)
        return reordered_frames(banded, [move(a) for a in cpoints],
                                 [move(a) for a in cvectors],
                                 None if cpresent is None else move(cpresent), n_frames)

    B = len(count)
    everyone = np.arange(B)
    base = member(everyone, perms_x[:, 0])
    members = [base]
    for j in range(1, MAX_TIE_ORDERS):
        need = np.flatnonzero(count > j)
        if not len(need):
            members.append(base)
            continue
        index = xp.asarray(need, device=device)
        sub = member(need, xp.take(perms_x[:, j], index, axis=0))
        if len(need) == B:
            members.append(sub)
            continue
        rest = np.flatnonzero(count <= j)
        # the samples' frames back in batch order: the others keep order 0's (weight 0)
        back = np.argsort(np.concatenate([rest, need]))
        members.append(type(base).concat([base[rest], sub])[back])
    return RankedFrame(outer, perms_x, members, weights)


class RankedFrame(ComposedFrame):
    """Weighted orders of the canonical form of an S_n x G frame (see the module
    docstring): ``h . sum_j W_j P_j^T k_j . y_j`` for the backbone outputs ``y_j`` on
    ``k_j^{-1} . P_j c``, where ``c = h^{-1} . x``.

    Parameters
    ----------
    outer : Frame
        The plain S_n x G frames ``h`` (one backbone call per sample).
    perms : array of shape (B, M, n), int
        Order ``j`` of the canonical rows, per sample.
    members : list of M Frame
        G-frames of the canonical rows in each order (each with one or more elements).
    weights : array of shape (B, M)
        ``W`` of the orders, summing to 1 (0 for unused slots).
    """

    def __init__(self, outer, perms, members, weights):
        super().__init__(outer, None)
        self.perms, self.members, self.weights = perms, list(members), weights

    @property
    def H(self):
        """The members' G-frame elements (B, K, d, d), relative to the canonical form."""
        xp = get_namespace(self.weights)
        return xp.concat([m.H for m in self.members], axis=1)

    @property
    def n_calls(self):
        return sum(m.n_calls for m in self.members)

    @property
    def element_weights(self):
        """Weights (B, K): each order's ``W`` times its member's element weights."""
        xp = get_namespace(self.weights)
        parts = []
        for j, m in enumerate(self.members):
            inner = (m.element_weights if m.element_weights is not None else
                     xp.full((m.n_samples, m.n_calls), 1.0 / m.n_calls, dtype=xp.float64,
                             device=self.weights.device))
            parts.append(inner * self.weights[:, j:j + 1])
        return xp.concat(parts, axis=1)

    @property
    def diagnostics(self):
        """The outer frame's diagnostics, its conditioning the worst of every order's
        G-frames, and ``frame_size`` the elements of nonzero weight."""
        xp = get_namespace(self.weights)
        values = dict(self.outer.diagnostics)
        if values.get("conditioning") is not None:
            for m in self.members:
                inner = m.diagnostics.get("conditioning")
                if inner is not None:
                    values["conditioning"] = xp.maximum(values["conditioning"], inner)
        values["frame_size"] = self.size
        return values

    def _unused(self, j):
        """Whether slot ``j`` is unused by every sample: :func:`ranked_frame` fills such
        slots with order 0's frames themselves (identity order, weight 0)."""
        return j > 0 and self.members[j] is self.members[0]

    def _slices(self, y):
        """``y`` (B, K, ...) split into the members' slices."""
        start = 0
        for j, m in enumerate(self.members):
            yield j, m, y[:, start:start + m.n_calls]
            start += m.n_calls

    def _move(self, c, j, kind, inverse=False):
        """Canonical rows ``c`` (B, n, ...) (edges: (B, n, n, w)) in order ``j`` (or
        back from it)."""
        xp = get_namespace(c)
        order = self.perms[:, j]
        if inverse:
            order = _inverse(xp, order)
        moved = take_rows(xp, c, order)
        if kind == "edge":
            moved = xp.permute_dims(take_rows(xp, xp.permute_dims(moved, (0, 2, 1, 3)),
                                              order), (0, 2, 1, 3))
        return moved

    def to_canonical(self, x, kind="point"):
        """``k_j^{-1} . P_j h^{-1} . x`` for every order's elements, (B, K, n, w)."""
        xp = get_namespace(x)
        c = self.outer.to_canonical(x, kind)[:, 0]
        parts = []
        for j, m in enumerate(self.members):
            if self._unused(j):
                parts.append(parts[0])
                continue
            moved = self._move(c, j, kind)
            if kind in ("point", "vector"):
                parts.append(m.to_canonical(moved, kind))
            else:
                parts.append(xp.broadcast_to(moved[:, None], (moved.shape[0], m.n_calls)
                                             + tuple(moved.shape[1:])))
        return xp.concat(parts, axis=1)

    def from_canonical(self, y, kind="point"):
        """Outputs (B, K, ...) back through each order's G-frames (weighted), their rows
        back in canonical order, weighted by ``W``, then back through ``h``."""
        xp = get_namespace(y)
        total = None
        for j, m, part in self._slices(y):
            if self._unused(j):
                continue
            out = m.from_canonical(part, kind) if kind in ("point", "vector") else (
                m.average(part))
            out = self._move(out, j, kind, inverse=True)
            w = xp.reshape(xp.astype(self.weights[:, j], out.dtype),
                           (-1,) + (1,) * (out.ndim - 1))
            total = out * w if total is None else total + out * w
        return self.outer.from_canonical(total[:, None], kind)

    def average(self, y):
        """Invariant outputs (B, K, ...), weighted."""
        return weighted_mean(get_namespace(y), y, self.element_weights)

    def snap(self, canon, offset=0):
        """Each order's G-frames snap their own canonical rows."""
        xp = get_namespace(canon)
        return xp.concat([m.snap(part, offset) for _, m, part in self._slices(canon)],
                         axis=1)

    @classmethod
    def _concat(cls, frames):
        """Concatenate the frames of consecutive batches."""
        xp = get_namespace(frames[0].weights)
        members = [type(group[0]).concat(list(group))
                   for group in zip(*(f.members for f in frames))]
        return cls(type(frames[0].outer).concat([f.outer for f in frames]),
                   xp.concat([f.perms for f in frames], axis=0), members,
                   xp.concat([f.weights for f in frames], axis=0))

    def __getitem__(self, index):
        """The frames of a selection of samples."""
        return type(self)(self.outer[index], select(self.perms, index),
                          [m[index] for m in self.members], select(self.weights, index))


def _inverse(xp, order):
    """Inverse permutations of ``order`` (B, n): ``out[b, order[b, i]] = i``."""
    B, n = order.shape
    flat = xp.reshape(order + xp.reshape(xp.arange(B, dtype=order.dtype,
                                                    device=order.device) * n, (B, 1)),
                      (-1,))
    positions = xp.reshape(xp.broadcast_to(xp.arange(n, dtype=order.dtype,
                                                     device=order.device), (B, n)), (-1,))
    if isinstance(order, np.ndarray):
        inverse = np.empty(B * n, dtype=order.dtype)
        inverse[flat] = positions
    else:
        inverse = xp.zeros((B * n,), dtype=order.dtype, device=order.device)
        inverse = inverse.index_put((flat,), positions)
    return xp.reshape(inverse, (B, n))
