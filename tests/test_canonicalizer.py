"""MinimalFrameCanonicalizer, and what it shares with the averaging estimators.

The canonical form (invariance, idempotence, fields, exact power-of-two scaling),
pipelines, pandas output, frame diagnostics, n_jobs and joblib's Dask backend, 3-D
input, the input validation of all three estimators, and canonical coordinates that
are exactly zero. The estimators built on it are tested in test_averaging.py.

Error metric: ``max_error`` of ``check_equivariance`` (the largest absolute deviation
relative to the largest output entry), asserted with ``assert_equivariant`` at 1e-9 for
float64 data; the invariance tests also check that the model without frames is off by
at least 1e-2.
"""

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mfa_sklearn import (
    FrameAveragingClassifier,
    FrameAveragingRegressor,
    MinimalFrameCanonicalizer,
    _engine,
    check_equivariance,
)
from mfa_sklearn.datasets import NBODY_FIELDS, make_charged_nbody
from mfa_sklearn.testing import apply_group, assert_equivariant, random_group_element
from tests._helpers import CONTROL

N_POINTS = 6
D = 3
TOL64 = 1e-9

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------- canonical form
def test_canonicalizer_invariant_and_idempotent_e3():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, N_POINTS * D)) + np.tile(rng.normal(size=(50, D)), N_POINTS)
    can = MinimalFrameCanonicalizer(group="E(3)").fit(X)
    Xc = can.transform(X)
    g = random_group_element("E(3)", len(X), random_state=6)
    Xc_moved = can.transform(apply_group("E(3)", g, X))
    scale = np.abs(Xc).max()
    assert np.abs(Xc_moved - Xc).max() <= 1e-12 * scale
    # rounded to 40 bits: equal, or one grid step 2^(e - 40) apart, 2^e > |largest|
    assert np.abs(can.transform(Xc) - Xc).max() <= 2.0 ** -39 * scale
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
    # rounded to 40 bits: equal, or one grid step 2^(e - 40) apart, 2^e > |largest|
    assert np.abs(moved - Xc).max() <= 2.0 ** -39 * np.abs(Xc).max()
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
    assert_equivariant(pipe, "E(3)", X[60:], random_state=0, rtol=TOL64)
    control = check_equivariance(make_pipeline(Ridge()).fit(X[:60], y[:60]), "E(3)",
                                 X[60:], random_state=0)
    assert control["max_error"] >= CONTROL
    # nested parameters reach the canonicalizer
    pipe.set_params(minimalframecanonicalizer__group=None).fit(X[:60], y[:60])
    result = check_equivariance(pipe, "E(3)", X[60:], random_state=0)
    assert result["max_error"] >= CONTROL



# ---------------------------------------------------------------------- pandas output
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



# ------------------------------------------------------------------------ diagnostics
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


# ------------------------------------------------------------ n_jobs, joblib backends
def test_chunk_slices_are_equal_and_shared_evenly_by_the_workers(monkeypatch):
    monkeypatch.setattr(_engine, "_CHUNK_SAMPLES", 4096)
    X = np.zeros((20000, 15))
    for n_jobs, count in [(None, 5), (1, 5), (2, 6), (3, 6), (4, 8)]:
        slices = _engine.chunk_slices(X, 15, n_jobs)
        sizes = [len(range(20000)[s]) for s in slices]
        assert len(sizes) == count, n_jobs
        assert sum(sizes) == 20000 and max(sizes) - min(sizes) <= count
        np.testing.assert_array_equal(np.concatenate([np.arange(20000)[s] for s in slices]),
                                      np.arange(20000))
    assert [len(range(100)[s]) for s in _engine.chunk_slices(X[:100], 15, 2)] == [100]
    assert _engine.chunk_slices(X[:0], 15, 2) == []


def test_n_jobs_two_matches_serial(monkeypatch):
    monkeypatch.setattr(_engine, "_CHUNK_SAMPLES", 4096)   # six chunks for two workers
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


@pytest.mark.parametrize("backend", ["threading", "loky"])
@pytest.mark.parametrize("group, frame", [("O(3)", "pca"), ("S_n x E(3)", "minimal"),
                                          ("E(3)", "minimal")])
