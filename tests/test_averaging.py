"""FrameAveragingRegressor and FrameAveragingClassifier beyond sklearn's common checks.

Exactness (non-equivariant inner estimators, generic and degenerate clouds, scales,
float32), PCA vs minimal frames, GridSearchCV / clone / pickle, the classifier,
sample_weight and metadata routing, and the errors raised on bad parameters. The
canonicalizer, and the input handling all three estimators share, are tested in
test_canonicalizer.py.

Error metric: ``max_error`` of ``check_equivariance``, i.e. the largest absolute
deviation relative to the largest output entry, asserted with ``assert_equivariant``.
Bounds: 1e-9 for float64 data, 1e-5 for float32 data. Every exactness test also checks
that the bare inner estimator is off by at least 1e-2 on the same data, so the
assertion can fail.
"""

import pickle

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import NotFittedError, UnsetMetadataPassedError
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mfa_sklearn import (
    FrameAveragingClassifier,
    FrameAveragingRegressor,
    MinimalFrameCanonicalizer,
    check_equivariance,
    get_group,
)
from mfa_sklearn.datasets import NBODY_FIELDS, make_charged_nbody
from mfa_sklearn.testing import apply_group, assert_equivariant, random_group_element
from tests._helpers import CONTROL, CountingRegressor

GROUPS = ["O(3)", "SO(3)", "E(3)", "SE(3)"]
TARGETS = ["invariant", "point", "vector"]
N_POINTS = 6
D = 3
TOL64 = 1e-9
TOL32 = 1e-5

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- data
def _random_orthonormal_columns(rng, n, rows, cols):
    """n matrices (rows, cols) with orthonormal, zero-mean columns."""
    A = rng.normal(size=(n, rows, cols))
    A -= A.mean(axis=1, keepdims=True)
    Q, _ = np.linalg.qr(A)
    return Q


def _clouds(kind, group, n, rng):
    """``n`` clouds of N_POINTS points in 3-D as sklearn rows (n, N_POINTS * 3).

    For groups with translations every cloud is also shifted by a random offset, so
    the degenerate kinds are degenerate *after* centring (affine rank).
    """
    if kind in ("generic", "scale1e-6", "scale1e6", "float32"):
        X = rng.normal(size=(n, N_POINTS, D))
    elif kind.startswith("repeated_sv"):
        # X = U diag(s) V^T with U orthonormal and centred: the Gram matrix has a
        # repeated eigenvalue, the case where PCA frames are ill-defined.
        s = np.array([1.0, 1.0, 1.0 if kind == "repeated_sv" else 0.0])
        U = _random_orthonormal_columns(rng, n, N_POINTS, D)
        V = _random_orthonormal_columns(rng, n, D, D)
        X = (U * s) @ V.transpose(0, 2, 1)
    elif kind.startswith("rank"):
        r = int(kind[len("rank"):])
        X = rng.normal(size=(n, N_POINTS, r)) @ rng.normal(size=(n, r, D))
    else:
        raise AssertionError(kind)
    if get_group(group).has_translations:
        X = X + rng.normal(size=(n, 1, D))
    X = X.reshape(n, -1) * _scale(kind)
    return X.astype(np.float32) if kind == "float32" else X


def _expected_rank(kind):
    return {"repeated_sv_rank2": 2, "rank1": 1, "rank2": 2}.get(kind, D)


def _scale(kind):
    return {"scale1e-6": 1e-6, "scale1e6": 1e6}.get(kind, 1.0)


def _targets(X, target):
    """Some nonlinear function of each cloud, 1-D (invariant) or one row per point."""
    P = X.reshape(len(X), N_POINTS, D).astype(np.float64)
    scale = np.abs(P).max()
    if target == "invariant":
        centred = P - P.mean(axis=1, keepdims=True)
        y = np.linalg.norm(centred, axis=2) @ np.arange(1.0, N_POINTS + 1)
    else:
        y = P * np.tanh(np.linalg.norm(P, axis=2, keepdims=True) / scale)
        y = y.reshape(len(X), -1)
    return y.astype(X.dtype)


