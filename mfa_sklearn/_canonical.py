"""Shared machinery of the estimators: parameter checks, layouts, batched canonicalization."""

import numbers
import warnings

import numpy as np
from sklearn.utils.parallel import Parallel, delayed

from .exceptions import LabelingBackendWarning, NonFiniteInputError, first_indices
from .groups import get_group
from .groups.permutation import labeling_backend
from .groups._namespace import all_finite
from .layout import Layout

# Work on chunks of at most this many float64 values and samples: the temporaries of
# the frame math then stay in cache and in malloc's reused memory instead of being
# page-faulted in anew (one-shot batches of 10^5 clouds were 2.5x slower), while large
# clouds still get enough samples per chunk to amortise numpy's per-call overhead.
_CHUNK_VALUES = 2 ** 19
_CHUNK_SAMPLES = 8192


def check_common_params(est):
    """Validate the parameters shared by the three estimators (called in ``fit``)."""
    if est.tol is not None and not (isinstance(est.tol, numbers.Real) and 0 < est.tol < 1):
        raise ValueError(f"tol must be None or a float in (0, 1); got {est.tol!r}")
    if est.n_jobs is not None and not isinstance(est.n_jobs, numbers.Integral):
        raise ValueError(f"n_jobs must be None or an integer; got {est.n_jobs!r}")
    frame_fields = est.frame_fields
    if frame_fields is not None and not isinstance(frame_fields, (str, list, tuple)):
        raise ValueError("frame_fields must be None, a field name or a list of field "
                         f"names; got {frame_fields!r}")


def resolve_group(group):
    """``None`` (no symmetry) or a Group object."""
    return None if group is None else get_group(group)


def resolve_frame_fields(layout, frame_fields, group):
    """Names of the frame-defining fields, points first (the first fixes translations)."""
    geometric = [f.name for f in layout.fields if f.kind in ("point", "vector")]
    if group.d is None:
        # no geometric factor (S_n): every per-row field defines the frame, none is needed
        names = geometric
    elif frame_fields is None:
        if not geometric:
            raise ValueError(
                f"group {group.name} needs a 'point' or 'vector' field to define frames; "
                f"the fields are {[(f.name, f.kind) for f in layout.fields]}")
        names = geometric[:1]
    else:
        names = [frame_fields] if isinstance(frame_fields, str) else list(frame_fields)
        if not names:
            raise ValueError("frame_fields must name at least one field")
        known = {f.name: f.kind for f in layout.fields}
        for name in names:
            if name not in known:
                raise ValueError(f"frame_fields names {name!r}, which is not one of the "
                                 f"fields {list(known)}")
            if known[name] not in ("point", "vector"):
                raise ValueError(f"frame field {name!r} has kind {known[name]!r}; only "
                                 "'point' and 'vector' fields can define frames")
    points = [n for n in names if layout.field(n).kind == "point"]
    vectors = [n for n in names if layout.field(n).kind == "vector"]
    if group.has_translations and not points:
        raise ValueError(
            f"group {group.name} includes translations, fixed by the centroid of a "
            f"'point' field, but frame_fields {names} has none; add a point field to "
            f"frame_fields or use the group without translations")
    return points + vectors


def check_finite(X, layout=None):
    """Raise :class:`NonFiniteInputError` naming the field and samples with NaN or inf."""
    if all_finite(np, X):
        return
    bad = ~np.isfinite(X)
    if layout is None:
        raise NonFiniteInputError(
            f"X contains NaN or inf in {first_indices(bad.reshape(len(X), -1).any(1))}; "
            "frames cannot be computed. Impute or drop those samples first.")
    for name, part in layout.split(bad).items():
        rows = part.reshape(len(X), -1).any(axis=1)
        if rows.any():
            raise NonFiniteInputError(
                f"field {name!r} contains NaN or inf in {first_indices(rows)}; frames "
                "cannot be computed. Impute or drop those samples first.")


