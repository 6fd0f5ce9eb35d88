"""The group interface: ``Group``, ``Frame`` and ``GroupElement``.

**Minimal frame averaging** (Lin et al. 2024). A frame maps an input ``x`` to a set of
group elements ``F(x)`` with ``F(g.x) = g F(x)``; averaging a backbone ``f`` over it,
``mean_{h in F(x)} h.f(h^{-1}.x)``, is exactly equivariant (Puny et al. 2022). Every
frame is a union of cosets of the stabilizer ``Stab(x) = {g : g.x = x}``, so the
smallest ones are ``F(x) = h Stab(c)``, where ``c = h^{-1}.x`` is a *canonical form*: a
point of the orbit of ``x`` that depends only on the orbit. Every element of such a
frame maps ``x`` to ``c``, so the frame average is

    ``h . R(f(c))``, with ``R(y) = mean_{s in Stab(c)} s.y``:

one backbone call on the canonical input, then the average of its output over the
stabilizer (the Reynolds projection), then ``h`` (left out for invariant outputs).
Generic inputs have a trivial stabilizer, and this is plain canonicalization,
``h.f(h^{-1}.x)``.

**Conventions.** A batch of rows has shape ``(B, n, d)``: ``B`` samples of ``n`` rows in
``R^d`` (``C^d`` for U and SU). Matrix groups act on the right, on every row:
``g.x = x T + b`` (``b``, a row added to every row, only for groups with translations).
A frame element is stored per sample as a ``d x d`` matrix ``H``, whose rows are the
*frame vectors*, and a translation ``t`` (the centroid of a point field, or None), and
acts as ``h.y = y H + t``. Field kinds transform differently:

* ``"point"``: canonical input ``(x - t) H^{-1}``, output restored as ``y H + t``;
* ``"vector"``: canonical input ``v H^{-1}``, output ``y H`` (never centred);
* ``"scalar"``: unchanged both ways (the group does not act on it);
* ``"edge"`` (``n x n`` per sample): only groups that permute rows act on it,
  ``A[pi][:, pi]``.

The frame is equivariant, ``H(x T + b) = H(x) T`` and ``t(x T + b) = t(x) T + b``, so
the canonical input is invariant. ``H^{-1}`` is never formed by a general inverse:
``H^T`` for orthonormal rows, ``H^H`` for unitary ones, ``eta H^T eta`` for Lorentz
frames, a linear solve for GL, SL and Aff (``Frame._apply_inverse`` and its overrides).
One frame per sample is computed from the frame-defining fields and applied to every
field of the sample.

**Stabilizers.** A sample whose frame-defining rows span only ``r < d`` dimensions has a
continuous stabilizer acting on the complement of the span. For O, SO, E, SE, U, SU, and
for Lorentz frames whose span contains a timelike vector, it is compact, with Haar mean
zero (the groups ``O(k)``, ``U(k)`` with ``k >= 1``, ``SO(k)``, ``SU(k)`` with
``k >= 2``), so the stabilizer average of an output is its projection onto the span. A
frame does this by leaving rows ``r .. d-1`` of ``H`` at zero: the canonical input has
exact zeros there and ``y H`` drops the output's other components. Where the stabilizer
is non-compact (Lorentz with a purely spacelike span) no invariant average exists; the
projection is still equivariant, and the diagnostic ``projection_is_average`` is False.
GL, SL and Aff reject rank-deficient input for the same reason (``RankDeficientError``).
Finite stabilizers (ties and symmetries that permute rows) are handled by the
permutation groups. PCA frames (Puny et al.) instead have ``2^d`` elements (``2^(d-1)``
for SO, SE) and need one backbone call each (``n_calls``).

**Tolerances and snapping.** Frames are computed in float64 (complex128) by default
whatever the input dtype. Every discrete decision compares an invariant quantity with a
threshold relative to an invariant scale of the same sample: the rank tolerance is
``tol = sqrt(eps)`` by default, with ``eps`` the machine epsilon of the least precise of
the inputs and the working precision (1.5e-8 for float64, 3.5e-4 for float32), and the
matrix groups break near-ties by index within the relative band ``delta = eps^(1/3)``.
Coordinates of the frame-defining rows along later frame vectors are zero in exact
arithmetic; frames of the orthonormal kinds set a ``snap_level`` (``8 d eps`` times the
rows' magnitude) and :meth:`Frame.snap` sets canonical coordinates at or below it to
exactly 0. Frames of GL, SL and Aff map the rows that chose them to fixed rows (unit
vectors, up to SL's scale); their ``snap`` sets those rows to their exact values
within the solve's rounding level, so all samples of one orbit share one canonical
form bit for bit.

**Magnitudes.** Frames work at any magnitude the dtype holds: each sample's
frame-defining rows are multiplied by the power of two that brings their largest entry
near 1 before any product (squares of rows near ``1e154`` would overflow float64, those
of rows near ``1e-154`` underflow), which is exact and changes no decision, and
translations and snapping levels are scaled back. Canonical inputs and outputs mapped
back can still exceed the dtype's largest value (centred and rotated rows, boosted
ones); :meth:`Frame.to_canonical` and :meth:`Frame.from_canonical` then raise
:class:`~mfa_sklearn.exceptions.ResultOverflowError`, never return an infinity from
finite values.

References
----------
* G. Lin, J. Helwig, S. Gui, S. Ji. Equivariance via Minimal Frame Averaging for More
  Symmetries and Efficiency. ICML 2024, arXiv:2406.07598.
* O. Puny, M. Atzmon, H. Ben-Hamu, I. Misra, A. Grover, E. J. Smith, Y. Lipman. Frame
  Averaging for Invariant and Equivariant Network Design. ICLR 2022, arXiv:2110.03336.
"""

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import MagnitudeError, NonFiniteInputError, ResultOverflowError, first_indices
from ._namespace import (
    all_finite,
    get_namespace,
    isdtype,
    largest_per_sample,
    like_frame,
    machine_eps,
    on_host,
    per_sample,
    power_of_two_scale,
    stacked_matmul,
    work_dtype,
    work_eps,
)

