"""The engine behind every estimator and the torch module.

One path for all of them::

    estimator.fit(X)          ->  FramePlan.resolve(group, fields, frame_fields, ...)
                                  (the group object, the layout of X, the frame fields)
    transform / predict / forward
                              ->  plan.canonicalize(X)      chunks of samples, n_jobs
                                  -> layout.split(X)        named fields (B, n, w)
                                  -> group.frame(...)       one Frame per chunk
                                  -> frame.to_canonical     every field, by its kind
                                  -> layout.join            canonical X (B, K, ...)
    inner estimator / backbone on canonical X
                              ->  restore(frame, layout, Y) outputs mapped back and
                                                            averaged over the frame

The sklearn estimators share :class:`FrameEstimatorMixin` (validation of X, the
canonical inputs, diagnostics); the torch module calls :class:`FramePlan` directly.
For numpy X and groups that keep rows in place the estimators call
``plan.canonicalize_numpy(X)`` instead, which finds, checks and fills the absent rows
chunk by chunk in cache, or drops them where the group's frames allow it
(``Group.compact_methods``), and has each worker write its chunk into the output.
"""

import functools
import math
import warnings
from dataclasses import dataclass, replace
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._parallel import map_chunks, shares_memory
from .exceptions import (
    AbsentRowsError,
    LabelingBackendWarning,
    NonFiniteInputError,
    ResultOverflowError,
    first_indices,
)
from .groups import Group, get_group
from .groups._ensemble import check_ensemble, ensemble_frame
from .groups._namespace import all_finite, get_namespace, largest_per_sample, on_host
from .groups._selection import ROW_RULES
from .layout import Layout

#: frame methods an estimator may ask for; a group offers a subset (``frame_methods``)
FRAME_METHODS = ("minimal", "pca")

#: frames per sample of a frame ensemble
N_FRAMES_CONSTRAINT = [Interval(Integral, 1, None, closed="left")]
#: relative half-width of the band of weighted frames near ties (0: none)
TIE_BAND_CONSTRAINT = [Interval(Real, 0, 1, closed="left")]
#: the row rule of the estimators and the torch module when none is given
DEFAULT_ROW_RULE = "first_above"
#: parameter constraints shared by every estimator and the torch module
COMMON_CONSTRAINTS = {
    "group": [str, Group, None],
    "fields": [dict, str, tuple, None],
    "frame_fields": [str, list, tuple, None],
    "tol": [Interval(Real, 0, 1, closed="neither"), None],
    "row_rule": [StrOptions(set(ROW_RULES))],
    "n_frames": N_FRAMES_CONSTRAINT,
}
#: the estimators' ``round_bits`` (numpy only: rounding has no gradient)
ROUND_BITS_CONSTRAINT = [Interval(Integral, 8, 50, closed="both"), None]
#: how an estimator's inner estimator transforms its targets
TARGET_CONSTRAINT = [StrOptions({"invariant", "point", "vector", "scalar", "edge"}), tuple,
                     dict]
FRAME_CONSTRAINT = [StrOptions(set(FRAME_METHODS))]
N_JOBS_CONSTRAINT = [Integral, None]


def store_init_arguments(owner, arguments, leave=()):
    """Store each ``__init__`` argument, unchanged, as the attribute of its name.

    scikit-learn's ``get_params``, ``set_params`` and ``clone`` read the parameters back
    from these attributes, so ``__init__`` does nothing else with them: checks and
    conversions wait for ``fit`` (torch modules check theirs once stored).

    Parameters
    ----------
    owner : object
        The estimator or module being built.
    arguments : dict
        ``locals()``, taken first thing in ``__init__`` (after ``super().__init__()``
        in a torch module).
    leave : tuple of str, default=()
        Arguments the owner stores otherwise (a submodule, ``**kwargs``).
    """
    for name, value in arguments.items():
        if name not in ("self", "__class__", *leave):
            setattr(owner, name, value)


# Numpy batches are canonicalized in chunks of at most this many values and samples: the
# temporaries of the frame math then stay in cache and in malloc's reused memory instead
# of being page-faulted in anew (one-shot batches of 10^5 clouds were 2.5x slower), while
# large clouds still get enough samples per chunk to amortise numpy's per-call overhead.
# Up to 32768 samples: fewer chunks hand the GIL over less often between joblib's
# threads (E(3), 10^6 clouds of 5, two jobs: 0.25 s against 0.35 s with 8192).
# Torch ops have a fixed cost of a few microseconds each, which larger CPU chunks
# amortize (B = 10^6, n = 5: 1.6-1.9x numpy's time with chunks of 8738 clouds, 1.2-1.3x
# with 34952; local frames of 26000 atoms, energies and forces: 10% less CPU time in
# one chunk of 2^21 values than in four); other devices take the batch in one pass.
_CHUNK_VALUES = 2 ** 19
_CHUNK_SAMPLES = 32768
_TORCH_CHUNK_VALUES = 2 ** 21
# Batches with absent rows are canonicalized from their present rows alone (groups
# whose frames allow it) where the sample with the most present rows has fewer than this
# share of the rows: gathering and scattering rows costs less than mapping the others
# (E(3), 16 rows, CPU time: 41 ms against 73 ms filled with 8 present rows per sample,
# 58 against 71 ms with 15).
_COMPACT_SHARE = 1.0


def is_invariant(target):
    """Whether ``target`` says that outputs do not transform."""
    return isinstance(target, str) and target == "invariant"


def _row_any_all(xp, flags, kind):
    """Per row (B, n) of one field's boolean entries: (any, all); edge entries (i, j)
    belong to rows i and j (any only). Elementwise over the few columns of a row, which
    is several times faster than a reduction over a short trailing axis."""
    if kind == "edge":
        entry = xp.any(flags, axis=-1)
        return xp.any(entry, axis=-1) | xp.any(entry, axis=-2), None
    any_, all_ = flags[..., 0], flags[..., 0]
    for k in range(1, flags.shape[-1]):
        any_, all_ = any_ | flags[..., k], all_ & flags[..., k]
    return any_, all_