def chunk_slices(n_samples, values_per_sample):
    size = min(_CHUNK_SAMPLES, max(16, _CHUNK_VALUES // max(1, values_per_sample)))
    return [slice(i, min(i + size, n_samples)) for i in range(0, n_samples, size)]


def _fields_of(group, layout, X):
    """X's fields as ``group`` (a Group or a Frame) takes them: complex rows for complex
    groups, converted from their real blocks by ``from_real``; unchanged for real ones."""
    parts = layout.split(X)
    return {f.name: group.from_real(parts[f.name], f.kind) for f in layout.fields}


def _canonicalize_chunk(group, layout, frame_fields, X, method, tol, return_frame):
    parts = _fields_of(group, layout, X)
    points = [parts[n] for n in frame_fields if layout.field(n).kind == "point"]
    vectors = [parts[n] for n in frame_fields if layout.field(n).kind == "vector"]
    if getattr(group, "uses_all_fields", False):
        # S_n groups order and colour the rows by every per-row field
        scalars = [parts[f.name] for f in layout.fields if f.kind == "scalar"]
        others = [(parts[f.name], f.kind) for f in layout.fields
                  if f.kind in ("point", "vector") and f.name not in frame_fields]
        # edge fields (graphs): the adjacency matrix and edge labels
        edges = [parts[f.name] for f in layout.fields if f.kind == "edge"]
        extra = {"edges": edges} if edges else {}
        frame = group.frame(points, vectors, scalars=scalars, others=others, method=method,
                            tol=tol, **extra)
    else:
        frame = group.frame(points, vectors, method=method, tol=tol)
    canonical = {}
    for f in layout.fields:
        canon = frame.to_canonical(parts[f.name], f.kind)
        if f.name in frame_fields:  # exact zeros where the frame rows have them
            canon = frame.snap(canon)
        canonical[f.name] = group.to_real(canon, f.kind)
    return layout.join(canonical), (frame if return_frame else None)


def canonicalize(group, layout, frame_fields, X, *, method="minimal", tol=None,
                 n_jobs=None, return_frame=True):
    """Canonical inputs of every frame element, and the frames.

    Parameters
    ----------
    X : ndarray of shape (B, C) or (B, n, W)
    return_frame : bool, default=True
        Whether the frames are needed (to map outputs back); if not, None is returned
        in their place and no time is spent gathering them.

    Returns
    -------
    Xc : ndarray of shape (B, K, C) or (B, K, n, W), X's dtype
        Canonical inputs (K = frame elements per sample, 1 for minimal frames).
    frame : Frame or None
        Frames of all B samples.
    """
    slices = chunk_slices(len(X), layout.n_columns)
    args = (group, layout, frame_fields)
    if len(slices) == 1:
        return _canonicalize_chunk(*args, X, method, tol, return_frame)
    if n_jobs in (None, 1):
        # each chunk goes straight into the output while it is still in cache
        results = (_canonicalize_chunk(*args, X[s], method, tol, return_frame)
                   for s in slices)
    else:
        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_canonicalize_chunk)(*args, X[s], method, tol, return_frame)
            for s in slices)
    Xc, frames = None, []
    for s, (part, frame) in zip(slices, results):
        if Xc is None:
            Xc = np.empty((len(X),) + part.shape[1:], dtype=part.dtype)
        Xc[s] = part
        frames.append(frame)
    return Xc, (type(frames[0]).concat(frames) if return_frame else None)


def restore(frame, layout, Y):
    """Map canonical outputs (B, K, C) back with the frames and average over K."""
    parts = _fields_of(frame, layout, Y)
    return layout.join({f.name: frame.to_real(frame.from_canonical(parts[f.name], f.kind),
                                              f.kind)
                        for f in layout.fields})


