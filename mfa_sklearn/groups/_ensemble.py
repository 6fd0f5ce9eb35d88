"""Frame ensembles: several minimal frames per sample, from fixed re-orderings of rows.

**Why.** A minimal frame is one group element per sample: exact, and one backbone call.
Averaging the backbone over the frame elements of *any* finite set of equivariant frames
is exactly equivariant too (Puny et al. 2022): if ``F_1 .. F_k`` each satisfy
``F_i(g.x) = g F_i(x)``, so does their union, and the average
``(1/k) sum_i h_i . f(h_i^{-1} . x)`` over one element ``h_i`` of each is equivariant.
Fitting a smooth learner on all ``k`` canonical copies of every sample and averaging its
``k`` predictions is training augmentation and a test-time ensemble at once, which is
what makes the ``2^d`` sign-flip PCA frames learnable; here the copies are minimal
frames, which stay exact where PCA frames are not (repeated eigenvalues).

**Which frames.** Groups whose frames read the rows in index order (O, SO, E, SE, U, SU,
the Lorentz groups, GL, SL, Aff) give a different frame for each order of the rows. A
*fixed* re-ordering (the same index map for every sample) commutes with the group action,
which acts on every row alike, so the frame of the re-ordered rows is again an
equivariant frame of the sample. Member ``i`` of an ensemble of ``k`` uses the ``i``-th
of these orders of ``n`` rows:

* orders ``0 .. n-1``: the cyclic orders starting at row ``a``, ``a, a+1, .., a-1``
  (mod ``n``), so that row ``a`` is the *anchor*, the first candidate for the first
  frame vector;
* orders ``n .. 2n-1`` (for ``n >= 3``): the same anchors, the other rows in reverse
  cyclic order, ``a, a-1, .., a+1``.

Every frame-defining field is re-ordered within itself by the order of its own row
count (absent rows move with their rows).

**S_n x G.** Their frames order the rows themselves, so a fixed re-ordering of the input
rows changes nothing. There the ensemble re-orders the rows of the *canonical form*
``c = h^{-1} . x`` under S_n x G, whose rows are in canonical order: member ``i`` is the
G-frame ``k_i`` of ``c`` with its rows in order ``i`` (anchor: the ``i``-th ranked row),
composed with ``h``. Since ``c`` is invariant, ``G(c) = (1/k) sum_i k_i . f(k_i^{-1} .
c)`` is a function of the orbit, and the model ``h . G(c)`` (averaged over the
stabilizer by the S_n x G frame, as for one member) is exactly equivariant
(:class:`ComposedFrame`). ``n_frames=1`` is the identity order: the
plain minimal frame, bit for bit. The orders only change frames under row rules that
read the order, ``"first"`` and ``"first_above"``; pivoting picks the largest residual
wherever it sits, so ensembles of pivoted frames are refused.

**Cost.** ``k`` frame computations and ``k`` backbone calls per sample; outputs are mapped
back by each member's own frame and averaged (:meth:`FrameEnsemble.from_canonical`).

**Weighted frames near ties** (:func:`banded_frame`). A minimal frame is a piecewise
constant function of its input: ``"first_above"`` changes its choice where a row's
residual norm fraction (its residual norm over the largest eligible one) crosses
:data:`~mfa_sklearn.groups._selection.ROW_FRACTION` ``= f``, and the averaged model jumps
there. With a band ``beta``, the frame instead averages the rule over fractions ``tau``
spread smoothly over ``[f (1 - beta), f (1 + beta)]``. The choices are the same for
every ``tau`` between two *breaks* (the norm fractions that the selection compares),
so two frames do it: ``A``, the frame at the band's lower edge, and ``B`` at its upper
edge, with the weights

    ``w_A = s((b_A - lo) / (hi - lo))``, ``w_B = s((hi - b_B) / (hi - lo))``,
    normalised to sum 1,

where ``b_A`` is the smallest fraction of a row that ``A`` chose (above it ``A`` no
longer holds), ``b_B`` the largest fraction of a row that ``B`` passed over (below it
``B`` no longer holds), and ``s(u) = 3u^2 - 2u^3`` on ``[0, 1]``. A sample with no break
inside the band (``b_A >= hi``) has ``A = B``: one element of weight 1, and no second
frame or backbone call. With one break ``b`` in the band, ``b_A = b_B = b``, the weights
are the exact mass of the smooth ``tau`` distribution on either side of ``b``, and as
``b`` reaches an edge the weight of the frame that changes there goes to 0, so the
averaged model is continuous. With two breaks or more inside the band at once, the
frames between them get no weight, and the model can jump where a second break enters
or leaves the band while another one is inside (on random paths of 5-point clouds,
about 0.4 such jumps per path with ``beta = 0.2``, against 3.6 threshold crossings of
the plain rule). The breaks are norm fractions, invariant, so the weights are, and the
average is exactly equivariant. The weights are steep functions of the breaks, and at
the later steps of a nearly degenerate cloud the breaks are ratios of small residuals,
so E and SE centre the rows of weighted frames in two passes (the second removes the
mean of the centred rows): the rounding of a far centroid would otherwise shift all of
them alike, by ``eps |t|``, and move those ratios by ``eps |t|`` over the residuals.
Samples inside the band cost a second frame computation and backbone call
(``frame_size`` 2 in the diagnostics; elements of weight 0 are not evaluated).

References
----------
* G. Lin, J. Helwig, S. Gui, S. Ji. Equivariance via Minimal Frame Averaging for More
  Symmetries and Efficiency. ICML 2024, arXiv:2406.07598.
* O. Puny, M. Atzmon, H. Ben-Hamu, I. Misra, A. Grover, E. J. Smith, Y. Lipman. Frame
  Averaging for Invariant and Equivariant Network Design. ICLR 2022, arXiv:2110.03336.
"""

