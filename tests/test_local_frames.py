"""Local minimal frames: exactness on generic, symmetric and mixed-size systems, the
neighbour lists, errors, and the sklearn conventions of the local-frame estimators."""

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.kernel_approximation import Nystroem
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVR

from mfa_sklearn import LocalFrameFeaturizer, LocalFrameRegressor, check_equivariance
from mfa_sklearn.exceptions import NonFiniteInputError
from mfa_sklearn.local._neighbours import neighbour_lists
from tests._helpers import fcc_ball, run_script

FIELDS = {"pos": "point", "Z": "scalar"}
SYMMETRY = "S_n x E(3)"


class Probe(RegressorMixin, BaseEstimator):
    """A fixed random nonlinear map of the features, blind to any symmetry: what it
    predicts is as far from equivariant as a function can be, so exactness must come
    from the frames."""

    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, X, y):
        rng = np.random.default_rng(self.seed)
        y = np.asarray(y)
        self.width_ = 1 if y.ndim == 1 else y.shape[1]
        self.W1_ = rng.normal(size=(X.shape[1], 32)) / np.sqrt(X.shape[1])
        self.W2_ = rng.normal(size=(32, self.width_))
        self.one_d_ = y.ndim == 1
        return self

    def predict(self, X):
        out = np.tanh(np.asarray(X) @ self.W1_ + 0.3) @ self.W2_
        return out[:, 0] if self.one_d_ else out


def icosahedron():
    phi = (1 + 5 ** 0.5) / 2
    v = []
    for a in (-1, 1):
        for b in (-phi, phi):
            v += [(0, a, b), (a, b, 0), (b, 0, a)]
    return np.array(v) / np.linalg.norm(v[0]) * 2.5


def cuboctahedron():
    pairs = [(a, b) for a in (-1, 1) for b in (-1, 1)]
    v = [(a, b, 0) for a, b in pairs] + [(a, 0, b) for a, b in pairs] + [(0, a, b)
                                                                         for a, b in pairs]
    return np.array(v, dtype=float) * 2.55 / np.sqrt(2)


def systems(shapes, species_seed=0):
    """3-D X of the given clusters (absent rows pad the smaller ones), with species."""
    n = max(len(s) for s in shapes)
    rng = np.random.default_rng(species_seed)
    X = np.full((len(shapes), n, 4), np.nan)
    for i, s in enumerate(shapes):
        X[i, :len(s), :3] = s
        X[i, :len(s), 3] = 29.0
    X[0, :len(shapes[0]), 3] = rng.choice([29.0, 79.0], size=len(shapes[0]))
    return X


def generic(rng, n_systems=30, n_max=9, n_min=3):
    X = np.full((n_systems, n_max, 4), np.nan)
    for i in range(n_systems):
        m = rng.integers(n_min, n_max + 1)
        X[i, :m, :3] = rng.normal(scale=1.7, size=(m, 3))
        X[i, :m, 3] = rng.choice([29.0, 79.0], size=m)
    return X


def targets(X, rng):
    F = rng.normal(size=X.shape[:2] + (3,))
    F[np.isnan(X[..., 0])] = np.nan
    return F


SYMMETRIC = {
    "icosahedron": [np.vstack([[0, 0, 0], icosahedron()])],
    "cuboctahedron": [np.vstack([[0, 0, 0], cuboctahedron()])],
    "line": [np.outer(np.arange(5) * 2.0, [0.3, 0.5, 0.8])],
    "hexagon": [np.vstack([[0, 0, 0], [[2.5 * np.cos(a), 2.5 * np.sin(a), 0]
                                       for a in np.arange(6) * np.pi / 3]])],
    "dimer_and_lone": [np.array([[0.0, 0, 0], [0, 0, 2.4]]), np.array([[1.0, 2.0, 3.0]])],
}