# --------------------------------------------------------------- inner estimators
def _inner(name, kind="generic"):
    if name == "knn":
        return KNeighborsRegressor(n_neighbors=3)
    if name == "tree":
        return DecisionTreeRegressor(random_state=0)
    mlp = MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", max_iter=50,
                       random_state=0)
    if _scale(kind) != 1.0:
        # Without standardisation a tanh MLP is almost constant on 1e-6-sized inputs,
        # so the bare-estimator control would be vacuous.
        return make_pipeline(StandardScaler(), mlp)
    return mlp


# ---------------------------------------------------------- exactness (regressor)
DATA_KINDS = [
    "generic",
    "repeated_sv",        # isotropic clouds: three equal singular values
    "repeated_sv_rank2",  # two equal singular values and a zero one
    "rank1",              # collinear clouds (r < d)
    "rank2",              # planar clouds: r = d - 1 (completion for SO / SE)
    "scale1e-6",
    "scale1e6",
    "float32",
]


@ignore_convergence
@pytest.mark.parametrize("inner", ["knn", "tree", "mlp"])
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("kind", DATA_KINDS)
def test_regressor_exact_with_non_equivariant_inner(kind, group, target, inner):
    rng = np.random.default_rng(0)
    X = _clouds(kind, group, 60, rng)
    X_train, X_test = X[:40], X[40:]
    y = _targets(X_train, target)

    reg = FrameAveragingRegressor(_inner(inner, kind), group=group, target=target)
    reg.fit(X_train, y)
    # the data are as degenerate as intended
    rank = reg.frame_diagnostics(X_test)["rank"]
    np.testing.assert_array_equal(rank, _expected_rank(kind))
    result = assert_equivariant(reg, group, X_test, random_state=1,
                                rtol=TOL32 if kind == "float32" else TOL64)
    assert result["output_scale"] > 0

    bare = _inner(inner, kind).fit(X_train, y)
    control = check_equivariance(bare, group, X_test, target=target, random_state=1)
    assert control["max_error"] >= CONTROL, control


@ignore_convergence
@pytest.mark.parametrize("inner", ["knn", "mlp"])
@pytest.mark.parametrize("group", GROUPS)
def test_regressor_exact_on_nbody_fields(group, inner):
    """Several fields (points, vectors, scalars), velocities in the frame, and an
    equivariant target of two fields (future positions and velocities)."""
    X, y_pos = make_charged_nbody(60, n_steps=20, horizon=50, random_state=0)
    y = np.hstack([y_pos, X[:, 15:30]])
    target = {"next": "point", "vel": "vector"}
    reg = FrameAveragingRegressor(_inner(inner), group=group, fields=NBODY_FIELDS,
                                  frame_fields=["pos", "vel"], target=target)
    reg.fit(X[:40], y[:40])
    assert_equivariant(reg, group, X[40:], random_state=2, rtol=TOL64)
    bare = _inner(inner).fit(X[:40], y[:40])
    control = check_equivariance(bare, group, X[40:], fields=NBODY_FIELDS, target=target,
                                 random_state=2)
    assert control["max_error"] >= CONTROL, control


@pytest.mark.parametrize("group, confined", [("O(3)", True), ("SO(3)", False),
                                             ("E(3)", True), ("SE(3)", False)])
