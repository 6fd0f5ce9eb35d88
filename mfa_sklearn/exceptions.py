"""Errors and warnings raised by mfa_sklearn.

Errors about the input are ``ValueError`` subclasses (scikit-learn's convention for bad
input), so callers that catch ``ValueError`` keep working and the subclasses let them
tell the causes apart. :class:`MissingDependencyError`, an optional package that is not
installed, is an ``ImportError``.
"""

__all__ = [
    "AbsentRowsError",
    "FrameDegeneracyWarning",
    "FrameTooLargeError",
    "GroupNotFoundError",
    "LabelingBackendWarning",
    "LayoutError",
    "MagnitudeError",
    "MissingDependencyError",
    "NonFiniteInputError",
    "RankDeficientError",
    "ResultOverflowError",
]


class NonFiniteInputError(ValueError):
    """A field holds NaN or inf, so no frame can be computed."""


class AbsentRowsError(ValueError):
    """X has absent rows (all-NaN rows) where the estimator cannot take them: it was
    fitted on data without absent rows."""


class LayoutError(ValueError):
    """The columns (or trailing shape) of X or y do not match the described fields."""


class GroupNotFoundError(ValueError):
    """A group string could not be parsed, or names a group that is not available."""


class RankDeficientError(ValueError):
    """The frame-defining rows do not span the space the group needs (GL, SL, Aff)."""


class FrameDegeneracyWarning(UserWarning):
    """Fewer frame vectors were found than the data's rank (e.g. lightlike rows), or
    the frames amplify rounding errors so much that symmetry holds only approximately
    (Lorentz frames with large boosts)."""


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


class MagnitudeError(ValueError):
    """Values lie beyond the range of the dtype that has to hold them, e.g. float64 rows
    beyond float32's range for frames computed in float32."""


class ResultOverflowError(MagnitudeError):
    """A result that the frames compute from finite values exceeds the largest finite
    value of its dtype: canonical inputs (rows centred and rotated, or boosted, can have
    larger coordinates than the input) or outputs mapped back by the frames.

    Frames themselves never overflow (each sample is scaled by a power of two first);
    this is raised only where the result itself cannot be represented.

    Parameters
    ----------
    what : str
        The result, e.g. "canonical inputs".
    samples : array of int
        The offending samples (indices into the batch).
    limit : float
        The largest finite value of the result's dtype.
    field : str, optional
        The field, where the caller knows its name.
    """

    def __init__(self, what, samples, limit, field=None):
        import numpy as np

        self.what, self.samples = what, np.asarray(samples)
        self.limit, self.field = float(limit), field
        where = "a field" if field is None else f"field {field!r}"
        super().__init__(
            f"the {what} of {where} exceed the largest finite value of their dtype "
            f"({self.limit:.3g}) in {first_indices(self.samples)}, although the values "
            "they come from are finite. Scale the data by a constant (a power of two "
            "keeps it exact) that brings its magnitude nearer 1: divide huge data, "
            "multiply data near the smallest normal numbers (inverse frames of GL, SL "
            "and Aff grow as the data shrink), and scale equivariant results back. "
            "Lorentz frames with huge boosts (nearly lightlike rows as a whole) "
            "overflow whatever the scale: see frame_diagnostics()['boost'].")

    def __reduce__(self):
        return type(self), (self.what, self.samples, self.limit, self.field)

    def located(self, offset=0, field=None):
        """The same error for samples counted from ``offset`` (a chunk's first sample in
        the whole batch), naming ``field``."""
        return type(self)(self.what, self.samples + offset, self.limit,
                          self.field if field is None else field)