@pytest.mark.parametrize("encoding", ["density", "rows"])
@pytest.mark.parametrize("first_vector", ["nearest", "weighted"])
@pytest.mark.parametrize("rule", ["first_above", "pivoted", "first"])
@pytest.mark.parametrize("group", ["E(3)", "SE(3)"])
def test_generic_mixed_sizes_are_exact(encoding, first_vector, rule, group):
    rng = np.random.default_rng(1)
    X = generic(rng)
    F = targets(X, rng)
    symmetry = f"S_n x {group}"
    kw = dict(fields=FIELDS, group=group, cutoff=4.0, n_neighbors=5,
              first_vector=first_vector, row_rule=rule, encoding=encoding)
    forces = LocalFrameRegressor(Probe(), target="vector", **kw).fit(X, F)
    out = forces.predict(X)
    assert out.shape == F.shape
    assert np.array_equal(np.isnan(out), np.isnan(F))
    err = check_equivariance(forces, symmetry, X, fields=FIELDS, target="vector",
                             random_state=0)["max_error"]
    assert err <= 1e-10
    y = np.nansum(F[..., 0], axis=1)
    energy = LocalFrameRegressor(Probe(), target="sum", **kw)
    energy.set_params(estimator=KernelRidge(kernel="rbf", gamma=0.05)).fit(X, y)
    err = check_equivariance(energy, symmetry, X, fields=FIELDS, target="invariant",
                             random_state=1)["max_error"]
    assert err <= 1e-10


def test_control_without_frames_is_not_equivariant():
    """The check above can fail: the same probe on raw coordinates is far off."""
    rng = np.random.default_rng(2)
    X = generic(rng, n_min=9)
    probe = Probe().fit(X.reshape(len(X), -1), np.zeros((len(X), 27)))
    def raw(Z):
        return probe.predict(Z.reshape(len(Z), -1)).reshape(len(Z), 9, 3)

    err = check_equivariance(raw, SYMMETRY, X, fields=FIELDS, target="vector",
                             random_state=0)["max_error"]
    assert err > 1e-2


@pytest.mark.parametrize("name", list(SYMMETRIC))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("first_vector, encoding", [("nearest", "density"),
                                                     ("weighted", "density"),
                                                     ("nearest", "rows")])
def test_symmetric_clusters_are_exact(name, dtype, first_vector, encoding):
    X = systems(SYMMETRIC[name]).astype(dtype)
    F = targets(X, np.random.default_rng(3)).astype(dtype)
    model = LocalFrameRegressor(Probe(), target="vector", fields=FIELDS, cutoff=6.0,
                                n_neighbors=8, first_vector=first_vector,
                                encoding=encoding).fit(X, F)
    bound = 1e-10 if dtype == np.float64 else 1e-4
    err = check_equivariance(model, SYMMETRY, X, fields=FIELDS, target="vector",
                             random_state=0)["max_error"]
    assert err <= bound
    out = model.predict(X)
    if name in ("icosahedron", "cuboctahedron"):
        # the centre's stabilizer is a point group with no fixed vector but 0
        assert np.linalg.norm(out[0, 0]) <= 10 * bound * np.linalg.norm(out[0, 1])
    if name == "line":
        axis = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
        off_axis = out[0] - (out[0] @ axis)[:, None] * axis
        assert np.abs(off_axis).max() <= 10 * bound * np.abs(out[0]).max()
    if name == "hexagon":
        assert np.abs(out[0, :, 2]).max() <= 10 * bound * np.abs(out[0]).max()
    if name == "dimer_and_lone":
        assert np.abs(out[1, 0]).max() == 0.0                       # a lone atom
        assert np.abs(out[0, :, :2]).max() <= 10 * bound * np.abs(out[0]).max()


@pytest.mark.parametrize("radius", [3.6, 7.3])      # 19 atoms (all pairs), 135 (trees)
def test_atoms_exactly_at_the_cutoff_are_exact(radius):
    """With the lattice constant 3.6 as the cutoff, fcc atoms have neighbours at exactly
    the cutoff distance, inside or not by the rounding of the rotated coordinates:
    they are left out (their cutoff weight is zero), whatever the rotation."""
    ball = fcc_ball(radius)
    X = systems([ball])
    F = targets(X, np.random.default_rng(5))
    model = LocalFrameRegressor(Probe(), target="vector", fields=FIELDS, cutoff=3.6,
                                n_neighbors=None).fit(X, F)
    for seed in range(3):
        assert check_equivariance(model, SYMMETRY, X, fields=FIELDS, target="vector",
                                  random_state=seed)["max_error"] <= 1e-10


