"""Batched exact sorting, ranking and class averaging of rows.

Every decision a permutation frame makes is an order or an equality of rows, taken
exactly (no tolerance) and vectorized over a batch of ``B`` samples of ``n`` rows:

* **Lexicographic order.** :func:`lexsort_rows` sorts the rows ``(B, n, c)`` of each
  sample by their columns, first column most significant, with one stable argsort per
  column from the last to the first (a batched radix sort). The order is unique up to
  equal rows, so it is a canonical order of the set of rows: permuting the rows of the
  input permutes the argsort and leaves the sorted rows unchanged.
* **Ties.** Equal consecutive rows of the sorted sample form *runs* (:func:`tie_runs`). A
  run of ``m`` equal rows is fixed by its ``m!`` internal permutations, so a sample's
  stabilizer in S_n is the product of the symmetric groups of its runs, of size
  ``prod_k m_k!`` (:func:`tie_sizes`), reported and never enumerated.
* **Reynolds averaging.** The exact average of a per-row output ``y`` over a stabilizer
  ``S`` that acts by permutations, ``R(y) = mean_{s in S} P_s y``, replaces each row by
  the mean over its orbit (orbit-stabilizer theorem). :func:`block_mean` computes it
  from class labels: runs of ties, or the first-occurrence labels of orbits and orbitals
  (:func:`first_occurrence`, :func:`pair_labels`). One backbone call on the canonical
  input plus this mean is the minimal frame average ``h . R(Phi(c(x)))`` of Lin et al.
* **Packing.** :func:`pack` packs small non-negative integer columns into as few int64
  columns as fit, in an order-preserving way, so that the sorts above touch fewer
  columns.

References
----------
Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More Symmetries and
Efficiency. ICML 2024, arXiv:2406.07598.
"""

import numpy as np

from .._namespace import class_sums, flat_index, take_rows


def lexsort_rows(keys):
    """Batched lexicographic argsort of rows: first column most significant, stable.

    Parameters
    ----------
    keys : ndarray of shape (B, n, c)

    Returns
    -------
    order : ndarray of shape (B, n), int64
        ``keys[b, order[b]]`` is sorted lexicographically.
    """
    B, n, c = keys.shape
    order = np.broadcast_to(np.arange(n), (B, n)).copy()
    columns = np.moveaxis(keys, 2, 0)
    if c >= 8:   # many columns (signatures): one contiguous copy beats strided reads
        columns = np.ascontiguousarray(columns)
    for col in range(c - 1, -1, -1):   # least significant column first
        column = take_rows(np, columns[col], order)
        order = take_rows(np, order, np.argsort(column, axis=1, kind="stable"))
    return order


def _run_starts(new):
    """Per position of sorted rows (B, m), the position where its run starts, from the
    flags ``new`` (B, m) that mark the first row of every run."""
    return np.maximum.accumulate(np.where(new, np.arange(new.shape[1]), 0), axis=1)


def tie_runs(sorted_keys):
    """Run labels of equal consecutive rows of sorted keys (B, n, c): (B, n) int64,
    0, 0, 1, 2, 2, ...; a row equal to the previous one continues its run."""
    B, n = sorted_keys.shape[:2]
    new = np.ones((B, n), dtype=bool)
    new[:, 1:] = np.any(sorted_keys[:, 1:] != sorted_keys[:, :-1], axis=2)
    return np.cumsum(new, axis=1) - 1


def ranks(sorted_keys, order):
    """Dense ranks (B, n) of rows whose sorted keys (B, n, c) come in ``order`` (B, n),
    and the run labels of the sorted keys."""
    runs = tie_runs(sorted_keys)
    rank = np.empty_like(runs)
    np.put_along_axis(rank, order, runs, axis=1)
    return rank, runs


def dense_rank(keys):
    """Lexicographic dense rank of each row among the rows of its sample: (B, n) int64.

    Equal rows get equal ranks; the ranks are invariant under row permutations."""
    return dense_rank_order(keys)[0]


def _inverse_permutation(order):
    """Per sample, the inverse of the permutations ``order`` (B, n): ``out[b, order[b,
    i]] = i``, by one flat scatter."""
    B, n = order.shape
    inverse = np.empty(B * n, dtype=np.int64)
    inverse[flat_index(np, order, n)] = np.tile(np.arange(n, dtype=np.int64), B)
    return inverse.reshape(B, n)


