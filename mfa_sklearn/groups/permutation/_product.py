"""The products S_n x G, for G in O(d), SO(d), E(d), SE(d), O(1,d-1) and SO(1,d-1).

``(sigma, T, b) . x = P_sigma x T + b``: S_n permutes the rows, G moves every row. A
minimal frame first finds a canonical order of the rows that does not depend on G, then
the G-frame of the rows in that order (Lin et al.):

* **Invariant graph.** The rows are the vertices of a weighted graph whose data are
  invariant under G and only permuted by S_n: quantised Gram blocks of the
  frame-defining rows (centred for E/SE; Minkowski products for the Lorentz groups),
  per-row scalar fields as vertex colours and symmetric edge fields (bonds) as exact
  edge labels. A canonical order of its vertices is a canonical order of the rows.
* **Fast path.** One round of colour refinement, vectorized over the batch. If it
  separates all rows of a sample (almost every generic cloud), their order ``pi`` is
  canonical, the stabilizer is trivial, and the G-frame ``H`` of ``x[pi]`` finishes the
  frame: the canonical input is ``P_pi (x - t) H^{-1}``.
* **Search path.** Otherwise (symmetric clouds, repeated rows) twin rows are collapsed,
  nauty (the optional ``pynauty``) labels the collapsed graph canonically, and its
  automorphisms give candidate orders; the candidates whose canonical inputs of all
  fields are the tolerant lexicographic minimum form the coset ``h Stab(c)``, over
  which one backbone output is averaged. Twins are averaged like ties.
* **Tolerances.** Decisions on computed values use invariant, relative thresholds: the
  quantisation step and the candidate tie band are ``delta = eps^(1/3)`` (of the least
  precise input) times an invariant scale of the sample; the G-frame's rank tolerance
  is ``tol`` (default ``sqrt(eps)``). Exactly given values (scalars, edge fields) are
  compared exactly.

Edge fields are left alone by G; their outputs are permuted back and averaged like the
rows. For torch input the decisions are made on the host and ``H``, ``t`` recomputed on
the device, differentiably.

References
----------
Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More Symmetries and
Efficiency. ICML 2024, arXiv:2406.07598.

McKay, Piperno. Practical graph isomorphism, II. J. Symbolic Computation 60, 2014.
"""

import math

import numpy as np

from .._base import FIELD_KINDS, Frame, as_list, check_kind, to_numpy
from .._namespace import get_namespace, machine_eps, work_eps, work_float
from ._frame import PermutationElement
from ._inputs import check_edges, check_per_row, edge_matrix_of
from ._invariant_graph import BatchFields, fast_order, fast_order_present, invariant_graph
from ._parts import FastPart, assemble
from ._search import search_frames
from ._symmetric import PermutationBase