def test_weighted_direction_of_exactly_half_length_is_decided_invariantly():
    """In a six-ring (bond 1.4, cutoff 2.0) and a 120-degree triatomic, atoms have two
    equidistant neighbours at 120 degrees: the weighted direction is exactly half the
    neighbour distance long, the bound of the long-direction test, which rounding
    decided (sum-kernel energies off by 0.25, features by 0.05)."""
    angles = np.arange(6) * np.pi / 3
    X = np.full((2, 6, 4), np.nan)
    X[0, :, :3] = 1.4 * np.stack([np.cos(angles), np.sin(angles), np.zeros(6)], axis=1)
    X[0, :, 3] = 6.0
    X[1, :3, :3] = [[0, 0, 0], [1.0, 0, 0], [np.cos(2 * np.pi / 3), np.sin(2 * np.pi / 3), 0]]
    X[1, :3, 3] = [8.0, 1.0, 1.0]
    kw = dict(fields=FIELDS, cutoff=2.0, n_neighbors=None, first_vector="weighted")
    energy = LocalFrameRegressor(KernelRidge(kernel="rbf", gamma=0.5), **kw).fit(
        X, [1.0, 2.0])
    features = LocalFrameFeaturizer(standardize=False, **kw).fit(X)
    for seed in range(6):
        for model in (energy, features):
            assert check_equivariance(model, SYMMETRY, X, fields=FIELDS,
                                      random_state=seed)["max_error"] <= 1e-10


def test_large_systems_use_trees_and_match_all_pairs():
    ball = fcc_ball(11.0)
    assert len(ball) > 96
    rng = np.random.default_rng(4)
    jittered = ball + rng.normal(scale=0.05, size=ball.shape)
    present = np.ones((1, len(ball)), dtype=bool)
    for points in (ball, jittered):
        pos = points[None]
        tree = neighbour_lists(pos, present, cutoff=4.0, n_neighbors=12, band=1e-8)
        pairs = neighbour_lists(pos[:, :90], present[:, :90], cutoff=4.0, n_neighbors=12,
                                band=1e-8)
        # the first 90 atoms alone (all pairs) have the same neighbours among themselves
        inside = np.all((tree[0][0, :90] < 90), axis=1)
        assert inside.any()
        for a in np.flatnonzero(inside):
            assert set(tree[0][0, a]) == set(pairs[0][0, a])
    X = systems([ball])
    F = targets(X, rng)
    model = LocalFrameRegressor(Probe(), target="vector", fields=FIELDS, cutoff=4.0,
                                n_neighbors=12).fit(X, F)
    assert check_equivariance(model, SYMMETRY, X, fields=FIELDS, target="vector",
                              random_state=0)["max_error"] <= 1e-10


def test_ties_at_the_kth_neighbour_are_left_out():
    """An icosahedron's surface atom has 1 + 5 neighbours, then 5 tied ones: with 8
    neighbours, the tied five are all left out."""
    pos = np.vstack([[0, 0, 0], icosahedron()])[None]
    index, _ = neighbour_lists(pos, np.ones((1, 13), bool), cutoff=10.0, n_neighbors=8,
                               band=1e-8)
    assert np.sum(index[0, 1] >= 0) == 6
    assert np.sum(index[0, 0] >= 0) == 0          # the centre: 12 tied neighbours
    index, _ = neighbour_lists(pos, np.ones((1, 13), bool), cutoff=10.0, n_neighbors=12,
                               band=1e-8)
    assert np.sum(index[0, 0] >= 0) == 12