KINDS = ("point", "vector", "scalar")
#: every field kind a layout may hold: ``edge`` fields (n x n matrices per sample,
#: e.g. adjacency matrices) exist only for groups that permute rows, ``A[pi][:, pi]``
FIELD_KINDS = KINDS + ("edge",)


def check_dimension(d, least=1, meaning="the dimension"):
    """``d`` as an int; a ValueError that says what ``d`` means where it is not an
    integer of at least ``least``."""
    if isinstance(d, bool) or int(d) != d or d < least:
        raise ValueError(f"{meaning} must be an integer d >= {least}; got d={d!r}")
    return int(d)


def check_kind(kind, allowed=KINDS):
    if kind not in allowed:
        raise ValueError(f"unknown field kind {kind!r}; expected one of {list(allowed)}")


def complex_from_real(x):
    """Real blocks ``[Re | Im]`` of shape (..., 2w) -> complex array of shape (..., w).

    complex64 for float32 blocks, complex128 otherwise (integers included).
    """
    xp = get_namespace(x)
    width = x.shape[-1]
    if width % 2:
        raise ValueError("complex rows are stored as real blocks [Re | Im] of even width "
                         f"2d; got width {width}")
    dtype = xp.complex64 if x.dtype == xp.float32 else xp.complex128
    half = width // 2
    return xp.astype(x[..., :half], dtype) + xp.astype(x[..., half:], dtype) * 1j


def real_from_complex(z):
    """Complex array of shape (..., w) -> real blocks ``[Re | Im]`` of shape (..., 2w)."""
    xp = get_namespace(z)
    if not isdtype(xp, z.dtype, "complex floating"):  # real rows: zero imaginary part
        return xp.concat([z, xp.zeros_like(z)], axis=-1)
    return xp.concat([xp.real(z), xp.imag(z)], axis=-1)


class _RealBlocks:
    """Complex point/vector fields <-> the real blocks scikit-learn estimators hold.

    Estimators take real X, so the fields of a complex group (U, SU) travel as real
    blocks ``[Re | Im]`` of width ``2d`` per row. For real groups both conversions are
    the identity, as they are for scalar fields of every group.
    """

    #: whether the group acts on complex rows (U, SU)
    is_complex = False

    def from_real(self, x, kind="point"):
        """A field as the frames take it: real blocks (..., n, 2d) -> complex (..., n, d).

        Identity for real groups and for scalar and edge fields.
        """
        check_kind(kind, FIELD_KINDS)
        if not self.is_complex or kind in ("scalar", "edge"):
            return x
        return complex_from_real(x)

    def to_real(self, z, kind="point"):
        """Inverse of :meth:`from_real`: complex (..., n, d) -> real blocks (..., n, 2d)."""
        check_kind(kind, FIELD_KINDS)
        if not self.is_complex or kind in ("scalar", "edge"):
            return z
        return real_from_complex(z)


def weighted_mean(xp, y, weights):
    """``sum_k weights[:, k] y[:, k]`` of ``y`` (B, K, ...) and ``weights`` (B, K)."""
    real = xp.real(y[:1, :1]).dtype if isdtype(xp, y.dtype, "complex floating") else y.dtype
    w = xp.astype(weights, real)
    return xp.sum(y * xp.reshape(w, tuple(w.shape) + (1,) * (y.ndim - 2)), axis=1)