def dense_rank_order(keys, present=None):
    """Dense ranks of rows (B, n, c), as :func:`dense_rank`, with an order that sorts
    them and whether a sample's rows all differ.

    ``present`` (B, n), optional: the keys of the other rows count as ``+inf`` in
    every column, and only the present rows are told apart (padded batches, see
    :func:`present_order`): ``order`` lists the absent rows last, in increasing
    index order, and ``distinct`` says whether the present rows all differ.

    Returns
    -------
    rank : ndarray of shape (B, n), int64
        Lexicographic dense rank of each row among the rows of its sample.
    order : ndarray of shape (B, n), int64
        ``rank[b, order[b]]`` is non-decreasing; unique where ``distinct``.
    distinct : ndarray of shape (B,) of bool
        Whether all rows of a sample differ (ranks ``0..n-1``).

    Notes
    -----
    The first column alone orders the samples where it has no ties (most of them):
    its argsort is then the unique sorting order whatever the sort's stability (so the
    faster unstable one serves), and the ranks are its inverse permutation. The
    samples with ties in the first column are sorted lexicographically. With
    ``present``, a stable sort keeps the absent rows' ``+inf`` keys in index order.
    """
    B, n = keys.shape[:2]
    if present is None:
        first = np.ascontiguousarray(keys[:, :, 0])
        order = np.argsort(first, axis=1)
    else:
        first = np.where(present, keys[:, :, 0], np.inf)
        order = np.argsort(first, axis=1, kind="stable")
    sorted_first = take_rows(np, first, order)
    same = sorted_first[:, 1:] == sorted_first[:, :-1]
    last = np.full(B, n - 1)     # the position of the last row told apart
    if present is not None:
        last = np.count_nonzero(present, axis=1) - 1
        same &= np.arange(1, n) <= last[:, None]
    tied = np.flatnonzero(np.any(same, axis=1))
    rank = _inverse_permutation(order)
    distinct = np.ones(B, dtype=bool)
    if len(tied):
        sub = keys[tied]          # a copy of our own
        if present is not None:
            sub[~present[tied]] = np.inf
        keep = _varying_columns(sub, None if present is None else present[tied])
        if not keep.all():
            sub = sub[:, :, keep]
        order[tied] = lexsort_rows(sub)
        rank[tied], runs = ranks(take_rows(np, sub, order[tied]), order[tied])
        distinct[tied] = np.take_along_axis(runs, last[tied, None], axis=1)[:, 0] == last[tied]
    return rank, order, distinct


def _varying_columns(keys, present=None):
    """The columns of keys (B, n, c) that the lexicographic order of the rows needs, as
    a boolean mask (c,): the first one, and every other one that is not equal in all
    (present) rows of the batch. A column equal throughout ties every pair of rows,
    so dropping it changes neither the order nor the runs of equal rows; the first
    column keeps absent rows, ``+inf`` in every column, after the present ones."""
    B, n, _ = keys.shape
    # a present row: absent ones (+inf) never equal its finite keys
    row = 0 if present is None else int(np.argmax(present[0]))
    equal = np.count_nonzero(keys == keys[0, row], axis=(0, 1))
    keep = equal != (B * n if present is None else np.count_nonzero(present))
    keep[0] = True
    return keep


def present_order(keys, present):
    """:func:`dense_rank_order` of the present rows of a padded batch, computed on the
    whole batch at once.

    Parameters
    ----------
    keys : ndarray of shape (B, n, c), float
        Finite keys of the present rows (those of absent rows are ignored).
    present : ndarray of shape (B, n) of bool

    Returns
    -------
    rank : ndarray of shape (B, n), int64
        Dense rank of each present row's keys among the present rows of its sample
        (where they all differ, their positions in ``order``); the absent rows rank
        above them.
    order : ndarray of shape (B, n), int64
        The present rows in the lexicographic order of their keys, then the absent
        rows in increasing index order.
    distinct : ndarray of shape (B,) of bool
        Whether all present rows of a sample have different keys. Where they do,
        ``order`` restricted to them is the unique sorting order, so it is the order
        that :func:`dense_rank_order` gives the present rows alone.

    Notes
    -----
    The absent rows' keys count as ``+inf`` in every column, above every finite key,
    so that one batched sort serves samples of every number of present rows.
    """
    return dense_rank_order(keys, present)


def absent_last(order, present):
    """``order`` (B, n), which lists the present rows of ``present`` (B, n) first, with
    the absent rows that follow them in increasing index order."""
    n = present.shape[1]
    count = np.count_nonzero(present, axis=1)
    absent = np.argsort(~present, axis=1, kind="stable")
    return np.where(np.arange(n) < count[:, None], order, absent)