def test_neighbours_left_out_within_the_cutoff_warn():
    """A cap that drops atoms closer than the cutoff says so once per message; a cap
    that drops none, or None, is silent."""
    import warnings

    pos = np.vstack([[0, 0, 0], icosahedron()])[None]
    present = np.ones((1, 13), bool)
    with pytest.warns(UserWarning, match=r"n_neighbors=8 leaves out atoms closer than "
                                         r"the cutoff \(10\).*n_neighbors=None"):
        neighbour_lists(pos, present, cutoff=10.0, n_neighbors=8, band=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        neighbour_lists(pos, present, cutoff=10.0, n_neighbors=None, band=1e-8)
        neighbour_lists(pos, present, cutoff=10.0, n_neighbors=12, band=1e-8)
        neighbour_lists(pos, present, cutoff=1.5, n_neighbors=8, band=1e-8)
    X = np.concatenate([pos, np.ones((1, 13, 1))], axis=2)
    with pytest.warns(UserWarning, match="n_neighbors=4 leaves out"):
        LocalFrameRegressor(fields=FIELDS, cutoff=10.0, n_neighbors=4).fit(X, [1.0])


def test_featurizer_and_pipeline_are_invariant_and_size_extensive():
    rng = np.random.default_rng(5)
    X = generic(rng, n_systems=40)
    y = np.nansum(np.nan_to_num(X[..., 0]) ** 2, axis=1)
    featurizer = LocalFrameFeaturizer(atom_transformer=Nystroem(n_components=20,
                                                                random_state=0),
                                      fields=FIELDS, cutoff=4.0, n_neighbors=5)
    model = make_pipeline(featurizer, Ridge()).fit(X, y)
    assert check_equivariance(model, SYMMETRY, X, fields=FIELDS, random_state=0)[
        "max_error"] <= 1e-10
    # two far-apart copies of a system pool to twice its features
    both = np.full((2, 18, 4), np.nan)
    count = int(np.sum(~np.isnan(X[0, :, 0])))
    both[:, :count] = X[0, :count]
    both[1, 9:9 + count] = X[0, :count] + [100.0, 0, 0, 0]
    single, doubled = clone(featurizer).fit(both).transform(both)
    # equal up to the rounding of positions moved by 100 (amplified by the Nystroem map)
    np.testing.assert_allclose(doubled, 2 * single, rtol=1e-8)


def test_sum_kernel_equals_explicit_sum():
    rng = np.random.default_rng(6)
    X = generic(rng, n_systems=12)
    y = rng.normal(size=12)
    gamma = 0.1
    model = LocalFrameRegressor(KernelRidge(kernel="rbf", gamma=gamma, alpha=0.5),
                                fields=FIELDS, cutoff=4.0, n_neighbors=5).fit(X, y)
    atoms = LocalFrameFeaturizer(fields=FIELDS, cutoff=4.0, n_neighbors=5).fit(X)
    envs, F = atoms._environments(X)
    sq = ((F[:, None] - F[None]) ** 2).sum(-1)
    k = np.exp(-gamma * sq)
    S = np.zeros((12, len(F)))
    S[envs.system, np.arange(len(F))] = 1
    K = S @ k @ S.T
    expected = K @ np.linalg.solve(K + 0.5 * np.eye(12), y)
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-9, atol=1e-9)


def test_sum_kernel_with_a_callable_kernel_gets_its_kernel_params_only():
    # as KernelRidge calls a callable kernel: kernel_params, not gamma/degree/coef0
    rng = np.random.default_rng(6)
    X = generic(rng, n_systems=12)
    y = rng.normal(size=12)

    def rbf(a, b, width):
        return np.exp(-np.sum((a - b) ** 2) / width)

    kw = dict(fields=FIELDS, cutoff=4.0, n_neighbors=5)
    by_name = LocalFrameRegressor(KernelRidge(kernel="rbf", gamma=0.1, alpha=0.5),
                                  **kw).fit(X, y)
    called = LocalFrameRegressor(KernelRidge(kernel=rbf, kernel_params={"width": 10.0},
                                             alpha=0.5), **kw).fit(X, y)
    np.testing.assert_allclose(called.predict(X), by_name.predict(X), rtol=1e-9)


def test_sum_target_names_the_kernel_method_it_needs():
    X = generic(np.random.default_rng(6), n_systems=8)
    with pytest.raises(TypeError, match=r"target='sum' needs a kernel method.*Ridge has none"):
        LocalFrameRegressor(Ridge(), fields=FIELDS, cutoff=4.0).fit(X, np.zeros(8))