class PermutationProductGroup(PermutationBase):
    """S_n x G for G in O(d), SO(d), E(d), SE(d), O(1,d-1), SO(1,d-1).

    Elements act by ``P_sigma x T + b``. Frames order the rows canonically on a
    G-invariant graph (colour refinement, else a canonical labeling with nauty), then
    take the G-frame of the rows in that order; symmetric samples are averaged over the
    finite stabilizer, one backbone call per sample.

    Parameters
    ----------
    inner : OrthogonalGroup or LorentzGroup
        The geometric factor; its frame is computed on the rows in canonical order.
    max_frame_size : int, default=10000
        Largest automorphism group enumerated for a symmetric sample; larger ones raise
        :class:`~mfa_sklearn.exceptions.FrameTooLargeError`.

    References
    ----------
    .. [1] Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More
       Symmetries and Efficiency. ICML 2024, arXiv:2406.07598.
    .. [2] McKay, Piperno. Practical graph isomorphism, II. J. Symbolic Computation 60,
       2014.
    """

    #: edge fields (symmetric n x n matrices per sample, e.g. bonds) are permuted with
    #: the rows and label the invariant graph; the matrix group does not act on them
    supports_edges = True

    def __init__(self, inner, *, max_frame_size=10000):
        self.inner = inner
        self.d = inner.d
        self.has_translations = inner.has_translations
        self.max_frame_size = int(max_frame_size)

    @property
    def name(self):
        return f"S_n x {self.inner.name}"

    @property
    def metric(self):
        """The geometric factor's metric diagonal (None: Euclidean)."""
        return self.inner.metric

    @property
    def ordered_factor(self):
        """The geometric factor G, whose frames read rows in order (frame ensembles)."""
        return self.inner

    def __eq__(self, other):
        return (isinstance(other, PermutationProductGroup) and other.inner == self.inner
                and other.max_frame_size == self.max_frame_size)

    def __hash__(self):
        return hash((self.name, self.max_frame_size))

    def act(self, g, x, kind="point"):
        """``P_sigma x T + b`` by kind; ``A[sigma][:, sigma]`` for "edge"."""
        check_kind(kind, FIELD_KINDS)
        if kind == "edge":
            return self._act_on_edges(g, x)
        x = self._element_perm(g, x)
        return x if kind == "scalar" else self.inner.act(g, x, kind)

    def act_on_other_rows(self, g, x, kind="point"):
        """Fields on other rows than the permuted ones feel G alone."""
        check_kind(kind, FIELD_KINDS)
        return x if kind == "scalar" else self.inner.act(g, x, kind)

    def random_element(self, size, random_state=None, **kwargs):
        """Independent uniform permutations and random elements of G."""
        rng = np.random.default_rng(random_state)
        g = self.inner.random_element(size, rng, **kwargs)
        return PermutationElement(g.T, g.b, seed=int(rng.integers(2 ** 62)), size=size)

    def _frame_all_present(self, points, vectors, scalars, others, edges, tol, rule):
        """Canonical row orders with G-frames: colour refinement's order where it tells
        the rows apart, else the search among symmetric candidates (``_search``)."""
        data = self._batch(points, vectors, scalars, others, edges, tol, rule)
        graph = invariant_graph(data, self.metric)
        order, distinct = fast_order(graph)
        fast = np.flatnonzero(distinct)
        slow = np.flatnonzero(~distinct)
        parts = []
        if len(fast) or not len(slow):   # an empty batch: an empty fast part
            parts.append(_fast_frames(data, order[fast], fast))
        if len(slow):
            parts.append(search_frames(data, graph, slow, self.max_frame_size))
        labeling, H, t = assemble(data.B, data.n, parts)
        like = (points + vectors)[0]
        if not isinstance(like, np.ndarray):
            H, t = self._geometry_on_device(points, vectors, parts,
                                            labeling.perms.shape[1], data.tol, rule)
        return labeling.frame(like, H, t, frame_type=parts[0].frame_type,
                              metric=self.metric)

    def _fast_frames_padded(self, mask, points, vectors, scalars, others, edges, tol, rule):
        """The fast path on a padded batch at once: the frames of the samples whose
        present rows one round of colour refinement tells apart (almost every generic
        one).

        They are the frames of the present rows alone, with the absent rows appended
        (``_absent``), bit for bit. The absent frame-defining rows are set to zeros,
        which change neither the power-of-two scaling of the rows nor the invariant
        scale ``max_i |z_i|^2`` of a group without translations; colours and Gram
        blocks are computed entry by entry, so those of the present rows are the
        compact sample's; their order is the compact one
        (:func:`~._invariant_graph.fast_order_present`); and the G-frame of rows with
        trailing zero rows is that of the rows alone (zero rows are never selected,
        and every product is taken row by row). Numpy batches of Euclidean groups
        without translations or edge fields only (else None): centroids and the
        Minkowski scale would see the zero rows.

        Returns
        -------
        (ndarray, PermutationFrame) or None
            The samples framed and their frames (``mask`` as their present rows).
        """
        given = as_list(points) + as_list(vectors) + as_list(scalars) + [
            a for a, _ in others or []]
        if (self.has_translations or self.metric is not None or as_list(edges)
                or not all(isinstance(a, np.ndarray) for a in given)):
            return None
        absent = np.flatnonzero(~mask)   # of the B * n rows

        def zeroed(arrays):
            copies = [a.copy() for a in arrays]
            for a in copies:   # an integer scatter: faster than a `where` or a mask
                a.reshape(-1, a.shape[-1])[absent] = 0
            return copies

        kinds = [kind for _, kind in others or []]
        data = self._batch(zeroed(as_list(points)), zeroed(as_list(vectors)),
                           zeroed(as_list(scalars)),
                           list(zip(zeroed(a for a, _ in others or []), kinds)), None, tol,
                           rule)
        order, distinct = fast_order_present(invariant_graph(data, self.metric), mask)
        index = np.flatnonzero(distinct)
        if not len(index):
            return None
        part = _fast_frames(data, order[index], np.arange(len(index)), index)
        labeling, H, t = assemble(len(index), data.n, [part])
        return index, labeling.frame(given[0], H, t, frame_type=part.frame_type,
                                     metric=self.metric, present=mask[index])

    def _batch(self, points, vectors, scalars, others, edges, tol, rule):
        """The checked fields of a batch on the host, as :class:`BatchFields`."""
        points = [to_numpy(a) for a in points]
        vectors = [to_numpy(a) for a in vectors]
        scalars = [to_numpy(a) for a in as_list(scalars)]
        others = [(to_numpy(a), kind) for a, kind in (others or [])]
        frame_rows = points + vectors
        if not frame_rows:
            raise ValueError(f"group {self.name} needs at least one frame-defining field")
        if self.has_translations and not points:
            raise ValueError(f"group {self.name} includes translations, fixed by the "
                             "centroid of a 'point' field; pass points")
        self.inner._check_rows(np, frame_rows + [a for a, _ in others])
        check_per_row(self.name, frame_rows + [a for a, _ in others] + scalars, "a field")
        edge_matrix = None
        if as_list(edges):
            edges = [to_numpy(a) for a in as_list(edges)]
            check_edges(self.name, edges, [])
            if edges[0].shape[:2] != frame_rows[0].shape[:2]:
                n = frame_rows[0].shape[1]
                raise ValueError(
                    f"group {self.name}: edge fields need a row and a column per row of "
                    f"the per-row fields, shape ({frame_rows[0].shape[0]}, {n}, {n}, "
                    f"width); got {tuple(edges[0].shape)}")
            edge_matrix = edge_matrix_of(self.name, edges, symmetrize=False)
        # The least precise of the frame-defining inputs and the working precision
        # (float32 under ``frame_precision``) sets the tie tolerance eps^(1/3) and the
        # default rank tolerance sqrt(eps). The G-frames run on working-precision copies
        # of the rows, whose own default would be sqrt(eps64) for float64 rows: for
        # float32 input that finds frame vectors in float32 rounding noise, for X but
        # not for g.X; in float32 frames of float64 rows it took that noise of
        # collinear rows for a rank of 3, and float64's tie tolerance split the
        # float32-rounded ties of symmetric clouds.
        tol, delta = self.tolerances([a.dtype for a in frame_rows], tol)
        return BatchFields(self.inner, points, vectors, scalars, others, edge_matrix, tol, rule,
                     delta)

    @staticmethod
    def tolerances(dtypes, tol=None):
        """The G-frames' rank tolerance (``tol``, default ``sqrt(eps)``) and the
        quantisation and tie tolerance ``delta = eps^(1/3)`` of frame-defining rows of
        ``dtypes``, ``eps`` that of the least precise of them and of the working
        precision (see :meth:`_batch`)."""
        floating = [dtype.is_floating_point if hasattr(dtype, "is_floating_point")
                    else np.issubdtype(dtype, np.floating) for dtype in dtypes]
        eps = max([work_eps(np)] + [machine_eps(dtype) if is_float else
                                    machine_eps(np.float64)
                                    for dtype, is_float in zip(dtypes, floating)])
        return (math.sqrt(eps) if tol is None else tol), eps ** (1.0 / 3.0)

    def _geometry_on_device(self, points, vectors, parts, S, tol, rule):
        """``H`` (B, S, d, d) and ``t`` (B, d) of frames decided on the host, recomputed
        from the tensors themselves by the inner group's frame (the code the host ran),
        so that they live on the tensors' device and gradients flow through them (see
        :meth:`_Part.geometry`)."""
        xp = get_namespace(*(points + vectors))
        self._check_working_range(xp, points + vectors)   # before the cast below
        rows = [work_float(xp, a) for a in points + vectors]
        device, n_points = rows[0].device, len(points)

        def inner_frame(ordered, choices=None):
            given = (ordered[:n_points] or None, ordered[n_points:] or None)
            if choices is None:
                frame = self.inner.frame(*given, tol=tol, rule=rule)
            else:
                frame = self.inner.replay_frame(*given, choices=choices, tol=tol, rule=rule)
            return frame.H[:, 0], frame.t

        def padded(H):                                  # (m, s, d, d) -> (m, S, d, d)
            extra = (H.shape[0], S - H.shape[1]) + tuple(H.shape[2:])
            return xp.concat([H, xp.zeros(extra, dtype=H.dtype, device=device)], axis=1)

        Hs, ts, samples = [], [], []
        for part in parts:
            for index, H, t in part.geometry(xp, rows, inner_frame):
                Hs.append(padded(H))
                ts.append(t)
                samples.append(index)
        H, t = xp.concat(Hs, axis=0), None if ts[0] is None else xp.concat(ts, axis=0)
        # parts back into sample order (where they are not in it already)
        source = np.argsort(np.concatenate(samples))
        if not np.array_equal(source, np.arange(len(source))):
            source = xp.asarray(source, device=device)
            H = xp.take(H, source, axis=0)
            t = None if t is None else xp.take(t, source, axis=0)
        return H, t


def _fast_frames(data, order, index, samples=None):
    """The fast path: G-frames of the rows of samples ``samples`` (default ``index``)
    of ``data`` in their canonical orders ``order`` (m, n); one element, no twins; the
    part's samples are ``index``."""
    frame = data.inner_frame(index if samples is None else samples, order)
    m, n = order.shape
    return FastPart(index=index, perms=order[:, None], H=frame.H, t=frame.t,
                     weights=np.ones((m, 1)),
                     runs=np.broadcast_to(np.arange(n), (m, n)).copy(),
                     frame_size=np.ones(m), n_candidate_groups=np.ones(m, dtype=np.int64),
                     diagnostics={name: getattr(frame, name)
                                  for name in Frame.diagnostic_names},
                     frame_type=type(frame), row_choices=frame.row_choices)
