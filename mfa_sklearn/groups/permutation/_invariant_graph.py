"""The G-invariant weighted graph of a batch, on which S_n x G frames are decided.

For S_n x G (G in O(d), SO(d), E(d), SE(d), O(1,d-1), SO(1,d-1)) the rows of a sample
are the vertices of a complete graph whose data is invariant under G and only permuted
by S_n, so a canonical order of its vertices is a canonical order of the rows:

* **Rows.** ``z_i`` stacks the ``k`` frame-defining point and vector rows of row ``i``
  (``(B, n, k, d)``), points centred by the centroid of the first point field for E/SE
  (the centroid is S_n-invariant and removes the translation).
* **Gram blocks.** ``K_ij = <z_i, z_j>``, a ``k x k`` block per pair, with the
  group's metric: Euclidean for O/SO/E/SE, Minkowski ``eta = diag(1, -1, ..., -1)``
  for the Lorentz groups.
* **Quantisation.** ``Q_ij = rint(K_ij / (delta s))`` with ``delta = eps^(1/3)`` of the
  least precise input (6.1e-6 for float64, 4.9e-3 for float32) and the invariant scale
  ``s = max_i K_ii`` (Euclidean) or ``max_ij |K_ij|`` (Minkowski), so the integer labels
  are invariant under G and under scaling. The products are those of each sample's rows
  times the power of two that brings their largest absolute entry into ``[1/2, 1)``
  (rows near ``1e154`` would overflow them, rows near ``1e-154`` underflow): the factor
  is exact and cancels in ``K / s``, so the labels are those of the unscaled rows.
  Ties computed with rounding noise of about ``kappa eps s`` land in different bins
  only when they straddle a bin edge (about ``kappa eps / delta``, 1e-9 per tie at
  float64); values that merge spuriously are sorted out by the candidate comparison of
  the search path.
* **Colours and labels.** Vertex colours are the quantised diagonal blocks (norms,
  masses) and every per-row scalar field, compared exactly; symmetric edge fields
  (bonds) add exact edge labels, their diagonals vertex colours.

The **fast path** runs one round of colour refinement on this graph: if the
signatures ``(colour_i, sorted multiset of (Q_ij, edge labels_ij, colour_j))`` of a
sample are all distinct, their lexicographic order is the canonical row order and the
stabilizer is trivial (almost every generic cloud). Samples whose colours already
differ are ordered by them, without computing their off-diagonal Gram blocks.

References
----------
Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More Symmetries and
Efficiency. ICML 2024, arXiv:2406.07598.
"""

import itertools
import math

import numpy as np

from .._namespace import largest_per_sample, power_of_two_scale, take_rows
from ._ranking import absent_last, dense_rank_order, present_distinct, present_order
from ._refinement import edge_codes, refine_once


def _gram_blocks(Z, lorentz=False):
    """Inner products ``K[b, i, j, p, q] = <Z[b, i, p], Z[b, j, q]>`` (Minkowski,
    ``eta = diag(1, -1, ..., -1)``, for ``lorentz``) of rows Z (B, n, k, d):
    (B, n, n, k, k).

    A sum of d elementwise products, rather than einsum (several times slower) or
    matmul (whose kernels round an entry differently depending on its position): each
    entry is computed the same way wherever its rows sit, so permuting the rows permutes
    K exactly and K is exactly symmetric."""
    B, n, k, d = Z.shape
    Zx = np.moveaxis(Z.reshape(B, n * k, d), 2, 0)                # (d, B, n * k)
    K = Zx[0][:, :, None] * Zx[0][:, None, :]
    for x in range(1, d):
        term = Zx[x][:, :, None] * Zx[x][:, None, :]
        if lorentz:
            K -= term
        else:
            K += term
    return K.reshape(B, n, k, n, k).transpose(0, 1, 3, 2, 4)


def _sample_minor(a):
    """The entries of each sample of ``a`` (B, ...) as the columns of a contiguous copy
    (p, B): numpy reduces its leading axis several times faster than the few entries of
    each sample along trailing axes (``np.max(a, axis=(1, 2))``), copy included."""
    return np.ascontiguousarray(a.reshape(a.shape[0], math.prod(a.shape[1:])).T)