def test_score_of_per_atom_targets_reads_the_present_atoms():
    from sklearn.metrics import r2_score
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(7)
    X = generic(rng)
    F = targets(X, rng)
    model = LocalFrameRegressor(Ridge(), target="vector", fields=FIELDS, cutoff=4.0,
                                n_neighbors=5).fit(X, F)
    y, pred = F.reshape(len(F), -1), model.predict(X).reshape(len(F), -1)
    expected = np.mean([r2_score(y[~np.isnan(y[:, j]), j], pred[~np.isnan(y[:, j]), j])
                        for j in range(y.shape[1])])
    assert model.score(X, F) == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(cross_val_score(model, X, F, cv=3)))


def test_scalar_targets_per_atom_are_invariant():
    rng = np.random.default_rng(7)
    X = generic(rng)
    q = rng.normal(size=X.shape[:2])
    q[np.isnan(X[..., 0])] = np.nan
    model = LocalFrameRegressor(Probe(), target="scalar", fields=FIELDS, cutoff=4.0,
                                n_neighbors=5).fit(X, q)
    out = model.predict(X)
    assert out.shape == q.shape and np.array_equal(np.isnan(out), np.isnan(q))
    assert check_equivariance(model, SYMMETRY, X, fields=FIELDS, target="scalar",
                              random_state=0)["max_error"] <= 1e-10


def test_flat_two_d_layout_matches_three_d():
    rng = np.random.default_rng(8)
    X3 = generic(rng)
    F3 = targets(X3, rng)
    # flat layout: all positions (atom-major), then all species
    X2 = np.concatenate([X3[..., :3].reshape(len(X3), -1), X3[..., 3]], axis=1)
    kw = dict(target="vector", fields=FIELDS, cutoff=4.0, n_neighbors=5)
    a = LocalFrameRegressor(Probe(), **kw).fit(X3, F3).predict(X3)
    b = LocalFrameRegressor(Probe(), **kw).fit(X2, F3.reshape(len(X3), -1)).predict(X2)
    np.testing.assert_array_equal(a.reshape(len(X3), -1), b)


def test_velocities_are_carried_along():
    rng = np.random.default_rng(9)
    X = generic(rng, n_min=4)
    V = rng.normal(size=X.shape[:2] + (3,))
    V[np.isnan(X[..., 0])] = np.nan
    XV = np.concatenate([X, V], axis=2)
    fields = {"pos": "point", "Z": "scalar", "v": "vector"}
    F = targets(X, rng)
    model = LocalFrameRegressor(Probe(), target="vector", fields=fields, cutoff=4.0,
                                n_neighbors=5).fit(XV, F)
    assert check_equivariance(model, SYMMETRY, XV, fields=fields, target="vector",
                              random_state=0)["max_error"] <= 1e-10
    # the velocities matter
    moved = XV.copy()
    moved[..., 4:] *= -1
    assert not np.allclose(model.predict(moved), model.predict(XV), equal_nan=True)


def test_sklearn_conventions():
    rng = np.random.default_rng(10)
    X = generic(rng, n_systems=24)
    y = np.nansum(np.nan_to_num(X[..., 0]), axis=1)
    model = LocalFrameRegressor(KernelRidge(kernel="rbf", gamma=0.1), fields=FIELDS,
                                cutoff=4.0, n_neighbors=5)
    search = GridSearchCV(model, {"cutoff": [3.0, 4.0], "n_neighbors": [3, 5],
                                  "group": ["E(3)", "SE(3)"]}, cv=2).fit(X, y)
    best = search.best_estimator_
    again = pickle.loads(pickle.dumps(best))
    np.testing.assert_array_equal(again.predict(X), best.predict(X))
    threads = clone(best).set_params(n_jobs=2).fit(X, y)
    np.testing.assert_allclose(threads.predict(X), best.predict(X), rtol=1e-12)
    featurizer = LocalFrameFeaturizer(fields=FIELDS, cutoff=4.0, n_neighbors=5)
    frame = featurizer.set_output(transform="pandas").fit_transform(X)
    assert list(frame.columns) == list(featurizer.get_feature_names_out())


