"""Frames of S_n and of S_n x G: canonical row orders, group elements and averaging.

Permutations act on the left, ``(sigma . x)_i = x_{sigma(i)}``, the geometric group on
the right: ``(sigma, T, b) . x = P_sigma x T + b``. A frame stores per sample the
canonical row order ``pi``, optionally the G-frame ``H`` (rows: frame vectors) and the
translation ``t``, so the canonical input of a row field is

    c(x) = P_pi (x - t) H^{-1},

where ``H^{-1}`` is the geometric factor's own inverse (``H^T`` for O(d), ``eta H^T eta``
for the Lorentz groups), and edge fields become ``A[pi][:, pi]``.

**One call, then Reynolds.** A minimal frame is a coset ``h Stab(c)`` of the stabilizer
of the canonical form (Lin et al.): the backbone ``Phi`` runs once, on ``c(x)``, and its
output is averaged over the stabilizer and mapped back,

    <Phi>(x) = mean_{s in S} P_{pi_s}^T (R(Phi(c)) H_s) (+ t),

where the ``S`` stored elements ``(pi_s, H_s)`` (weights summing to 1) are the part of
the stabilizer that moves the geometry (the point group of a symmetric cloud) and ``R``
averages per-row outputs over the classes of rows that the rest of the stabilizer
permutes freely: runs of exactly equal rows (S_n), of twin rows (S_n x G), or the orbits
of ``Aut`` (graphs), whose ``prod m_k!`` or ``|Aut|`` elements are never enumerated.
Edge outputs are averaged within the orbitals (orbits on ordered pairs) the same way.
Fields on other rows than the permuted ones (a centroid, a dipole) feel the geometric
factor alone: ``(x - t) H^{-1}`` in, ``mean_s y H_s (+ t)`` out.
Invariant outputs need no average: every element sees the same canonical input. With
several stored elements the canonical input of a geometric field is the weighted mean
of theirs, ``c = mean_s P_{pi_s} (x - t) H_s^{-1}``: the same to rounding on an exactly
symmetric sample, but on one off its symmetry by less than the tie tolerance the
elements' inputs differ, and only a function of the whole set is invariant.

**Host and device.** The combinatorial decisions (orders, ties, labelings) are made on a
host copy of the inputs. For torch tensors the frame's index arrays are then moved to the
tensors' device, and the products recompute ``H`` and ``t`` there from the tensors
themselves, so that the arithmetic of the frame (gathers, G-frames, averages) runs on
the device and gradients reach the input.

References
----------
Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More Symmetries and
Efficiency. ICML 2024, arXiv:2406.07598.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._base import (
    FIELD_KINDS,
    Frame,
    GroupElement,
    check_kind,
    result_dtype,
    select,
    snap_below,
    to_numpy,
)
from .._namespace import (
    get_namespace,
    isdtype,
    largest_per_sample,
    like_frame,
    machine_eps,
    take_rows,
)
from ._ranking import block_mean, pair_labels
from ._row_products import row_products


class PermutationFrame(Frame):
    """Frames of S_n and its products: a canonical row order plus G-frame elements.

    One backbone call per sample (``n_calls == 1``) on the canonical input
    ``P_pi (x - t) H_0^{-1}`` (with several stored elements, the weighted mean of
    theirs for geometric fields). Outputs are averaged over ``S`` stored elements
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
    frame_type : type, default=Frame
        The geometric factor's :class:`~mfa_sklearn.groups.Frame` class, whose
        ``_apply_inverse`` maps rows to the canonical coordinates of ``H_0`` (the
        default: ``H_0^T``, orthonormal frames).
    metric : ndarray of shape (d,), optional
        The geometric factor's metric diagonal (:attr:`Group.metric`); None for the
        Euclidean groups, whose canonical coordinates at the rounding level of the
        rows are snapped to exact zeros.
    orbitals : ndarray of shape (B, n * n) or None
        Classes of vertex pairs ``(p, q)`` (flattened ``p * n + q``, canonical order) over
        which ``edge`` outputs are averaged, as first-occurrence labels (graphs: the
        orbitals of Aut). None: derived from ``runs`` (tie-class permutations).
    symmetrize : bool
        Whether ``edge`` fields are replaced by ``(A + A^T) / 2`` before canonicalizing.
    present : array of shape (B, n) of bool, optional
        Present rows in the input's order (None: all). Absent rows come last in every
        stored order; their canonical inputs and outputs are zeros (for edge fields:
        every pair with an absent vertex), so that neither depends on the group element
        (``-t H^{-1}`` would) nor on where the absent rows sit.
    labeling_path : ndarray of shape (B,) of str, optional
        ``"fast"`` (sorting or colour refinement) or ``"search"`` (nauty).
    n_candidate_groups : ndarray of shape (B,), optional
        Number of distinct candidate canonical inputs (1 without a search).
    rank, conditioning, projected, projection_is_average : ndarray of shape (B,), optional
        The G-frames' diagnostics (see :class:`~mfa_sklearn.groups.Frame`).

    Notes
    -----
    For graphs ``runs`` holds the orbits of Aut in canonical order (first-occurrence
    labels, not contiguous); node outputs are averaged within orbits and edge outputs
    within orbitals, which is the exact average over Aut: by the orbit-stabilizer
    theorem, ``mean_{a in Aut} (P_a y)_i`` is the mean of y over the orbit of i.
    """

    diagnostic_names = Frame.diagnostic_names + ("labeling_path", "n_candidate_groups")

    #: :meth:`to_canonical` gives zeros on the rows (and pairs) that ``present`` marks
    #: absent, so callers holding the same mask need not zero them again
    zeros_absent_rows = True

    def __init__(self, perms, H=None, t=None, *, weights, runs, frame_size,
                 frame_type=Frame, metric=None, orbitals=None, symmetrize=False,
                 present=None, **diagnostics):
        super().__init__(H, t, **diagnostics)
        self.perms = perms
        self.weights = weights
        self.runs = runs
        self.frame_size = frame_size
        self.frame_type = frame_type
        self.metric = metric
        self.orbitals = orbitals
        self.symmetrize = bool(symmetrize)
        self.present = present

    def _orbital_labels(self):
        """Classes of vertex pairs in canonical order, (B, n * n) (see ``orbitals``)."""
        if self.orbitals is not None:
            return self.orbitals
        labels = pair_labels(to_numpy(self.runs))
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

    def _apply_inverse(self, x):
        """``x H_0^{-1}`` for x of shape (B, 1, n, d), by the geometric factor's frame
        type, for the representative element 0 alone.

        The geometric factor gives ``H_0^{-1}`` (its inverse applied to the identity:
        a transpose with signs, exact); the rows are then multiplied by it with
        :func:`~._row_products.row_products`, so that a row's canonical coordinates do
        not depend on how many rows the sample has or where the row sits (padded
        samples with absent rows get the bits of the unpadded ones)."""
        H0 = self.H[:, :1]
        xp = get_namespace(x, H0)
        d = H0.shape[-1]
        eye = xp.broadcast_to(xp.eye(d, dtype=H0.dtype, device=H0.device), H0.shape)
        return row_products(xp, x, self.frame_type(H0)._apply_inverse(eye))

    def to_canonical(self, x, kind="point"):
        """Canonical field ``P_pi (x - t) H^{-1}``, shape (B, 1, n, w), x's floating dtype.

        ``edge`` fields (B, n, n, w) become ``A[pi][:, pi]``, shape (B, 1, n, n, w)."""
        return self._representable("_to_canonical", x, kind, "canonical inputs")

    def _to_canonical(self, x, kind):
        """:meth:`to_canonical` without the overflow guard."""
        canon = self._canonical_input(x, kind)
        if not self._permuted(x, kind):
            return canon
        return self._zero_absent(get_namespace(canon), canon, canonical=True, fresh=True)

    def _permuted(self, x, kind):
        """Whether the field ``x`` lives on the permuted rows (edge fields always do);
        fields on other rows (one row: a centroid, a dipole) have no absent rows and
        feel the geometric factor only."""
        return kind == "edge" or x.shape[1] == self.perms.shape[2]

    def _canonical_input(self, x, kind):
        """:meth:`to_canonical` without the overflow guard and the zeros of absent
        rows.

        A sample with several stored elements gets the weighted mean of their
        canonical inputs of geometric fields. The elements are the candidates whose
        canonical inputs agree within the tie tolerance; on an exactly symmetric sample
        they agree to rounding, but on one slightly off its symmetry (by less than the
        tolerance, more than rounding) they differ, and the first element's input alone
        would depend on which candidate the labeling listed first: not invariant, so a
        backbone that is discontinuous (a tree) would break exact equivariance. The
        mean depends on the set of elements only."""
        canon = self._first_element_input(x, kind)
        if self.H is None or kind in ("scalar", "edge") or self.perms.shape[1] == 1:
            return canon   # scalars and edges: the same input for every element
        several = np.flatnonzero(np.count_nonzero(to_numpy(self.weights), axis=1) > 1)
        if not len(several):
            return canon
        xp = get_namespace(canon)
        B, S = self.perms.shape[:2]
        device = self.perms.device
        rows = xp.asarray(np.repeat(several, S), device=device)          # (m * S,)
        flat = xp.asarray((several[:, None] * S + np.arange(S)).ravel(), device=device)

        def each(a):   # (B, S, ...) -> (m * S, 1, ...): one stored element per row
            a = xp.reshape(a, (B * S,) + tuple(a.shape[2:]))
            return xp.take(a, flat, axis=0)[:, None]

        single = self._like(each(self.perms), each(self.H), select(self.t, rows),
                            weights=None, runs=None, frame_size=None, orbitals=None,
                            diagnostics={})
        inputs = single._first_element_input(xp.take(x, rows, axis=0), kind)
        inputs = xp.reshape(inputs, (len(several), S) + tuple(inputs.shape[2:]))
        weights = xp.reshape(xp.astype(each(self.weights), inputs.dtype),
                             (len(several), S) + (1,) * (inputs.ndim - 2))
        mean = xp.sum(weights * inputs, axis=1)[:, None]
        source = np.arange(B)
        source[several] = B + np.arange(len(several))
        return xp.take(xp.concat([canon, mean], axis=0),
                       xp.asarray(source, device=device), axis=0)

    def _first_element_input(self, x, kind):
        """The canonical input of x by the first stored element of each sample."""
        check_kind(kind, FIELD_KINDS)
        xp = get_namespace(x, self.perms)
        floating = isdtype(xp, x.dtype, "real floating")
        perm = self.perm
        if kind == "edge":
            self._check_edge(x, "field")
            if self.symmetrize:
                x = (x + xp.permute_dims(x, (0, 2, 1, 3))) / 2
            x = take_rows(xp, x, perm)
            x = xp.take_along_axis(x, perm[:, None, :, None], axis=2)
            return (x + 0.0 if floating else x)[:, None]
        if not self._permuted(x, kind):
            return self._whole_sample_input(xp, x, kind, floating)
        gathered = take_rows(xp, x, perm)
        if kind == "scalar" or self.H is None:
            if floating:
                gathered = gathered + 0.0   # -0.0 and 0.0 tie; give both the same input
            return gathered[:, None]
        self._check_width(x, kind)
        x64 = like_frame(xp, gathered, self.H)
        if xp is np and isdtype(xp, x64.dtype, "real floating"):
            return self._canonical_rows_numpy(x64, kind, x.shape[-1],
                                              result_dtype(xp, x))
        level = None
        if self.metric is None:
            # exact zeros for coordinates at the rounding level, which comes from the
            # rows before centring; the level holds for orthonormal H only, so Lorentz
            # frames (entries that grow with the boost) are not snapped
            level = (8.0 * x.shape[-1] * machine_eps(self.H.dtype)) * largest_per_sample(
                xp, x64)
        if kind == "point" and self.t is not None:
            x64 = x64 - self.t[:, None, :]
        canon = self._apply_inverse(x64[:, None])
        if level is not None:
            canon = snap_below(xp, canon, level)
        return xp.astype(canon, result_dtype(xp, x), copy=False)

    def _whole_sample_input(self, xp, x, kind, floating):
        """Canonical input of a field on other rows than the permuted ones: ``(x - t)
        H^{-1}`` (points; vectors without ``t``), scalars as they are; (B, 1, m, w)."""
        if kind == "scalar" or self.H is None:
            return (x + 0.0 if floating else x)[:, None]
        self._check_width(x, kind)
        x64 = like_frame(xp, x, self.H)
        if kind == "point" and self.t is not None:
            x64 = x64 - self.t[:, None, :]
        return xp.astype(self._apply_inverse(x64[:, None]), result_dtype(xp, x), copy=False)

    def _canonical_rows_numpy(self, rows, kind, width, dtype):
        """:meth:`_canonical_input` of real numpy rows (B, n, d), already in canonical
        order and the frame's precision, with the batch axis innermost.

        The same operations as the general path, elementwise or as maxima (so the same
        bits): the snapping level from the largest ``|x|`` of each sample, ``- t`` for
        points, the products of :func:`~._row_products.row_products` with ``H_0^{-1}``,
        snapping, on a coordinate-major copy (d, n, B) that a single 2-D transpose brings
        back.
        Returns (B, 1, n, d) of ``dtype``."""
        B, n, d = rows.shape
        H0 = self.H[:, :1]
        eye = np.broadcast_to(np.eye(d, dtype=H0.dtype), H0.shape)
        inverse = self.frame_type(H0)._apply_inverse(eye)[:, 0]        # (B, d, e)
        e = inverse.shape[-1]
        rows_c = np.ascontiguousarray(np.transpose(rows, (2, 1, 0)))   # (d, n, B)
        level = None
        if self.metric is None:   # see the general path
            scale = 8.0 * width * machine_eps(self.H.dtype)
            level = scale * np.max(np.abs(rows_c).reshape(d * n, B), axis=0)
        if kind == "point" and self.t is not None:
            rows_c -= np.ascontiguousarray(self.t.T)[:, None, :]
        inverse_c = np.ascontiguousarray(np.transpose(inverse, (1, 2, 0)))   # (d, e, B)
        out_dtype = np.result_type(rows_c, inverse_c)
        out = np.empty((n, e, B), dtype=out_dtype)
        scratch = np.empty((n, B), dtype=out_dtype)
        for j in range(e):
            column = out[:, j]
            np.multiply(rows_c[0], inverse_c[0, j], out=column)
            for k in range(1, d):
                column += np.multiply(rows_c[k], inverse_c[k, j], out=scratch)
        if level is not None:
            np.copyto(out, 0.0, where=np.abs(out) <= level)
        canon = np.transpose(out.reshape(n * e, B)).reshape(B, 1, n, e)
        return np.array(canon, dtype=dtype, order="C")

    def _scattered_back(self, xp, moved, n_axes):
        """``P_{pi_s}^T`` applied to per-element outputs ``moved`` (B, S, n, ..., w) on
        their first ``n_axes`` row axes (2 for edge outputs), then the weighted mean over
        the S elements: (B, n, ..., w)."""
        inverse = xp.argsort(self.perms, axis=2)                # P_pi^T y: y[inverse]
        B, S, n = self.perms.shape
        if n_axes == 2:
            back = xp.take_along_axis(moved, inverse[:, :, :, None, None], axis=2)
            back = xp.take_along_axis(back, inverse[:, :, None, :, None], axis=3)
        else:
            w = moved.shape[-1]
            back = xp.reshape(take_rows(xp, xp.reshape(moved, (B * S, n, w)),
                                        xp.reshape(inverse, (B * S, n))), (B, S, n, w))
        return self._element_mean(xp, back)

    def _element_mean(self, xp, values):
        """The weighted mean of per-element values (B, S, ...) over the S elements."""
        B, S = values.shape[:2]
        if S == 1:
            return values[:, 0]
        weights = xp.reshape(xp.astype(self.weights, values.dtype),
                             (B, S) + (1,) * (values.ndim - 2))
        return xp.sum(weights * values, axis=1)

    def from_canonical(self, y, kind="point"):
        """Outputs (B, 1, n, w) in canonical order -> (B, n, w), averaged over the tied
        rows and the stored elements, then scattered back to the input's row order.

        ``edge`` outputs (B, 1, n, n, w) are averaged within orbitals, then scattered:
        ``Y_out[pi_i, pi_j] = Y_ij``."""
        return self._representable("_from_canonical", y, kind, "outputs mapped back")

    def _from_canonical(self, y, kind):
        """:meth:`from_canonical` without the overflow guard."""
        out = self._output(y, kind)
        if not self._permuted(out, kind):
            return out
        return self._zero_absent(get_namespace(out), out, canonical=False)

    def _output(self, y, kind):
        """:meth:`from_canonical` without the overflow guard and the zeros of absent
        rows."""
        check_kind(kind, FIELD_KINDS)
        xp = get_namespace(y, self.perms)
        if y.shape[1] != 1:
            raise ValueError(f"expected one canonical output per sample; got {y.shape[1]}")
        y0 = y[:, 0]
        if not isdtype(xp, y0.dtype, "real floating"):
            y0 = xp.astype(y0, xp.float64)        # averages of integer outputs are floats
        B, S, n = self.perms.shape
        if kind == "edge":
            self._check_edge(y0, "output")
            w = y0.shape[-1]
            y0 = block_mean(xp, xp.reshape(y0, (B, n * n, w)), self._orbital_labels())
            moved = xp.broadcast_to(xp.reshape(y0, (B, 1, n, n, w)), (B, S, n, n, w))
            return self._scattered_back(xp, moved, 2)
        whole_sample = not self._permuted(y0, kind)   # other rows: no order to undo
        geometric = kind != "scalar" and self.H is not None
        dtype = y0.dtype
        if geometric:
            y0 = like_frame(xp, y0, self.H)
        if not whole_sample:
            y0 = block_mean(xp, y0, self.runs)
        if geometric:
            self._check_width(y0, kind)
            moved = row_products(xp, y0[:, None], self.H)    # (B, S, n, d)
        else:
            moved = xp.broadcast_to(y0[:, None], (B, S) + tuple(y0.shape[1:]))
        out = (self._element_mean(xp, moved) if whole_sample
               else self._scattered_back(xp, moved, 1))
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

    def _like(self, perms, H, t, *, weights, runs, frame_size, orbitals, diagnostics,
              present=None):
        """A frame of this type, geometric factor and edge treatment with other arrays."""
        return type(self)(perms, H, t, weights=weights, runs=runs, frame_size=frame_size,
                          frame_type=self.frame_type, metric=self.metric,
                          orbitals=orbitals, symmetrize=self.symmetrize, present=present,
                          **diagnostics)

    def _present_rows(self):
        """The present rows (B, n) of bool, in the namespace of ``perms``."""
        if self.present is not None:
            return self.present
        xp = get_namespace(self.perms)
        return xp.ones(tuple(self.perms.shape[::2]), dtype=xp.bool,
                       device=self.perms.device)

    def _zero_absent(self, xp, values, canonical, fresh=False):
        """``values`` (B, [1,] n, [n,] w) with the rows (edge fields: the pairs) of
        absent rows set to zero; in canonical order (absent rows last) if
        ``canonical``, else in the input's order. ``fresh``: values is an array of the
        caller's own, which numpy zeroes in place."""
        if self.present is None:
            return values
        present = self.present
        if (canonical and isinstance(values, np.ndarray) and values.ndim == 4
                and values.shape[1] == 1 and isinstance(present, np.ndarray)):
            out = values if fresh and values.flags.c_contiguous else values.copy()
            out.reshape(-1, out.shape[-1])[self._absent_canonical_rows()] = 0
            return out
        if canonical:
            count = xp.sum(xp.astype(present, xp.int64), axis=1)
            present = xp.arange(present.shape[1], device=present.device) < count[:, None]
        edge = values.ndim == (5 if canonical else 4)
        if edge:
            present = present[:, :, None] & present[:, None, :]
        if canonical:
            present = present[:, None]
        if isinstance(values, np.ndarray) and present.shape == values.shape[:-1]:
            # a copy with the few absent rows zeroed: several times faster than a
            # `where` whose mask broadcasts over the short last axis
            out = values if fresh else values.copy()
            out[~present] = 0
            return out
        return xp.where(present[..., None], values, xp.zeros_like(values))

    def _absent_canonical_rows(self):
        """Indices into the ``B * n`` rows of (B, 1, n, w) canonical arrays of the
        absent rows (each sample's last rows), numpy ``present``. Every field
        canonicalized with this frame zeroes the same rows: they are computed once per
        ``present`` array (an integer scatter is several times faster than a boolean
        mask over every row)."""
        cached = getattr(self, "_absent_rows", None)
        if cached is None or cached[0] is not self.present:
            n = self.present.shape[1]
            count = np.count_nonzero(self.present, axis=1)
            cached = (self.present, np.flatnonzero(np.arange(n) >= count[:, None]))
            self._absent_rows = cached
        return cached[1]

    @classmethod
    def _concat(cls, frames):
        """Concatenate frames of consecutive batches (padding the stored elements)."""
        S = max(f.perms.shape[1] for f in frames)
        perms, H, weights = zip(*(f._padded(S) for f in frames))

        def cat(values):
            if values[0] is None:
                return None
            return get_namespace(values[0]).concat(list(values), axis=0)

        orbitals = (None if all(f.orbitals is None for f in frames)
                    else cat([f._orbital_labels() for f in frames]))
        present = (None if all(f.present is None for f in frames)
                   else cat([f._present_rows() for f in frames]))
        return frames[0]._like(
            cat(perms), cat(H), cat([f.t for f in frames]), weights=cat(weights),
            runs=cat([f.runs for f in frames]),
            frame_size=cat([f.frame_size for f in frames]), orbitals=orbitals,
            diagnostics={name: cat([getattr(f, name) for f in frames])
                         for name in cls.diagnostic_names}, present=present)

    def __getitem__(self, index):
        def take(a):
            return select(a, index)

        return self._like(take(self.perms), take(self.H), take(self.t),
                          weights=take(self.weights), runs=take(self.runs),
                          frame_size=take(self.frame_size), orbitals=take(self.orbitals),
                          diagnostics={name: take(getattr(self, name))
                                       for name in self.diagnostic_names},
                          present=take(self.present))


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


