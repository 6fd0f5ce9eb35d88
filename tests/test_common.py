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
    LocalFrameFeaturizer,
    LocalFrameRegressor,
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


# Local frames in E(1): every column count divides, each column one atom on a line. The
# defaults (E(3), 3 columns per atom) run every check too; those whose data does not fit
# a layout of atoms fail by design, listed with the reason.
LOCAL_ESTIMATORS = [
    LocalFrameRegressor(),
    LocalFrameRegressor(group="E(1)"),
    LocalFrameFeaturizer(),
    LocalFrameFeaturizer(group="E(1)", pooling="mean"),
]

_COINCIDENT = ("the check's data puts two atoms of a system at the same position "
               "(integer-valued or repeated columns), which local frames reject with "
               "an error naming the system and atom")
_THREE_COLUMNS = ("the default layout holds 3 coordinates per atom; the check's data "
                  "has a column count that 3 does not divide, which is a LayoutError")


_COINCIDENT_CHECKS = (
    "check_estimators_dtypes", "check_sample_weights_pandas_series",
    "check_sample_weights_not_an_array", "check_sample_weights_shape",
    "check_sample_weights_not_overwritten")
_THREE_COLUMN_CHECKS = (
    "check_estimators_overwrite_params", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_dtype_object", "check_regressors_train",
    "check_regressor_data_not_an_array", "check_regressors_no_decision_function",
    "check_regressors_int", "check_fit2d_1sample", "check_fit2d_1feature",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in",
    "check_all_zero_sample_weights_error", "check_estimators_pickle",
    "check_array_api_input")


def local_expected_failures(estimator):
    """Checks whose data local frames reject by design, with the reason."""
    failures = dict.fromkeys(_COINCIDENT_CHECKS, _COINCIDENT)
    if estimator.group == "E(3)":
        failures.update(dict.fromkeys(_THREE_COLUMN_CHECKS, _THREE_COLUMNS))
    return failures


@parametrize_with_checks(LOCAL_ESTIMATORS, expected_failed_checks=local_expected_failures,
                         xfail_strict=True)
def test_local_frames_sklearn_compatible(estimator, check):
    check(estimator)


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