def _located(name, rows, why):
    """NonFiniteInputError naming the field, the samples and the first (sample, row)."""
    bad = np.asarray(_host(rows))
    sample, row = (int(i) for i in np.argwhere(bad)[0])
    return NonFiniteInputError(
        f"field {name!r} contains NaN or inf in {first_indices(bad.any(axis=1))}: "
        f"sample {sample}, row {row} {why}")


def _host(a):
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def find_absent(X, layout, presence_field, *, sync=True):
    """The present rows of a batch, and clear errors for any other NaN or inf.

    A row is *absent* where every entry of ``presence_field`` (the first point field,
    else the first frame-defining field) is NaN; its other fields may hold anything,
    NaN included. NaN elsewhere (a row partly NaN in ``presence_field``, NaN in another
    field of a present row, an edge between present rows) and inf anywhere raise
    :class:`NonFiniteInputError`, naming the field, the samples and the first sample
    and row. On accelerators the errors are not checked (no host synchronisation):
    NaN there shows in the outputs instead.

    Parameters
    ----------
    X : ndarray or tensor of shape (B, C) or (B, n, W)
    layout : Layout
    presence_field : str or None
    sync : bool, default=True
        On accelerators, whether the answer may wait for the device: with False the
        present rows are returned as computed (never None), so that nothing stalls
        the device; on the host it changes nothing.

    Returns
    -------
    bool array of shape (B, n) in X's namespace, or None
        None where every row of every sample is present (the fast path).
    """
    xp = get_namespace(X)
    host = on_host(X)
    if (host or sync) and all_finite(xp, X):
        return None
    nan = layout.split(xp.isnan(X))
    kinds = {f.name: f.kind for f in layout.fields}
    if presence_field is None:   # no per-row field: no row can be absent
        present = xp.ones((X.shape[0], layout.n_rows), dtype=xp.bool, device=X.device)
        presence_field = layout.fields[0].name
    else:
        present = ~_row_any_all(xp, nan[presence_field], kinds[presence_field])[1]
    if not host and not sync:
        return present
    if host:
        if bool(xp.any(xp.isinf(X))):
            infinite = layout.split(xp.isinf(X))
            for f in layout.fields:
                rows = _row_any_all(xp, infinite[f.name], f.kind)[0]
                if bool(xp.any(rows)):
                    raise _located(f.name, rows, "holds inf; only NaN marks absent rows")
        order = [presence_field] + [f.name for f in layout.fields if f.name != presence_field]
        for name in order:
            if kinds[name] == "edge":
                both = present[:, :, None] & present[:, None, :]
                inner = xp.any(nan[name], axis=-1) & both
                rows = xp.any(inner, axis=-1)
            else:
                rows = _row_any_all(xp, nan[name], kinds[name])[0] & present
            if bool(xp.any(rows)):
                why = ("is partly NaN; a row is absent only where all its entries are NaN"
                       if name == presence_field else
                       f"is NaN in a present row (present: {presence_field!r} is not NaN "
                       "there). Impute or drop those samples first")
                raise _located(name, rows, why)
    return None if bool(xp.all(present)) else present


def fill_absent(X, layout, present):
    """X with every field of the absent rows set to 0 (edges: entries (i, j) with row i
    or j absent); a new array. NaN never enters arithmetic: ``where`` selects."""
    xp = get_namespace(X)
    if xp is np and all(f.kind != "edge" for f in layout.fields):
        # every column belongs to one row: one pass over X, the same values
        zero = np.zeros((), dtype=X.dtype)
        if layout.three_d:
            return np.where(present[:, :, None], X, zero)
        rows = np.arange(layout.n_rows)[None, :, None]
        row_of_column = layout.join({f.name: np.broadcast_to(rows, (1, layout.n_rows,
                                                                    f.width))
                                     for f in layout.fields})[0]
        return np.where(present[:, row_of_column], X, zero)
    parts = layout.split(X)
    filled = {}
    for f in layout.fields:
        part = parts[f.name]
        if f.kind == "edge":
            keep = (present[:, :, None] & present[:, None, :])[..., None]
        else:
            keep = present[..., None]
        filled[f.name] = xp.where(keep, part, xp.zeros_like(part))
    return layout.join(filled)


def with_presence(Xc, layout, present):
    """Canonical inputs (B, K, ...) with a 0/1 presence column per row appended: 2-D
    layouts get ``n`` more columns (row order), 3-D ones one more entry per row."""
    xp = get_namespace(Xc)
    B, K = Xc.shape[:2]
    n = layout.n_rows
    if present is None:
        column = xp.ones((B, n), dtype=Xc.dtype, device=Xc.device)
    else:
        column = xp.astype(present, Xc.dtype)
    if layout.three_d:
        column = xp.broadcast_to(column[:, None, :, None], (B, K, n, 1))
    else:
        column = xp.broadcast_to(column[:, None, :], (B, K, n))
    return xp.concat([Xc, column], axis=-1)


def mark_absent(Y, layout, present):
    """Per-row outputs (B, C) of ``layout`` with NaN at absent rows (edge outputs: at
    every pair with an absent row), and every output of a sample without present rows
    NaN; ``layout`` None: invariant outputs (B, ...)."""
    xp = get_namespace(Y)
    empty = ~xp.any(present, axis=1)
    nan = xp.asarray(float("nan"), dtype=Y.dtype, device=Y.device)
    if layout is not None and layout.n_rows == present.shape[1]:
        parts = layout.split(Y)

        def kept(kind):   # (B, n, n) pairs for edge fields: built only where needed
            if kind == "edge":
                return (present[:, :, None] & present[:, None, :])[..., None]
            return present[..., None]

        Y = layout.join({f.name: xp.where(kept(f.kind), parts[f.name], nan)
                         for f in layout.fields})
    return xp.where(xp.reshape(empty, (-1,) + (1,) * (Y.ndim - 1)), nan, Y)


