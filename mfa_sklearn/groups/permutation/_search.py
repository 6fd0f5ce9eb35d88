"""The search path of S_n x G: samples whose rows colour refinement does not separate.

A sample is symmetric (a cube, a molecule with equivalent atoms) or has repeated rows.
Its frame is found on the invariant graph (quantised Gram blocks ``Q``, colours, exact
edge labels) in three steps.

1. **Twins.** Rows whose data coincide entirely (same colour, same row of ``Q`` and of
   the edge labels) are twins. Each twin class collapses to one vertex whose colour
   includes the multiplicity, with the class mean as its row for the G-frame: otherwise
   ``Aut`` would contain ``m!`` swaps per class. Per-row outputs are averaged within the
   classes, the Reynolds projection over the twin swaps: exact for exact duplicates,
   equivariant in all cases. In the canonical order the classes are contiguous, and the
   members of a class are ordered by their canonical coordinates.
2. **Canonical labeling.** nauty labels the collapsed graph (its pair labels are the
   unordered pairs of the blocks ``Q_ij``, ``Q_ji`` with the edge labels, encoded in
   layers) and returns generators of its automorphism group: the permutations of the
   classes induced by the cloud's point group (at most 120 in 3-D, the icosahedron's),
   plus any that spurious ties of the quantisation admit. The group is enumerated up
   to ``max_frame_size`` elements.
3. **Candidates.** Every automorphism ``a`` gives a candidate order ``pi_a = a[pi]``
   of the classes, its G-frame ``H_a`` and the canonical input ``C_a`` of all fields.
   The candidates whose ``C_a`` are the lexicographic minimum, with entries within
   ``delta`` times the largest point or vector entry counting as equal (the first
   larger difference decides; scalars are alike in every candidate), are kept: they
   are exactly the coset ``h Stab(c)`` for the invariant choice ``c = min C_a``, so
   one backbone call on ``c`` plus the mean over the kept elements is the exact
   minimal frame average. On a cloud off its symmetry by less than ``delta`` the kept
   ``C_a`` differ by that much; the backbone then sees their mean, which depends on
   the kept set only (see :class:`~._frame.PermutationFrame`). For O(d), E(d) and
   O(1,d-1) one group of equal inputs remains up to spurious ties; for SO(d) and SE(d)
   a cloud with a reflection symmetry has two (proper and improper symmetries).

The stabilizer size reported is the number of kept elements times ``prod m_k!`` over
the twin classes.

References
----------
Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More Symmetries and
Efficiency. ICML 2024, arXiv:2406.07598.

McKay, Piperno. Practical graph isomorphism, II. J. Symbolic Computation 60, 2014.
"""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...exceptions import FrameTooLargeError
from .._base import Frame
from .._namespace import take_rows
from ._nauty import automorphisms, canonical_order, import_pynauty, layered_graph
from ._parts import Recipe, SearchPart
from ._ranking import lex_less, lexsort_rows


@dataclass(frozen=True)
class _Choice:
    """The kept candidates of one searched sample.

    Attributes
    ----------
    recipe : Recipe
        Twin classes and the kept class orders.
    perms : ndarray of shape (m, n)
        Row orders of the m kept elements (the first is the canonical order).
    H : ndarray of shape (m, d, d)
        Their G-frames.
    t : ndarray of shape (d,) or None
        The translation.
    runs : ndarray of shape (n,)
        Twin classes in canonical order.
    frame_size : float
        ``m`` times the number of twin permutations.
    n_candidate_groups : int
        Distinct candidate canonical inputs.
    diagnostics : dict
        The first kept G-frame's diagnostics.
    frame_type : type
        The G-frames' Frame class.
    """

    recipe: Recipe
    perms: Any
    H: Any
    t: Any
    runs: Any
    frame_size: float
    n_candidate_groups: int
    diagnostics: dict
    frame_type: type

    @property
    def weights(self):
        """Uniform weights of the kept elements, (m,)."""
        m = len(self.perms)
        return np.full(m, 1.0 / m)


def search_frames(data, graph, index, max_frame_size):
    """Canonical labeling with nauty and the candidate choice for the samples ``index``
    of the batch ``data`` with invariant graph ``graph``: a :class:`SearchPart`."""
    pynauty = import_pynauty(index)
    Q = graph.quantised(index)
    choices = [_search_one(pynauty, data, graph, Q[i], int(b), max_frame_size)
               for i, b in enumerate(index)]
    S = max(len(c.perms) for c in choices)
    names = choices[0].diagnostics
    return SearchPart(
        index=index,
        perms=np.stack([_pad(c.perms, S) for c in choices]),
        H=np.stack([_pad(c.H, S) for c in choices]),
        t=None if choices[0].t is None else np.stack([c.t for c in choices]),
        weights=np.stack([_pad(c.weights, S) for c in choices]),
        runs=np.stack([c.runs for c in choices]),
        frame_size=np.stack([c.frame_size for c in choices]),
        n_candidate_groups=np.stack([c.n_candidate_groups for c in choices]),
        diagnostics={name: np.stack([c.diagnostics[name] for c in choices])
                     for name in names},
        frame_type=choices[0].frame_type,
        recipes=tuple(c.recipe for c in choices))


