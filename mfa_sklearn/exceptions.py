"""Errors and warnings raised by mfa_sklearn.

Errors about the input are ``ValueError`` subclasses (scikit-learn's convention for bad
input), so callers that catch ``ValueError`` keep working and the subclasses let them
tell the causes apart. :class:`MissingDependencyError`, an optional package that is not
installed, is an ``ImportError``.
"""

__all__ = [
    "FrameDegeneracyWarning",
    "FrameTooLargeError",
    "GroupNotFoundError",
    "LabelingBackendWarning",
    "LayoutError",
    "MissingDependencyError",
    "NonFiniteInputError",
    "RankDeficientError",
]


class NonFiniteInputError(ValueError):
    """A field holds NaN or inf, so no frame can be computed."""


class LayoutError(ValueError):
    """The columns (or trailing shape) of X or y do not match the described fields."""


class GroupNotFoundError(ValueError):
    """A group string could not be parsed, or names a group that is not available."""


class RankDeficientError(ValueError):
    """The frame-defining rows do not span the space the group needs (GL, SL, Aff)."""


class FrameDegeneracyWarning(UserWarning):
    """Fewer frame vectors were found than the data's rank (e.g. lightlike rows)."""


def first_indices(mask_or_indices, limit=10):
    """Format the first ``limit`` offending sample indices for an error message."""
    import numpy as np

    idx = np.asarray(mask_or_indices)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    more = ", ..." if idx.size > limit else ""
    return f"{idx.size} sample(s) (first: [{shown}{more}])"


class FrameTooLargeError(ValueError):
    """A sample's finite stabilizer has more elements than ``max_frame_size`` allows."""


class LabelingBackendWarning(UserWarning):
    """Frames are computed with another canonical labeling backend (nauty version) than
    the estimator was fitted with: symmetric samples may get other canonical forms, so
    the model stays exactly symmetric but computes a different function."""


class MissingDependencyError(ImportError):
    """An optional dependency (e.g. ``pynauty`` for canonical labeling) is not installed."""