@pytest.mark.parametrize("change, match", [
    (dict(cutoff=0.0), "cutoff"),
    (dict(n_neighbors=1), "n_neighbors"),
    (dict(radial_basis="gaussian"), "radial_basis"),
    (dict(group="O(1,3)"), "E\\(d\\)"),
    (dict(fields={"pos": "point", "q": "point"}), "exactly one 'point' field"),
])
def test_bad_parameters(change, match):
    X = generic(np.random.default_rng(11))[..., :3]
    X = np.concatenate([X, X + 1.0], axis=2)      # room for a second point field
    change = {"fields": {"pos": "point", "other": ("scalar", 3)}, **change}
    with pytest.raises(ValueError, match=match):
        LocalFrameRegressor(**change).fit(X, np.zeros(len(X)))


def test_bad_inputs_name_system_and_atom():
    rng = np.random.default_rng(12)
    X = generic(rng)
    partly = X.copy()
    partly[3, 0, 1] = np.nan
    with pytest.raises(NonFiniteInputError, match="sample 3, row 0"):
        LocalFrameRegressor(fields=FIELDS).fit(partly, np.zeros(len(X)))
    species = X.copy()
    species[4, 1, 3] = np.nan
    with pytest.raises(NonFiniteInputError, match="sample 4, row 1"):
        LocalFrameRegressor(fields=FIELDS).fit(species, np.zeros(len(X)))
    twin = X.copy()
    twin[5, 1, :3] = twin[5, 0, :3]
    with pytest.raises(ValueError, match="system 5, atom 0"):
        LocalFrameRegressor(fields=FIELDS).fit(twin, np.zeros(len(X)))
    symbols = X.astype(object)
    symbols[6, 2, 3] = "Cu"
    with pytest.raises(ValueError, match=r"system 6.*atomic numbers"):
        LocalFrameRegressor(fields=FIELDS).fit(symbols, np.zeros(len(X)))
    F = targets(X, rng)
    F[7, 0, 0] = np.nan
    with pytest.raises(NonFiniteInputError, match="system 7, atom 0"):
        LocalFrameRegressor(Ridge(), target="vector", fields=FIELDS).fit(X, F)
    with pytest.raises(ValueError, match="numeric gamma"):
        LocalFrameRegressor(SVR(), fields=FIELDS).fit(X, np.zeros(len(X)))
    # systems padded to another number of atom rows than in fit
    model = LocalFrameRegressor(fields=FIELDS, cutoff=4.0).fit(X, np.zeros(len(X)))
    longer = np.concatenate([X, np.full((len(X), 2, 4), np.nan)], axis=1)
    with pytest.raises(ValueError, match=r"systems of shape \(11, 4\), but .* fitted on "
                                         r"systems of shape \(9, 4\): pad"):
        model.predict(longer)


def test_atoms_quickstart_runs_in_smoke_mode():
    pytest.importorskip("ase")
    out = run_script("examples/atoms_quickstart.py")
    errors = [float(x) for x in out.split("energies ")[1].split(" (relative)")[0]
              .replace("forces ", "").split(", ")]
    assert max(errors) <= 1e-10


@pytest.mark.parametrize("first_vector", ["nearest", "weighted"])
def test_angular_weight_scales_the_angular_channels_alone(first_vector):
    rng = np.random.default_rng(13)
    X = generic(rng)
    kw = dict(fields=FIELDS, cutoff=4.0, n_neighbors=5, first_vector=first_vector)
    full = LocalFrameFeaturizer(**kw).fit(X)
    radial = LocalFrameFeaturizer(angular_weight=0.0, **kw).fit(X)
    F, _, _ = full.atom_features(X)
    R, _, _ = radial.atom_features(X)
    mask = full.local_frames_.angular_columns(full.n_radial)
    assert mask.shape == (F.shape[1],) and 0 < mask.sum() < len(mask)
    assert np.all(R[:, mask] == 0)
    np.testing.assert_array_equal(R[:, ~mask], F[:, ~mask])
    assert np.abs(F[:, mask]).max() > 0
    # the features without their angular channels, computed without them
    envs = full.local_frames_.environments(X)
    radial_only = envs.features("density", full.n_radial, angular=False)
    np.testing.assert_array_equal(radial_only, envs.features("density", full.n_radial)[:, ~mask])