import copy

import numpy as np

from ._base import Frame, as_list, weighted_mean
from ._namespace import get_namespace
from ._selection import ROW_FRACTION, BandedRule

#: row rules under which fixed re-orderings of the rows give other frames
ORDERED_RULES = ("first", "first_above")


def n_row_orders(n):
    """How many distinct orders :func:`row_order` has for ``n`` rows: ``n`` cyclic ones,
    and as many reversed ones for ``n >= 3`` (for ``n <= 2`` they repeat the cyclic)."""
    return 2 * n if n >= 3 else max(n, 1)


def row_order(n, i):
    """The ``i``-th order of ``n`` rows (see the module docstring), an int array (n,).

    ``i`` counts modulo :func:`n_row_orders` (a field with fewer rows than the
    ensemble has members repeats its orders).
    """
    i = i % n_row_orders(n)
    anchor, step = (i, 1) if i < n else (i - n, -1)
    return (anchor + step * np.arange(n)) % n


def check_ensemble(group, n_frames, n_rows, rule, method, tie_band=0.0):
    """Raise a clear ValueError where ``n_frames`` ensembles, or weighted frames with
    ``tie_band``, are not available.

    Parameters
    ----------
    group : Group
    n_frames : int
    n_rows : int
        Rows of the first frame-defining field.
    rule : str
        The row rule.
    method : str
        The frame method.
    tie_band : float, default=0.0
        Relative half-width of the band of weighted frames (0: none).
    """
    if tie_band:
        check_tie_band(group, tie_band, rule, method)
    if n_frames == 1:
        return
    if (group.permutes_rows and group.ordered_factor is None) or group.d is None:
        raise ValueError(
            f"n_frames={n_frames}: frame ensembles re-order the rows of groups whose "
            f"frames read them in index order (O, SO, E, SE, U, SU, Lorentz, GL, SL, "
            f"Aff, and G in S_n x G); group {group.name} has none. Use n_frames=1")
    if method != "minimal":
        raise ValueError(f"n_frames={n_frames} needs frame='minimal'; got frame="
                         f"{method!r} (PCA frames already have several elements)")
    if rule not in ORDERED_RULES:
        raise ValueError(
            f"n_frames={n_frames} needs a row rule that reads the row order, one of "
            f"{list(ORDERED_RULES)}; row_rule={rule!r} picks the largest residual "
            "wherever it sits, so re-ordered rows would give the same frames")
    if n_frames > n_row_orders(n_rows):
        raise ValueError(
            f"n_frames={n_frames} exceeds the {n_row_orders(n_rows)} distinct row orders "
            f"of samples of {n_rows} frame-defining rows (cyclic orders, and reversed "
            "ones for 3 rows or more)")


