"""Colour refinement (1-dimensional Weisfeiler-Leman), vectorized over a batch.

The rows of a sample are the vertices of a complete graph whose vertices carry colours
and whose ordered pairs ``(i, j)`` carry integer edge labels, all invariant under the
group: permuting the rows permutes the graph and changes nothing else. One round of
colour refinement replaces the colour of vertex ``i`` by its *signature*

    sigma_i = (colour_i, sorted multiset of (label_ij, colour_j) over j != i).

Signatures are compared exactly, as packed integer columns, and their dense ranks are
the new colours. The colouring is canonical: relabelling the vertices relabels it the
same way, so if the signatures of a sample are all distinct their lexicographic order
is a canonical order of the rows, and the stabilizer of the sample is trivial. Repeated
rounds converge to the stable colouring (:func:`refine`). For generic inputs one round
already separates every vertex (almost every random graph is labelled canonically by
its degree sequence refined once, Babai, Erdos and Selkow); samples it leaves with equal
colours (symmetric or repeated rows, regular graphs) need the canonical labeling search
of nauty, which takes the refined colouring as its initial ordered partition.

Edge values become exact integer codes first (:func:`edge_codes`): injective and
monotone per edge field, so that the codes order samples like the values do.

References
----------
Weisfeiler, Leman. The reduction of a graph to canonical form and the algebra which
appears therein. Nauchno-Technicheskaya Informatsia 2(9), 1968.

Babai, Erdos, Selkow. Random graph isomorphism. SIAM J. Comput. 9(3), 1980.

Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More Symmetries and
Efficiency. ICML 2024, arXiv:2406.07598.
"""

import numpy as np

from .._namespace import take_rows
from ._ranking import lexsort_rows, pack, ranks


def refine_once(crank, pair_cols, ranges):
    """One round of colour refinement, vectorized over the batch.

    Parameters
    ----------
    crank : ndarray of shape (B, n), int64
        Vertex colours as dense ranks ``0..n-1``.
    pair_cols : list of ndarray of shape (B, n, n), int64
        Non-negative integer edge labels, column after column (lexicographic).
    ranges : list of int
        Exclusive upper bound of each column.

    Returns
    -------
    order : ndarray of shape (B, n)
        Lexicographic order of the signatures ``(colour_i, sorted multiset of
        (label_ij, colour_j), j != i)``.
    distinct : ndarray of shape (B,) of bool
        Whether all signatures of a sample differ (then ``order`` is canonical).
    rank : ndarray of shape (B, n)
        Dense rank of each vertex's signature (a canonical colouring).

    Notes
    -----
    Samples whose colours already differ skip the round: the signatures' first column
    decides, so their order is the colour order and ``rank`` is ``crank``.
    """
    B, n = crank.shape
    if n == 1:
        zeros = np.zeros((B, 1), dtype=np.int64)
        return zeros, np.ones(B, dtype=bool), zeros
    done = np.all(np.sort(crank, axis=1) == np.arange(n), axis=1)
    if np.any(done):
        order = np.argsort(crank, axis=1)
        distinct = done.copy()
        rank = crank.copy()
        rest = np.flatnonzero(~done)
        if len(rest):
            order[rest], distinct[rest], rank[rest] = refine_once(
                crank[rest], [col[rest] for col in pair_cols], ranges)
        return order, distinct, rank
    others = (np.arange(n)[:, None] + np.arange(1, n)[None, :]) % n   # (n, n-1), j != i
    rows = np.arange(n)[:, None]
    cols = [col[:, rows, others] for col in pair_cols] + [crank[:, others]]
    packed, spans = pack(cols, list(ranges) + [n], return_spans=True)
    packed = np.stack(packed, axis=-1)                                # (B, n, n-1, c)
    c = packed.shape[-1]
    flat = packed.reshape(B * n, n - 1, c)
    pair_order = lexsort_rows(flat)                 # sort the multiset per row
    sorted_pairs = take_rows(np, flat, pair_order)
    # signature columns, packed again (e.g. 7 pairs of a 0/1 graph per int64)
    sorted_pairs = sorted_pairs.reshape(B, n, (n - 1) * c)
    signature = pack([crank] + [sorted_pairs[:, :, p] for p in range((n - 1) * c)],
                      [n] + spans * (n - 1))
    signature = np.stack(signature, axis=-1)                          # (B, n, columns)
    order = lexsort_rows(signature)
    rank, runs = ranks(take_rows(np, signature, order), order)
    return order, runs[:, -1] == n - 1, rank


def refine(crank, pair_cols, ranges):
    """Colour refinement until every vertex of a sample is distinct or its partition
    stops splitting; arguments and returns as for :func:`refine_once`.

    From uniform colours one round only tells vertices apart by their degrees, so the
    samples that still tie are refined again as long as a round adds colours."""
    order, distinct, rank = refine_once(crank, pair_cols, ranges)
    todo = np.flatnonzero(~distinct & (rank.max(axis=1) > crank.max(axis=1)))
    while len(todo):
        before = rank[todo].max(axis=1)
        order[todo], distinct[todo], rank[todo] = refine_once(
            rank[todo], [c[todo] for c in pair_cols], ranges)
        todo = todo[~distinct[todo] & (rank[todo].max(axis=1) > before)]
    return order, distinct, rank


def edge_codes(A):
    """Exact integer codes of the edge values (B, n, n, w), one (B, n, n) column per
    edge field, with their ranges: ``value - min`` for small integer values (0/1
    graphs), else ranks among the batch's distinct values. Codes are injective and
    monotone per field, so orders built from them are canonical for each sample."""
    codes, ranges = [], []
    for e in range(A.shape[3]):
        values = A[..., e]
        # an empty batch has no values: any range will do
        low, high = (values.min(), values.max()) if values.size else (0.0, 0.0)
        if high - low < 2 ** 20 and np.array_equal(values, np.floor(values)):
            codes.append((values - low).astype(np.int64))
            ranges.append(int(high - low) + 1)
        else:
            distinct, inverse = np.unique(values, return_inverse=True)
            codes.append(inverse.reshape(values.shape).astype(np.int64))
            ranges.append(len(distinct))
    return codes, ranges
