"""scikit-learn's common estimator checks on default-constructed and configured instances."""

import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_get_feature_names_out_error,
    check_global_output_transform_pandas,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from mfa_sklearn import (
    FrameAveragingClassifier,
    FrameAveragingRegressor,
    MinimalFrameCanonicalizer,
)

# O(1) / E(1) act on rows of width 1, so every column count of the checks' data divides.
ESTIMATORS = [
    MinimalFrameCanonicalizer(),
    MinimalFrameCanonicalizer(group="E(1)"),
    FrameAveragingRegressor(),
    FrameAveragingRegressor(Ridge(), group="O(1)"),
    FrameAveragingRegressor(KNeighborsRegressor(), group="E(1)", frame="pca"),
    FrameAveragingClassifier(),
    FrameAveragingClassifier(LogisticRegression(), group="SE(1)"),
    FrameAveragingClassifier(LinearSVC(), group="O(1)", frame="pca"),
    MinimalFrameCanonicalizer(group="O(1)", row_rule="first"),
    FrameAveragingRegressor(Ridge(), group="E(1)", row_rule="first_above", n_frames=2),
]


# KNeighborsRegressor takes no sample_weight: the wrapper applies integer weights as
# repeated samples, so the sample-weight checks pass with it too
def _expected_failures(estimator):
    """A frame ensemble needs as many row orders as frames: one row (one feature of
    E(1)) has one order, so ``n_frames=2`` raises its own ValueError there."""
    if getattr(estimator, "n_frames", 1) > 1:
        return {"check_fit2d_1feature": "n_frames=2 needs at least 2 rows; a sample of "
                                        "1 feature has one row order"}
    return {}


@parametrize_with_checks(ESTIMATORS, xfail_strict=True,
                         expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)


TRANSFORMER_CHECKS = [
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_global_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    check_dataframe_column_names_consistency,
    check_get_feature_names_out_error,
]


# these checks fit on DataFrames and transform arrays (and back) on purpose; sklearn's
# own transformers warn the same way there
@pytest.mark.filterwarnings("ignore:X (has|does not have valid) feature names")
@pytest.mark.parametrize("check", TRANSFORMER_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("group", [None, "O(1)"])
def test_transformer_output_checks(check, group):
    pytest.importorskip("pandas")
    estimator = MinimalFrameCanonicalizer(group=group)
    check(type(estimator).__name__, estimator)