def _search_one(pynauty, data, graph, Q, b, max_frame_size):
    """Twins, canonical labeling and candidate choice of sample b (Q: its (n, n, k, k)
    quantised Gram blocks): a :class:`_Choice`."""
    colours = graph.colours[b]                                # (n, c)
    edges = graph.edge_labels(b)                              # (n, n, e)
    n, k = graph.n, graph.k
    # twins: same colour and the same full rows of Q and of the edge labels
    twin_keys = np.concatenate([colours, Q.reshape(n, n * k * k).astype(np.float64),
                                edges.reshape(n, -1).astype(np.float64)], 1)
    _, twin = np.unique(twin_keys, axis=0, return_inverse=True)
    twin = twin.ravel()
    n_classes = int(twin.max()) + 1
    counts = np.bincount(twin, minlength=n_classes)
    rep = np.array([np.flatnonzero(twin == c)[0] for c in range(n_classes)])
    # vertex colours of the collapsed graph: colour and multiplicity
    vertex_keys = np.concatenate([colours[rep], counts[:, None].astype(np.float64)], 1)
    _, cell = np.unique(vertex_keys, axis=0, return_inverse=True)
    cell = cell.ravel()
    # canonical labeling and automorphisms (layer-0 vertices are the classes)
    if n_classes == 1:
        order_c, autos = np.zeros(1, dtype=np.int64), np.zeros((1, 1), dtype=np.int64)
    else:
        order_c, autos = _label(pynauty, Q, edges, rep, cell, b, max_frame_size)
    # candidates: orders a[pi] of the classes, G-frames of the class means
    cand = autos[:, order_c]                                   # (A, n_classes)
    frames, canon, row_orders = _candidates(data, b, twin, counts, cand)
    tol = _entry_tolerance(canon, data.fields, data.field_slices, data.delta)
    kept = _tolerant_minimum(canon, tol)
    rep_a = kept[0]
    tie_size = float(np.prod([math.factorial(int(c)) for c in counts]))
    # runs of twins in canonical order: classes are contiguous, in order cand[rep_a]
    runs = np.repeat(np.arange(n_classes), counts[cand[rep_a]])
    return _Choice(recipe=Recipe(twin, counts, cand[kept]), perms=row_orders[kept],
                   H=frames.H[kept, 0], t=None if frames.t is None else frames.t[rep_a],
                   runs=runs, frame_size=len(kept) * tie_size,
                   n_candidate_groups=_count_groups(canon, tol),
                   diagnostics={name: getattr(frames, name)[rep_a]
                                for name in Frame.diagnostic_names},
                   frame_type=type(frames))


def _label(pynauty, Q, edges, rep, cell, b, max_frame_size):
    """Canonical order of the twin classes ``rep`` of sample b and the elements of the
    automorphism group of their graph (arrays mapping class -> class), enumerated up
    to ``max_frame_size`` (else FrameTooLargeError)."""
    N = len(rep)
    k = Q.shape[-1]
    labels = edges[rep][:, rep]                     # symmetric: the same both ways
    Qc = Q[rep][:, rep]
    block = np.concatenate([Qc.reshape(N, N, k * k), labels], axis=2)
    # undirected label of {i, j}: the ordered pair (min, max) of the blocks B, B^T
    swapped = np.concatenate([np.swapaxes(Qc, 2, 3).reshape(N, N, k * k), labels],
                             axis=2)
    less = lex_less(block, swapped)[..., None]
    label_keys = np.concatenate([np.where(less, block, swapped),
                                 np.where(less, swapped, block)], axis=2)
    iu, ju = np.triu_indices(N, 1)
    _, labels = np.unique(label_keys[iu, ju], axis=0, return_inverse=True)
    g = layered_graph(pynauty, N, labels.ravel(), cell)
    gens, size, _ = automorphisms(pynauty, g, N)
    if size > max_frame_size:
        raise FrameTooLargeError(
            f"sample {b}: the symmetry group found for this sample has "
            f"{size:.0f} elements, above max_frame_size={max_frame_size}; raise "
            "max_frame_size, or use fewer symmetric samples")
    lab = canonical_order(pynauty, g, N)
    return lab, _enumerate_group(gens, N, max_frame_size, b)