def snap_below(xp, canon, level):
    """``canon`` (B, K, n, w) with entries of magnitude at most ``level`` (B,) set to 0.

    Complex entries have their real and imaginary parts snapped separately (the
    imaginary part of a frame row's coordinate along its own frame vector vanishes
    while the real part does not). In place for numpy arrays (callers pass fresh ones),
    out of place otherwise. A tensor keeps the gradient of the snapped entries: the
    snap corrects their value by rounding, the coordinate still moves with the input
    (cutting it made forces at rounding distance from a symmetric cluster jump)."""
    level = xp.reshape(level, (-1,) + (1,) * (canon.ndim - 1))
    if isdtype(xp, canon.dtype, "complex floating"):
        if isinstance(canon, np.ndarray):
            snap_below(np, canon.real, level)    # views: snapped in place
            snap_below(np, canon.imag, level)
            return canon
        real, imag = snap_below(xp, xp.real(canon), level), snap_below(xp, xp.imag(canon), level)
        return real + 1j * imag
    small = xp.abs(canon) <= level
    if isinstance(canon, np.ndarray):
        np.copyto(canon, 0.0, where=small)
        return canon
    if getattr(canon, "requires_grad", False):
        return canon - xp.where(small, canon.detach(), xp.zeros_like(canon))
    return xp.where(small, xp.zeros_like(canon), canon)


def result_dtype(xp, x):
    """Canonical arrays keep a floating or complex input dtype; integers become float64."""
    return x.dtype if isdtype(xp, x.dtype, ("real floating", "complex floating")) else xp.float64


@dataclass
class GroupElement:
    """A batch of group elements acting on the right: ``g.x = x T + b``.

    Attributes
    ----------
    T : array of shape (B, d, d)
        Linear parts.
    b : array of shape (B, d) or None
        Translations (only for groups with translations).
    """

    T: Any
    b: Any = None


def select(a, index):
    """``a[index]`` over the sample axis, where ``a`` may be a numpy array (frame
    diagnostics) and ``index`` a tensor on another device; None stays None."""
    if a is None:
        return None
    if isinstance(a, np.ndarray) and hasattr(index, "cpu"):
        index = index.cpu().numpy()
    return a[index]