class BatchFields:
    """The fields of one batch, as the product frames need them.

    Parameters
    ----------
    inner : Group
        The geometric factor G.
    points, vectors : list of ndarray of shape (B, n, d)
        Frame-defining rows (converted to float64).
    scalars : list of ndarray of shape (B, n, k)
        Per-row scalar fields: vertex colours.
    others : list of (ndarray, kind)
        Further per-row point and vector fields (they join the candidate comparison).
    edges : ndarray of shape (B, n, n, w) or None
        Symmetric edge fields side by side (see ``edge_matrix_of``).
    tol : float or None
        Rank tolerance of the G-frames.
    rule : str
        Row selection rule of the G-frames.
    delta : float
        The quantisation and tie tolerance ``eps^(1/3)``.
    """

    def __init__(self, inner, points, vectors, scalars, others, edges, tol, rule, delta):
        self.inner, self.tol, self.rule, self.delta = inner, tol, rule, delta
        self.points = [p.astype(np.float64, copy=False) for p in points]
        self.vectors = [v.astype(np.float64, copy=False) for v in vectors]
        self.scalars = scalars
        self.others = [(a.astype(np.float64, copy=False), kind) for a, kind in others]
        self.edges = edges
        self.B, self.n = (points + vectors)[0].shape[:2]
        # canonical-input fields for the candidate comparison, with column slices
        fields = ([(p, "point") for p in self.points] + [(v, "vector") for v in self.vectors]
                  + self.others + [(s.astype(np.float64, copy=False), "scalar")
                                   for s in scalars])
        self.fields = fields
        widths = np.cumsum([0] + [a.shape[2] for a, _ in fields])
        self.field_slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(widths)]

    def centred_rows(self):
        """Frame-defining rows (B, n, k, d), each sample multiplied by the power of two
        that brings its largest absolute entry into ``[1/2, 1)`` (before centring: the
        centroid of huge rows can overflow too), points then centred by the first's
        centroid."""
        largest = np.max([largest_per_sample(np, a) for a in self.points + self.vectors],
                         axis=0)
        factor = power_of_two_scale(np, largest)[0][:, None, None]
        points = [p * factor for p in self.points]
        if self.inner.has_translations:
            t = points[0].mean(axis=1, keepdims=True)
            points = [p - t for p in points]
        scaled = points + [v * factor for v in self.vectors]
        if len(scaled) == 1:   # a fresh array: a view with the field axis will do
            return scaled[0][:, :, None]
        return np.stack(scaled, axis=2)

    def inner_frame(self, index, order, rows=None):
        """G-frames of the frame-defining rows of samples ``index`` in row order ``order``
        (``rows`` replaces the rows, e.g. twin-class means)."""
        if rows is None:   # one gather: row order[i] of sample index[i] of the batch
            n = self.n
            flat = (np.asarray(index)[:, None] * n + order).reshape(-1)
            take = [np.take(a.reshape(-1, a.shape[2]), flat, axis=0)
                    .reshape(order.shape + (a.shape[2],))
                    for a in self.points + self.vectors]
        else:
            take = [take_rows(np, a, order) for a in rows]
        n_points = len(self.points)
        return self.inner.frame(take[:n_points] or None, take[n_points:] or None,
                                tol=self.tol, rule=self.rule)


class _Graph:
    """The invariant graph of a batch: vertex colours (B, n, c), exact integer edge-label
    columns (B, n, n) with their ranges, and the quantised Gram blocks
    ``Q = rint(K / unit)`` (B, n, n, k, k) of the centred rows Z, computed on demand for
    the samples that need them (``K``: precomputed inner products, or None)."""

    def __init__(self, Z, K, unit, colours, radius, edge_codes=(), edge_ranges=()):
        self.Z, self.K, self.unit = Z, K, unit
        self.colours, self.radius = colours, radius
        self.edge_codes, self.edge_ranges = list(edge_codes), list(edge_ranges)
        self.B, self.n, self.k = Z.shape[:3]

    def quantised(self, index):
        """Q of the samples ``index`` (m,): (m, n, n, k, k) int64."""
        K = _gram_blocks(self.Z[index]) if self.K is None else self.K[index]
        return np.rint(K / self.unit[index, None, None, None, None]).astype(np.int64)

    def edge_labels(self, b):
        """Sample b's edge-label columns side by side, (n, n, c) (c = 0 without edges)."""
        if not self.edge_codes:
            return np.zeros((self.n, self.n, 0), dtype=np.int64)
        return np.stack([c[b] for c in self.edge_codes], axis=-1)


