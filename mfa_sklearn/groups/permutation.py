"""S_n on sets of rows and on graphs, and the products S_n x O/SO/E/SE(d), S_n x O/SO(1,d-1).

groups.md sections 3.6, 3.7 and 4.12-4.16. Permutations act on the left,
``(sigma.x)_i = x_{sigma(i)}``, the geometric group on the right: ``P_sigma x T + b``.

* **S_n.** The canonical order is the lexicographic argsort of the concatenated per-row
  fields with exact comparisons. Exactly equal rows (ties) are averaged in the output:
  one backbone call, and the equivariance error is exactly 0.
* **S_n x G.** The rows define an invariant weighted graph (quantised Gram matrix, vertex
  colours from the quantised norms and the per-row scalar fields). If one round of colour
  refinement separates all rows (the vectorized fast path, almost every generic cloud),
  its order is canonical and the G-frame of the reordered rows finishes the job.
  Otherwise duplicate rows (twins) are collapsed and nauty (optional ``pynauty``)
  labels the graph canonically; the automorphisms give candidate orders, and the
  candidates whose canonical inputs are the (tolerant) lexicographic minimum form the
  stabilizer coset ``h Stab(c)``, over which one backbone output is averaged. Symmetric
  edge fields (bonds) add exact edge labels to the graph; the matrix group leaves them
  alone, and edge outputs are permuted back and averaged like the rows.
* **Graphs** (``"graph"``, or S_n with an ``edge`` field). ``A -> A[pi][:, pi]``, exact
  comparisons: colour refinement (vectorized) or nauty gives the canonical order; node
  outputs are averaged over the orbits of Aut, edge outputs over its orbitals.

Torch tensors: the combinatorial decisions (orders, ties, labelings) are made on a host
copy by the code below; the frame's arithmetic (gathers, G-frames, averages) then runs
on the tensors' device through the array namespace, so gradients reach the input.
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..exceptions import (FrameTooLargeError, MissingDependencyError, NonFiniteInputError,
                          first_indices)
from ._base import (FIELD_KINDS, Frame, Group, GroupElement, _result_dtype, _to_numpy,
                    as_list, check_kind, select, snap_below)
from ._namespace import (class_sums, get_namespace, like_frame, machine_eps, take_rows,
                         work_float)

__all__ = ["PermutationGroup", "GraphGroup", "PermutationProductGroup",
           "PermutationFrame", "PermutationElement"]

NAUTY_HINT = "pip install 'mfa_sklearn[nauty]'"


# ----------------------------------------------------------------------------- helpers
def _moved(frame, like):
    """``frame``, decided on the host, with its arrays on the device of ``like``.

    Returned as it is for numpy input. For tensors the row orders, tie labels and
    weights become tensors on ``like``'s device. ``H`` and ``t`` are left to the
    caller: the products recompute them there, differentiably. Diagnostics stay numpy."""
    if isinstance(like, np.ndarray):
        return frame
    xp = get_namespace(like)

    def move(a):
        return None if a is None else xp.asarray(a, device=like.device)

    for name in ("perms", "weights", "runs", "orbitals"):
        setattr(frame, name, move(getattr(frame, name)))
    return frame


def _gram_blocks(Z, lorentz=False):
    """Inner products ``K[b, i, j, p, q] = <Z[b, i, p], Z[b, j, q]>`` (Minkowski for
    ``lorentz``) of rows Z (B, n, k, d): (B, n, n, k, k).

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


def _lexsort_rows(keys):
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


def _runs(sorted_keys):
    """Run labels of equal consecutive rows of sorted keys (B, n, c): (B, n) int64,
    0, 0, 1, 2, 2, ...; a row equal to the previous one continues its run."""
    B, n = sorted_keys.shape[:2]
    new = np.ones((B, n), dtype=bool)
    new[:, 1:] = np.any(sorted_keys[:, 1:] != sorted_keys[:, :-1], axis=2)
    return np.cumsum(new, axis=1) - 1


def _dense_rank(keys):
    """Lexicographic dense rank of each row among the rows of its sample: (B, n) int64.

    Equal rows get equal ranks; the ranks are invariant under row permutations."""
    # the first column alone orders the samples where it has no ties (most of them)
    first = keys[:, :, 0]
    order = np.argsort(first, axis=1, kind="stable")
    sorted_first = take_rows(np, first, order)
    tied = np.flatnonzero(np.any(sorted_first[:, 1:] == sorted_first[:, :-1], axis=1))
    if len(tied) and keys.shape[2] > 1:
        order[tied] = _lexsort_rows(keys[tied])
    runs = _runs(take_rows(np, keys, order))
    rank = np.empty_like(runs)
    np.put_along_axis(rank, order, runs, axis=1)
    return rank


def _pack(columns, ranges, return_spans=False):
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


def _tie_sizes(runs):
    """Per sample, the product of the factorials of the run lengths (float), from run
    labels (B, n) of sorted rows: the position of each row inside its run, multiplied."""
    B, n = runs.shape
    position = np.arange(n)
    start = np.zeros_like(runs)
    new = np.ones((B, n), dtype=bool)
    new[:, 1:] = runs[:, 1:] != runs[:, :-1]
    start = np.maximum.accumulate(np.where(new, position, 0), axis=1)
    return np.prod((position - start + 1).astype(np.float64), axis=1)


def _block_mean(xp, y, labels):
    """Average the rows of y (B, n, w) over classes of equal labels (B, n).

    Labels are integers in ``0..n-1``; a sample whose labels are ``arange(n)`` has no
    classes to average. Runs of ties (0, 0, 1, 2, 2, ...) and first-occurrence labels
    (orbits, orbitals: see :func:`_first_occurrence`) both qualify. Out of place."""
    B, n, w = y.shape
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


def _first_occurrence(keys):
    """Per sample, the first position holding each key: (B, m) int -> (B, m) int64.

    ``out[b, p] = min {q : keys[b, q] == keys[b, p]}``, so distinct keys give
    ``arange(m)``; these are the class labels :func:`_block_mean` averages over."""
    B, m = keys.shape
    order = np.argsort(keys, axis=1, kind="stable")
    sorted_keys = take_rows(np, keys, order)
    new = np.ones((B, m), dtype=bool)
    new[:, 1:] = sorted_keys[:, 1:] != sorted_keys[:, :-1]
    start = np.maximum.accumulate(np.where(new, np.arange(m), 0), axis=1)
    out = np.empty((B, m), dtype=np.int64)
    np.put_along_axis(out, order, take_rows(np, order, start), axis=1)
    return out


def _pair_labels(runs):
    """Orbitals (orbits on ordered pairs, flattened ``i * n + j``) of the tie-class
    permutations of S_n frames, from their run labels (B, n): pairs are equivalent when
    their rows lie in the same classes and both are diagonal or both not. (B, n*n)."""
    B, n = runs.shape
    diagonal = np.eye(n, dtype=np.int64)
    keys = (runs[:, :, None] * n + runs[:, None, :]) * 2 + diagonal
    return _first_occurrence(keys.reshape(B, n * n))