def test_rank_d_minus_1_projection_vs_completion(group, confined):
    """Planar clouds: O / E average over the reflection through the plane, so vector
    outputs have no normal component; SO / SE have a trivial stabilizer there (the
    cofactor completes the frame), so outputs are NOT confined to the plane."""
    rng = np.random.default_rng(3)
    X = _clouds("rank2", group, 30, rng)
    y = rng.normal(size=(30, N_POINTS * D))
    reg = FrameAveragingRegressor(KNeighborsRegressor(n_neighbors=2), group=group,
                                  target="vector").fit(X, y)
    P = X.reshape(30, N_POINTS, D)
    normal = np.cross(P[:, 1] - P[:, 0], P[:, 2] - P[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    pred = reg.predict(X).reshape(30, N_POINTS, D)
    off_plane = np.abs(np.einsum("bpi,bi->bp", pred, normal)).max() / np.abs(pred).max()
    diagnostics = reg.frame_diagnostics(X)
    np.testing.assert_array_equal(diagnostics["rank"], 2)
    np.testing.assert_array_equal(diagnostics["projected"], confined)
    if confined:
        assert off_plane <= 1e-12
    else:
        assert off_plane >= 1e-2
    assert_equivariant(reg, group, X, random_state=0, rtol=TOL64)


# ------------------------------------------------------------------ PCA frames
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("group, n_frames", [("O(3)", 2 ** D), ("E(3)", 2 ** D),
                                             ("SO(3)", 2 ** (D - 1)),
                                             ("SE(3)", 2 ** (D - 1))])
def test_pca_frames_equivariant_and_call_counts(group, n_frames, target):
    """PCA frames: 2^d sign patterns (2^(d-1) with det +1 for SO / SE), each one an
    inner call per sample; minimal frames: one call per sample. A tree, unlike k-NN, is
    not invariant to the sign flips of the PCA frames even when fitted on all of them,
    so equivariance needs the average over the frame elements."""
    rng = np.random.default_rng(1)
    X = _clouds("generic", group, 50, rng)
    y = _targets(X[:30], target)
    for frame, per_sample in (("pca", n_frames), ("minimal", 1)):
        inner = CountingRegressor(DecisionTreeRegressor(random_state=0))
        reg = FrameAveragingRegressor(inner, group=group, target=target,
                                      frame=frame).fit(X[:30], y)
        assert reg.estimator_.fit_rows_ == [30 * per_sample]
        reg.predict(X[30:])
        assert reg.estimator_.predict_rows_ == [20 * per_sample]
        np.testing.assert_array_equal(reg.frame_diagnostics(X[30:])["frame_size"],
                                      per_sample)
        assert_equivariant(reg, group, X[30:], random_state=4, rtol=TOL64)
    bare = DecisionTreeRegressor(random_state=0).fit(X[:30], y)
    control = check_equivariance(bare, group, X[30:], target=target, random_state=4)
    assert control["max_error"] >= CONTROL


# ------------------------------------------------------- GridSearchCV over group
def test_grid_search_over_group_with_point_target():
    X, y = make_charged_nbody(150, n_steps=50, horizon=200, random_state=0)
    grid = [None, "O(3)", "SO(3)", "E(3)", "SE(3)"]
    reg = FrameAveragingRegressor(KNeighborsRegressor(), fields=NBODY_FIELDS,
                                  target="point")
    search = GridSearchCV(reg, {"group": grid}, cv=3).fit(X, y)
    results = search.cv_results_
    assert list(results["param_group"]) == grid
    assert results["params"] == [{"group": g} for g in grid]
    scores = results["mean_test_score"]
    assert np.all(np.isfinite(scores))
    assert search.best_params_ == {"group": grid[int(np.argmax(scores))]}
    # removing the nuisance translations and rotations helps a nearest-neighbour model
    assert search.best_params_["group"] in ("E(3)", "SE(3)")
    assert scores[grid.index("E(3)")] > scores[grid.index(None)] + 0.1
    best = search.best_estimator_
    assert best.group == search.best_params_["group"]
    assert_equivariant(best, best.group, X[:30], random_state=0, rtol=TOL64)
    # group=None is the bare model: not equivariant
    unsym = clone(reg).set_params(group=None).fit(X, y)
    result = check_equivariance(unsym, "E(3)", X[:30], random_state=0)
    assert result["max_error"] >= CONTROL


# --------------------------------------------------------------- clone / pickle
def _fitted_cases():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(40, 15))
    y_inv = np.linalg.norm(X, axis=1)
    y_pt = rng.normal(size=(40, 15))
    labels = np.where(y_inv > np.median(y_inv), "big", "small")
    return [
        ("canonicalizer", MinimalFrameCanonicalizer(group="SE(3)"), X, None, "transform"),
        ("regressor-point", FrameAveragingRegressor(KNeighborsRegressor(), group="E(3)",
                                                    target="point"), X, y_pt, "predict"),
        ("regressor-pca", FrameAveragingRegressor(KNeighborsRegressor(), group="O(3)",
                                                  frame="pca"),
         X, y_inv, "predict"),
        ("classifier", FrameAveragingClassifier(LogisticRegression(), group="SO(3)"),
         X, labels, "predict_proba"),
    ]


@pytest.mark.parametrize("case", _fitted_cases(), ids=lambda c: c[0])
def test_clone_and_pickle_round_trip(case):
    _, est, X, y, method = case
    fitted = clone(est).fit(X, y)
    expected = getattr(fitted, method)(X)

    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(getattr(restored, method)(X), expected)

    cloned = clone(fitted)
    assert cloned.get_params().keys() == fitted.get_params().keys()
    assert repr(cloned) == repr(fitted)
    with pytest.raises(NotFittedError):
        getattr(cloned, method)(X)
    np.testing.assert_array_equal(getattr(cloned.fit(X, y), method)(X), expected)


# ------------------------------------------------------------------ classifier
def _classification_data(labels, group="E(3)", n=90, seed=10):
    """Clouds labelled by quantiles of a linear function of their canonical form, so the
    labels are exactly invariant and a linear classifier can learn them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 15)) + np.tile(rng.normal(size=(n, 3)), 5)
    score = MinimalFrameCanonicalizer(group=group).fit_transform(X) @ rng.normal(size=15)
    edges = np.quantile(score, np.arange(1, len(labels)) / len(labels))
    return X, np.asarray(labels)[np.digitize(score, edges)]


@pytest.mark.parametrize("labels", [["ant", "dog", "zebra"], [-5, 2, 40], ["no", "yes"]],
                         ids=["strings", "int-gaps", "binary"])
@pytest.mark.parametrize("group", GROUPS)
def test_classifier_invariant_and_labels(group, labels):
    X, y = _classification_data(labels, group)
    clf = FrameAveragingClassifier(LogisticRegression(), group=group).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.unique(y))

    # same labels as the same inner model on the canonical inputs
    ref = make_pipeline(MinimalFrameCanonicalizer(group=group), LogisticRegression())
    ref.fit(X, y)
    np.testing.assert_array_equal(clf.predict(X), ref.predict(X))
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), atol=1e-12)
    assert set(clf.predict(X)) <= set(labels)
    assert np.mean(clf.predict(X) == y) > 0.8

    g = random_group_element(group, len(X), random_state=11)
    gX = apply_group(group, g, X)
    np.testing.assert_array_equal(clf.predict(gX), clf.predict(X))
    for method in ("predict_proba", "decision_function", "predict_log_proba"):
        assert_equivariant(getattr(clf, method), group, X, random_state=11, rtol=TOL64)
    bare = LogisticRegression().fit(X, y)
    assert check_equivariance(bare.predict_proba, group, X,
                              random_state=11)["max_error"] >= CONTROL


def test_classifier_linear_svc_has_no_predict_proba():
    X, y = _classification_data(["a", "b", "c"])
    clf = FrameAveragingClassifier(LinearSVC(), group="E(3)")
    assert not hasattr(clf, "predict_proba")
    assert hasattr(clf, "decision_function")
    clf.fit(X, y)
    assert not hasattr(clf, "predict_proba")
    assert not hasattr(clf, "predict_log_proba")
    assert clf.decision_function(X).shape == (len(X), 3)
    ref = make_pipeline(MinimalFrameCanonicalizer(group="E(3)"), LinearSVC()).fit(X, y)
    np.testing.assert_array_equal(clf.predict(X), ref.predict(X))
    g = random_group_element("E(3)", len(X), random_state=12)
    np.testing.assert_array_equal(clf.predict(apply_group("E(3)", g, X)), clf.predict(X))
    assert_equivariant(clf.decision_function, "E(3)", X, random_state=12, rtol=TOL64)
    bare = LinearSVC().fit(X, y)
    assert check_equivariance(bare.decision_function, "E(3)", X,
                              random_state=12)["max_error"] >= CONTROL


@pytest.mark.parametrize("inner, methods", [
    (DecisionTreeClassifier(max_depth=4, random_state=0), ["predict_proba"]),
    (GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0),
     ["predict_proba", "decision_function"]),
    (SVC(kernel="rbf", gamma=0.05), ["decision_function"]),
], ids=["tree", "boosting", "svc-no-proba"])
@pytest.mark.parametrize("group", ["O(3)", "SE(3)"])
def test_classifier_pca_frames_average_the_frame_elements(group, inner, methods):
    """With PCA frames one frame element alone is not invariant for these inner models
    (trees pick one sign of each split); the average over all of them is. (A linear
    model would be trivial here: fitted on every sign flip of the canonical coordinates
    it learns a constant.) Without predict_proba, predict uses the averaged
    decision_function."""
    X, y = _classification_data(["a", "b", "c"], group)
    clf = FrameAveragingClassifier(inner, group=group, frame="pca").fit(X, y)
    assert hasattr(clf, "predict_proba") == ("predict_proba" in methods)
    g = random_group_element(group, len(X), random_state=0)
    np.testing.assert_array_equal(clf.predict(apply_group(group, g, X)), clf.predict(X))
    bare = clone(inner).fit(X, y)
    for method in methods:
        out = getattr(clf, method)(X)
        assert out.shape == (len(X), 3)
        assert np.std(out, axis=0).min() > 1e-3          # not a constant function
        if method == "predict_proba":
            np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
        if method == methods[0]:   # what predict uses: probabilities if there are any
            np.testing.assert_array_equal(clf.predict(X),
                                          clf.classes_[np.argmax(out, axis=1)])
        assert_equivariant(getattr(clf, method), group, X, random_state=0, rtol=TOL64)
        assert check_equivariance(getattr(bare, method), group, X,
                                  random_state=0)["max_error"] >= CONTROL


# --------------------------------------------------------------- sample_weight
def _weighted_data():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(60, 15))
    y = rng.normal(size=60)
    w = rng.integers(1, 4, size=60).astype(float)
    return X, y, w


def test_sample_weight_reaches_inner_estimator():
    X, y, w = _weighted_data()
    unweighted = FrameAveragingRegressor(Ridge(), group="E(3)").fit(X, y).predict(X)
    weighted = FrameAveragingRegressor(Ridge(), group="E(3)").fit(X, y, sample_weight=w)
    assert np.abs(weighted.predict(X) - unweighted).max() > 1e-3
    ref = make_pipeline(MinimalFrameCanonicalizer(group="E(3)"), Ridge())
    ref.fit(X, y, ridge__sample_weight=w)
    np.testing.assert_allclose(weighted.predict(X), ref.predict(X), rtol=1e-10,
                               atol=1e-12)

    clf_X, labels = X, np.where(y > 0, "pos", "neg")
    a = FrameAveragingClassifier(group="E(3)").fit(clf_X, labels)
    b = FrameAveragingClassifier(group="E(3)").fit(clf_X, labels, sample_weight=w)
    assert np.abs(a.decision_function(X) - b.decision_function(X)).max() > 1e-3


@pytest.mark.parametrize("frame", ["minimal", "pca"])
def test_integer_sample_weight_equals_repeated_samples(frame):
    """Every frame element of a sample carries that sample's weight."""
    X, y, w = _weighted_data()
    repeats = w.astype(int)
    reg = FrameAveragingRegressor(KernelRidge(alpha=0.1, kernel="rbf", gamma=0.1),
                                  group="O(3)", frame=frame)
    weighted = clone(reg).fit(X, y, sample_weight=w).predict(X)
    repeated = clone(reg).fit(np.repeat(X, repeats, axis=0),
                              np.repeat(y, repeats)).predict(X)
    unweighted = clone(reg).fit(X, y).predict(X)
    assert np.abs(weighted - unweighted).max() > 1e-2
    np.testing.assert_allclose(weighted, repeated, rtol=1e-7, atol=1e-9)


def test_sample_weight_with_metadata_routing():
    X, y, w = _weighted_data()
    expected = FrameAveragingRegressor(Ridge(), group="E(3)").fit(
        X, y, sample_weight=w).predict(X)
    with sklearn.config_context(enable_metadata_routing=True):
        reg = FrameAveragingRegressor(Ridge().set_fit_request(sample_weight=True),
                                      group="E(3)").fit(X, y, sample_weight=w)
        np.testing.assert_allclose(reg.predict(X), expected, rtol=1e-12, atol=1e-12)
        with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
            FrameAveragingRegressor(Ridge(), group="E(3)").fit(X, y, sample_weight=w)


def test_integer_weights_repeat_samples_for_an_inner_estimator_without_them():
    X, y, _ = _weighted_data()
    counts = np.arange(len(X)) % 3
    reg = FrameAveragingRegressor(KNeighborsRegressor(2), group="E(3)")
    weighted = reg.fit(X, y, sample_weight=counts.astype(float)).predict(X)
    repeated = clone(reg).fit(np.repeat(X, counts, axis=0),
                              np.repeat(y, counts, axis=0)).predict(X)
    np.testing.assert_array_equal(weighted, repeated)
    with pytest.raises(ValueError, match="KNeighborsRegressor does not support "
                                         "sample_weight, so weights are applied as "
                                         "repeated samples and must be non-negative "
                                         "integers"):
        reg.fit(X, y, sample_weight=np.full(len(X), 0.5))
    with pytest.raises(ValueError, match="sample_weight is zero for every sample"):
        reg.fit(X, y, sample_weight=np.zeros(len(X)))
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        reg.fit(X, y, sample_weight=np.ones(3))


def test_meta_estimators_around_an_inner_estimator_without_sample_weight():
    from sklearn.ensemble import AdaBoostRegressor, BaggingClassifier, BaggingRegressor
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 15))
    y = np.linalg.norm(X, axis=1)
    bag = BaggingRegressor(FrameAveragingRegressor(KNeighborsRegressor(), group="E(3)"),
                           n_estimators=4, random_state=0).fit(X, y)
    assert check_equivariance(bag, "E(3)", X, random_state=0)["max_error"] <= TOL64
    boost = AdaBoostRegressor(FrameAveragingRegressor(Ridge(), group="E(3)"),
                              n_estimators=3, random_state=0).fit(X, y)
    assert check_equivariance(boost, "E(3)", X, random_state=0)["max_error"] <= TOL64
    labels = y > np.median(y)
    clf = BaggingClassifier(FrameAveragingClassifier(KNeighborsClassifier(), group="E(3)"),
                            n_estimators=4, random_state=0).fit(X, labels)
    assert clf.predict_proba(X).shape == (60, 2)
    with pytest.raises(ValueError, match="enable_metadata_routing"):
        FrameAveragingRegressor(Ridge(), group="E(3)").fit(X, y, alpha_unused=1.0)


