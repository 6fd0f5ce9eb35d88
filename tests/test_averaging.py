"""Behaviour of the three estimators beyond sklearn's common checks.

Exactness (non-equivariant inner estimators, generic and degenerate clouds, scales,
float32), PCA vs minimal frames, Pipeline / GridSearchCV / clone / pickle, the
classifier, sample_weight and metadata routing, n_jobs, 3-D input, pandas output,
frame diagnostics and the errors raised on bad input.

Error metric: ``check_equivariance(...)["max_error"]``, i.e. the largest absolute
deviation relative to the largest output entry. Bounds: 1e-9 for float64 data, 1e-5
for float32 data. Every exactness test also checks that the bare inner estimator is
off by at least 1e-2 on the same data, so the assertion can fail.
"""

import pickle

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError, UnsetMetadataPassedError
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from mfa_sklearn import (
    FrameAveragingClassifier,
    FrameAveragingRegressor,
    MinimalFrameCanonicalizer,
    check_equivariance,
    get_group,
)
from mfa_sklearn.datasets import NBODY_FIELDS, make_charged_nbody
from mfa_sklearn.groups.orthogonal import OrthogonalGroup
from mfa_sklearn.testing import apply_group, random_group_element

GROUPS = ["O(3)", "SO(3)", "E(3)", "SE(3)"]
TARGETS = ["invariant", "point", "vector"]
N_POINTS = 6
D = 3
TOL64 = 1e-9
TOL32 = 1e-5
CONTROL = 1e-2

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The data are tiny: BLAS / OpenMP threads are pure overhead (slow under load)."""
    with threadpool_limits(limits=1):
        yield


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


class _ScaledTranslations(OrthogonalGroup):
    """The same E(3) / SE(3), with random translations scaled to the data.

    ``check_equivariance`` draws translations of size ~10; for data of size 1e-6 the
    moved input ``x T + b`` is then only stored to ~10 * eps / 1e-6 = 2e-9 relative, so
    no algorithm can meet 1e-9 there. Translations of ~10x the data keep the test about
    the estimator.
    """

    def __init__(self, base, translation_scale):
        super().__init__(base.d, special=base.special, translations=base.has_translations)
        self.translation_scale = translation_scale

    def random_element(self, size, random_state=None, *, translation_scale=None):
        return super().random_element(size, random_state,
                                      translation_scale=self.translation_scale)


def _test_group(group, kind):
    base = get_group(group)
    if base.has_translations and _scale(kind) != 1.0:
        return _ScaledTranslations(base, 10.0 * _scale(kind))
    return group


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


class _CountingRegressor(DecisionTreeRegressor):
    """DecisionTreeRegressor that logs the number of rows seen by each fit and predict.

    The log is a class attribute so that it survives ``clone`` inside the wrapper. A
    tree, unlike k-NN, is not invariant to the sign flips of the PCA frames even when
    fitted on all of them, so equivariance needs the average over the frame elements.
    """

    log = {"fit": [], "predict": []}

    def fit(self, X, y, sample_weight=None, check_input=True):
        type(self).log["fit"].append(len(X))
        return super().fit(X, y, sample_weight=sample_weight, check_input=check_input)

    def predict(self, X, check_input=True):
        type(self).log["predict"].append(len(X))
        return super().predict(X, check_input=check_input)


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
    test_group = _test_group(group, kind)

    reg = FrameAveragingRegressor(_inner(inner, kind), group=group, target=target)
    reg.fit(X_train, y)
    # the data are as degenerate as intended
    rank = reg.frame_diagnostics(X_test)["rank"]
    np.testing.assert_array_equal(rank, _expected_rank(kind))
    result = check_equivariance(reg, test_group, X_test, random_state=1)
    assert result["output_scale"] > 0
    tol = TOL32 if kind == "float32" else TOL64
    assert result["max_error"] <= tol, result

    bare = _inner(inner, kind).fit(X_train, y)
    control = check_equivariance(bare, test_group, X_test, target=target, random_state=1)
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
    result = check_equivariance(reg, group, X[40:], random_state=2)
    assert result["max_error"] <= TOL64, result
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
    assert check_equivariance(reg, group, X, random_state=0)["max_error"] <= TOL64


# ------------------------------------------------------------------ PCA frames
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("group, n_frames", [("O(3)", 2 ** D), ("E(3)", 2 ** D),
                                             ("SO(3)", 2 ** (D - 1)),
                                             ("SE(3)", 2 ** (D - 1))])
def test_pca_frames_equivariant_and_call_counts(group, n_frames, target):
    """PCA frames: 2^d sign patterns (2^(d-1) with det +1 for SO / SE), each one an
    inner call per sample; minimal frames: one call per sample."""
    rng = np.random.default_rng(1)
    X = _clouds("generic", group, 50, rng)
    y = _targets(X[:30], target)
    for frame, per_sample in (("pca", n_frames), ("minimal", 1)):
        _CountingRegressor.log = {"fit": [], "predict": []}
        reg = FrameAveragingRegressor(_CountingRegressor(random_state=0), group=group,
                                      target=target, frame=frame).fit(X[:30], y)
        assert _CountingRegressor.log["fit"] == [30 * per_sample]
        reg.predict(X[30:])
        assert _CountingRegressor.log["predict"] == [20 * per_sample]
        np.testing.assert_array_equal(reg.frame_diagnostics(X[30:])["frame_size"],
                                      per_sample)
        result = check_equivariance(reg, group, X[30:], random_state=4)
        assert result["max_error"] <= TOL64, (frame, result)
    bare = DecisionTreeRegressor(random_state=0).fit(X[:30], y)
    control = check_equivariance(bare, group, X[30:], target=target, random_state=4)
    assert control["max_error"] >= CONTROL


# --------------------------------------------------------------- canonicalizer
def test_canonicalizer_invariant_and_idempotent_e3():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, N_POINTS * D)) + np.tile(rng.normal(size=(50, D)), N_POINTS)
    can = MinimalFrameCanonicalizer(group="E(3)").fit(X)
    Xc = can.transform(X)
    g = random_group_element("E(3)", len(X), random_state=6)
    Xc_moved = can.transform(apply_group("E(3)", g, X))
    scale = np.abs(Xc).max()
    assert np.abs(Xc_moved - Xc).max() <= 1e-12 * scale
    assert np.abs(can.transform(Xc) - Xc).max() <= 1e-12 * scale
    # a canonical cloud is centred, and not the input itself
    np.testing.assert_allclose(Xc.reshape(50, N_POINTS, D).mean(axis=1), 0, atol=1e-12)
    assert np.abs(Xc - X).max() > 1e-1


def test_canonicalizer_fields_scalars_pass_through_and_exact_scaling():
    X, _ = make_charged_nbody(40, n_steps=10, horizon=10, random_state=1)
    can = MinimalFrameCanonicalizer(group="SE(3)", fields=NBODY_FIELDS).fit(X)
    Xc = can.transform(X)
    np.testing.assert_array_equal(Xc[:, 30:], X[:, 30:])
    g = random_group_element("SE(3)", len(X), random_state=0)
    moved = can.transform(apply_group("SE(3)", g, X, NBODY_FIELDS))
    assert np.abs(moved - Xc).max() <= 1e-12 * np.abs(Xc).max()
    # scaling by a power of two is exact in every step: same decisions, scaled output
    for factor in (2.0 ** 20, 2.0 ** -20):
        scaled = X.copy()
        scaled[:, :30] *= factor
        expected = Xc.copy()
        expected[:, :30] *= factor
        np.testing.assert_array_equal(can.transform(scaled), expected)


def test_canonicalizer_so3_tells_mirror_images_apart_o3_does_not():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(20, N_POINTS * D))
    mirrored = (X.reshape(20, N_POINTS, D) * np.array([-1.0, 1.0, 1.0])).reshape(20, -1)
    o3 = MinimalFrameCanonicalizer(group="O(3)").fit(X)
    so3 = MinimalFrameCanonicalizer(group="SO(3)").fit(X)
    np.testing.assert_allclose(o3.transform(mirrored), o3.transform(X), atol=1e-12)
    assert np.abs(so3.transform(mirrored) - so3.transform(X)).max(axis=1).min() > 1e-3


def test_canonicalizer_float32_in_float32_out():
    X = np.random.default_rng(0).normal(size=(10, 15)).astype(np.float32)
    Xc = MinimalFrameCanonicalizer(group="E(3)").fit_transform(X)
    assert Xc.dtype == np.float32


def test_pipeline_canonicalizer_ridge_invariant():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(80, 15))
    y = np.linalg.norm(X.reshape(80, 5, 3) - X.reshape(80, 5, 3).mean(1, keepdims=True),
                       axis=2) @ np.arange(5.0)
    pipe = make_pipeline(MinimalFrameCanonicalizer(group="E(3)"), Ridge())
    pipe.fit(X[:60], y[:60])
    result = check_equivariance(pipe, "E(3)", X[60:], random_state=0)
    assert result["max_error"] <= TOL64, result
    control = check_equivariance(make_pipeline(Ridge()).fit(X[:60], y[:60]), "E(3)",
                                 X[60:], random_state=0)
    assert control["max_error"] >= CONTROL
    # nested parameters reach the canonicalizer
    pipe.set_params(minimalframecanonicalizer__group=None).fit(X[:60], y[:60])
    result = check_equivariance(pipe, "E(3)", X[60:], random_state=0)
    assert result["max_error"] >= CONTROL


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
    result = check_equivariance(best, best.group, X[:30], random_state=0)
    assert result["max_error"] <= TOL64
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
        result = check_equivariance(getattr(clf, method), group, X, random_state=11)
        assert result["max_error"] <= TOL64, (method, result)
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
    result = check_equivariance(clf.decision_function, "E(3)", X, random_state=12)
    assert result["max_error"] <= TOL64
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
        assert check_equivariance(getattr(clf, method), group, X,
                                  random_state=0)["max_error"] <= TOL64
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


def test_sample_weight_unsupported_by_inner_raises():
    X, y, w = _weighted_data()
    reg = FrameAveragingRegressor(KNeighborsRegressor(), group="E(3)")
    with pytest.raises(ValueError,
                       match="KNeighborsRegressor does not support sample_weight"):
        reg.fit(X, y, sample_weight=w)
    with pytest.raises(ValueError, match="enable_metadata_routing"):
        FrameAveragingRegressor(Ridge(), group="E(3)").fit(X, y, alpha_unused=1.0)


# ---------------------------------------------------------------------- n_jobs
def test_n_jobs_two_matches_serial():
    # > 2 chunks of ~8700 clouds of 5 x 3 points each
    rng = np.random.default_rng(14)
    X = rng.normal(size=(20000, 15))
    y = rng.normal(size=20000)
    serial = MinimalFrameCanonicalizer(group="E(3)").fit(X)
    parallel = MinimalFrameCanonicalizer(group="E(3)", n_jobs=2).fit(X)
    np.testing.assert_array_equal(parallel.transform(X), serial.transform(X))
    d_serial, d_parallel = serial.frame_diagnostics(X), parallel.frame_diagnostics(X)
    for key in ("rank", "frame_size", "projected", "conditioning"):
        np.testing.assert_array_equal(d_parallel[key], d_serial[key])
    reg_serial = FrameAveragingRegressor(Ridge(), group="E(3)").fit(X, y)
    reg_parallel = clone(reg_serial).set_params(n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(reg_parallel.predict(X), reg_serial.predict(X))


# ------------------------------------------------------------------- 3-D input
def _nbody_3d(X):
    n = len(X)
    pos, vel, charge = X[:, :15], X[:, 15:30], X[:, 30:]
    return np.concatenate([pos.reshape(n, 5, 3), vel.reshape(n, 5, 3),
                           charge.reshape(n, 5, 1)], axis=2)


def test_three_d_input_equals_two_d():
    X, y = make_charged_nbody(60, n_steps=20, horizon=20, random_state=0)
    X3 = _nbody_3d(X)
    can2 = MinimalFrameCanonicalizer(group="E(3)", fields=NBODY_FIELDS).fit(X)
    can3 = MinimalFrameCanonicalizer(group="E(3)", fields=NBODY_FIELDS).fit(X3)
    Xc3 = can3.transform(X3)
    assert Xc3.shape == X3.shape
    np.testing.assert_array_equal(Xc3, _nbody_3d(can2.transform(X)))
    assert can3.n_features_in_ == 5 and can3.input_shape_ == (5, 7)

    reg = FrameAveragingRegressor(KNeighborsRegressor(n_neighbors=3), group="E(3)",
                                  fields=NBODY_FIELDS, target="point")
    pred2 = clone(reg).fit(X, y).predict(X)
    reg3 = clone(reg).fit(X3, y)
    np.testing.assert_array_equal(reg3.predict(X3), pred2)
    assert check_equivariance(reg3, "E(3)", X3, random_state=0)["max_error"] <= TOL64

    labels = np.where(X[:, 30] > 0, "plus", "minus")
    clf2 = FrameAveragingClassifier(group="SO(3)", fields=NBODY_FIELDS).fit(X, labels)
    clf3 = FrameAveragingClassifier(group="SO(3)", fields=NBODY_FIELDS).fit(X3, labels)
    np.testing.assert_allclose(clf3.predict_proba(X3), clf2.predict_proba(X), atol=1e-12)


# ------------------------------------------------------------- pandas output
def test_set_output_pandas_and_feature_names():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(15).normal(size=(12, 15))
    can = MinimalFrameCanonicalizer(group="E(3)").fit(X)
    expected = can.transform(X)
    out = can.set_output(transform="pandas").transform(X)
    assert isinstance(out, pd.DataFrame)
    np.testing.assert_array_equal(out.columns, can.get_feature_names_out())
    np.testing.assert_array_equal(out.to_numpy(), expected)
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(15)])
    out = clone(can).set_output(transform="pandas").fit(df).transform(df)
    assert isinstance(out, pd.DataFrame) and out.shape == (12, 15)


def test_feature_names_out_rejects_3d():
    X3 = np.random.default_rng(16).normal(size=(6, 5, 3))
    can = MinimalFrameCanonicalizer(group="E(3)").fit(X3)
    with pytest.raises(ValueError, match="only defined for 2-D X"):
        can.get_feature_names_out()
    with pytest.raises(ValueError, match="only defined for 2-D X"):
        clone(can).set_output(transform="pandas").fit(X3).transform(X3)


# --------------------------------------------------------------- diagnostics
def test_frame_diagnostics():
    rng = np.random.default_rng(17)
    X = rng.normal(size=(10, 15))
    diagnostics = MinimalFrameCanonicalizer(group="E(3)").fit(X).frame_diagnostics(X)
    for key in ("rank", "frame_size", "projected", "conditioning"):
        assert isinstance(diagnostics[key], np.ndarray)
        assert diagnostics[key].shape == (10,)
    np.testing.assert_array_equal(diagnostics["rank"], 3)
    np.testing.assert_array_equal(diagnostics["frame_size"], 1)
    np.testing.assert_array_equal(diagnostics["projected"], False)
    assert np.all(np.isfinite(diagnostics["conditioning"]))
    assert np.all(diagnostics["conditioning"] >= 1)

    # collinear clouds through the origin: rank 1 under O(3)
    line = rng.normal(size=(10, 5, 1)) * rng.normal(size=(10, 1, 3))
    line = line.reshape(10, 15)
    can = MinimalFrameCanonicalizer(group="O(3)").fit(line)
    diagnostics = can.frame_diagnostics(line)
    np.testing.assert_array_equal(diagnostics["rank"], 1)
    np.testing.assert_array_equal(diagnostics["projected"], True)
    np.testing.assert_array_equal(diagnostics["frame_size"], 1)

    # ... and under E(3) after a shift; velocities in frame_fields lift it to full rank
    shifted = line + np.tile(rng.normal(size=(10, 3)), 5)
    X_nb = np.hstack([shifted, rng.normal(size=(10, 15)), np.ones((10, 5))])
    diag_pos = FrameAveragingRegressor(group="E(3)", fields=NBODY_FIELDS).fit(
        X_nb, np.zeros(10)).frame_diagnostics(X_nb)
    np.testing.assert_array_equal(diag_pos["rank"], 1)
    diag_both = FrameAveragingRegressor(group="E(3)", fields=NBODY_FIELDS,
                                        frame_fields=["pos", "vel"]).fit(
        X_nb, np.zeros(10)).frame_diagnostics(X_nb)
    np.testing.assert_array_equal(diag_both["rank"], 3)
    np.testing.assert_array_equal(diag_both["projected"], False)

    # one point per cloud under E(3): nothing left to fix a rotation
    one = rng.normal(size=(4, 3))
    diagnostics = MinimalFrameCanonicalizer(group="E(3)").fit(one).frame_diagnostics(one)
    np.testing.assert_array_equal(diagnostics["rank"], 0)

    with pytest.raises(ValueError, match="group=None has no frames"):
        MinimalFrameCanonicalizer().fit(X).frame_diagnostics(X)


# ------------------------------------------------------------------- bad input
def _reg(**params):
    return FrameAveragingRegressor(Ridge(), **params)


def test_non_finite_input_names_field_and_samples():
    X, y = make_charged_nbody(20, n_steps=10, horizon=10, random_state=2)
    bad_vel = X.copy()
    bad_vel[7, 20] = np.nan             # a velocity of sample 7
    bad_charge = X.copy()
    bad_charge[[3, 9], 32] = np.inf     # a charge of samples 3 and 9
    for est in (MinimalFrameCanonicalizer(group="E(3)", fields=NBODY_FIELDS),
                _reg(group="E(3)", fields=NBODY_FIELDS, target="point")):
        with pytest.raises(ValueError, match=r"field 'vel' contains NaN or inf in 1 "
                                             r"sample\(s\) \(first: \[7\]\)"):
            clone(est).fit(bad_vel, y)
        fitted = clone(est).fit(X, y)
        method = getattr(fitted, "transform", None) or fitted.predict
        with pytest.raises(ValueError, match=r"field 'charge' contains NaN or inf in 2 "
                                             r"sample\(s\) \(first: \[3, 9\]\)"):
            method(bad_charge)
    X3 = np.random.default_rng(0).normal(size=(4, 5, 3))
    X3[2, 1, 0] = -np.inf
    with pytest.raises(ValueError, match=r"field 'x' contains NaN or inf in 1 "
                                         r"sample\(s\) \(first: \[2\]\)"):
        MinimalFrameCanonicalizer(group="O(3)").fit(X3)


@pytest.mark.parametrize("make", [
    lambda: MinimalFrameCanonicalizer(group="E(3)"),
    lambda: _reg(group="SE(3)"),
    lambda: FrameAveragingClassifier(group="O(3)"),
], ids=["canonicalizer", "regressor", "classifier"])
def test_layout_that_cannot_divide_columns(make):
    X = np.random.default_rng(0).normal(size=(10, 14))
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="X has 14 columns, which the fields .* cannot "
                                         "divide into rows"):
        make().fit(X, y)


@pytest.mark.parametrize("group, message", [
    ("Q(3)", "unknown group 'Q\\(3\\)'"),
    ("E(three)", "cannot parse group 'E\\(three\\)'"),
    ("U(0)", "unknown group 'U\\(0\\)'"),
    ("E(0)", "unknown group 'E\\(0\\)'"),
    (3, "group must be a string such as 'E\\(3\\)'"),
])
def test_unknown_group(group, message):
    X = np.random.default_rng(0).normal(size=(5, 6))
    for est in (MinimalFrameCanonicalizer(group=group), _reg(group=group)):
        with pytest.raises(ValueError, match=message):
            est.fit(X, np.zeros(5))


def test_input_shape_errors():
    rng = np.random.default_rng(18)
    X = rng.normal(size=(10, 15))
    y = rng.normal(size=10)
    for est in (MinimalFrameCanonicalizer(group="E(3)"), _reg(group="E(3)")):
        with pytest.raises(ValueError, match="Complex data not supported"):
            clone(est).fit(X + 1j, y)
        with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
            clone(est).fit(X[0], y[:1])
        with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
            clone(est).fit(X[:0], y[:0])
        fitted = clone(est).fit(X, y)
        method = getattr(fitted, "transform", None) or fitted.predict
        with pytest.raises(ValueError, match="X has 12 features, but .* is expecting 15 "
                                             "features as input"):
            method(X[:, :12])
        with pytest.raises(ValueError, match="Complex data not supported"):
            method(X + 1j)
        fitted3 = clone(est).fit(X.reshape(10, 5, 3), y)
        method3 = getattr(fitted3, "transform", None) or fitted3.predict
        with pytest.raises(ValueError, match=r"X has samples of shape \(5, 4\), but .* "
                                             r"was fitted on samples of shape \(5, 3\)"):
            method3(rng.normal(size=(3, 5, 4)))
        with pytest.raises(ValueError, match="X has rows of width 4, but the fields"):
            clone(est).fit(rng.normal(size=(10, 5, 4)), y)


def test_four_d_input_is_a_clear_error():
    """X with more than 3 dimensions has no layout; the error should say so instead
    of failing inside a reshape."""
    X = np.random.default_rng(19).normal(size=(8, 6, 3, 1))
    with pytest.raises(ValueError, match=r"(?i)2-D|3-D|dimension|ndim"):
        MinimalFrameCanonicalizer(group="E(3)").fit(X).transform(X)
    with pytest.raises(ValueError, match=r"(?i)2-D|3-D|dimension|ndim"):
        _reg(group="O(3)").fit(X, np.zeros(8))


def test_not_fitted_errors():
    X = np.zeros((3, 6))
    with pytest.raises(NotFittedError):
        MinimalFrameCanonicalizer(group="E(3)").transform(X)
    with pytest.raises(NotFittedError):
        MinimalFrameCanonicalizer(group="E(3)").get_feature_names_out()
    with pytest.raises(NotFittedError):
        MinimalFrameCanonicalizer(group="E(3)").frame_diagnostics(X)
    with pytest.raises(NotFittedError):
        _reg(group="E(3)").predict(X)
    with pytest.raises(NotFittedError):
        FrameAveragingClassifier(group="E(3)").predict_proba(X)
    with pytest.raises(NotFittedError):
        FrameAveragingClassifier(group="E(3)").decision_function(X)


@pytest.mark.parametrize("group", ["O(3)", "SO(3)"])
def test_point_target_without_translations(group):
    X, y = make_charged_nbody(60, n_steps=20, horizon=50, random_state=3)
    reg = _reg(group=group, fields=NBODY_FIELDS, target="point").fit(X, y)
    assert reg.predict(X).shape == y.shape
    assert check_equivariance(reg, group, X, random_state=0)["max_error"] <= TOL64
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
    (dict(group="E(3)", frame_fields=3), "frame_fields must be None, a field name"),
    (dict(group="E(3)", target="point", frame="spectral"), "frame must be one of"),
    (dict(group="E(3)", tol=2.0), "tol must be None or a float in \\(0, 1\\)"),
    (dict(group="E(3)", n_jobs=1.5), "n_jobs must be None or an integer"),
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
    assert check_equivariance(reg, "O(3)", X, random_state=0)["max_error"] <= TOL64


def test_bad_target_layout():
    X, y = make_charged_nbody(10, n_steps=5, horizon=5, random_state=6)
    with pytest.raises(ValueError, match="y has 14 columns, which the target"):
        _reg(group="E(3)", fields=NBODY_FIELDS, target="point").fit(X, y[:, :14])
    with pytest.raises(ValueError, match="y has 1 columns, which the target"):
        _reg(group="E(3)", fields=NBODY_FIELDS, target="vector").fit(X, y[:, 0])


# ----------------------------------------------------- coordinates that are exactly zero
@pytest.mark.parametrize("group", ["E(3)", "SO(3)", "S_n x E(3)"])
def test_structural_zeros_are_exact_so_scalers_and_trees_stay_invariant(group):
    """Canonical coordinates that vanish in exact arithmetic (the frame rows along later
    frame vectors) are exactly 0, not rounding noise that a StandardScaler or a tree's
    bin edges would turn into O(1) differences."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    X, y = make_charged_nbody(900, random_state=3, n_steps=200, horizon=100)
    train, test = slice(0, 600), slice(600, None)
    Xc = MinimalFrameCanonicalizer(group, fields=NBODY_FIELDS).fit(X).transform(X)
    assert np.all(np.sum(Xc == 0.0, axis=1) >= 3)       # first frame rows: 2 + 1 zeros
    pipe = make_pipeline(MinimalFrameCanonicalizer(group, fields=NBODY_FIELDS),
                         StandardScaler(), KNeighborsRegressor()).fit(X[train], y[train, 0])
    assert check_equivariance(pipe, group, X[test], fields=NBODY_FIELDS,
                              target="invariant", random_state=0)["max_error"] <= 1e-9
    trees = FrameAveragingRegressor(HistGradientBoostingRegressor(max_iter=30),
                                    group=group, fields=NBODY_FIELDS)
    trees.fit(X[train], y[train, 0])
    assert check_equivariance(trees, group, X[test], random_state=0)["max_error"] <= 1e-9


@pytest.mark.parametrize("group", ["U(2)", "SU(3)", "O(1,3)", "SO(1,3)"])
def test_structural_zeros_of_unitary_and_lorentz_frames_are_exact(group):
    """The same for complex rows (real and imaginary parts snapped separately) and for
    boosted Lorentz frames; without it this pipeline's invariance error was 0.02-0.5."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from mfa_sklearn.datasets import make_toy_jets

    if "(1," in group:
        X, fields = make_toy_jets(600, random_state=0)[0], {"p": "vector"}
    else:
        d = int(group[-2])
        X = np.random.default_rng(0).normal(size=(600, 5 * 2 * d))
        fields = {"z": "point"}
    y = np.abs(X).sum(axis=1)
    Xc = MinimalFrameCanonicalizer(group, fields=fields).fit(X).transform(X)
    assert np.all(np.sum(Xc == 0.0, axis=1) >= 2)
    pipe = make_pipeline(MinimalFrameCanonicalizer(group, fields=fields), StandardScaler(),
                         HistGradientBoostingRegressor(max_iter=30)).fit(X[:400], y[:400])
    assert check_equivariance(pipe, group, X[400:], fields=fields, target="invariant",
                              random_state=0)["max_error"] <= 1e-9