def _refine_once(crank, pair_cols, ranges):
    """One round of colour refinement, vectorized over the batch (groups.md 3.7 step 3).

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
    # samples whose colours already differ: the signatures' first column decides
    done = np.all(np.sort(crank, axis=1) == np.arange(n), axis=1)
    if np.any(done):
        order = np.argsort(crank, axis=1)
        distinct = done.copy()
        rank = crank.copy()
        rest = np.flatnonzero(~done)
        if len(rest):
            order[rest], distinct[rest], rank[rest] = _refine_once(
                crank[rest], [col[rest] for col in pair_cols], ranges)
        return order, distinct, rank
    others = (np.arange(n)[:, None] + np.arange(1, n)[None, :]) % n   # (n, n-1), j != i
    rows = np.arange(n)[:, None]
    cols = [col[:, rows, others] for col in pair_cols] + [crank[:, others]]
    packed, spans = _pack(cols, list(ranges) + [n], return_spans=True)
    packed = np.stack(packed, axis=-1)                                # (B, n, n-1, c)
    c = packed.shape[-1]
    flat = packed.reshape(B * n, n - 1, c)
    pair_order = _lexsort_rows(flat)                 # sort the multiset per row
    sorted_pairs = take_rows(np, flat, pair_order)
    # signature columns, packed again (e.g. 7 pairs of a 0/1 graph per int64)
    sorted_pairs = sorted_pairs.reshape(B, n, (n - 1) * c)
    signature = _pack([crank] + [sorted_pairs[:, :, p] for p in range((n - 1) * c)],
                      [n] + spans * (n - 1))
    signature = np.stack(signature, axis=-1)                          # (B, n, columns)
    order = _lexsort_rows(signature)
    runs = _runs(take_rows(np, signature, order))
    rank = np.empty_like(runs)
    np.put_along_axis(rank, order, runs, axis=1)
    return order, runs[:, -1] == n - 1, rank


def _layered_graph(pynauty, N, labels, cell):
    """The layered bit-plane encoding of an undirected edge-labelled graph (groups.md 3.7
    step 5) as a ``pynauty.Graph``.

    Parameters
    ----------
    N : int
        Vertices (layer 0 holds them; vertex ``(layer, i)`` has id ``layer * N + i``).
    labels : ndarray of shape (N * (N - 1) // 2,), int
        Dense labels ``0..K-1`` of the pairs ``np.triu_indices(N, 1)`` (0: absent).
    cell : ndarray of shape (N,), int
        Dense vertex colours ``0..C-1`` of the layer-0 vertices (the ordered partition).
    """
    iu, ju = np.triu_indices(N, 1)
    n_labels = int(labels.max()) + 1 if len(labels) else 1
    L = max(1, int(math.ceil(math.log2(n_labels))))
    adjacency = {v: [] for v in range(N * L)}
    for layer in range(L):
        on = ((labels >> layer) & 1).astype(bool)
        for i, j in zip(iu[on].tolist(), ju[on].tolist()):
            adjacency[layer * N + i].append(layer * N + j)
        if layer + 1 < L:
            for i in range(N):
                adjacency[layer * N + i].append((layer + 1) * N + i)
    partition = [set(np.flatnonzero(cell == c).tolist()) for c in range(int(cell.max()) + 1)]
    partition += [set(range(layer * N, (layer + 1) * N)) for layer in range(1, L)]
    return pynauty.Graph(N * L, directed=False, adjacency_dict=adjacency,
                         vertex_coloring=partition)


def _check_per_row(name, arrays, what):
    """Every array (B, n, w), same B and n, numeric and finite."""
    B, n = arrays[0].shape[:2]
    for a in arrays:
        if a.ndim != 3:
            raise ValueError(f"group {name} takes per-row fields of shape (n_samples, "
                             f"n_rows, width); got {what} of shape {tuple(a.shape)}")
        if a.shape[0] != B or a.shape[1] != n:
            raise ValueError(f"group {name} permutes rows, so all per-row fields need the "
                             f"same number of samples and rows; got {(B, n)} and "
                             f"{tuple(a.shape[:2])}")
        if np.iscomplexobj(a) or not (np.issubdtype(a.dtype, np.floating)
                                      or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"group {name} needs real numeric rows; got dtype {a.dtype}")
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            bad = ~np.all(np.isfinite(a), axis=(1, 2))
            raise NonFiniteInputError(f"a field contains NaN or inf in {first_indices(bad)}; "
                                      "frames cannot be computed")
    if n == 0:
        raise ValueError(f"group {name} needs at least one row per sample")


# ------------------------------------------------------------------------------ frame
class PermutationFrame(Frame):
    """Frames of S_n and its products: a canonical row order plus G-frame elements.

    One backbone call per sample (``n_calls == 1``) on the canonical input
    ``P_pi (x - t) H_0^{-1}``. Outputs are averaged over ``S`` stored elements
    ``(pi_s, H_s)`` with weights, and over runs of tied rows in canonical order:
    ``mean_s P_{pi_s}^T (R(y) H_s) (+ t)``, where ``R`` averages tied rows.

    Parameters
    ----------
    perms : ndarray of shape (B, S, n)
        Row orders of the stored elements; element 0 defines the canonical input.
    H : ndarray of shape (B, S, d, d) or None
        G-frames of the elements (None for pure S_n).
    t : ndarray of shape (B, d) or None
        Translation for E/SE products.
    weights : ndarray of shape (B, S)
        Averaging weights (zero for padding).
    runs : ndarray of shape (B, n)
        Labels of tied rows (exact ties for S_n, twins for products), in canonical
        order, contiguous.
    frame_size : ndarray of shape (B,)
        Size of the finite stabilizer (float).
    lorentz : bool
        Whether ``H^{-1} = eta H^T eta`` (else ``H^T``).
    orbitals : ndarray of shape (B, n * n) or None
        Classes of vertex pairs ``(p, q)`` (flattened ``p * n + q``, canonical order) over
        which ``edge`` outputs are averaged, as first-occurrence labels (graphs: the
        orbitals of Aut). None: derived from ``runs`` (tie-class permutations).
    symmetrize : bool
        Whether ``edge`` fields are replaced by ``(A + A^T) / 2`` before canonicalizing.

    Notes
    -----
    For graphs ``runs`` holds the orbits of Aut in canonical order (first-occurrence
    labels, not contiguous); node outputs are averaged within orbits and edge outputs
    within orbitals, which is the exact average over Aut (groups.md 3.6).
    """

    diagnostic_names = Frame.diagnostic_names + ("labeling_path", "n_candidate_groups")

    def __init__(self, perms, H=None, t=None, *, weights, runs, frame_size, lorentz=False,
                 orbitals=None, symmetrize=False, **diagnostics):
        super().__init__(H, t, **diagnostics)
        self.perms = perms
        self.weights = weights
        self.runs = runs
        self.frame_size = frame_size
        self.lorentz = bool(lorentz)
        self.orbitals = orbitals
        self.symmetrize = bool(symmetrize)

    def _orbital_labels(self):
        """Classes of vertex pairs in canonical order, (B, n * n) (see ``orbitals``)."""
        if self.orbitals is not None:
            return self.orbitals
        labels = _pair_labels(_to_numpy(self.runs))
        if isinstance(self.runs, np.ndarray):
            return labels
        return get_namespace(self.runs).asarray(labels, device=self.runs.device)

    def _check_edge(self, x, what):
        n = self.perms.shape[2]
        if x.ndim != 4 or x.shape[1] != n or x.shape[2] != n:
            raise ValueError(f"an 'edge' {what} must have shape (n_samples, {n}, {n}, "
                             f"width); got {tuple(x.shape)}")

    @property
    def perm(self):
        """Canonical row order per sample, (B, n): the canonical input is ``x[perm]``."""
        return self.perms[:, 0]

    @property
    def n_samples(self):
        return self.perms.shape[0]

    @property
    def n_calls(self):
        return 1

    @property
    def size(self):
        return self.frame_size

    def _inverse(self):
        """``H_0^{-1}`` of the representative element, (B, 1, d, d)."""
        xp = get_namespace(self.H)
        H0 = self.H[:, 0]
        if self.lorentz:
            d = H0.shape[-1]
            eta = xp.asarray([1.0] + [-1.0] * (d - 1), dtype=H0.dtype, device=H0.device)
            H0 = H0 * (eta[:, None] * eta[None, :])
        inverse = H0.mT
        return (np.ascontiguousarray(inverse) if xp is np else inverse)[:, None]

    def to_canonical(self, x, kind="point"):
        """Canonical field ``P_pi (x - t) H^{-1}``, shape (B, 1, n, w), x's floating dtype.

        ``edge`` fields (B, n, n, w) become ``A[pi][:, pi]``, shape (B, 1, n, n, w)."""
        check_kind(kind, FIELD_KINDS)
        xp = get_namespace(x, self.perms)
        floating = xp.isdtype(x.dtype, "real floating")
        perm = self.perm
        if kind == "edge":
            self._check_edge(x, "field")
            if self.symmetrize:
                x = (x + xp.permute_dims(x, (0, 2, 1, 3))) / 2
            x = take_rows(xp, x, perm)
            x = xp.take_along_axis(x, perm[:, None, :, None], axis=2)
            return (x + 0.0 if floating else x)[:, None]
        gathered = take_rows(xp, x, perm)
        if kind == "scalar" or self.H is None:
            if floating:
                gathered = gathered + 0.0   # -0.0 and 0.0 tie; give both the same input
            return gathered[:, None]
        self._check_width(x, kind)
        x64 = like_frame(xp, gathered, self.H)
        level = None
        if not self.lorentz:  # exact zeros for coordinates at the rounding level, which
            # comes from the rows before centring
            level = (8.0 * x.shape[-1] * machine_eps(self.H.dtype)) * xp.max(
                xp.reshape(xp.abs(x64), (x64.shape[0], -1)), axis=1)
        if kind == "point" and self.t is not None:
            x64 = x64 - self.t[:, None, :]
        canon = x64[:, None] @ self._inverse()
        if level is not None:
            canon = snap_below(xp, canon, level)
        return xp.astype(canon, _result_dtype(xp, x), copy=False)

    def from_canonical(self, y, kind="point"):
        """Outputs (B, 1, n, w) in canonical order -> (B, n, w), averaged over the tied
        rows and the stored elements, then scattered back to the input's row order.

        ``edge`` outputs (B, 1, n, n, w) are averaged within orbitals, then scattered:
        ``Y_out[pi_i, pi_j] = Y_ij``."""
        check_kind(kind, FIELD_KINDS)
        xp = get_namespace(y, self.perms)
        if y.shape[1] != 1:
            raise ValueError(f"expected one canonical output per sample; got {y.shape[1]}")
        y0 = y[:, 0]
        if not xp.isdtype(y0.dtype, "real floating"):
            y0 = xp.astype(y0, xp.float64)        # averages of integer outputs are floats
        if kind == "edge":
            self._check_edge(y0, "output")
            B, n, _, w = y0.shape
            y0 = _block_mean(xp, xp.reshape(y0, (B, n * n, w)), self._orbital_labels())
            S = self.perms.shape[1]
            moved = xp.broadcast_to(xp.reshape(y0, (B, 1, n, n, w)), (B, S, n, n, w))
            inverse = xp.argsort(self.perms, axis=2)            # (B, S, n)
            back = xp.take_along_axis(moved, inverse[:, :, :, None, None], axis=2)
            back = xp.take_along_axis(back, inverse[:, :, None, :, None], axis=3)
            if S == 1:
                return back[:, 0]
            weights = xp.astype(self.weights, back.dtype)
            return xp.sum(weights[:, :, None, None, None] * back, axis=1)
        if y.shape[2] != self.perms.shape[2]:
            raise ValueError(
                f"group permutes rows: per-row outputs need the input's {self.perms.shape[2]} "
                f"rows; got {y.shape[2]} (use an invariant target for other row sets)")
        geometric = kind != "scalar" and self.H is not None
        dtype = y0.dtype
        if geometric:
            y0 = like_frame(xp, y0, self.H)
        y0 = _block_mean(xp, y0, self.runs)
        B, S, n = self.perms.shape
        if geometric:
            self._check_width(y0, kind)
            moved = y0[:, None] @ self.H                      # (B, S, n, d)
        else:
            moved = xp.broadcast_to(y0[:, None], (B, S) + tuple(y0.shape[1:]))
        inverse = xp.argsort(self.perms, axis=2)                # P_pi^T y: y[inverse]
        w = moved.shape[-1]
        back = xp.reshape(take_rows(xp, xp.reshape(moved, (B * S, n, w)),
                                    xp.reshape(inverse, (B * S, n))), (B, S, n, w))
        if S == 1:
            out = back[:, 0]
        else:
            weights = xp.astype(self.weights, back.dtype)
            out = xp.sum(weights[:, :, None, None] * back, axis=1)
        if geometric and kind == "point" and self.t is not None:
            out = out + self.t[:, None, :]
        return xp.astype(out, dtype, copy=False)

    def average(self, y):
        """Invariant outputs (B, 1, ...) are used as they are."""
        return y[:, 0]

    def _padded(self, S):
        """``perms``, ``H`` and ``weights`` padded to S stored elements (weight 0)."""
        B, s, n = self.perms.shape
        if s == S:
            return self.perms, self.H, self.weights
        xp = get_namespace(self.perms)
        device = self.perms.device
        perms = xp.concat([self.perms, xp.broadcast_to(self.perms[:, :1], (B, S - s, n))],
                          axis=1)
        weights = xp.concat([self.weights, xp.zeros((B, S - s), dtype=self.weights.dtype,
                                                    device=device)], axis=1)
        H = self.H
        if H is not None:
            H = xp.concat([H, xp.zeros((B, S - s) + tuple(H.shape[2:]), dtype=H.dtype,
                                       device=device)], axis=1)
        return perms, H, weights

    @classmethod
    def concat(cls, frames):
        """Concatenate frames of consecutive batches (padding the stored elements)."""
        frames = list(frames)
        if len(frames) == 1:
            return frames[0]
        S = max(f.perms.shape[1] for f in frames)
        perms, H, weights = zip(*(f._padded(S) for f in frames))

        def cat(values):
            if values[0] is None:
                return None
            return get_namespace(values[0]).concat(list(values), axis=0)

        orbitals = (None if all(f.orbitals is None for f in frames)
                    else cat([f._orbital_labels() for f in frames]))
        return cls(cat(perms), cat(H), cat([f.t for f in frames]), weights=cat(weights),
                   runs=cat([f.runs for f in frames]),
                   frame_size=cat([f.frame_size for f in frames]),
                   lorentz=frames[0].lorentz, orbitals=orbitals,
                   symmetrize=frames[0].symmetrize,
                   **{name: cat([getattr(f, name) for f in frames])
                      for name in cls.diagnostic_names})

    def __getitem__(self, index):
        def take(a):
            return select(a, index)

        return type(self)(take(self.perms), take(self.H), take(self.t),
                          weights=take(self.weights), runs=take(self.runs),
                          frame_size=take(self.frame_size), lorentz=self.lorentz,
                          orbitals=take(self.orbitals), symmetrize=self.symmetrize,
                          **{name: take(getattr(self, name))
                             for name in self.diagnostic_names})


@dataclass
class PermutationElement(GroupElement):
    """Random elements of S_n (x G): ``(sigma, T, b).x = P_sigma x T + b``.

    ``T`` and ``b`` are None for pure S_n. The permutations are drawn lazily for the
    number of rows a field has (the same permutation for every field of a sample).
    """

    seed: int = 0
    size: int = 0

    def permutation(self, n):
        """The permutations ``sigma`` (size, n) for fields with n rows."""
        rng = np.random.default_rng(self.seed)
        return np.argsort(rng.random((self.size, n)), axis=1)


class _PermutationBase(Group):
    """What S_n and its products share: all per-row fields define the frame."""

    #: the frame takes every per-row field (scalars for the order and colours)
    uses_all_fields = True
    #: row permutations: per-row outputs must keep the input's rows
    permutes_rows = True

    def labeling_backend(self):
        return labeling_backend()

    def _element_perm(self, g, x):
        """``P_sigma x``: the rows of x (B, n, ...) in the order of g's permutations."""
        xp = get_namespace(x)
        return take_rows(xp, x, xp.asarray(g.permutation(x.shape[1]), device=x.device))


# --------------------------------------------------------------------------------- S_n
class PermutationGroup(_PermutationBase):
    """The symmetric group S_n permuting the rows of a set (groups.md 4.12).

    The canonical order is the exact lexicographic order of the concatenated per-row
    fields; exactly equal rows are averaged in per-row outputs (Reynolds projection over
    ``prod m_k!`` tie permutations, never enumerated). No arithmetic touches the inputs,
    so invariance and equivariance are exact (error 0).
    """

    d = None
    #: S_n permutes edge fields too: with an edge field the frame is the graph's
    #: canonical labeling (see :class:`GraphGroup`)
    supports_edges = True
    #: whether edge fields are replaced by ``(A + A^T) / 2`` (see :class:`GraphGroup`)
    symmetrize = False

    @property
    def name(self):
        return "S_n"

    def default_frame_fields(self, fields):
        """Every point and vector field: all of them order the rows."""
        return [name for name, kind in fields if kind in ("point", "vector")]

    def frame(self, points=None, vectors=None, *, scalars=None, others=None, edges=None,
              method="minimal", tol=None, rule=None):
        """Canonical row orders of a batch.

        Parameters
        ----------
        points, vectors, scalars : array of shape (B, n, w), or sequences of them
            Per-row fields; all of them, concatenated in this order, define the order.
        others : sequence of (array, kind), optional
            Further per-row fields (also used).
        edges : array of shape (B, n, n, w), or a sequence of them, optional
            Edge fields (the first is the adjacency matrix). With edge fields the rows
            are the vertices of a graph and the frame is its canonical labeling, with
            the per-row fields as vertex colours (groups.md 4.16, :class:`GraphGroup`).
        method : {"minimal"}
        tol, rule : ignored
            Comparisons are exact.

        Returns
        -------
        PermutationFrame
        """
        self._check_method(method)
        given = (as_list(points) + as_list(vectors) + [a for a, _ in (others or [])]
                 + as_list(scalars))
        arrays = [_to_numpy(a) for a in given]
        if as_list(edges):
            edges = as_list(edges)
            frame = _graph_frame(self.name, [_to_numpy(a) for a in edges], arrays,
                                 self.symmetrize)
            return _moved(frame, edges[0])
        if not arrays:
            raise ValueError("group S_n needs at least one per-row field")
        _check_per_row(self.name, arrays, "a field")
        keys = np.concatenate([a.astype(np.float64, copy=False) for a in arrays],
                              axis=2) + 0.0   # -0.0 == 0.0
        order = _lexsort_rows(keys)
        runs = _runs(take_rows(np, keys, order))
        B = keys.shape[0]
        frame = PermutationFrame(order[:, None], None, None, weights=np.ones((B, 1)),
                                 runs=runs, frame_size=_tie_sizes(runs),
                                 labeling_path=np.full(B, "fast"),
                                 n_candidate_groups=np.ones(B, dtype=np.int64))
        return _moved(frame, given[0])

    def act(self, g, x, kind="point"):
        """``P_sigma x`` for every per-row kind; ``A[sigma][:, sigma]`` for "edge"."""
        check_kind(kind, FIELD_KINDS)
        if kind == "edge":
            x = self._element_perm(g, x)
            xp = get_namespace(x)
            sigma = xp.asarray(g.permutation(x.shape[1]), device=x.device)
            return xp.take_along_axis(x, sigma[:, None, :, None], axis=2)
        return self._element_perm(g, x)

    def random_element(self, size, random_state=None, **ignored):
        """Uniform random permutations (drawn for each field's row count)."""
        rng = np.random.default_rng(random_state)
        return PermutationElement(None, None, seed=int(rng.integers(2 ** 62)), size=size)


# ------------------------------------------------------------------------- graphs
class GraphGroup(PermutationGroup):
    """S_n acting on graphs by ``A -> P A P^T``, i.e. ``A[sigma][:, sigma]`` (groups.md 4.16).

    Registered as ``get_group("graph")``. ``get_group("S_n")`` with an ``edge`` field
    does the same (with ``symmetrize=False``); the ``graph`` group requires an edge field.
    The first edge field is the adjacency matrix (weighted or 0/1, symmetric); further
    edge fields and the diagonal add edge and vertex labels, per-row fields of any
    kind are vertex colours. All comparisons are exact (``-0.0 == 0.0``; NaN is
    rejected). If colour refinement separates the vertices (vectorized over the batch;
    repeated while it splits classes, since from uniform colours one round only sees
    degrees) its order is canonical; otherwise nauty (optional ``pynauty``) labels the
    graph canonically, and node outputs are averaged within the orbits of
    ``Aut``, edge outputs within its orbitals. One inner call per sample, and the
    equivariance error is exactly 0. ``frame_size`` is ``|Aut|`` (float, never
    enumerated).

    Parameters
    ----------
    symmetrize : bool, default=False
        Use ``(A + A^T) / 2`` for every edge field, in the frame and in the canonical
        input. Otherwise non-symmetric edge fields raise a ValueError.
    """

    #: layout of X when ``fields`` is None: one adjacency matrix
    default_fields = {"A": "edge"}

    def __init__(self, *, symmetrize=False):
        self.symmetrize = bool(symmetrize)

    @property
    def name(self):
        return "graph"

    def __repr__(self):
        return "GraphGroup(symmetrize=True)" if self.symmetrize else "get_group('graph')"

    def __eq__(self, other):
        return isinstance(other, GraphGroup) and other.symmetrize == self.symmetrize

    def __hash__(self):
        return hash((self.name, self.symmetrize))

    def frame(self, points=None, vectors=None, *, scalars=None, others=None, edges=None,
              method="minimal", tol=None, rule=None):
        """Canonical labelings of a batch of graphs; see :meth:`PermutationGroup.frame`."""
        if not as_list(edges):
            raise ValueError("group 'graph' needs an 'edge' field (the adjacency matrix, "
                             "n * n columns per sample), e.g. fields={'A': 'edge'}")
        return super().frame(points, vectors, scalars=scalars, others=others, edges=edges,
                             method=method, tol=tol, rule=rule)


def _check_edges(name, edges, nodes):
    """Edge fields (B, n, n, w) and node fields (B, n, k): shapes, dtypes, finiteness."""
    first = edges[0]
    if first.ndim != 4 or first.shape[1] != first.shape[2]:
        raise ValueError(f"group {name!r} takes edge fields of shape (n_samples, n, n, "
                         f"width); got {tuple(first.shape)}")
    B, n = first.shape[:2]
    if n == 0:
        raise ValueError(f"group {name!r} needs at least one vertex per sample")
    for a in edges:
        if a.shape[:3] != (B, n, n) or a.ndim != 4:
            raise ValueError(f"group {name!r}: all edge fields need shape ({B}, {n}, {n}, "
                             f"width); got {tuple(a.shape)}")
        if np.iscomplexobj(a) or not (np.issubdtype(a.dtype, np.floating)
                                      or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"group {name!r} needs real numeric edge fields; got dtype "
                             f"{a.dtype}")
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            bad = ~np.all(np.isfinite(a), axis=(1, 2, 3))
            raise NonFiniteInputError(
                f"an edge field contains NaN or inf in {first_indices(bad)}; frames "
                "cannot be computed")
    if nodes:
        _check_per_row(name, [edges[0][:, :, 0, :1]] + nodes, "a node field")


def _edge_matrix(name, edges, symmetrize):
    """The edge fields side by side, float64 (B, n, n, w), symmetric (or symmetrized),
    with ``-0.0`` replaced by ``0.0`` for exact comparisons."""
    A = np.concatenate([a.astype(np.float64, copy=False) for a in edges], axis=3)
    if symmetrize:
        A = (A + np.swapaxes(A, 1, 2)) / 2
    else:
        bad = np.flatnonzero(np.any(A != np.swapaxes(A, 1, 2), axis=(1, 2, 3)))
        if len(bad):
            asym = np.max(np.abs(A[bad] - np.swapaxes(A[bad], 1, 2)), axis=(1, 2, 3))
            hint = ("Pass symmetrize=True (GraphGroup(symmetrize=True)) to use (A + A^T)/2."
                    if name in ("graph", "S_n") else
                    "Symmetrize them first, e.g. (A + A^T)/2.")
            raise ValueError(
                f"group {name!r} needs symmetric adjacency matrices (edge fields); "
                f"{first_indices(bad)} are not: sample {bad[0]} has max abs(A - A^T) = "
                f"{asym[0]:.3g}. {hint}")
    return A + 0.0


def _graph_frame(name, edges, nodes, symmetrize):
    """Canonical labelings of edge-labelled, vertex-coloured graphs (groups.md 4.16).

    Parameters
    ----------
    name : str
        The group's name, for messages.
    edges : list of ndarray of shape (B, n, n, w)
        Edge fields; the first is the adjacency matrix.
    nodes : list of ndarray of shape (B, n, k)
        Node fields (vertex colours with the diagonals of the edge fields).
    symmetrize : bool
        Use ``(A + A^T) / 2`` instead of requiring symmetric edge fields.

    Returns
    -------
    PermutationFrame
        ``runs`` holds the orbits, ``orbitals`` the orbitals of Aut (canonical order).
    """
    _check_edges(name, edges, nodes)
    A = _edge_matrix(name, edges, symmetrize)
    B, n = A.shape[:2]
    diag = np.arange(n)
    colours = np.concatenate([A[:, diag, diag]] + [a.astype(np.float64) for a in nodes],
                             axis=2) + 0.0
    crank = _dense_rank(colours)
    codes, wide = _edge_codes(A)
    # colour refinement (1-WL): from uniform colours one round only gives degrees, so
    # refine the samples that still tie until their partition stops splitting
    order, distinct, rank = _refine_once(crank, codes, wide)
    todo = np.flatnonzero(~distinct & (rank.max(axis=1) > crank.max(axis=1)))
    while len(todo):
        before = rank[todo].max(axis=1)
        order[todo], distinct[todo], rank[todo] = _refine_once(
            rank[todo], [c[todo] for c in codes], wide)
        todo = todo[~distinct[todo] & (rank[todo].max(axis=1) > before)]

    perms = order.copy()
    runs = np.broadcast_to(np.arange(n), (B, n)).copy()
    orbitals = np.broadcast_to(np.arange(n * n), (B, n * n)).copy()
    size = np.ones(B)
    path = np.full(B, "fast", dtype="<U6")
    slow = np.flatnonzero(~distinct)
    if len(slow):
        pynauty = _import_pynauty(slow)
        for b in slow:
            lab, runs[b], orbitals[b], size[b] = _nauty_graph(pynauty, A[b], rank[b])
            perms[b] = lab
            path[b] = "search"
    return PermutationFrame(perms[:, None], None, None, weights=np.ones((B, 1)), runs=runs,
                            frame_size=size, orbitals=orbitals, symmetrize=symmetrize,
                            labeling_path=path,
                            n_candidate_groups=np.ones(B, dtype=np.int64))


def _edge_codes(A):
    """Exact integer codes of the edge values (B, n, n, w), one (B, n, n) column per
    edge field, with their ranges: ``value - min`` for small integer values (0/1
    graphs), else ranks among the batch's distinct values. Codes are injective and
    monotone per field, so orders built from them are canonical for each sample."""
    codes, ranges = [], []
    for e in range(A.shape[3]):
        values = A[..., e]
        low, high = values.min(), values.max()
        if high - low < 2 ** 20 and np.array_equal(values, np.floor(values)):
            codes.append((values - low).astype(np.int64))
            ranges.append(int(high - low) + 1)
        else:
            distinct, inverse = np.unique(values, return_inverse=True)
            codes.append(inverse.reshape(values.shape).astype(np.int64))
            ranges.append(len(distinct))
    return codes, ranges


def _nauty_graph(pynauty, A, cell):
    """Canonical labeling of one graph with nauty (layered encoding, groups.md 3.7).

    Parameters
    ----------
    A : ndarray of shape (n, n, w)
        Symmetric edge fields (exact values; ``-0.0`` already replaced by ``0.0``).
    cell : ndarray of shape (n,), int
        Canonical vertex colours (dense ranks), giving the ordered partition.

    Returns
    -------
    lab : ndarray of shape (n,)
        Canonical order: position p holds vertex ``lab[p]``.
    orbits : ndarray of shape (n,)
        Orbits of Aut, first-occurrence labels in canonical order.
    orbitals : ndarray of shape (n * n,)
        Orbitals of Aut (pairs ``p * n + q``), first-occurrence labels, canonical order.
    size : float
        ``|Aut|``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(cell)
    iu, ju = np.triu_indices(n, 1)
    # labels 0..K-1 by ascending value, 0 = the value 0 (absent) when present
    pairs = A[iu, ju]
    keys = np.concatenate([np.any(pairs != 0, axis=1, keepdims=True), pairs], axis=1)
    _, upper = np.unique(keys, axis=0, return_inverse=True)
    g = _layered_graph(pynauty, n, upper.ravel(), cell)
    generators, size1, size2, orbits, _ = pynauty.autgrp(g)
    lab = np.asarray(pynauty.canon_label(g)[:n], dtype=np.int64)
    orbits = np.asarray(orbits[:n], dtype=np.int64)
    # orbitals: union-find over ordered pairs (i, j) ~ (a(i), a(j)), one pass per generator
    pairs = np.arange(n * n)
    i, j = np.divmod(pairs, n)
    images = [np.asarray(gen[:n], dtype=np.int64) for gen in generators]
    src = np.concatenate([pairs] + [pairs for _ in images])
    dst = np.concatenate([pairs] + [a[i] * n + a[j] for a in images])
    _, component = connected_components(
        coo_matrix((np.ones(len(src)), (src, dst)), shape=(n * n, n * n)),
        directed=True, connection="weak")
    canonical_pairs = component.reshape(n, n)[lab][:, lab].reshape(1, n * n)
    return (lab, _first_occurrence(orbits[lab][None])[0],
            _first_occurrence(canonical_pairs)[0], float(size1) * 10.0 ** float(size2))


# ------------------------------------------------------------------------ S_n x G
class PermutationProductGroup(_PermutationBase):
    """S_n x G for G in O(d), SO(d), E(d), SE(d), O(1,d-1), SO(1,d-1) (groups.md 4.13-4.15).

    Parameters
    ----------
    inner : OrthogonalGroup or LorentzGroup
        The geometric factor; its frame is computed on the rows in canonical order.
    max_frame_size : int, default=10000
        Largest automorphism group enumerated for a symmetric sample; larger ones raise
        :class:`~mfa_sklearn.exceptions.FrameTooLargeError`.
    """

    #: edge fields (symmetric n x n matrices per sample, e.g. bonds) are permuted with
    #: the rows and label the invariant graph; the matrix group does not act on them
    supports_edges = True

    def __init__(self, inner, *, max_frame_size=10000):
        self.inner = inner
        self.d = inner.d
        self.has_translations = inner.has_translations
        self.lorentz = type(inner).__name__ == "LorentzGroup"
        self.max_frame_size = int(max_frame_size)

    @property
    def name(self):
        return f"S_n x {self.inner.name}"

    def __eq__(self, other):
        return (isinstance(other, PermutationProductGroup) and other.inner == self.inner
                and other.max_frame_size == self.max_frame_size)

    def __hash__(self):
        return hash((self.name, self.max_frame_size))

    def act(self, g, x, kind="point"):
        """``P_sigma x T + b`` by kind; ``A[sigma][:, sigma]`` for "edge"."""
        check_kind(kind, FIELD_KINDS)
        if kind == "edge":
            return PermutationGroup.act(self, g, x, kind)
        x = self._element_perm(g, x)
        return x if kind == "scalar" else self.inner.act(g, x, kind)

    def random_element(self, size, random_state=None, **kwargs):
        """Independent uniform permutations and random elements of G."""
        rng = np.random.default_rng(random_state)
        g = self.inner.random_element(size, rng, **kwargs)
        return PermutationElement(g.T, g.b, seed=int(rng.integers(2 ** 62)), size=size)

    # -------------------------------------------------------------------- frames
    def frame(self, points=None, vectors=None, *, scalars=None, others=None, edges=None,
              method="minimal", tol=None, rule="pivoted"):
        """Frames of a batch: canonical row orders, G-frames and stabilizer elements.

        Parameters
        ----------
        points, vectors : array of shape (B, n, d), or sequences of them
            Frame-defining rows (per row: one vector per field). For E/SE the centroid
            of the first point field is the translation.
        scalars : array of shape (B, n, k), or a sequence of them
            Per-row scalar fields: vertex colours (compared exactly).
        others : sequence of (array, kind), optional
            Other per-row point/vector fields: they take part in the choice among
            symmetric candidates (groups.md 3.7 step 6).
        edges : array of shape (B, n, n, w), or a sequence of them, optional
            Symmetric edge fields (bonds, adjacency): exact edge labels of the invariant
            graph, their diagonals vertex colours. The matrix group leaves them alone.
        method : {"minimal"}
        tol : float, optional
            Rank tolerance of the G-frame; default ``sqrt(eps)``.
        rule : {"pivoted", "first"}
            Row selection rule of the G-frame.

        Returns
        -------
        PermutationFrame
        """
        self._check_method(method)
        given_points, given_vectors = as_list(points), as_list(vectors)
        points = [_to_numpy(a) for a in given_points]
        vectors = [_to_numpy(a) for a in given_vectors]
        scalars = [_to_numpy(a) for a in as_list(scalars)]
        others = [(_to_numpy(a), kind) for a, kind in (others or [])]
        frame_rows = points + vectors
        if not frame_rows:
            raise ValueError(f"group {self.name} needs at least one frame-defining field")
        if self.has_translations and not points:
            raise ValueError(f"group {self.name} includes translations, fixed by the "
                             "centroid of a 'point' field; pass points")
        self.inner._check_rows(np, frame_rows + [a for a, _ in others])
        _check_per_row(self.name, frame_rows + [a for a, _ in others] + scalars, "a field")
        edge_matrix = None
        if as_list(edges):
            edges = [_to_numpy(a) for a in as_list(edges)]
            _check_edges(self.name, edges, [])
            if edges[0].shape[:2] != frame_rows[0].shape[:2]:
                n = frame_rows[0].shape[1]
                raise ValueError(
                    f"group {self.name}: edge fields need a row and a column per row of "
                    f"the per-row fields, shape ({frame_rows[0].shape[0]}, {n}, {n}, "
                    f"width); got {tuple(edges[0].shape)}")
            edge_matrix = _edge_matrix(self.name, edges, symmetrize=False)
        eps = max(machine_eps(a.dtype) if np.issubdtype(a.dtype, np.floating)
                  else machine_eps(np.float64) for a in frame_rows)
        delta = eps ** (1.0 / 3.0)
        B, n = frame_rows[0].shape[:2]
        data = _Data(self, points, vectors, scalars, others, tol, rule, delta)
        data.edges = edge_matrix

        graph = self._invariant_graph(data)
        order, distinct = self._fast_order(graph)
        fast = np.flatnonzero(distinct)
        slow = np.flatnonzero(~distinct)
        results = {}
        if len(fast):
            results["fast"] = (fast, self._fast_frames(data, order[fast], fast))
        if len(slow):
            results["search"] = (slow, self._search_frames(data, graph, slow))
        frame = _assemble(B, n, results, self.lorentz)
        like = (given_points + given_vectors)[0]
        if isinstance(like, np.ndarray):
            return frame
        frame = _moved(frame, like)
        frame.H, frame.t = self._geometry_on_device(given_points, given_vectors, results,
                                                    frame.perms.shape[1], tol, rule)
        return frame

    def _geometry_on_device(self, points, vectors, results, S, tol, rule):
        """``H`` (B, S, d, d) and ``t`` (B, d) of frames decided on the host, recomputed
        from the tensors themselves by the inner group's frame (the code the host ran),
        so that they live on the tensors' device and gradients flow through them.

        The fast path takes the rows in canonical order; the search path the means of
        twin classes in each kept candidate's class order (``recipes``)."""
        rows = [work_float(get_namespace(a), a) for a in points + vectors]
        xp = get_namespace(*rows)
        device, n_points = rows[0].device, len(points)

        def inner_frame(ordered):
            frame = self.inner.frame(ordered[:n_points] or None, ordered[n_points:] or None,
                                     tol=tol, rule=rule)
            return frame.H[:, 0], frame.t

        def padded(H):                                  # (m, s, d, d) -> (m, S, d, d)
            extra = (H.shape[0], S - H.shape[1]) + tuple(H.shape[2:])
            return xp.concat([H, xp.zeros(extra, dtype=H.dtype, device=device)], axis=1)

        Hs, ts, samples = [], [], []
        if "fast" in results:
            index, part = results["fast"]
            take = xp.asarray(index, device=device)
            order = xp.asarray(part["perms"][:, 0], device=device)
            H, t = inner_frame([take_rows(xp, xp.take(a, take, axis=0), order) for a in rows])
            Hs.append(padded(H[:, None]))
            ts.append(t)
            samples.append(index)
        if "search" in results:
            index, part = results["search"]
            for b, (twin, counts, class_orders) in zip(index.tolist(), part["recipes"]):
                m, N = class_orders.shape
                means = xp.asarray((twin[None, :] == np.arange(N)[:, None])
                                   / counts[:, None], dtype=rows[0].dtype,
                                   device=device)                         # (N, n)
                flat = xp.asarray(class_orders.reshape(-1), device=device)
                H, t = inner_frame([xp.reshape(xp.take(means @ a[b], flat, axis=0),
                                               (m, N, a.shape[2])) for a in rows])
                Hs.append(padded(H[None]))
                ts.append(None if t is None else t[:1])
                samples.append([b])
        # parts back into sample order
        source = xp.asarray(np.argsort(np.concatenate(samples)), device=device)
        H = xp.take(xp.concat(Hs, axis=0), source, axis=0)
        t = None if ts[0] is None else xp.take(xp.concat(ts, axis=0), source, axis=0)
        return H, t

    # ------------------------------------------------------------ invariant graph
    def _invariant_graph(self, data):
        """Vertex colours (B, n, c) and, on demand, the quantised Gram blocks of the
        invariant graph (see :class:`_Graph`)."""
        Z = data.centred_rows()                       # (B, n, k, d) float64
        B, n, k, d = Z.shape
        K = None
        if self.lorentz:     # the scale is the largest |entry| of the whole Gram matrix
            K = _gram_blocks(Z, lorentz=True)
            s = np.max(np.abs(K), axis=(1, 2, 3, 4))
            diag = K[:, np.arange(n), np.arange(n)]                  # (B, n, k, k)
        else:                # the scale is on the diagonal: the rest only where needed
            diag = _gram_blocks(Z.reshape(B * n, 1, k, d)).reshape(B, n, k, k)
            s = np.max(np.einsum("bipp->bip", diag), axis=(1, 2))
        unit = data.delta * np.where(s > 0, s, 1.0)
        diag_blocks = np.rint(diag / unit[:, None, None, None]).reshape(B, n, k * k)
        colours = [diag_blocks] + [a.astype(np.float64) for a in data.scalars]
        codes, ranges = [], []
        if data.edges is not None:      # exact edge labels; the diagonal colours vertices
            colours.append(data.edges[:, np.arange(n), np.arange(n)])
            codes, ranges = _edge_codes(data.edges)
        return _Graph(Z, K, unit, np.concatenate(colours, axis=2) + 0.0,
                      int(math.ceil(1.0 / data.delta)) + 2, codes, ranges)

    def _fast_order(self, graph):
        """One round of colour refinement: the signature of row i is its colour and the
        sorted multiset of (Q_ij block, edge labels ij, colour of j), j != i. Returns the
        lexicographic order of the signatures (B, n) and whether they are all distinct
        (B,). Samples whose colours already differ are ordered by them (the signatures'
        first column), without their Gram blocks."""
        n, k = graph.n, graph.k
        crank = _dense_rank(graph.colours)             # (B, n)
        order = np.argsort(crank, axis=1)
        distinct = np.all(take_rows(np, crank, order) == np.arange(n), axis=1)
        rest = np.flatnonzero(~distinct)
        if len(rest):
            R = graph.radius
            block = graph.quantised(rest).reshape(len(rest), n, n, k * k) + R   # >= 0
            order[rest], distinct[rest], _ = _refine_once(
                crank[rest], [block[..., p] for p in range(k * k)]
                + [c[rest] for c in graph.edge_codes],
                [2 * R + 1] * (k * k) + graph.edge_ranges)
        return order, distinct

    # ------------------------------------------------------------------ fast path
    def _fast_frames(self, data, order, index):
        """G-frames of the reordered rows; one element, no ties."""
        frame = data.inner_frame(index, order)
        m, n = order.shape
        return dict(perms=order[:, None], H=frame.H, t=frame.t, weights=np.ones((m, 1)),
                    runs=np.broadcast_to(np.arange(n), (m, n)).copy(),
                    frame_size=np.ones(m), labeling_path=np.full(m, "fast"),
                    n_candidate_groups=np.ones(m, dtype=np.int64),
                    **_inner_diagnostics(frame))

    # ---------------------------------------------------------------- search path
    def _search_frames(self, data, graph, index):
        """Per-sample canonical labeling with nauty, then candidate choice (3.7, 4-6)."""
        pynauty = _import_pynauty(index)
        Q = graph.quantised(index)
        parts = [self._search_one(pynauty, data, graph, Q[i], int(b))
                 for i, b in enumerate(index)]
        S = max(len(p["weights"]) for p in parts)
        out = {"recipes": [p.pop("recipe") for p in parts]}
        for key in parts[0]:
            values = [p[key] for p in parts]
            if key in ("perms", "H", "weights"):
                values = [_pad(v, S) for v in values]
            out[key] = np.stack(values) if values[0] is not None else None
        return out

    def _search_one(self, pynauty, data, graph, Q, b):
        colours = graph.colours[b]                                # (n, c); Q (n, n, k, k)
        edges = graph.edge_labels(b)                              # (n, n, e)
        n, k = graph.n, graph.k
        # 4. twins: same colour and the same full rows of Q and of the edge labels
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
        # 5. canonical labeling and automorphisms (layer-0 vertices are the classes)
        if n_classes == 1:
            order_c, autos = np.zeros(1, dtype=np.int64), np.zeros((1, 1), dtype=np.int64)
        else:
            order_c, autos = self._label(pynauty, Q, edges, rep, cell, b)
        # 6. candidates: orders a[pi] of the classes, G-frames of the class means
        cand = autos[:, order_c]                                   # (A, n_classes)
        frames, canon, row_orders = data.candidates(b, twin, counts, cand)
        tol = _entry_tolerance(canon, data.field_slices, data.delta)
        kept = _tolerant_minimum(canon, tol)
        rep_a = kept[0]
        m = len(kept)
        tie_size = float(np.prod([math.factorial(int(c)) for c in counts]))
        # runs of twins in canonical order: classes are contiguous, in order cand[rep_a]
        runs = np.repeat(np.arange(n_classes), counts[cand[rep_a]])
        diag = {key: value[rep_a] for key, value in _inner_diagnostics(frames).items()}
        return dict(recipe=(twin, counts, cand[kept]),
                    perms=row_orders[kept], H=frames.H[kept, 0],
                    t=None if frames.t is None else frames.t[rep_a],
                    weights=np.full(m, 1.0 / m), runs=runs,
                    frame_size=m * tie_size, labeling_path="search",
                    n_candidate_groups=_count_groups(canon, tol),
                    **diag)

    def _label(self, pynauty, Q, edges, rep, cell, b):
        """Layered bit-plane encoding of the collapsed graph (groups.md 3.7 step 5);
        returns the canonical order of the classes and the automorphism group elements
        (arrays mapping class -> class), enumerated up to ``max_frame_size``."""
        N = len(rep)
        k = Q.shape[-1]
        labels = edges[rep][:, rep]                     # symmetric: the same both ways
        Qc = Q[rep][:, rep]
        block = np.concatenate([Qc.reshape(N, N, k * k), labels], axis=2)
        # undirected label of {i, j}: the ordered pair (min, max) of the blocks B, B^T
        swapped = np.concatenate([np.swapaxes(Qc, 2, 3).reshape(N, N, k * k), labels],
                                 axis=2)
        less = _lex_less(block, swapped)[..., None]
        label_keys = np.concatenate([np.where(less, block, swapped),
                                     np.where(less, swapped, block)], axis=2)
        iu, ju = np.triu_indices(N, 1)
        _, labels = np.unique(label_keys[iu, ju], axis=0, return_inverse=True)
        g = _layered_graph(pynauty, N, labels.ravel(), cell)
        generators, size1, size2, _, _ = pynauty.autgrp(g)
        size = size1 * 10.0 ** size2
        if size > self.max_frame_size:
            raise FrameTooLargeError(
                f"sample {b}: the symmetry group found for this sample has "
                f"{size:.0f} elements, above max_frame_size={self.max_frame_size}; raise "
                "max_frame_size, or use fewer symmetric samples")
        lab = np.asarray(pynauty.canon_label(g)[:N], dtype=np.int64)
        gens = [np.asarray(gen[:N], dtype=np.int64) for gen in generators]
        return lab, _enumerate_group(gens, N, self.max_frame_size, b)


# ---------------------------------------------------------------- shared per-batch data
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


class _Data:
    """The fields of one batch, as the product frames need them."""

    def __init__(self, group, points, vectors, scalars, others, tol, rule, delta):
        self.group, self.tol, self.rule, self.delta = group, tol, rule, delta
        self.points = [p.astype(np.float64, copy=False) for p in points]
        self.vectors = [v.astype(np.float64, copy=False) for v in vectors]
        self.scalars = scalars
        self.others = [(a.astype(np.float64, copy=False), kind) for a, kind in others]
        self.edges = None       # symmetric edge fields (B, n, n, w), set by the caller
        # canonical-input fields for the candidate comparison, with column slices
        fields = ([(p, "point") for p in self.points] + [(v, "vector") for v in self.vectors]
                  + self.others + [(s.astype(np.float64, copy=False), "scalar")
                                   for s in scalars])
        self.fields = fields
        widths = np.cumsum([0] + [a.shape[2] for a, _ in fields])
        self.field_slices = [slice(int(a), int(b)) for a, b in zip(widths[:-1], widths[1:])]

    def centred_rows(self):
        """Frame-defining rows (B, n, k, d), points centred by the first's centroid."""
        points = self.points
        if self.group.has_translations:
            t = points[0].mean(axis=1, keepdims=True)
            points = [p - t for p in points]
        return np.stack(points + self.vectors, axis=2)

    def inner_frame(self, index, order, rows=None):
        """G-frames of the frame-defining rows of samples ``index`` in row order ``order``
        (``rows`` replaces the rows, e.g. twin-class means)."""
        if rows is None:
            rows = [a[index] for a in self.points + self.vectors]
        take = [take_rows(np, a, order) for a in rows]
        n_points = len(self.points)
        return self.group.inner.frame(take[:n_points] or None, take[n_points:] or None,
                                      tol=self.tol, rule=self.rule)

    def candidates(self, b, twin, counts, cand):
        """For candidate class orders ``cand`` (A, n_classes) of sample b: G-frames of
        the class means, canonical inputs (A, n, W) and full row orders (A, n)."""
        A, N = cand.shape
        means = []
        for a in self.points + self.vectors:
            sums = np.zeros((N, a.shape[2]))
            np.add.at(sums, twin, a[b])
            means.append(np.broadcast_to(sums / counts[:, None], (A, N, a.shape[2])))
        frames = self.inner_frame(None, cand, rows=means)
        canon_rows = np.concatenate(
            [_canonical_rows(frames, a[b], kind)
             for a, kind in self.fields], axis=2)                # (A, n, W), rows as given
        position = np.argsort(cand, axis=1)                      # class -> place
        keys = np.concatenate([position[:, twin][..., None].astype(np.float64),
                               canon_rows], axis=2)
        row_orders = _lexsort_rows(keys)                          # (A, n)
        canon = take_rows(np, canon_rows, row_orders)
        return frames, canon, row_orders


def _canonical_rows(frames, x, kind):
    """Rows of one sample's field x (n, w) in the coordinates of each candidate frame."""
    A = frames.H.shape[0]
    x = np.broadcast_to(x, (A,) + x.shape)
    if kind == "scalar":
        return x
    return frames.to_canonical(x, kind)[:, 0]


def _lex_less(a, b):
    """Elementwise lexicographic ``a < b`` over the last axis."""
    diff = a != b
    first = np.argmax(diff, axis=-1)
    av = np.take_along_axis(a, first[..., None], axis=-1)[..., 0]
    bv = np.take_along_axis(b, first[..., None], axis=-1)[..., 0]
    return np.any(diff, axis=-1) & (av < bv)


def _tolerant_minimum(canon, tol):
    """Candidates whose canonical inputs (A, n, W) are the lexicographic minimum when
    entries within ``tol`` (per column, :func:`_entry_tolerance`) count as equal
    (groups.md 3.7 step 6)."""
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


def _entry_tolerance(canon, slices, delta):
    """Per column of the candidates' canonical inputs (A, n, W): ``delta`` times the
    largest magnitude of the column's field."""
    tol = np.empty(canon.shape[2])
    for s in slices:
        scale = np.max(np.abs(canon[..., s])) if canon[..., s].size else 0.0
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
    """Pad the leading (element) axis of a per-sample array to S entries."""
    extra = S - a.shape[0]
    if extra == 0:
        return a
    if a.ndim == 1:            # weights
        return np.concatenate([a, np.zeros(extra)])
    if a.ndim == 2:            # perms: repeat the first (weight 0)
        return np.concatenate([a, np.broadcast_to(a[:1], (extra, a.shape[1]))])
    return np.concatenate([a, np.zeros((extra,) + a.shape[1:])])


def _inner_diagnostics(frame):
    return {name: getattr(frame, name) for name in Frame.diagnostic_names}


def _assemble(B, n, results, lorentz):
    """One PermutationFrame from the fast-path and search-path parts."""
    S = max(part["perms"].shape[1] for _, part in results.values())
    first = next(iter(results.values()))[1]
    d = first["H"].shape[-1]
    perms = np.broadcast_to(np.arange(n), (B, S, n)).copy()
    H = np.zeros((B, S, d, d))
    weights = np.zeros((B, S))
    runs = np.zeros((B, n), dtype=np.int64)
    t = None if first["t"] is None else np.zeros((B, d))
    frame_size = np.ones(B)
    path = np.full(B, "fast", dtype="<U6")
    groups = np.ones(B, dtype=np.int64)
    diag = {name: None for name in Frame.diagnostic_names}
    for index, part in results.values():
        s = part["perms"].shape[1]
        perms[index, :s] = part["perms"]
        H[index, :s] = part["H"]
        weights[index, :s] = part["weights"]
        runs[index] = part["runs"]
        if t is not None:
            t[index] = part["t"]
        frame_size[index] = part["frame_size"]
        path[index] = part["labeling_path"]
        groups[index] = part["n_candidate_groups"]
        for name in diag:
            value = np.asarray(part[name])
            if diag[name] is None:
                diag[name] = np.zeros((B,), dtype=value.dtype)
            diag[name][index] = value
    return PermutationFrame(perms, H, t, weights=weights, runs=runs, frame_size=frame_size,
                            lorentz=lorentz, labeling_path=path, n_candidate_groups=groups,
                            **diag)


@functools.lru_cache(maxsize=None)
def labeling_backend():
    """The canonical labeling backend of the search path, with its version, e.g.
    ``"pynauty 2.8.8.1 (nauty2_8_8)"`` (groups.md 3.7 step 7), or a note that none is
    installed (then only samples the colour refinement separates can be labeled)."""
    try:
        import pynauty
    except ImportError:
        return "none (pynauty is not installed)"
    return f"pynauty {pynauty.__version__} ({getattr(pynauty, '_nauty_version', 'nauty')})"


def _import_pynauty(index):
    try:
        import pynauty
    except ImportError:
        raise MissingDependencyError(
            f"{first_indices(index)} have tied vertex signatures (symmetric or repeated "
            "rows) and need a canonical labeling search; install the optional extra: "
            f"{NAUTY_HINT} (pynauty)") from None
    return pynauty