def check_tie_band(group, tie_band, rule, method):
    """Raise a clear ValueError unless weighted frames with band ``tie_band > 0``
    are available for this group, rule and frame method."""
    if not 0.0 <= tie_band < 1.0:
        raise ValueError(f"tie_band must be in [0, 1) (a relative half-width around the "
                         f"row fraction {ROW_FRACTION}); got {tie_band!r}")
    if rule != "first_above":
        raise ValueError(f"tie_band={tie_band} weights the frames of the row rule "
                         f"'first_above' near its threshold; got row_rule={rule!r}")
    if method != "minimal":
        raise ValueError(f"tie_band={tie_band} needs frame='minimal'; got frame={method!r}")
    factor = group.ordered_factor
    if factor is not None and factor.metric is not None:
        why = ("its canonical ranking sorts rows by Minkowski squares, which the "
               "weights of near-tied orders do not read")
    elif factor is None and group.permutes_rows:
        why = "its frames order rows by exact keys (sorting, canonical labeling)"
    else:
        why = group.no_row_breaks_because
    if why is not None or not (group.row_breaks or factor.row_breaks):
        raise ValueError(
            f"tie_band={tie_band}: weighted frames are available for O, SO, E, SE, U, "
            f"SU, the Lorentz groups and S_n x G with G in O, SO, E, SE; not for group "
            f"{group.name}" + (f": {why}" if why else ""))


def ramp(xp, u):
    """``3u^2 - 2u^3`` of ``u`` clipped to [0, 1]: 0 and 1 at the ends, flat there, and
    ``s(u) + s(1 - u) = 1``."""
    u = xp.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def banded_frame(frame_of, points, vectors, present, band):
    """Weighted frames of the rule ``"first_above"`` averaged over a band of fractions
    (see the module docstring, 'Weighted frames near ties').

    Parameters
    ----------
    frame_of : callable
        ``frame_of(points, vectors, present, rule=...)`` -> Frame of a group with
        ``row_breaks``; every other input of the frame is ignored by those groups, so it
        may be called on a subset of the samples.
    points, vectors : list of arrays of shape (B, n, d)
    present : bool array of shape (B, n) or None
    band : float
        Relative half-width ``beta`` in (0, 1) of the band of fractions.

    Returns
    -------
    Frame
        Two elements per sample, with :attr:`~mfa_sklearn.groups._base.Frame.element_weights`
        (B, 2): the frame of the band's lower edge, weight 1 outside the band, and the
        frame of its upper edge (a copy of the first, of weight 0, outside the band).
    """
    lo, hi = ROW_FRACTION * (1.0 - band), ROW_FRACTION * (1.0 + band)
    first = frame_of(points, vectors, present, rule=BandedRule(lo))
    xp = get_namespace(first.H)
    low = first.row_breaks[0]
    inside = low < hi
    weight_first = ramp(xp, (low - lo) / (hi - lo))
    weight_second = xp.zeros_like(weight_first)
    H_second, conditioning = first.H, first.conditioning
    if bool(xp.any(inside)):
        second = frame_of([a[inside] for a in points], [a[inside] for a in vectors],
                          None if present is None else present[inside],
                          rule=BandedRule(hi))
        # each sample's row of the subset: scattered back by a gather, for numpy and torch
        position = xp.clip(xp.cumulative_sum(xp.astype(inside, xp.int64)) - 1, 0, None)
        H_second = xp.where(inside[:, None, None, None],
                            xp.take(second.H, position, axis=0), first.H)
        passed = xp.take(second.row_breaks[1], position, axis=0)
        weight_second = xp.where(inside, ramp(xp, (hi - passed) / (hi - lo)), 0.0)
        if conditioning is not None:
            conditioning = xp.where(inside, xp.maximum(
                conditioning, xp.take(second.conditioning, position, axis=0)), conditioning)
    total = weight_first + weight_second
    # both weights vanish only with breaks at both edges at once: equal weights there
    share = xp.where(total > 0, weight_first / xp.where(total > 0, total, 1.0), 0.5)
    frame = copy.copy(first)
    frame.H = xp.concat([first.H, H_second], axis=1)
    frame.element_weights = xp.stack([share, 1.0 - share], axis=1)
    frame.row_breaks, frame.conditioning = None, conditioning
    return frame