# ------------------------------------------------------------ bad parameters
def _reg(**params):
    return FrameAveragingRegressor(Ridge(), **params)


@pytest.mark.parametrize("group", ["O(3)", "SO(3)"])
def test_point_target_without_translations(group):
    X, y = make_charged_nbody(60, n_steps=20, horizon=50, random_state=3)
    reg = _reg(group=group, fields=NBODY_FIELDS, target="point").fit(X, y)
    assert reg.predict(X).shape == y.shape
    assert_equivariant(reg, group, X, random_state=0, rtol=TOL64)
    # not translation-equivariant, as it should not be for this group
    assert check_equivariance(reg, "E(3)", X, random_state=0)["max_error"] >= CONTROL


@pytest.mark.parametrize("params, message", [
    (dict(group="E(3)", frame_fields="spin"),
     "frame_fields names 'spin', which is not one of the fields \\['pos', 'vel', "
     "'charge'\\]"),
    (dict(group="O(3)", frame_fields=["pos", "charge"]),
     "frame field 'charge' has kind 'scalar'; only 'point' and 'vector'"),
    (dict(group="E(3)", frame_fields="vel"),
     "group E\\(3\\) includes translations, fixed by the centroid of a 'point' field"),
    (dict(group="SE(3)", frame_fields=["vel"]), "group SE\\(3\\) includes translations"),
    (dict(group="E(3)", frame_fields=[]), "frame_fields must name at least one field"),
    (dict(group="E(3)", frame_fields=3), "The 'frame_fields' parameter .* must be an "
     "instance of 'str', an instance of 'list', an instance of 'tuple' or None"),
    (dict(group="E(3)", target="point", frame="spectral"),
     "The 'frame' parameter .* must be a str among \\{.*\\}. Got 'spectral'"),
    (dict(group="E(3)", tol=2.0), "The 'tol' parameter .* must be a float in the range "
     "\\(0.0, 1.0\\) or None"),
    (dict(group="E(3)", n_jobs=1.5), "The 'n_jobs' parameter .* must be an instance of "
     "'int' or None"),
    (dict(group="E(3)", fields={"pos": "point", "vel": "spinor", "charge": "scalar"}),
     "field 'vel' has unknown kind 'spinor'"),
])
def test_bad_parameters(params, message):
    X, y = make_charged_nbody(10, n_steps=5, horizon=5, random_state=4)
    params = {"fields": NBODY_FIELDS, **params}
    with pytest.raises(ValueError, match=message):
        _reg(**params).fit(X, y)