@dataclass(frozen=True)
class Labeling:
    """The combinatorial part of a batch's permutation frames, decided on the host.

    Attributes
    ----------
    perms : ndarray of shape (B, S, n)
        Row orders of the stored elements.
    weights : ndarray of shape (B, S)
        Their averaging weights.
    runs : ndarray of shape (B, n)
        Classes of rows averaged in per-row outputs (ties, twins or orbits).
    frame_size : ndarray of shape (B,)
        Size of the finite stabilizer (float).
    labeling_path : ndarray of shape (B,) of str
        ``"fast"`` (colour refinement or sorting) or ``"search"`` (nauty).
    n_candidate_groups : ndarray of shape (B,)
        Number of distinct candidate canonical inputs.
    orbitals : ndarray of shape (B, n * n), optional
        Classes of vertex pairs averaged in edge outputs (see :class:`PermutationFrame`).
    diagnostics : dict, optional
        The G-frames' diagnostics (:attr:`Frame.diagnostic_names`), (B,) each.
    """

    perms: Any
    weights: Any
    runs: Any
    frame_size: Any
    labeling_path: Any
    n_candidate_groups: Any
    orbitals: Any = None
    diagnostics: dict = field(default_factory=dict)

    def frame(self, like, H=None, t=None, **options):
        """The PermutationFrame of these decisions, with ``H`` and ``t`` as given.

        Parameters
        ----------
        like : ndarray or tensor
            An input of the batch. For tensors the row orders, weights, tie labels and
            orbitals move to its device; the other diagnostics stay numpy.
        H, t : array, optional
            The G-frames and translation, already on ``like``'s device.
        **options
            ``frame_type``, ``metric``, ``symmetrize`` and ``present`` of
            :class:`PermutationFrame`.
        """
        xp = None if isinstance(like, np.ndarray) else get_namespace(like)

        def move(a):
            return a if xp is None or a is None else xp.asarray(a, device=like.device)

        return PermutationFrame(move(self.perms), H, t, weights=move(self.weights),
                                runs=move(self.runs), frame_size=self.frame_size,
                                orbitals=move(self.orbitals),
                                labeling_path=self.labeling_path,
                                n_candidate_groups=self.n_candidate_groups,
                                **options, **self.diagnostics)