def _candidates(data, b, twin, counts, cand):
    """For candidate class orders ``cand`` (A, n_classes) of sample b: G-frames of
    the class means, canonical inputs (A, n, W) and full row orders (A, n)."""
    A, N = cand.shape
    means = []
    for a in data.points + data.vectors:
        sums = np.zeros((N, a.shape[2]))
        np.add.at(sums, twin, a[b])
        means.append(np.broadcast_to(sums / counts[:, None], (A, N, a.shape[2])))
    frames = data.inner_frame(None, cand, rows=means)
    canon_rows = np.concatenate(
        [_canonical_rows(frames, a[b], kind)
         for a, kind in data.fields], axis=2)                # (A, n, W), rows as given
    position = np.argsort(cand, axis=1)                      # class -> place
    keys = np.concatenate([position[:, twin][..., None].astype(np.float64),
                           canon_rows], axis=2)
    row_orders = lexsort_rows(keys)                          # (A, n)
    canon = take_rows(np, canon_rows, row_orders)
    return frames, canon, row_orders


def _canonical_rows(frames, x, kind):
    """Rows of one sample's field x (n, w) in the coordinates of each candidate frame."""
    A = frames.H.shape[0]
    x = np.broadcast_to(x, (A,) + x.shape)
    if kind == "scalar":
        return x
    return frames.to_canonical(x, kind)[:, 0]


def _tolerant_minimum(canon, tol):
    """Candidates whose canonical inputs (A, n, W) are the lexicographic minimum when
    entries within ``tol`` (per column, :func:`_entry_tolerance`) count as equal."""
    A = canon.shape[0]
    flat = canon.reshape(A, -1)
    tol = np.broadcast_to(tol, canon.shape[1:]).reshape(-1)
    alive = np.arange(A)
    for p in range(flat.shape[1]):
        if len(alive) == 1:
            break
        values = flat[alive, p]
        alive = alive[values <= values.min() + tol[p]]
    return alive


def _entry_tolerance(canon, fields, slices, delta):
    """Per column of the candidates' canonical inputs (A, n, W): ``delta`` times the
    largest magnitude of all their point and vector columns; 0 for scalar columns,
    which every candidate has alike (automorphisms keep the colours).

    One scale for every geometric field, invariant like the canonical inputs: a field's
    own scale is rounding noise where the field lies outside the span of a rank-deficient
    frame (velocities normal to a planar cloud), and a tolerance of that noise's size
    let the noise pick among the candidates, dropping stabilizer elements."""
    geometric = [s for s, (_, kind) in zip(slices, fields) if kind != "scalar"]
    scale = max((np.max(np.abs(canon[..., s])) for s in geometric if s.stop > s.start),
                default=0.0)
    tol = np.zeros(canon.shape[2])
    for s in geometric:
        tol[s] = delta * scale
    return tol


def _count_groups(canon, tol):
    """Number of candidate groups (a diagnostic): distinct canonical inputs after
    rounding to the tie tolerance ``tol`` (per column)."""
    scaled = np.rint(canon / np.where(tol > 0, tol, 1.0)).reshape(len(canon), -1)
    return len(np.unique(scaled, axis=0))


def _enumerate_group(generators, N, limit, b):
    """All elements of the permutation group generated by ``generators`` (closure)."""
    identity = np.arange(N)
    seen = {identity.tobytes(): identity}
    frontier = [identity]
    while frontier:
        new = []
        for element in frontier:
            for gen in generators:
                product = gen[element]
                key = product.tobytes()
                if key not in seen:
                    seen[key] = product
                    new.append(product)
                    if len(seen) > limit:
                        raise FrameTooLargeError(
                            f"sample {b}: the symmetry group found for this sample has "
                            f"more than max_frame_size={limit} elements; raise "
                            "max_frame_size")
        frontier = new
    return np.stack(list(seen.values()))


def _pad(a, S):
    """Pad the leading (element) axis of a per-sample array to S entries: weights with
    0, row orders with copies of the first (weight 0), G-frames with zeros."""
    extra = S - a.shape[0]
    if extra == 0:
        return a
    if a.ndim == 1:            # weights
        return np.concatenate([a, np.zeros(extra)])
    if a.ndim == 2:            # perms: repeat the first (weight 0)
        return np.concatenate([a, np.broadcast_to(a[:1], (extra, a.shape[1]))])
    return np.concatenate([a, np.zeros((extra,) + a.shape[1:])])