def test_frame_fields_vector_only_fine_without_translations():
    X, y = make_charged_nbody(30, n_steps=5, horizon=5, random_state=5)
    reg = _reg(group="O(3)", fields=NBODY_FIELDS, frame_fields="vel",
               target="point").fit(X, y)
    assert reg.frame_fields_ == ["vel"]
    assert_equivariant(reg, "O(3)", X, random_state=0, rtol=TOL64)


def test_bad_target_layout():
    X, y = make_charged_nbody(10, n_steps=5, horizon=5, random_state=6)
    with pytest.raises(ValueError, match="y has 14 columns, which the target"):
        _reg(group="E(3)", fields=NBODY_FIELDS, target="point").fit(X, y[:, :14])
    with pytest.raises(ValueError, match="y has 1 columns, which the target"):
        _reg(group="E(3)", fields=NBODY_FIELDS, target="vector").fit(X, y[:, 0])


# --------------------------------------------------------------- round_bits
def test_tree_models_are_exactly_symmetric_on_their_training_data():
    """A tree splits at training values; rounded canonical coordinates of a moved
    training sample equal the original's, so the tree takes the same path."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    # more than 255 distinct values: HGB's bin edges are training values
    X, y = make_charged_nbody(300, n_steps=20, horizon=50, random_state=5)
    y = y[:, 0]
    for group in ("E(3)", "S_n x E(3)"):
        trees = HistGradientBoostingRegressor(max_iter=10, random_state=0)
        unrounded = FrameAveragingRegressor(trees, group=group, fields=NBODY_FIELDS,
                                            round_bits=None).fit(X, y)
        control = check_equivariance(unrounded, group, X, random_state=1)["max_error"]
        assert control >= CONTROL
        reg = clone(unrounded).set_params(round_bits=40).fit(X, y)
        assert_equivariant(reg, group, X, random_state=1, rtol=TOL64)


def test_round_bits_rounds_to_a_power_of_two_grid_per_sample_and_field():
    X, _ = make_charged_nbody(50, n_steps=10, horizon=10, random_state=6)
    X[:25, :30] *= 1e6                          # two magnitudes of samples
    exact = MinimalFrameCanonicalizer("E(3)", fields=NBODY_FIELDS,
                                      round_bits=None).fit(X).transform(X)
    for bits in (50, 40, 20):
        Xc = MinimalFrameCanonicalizer("E(3)", fields=NBODY_FIELDS,
                                       round_bits=bits).fit(X).transform(X)
        np.testing.assert_array_equal(Xc[:, 30:], X[:, 30:])     # scalars untouched
        for block in (slice(0, 15), slice(15, 30)):              # positions, velocities
            largest = np.abs(exact[:, block]).max(axis=1, keepdims=True)
            step = 2.0 ** (np.frexp(largest * (1 + 2.0 ** -20))[1] - bits)
            np.testing.assert_array_equal(Xc[:, block] / step,
                                          np.round(Xc[:, block] / step))
            assert np.all(np.abs(Xc[:, block] - exact[:, block]) <= step / 2)


def test_rounded_forms_agree_bit_for_bit_where_the_largest_is_a_power_of_two():
    """Unit rows: the largest canonical coordinate is 1.0 for some samples and
    0.99999999999999989 for their moved copies. The grid step comes from the largest
    raised by 2^-20, so both get the same grid (one exponent apart they got steps a
    factor 2 apart, and an eighth of the samples differed)."""
    rng = np.random.default_rng(0)
    U = rng.standard_normal((500, 5, 3))
    U /= np.linalg.norm(U, axis=2, keepdims=True)
    g = random_group_element("O(3)", 500, random_state=1)
    for X in (U, 2 * U, 0.75 * U):
        canonical = MinimalFrameCanonicalizer("O(3)").fit(X)
        moved = canonical.transform(apply_group("O(3)", g, X))
        np.testing.assert_array_equal(moved, canonical.transform(X))


# ------------------------------------------------------ defaults and NaN
def test_the_default_frame_field_is_the_first_point_field():
    """With velocities listed first, E(3) still takes its frame (and the translation
    its centroid needs) from the positions."""
    X, y = make_charged_nbody(40, n_steps=10, horizon=10, random_state=8)
    swapped = np.concatenate([X[:, 15:30], X[:, :15], X[:, 30:]], axis=1)
    fields = {"vel": "vector", "pos": "point", "charge": "scalar"}
    for group in ("E(3)", "O(3)"):
        reg = _reg(group=group, fields=fields, target="point").fit(swapped, y)
        assert reg.frame_fields_ == ["pos"]
        ordered = _reg(group=group, fields=NBODY_FIELDS, target="point").fit(X, y)
        # Ridge sees the columns in another order: equal up to its rounding
        np.testing.assert_allclose(reg.predict(swapped), ordered.predict(X), rtol=1e-9)


def test_no_group_hands_nan_to_the_inner_estimator():
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(9)
    X = rng.normal(size=(60, 6))
    y = X[:, 0] + X[:, 1]
    X[::7, 2] = np.nan
    reg = FrameAveragingRegressor(HistGradientBoostingRegressor(max_iter=5)).fit(X, y)
    assert np.all(np.isfinite(reg.predict(X)))
    assert reg.__sklearn_tags__().input_tags.allow_nan
    assert not _reg().__sklearn_tags__().input_tags.allow_nan     # Ridge takes no NaN
    np.testing.assert_array_equal(MinimalFrameCanonicalizer().fit(X).transform(X), X)
    with pytest.raises(ValueError, match="field 'x' contains NaN or inf"):
        FrameAveragingRegressor(HistGradientBoostingRegressor(), group="O(3)").fit(X, y)
