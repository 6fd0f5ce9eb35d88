"""MinimalFrameCanonicalizer: a transformer that maps every sample to its canonical form."""

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._engine import (
    COMMON_CONSTRAINTS,
    DEFAULT_ROW_RULE,
    N_JOBS_CONSTRAINT,
    ROUND_BITS_CONSTRAINT,
    FrameEstimatorMixin,
    store_init_arguments,
)

__all__ = ["MinimalFrameCanonicalizer"]


class MinimalFrameCanonicalizer(ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                                FrameEstimatorMixin, BaseEstimator):
    """Map each sample to its canonical form under a group, by a minimal frame.

    The output is exactly invariant: ``transform(g . X) == transform(X)`` for every group
    element ``g`` (up to rounding), so any estimator fitted after it in a ``Pipeline``
    is invariant. Each sample is moved by one group element (its frame); directions the
    data leaves free (rank-deficient samples) are set to zero, which is the exact
    average over the stabilizer.

    **Systems of different sizes.** A row whose first point field (else first
    frame-defining field) is all NaN is *absent*: samples of fewer rows are padded
    with NaN rows, anywhere among the rows. Absent rows are left out of the frames
    (centroids, row choices), their other fields may hold anything (NaN included),
    and every field of theirs is 0 in the output. When the fitted data had absent
    rows (``absent_rows_``) and the group keeps rows in place (all but S_n and its
    products, which put absent rows last), a 0/1 presence column per row follows the
    canonical columns: ``n`` more columns for 2-D X (in row order), one more entry
    per row for 3-D X. Data without absent rows keeps its format unless the fitted data
    had some; transforming padded data after fitting on unpadded data raises
    :class:`~mfa_sklearn.exceptions.AbsentRowsError`. NaN elsewhere and inf raise
    :class:`~mfa_sklearn.exceptions.NonFiniteInputError`, naming sample and row.

    Parameters
    ----------
    group : str, Group or None, default=None
        The symmetry group, e.g. ``"O(3)"``, ``"SO(3)"``, ``"E(3)"``, ``"SE(3)"``.
        ``None`` means no symmetry: ``transform`` returns X unchanged.
    fields : dict, str, tuple or None, default=None
        How the columns hold per-row fields: ``name -> kind`` or ``name -> (kind,
        width)`` with kinds "point", "vector" and "scalar", column blocks field-major.
        Default: the whole row is one "point" field of the group's width.
    frame_fields : str or list of str, default=None
        The fields that define the frame (default: the first point field, else the first
        vector field; for S_n every point and vector field).
        Several are stacked as rows, e.g. ``["pos", "vel"]``.
    tol : float, default=None
        Relative rank tolerance; default ``sqrt(eps)`` of the input dtype.
    row_rule : {"first_above", "first", "pivoted"}, default="first_above"
        How groups whose frames read the rows in order (O, SO, E, SE, U, SU, Lorentz,
        GL, SL, Aff, and the geometric part of S_n x G) choose the rows that define the
        frame vectors: ``"first_above"`` the first row (in index order) whose residual
        norm is at least a tenth of the largest, ``"first"`` the first linearly
        independent rows, ``"pivoted"`` the row of largest residual at each step (QR
        with column pivoting). All are exact; they differ in how often the canonical
        form jumps as the input moves (which smooth learners must fit: pivoting jumps
        wherever two residual norms cross) and in conditioning ("first" builds frames
        on tiny or nearly dependent leading rows). The default jumps least and is as
        well conditioned as pivoting, to a factor 10 per frame vector. See the
        README, 'Row rules and frame ensembles'.
    n_jobs : int, default=None
        Joblib workers over chunks of samples.
    round_bits : int or None, default=40
        Round the canonical coordinates of point and vector fields to this many
        significant bits of each sample's largest coordinate (a power-of-two grid, so
        exact arithmetic). The canonical forms of ``g . x`` and ``x`` differ by float
        rounding (about 1e-15 relative); rounded, they agree bit for bit unless a
        coordinate lies within that rounding of a grid boundary (a chance of about
        ``2^(bits - 50)`` per coordinate). Tree models split at training values, so
        this makes them exactly symmetric on the training data too; 32 bits cost no
        accuracy. float32 canonical forms have 24 bits and differ by float32
        rounding: the default leaves them as they are; about 12 bits make them agree.
        None: no rounding.

    Attributes
    ----------
    group_ : Group or None
        The resolved group.
    layout_ : Layout or None
        Fields and rows per sample inferred from X.
    frame_fields_ : list of str or None
        Resolved frame-defining fields (point fields first).
    input_shape_ : tuple
        Shape of one sample of X.
    absent_rows_ : bool
        Whether the fitted X had absent rows (all-NaN rows); then canonical inputs carry
        presence columns (groups that keep rows in place).
    labeling_backend_ : str or None
        For the permutation groups, the canonical labeling backend at fit time (e.g.
        ``"pynauty 2.8.8.1 (nauty2_8_8)"``); a transform under another one warns with
        :class:`~mfa_sklearn.exceptions.LabelingBackendWarning`. None for other groups.
    n_features_in_ : int
        Number of columns of 2-D X (rows of 3-D X).
    feature_names_in_ : ndarray of str
        Column names, when X is a DataFrame with string column names.

    References
    ----------
    .. [1] Y. Lin, J. Helwig, S. Gui, S. Ji. "Equivariance via Minimal Frame Averaging
       for More Symmetries and Efficiency." ICML 2024. arXiv:2406.07598.

    Examples
    --------
    >>> import numpy as np
    >>> from mfa_sklearn import MinimalFrameCanonicalizer
    >>> from mfa_sklearn.testing import random_group_element, apply_group
    >>> X = np.random.default_rng(0).normal(size=(4, 5 * 3))   # 4 clouds of 5 points
    >>> can = MinimalFrameCanonicalizer(group="E(3)").fit(X)
    >>> g = random_group_element("E(3)", 4, random_state=1)
    >>> gX = apply_group("E(3)", g, X)
    >>> bool(np.allclose(can.transform(gX), can.transform(X)))
    True
    """

    _parameter_constraints = {**COMMON_CONSTRAINTS, "n_jobs": N_JOBS_CONSTRAINT,
                              "round_bits": ROUND_BITS_CONSTRAINT}

    #: one canonical form per sample: frame ensembles belong to the averaging estimators
    n_frames = 1

    def __init__(self, group=None, *, fields=None, frame_fields=None, tol=None,
                 row_rule=DEFAULT_ROW_RULE, n_jobs=None, round_bits=40):
        store_init_arguments(self, locals())

    def fit(self, X, y=None):
        """Resolve the group and infer the layout of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, n_rows, width)
            Samples whose columns (or rows) hold the points, vectors and scalars of
            ``fields``.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self._validate_params()
        X = validate_data(self, X, allow_nd=True, dtype=[np.float64, np.float32],
                          ensure_all_finite=False)
        self._fit_frames(X)
        self._n_features_out = int(np.prod(self.input_shape_))
        if self.group_ is not None and self._presence_column and len(self.input_shape_) == 1:
            self._n_features_out += self.layout_.n_rows     # the presence columns
        return self

    def transform(self, X):
        """Canonical form of every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, n_rows, width)
            Samples in the layout seen in ``fit``; a row that is all NaN in the
            frame-defining field is absent.

        Returns
        -------
        ndarray of the same shape and floating dtype as X
        """
        check_is_fitted(self)
        X = self._validate_X(X)
        Xc, _, _ = self._canonical(X, return_frame=False)
        # without a group Xc is a view of X: never hand out the caller's memory
        return Xc[:, 0].copy() if self.group_ is None else Xc[:, 0]

    def get_feature_names_out(self, input_features=None):
        """Names of the canonical columns (prefixed with the class name).

        Column k of the output is not input column k: frames rotate coordinates.
        """
        check_is_fitted(self)
        if len(self.input_shape_) != 1:
            raise ValueError("feature names are only defined for 2-D X; this "
                             f"canonicalizer was fitted on samples of shape "
                             f"{self.input_shape_}")
        return super().get_feature_names_out(input_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        # no group: X passes through; a group: all-NaN rows are absent rows
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