def round_relative(Xc, layout, bits):
    """Round the point and vector fields of canonical inputs in place to ``bits``
    significant bits of each sample's largest coordinate in that field.

    The grid step is a power of two, ``2^(e - bits)`` where ``2^e`` bounds the largest
    coordinate, so the rounding is exact arithmetic: two canonical inputs that differ
    by float rounding (``g . x`` and ``x``, about ``1e-15`` relative) become equal bit
    for bit unless a coordinate lies within that rounding of a grid boundary.

    Parameters
    ----------
    Xc : ndarray of shape (B, K, C) or (B, K, n, W)
    layout : Layout
    bits : int

    Returns
    -------
    ndarray
        ``Xc``, rounded.

    See Also
    --------
    rounded_field : the rounding of one field, which the engine applies to each
        canonical field before joining them.
    """
    for f, part in zip(layout.fields, layout.split(Xc).values()):
        if f.kind not in ("point", "vector"):
            continue
        # a view of Xc, except for complex fields of 2-D layouts (gathered copies)
        work = rounded_field(part, bits)
        if f.is_complex and not layout.three_d:
            Xc[...] = layout.join({**layout.split(Xc), f.name: work})
        else:
            part[...] = work
    return Xc


def rounded_field(part, bits):
    """One canonical point or vector field rounded to ``bits`` significant bits of each
    sample's largest coordinate in it (see :func:`round_relative`); a new array.

    Parameters
    ----------
    part : ndarray of shape (B, K, n, w), real floating
    bits : int

    Returns
    -------
    ndarray of the same shape and dtype as ``part``
        Float32 values rounded to a coarser grid fit float32 again, exactly.
    """
    samples = math.prod(part.shape[:-2])
    largest = largest_per_sample(np, part.reshape((samples,) + part.shape[-2:]))
    largest = largest.astype(np.float64, copy=False).reshape(part.shape[:-2] + (1, 1))
    # Adding C = 1.5 * 2^(e - bits + 52) leaves the last bit of x + C at the grid
    # step 2^(e - bits), so x + C rounds x to the grid (|x| < 2^e keeps x + C in
    # C's binade for bits <= 51) and subtracting C is exact: two passes, no
    # division. Beyond 2^1000, where x + C could overflow, values stay as they are.
    # e is the exponent of the largest coordinate raised by 2^-20 (relative): a
    # largest coordinate of exactly a power of two (unit vectors, lattices) comes out
    # as 1.0 for x and 0.99999999999999989 for g . x, whose binades differ, and so
    # would the grids; the boundary moves to 2^k / (1 + 2^-20), which no data favours.
    exponent = np.maximum(np.frexp(largest * (1.0 + 2.0 ** -20))[1] - bits + 52, -1022)
    magic = np.where(largest < 2.0 ** 1000, np.ldexp(1.5, exponent), 0.0)
    work = np.add(part, magic, dtype=np.float64)
    work -= magic
    return work.astype(part.dtype, copy=False)


