"""mfa_sklearn.testing: check_equivariance and assert_equivariant, its asserting twin."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import FunctionTransformer

from mfa_sklearn import (
    FrameAveragingClassifier,
    FrameAveragingRegressor,
    MinimalFrameCanonicalizer,
    check_equivariance,
)
from mfa_sklearn.testing import DEFAULT_RTOL, assert_equivariant


@pytest.fixture(scope="module")
def clouds():
    """40 clouds of 5 points in 3-D (sklearn rows), a point target and binary labels."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 15)) + np.tile(rng.normal(size=(40, 3)), 5)
    y = X + 0.1 * rng.normal(size=X.shape)
    labels = (np.linalg.norm(X, axis=1) > np.median(np.linalg.norm(X, axis=1))).astype(int)
    return X, y, labels


def _nearly_invariant(X):
    """|x| per sample plus a 1e-6 relative term that is not invariant under O(3)."""
    X = np.asarray(X, dtype=np.float64)
    return np.linalg.norm(X, axis=1) + 1e-6 * X[:, 0]


def test_passes_on_a_frame_averaged_model_and_returns_the_report(clouds):
    X, y, _ = clouds
    reg = FrameAveragingRegressor(KNeighborsRegressor(3), group="E(3)", target="point")
    reg.fit(X, y)
    report = assert_equivariant(reg, "E(3)", X, random_state=1)
    assert report == check_equivariance(reg, "E(3)", X, random_state=1)
    assert report["output_scale"] > 0 and report["max_error"] <= DEFAULT_RTOL["double"]


def test_fails_on_a_non_equivariant_model_naming_method_group_output_and_error(clouds):
    X, y, _ = clouds
    bare = KNeighborsRegressor(3).fit(X, y)
    report = check_equivariance(bare, "E(3)", X, target="point", random_state=1)
    with pytest.raises(AssertionError) as info:
        assert_equivariant(bare, "E(3)", X, target="point", random_state=1)
    message = str(info.value)
    assert message.startswith("KNeighborsRegressor.predict is not equivariant under E(3): "
                              f"max relative error {report['max_error']:.3g} exceeds "
                              "rtol=1e-09")
    assert "F(g.X) against g.F(X)" in message
    assert "output transforming as 'point', 40 samples" in message
    assert f"|F(g.X) - g.F(X)| = {report['max_abs_error']:.3g} at sample " in message
    assert f"mean per-row L1 error: {report['mean_error']:.3g}" in message


def test_other_outputs_through_bound_methods_and_transform(clouds):
    X, _, labels = clouds
    clf = FrameAveragingClassifier(LogisticRegression(), group="SO(3)").fit(X, labels)
    assert_equivariant(clf.predict_proba, "SO(3)", X, random_state=2)
    bare = LogisticRegression().fit(X, labels)
    with pytest.raises(AssertionError, match=r"^LogisticRegression\.predict_proba is not "
                                             r"invariant under SO\(3\)") as info:
        assert_equivariant(bare.predict_proba, "SO(3)", X, random_state=2)
    assert "F(g.X) against F(X) for F = LogisticRegression.predict_proba, invariant " \
           "output" in str(info.value)

    assert_equivariant(MinimalFrameCanonicalizer(group="O(3)").fit(X), "O(3)", X,
                       random_state=3)
    with pytest.raises(AssertionError, match=r"^FunctionTransformer\.transform is not "
                                             r"invariant under O\(3\)"):
        assert_equivariant(FunctionTransformer().fit(X), "O(3)", X, random_state=3)
    with pytest.raises(AssertionError, match=r"^_nearly_invariant is not invariant"):
        assert_equivariant(_nearly_invariant, "O(3)", X, random_state=3)


def test_float32_input_has_a_looser_default(clouds):
    X, y, _ = clouds
    X32 = X.astype(np.float32)
    reg = FrameAveragingRegressor(KNeighborsRegressor(3), group="E(3)", target="point")
    reg.fit(X32, y)
    report = assert_equivariant(reg, "E(3)", X32, random_state=1)
    # float32 rounding: within the single-precision default, beyond the double one
    assert DEFAULT_RTOL["double"] < report["max_error"] <= DEFAULT_RTOL["single"]
    with pytest.raises(AssertionError, match="exceeds rtol=1e-09"):
        assert_equivariant(reg, "E(3)", X32, random_state=1, rtol=DEFAULT_RTOL["double"])
    with pytest.raises(AssertionError, match=r"not equivariant under E\(3\).* exceeds "
                                             r"rtol=0\.0001"):
        assert_equivariant(KNeighborsRegressor(3).fit(X32, y), "E(3)", X32,
                           target="point", random_state=1)
    # the default follows X's precision: a 1e-6 error passes for float32 X only
    assert_equivariant(_nearly_invariant, "O(3)", X32, random_state=4)
    with pytest.raises(AssertionError, match="exceeds rtol=1e-09"):
        assert_equivariant(_nearly_invariant, "O(3)", X, random_state=4)


def test_rtol_and_atol(clouds):
    X, _, _ = clouds
    report = check_equivariance(_nearly_invariant, "O(3)", X, random_state=5)
    assert 1e-9 < report["max_error"] < 1e-5
    assert_equivariant(_nearly_invariant, "O(3)", X, random_state=5, rtol=1e-5)
    with pytest.raises(AssertionError, match=r"exceeds rtol=0 \+ atol=1e-12"):
        assert_equivariant(_nearly_invariant, "O(3)", X, random_state=5, rtol=0.0,
                           atol=1e-12)
    assert_equivariant(_nearly_invariant, "O(3)", X, random_state=5, rtol=0.0,
                       atol=2.0 * report["max_abs_error"])
    # outputs that are exactly zero pass with atol 0; NaN outputs never pass
    assert_equivariant(lambda Z: np.zeros(len(Z)), "O(3)", X, random_state=5)
    with pytest.raises(AssertionError, match="max relative error nan"):
        assert_equivariant(lambda Z: np.full(len(Z), np.nan), "O(3)", X, random_state=5)


def test_hidden_from_pytest_tracebacks(clouds):
    X, y, _ = clouds
    with pytest.raises(AssertionError) as info:
        assert_equivariant(KNeighborsRegressor(3).fit(X, y), "E(3)", X, target="point")
    names = [entry.frame.code.name for entry in info.traceback]
    assert "assert_equivariant" in names
    shown = [entry.frame.code.name for entry in info.traceback.filter(info)]
    assert "assert_equivariant" not in shown


def test_check_equivariance_on_class_labels():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 15))
    labels = np.array(["near", "far"])[(np.linalg.norm(X, axis=1) > 3.9).astype(int)]
    clf = FrameAveragingClassifier(KNeighborsClassifier(3), group="E(3)").fit(X, labels)
    assert check_equivariance(clf, "E(3)", X, random_state=0)["max_error"] == 0.0
    bare = KNeighborsClassifier(1).fit(X, np.array(["a", "b"])[np.arange(40) % 2])
    report = check_equivariance(bare, "E(3)", X, random_state=0)
    assert report["max_error"] == 1.0 and 0.0 < report["mean_error"] < 1.0
    with pytest.raises(ValueError, match=r"class labels.* can only be invariant"):
        check_equivariance(clf, "E(3)", X, target="point")