def present_distinct(rank, order, present):
    """Whether the ranks (B, n) of the present rows of a sample all differ, with the
    present rows first in ``order`` (B, n)."""
    n = present.shape[1]
    inner = np.arange(1, n) < np.count_nonzero(present, axis=1)[:, None]
    ordered = take_rows(np, rank, order)
    return ~np.any((ordered[:, 1:] == ordered[:, :-1]) & inner, axis=1)


def pack(columns, ranges, return_spans=False):
    """Pack non-negative integer columns into as few int64 columns as fit (< 2^62),
    preserving lexicographic order (and, if asked, the range of each packed column)."""
    packed, spans, current, span = [], [], None, 1
    for col, size in zip(columns, ranges):
        size = max(int(size), 1)
        if current is not None and span * size < 2 ** 62:
            current = current * size + col
            span *= size
        else:
            if current is not None:
                packed.append(current)
                spans.append(span)
            current, span = col.astype(np.int64), size
    packed.append(current)
    spans.append(span)
    return (packed, spans) if return_spans else packed


def tie_sizes(runs):
    """Per sample, the product of the factorials of the run lengths (float), from run
    labels (B, n) of sorted rows: the position of each row inside its run, multiplied."""
    B, n = runs.shape
    new = np.ones((B, n), dtype=bool)
    new[:, 1:] = runs[:, 1:] != runs[:, :-1]
    return np.prod((np.arange(n) - _run_starts(new) + 1).astype(np.float64), axis=1)


def first_occurrence(keys):
    """Per sample, the first position holding each key: (B, m) int -> (B, m) int64.

    ``out[b, p] = min {q : keys[b, q] == keys[b, p]}``, so distinct keys give
    ``arange(m)``; these are the class labels :func:`block_mean` averages over."""
    B, m = keys.shape
    order = np.argsort(keys, axis=1, kind="stable")
    sorted_keys = take_rows(np, keys, order)
    new = np.ones((B, m), dtype=bool)
    new[:, 1:] = sorted_keys[:, 1:] != sorted_keys[:, :-1]
    out = np.empty((B, m), dtype=np.int64)
    np.put_along_axis(out, order, take_rows(np, order, _run_starts(new)), axis=1)
    return out


def pair_labels(runs):
    """Orbitals (orbits on ordered pairs, flattened ``i * n + j``) of the tie-class
    permutations of S_n frames, from their run labels (B, n): pairs are equivalent when
    their rows lie in the same classes and both are diagonal or both not. (B, n*n)."""
    B, n = runs.shape
    diagonal = np.eye(n, dtype=np.int64)
    keys = (runs[:, :, None] * n + runs[:, None, :]) * 2 + diagonal
    return first_occurrence(keys.reshape(B, n * n))


def lex_less(a, b):
    """Elementwise lexicographic ``a < b`` over the last axis."""
    diff = a != b
    first = np.argmax(diff, axis=-1)
    av = np.take_along_axis(a, first[..., None], axis=-1)[..., 0]
    bv = np.take_along_axis(b, first[..., None], axis=-1)[..., 0]
    return np.any(diff, axis=-1) & (av < bv)


def block_mean(xp, y, labels):
    """Average the rows of y (B, n, w) over classes of equal labels (B, n).

    Labels are integers in ``0..n-1``; a sample whose labels are ``arange(n)`` has no
    classes to average. Runs of ties (0, 0, 1, 2, 2, ...) and first-occurrence labels
    (orbits, orbitals: see :func:`first_occurrence`) both qualify. Out of place, in the
    namespace ``xp`` of y (numpy or torch)."""
    B, n = y.shape[:2]
    device = labels.device
    tied = xp.any(labels != xp.arange(n, device=device), axis=1)
    if not bool(xp.any(tied)):
        return y
    index = xp.nonzero(tied)[0]
    sub, sub_labels = xp.take(y, index, axis=0), xp.take(labels, index, axis=0)
    sums = class_sums(xp, sub, sub_labels, n)                 # in canonical order
    ones = xp.ones(tuple(sub_labels.shape) + (1,), dtype=sums.dtype, device=device)
    counts = class_sums(xp, ones, sub_labels, n)
    # unused labels have count 0: divide by 1 there (no NaN, even in a gradient)
    mean = sums / xp.where(counts > 0, counts, xp.ones_like(counts))
    mean = take_rows(xp, mean, sub_labels)
    # the averaged samples replace theirs: sample b comes from slot B + k if it is the
    # k-th tied one
    slot = xp.cumulative_sum(xp.astype(tied, xp.int64)) - 1 + B
    source = xp.where(tied, slot, xp.arange(B, device=device))
    return xp.take(xp.concat([y, mean], axis=0), source, axis=0)