def chunk_slices(X, values_per_sample, n_jobs=None):
    """Slices of samples that are canonicalized together (see ``_CHUNK_VALUES``): of
    equal sizes, and for numpy X as many as a multiple of joblib's workers for
    ``n_jobs``, so that no worker idles while another finishes a last chunk. Before a
    batch's first split into chunks, and before the first batch of tensors on the host
    (whose forward and backward passes allocate and free tensors of the whole batch's
    size, each pass), glibc is set to keep their freed memory (:func:`_keep_freed_memory`,
    once per process)."""
    n_samples = len(X)
    if isinstance(X, np.ndarray):
        size = min(_CHUNK_SAMPLES, max(16, _CHUNK_VALUES // max(1, values_per_sample)))
        jobs = effective_n_jobs(n_jobs)
    elif on_host(X):
        size, jobs = max(16, _TORCH_CHUNK_VALUES // max(1, values_per_sample)), 1
        _keep_freed_memory()
    else:
        size, jobs = max(1, n_samples), 1
    count = -(-n_samples // size)
    if count > 1:
        _keep_freed_memory()
        count = -(-count // jobs) * jobs
    size = max(1, -(-n_samples // max(1, count)))
    return [slice(i, min(i + size, n_samples)) for i in range(0, n_samples, size)]


@functools.cache
def _keep_freed_memory():
    """Have glibc's malloc keep the memory that chunks free, once per process.

    glibc gives memory at the top of its heap back to the system once more than a trim
    threshold of it is free; the threshold starts at 128 KiB and grows to twice the
    largest block it had mapped and unmapped, up to 64 MiB. Below that, every chunk
    page-faults its temporaries in afresh: E(3), 10^6 clouds of 5, one job, spent 0.66 s
    (112,000 page faults per call) instead of 0.39 s (700). Mapping and freeing one block
    just under the 32 MiB limit raises the threshold now, as the process's next large
    temporary would. Other allocators, and a threshold the user has set
    (``MALLOC_TRIM_THRESHOLD_``), are untouched.
    """
    np.empty(31 * 2 ** 20, dtype=np.uint8)


def _resolve_frame_fields(group, layout, frame_fields):
    """Names of the frame-defining fields, point fields first (the first point field's
    centroid fixes translations)."""
    kinds = {f.name: f.kind for f in layout.fields}
    if frame_fields is None:
        names = group.default_frame_fields([(f.name, f.kind) for f in layout.fields])
    else:
        names = [frame_fields] if isinstance(frame_fields, str) else list(frame_fields)
        if not names:
            raise ValueError("frame_fields must name at least one field")
        for name in names:
            if name not in kinds:
                raise ValueError(f"frame_fields names {name!r}, which is not one of the "
                                 f"fields {list(kinds)}")
            if kinds[name] not in ("point", "vector"):
                raise ValueError(f"frame field {name!r} has kind {kinds[name]!r}; only "
                                 "'point' and 'vector' fields can define frames")
    points = [n for n in names if kinds[n] == "point"]
    vectors = [n for n in names if kinds[n] == "vector"]
    if group.has_translations and not points:
        raise ValueError(
            f"group {group.name} includes translations, fixed by the centroid of a "
            f"'point' field, but frame_fields {names} has none; add a point field to "
            f"frame_fields or use the group without translations")
    return tuple(points + vectors)


class _NotFinite(Exception):
    """A chunk of samples met NaN or inf where no row may be absent; the batch is then
    checked as a whole (:func:`find_absent`) for the error to raise."""


@dataclass(frozen=True)
class FramePlan:
    """What canonicalizing a kind of sample needs: the group, the layout of the
    samples, the frame-defining fields and the frame method.

    Build it with :meth:`resolve`; it holds no data and can be reused for any batch of
    samples of that shape.
    """

    group: Group
    layout: Layout
    frame_fields: tuple
    method: str = "minimal"
    row_rule: str = DEFAULT_ROW_RULE
    n_frames: int = 1
    tie_band: float = 0.0

    @classmethod
    def resolve(cls, group, fields, frame_fields, sample_shape, method="minimal",
                row_rule=DEFAULT_ROW_RULE, n_frames=1, tie_band=0.0):
        """Resolve the group, infer the layout and pick the frame fields.

        Parameters
        ----------
        group : str or Group
        fields : dict, str, tuple or None
            The user's field description (see :func:`~mfa_sklearn.layout.parse_fields`).
        frame_fields : str, list of str or None
        sample_shape : tuple
            Shape of one sample (``X.shape[1:]``).
        method : {"minimal", "pca"}
        row_rule : {"pivoted", "first", "first_above"}
            Row selection rule of groups whose frames read the rows in order.
        n_frames : int, default=1
            Frames per sample (see :mod:`mfa_sklearn.groups._ensemble`).
        tie_band : float, default=0.0
            Weighted frames near ties of ``"first_above"`` with this band (see
            :func:`~mfa_sklearn.groups._ensemble.banded_frame`); 0: none.

        Returns
        -------
        FramePlan
        """
        group = get_group(group)
        if method not in group.frame_methods:
            raise ValueError(f"frame={method!r} is not available for group {group.name}; "
                             f"use one of {list(group.frame_methods)}")
        layout = Layout.infer(fields, group, tuple(sample_shape))
        names = _resolve_frame_fields(group, layout, frame_fields)
        check_ensemble(group, n_frames, layout.n_rows, row_rule, method, tie_band)
        return cls(group, layout, names, method, row_rule, n_frames, tie_band)

    def canonicalize(self, X, *, tol=None, n_jobs=None, return_frame=True, detach=False,
                     present=None, round_bits=None, presence_column=False):
        """Canonical inputs of every frame element, and the frames.

        Parameters
        ----------
        X : ndarray or tensor of shape (B, C) or (B, n, W)
            Finite samples (absent rows filled by :meth:`prepare`).
        tol : float, optional
            Relative rank tolerance of the frames.
        n_jobs : int, optional
            Joblib workers over chunks of numpy samples; threads unless the user's
            ``joblib.parallel_config`` says otherwise (numpy releases the GIL).
        return_frame : bool, default=True
            Whether the frames are needed (to map outputs back); if not, None is
            returned in their place and no time is spent gathering them.
        detach : bool, default=False
            Compute the frames from ``X.detach()`` (torch): gradients then flow through
            the canonical inputs only, not through the frames.
        present : bool array of shape (B, n), optional
            Present rows, from :meth:`prepare` (None: all). The frames ignore the
            absent rows, and their canonical rows are zeros.
        round_bits : int, optional
            Round the canonical point and vector fields to this many significant bits
            (numpy only, see :func:`round_relative`), chunk by chunk while in cache.
        presence_column : bool, default=False
            Append a 0/1 presence column per row, as :func:`with_presence` does.

        Returns
        -------
        Xc : array of shape (B, K, C) or (B, K, n, W), X's dtype
            Canonical inputs (K frame elements per sample, 1 for minimal frames); with
            ``presence_column``, ``n`` more columns (2-D) or one more entry per row (3-D).
        frame : Frame or None
            Frames of all B samples.
        """
        Xc, frame = self._canonicalize_chunks(X, tol, n_jobs, return_frame, detach, present,
                                              round_bits)
        if presence_column:
            Xc = with_presence(Xc, self.layout, present)
        if frame is not None and present is not None:
            frame.present = present
        return Xc, frame

    def canonicalize_numpy(self, X, *, tol=None, n_jobs=None, return_frame=True,
                           round_bits=None, presence_column=False, absent_rows=True):
        """:meth:`canonicalize` of numpy samples as the user gave them, absent rows
        included, for plans that :meth:`reads_rows` (no :meth:`prepare` first).

        Each chunk of samples sums its values, on the workers rather than here before
        them; a finite sum means that all its rows are present. Otherwise the chunk
        finds its absent rows (the first entry of :attr:`presence_field` NaN), checks
        its values as :func:`find_absent` does, raising its errors, and drops the absent
        rows (groups that list the frame method in ``compact_methods``, where that
        leaves fewer rows) or fills them with zeros, in cache.

        Parameters
        ----------
        X : ndarray of shape (B, C) or (B, n, W)
        tol, n_jobs, return_frame, round_bits, presence_column
            As for :meth:`canonicalize`.
        absent_rows : bool, default=True
            Whether X may have absent rows. With False, a batch with any NaN or inf
            is not canonicalized: :func:`find_absent` raises its errors, or its present
            rows are returned with Xc and frame None, for the caller to refuse.

        Returns
        -------
        Xc : ndarray of shape (B, K, C) or (B, K, n, W), X's dtype
            As :meth:`canonicalize` returns it.
        frame : Frame or None
        present : bool ndarray of shape (B, n) or None
            The present rows (None: all of them).
        """
        # filled in by the chunks
        present = np.empty((len(X), self.layout.n_rows), dtype=bool) if absent_rows else None
        try:
            Xc, frame = self._canonicalize_host(X, tol, n_jobs, return_frame, present,
                                                round_bits, presence_column)
        except _NotFinite:
            return None, None, find_absent(X, self.layout, self.presence_field)
        if present is not None and present.all():
            present = None
        if frame is not None and present is not None:
            frame.present = present
        return Xc, frame, present

    def _canonicalize_chunks(self, X, tol, n_jobs, return_frame, detach, present,
                             round_bits):
        """:meth:`canonicalize`, chunk by chunk."""
        slices = chunk_slices(X, self.layout.n_columns, n_jobs)
        if len(slices) <= 1:
            return self.canonicalize_chunk(X, tol, return_frame, detach, present, 0,
                                            round_bits)
        chunk = functools.partial(self._chunk_at, X, tol=tol, return_frame=return_frame,
                                  detach=detach, present=present, round_bits=round_bits)
        numpy = isinstance(X, np.ndarray)
        if numpy and shares_memory(n_jobs):
            # each worker writes its chunks into the output while they are in cache
            K, dtype = self._elements(X, lambda: self.canonicalize_chunk(
                X[:0], tol, False, detach, _rows_of(present, slice(0, 0)), 0, round_bits)[0])
            Xc = np.empty((len(X), K) + X.shape[1:], dtype=dtype)
            frames = map_chunks(functools.partial(chunk, out=Xc), slices, n_jobs)
        else:
            # process workers send their chunks back; other arrays than numpy's take
            # their device's parallelism, one chunk at a time
            parts, frames = zip(*map_chunks(chunk, slices, n_jobs if numpy else 1))
            Xc = get_namespace(X).concat(parts, axis=0)
        return Xc, (type(frames[0]).concat(frames) if return_frame else None)

    def _chunk_at(self, X, s, *, tol, return_frame, detach, present, round_bits, out=None):
        """:meth:`canonicalize_chunk` of the samples ``s`` of the batch X; with ``out``
        (numpy), written into ``out[s]``, and the frame alone returned."""
        target = None if out is None else out[s]
        part, frame = self.canonicalize_chunk(X[s], tol, return_frame, detach,
                                               _rows_of(present, s), s.start, round_bits,
                                               out=target)
        if target is None:
            return part, frame
        if part is not target:   # a single field's block, not joined into `out`
            target[...] = part
        return frame

    def reads_rows(self, X):
        """Whether :meth:`canonicalize_numpy` takes X: numpy X, a group that keeps rows
        in place and no edge fields."""
        return (isinstance(X, np.ndarray) and not self.group.permutes_rows
                and all(f.kind != "edge" for f in self.layout.fields))

    def _canonicalize_host(self, X, tol, n_jobs, return_frame, present, round_bits,
                           presence_column):
        """:meth:`canonicalize_numpy`, chunk by chunk; each chunk is written into the
        output (and its present rows into ``present``, unless None: all present) by
        the worker that computed it."""
        slices = chunk_slices(X, self.layout.n_columns, n_jobs)
        if len(slices) == 1:
            part, frame = self._host_part(X, slices[0], present, tol, return_frame,
                                          round_bits)
            if presence_column:
                part = with_presence(part, self.layout, present)
            return part, frame
        extra = (self.layout.n_rows if not self.layout.three_d else 1) if presence_column else 0
        K, dtype = self._elements(X, lambda: self._host_part(X, slice(0, 0), present, tol,
                                                             False, round_bits)[0])
        Xc = np.empty((len(X), K) + X.shape[1:-1] + (X.shape[-1] + extra,), dtype)
        chunk = functools.partial(self._host_chunk, X, present=present, tol=tol,
                                  return_frame=return_frame, round_bits=round_bits)
        if shares_memory(n_jobs):   # each worker writes its chunk while in cache
            frames = map_chunks(functools.partial(chunk, Xc=Xc,
                                                  presence_column=presence_column),
                                slices, n_jobs)
        else:   # process workers send their chunks (and present rows) back
            frames = []
            results = map_chunks(functools.partial(chunk, Xc=None, presence_column=False),
                                 slices, n_jobs)
            for s, (part, frame, rows) in zip(slices, results):
                if present is not None:
                    present[s] = rows
                self._write(Xc[s], part, rows, presence_column)
                frames.append(frame)
        return Xc, (type(frames[0]).concat(frames) if return_frame else None)

    def _elements(self, X, empty_part):
        """Frame elements per sample and dtype of the canonical inputs of numpy X.

        Minimal frames have ``n_frames`` elements per sample (two each where weighted
        frames keep rows in place); other frames (PCA's, the weighted frames of row
        orders) are asked for the canonical inputs of no sample, ``empty_part()``,
        which costs a pass through the frame code (about a millisecond) that the
        workers then wait for.
        """
        if self.method == "minimal" and not (self.tie_band and self.group.permutes_rows):
            K = self.n_frames * (2 if self.tie_band else 1)
            return K, (X.dtype if X.dtype.kind == "f" else np.dtype(np.float64))
        empty = empty_part()
        return empty.shape[1], empty.dtype

    def _host_chunk(self, X, s, present, Xc, tol, return_frame, round_bits,
                    presence_column):
        """One chunk of :meth:`_canonicalize_host`, written into ``Xc[s]``; with ``Xc``
        None, its canonical inputs, frames and present rows are returned instead."""
        out = None if Xc is None else Xc[s]
        part, frame = self._host_part(X, s, present, tol, return_frame, round_bits, out,
                                      presence_column)
        if Xc is None:
            return part, frame, _rows_of(present, s)
        if part is not None:
            self._write(out, part, _rows_of(present, s), presence_column)
        return frame

    def _write(self, out, part, present, presence_column):
        """Canonical inputs ``part`` and the presence columns into ``out``."""
        if not presence_column:
            out[...] = part
            return
        width = part.shape[-1]
        out[..., :width] = part
        column = 1.0 if present is None else present[:, None]
        if self.layout.three_d:
            out[..., width] = column
        else:
            out[..., width:] = column

    def _host_part(self, X, s, present, tol, return_frame, round_bits, out=None,
                   presence_column=False):
        """Canonical inputs (b, K, ...) and frames of the samples ``s`` of unchecked
        numpy X: absent rows found (into ``present[s]``), dropped or filled with zeros,
        prepare's errors raised. Compacted chunks go straight into ``out`` where it is
        given (with the presence columns), and their canonical inputs are returned as
        None. With ``present`` None (no absent rows allowed), a chunk with NaN or inf
        raises :class:`_NotFinite`."""
        try:
            if all_finite(np, X[s]):
                if present is not None:
                    present[s] = True
                return self.canonicalize_chunk(X[s], tol, return_frame, False, None,
                                                s.start, round_bits)
            if present is None:
                raise _NotFinite
            rows = self._rows(X[s])
            start, width = self._presence_columns
            nan = np.isnan(rows[:, start:start + width])
            ps = ~nan[:, 0].reshape(-1, self.layout.n_rows)
            present[s] = ps
            counts = np.count_nonzero(ps, axis=1)
            kept = int(counts.max()) if len(counts) else 0
            # ensembles anchor on row positions: compacting would move their anchors
            if (self.method in self.group.compact_methods and self.n_frames == 1
                    and not self.tie_band
                    and 0 < kept < _COMPACT_SHARE * ps.shape[1] and ps.shape[1] > 2):
                return self._compact_part(X, s, rows, ps, nan, counts, kept, tol,
                                          return_frame, round_bits, out, presence_column)
            filled = X[s]
            if len(counts) and counts.min() < ps.shape[1]:
                filled = fill_absent(filled, self.layout, ps)
            if not (all_finite(np, filled) and self._absent_valid(rows, ps, nan)):
                find_absent(X, self.layout, self.presence_field)   # raises
            return self.canonicalize_chunk(filled, tol, return_frame, False, ps, s.start,
                                            round_bits)
        except ResultOverflowError:
            if present is not None:  # prepare's errors came first
                find_absent(X, self.layout, self.presence_field)
            raise

    def _rows(self, X):
        """The rows of X (b, C) or (b, n, W) as one array (b * n, W), fields side by
        side in layout order (a view where X's memory allows)."""
        n, width = self.layout.n_rows, self.layout.row_width
        single = len(self.layout.fields) == 1 and not self.layout.fields[0].is_complex
        if self.layout.three_d or single:
            return X.reshape(len(X) * n, width)
        parts = self.layout.split(X)
        return np.concatenate([parts[f.name] for f in self.layout.fields],
                              axis=-1).reshape(len(X) * n, width)

    @property
    def _presence_columns(self):
        """(start, width) of the presence field among the columns of :meth:`_rows`."""
        start = 0
        for f in self.layout.fields:
            if f.name == self.presence_field:
                return start, f.width
            start += f.width

    def _absent_valid(self, rows, present, nan):
        """Whether the absent rows are NaN throughout the presence field and hold no inf
        elsewhere (:func:`find_absent`), for rows (b * n, W) whose present rows (b, n)
        are finite; ``nan``: the presence field's NaN entries (b * n, w)."""
        absent = present.size - np.count_nonzero(present)
        if np.count_nonzero(nan) != nan.shape[1] * absent:
            return False
        if nan.shape[1] == rows.shape[1]:
            return True
        return not np.isinf(np.take(rows, np.flatnonzero(~present), axis=0)).any()

    def _compact_part(self, X, s, rows, ps, nan, counts, kept, tol, return_frame,
                      round_bits, out=None, presence_column=False):
        """:meth:`_host_part` of the present rows alone: gathered into ``kept`` rows per
        sample (3-D), canonicalized, and put back in place with zeros at absent rows."""
        b, n = ps.shape
        width = self.layout.row_width
        source = np.flatnonzero(ps)
        gathered = np.take(rows, source, axis=0)
        if not (all_finite(np, gathered) and self._absent_valid(rows, ps, nan)):
            find_absent(X, self.layout, self.presence_field)   # raises
        # Sums over rows (centroids) add the absent rows' zeros: x + 0 is x, except that
        # -0.0 + 0 is +0.0, so where -0.0 occurs each sample keeps one zero row.
        if self.group.has_translations and kept < n:
            zeros = gathered == 0
            if zeros.any() and np.any(np.signbit(gathered[zeros])):
                kept += 1
        # numpy maps a single row by a matrix-vector product, which rounds otherwise
        kept = max(kept, 2)
        valid = None
        if np.any(counts != kept):
            valid = np.arange(kept) < counts[:, None]
            slot = np.flatnonzero(valid)
            compact = np.zeros((b * kept, width), dtype=rows.dtype)
            compact[slot] = gathered
        else:
            slot, compact = np.arange(len(source)), gathered
        plan = replace(self, layout=Layout(self.layout.fields, kept, three_d=True))
        part, frame = plan.canonicalize_chunk(compact.reshape(b, kept, width), tol,
                                               return_frame, False, valid, s.start,
                                               round_bits)
        K, part_width = part.shape[1], part.shape[-1]
        if self.layout.three_d and K == 1 and out is not None:
            # straight into the output: zeros (and presence 0), then the present rows
            flat = out.reshape(b * n, out.shape[-1])
            flat.fill(0.0)
            values = part.reshape(b * kept, part_width)
            flat[source, :part_width] = values if valid is None else values[slot]
            if presence_column:
                flat[source, part_width] = 1.0
            return None, frame
        # back in place: each sample's compact rows, then a zero row for its absent rows
        rows_out = np.empty((K, b, kept + 1, part_width), dtype=part.dtype)
        rows_out[:, :, :kept] = part.transpose(1, 0, 2, 3)
        rows_out[:, :, kept] = 0.0
        inverse = np.repeat(np.arange(kept, b * (kept + 1), kept + 1), n)
        inverse[source] = slot + source // n
        rows_out = rows_out.reshape(K, b * (kept + 1), part_width)
        full = np.take(rows_out, inverse, axis=1).reshape(K, b, n, part_width)
        full = full.transpose(1, 0, 2, 3)
        if not self.layout.three_d:
            full = self.layout.join(Layout(self.layout.fields, n, three_d=True).split(full))
        return full, frame

    @property
    def presence_field(self):
        """The field whose all-NaN rows mark absent rows: the first point field, else
        the first frame-defining field, else the first per-row field (None: edge fields
        alone, no row can be absent)."""
        points = [f.name for f in self.layout.fields if f.kind == "point"]
        if points:
            return points[0]
        if self.frame_fields:
            return self.frame_fields[0]
        rows = [f.name for f in self.layout.fields if f.kind != "edge"]
        return rows[0] if rows else None

    def prepare(self, X):
        """Find the absent rows of X and fill them with zeros.

        Parameters
        ----------
        X : ndarray or tensor of shape (B, C) or (B, n, W)

        Returns
        -------
        X : array like X
            X itself where every row is present, else a copy with every field of the
            absent rows set to 0.
        present : bool array of shape (B, n) or None
            The present rows (None: all of them).

        Raises
        ------
        NonFiniteInputError
            NaN that does not mark an absent row, or inf (see :func:`find_absent`).
        """
        # groups that keep rows in place compute frames without waiting for an
        # accelerator; there the present rows always travel (permutation frames
        # decide on the host anyway)
        present = find_absent(X, self.layout, self.presence_field,
                              sync=self.group.permutes_rows)
        if present is None:
            return X, None
        return fill_absent(X, self.layout, present), present

    def _fields(self, X):
        """X's fields as the group takes them (complex rows for complex groups)."""
        return _fields_of(self.group, self.layout, X)

    def canonicalize_chunk(self, X, tol, return_frame, detach, present=None, start=0,
                            round_bits=None, out=None, parts=None):
        """Canonical inputs and frames of the samples of X, the chunk of the batch that
        starts at sample ``start`` (errors name samples of the whole batch); the
        canonical inputs of numpy X with several fields are joined into ``out`` where
        it is given.

        Callers that hold X's fields apart pass them as ``parts`` (by name, real
        arrays), with X None and ``detach`` False: fields split from one joined tensor
        would each cost autograd a zero-filled gradient of the whole tensor."""
        if parts is None:
            parts = self._fields(X)
        frame = self._frame(self._fields(X.detach()) if detach else parts, tol, present)
        keep = None
        if present is not None and not (getattr(frame, "zeros_absent_rows", False)
                                        and frame.present is not None):
            # frames computed from `present` that zero its absent rows themselves
            # (S_n x G) need no second pass
            dtype = X.dtype if X is not None else parts[self.layout.fields[0].name].dtype
            keep = _canonical_present(frame, present, dtype)
        canonical = {}
        # where each frame field's rows start among the stacked frame-defining rows
        offsets, row = {}, 0
        for name in self.frame_fields:
            offsets[name], row = row, row + parts[name].shape[1]
        for f in self.layout.fields:
            try:
                canon = frame.to_canonical(parts[f.name], f.kind)
            except ResultOverflowError as error:
                raise error.located(start, f.name) from None
            # Exact values where the frame rows have them. Not with detached frames: the
            # coordinates that snapping fixes do move with X when the frame is held
            # constant, so their gradient must not be cut.
            if f.name in self.frame_fields and not detach:
                canon = frame.snap(canon, offsets[f.name])
            if keep is not None:   # absent rows: zeros (centring moved them)
                canon = _zero_absent(canon, keep, f.kind)
            canon = self.group.to_real(canon, f.kind)
            if round_bits is not None and f.kind in ("point", "vector"):
                # before the join: a contiguous field is several times faster to round
                # than its strided columns in the joined array (see round_relative)
                canon = rounded_field(canon, round_bits)
            canonical[f.name] = canon
        return self.layout.join(canonical, out=out), (frame if return_frame else None)

    def _frame(self, parts, tol, present=None):
        """The group's frames of one chunk; the group reads the fields it needs."""
        kinds = [(f.name, f.kind) for f in self.layout.fields]
        frame_fields = self.frame_fields

        def frame_of(points, vectors, present, rule=self.row_rule):
            return self.group.frame(
                points, vectors,
                scalars=[parts[name] for name, kind in kinds if kind == "scalar"],
                others=[(parts[name], kind) for name, kind in kinds
                        if kind in ("point", "vector") and name not in frame_fields],
                edges=[parts[name] for name, kind in kinds if kind == "edge"],
                present=present, method=self.method, tol=tol, rule=rule)

        return ensemble_frame(
            self.group, frame_of,
            [parts[name] for name in frame_fields if self.layout.field(name).kind == "point"],
            [parts[name] for name in frame_fields if self.layout.field(name).kind == "vector"],
            present, self.n_frames, rule=self.row_rule, tol=tol, tie_band=self.tie_band)


def _rows_of(present, s):
    """The present rows of the samples of slice ``s`` (None stays None)."""
    return None if present is None else present[s]


def _canonical_present(frame, present, dtype):
    """The present rows (B, n) in canonical order, (B, K, n, 1): frames that permute
    rows move them."""
    xp = get_namespace(present)
    return frame.to_canonical(xp.astype(present, dtype)[..., None], "scalar") > 0


def _zero_absent(canon, keep, kind):
    """Canonical field (B, K, n, w) (edges: (B, K, n, n, w)) with zeros where ``keep``
    (B, K, n, 1), the canonical present rows, is False."""
    xp = get_namespace(canon)
    if kind == "edge":
        keep = keep[..., :, None, :] & keep[..., None, :, :]
    zero = xp.zeros((), dtype=canon.dtype, device=canon.device)
    return xp.where(keep, canon, zero)


def _fields_of(group, layout, X):
    """X's fields as ``group`` (a Group or a Frame) takes them: complex rows for complex
    groups, converted from their real blocks by ``from_real``; unchanged for real ones."""
    parts = layout.split(X)
    return {f.name: group.from_real(parts[f.name], f.kind) for f in layout.fields}


def restore(frame, layout, Y):
    """Map canonical outputs (B, K, C) back with the frames and average over K."""
    parts = _fields_of(frame, layout, Y)
    return layout.join({f.name: frame.to_real(_named(frame.from_canonical, parts, f),
                                              f.kind)
                        for f in layout.fields})


def to_canonical(frame, layout, Y, present=None):
    """Canonical form (B, K, C) of equivariant targets (B, C) under the given frames.

    With ``present`` (B, n) and targets of the inputs' ``n`` rows, the targets' absent
    rows (any value, NaN included) are zeros in the canonical form."""
    per_row = present is not None and layout.n_rows == present.shape[1]
    if per_row:
        Y = fill_absent(Y, layout, present)
    parts = _fields_of(frame, layout, Y)
    canonical = {f.name: _named(frame.to_canonical, parts, f) for f in layout.fields}
    if per_row:
        keep = _canonical_present(frame, present, Y.dtype)
        canonical = {f.name: _zero_absent(canonical[f.name], keep, f.kind)
                     for f in layout.fields}
    return layout.join({f.name: frame.to_real(canonical[f.name], f.kind)
                        for f in layout.fields})


def _named(method, parts, field):
    """``method(parts[name], kind)`` of a field; overflow errors name the field."""
    try:
        return method(parts[field.name], field.kind)
    except ResultOverflowError as error:
        raise error.located(0, field.name) from None


class FrameEstimatorMixin:
    """What the sklearn estimators share: resolving the group, layout and frame fields
    in ``fit``, validating X later, canonicalizing, and per-sample diagnostics.

    Subclasses hold the parameters ``group``, ``fields``, ``frame_fields``, ``tol``,
    ``row_rule``, ``n_frames`` and ``n_jobs``, the frame method in ``_frame_method``
    and the band of weighted frames near ties in ``_tie_band`` (0: none).
    """

    _frame_method = "minimal"
    _tie_band = 0.0

    def _fit_frames(self, X):
        """Resolve the frame plan for samples of X's shape (called in ``fit``)."""
        if X.ndim > 3:
            raise ValueError(f"X must be 2-D (n_samples, n_columns) or 3-D (n_samples, "
                             f"n_rows, width); got a {X.ndim}-D array of shape {X.shape}")
        self.input_shape_ = tuple(X.shape[1:])
        self.absent_rows_ = False
        if self.group is None:
            self.group_ = self.layout_ = self.frame_fields_ = None
            self.labeling_backend_ = None
        else:
            plan = FramePlan.resolve(self.group, self.fields, self.frame_fields,
                                     self.input_shape_, self._frame_method, self.row_rule,
                                     self.n_frames, self._tie_band)
            self.group_, self.layout_ = plan.group, plan.layout
            self.frame_fields_ = list(plan.frame_fields)
            self.labeling_backend_ = plan.group.labeling_backend()
            self.absent_rows_ = find_absent(X, plan.layout, plan.presence_field) is not None

    def _validate_X(self, X):
        """Validate X after fitting: numeric, same trailing shape, finite."""
        # 3-D X for a model fitted on 2-D X (or the reverse): sklearn's own check would
        # compare X.shape[1] alone ("X has 5 features, but ... expecting 15")
        shape = tuple(getattr(X, "shape", ()))[1:]
        if shape and len(shape) != len(self.input_shape_):
            self._refuse_sample_shape(shape)
        X = validate_data(self, X, reset=False, allow_nd=True,
                          dtype=[np.float64, np.float32], ensure_all_finite=False)
        if tuple(X.shape[1:]) != self.input_shape_:
            self._refuse_sample_shape(tuple(X.shape[1:]))
        if self.group_ is None:  # X goes to the inner estimator as it is, NaN included
            return X
        fitted = self.labeling_backend_
        # a fit without pynauty labeled only what colour refinement separates, which
        # every backend labels alike
        if fitted is not None and fitted.startswith("pynauty"):
            current = self.group_.labeling_backend()
            if current != fitted:
                warnings.warn(
                    f"{type(self).__name__} was fitted with the canonical labeling "
                    f"backend {fitted!r} and now runs with {current!r}: samples with "
                    "symmetries may get other canonical forms, so predictions stay "
                    "exactly symmetric but can differ from before. Refit, or install "
                    "the fitted version.", LabelingBackendWarning, stacklevel=3)
        return X

    def _refuse_sample_shape(self, shape):
        raise ValueError(f"X has samples of shape {shape}, but {type(self).__name__} was "
                         f"fitted on samples of shape {self.input_shape_}")

    @property
    def _presence_column(self):
        """Whether canonical inputs carry a presence column per row: where the fitted
        data had absent rows and the frames keep the rows in place (frames that
        permute rows move the absent ones last instead)."""
        return bool(getattr(self, "absent_rows_", False)) and not self.group_.permutes_rows

    def _canonical(self, X, return_frame=True, n_frames=None):
        """Canonical inputs (B, K, ...), frames (None without a group) and present rows
        (B, n) (None: all present); ``n_frames`` overrides the estimator's frames per
        sample (predictions with fewer frames than the fit).

        Absent rows (all NaN in the first point field) are zeros in the canonical
        inputs; where the fitted data had absent rows and the group keeps rows in place,
        a 0/1 presence column per row is appended (see :func:`with_presence`).
        """
        if self.group_ is None:
            return X[:, None], None, None
        plan = FramePlan(self.group_, self.layout_, tuple(self.frame_fields_),
                         self._frame_method, self.row_rule,
                         self.n_frames if n_frames is None else n_frames, self._tie_band)
        fitted_absent = getattr(self, "absent_rows_", False)
        host = plan.reads_rows(X)
        if host and fitted_absent:   # chunks check X and fill or drop absent rows in cache
            Xc, frame, present = plan.canonicalize_numpy(
                X, tol=self.tol, n_jobs=self.n_jobs, return_frame=return_frame,
                round_bits=self.round_bits, presence_column=self._presence_column)
        elif host:   # absent rows are an error: the first chunk with NaN stops all
            Xc, frame, present = plan.canonicalize_numpy(
                X, tol=self.tol, n_jobs=self.n_jobs, return_frame=return_frame,
                round_bits=self.round_bits, absent_rows=False)
        else:
            X, present = plan.prepare(X)
            if present is None or fitted_absent:
                Xc, frame = plan.canonicalize(X, tol=self.tol, n_jobs=self.n_jobs,
                                              return_frame=return_frame, present=present,
                                              round_bits=self.round_bits,
                                              presence_column=self._presence_column)
        if present is not None and not fitted_absent:
            raise AbsentRowsError(
                f"X has absent rows (all-NaN rows of field {plan.presence_field!r}) in "
                f"{first_indices(_host(~present).any(axis=1))}, but "
                f"{type(self).__name__} was fitted on data without absent rows, so its "
                "inner estimator never saw any. Fit on padded data (systems of "
                "different sizes, with NaN rows) to predict on padded data.")
        return Xc, frame, present

    def frame_diagnostics(self, X):
        """Per-sample frame diagnostics, so degenerate inputs are visible.

        Parameters
        ----------
        X : array-like
            Samples of the shape the estimator was fitted on.

        Returns
        -------
        dict of ndarray of shape (n_samples,)
            ``rank`` (frame vectors found in the data), ``frame_size`` (frame elements,
            finite part), ``projected`` (outputs projected onto the span of the frame
            vectors: the stabilizer is continuous), ``projection_is_average`` and
            ``conditioning`` (largest over smallest chosen residual norm). With
            ``tie_band``, ``frame_size`` counts the frames of nonzero weight: 2 per
            member for samples inside the band, whose extra inner calls they are.
            Lorentz groups add ``n_lightlike_rows`` and ``boost`` (see
            :class:`~mfa_sklearn.groups.lorentz.LorentzFrame`).
        """
        check_is_fitted(self)
        if self.group_ is None:
            raise ValueError("group=None has no frames; set a group to get diagnostics")
        _, frame, _ = self._canonical(self._validate_X(X))
        return {key: (None if value is None else np.asarray(value))
                for key, value in frame.diagnostics.items()}