def _reordered(xp, a, order):
    """``a`` (B, n, ...) with its rows in ``order`` (n,)."""
    return xp.take(a, xp.asarray(order, device=a.device), axis=1)


def ensemble_frame(group, frame_of, points, vectors, present, n_frames, *, rule, tol,
                   tie_band=0.0):
    """The frames of ``n_frames`` fixed re-orderings of the frame-defining rows.

    Parameters
    ----------
    group : Group
    frame_of : callable
        ``frame_of(points, vectors, present)`` -> Frame: the group's frame of a batch
        (with every other argument bound).
    points, vectors : array of shape (B, n, d), or sequences of them
        Frame-defining rows.
    present : bool array of shape (B, n) or None
        Present rows of the per-row fields (re-ordered with them).
    n_frames : int
    rule : str
        Row rule (of G, for S_n x G).
    tol : float or None
        Rank tolerance (of G, for S_n x G).
    tie_band : float, default=0.0
        Weighted frames near ties with this band (see :func:`banded_frame`; with
        ``frame_of`` taking the keyword ``rule``), for each member; 0: none.

    Returns
    -------
    Frame, FrameEnsemble or ComposedFrame
        The plain frame for ``n_frames == 1`` and ``tie_band == 0``.
    """
    points, vectors = as_list(points), as_list(vectors)
    if tie_band and group.ordered_factor is not None:
        # near ties of the canonical ranking (the module imports this one)
        from ._ranked import ranked_frame
        return ranked_frame(group, frame_of, points, vectors, present, n_frames,
                            rule=rule, tol=tol, tie_band=tie_band)
    if tie_band:
        def banded(p, v, rows):
            return banded_frame(frame_of, p, v, rows, tie_band)
        return reordered_frames(banded, points, vectors, present, n_frames)
    if n_frames == 1 or group.ordered_factor is None:
        return reordered_frames(frame_of, points, vectors, present, n_frames)
    outer = frame_of(points, vectors, present)
    factor = group.ordered_factor

    def factor_frame(p, v, rows):
        return factor.frame(p or None, v or None, present=rows, rule=rule, tol=tol)

    inner = reordered_frames(factor_frame, *canonical_fields(outer, points, vectors, present),
                              n_frames)
    return ComposedFrame(outer, inner)


def canonical_fields(outer, points, vectors, present):
    """The frame-defining fields in the canonical form of ``outer`` (frames of one
    element per sample), and the present rows there (None: all).

    Returns
    -------
    points, vectors : list of arrays of shape (B, n, d)
    present : bool array of shape (B, n) or None
    """
    def canonical(a, kind):
        return outer.to_canonical(a, kind)[:, 0]

    if present is not None:
        xp = get_namespace(present)
        present = canonical(xp.astype(present, xp.float64)[..., None], "scalar")[..., 0] > 0
    return ([canonical(a, "point") for a in points], [canonical(a, "vector") for a in vectors],
            present)


def reordered_frames(frame_of, points, vectors, present, n_frames):
    """:func:`ensemble_frame` of a group whose frames read rows in index order."""
    if n_frames == 1:
        return frame_of(points, vectors, present)
    xp = get_namespace(*(points + vectors))
    members, orders = [], []
    for i in range(n_frames):
        def move(a, i=i):
            return _reordered(xp, a, row_order(a.shape[1], i))
        members.append(frame_of([move(a) for a in points], [move(a) for a in vectors],
                                None if present is None else move(present)))
        orders.append(i)
    return FrameEnsemble(members, orders)