@pytest.mark.parametrize("radial_basis", ["scales", "shells", "exponentials"])
def test_radial_bases_are_exact_and_match_their_formula(radial_basis):
    rng = np.random.default_rng(14)
    X = generic(rng)
    F = targets(X, rng)
    kw = dict(fields=FIELDS, cutoff=4.0, n_neighbors=None, radial_basis=radial_basis)
    forces = LocalFrameRegressor(Probe(), target="vector", **kw).fit(X, F)
    err = check_equivariance(forces, SYMMETRY, X, fields=FIELDS, target="vector",
                             random_state=0)["max_error"]
    assert err <= 1e-10
    energy = LocalFrameRegressor(KernelRidge(kernel="rbf", gamma=0.05), **kw)
    energy.fit(X, np.nansum(F[..., 0], axis=1))
    err = check_equivariance(energy, SYMMETRY, X, fields=FIELDS, target="invariant",
                             random_state=1)["max_error"]
    assert err <= 1e-10
    # the radial channels (monomial 1, channel 1) against sum_b w_b g_i(r_b) by hand
    n_radial, cutoff = 5, 4.0
    features = LocalFrameFeaturizer(standardize=False, **dict(kw, n_radial=n_radial)).fit(X)
    got, system, atom = features.atom_features(X)
    own, monomials, channels = 1, 10, 2
    radial = got[:, own:].reshape(len(got), n_radial, monomials, channels)[:, :, 0, 0]
    pos = X[system, :, :3]
    r = np.linalg.norm(pos - X[system, atom, None, :3], axis=2)
    r = np.where(np.isnan(r) | (r == 0) | (r >= cutoff), np.inf, r)[..., None]
    if radial_basis == "scales":
        g = np.exp(-(r / (cutoff * np.geomspace(0.15, 1.5, n_radial))) ** 2)
    elif radial_basis == "exponentials":
        g = np.exp(-r / (cutoff * np.geomspace(0.05, 1.0, n_radial)))
    else:
        g = np.exp(-((r - np.linspace(0, cutoff, n_radial)) / (cutoff / 4)) ** 2)
    w = np.where(np.isinf(r), 0.0, 0.5 * (np.cos(np.pi * np.minimum(r, cutoff) / cutoff)
                                          + 1))
    np.testing.assert_allclose(radial, np.sum(w * g, axis=1), rtol=1e-12, atol=1e-14)


def test_systems_without_atoms():
    # a batch whose systems have no atom at all: energies 0 (an empty sum), per-atom
    # outputs NaN, pooled features 0, as for such systems in a mixed batch
    rng = np.random.default_rng(7)
    X = generic(rng, n_systems=12)
    F = targets(X, rng)
    empty = np.full((3,) + X.shape[1:], np.nan)
    mixed = np.concatenate([X[:2], empty[:1]])
    energy = LocalFrameRegressor(KernelRidge(kernel="rbf"), fields=FIELDS, target="sum",
                                 cutoff=4.0).fit(X, rng.normal(size=12))
    assert np.array_equal(energy.predict(empty), np.zeros(3))
    assert energy.predict(mixed)[2] == 0.0
    forces = LocalFrameRegressor(Probe(), fields=FIELDS, target="vector",
                                 cutoff=4.0).fit(X, F)
    out = forces.predict(empty)
    assert out.shape == (3,) + X.shape[1:2] + (3,) and np.isnan(out).all()
    pooled = LocalFrameFeaturizer(atom_transformer=Nystroem(n_components=8, random_state=0),
                                  fields=FIELDS, cutoff=4.0).fit(X)
    assert np.array_equal(pooled.transform(empty), np.zeros((3, 8)))
    assert np.array_equal(pooled.transform(mixed)[2], np.zeros(8))