def invariant_graph(data, metric):
    """Vertex colours (B, n, c) and, on demand, the quantised Gram blocks of the
    invariant graph of a batch (see :class:`_Graph`).

    ``metric`` is the geometric factor's :attr:`~mfa_sklearn.groups.Group.metric`: None
    for the Euclidean factors, Minkowski's ``(1, -1, ..., -1)`` for the Lorentz ones
    (the only other factors of S_n products)."""
    Z = data.centred_rows()                       # (B, n, k, d) float64
    B, n, k, d = Z.shape
    K = None
    if metric is not None:   # the scale is the largest |entry| of the whole Gram matrix
        K = _gram_blocks(Z, lorentz=True)
        s = np.max(np.abs(K), axis=(1, 2, 3, 4))
        diag = K[:, np.arange(n), np.arange(n)]                  # (B, n, k, k)
    else:                    # the scale is on the diagonal: the rest only where needed
        diag = _gram_blocks(Z.reshape(B * n, 1, k, d)).reshape(B, n, k, k)
        s = np.max(_sample_minor(np.einsum("bipp->bip", diag)), axis=0)
    unit = data.delta * np.where(s > 0, s, 1.0)
    # diag is a fresh array (of products, or gathered from K): quantised in place
    diag /= unit[:, None, None, None]
    diag_blocks = np.rint(diag, out=diag).reshape(B, n, k * k)
    colours = [diag_blocks] + [a.astype(np.float64, copy=False) for a in data.scalars]
    codes, ranges = [], []
    if data.edges is not None:      # exact edge labels; the diagonal colours vertices
        colours.append(data.edges[:, np.arange(n), np.arange(n)])
        codes, ranges = edge_codes(data.edges)
    colours = np.concatenate(colours, axis=2)
    colours += 0.0   # -0.0 and 0.0 tie: give both the same colour
    return _Graph(Z, K, unit, colours, math.ceil(1.0 / data.delta) + 2, codes, ranges)


def fast_order(graph):
    """One round of colour refinement: the signature of row i is its colour and the
    sorted multiset of (Q_ij block, edge labels ij, colour of j), j != i. Returns the
    lexicographic order of the signatures (B, n) and whether they are all distinct
    (B,). Samples whose colours already differ are ordered by them (the signatures'
    first column), without their Gram blocks."""
    n, k = graph.n, graph.k
    crank, order, distinct = dense_rank_order(graph.colours)   # (B, n), (B, n), (B,)
    rest = np.flatnonzero(~distinct)
    if len(rest):
        R = graph.radius
        block = graph.quantised(rest).reshape(len(rest), n, n, k * k) + R   # >= 0
        order[rest], distinct[rest], _ = refine_once(
            crank[rest], [block[..., p] for p in range(k * k)]
            + [c[rest] for c in graph.edge_codes],
            [2 * R + 1] * (k * k) + graph.edge_ranges)
    return order, distinct


def fast_order_present(graph, present):
    """:func:`fast_order` of the present rows (B, n) of a padded batch, on the padded
    graph at once: the order of the present rows' signatures, then the absent rows in
    increasing index order (B, n), and whether the present rows' signatures all differ
    (B,); samples without present rows count as not distinct.

    The absent rows must be zero rows. Their colours then sort above every present
    colour (:func:`present_order`), so the present rows keep the dense colour ranks of
    the compact sample, and each adds the same pair ``(Q = 0, its colour)`` to every
    present row's multiset. Sorted multisets of equal size compare like their smallest
    differing element, which common elements do not change: the present rows'
    signatures are ordered and told apart exactly as in the compact sample."""
    n, k = graph.n, graph.k
    crank, order, distinct = present_order(graph.colours, present)
    distinct &= present.any(axis=1)
    rest = np.flatnonzero(~distinct)
    rest = rest[present[rest].any(axis=1)]
    if len(rest):
        R = graph.radius
        block = graph.quantised(rest).reshape(len(rest), n, n, k * k) + R   # >= 0
        refined, _, rank = refine_once(crank[rest], [block[..., p] for p in range(k * k)],
                                        [2 * R + 1] * (k * k))
        order[rest] = absent_last(refined, present[rest])
        distinct[rest] = present_distinct(rank, refined, present[rest])
    return order, distinct