class FrameEnsemble(Frame):
    """Several frames per sample, one backbone call each, outputs averaged.

    Member ``i`` was computed from the frame-defining rows in order ``i`` (see
    :func:`row_order`); each member maps fields and outputs with its own frame and
    translation, so the members need not share a centroid to the last bit.

    Parameters
    ----------
    members : list of Frame
        Frames of one element each (K = 1), of the same samples.
    orders : list of int
        The row order of each member.
    """

    def __init__(self, members, orders):
        self.members = list(members)
        self.orders = list(orders)
        first = self.members[0]
        self.is_complex = first.is_complex
        self.t = first.t
        for name in self.diagnostic_names:
            setattr(self, name, getattr(first, name))

    @property
    def H(self):
        """Frame elements (B, K, d, d) of all members, member-major."""
        xp = get_namespace(self.members[0].H)
        return xp.concat([m.H for m in self.members], axis=1)

    @property
    def n_samples(self):
        return self.members[0].n_samples

    @property
    def n_calls(self):
        return sum(m.n_calls for m in self.members)

    @property
    def size(self):
        """Frame elements per sample, of nonzero weight: the sum over the members."""
        total = self.members[0].size
        for m in self.members[1:]:
            total = total + m.size
        return total

    @property
    def element_weights(self):
        """Weights (B, K) of all elements, member-major (None where no member has any):
        each member's, over the number of members."""
        if all(m.element_weights is None for m in self.members):
            return None
        xp = get_namespace(self.members[0].H)
        parts = [m.element_weights if m.element_weights is not None
                 else xp.full((m.n_samples, m.n_calls), 1.0 / m.n_calls, dtype=xp.float64,
                              device=m.H.device)
                 for m in self.members]
        return xp.concat(parts, axis=1) / len(self.members)

    @property
    def diagnostics(self):
        """Per-sample diagnostics: the worst member's conditioning, the first member's
        rank, ``frame_size`` the number of members; projection flags of any member."""
        xp = get_namespace(self.members[0].H)
        values = dict(self.members[0].diagnostics)
        for name, value in values.items():
            if value is None:
                continue
            others = [m.diagnostics[name] for m in self.members[1:]]
            if name == "conditioning":
                for other in others:
                    value = xp.maximum(value, other)
            elif name == "projection_is_average":
                for other in others:
                    value = value & other
            elif name == "projected":
                for other in others:
                    value = value | other
            values[name] = value
        values["frame_size"] = self.size
        return values

    def to_canonical(self, x, kind="point"):
        """Canonical field (B, K, n, w) under every member, member-major."""
        xp = get_namespace(x)
        return xp.concat([m.to_canonical(x, kind) for m in self.members], axis=1)

    def _slices(self, y):
        """``y`` (B, K, ...) split into the members' slices."""
        start = 0
        for m in self.members:
            yield m, y[:, start:start + m.n_calls]
            start += m.n_calls

    def from_canonical(self, y, kind="point"):
        """Map outputs (B, K, ...) back with each member's frame and average them."""
        total = None
        for m, part in self._slices(y):
            out = m.from_canonical(part, kind)
            total = out if total is None else total + out
        return total / len(self.members)

    def average(self, y):
        """Average invariant outputs (B, K, ...) over the members' elements (weighted
        where the members have weights)."""
        xp = get_namespace(y)
        weights = self.element_weights
        if weights is not None:
            return weighted_mean(xp, y, weights)
        return y[:, 0] if y.shape[1] == 1 else xp.mean(y, axis=1)

    def snap(self, canon, offset=0):
        """Snap each member's slice of a frame-defining field's canonical form, with its
        rows in that member's order (frames that snap the rows which chose them need
        the order their frame saw)."""
        xp = get_namespace(canon)
        pieces = []
        for (m, part), i in zip(self._slices(canon), self.orders):
            if type(m).snap is Frame.snap:   # snapping by level ignores the row order
                pieces.append(m.snap(part, offset))
                continue
            order = row_order(part.shape[2], i)
            to_member = xp.asarray(order, device=part.device)
            back = xp.asarray(np.argsort(order), device=part.device)
            snapped = m.snap(xp.take(part, to_member, axis=2), offset)
            pieces.append(xp.take(snapped, back, axis=2))
        return xp.concat(pieces, axis=1)

    def to_real(self, z, kind="point"):
        return self.members[0].to_real(z, kind)

    def from_real(self, x, kind="point"):
        return self.members[0].from_real(x, kind)

    @property
    def present(self):
        return self.members[0].present

    @present.setter
    def present(self, value):
        for m in self.members:
            m.present = value

    @classmethod
    def _concat(cls, frames):
        """Concatenate ensembles of consecutive batches along the sample axis."""
        members = [type(group[0]).concat(list(group))
                   for group in zip(*(f.members for f in frames))]
        return cls(members, frames[0].orders)

    def __getitem__(self, index):
        """The ensembles of a selection of samples."""
        return type(self)([m[index] for m in self.members], self.orders)