def to_canonical(frame, layout, Y):
    """Canonical form (B, K, C) of equivariant targets (B, C) under the given frames."""
    parts = _fields_of(frame, layout, Y)
    return layout.join({f.name: frame.to_real(frame.to_canonical(parts[f.name], f.kind),
                                              f.kind)
                        for f in layout.fields})


def frame_diagnostics(frame):
    """Per-sample diagnostics of a Frame as a dict of numpy arrays."""
    return {key: (None if value is None else np.asarray(value))
            for key, value in frame.diagnostics.items()}


class FrameEstimatorMixin:
    """What the three estimators share: resolving the group, layout and frame fields in
    ``fit``, validating X later, canonicalizing, and per-sample diagnostics."""

    _frame_method = "minimal"

    def _fit_frames(self, X):
        check_common_params(self)
        if X.ndim > 3:
            raise ValueError(f"X must be 2-D (n_samples, n_columns) or 3-D (n_samples, "
                             f"n_rows, width); got a {X.ndim}-D array of shape {X.shape}")
        self.group_ = resolve_group(self.group)
        self.input_shape_ = tuple(X.shape[1:])
        self.labeling_backend_ = (labeling_backend()
                                  if getattr(self.group_, "uses_all_fields", False) else None)
        if self.group_ is None:
            self.layout_ = self.frame_fields_ = None
        else:
            if self._frame_method not in self.group_.frame_methods:
                raise ValueError(f"frame={self._frame_method!r} is not available for group "
                                 f"{self.group_.name}; use one of "
                                 f"{list(self.group_.frame_methods)}")
            self.layout_ = Layout.infer(self.fields, self.group_, self.input_shape_)
            self.frame_fields_ = resolve_frame_fields(self.layout_, self.frame_fields,
                                                      self.group_)
        check_finite(X, self.layout_)

    def _validate_X(self, X):
        """Validate X after fitting: numeric, same trailing shape, finite."""
        from sklearn.utils.validation import validate_data

        X = validate_data(self, X, reset=False, allow_nd=True,
                          dtype=[np.float64, np.float32], ensure_all_finite=False)
        if tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(f"X has samples of shape {tuple(X.shape[1:])}, but "
                             f"{type(self).__name__} was fitted on samples of shape "
                             f"{self.input_shape_}")
        check_finite(X, self.layout_)
        fitted = self.labeling_backend_
        # a fit without pynauty labeled only what colour refinement separates, which
        # every backend labels alike
        if fitted is not None and fitted.startswith("pynauty") and labeling_backend() != fitted:
            warnings.warn(
                f"{type(self).__name__} was fitted with the canonical labeling backend "
                f"{self.labeling_backend_!r} and now runs with {labeling_backend()!r}: "
                "samples with symmetries may get other canonical forms, so predictions "
                "stay exactly symmetric but can differ from before. Refit, or install "
                "the fitted version.", LabelingBackendWarning, stacklevel=3)
        return X

    def _canonical(self, X, return_frame=True):
        """Canonical inputs (B, K, ...) and frames (None without a group)."""
        if self.group_ is None:
            return X[:, None], None
        return canonicalize(self.group_, self.layout_, self.frame_fields_, X,
                            method=self._frame_method, tol=self.tol, n_jobs=self.n_jobs,
                            return_frame=return_frame)

    def frame_diagnostics(self, X):
        """Per-sample frame diagnostics, so degenerate inputs are visible.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, n_rows, width)

        Returns
        -------
        dict of ndarray of shape (n_samples,)
            ``rank`` (frame vectors found in the data), ``frame_size`` (frame elements,
            finite part), ``projected`` (outputs projected onto the span of the frame
            vectors: the stabilizer is continuous), ``projection_is_average`` and
            ``conditioning`` (largest over smallest chosen residual norm).
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        if self.group_ is None:
            raise ValueError("group=None has no frames; set a group to get diagnostics")
        _, frame = self._canonical(self._validate_X(X))
        return frame_diagnostics(frame)