def test_frames_over_chunks_and_workers_match_one_chunk(monkeypatch, backend, group, frame):
    """Chunks written by threads or sent back by processes, for output shapes known in
    advance (minimal frames), learnt from the first chunk (PCA's sign flips) or from an
    empty one (row-permuting groups), with absent rows."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(9000, 15))
    y = rng.normal(size=9000)
    X[0] = 0.0
    X[7, 3:6] = np.nan
    model = FrameAveragingRegressor(Ridge(), group=group, frame=frame).fit(X, y)
    one_chunk = model.predict(X)
    canonical = MinimalFrameCanonicalizer(group=group).fit(X[8:]).transform(X[8:])
    monkeypatch.setattr(_engine, "_CHUNK_SAMPLES", 2048)   # five chunks, six for two jobs
    with parallel_config(backend=backend):
        for n_jobs in (1, 2):
            np.testing.assert_array_equal(model.set_params(n_jobs=n_jobs).predict(X),
                                          one_chunk)
            np.testing.assert_array_equal(
                MinimalFrameCanonicalizer(group=group, n_jobs=n_jobs).fit(X[8:])
                .transform(X[8:]), canonical)


def test_dask_backend_matches_serial(monkeypatch):
    """``n_jobs`` spreads chunks of samples over joblib workers; with joblib's Dask
    backend those are the workers of a (here local) distributed cluster."""
    monkeypatch.setattr(_engine, "_CHUNK_SAMPLES", 8192)
    distributed = pytest.importorskip(
        "distributed", reason="the Dask backend needs the optional extra: "
                              "pip install 'mfa_sklearn[dask]'")
    # several chunks of 8192 clouds
    X, y = make_charged_nbody(20000, random_state=0, n_steps=50, horizon=20)
    serial = MinimalFrameCanonicalizer("E(3)", fields=NBODY_FIELDS).fit(X).transform(X)
    model = FrameAveragingRegressor(KNeighborsRegressor(), group="E(3)",
                                    fields=NBODY_FIELDS, target="point").fit(X, y)
    expected = model.predict(X)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster), parallel_config(backend="dask"):
        canonicalizer = MinimalFrameCanonicalizer("E(3)", fields=NBODY_FIELDS, n_jobs=2)
        np.testing.assert_array_equal(canonicalizer.fit(X).transform(X), serial)
        np.testing.assert_array_equal(model.set_params(n_jobs=2).predict(X), expected)


# -------------------------------------------------------------------------- 3-D input
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
    assert_equivariant(reg3, "E(3)", X3, random_state=0, rtol=TOL64)

    labels = np.where(X[:, 30] > 0, "plus", "minus")
    clf2 = FrameAveragingClassifier(group="SO(3)", fields=NBODY_FIELDS).fit(X, labels)
    clf3 = FrameAveragingClassifier(group="SO(3)", fields=NBODY_FIELDS).fit(X3, labels)
    np.testing.assert_allclose(clf3.predict_proba(X3), clf2.predict_proba(X), atol=1e-12)



# ----------------------------------- bad input (shared with the averaging estimators)
def test_non_finite_input_names_field_and_samples():
    X, y = make_charged_nbody(20, n_steps=10, horizon=10, random_state=2)
    bad_vel = X.copy()
    bad_vel[7, 20] = np.nan             # a velocity of sample 7
    bad_charge = X.copy()
    bad_charge[[3, 9], 32] = np.inf     # a charge of samples 3 and 9
    for est in (MinimalFrameCanonicalizer(group="E(3)", fields=NBODY_FIELDS),
                FrameAveragingRegressor(Ridge(), group="E(3)", fields=NBODY_FIELDS,
                                        target="point")):
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
    lambda: FrameAveragingRegressor(Ridge(), group="SE(3)"),
    lambda: FrameAveragingClassifier(group="O(3)"),
], ids=["canonicalizer", "regressor", "classifier"])
def test_layout_that_cannot_divide_columns(make):
    X = np.random.default_rng(0).normal(size=(10, 14))
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match=r"X has 14 columns, which the fields .* cannot "
                                         "divide into rows"):
        make().fit(X, y)


@pytest.mark.parametrize("group, message", [
    ("Q(3)", "unknown group 'Q\\(3\\)'"),
    ("E(three)", "cannot parse group 'E\\(three\\)'"),
    ("U(0)", "unknown group 'U\\(0\\)'"),
    ("E(0)", "unknown group 'E\\(0\\)'"),
    (3, "The 'group' parameter .* must be an instance of 'str', an instance of "
     "'mfa_sklearn.groups._base.Group' or None. Got 3 instead"),
])
def test_unknown_group(group, message):
    X = np.random.default_rng(0).normal(size=(5, 6))
    for est in (MinimalFrameCanonicalizer(group=group),
                FrameAveragingRegressor(Ridge(), group=group)):
        with pytest.raises(ValueError, match=message):
            est.fit(X, np.zeros(5))


def test_input_shape_errors():
    rng = np.random.default_rng(18)
    X = rng.normal(size=(10, 15))
    y = rng.normal(size=10)
    for est in (MinimalFrameCanonicalizer(group="E(3)"),
                FrameAveragingRegressor(Ridge(), group="E(3)")):
        with pytest.raises(ValueError, match="Complex data not supported"):
            clone(est).fit(X + 1j, y)
        with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
            clone(est).fit(X[0], y[:1])
        with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
            clone(est).fit(X[:0], y[:0])
        fitted = clone(est).fit(X, y)
        method = getattr(fitted, "transform", None) or fitted.predict
        with pytest.raises(ValueError, match=r"X has 12 features, but .* is expecting 15 "
                                             "features as input"):
            method(X[:, :12])
        with pytest.raises(ValueError, match="Complex data not supported"):
            method(X + 1j)
        fitted3 = clone(est).fit(X.reshape(10, 5, 3), y)
        method3 = getattr(fitted3, "transform", None) or fitted3.predict
        with pytest.raises(ValueError, match=r"X has samples of shape \(5, 4\), but .* "
                                             r"was fitted on samples of shape \(5, 3\)"):
            method3(rng.normal(size=(3, 5, 4)))
        # 3-D X for a model fitted on 2-D X, and the reverse: the sample shapes
        with pytest.raises(ValueError, match=r"X has samples of shape \(5, 3\), but .* "
                                             r"was fitted on samples of shape \(15,\)"):
            method(X.reshape(10, 5, 3))
        with pytest.raises(ValueError, match=r"X has samples of shape \(15,\), but .* "
                                             r"was fitted on samples of shape \(5, 3\)"):
            method3(X)
        with pytest.raises(ValueError, match="X has rows of width 4, but the fields"):
            clone(est).fit(rng.normal(size=(10, 5, 4)), y)


def test_four_d_input_is_a_clear_error():
    """X with more than 3 dimensions has no layout; the error should say so instead
    of failing inside a reshape."""
    X = np.random.default_rng(19).normal(size=(8, 6, 3, 1))
    with pytest.raises(ValueError, match=r"(?i)2-D|3-D|dimension|ndim"):
        MinimalFrameCanonicalizer(group="E(3)").fit(X).transform(X)
    with pytest.raises(ValueError, match=r"(?i)2-D|3-D|dimension|ndim"):
        FrameAveragingRegressor(Ridge(), group="O(3)").fit(X, np.zeros(8))


def test_not_fitted_errors():
    X = np.zeros((3, 6))
    with pytest.raises(NotFittedError):
        MinimalFrameCanonicalizer(group="E(3)").transform(X)
    with pytest.raises(NotFittedError):
        MinimalFrameCanonicalizer(group="E(3)").get_feature_names_out()
    with pytest.raises(NotFittedError):
        MinimalFrameCanonicalizer(group="E(3)").frame_diagnostics(X)
    with pytest.raises(NotFittedError):
        FrameAveragingRegressor(Ridge(), group="E(3)").predict(X)
    with pytest.raises(NotFittedError):
        FrameAveragingClassifier(group="E(3)").predict_proba(X)
    with pytest.raises(NotFittedError):
        FrameAveragingClassifier(group="E(3)").decision_function(X)



# -------------------------------------------------- coordinates that are exactly zero
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
    assert_equivariant(pipe, group, X[test], fields=NBODY_FIELDS, target="invariant",
                       random_state=0, rtol=TOL64)
    trees = FrameAveragingRegressor(HistGradientBoostingRegressor(max_iter=30),
                                    group=group, fields=NBODY_FIELDS)
    trees.fit(X[train], y[train, 0])
    assert_equivariant(trees, group, X[test], random_state=0, rtol=TOL64)


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
    assert_equivariant(pipe, group, X[400:], fields=fields, target="invariant",
                       random_state=0, rtol=TOL64)