class Frame(_RealBlocks):
    """Frames of a batch: one or more group elements per sample, with diagnostics.

    A minimal frame has one element per sample (``n_calls == 1``); continuous
    stabilizers are averaged in closed form by zero rows of ``H``. PCA frames
    (Puny et al.) have ``2^d`` (or ``2^(d-1)``) elements, each needing its own backbone
    call.

    Parameters
    ----------
    H : array of shape (B, K, d, d)
        Frame elements; rows are the frame vectors (zero rows project).
    t : array of shape (B, d) or None
        Translation (centroid) for groups with translations.
    rank : array of shape (B,), optional
        Number of frame vectors chosen from the data.
    conditioning : array of shape (B,), optional
        Largest over smallest chosen residual norm (1 for a perfectly conditioned frame).
    projected : array of shape (B,) of bool, optional
        True where the output is projected onto the span of the frame vectors.
    projection_is_average : array of shape (B,) of bool, optional
        True where that projection is the exact stabilizer average.
    """

    #: per-sample diagnostics (besides ``frame_size``): constructor keywords and
    #: attributes; subclasses extend the tuple with their own
    diagnostic_names = ("rank", "conditioning", "projected", "projection_is_average")

    def __init__(self, H, t=None, **diagnostics):
        unknown = set(diagnostics) - set(self.diagnostic_names)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no diagnostics {sorted(unknown)}")
        self.H = H
        self.t = t
        for name in self.diagnostic_names:
            setattr(self, name, diagnostics.get(name))

    @property
    def n_samples(self):
        return self.H.shape[0]

    @property
    def n_calls(self):
        """Backbone calls needed per sample: 1 for minimal frames, ``2^d`` for PCA frames."""
        return self.H.shape[1]

    @property
    def size(self):
        """Number of frame elements per sample (the finite part; 1 for generic input);
        those of nonzero weight where the frame has :attr:`element_weights`."""
        xp = get_namespace(self.H)
        if self.element_weights is not None:
            return xp.astype(xp.sum(xp.astype(self.element_weights > 0, xp.int64), axis=1),
                             xp.float64)
        return xp.full((self.n_samples,), float(self.n_calls), dtype=xp.float64)

    @property
    def diagnostics(self):
        """Per-sample diagnostics: rank, frame size, projection flags, conditioning, and
        any a subclass adds (see ``diagnostic_names``)."""
        values = {name: getattr(self, name) for name in self.diagnostic_names}
        values["frame_size"] = self.size
        return values

    def to_canonical(self, x, kind="point"):
        """Map a field into each sample's canonical frame.

        Parameters
        ----------
        x : array of shape (B, n, w)
            The field; ``w == d`` for kinds "point" and "vector".
        kind : {"point", "vector", "scalar"}

        Returns
        -------
        array of shape (B, K, n, w)
            Canonical field for each of the K frame elements, in x's floating dtype.
        """
        return self._representable("_to_canonical", x, kind, "canonical inputs")

    def _to_canonical(self, x, kind):
        """:meth:`to_canonical` without the overflow guard."""
        check_kind(kind)
        xp = get_namespace(x, self.H)
        B, K = self.H.shape[:2]
        if kind == "scalar":
            return xp.broadcast_to(x[:, None], (B, K) + tuple(x.shape[1:]))
        self._check_width(x, kind)
        x64 = like_frame(xp, x, self.H)
        if kind == "point" and self.t is not None:
            x64 = x64 - self.t[:, None, :]
        canon = self._apply_inverse(x64[:, None])
        return xp.astype(canon, result_dtype(xp, x), copy=False)

    #: present rows (B, n) of the samples (None: all), set by the engine for batches
    #: with absent rows, so that outputs can be NaN there; carried by ``concat`` and
    #: indexing
    present = None

    #: weights (B, K) of the elements in the averages, non-negative, summing to 1 per
    #: sample, invariant (weighted frames near ties, see
    #: :func:`~mfa_sklearn.groups._ensemble.banded_frame`); None: the plain mean.
    #: Elements of weight 0 need no backbone call. Carried by ``concat`` and indexing.
    element_weights = None

    #: where the row selection's choices change, ``(low, high)`` (B,) each, set by the
    #: frames of groups with :attr:`Group.row_breaks` when asked for with a
    #: :class:`~mfa_sklearn.groups._selection.BandedRule`
    row_breaks = None

    #: per-sample rounding level of the frame-defining rows' canonical coordinates, set
    #: by minimal frames (None: nothing to snap); see :meth:`snap`
    snap_level = None

    #: the row selection's choices ``(index (B, d), rank (B,))``, set by the minimal
    #: frames of groups that can recompute a frame from them (see
    #: :meth:`Group.replay_frame`); None elsewhere
    row_choices = None

    def snap(self, canon, offset=0):
        """Exact zeros for canonical coordinates of frame-defining rows that are zero in
        exact arithmetic but come out as rounding noise.

        The rows that defined the frame have zero coordinates along the later frame
        vectors; computed, they are a few eps times the data's magnitude, which a
        downstream ``StandardScaler`` or a tree's bin edges would turn into O(1)
        differences between a sample and its transform. ``snap_level`` is that rounding
        level (``8 d eps`` times the rows' magnitude, centroid included), so no value the
        data resolves is lost. Frames whose rows are not orthonormal (GL, SL, Aff)
        override this with the exact canonical rows of the rows that chose the frame.

        Parameters
        ----------
        canon : array of shape (B, K, n, w)
            Canonical form of one frame-defining field, as :meth:`to_canonical` returns
            it for the rows the frame was computed from.
        offset : int, default=0
            Position of the field's first row among the stacked frame-defining rows
            (point fields first, then vector fields, in the order given to
            :meth:`Group.frame`). Snapping by level alone, as here, ignores it.

        Returns
        -------
        array of shape (B, K, n, w)
            ``canon`` with its snapped entries (in place for numpy arrays).
        """
        if self.snap_level is None:
            return canon
        return snap_below(get_namespace(canon), canon, self.snap_level)

    def _apply_inverse(self, x):
        """``x H^{-1}`` for x of shape (B, 1, n, d) against H (B, K, d, d).

        Orthonormal frames have ``H^{-1} = H^T``; frames of other groups override this
        (unitary ``H^H``, Lorentz ``eta H^T eta``, linear groups a solve)."""
        return stacked_matmul(x, self.H.mT)

    def from_canonical(self, y, kind="point"):
        """Map canonical outputs back and average over the frame elements.

        Parameters
        ----------
        y : array of shape (B, K, n, w)
            Outputs of the backbone on the canonical inputs.
        kind : {"point", "vector", "scalar"}

        Returns
        -------
        array of shape (B, n, w)
        """
        return self._representable("_from_canonical", y, kind, "outputs mapped back")

    def _from_canonical(self, y, kind):
        """:meth:`from_canonical` without the overflow guard."""
        check_kind(kind)
        xp = get_namespace(y, self.H)
        if kind == "scalar":
            return self.average(y)
        self._check_width(y, kind, axis=-1)
        out = self._mean(xp, stacked_matmul(like_frame(xp, y, self.H), self.H))
        if kind == "point" and self.t is not None:
            out = out + self.t[:, None, :]
        return xp.astype(out, result_dtype(xp, y), copy=False)

    def _representable(self, method, values, kind, what):
        """``method(values, kind)`` (a map that is linear in ``values`` and ``t``
        jointly), with a clear error where its result overflows.

        Rows near the largest float (or near float32's, cast back) can give canonical
        coordinates or outputs beyond it, and intermediate products can overflow where
        the result would not. On the host, samples whose result is not finite although
        their values are are computed again with values and ``t`` multiplied by the
        power of two that brings them near 1, and the result multiplied back (exact, so
        nothing changes where the first pass was finite); what still overflows cannot be
        represented and raises :class:`~mfa_sklearn.exceptions.ResultOverflowError`.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            out = getattr(self, method)(values, kind)
        xp = get_namespace(out)
        if not on_host(out) or all_finite(xp, out):
            return out
        if not isdtype(xp, values.dtype, ("real floating", "complex floating")):
            values = xp.astype(values, work_dtype(xp))  # integers give float64 results

        def finite(a):
            return xp.all(per_sample(xp, xp.isfinite(a)), axis=1)

        overflow = finite(values) & ~finite(out)
        if not bool(xp.any(overflow)):
            return out           # non-finite values give non-finite results, as they may
        largest = largest_per_sample(xp, values)       # moduli of complex values
        if self.t is not None:
            largest = xp.maximum(largest, xp.astype(largest_per_sample(xp, self.t),
                                                    largest.dtype))
        factor, inverse = power_of_two_scale(xp, largest)
        scaled = copy.copy(self)
        if self.t is not None:
            scaled.t = self.t * xp.astype(factor, self.t.dtype)[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            again = getattr(scaled, method)(
                values * xp.reshape(factor, (-1,) + (1,) * (values.ndim - 1)), kind)
            real = xp.real(again) if isdtype(xp, again.dtype, "complex floating") else again
            again = again * xp.reshape(xp.astype(inverse, real.dtype),
                                       (-1,) + (1,) * (again.ndim - 1))
        still = overflow & ~finite(again)
        if bool(xp.any(still)):
            raise ResultOverflowError(what, np.flatnonzero(to_numpy(still)),
                                      _finfo_max(real.dtype))
        return xp.where(xp.reshape(overflow, (-1,) + (1,) * (out.ndim - 1)), again, out)

    def average(self, y):
        """Average invariant outputs of shape (B, K, ...) over the frame elements."""
        xp = get_namespace(y, self.H)
        if y.shape[1] == 1:
            return y[:, 0]
        mean = self._mean(xp, like_frame(xp, y, self.H))
        return xp.astype(mean, result_dtype(xp, y), copy=False)

    def _mean(self, xp, y):
        """Mean of ``y`` (B, K, ...) over the elements, weighted by :attr:`element_weights`."""
        if y.shape[1] == 1:
            return y[:, 0]
        if self.element_weights is None:
            return xp.mean(y, axis=1)
        return weighted_mean(xp, y, self.element_weights)

    def _check_width(self, x, kind, axis=-1):
        d = self.H.shape[-1]
        if x.shape[axis] != d:
            raise ValueError(
                f"a {kind!r} field must have width {d} (the group's dimension); "
                f"got width {x.shape[axis]}")

    @classmethod
    def concat(cls, frames):
        """Concatenate frames of consecutive batches along the sample axis (a lone frame
        is returned as it is)."""
        frames = list(frames)
        return frames[0] if len(frames) == 1 else cls._concat(frames)

    @classmethod
    def _concat(cls, frames):
        """:meth:`concat` of two or more frames."""
        xp = get_namespace(frames[0].H)
        kind = type(frames[0])

        def cat(values):
            return None if values[0] is None else xp.concat(values, axis=0)

        out = kind(cat([f.H for f in frames]), cat([f.t for f in frames]),
                   **{name: cat([getattr(f, name) for f in frames])
                      for name in kind.diagnostic_names})
        out.present = cat([f.present for f in frames])
        out.element_weights = cat([f.element_weights for f in frames])
        return out

    def __getitem__(self, index):
        """The frames of a slice of samples (``index``: a slice, integers or booleans, as
        a list, an ndarray or a tensor)."""
        def take(a):
            return select(a, index)

        out = type(self)(take(self.H), take(self.t),
                         **{name: take(getattr(self, name)) for name in self.diagnostic_names})
        out.present = take(self.present)
        out.element_weights = take(self.element_weights)
        return out


class Group(_RealBlocks):
    """Base class of the groups: a name, a dimension, frames and random elements.

    Subclasses implement ``_frame`` (or, reading every field, :meth:`frame`),
    :meth:`random_element` and :meth:`act`.
    Groups compare equal when their names do, so they can stand in parameter grids.
    """

    #: dimension ``d`` of the rows the group acts on (None: S_n, which has no geometry)
    d = None
    #: whether the group includes translations (E, SE, Aff), fixed by a point centroid
    has_translations = False
    #: whether minimal frames report :attr:`Frame.row_breaks` under a
    #: :class:`~mfa_sklearn.groups._selection.BandedRule` (weighted frames near ties)
    row_breaks = False
    #: why a group without :attr:`row_breaks` has no weighted frames (error messages)
    no_row_breaks_because = None
    #: frame methods this group offers
    frame_methods = ("minimal",)
    #: whether the group acts on ``edge`` fields (only permutations do: ``A[pi][:, pi]``)
    supports_edges = False
    #: whether frames reorder the rows, so that per-row outputs must keep the input's rows
    permutes_rows = False
    #: frame methods whose frames of samples with absent rows are, bit for bit, those of
    #: the same samples with their absent rows deleted, and hold per-sample values only
    #: (no row positions): the engine may then canonicalize the present rows alone
    compact_methods = ()
    #: whether every field (scalars, edges and the point/vector fields outside
    #: ``frame_fields``) shapes the frame, as row orders and vertex colours do; otherwise
    #: ``frame`` reads the frame-defining point and vector fields alone
    uses_all_fields = False
    #: for groups whose frames order the rows themselves and then apply a group whose
    #: frames read rows in index order (S_n x G: G), that group; frame ensembles re-order
    #: the rows of its canonical forms. None for every other group
    ordered_factor = None
    #: the field layout when the user gives none (None: one "point" field of width d)
    default_fields = None
    #: diagonal of the metric ``eta`` whose inner products ``x eta y^T`` the group
    #: preserves, where it is not the Euclidean one (Lorentz: ``(1, -1, ..., -1)``);
    #: None for the Euclidean groups and the groups that preserve no inner product
    metric = None

    @property
    def name(self):
        raise NotImplementedError

    def default_frame_fields(self, fields):
        """Names of the fields that define frames when the user names none.

        Parameters
        ----------
        fields : sequence of (name, kind)
            The layout's fields, in order.

        Returns
        -------
        list of str
            The first point field, else the first vector field.
        """
        for wanted in ("point", "vector"):
            names = [name for name, kind in fields if kind == wanted]
            if names:
                return names[:1]
        raise ValueError(
            f"group {self.name} needs a 'point' or 'vector' field to define frames; "
            f"the fields are {list(fields)}")

    def labeling_backend(self):
        """The canonical labeling backend the frames depend on (e.g. a nauty version),
        or None where frames depend on nothing outside this package."""
        return None

    def frame(self, points=None, vectors=None, *, scalars=None, others=None, edges=None,
              present=None, method="minimal", tol=None, rule="pivoted"):
        """Frames of a batch.

        Parameters
        ----------
        points : array of shape (B, n, d), or a sequence of them
            Frame-defining point rows; the centroid of the first fixes translations.
        vectors : array of shape (B, m, d), or a sequence of them
            Frame-defining vector rows (never centred).
        scalars : array of shape (B, n, k), or a sequence of them, optional
            Per-row scalar fields. Read only by groups with ``uses_all_fields``.
        others : sequence of (array, kind), optional
            Point and vector fields outside the frame-defining ones. Read only by groups
            with ``uses_all_fields``.
        edges : array of shape (B, n, n, w), or a sequence of them, optional
            Edge fields. Read only by groups with ``supports_edges``.
        present : bool array of shape (B, n), optional
            Which rows of the per-row fields are present (all per-row fields share
            the same ``n`` rows), in the inputs' namespace and on their device; None:
            every row is. Absent rows hold finite filler (the engine writes zeros)
            and count for nothing: the frame is the one of the sample with its absent
            rows deleted (to rounding), wherever they sit. A sample without present
            rows gets the identity frame with rank 0.
        method : str, default="minimal"
            One of :attr:`frame_methods`.
        tol : float, optional
            Relative rank tolerance; default ``sqrt(eps)`` of the input dtype.
        rule : {"pivoted", "first", "first_above"}, default="pivoted"
            Row selection rule of groups that select frame vectors among the rows.

        Returns
        -------
        Frame
            Minimal frames of groups that select rows record their choices in
            ``row_choices`` (see :meth:`replay_frame`).

        Notes
        -----
        How a group reads its rows, its tolerances, and what it raises or warns (rows
        that cannot define a frame, degenerate frames) are described in its module
        docstring and its ``_frame``, which this calls with the frame-defining rows
        alone; groups whose frames read every field (``uses_all_fields``) override
        this method.
        """
        return self._frame(points, vectors, present, method, tol, rule)

    def _frame(self, points, vectors, present, method, tol, rule):
        """:meth:`frame` from the frame-defining rows alone."""
        raise NotImplementedError

    def random_element(self, size, random_state=None, **options):
        """Random elements of the group, for tests of equivariance and augmentation.

        Parameters
        ----------
        size : int
            Number of elements.
        random_state : int, numpy Generator or None
        **options
            The group's own: a scale of translations (``translation_scale``), a
            condition number (``kappa``), a largest speed (``beta_max``).

        Returns
        -------
        GroupElement
        """
        raise NotImplementedError

    def replay_frame(self, points=None, vectors=None, *, choices, present=None, tol=None,
                     rule="pivoted"):
        """The minimal frames of rows whose earlier frame recorded ``row_choices``.

        Groups whose minimal frames select rows and record their choices in
        :attr:`Frame.row_choices` recompute a frame from them: the same rows (e.g.
        on another device, with gradients), the arithmetic alone. Others record no
        choices, so this is never called for them.
        """
        raise NotImplementedError(f"group {self.name} records no row choices to replay")

    def __repr__(self):
        return f"get_group({self.name!r})"

    def __str__(self):
        return self.name

    def __eq__(self, other):
        return isinstance(other, Group) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def act(self, g, x, kind="point"):
        """Apply group elements ``g`` (one per sample) to a field of shape (B, n, w)."""
        check_kind(kind)
        if kind == "scalar":
            return x
        out = x @ g.T
        if kind == "point" and g.b is not None:
            out = out + g.b[:, None, :]
        return out

    def act_on_other_rows(self, g, x, kind="point"):
        """:meth:`act` on a field whose rows are not the ones the group permutes (a
        centroid, a dipole: a target of other rows than X's). The same as :meth:`act`
        for groups that keep rows in place; S_n leaves such a field alone and S_n x G
        moves it by G alone."""
        return self.act(g, x, kind)

    def _present(self, xp, present, arrays):
        """Validate ``present`` against the frame-defining ``arrays``; return it as a
        bool array (B, n), or None where every row is present."""
        if present is None:
            return None
        B, n = arrays[0].shape[:2]
        if tuple(present.shape) != (B, n):
            raise ValueError(f"present must have shape (n_samples, n_rows) = {(B, n)}; got "
                             f"{tuple(present.shape)}")
        if present.dtype != xp.bool:
            raise ValueError(f"present must be a boolean array; got dtype {present.dtype}")
        for a in arrays:
            if a.shape[1] != n:
                raise ValueError(
                    "with present, every frame-defining field must have the same rows; "
                    f"got fields of {n} and {a.shape[1]} rows")
        return present

    def _frame_inputs(self, points, vectors, method, tol):
        """The preamble every ``frame`` shares: check the method and the rows.

        Returns ``(xp, points, vectors, eps, tol)``: the array namespace, both inputs as
        lists of arrays, the machine epsilon of the least precise input, and ``tol``
        (default ``sqrt(eps)``).
        """
        self._check_method(method)
        points, vectors = as_list(points), as_list(vectors)
        arrays = points + vectors
        if not arrays:
            raise ValueError(f"group {self.name} needs at least one frame-defining field")
        if self.has_translations and not points:
            raise ValueError(
                f"group {self.name} includes translations, which are fixed by the "
                "centroid of a 'point' field; pass points (vectors alone cannot fix them)")
        xp = get_namespace(*arrays)
        self._check_rows(xp, arrays)
        self._check_working_range(xp, arrays)
        inexact = ("real floating", "complex floating")
        # the least precise of the inputs and the working precision decides
        eps = max([work_eps(xp)] + [machine_eps(a.dtype) for a in arrays
                                    if isdtype(xp, a.dtype, inexact)])
        tol = math.sqrt(eps) if tol is None else float(tol)
        return xp, points, vectors, eps, tol

    def _check_working_range(self, xp, arrays):
        """Frames in float32 (``frame_precision``) of float64 rows: every sample's largest
        entry must lie in float32's normal range, else its rows would overflow to inf
        or vanish when cast, and its frame and translation could not be represented.
        On the host only (see ``on_host``)."""
        if work_dtype(xp) != xp.float32:
            return
        info = np.finfo(np.float32)
        for a in arrays:
            if (a.dtype not in (xp.float64, xp.complex128) or not on_host(a)
                    or a.shape[0] == 0):
                continue
            largest = np.asarray(to_numpy(largest_per_sample(xp, a)))
            bad = (largest > info.max) | ((largest > 0) & (largest < info.tiny))
            if bad.any():
                raise MagnitudeError(
                    f"group {self.name}: frames computed in float32 cannot represent "
                    f"{first_indices(bad)} of a frame-defining field, whose largest "
                    f"absolute entries lie outside float32's normal range "
                    f"[{info.tiny:.3g}, {info.max:.3g}] (e.g. {largest[bad][0]:.3g}); "
                    "compute the frames in float64 (frame_dtype='float64'), or rescale "
                    "the data.")

    def _check_method(self, method):
        if method not in self.frame_methods:
            raise ValueError(f"frame method must be one of {list(self.frame_methods)} for "
                             f"group {self.name}; got {method!r}")

    def _check_rows(self, xp, arrays):
        """Shapes, dtypes and finiteness of frame-defining rows; clear ValueErrors.

        Finiteness is checked on the host only (see ``on_host``).

        Complex rows are accepted by complex groups only (``is_complex``).
        """
        B = arrays[0].shape[0]
        numeric = ("real floating", "integral")
        if self.is_complex:
            numeric += ("complex floating",)
        for a in arrays:
            if a.ndim != 3:
                raise ValueError(
                    f"frame-defining rows must have shape (n_samples, n_rows, {self.d}); "
                    f"got an array of shape {tuple(a.shape)}")
            if a.shape[0] != B:
                raise ValueError("all frame-defining fields must have the same number of "
                                 f"samples; got {B} and {a.shape[0]}")
            if a.shape[1] == 0:
                raise ValueError(f"group {self.name} needs at least one row per sample in "
                                 "each frame-defining field; got a field with 0 rows")
            if a.shape[2] != self.d:
                raise ValueError(f"group {self.name} acts on rows of width {self.d}; "
                                 f"a frame-defining field has width {a.shape[2]}")
            if not self.is_complex and isdtype(xp, a.dtype, "complex floating"):
                raise ValueError(f"group {self.name} is real but a field is complex; "
                                 "use U(d) or SU(d) for complex data")
            if not isdtype(xp, a.dtype, numeric):
                raise ValueError(f"group {self.name} needs numeric rows; got dtype {a.dtype}")
        for a in arrays:
            if (isdtype(xp, a.dtype, ("real floating", "complex floating")) and on_host(a)
                    and not all_finite(xp, a)):
                bad = ~xp.all(xp.isfinite(a), axis=(1, 2))
                raise NonFiniteInputError(
                    f"a frame-defining field contains NaN or inf in "
                    f"{first_indices(np.asarray(to_numpy(bad)))}; frames cannot be "
                    "computed")


def present_major(xp, present, n_arrays, dtype):
    """Coordinate-major presence weights (m, B) of ``n_arrays`` stacked fields that
    share the rows of ``present`` (B, n): 1 for a present row, 0 for an absent one."""
    weights = xp.astype(present.T, dtype)
    return weights if n_arrays == 1 else xp.concat([weights] * n_arrays, axis=0)


def identity_where_empty(xp, frame, present):
    """Give samples without present rows the identity frame, rank 0, in place.

    Parameters
    ----------
    frame : Frame
        Frames with ``H`` of shape (B, K, d, d): every element of an empty sample becomes
        the identity (its canonical inputs are zeros whatever the element).
    present : bool array of shape (B, n) or None

    Returns
    -------
    Frame
        ``frame``, changed where a sample has no present row.
    """
    if present is None:
        return frame
    empty = ~xp.any(present, axis=1)
    if not on_host(present) or bool(xp.any(empty)):
        d = frame.H.shape[-1]
        eye = xp.eye(d, dtype=frame.H.dtype, device=frame.H.device)
        frame.H = xp.where(empty[:, None, None, None], eye, frame.H)
        if frame.t is not None:
            frame.t = xp.where(empty[:, None], 0.0, frame.t)
        if frame.rank is not None:
            frame.rank = xp.where(empty, 0, frame.rank)
        if frame.projected is not None:
            frame.projected = frame.projected & ~empty
    return frame


def _finfo_max(dtype):
    """Largest finite value of a numpy or torch floating dtype."""
    return float(np.finfo(str(dtype).rsplit(".", 1)[-1]).max)


def as_list(arrays):
    """None, one array, or a sequence of arrays -> a list of arrays."""
    if arrays is None:
        return []
    if isinstance(arrays, (list, tuple)):
        return list(arrays)
    return [arrays]


def to_numpy(a):
    """A host numpy view or copy of a numpy array or tensor, without its autograd graph
    (for error messages, warnings and the combinatorial parts of permutation frames)."""
    return a.detach().cpu().numpy() if hasattr(a, "cpu") else np.asarray(a)