class ComposedFrame(Frame):
    """A frame ``h`` of one element per sample (S_n x G) followed by frames ``k_i`` of the
    canonical form ``c = h^{-1} . x`` (a frame ensemble of G): canonical inputs
    ``k_i^{-1} . c``, outputs ``h . mean_i k_i . y_i``, averaged over the stabilizer of
    ``c`` by ``h``'s own ``from_canonical``.

    Parameters
    ----------
    outer : Frame
        Frames with one backbone call per sample (``n_calls == 1``).
    inner : Frame
        Frames of the canonical forms under ``outer``.
    """

    def __init__(self, outer, inner):
        self.outer, self.inner = outer, inner
        self.is_complex = outer.is_complex
        self.t = outer.t
        for name in self.diagnostic_names:
            setattr(self, name, getattr(outer, name, None))

    @property
    def H(self):
        """The inner frames' elements (B, K, d, d), relative to the canonical form."""
        return self.inner.H

    @property
    def n_samples(self):
        return self.outer.n_samples

    @property
    def n_calls(self):
        return self.inner.n_calls

    @property
    def diagnostics(self):
        """The outer frame's diagnostics, its conditioning the worse of both, and
        ``frame_size`` the outer size times the inner calls."""
        xp = get_namespace(self.inner.H)
        values = dict(self.outer.diagnostics)
        inner = self.inner.diagnostics
        if values.get("conditioning") is not None and inner.get("conditioning") is not None:
            values["conditioning"] = xp.maximum(values["conditioning"],
                                                inner["conditioning"])
        values["frame_size"] = values["frame_size"] * self.n_calls
        return values

    def to_canonical(self, x, kind="point"):
        """``k_i^{-1} . h^{-1} . x`` per member, (B, K, n, w) (edges (B, K, n, n, w))."""
        xp = get_namespace(x)
        c = self.outer.to_canonical(x, kind)
        if kind in ("point", "vector"):
            return self.inner.to_canonical(c[:, 0], kind)
        return xp.broadcast_to(c, (c.shape[0], self.n_calls) + tuple(c.shape[2:]))

    def from_canonical(self, y, kind="point"):
        """Outputs (B, K, ...) back through the inner frames (averaged), then ``h``."""
        xp = get_namespace(y)
        if kind in ("point", "vector"):
            mean = self.inner.from_canonical(y, kind)
        else:
            mean = y[:, 0] if y.shape[1] == 1 else xp.mean(y, axis=1)
        return self.outer.from_canonical(mean[:, None], kind)

    def average(self, y):
        """Invariant outputs (B, K, ...) averaged over the members."""
        xp = get_namespace(y)
        return y[:, 0] if y.shape[1] == 1 else xp.mean(y, axis=1)

    def snap(self, canon, offset=0):
        """The inner frames snap their own canonical rows."""
        return self.inner.snap(canon, offset)

    def to_real(self, z, kind="point"):
        return self.outer.to_real(z, kind)

    def from_real(self, x, kind="point"):
        return self.outer.from_real(x, kind)

    @property
    def present(self):
        return self.outer.present

    @present.setter
    def present(self, value):
        self.outer.present = value

    @classmethod
    def _concat(cls, frames):
        """Concatenate composed frames of consecutive batches."""
        return cls(type(frames[0].outer).concat([f.outer for f in frames]),
                   type(frames[0].inner).concat([f.inner for f in frames]))

    def __getitem__(self, index):
        """The composed frames of a selection of samples."""
        return type(self)(self.outer[index], self.inner[index])
