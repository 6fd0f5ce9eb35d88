"""mfa_sklearn.datasets: the charged n-body simulation (make_charged_nbody and its
splits) and make_toy_jets, whose task an invariant (the jet mass) solves while raw
energies do not."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mfa_sklearn.datasets import (
    JETS_FIELDS,
    NBODY_FIELDS,
    NBODY_TARGET_FIELDS,
    load_charged_nbody_splits,
    make_charged_nbody,
    make_toy_jets,
)
from mfa_sklearn.datasets._nbody import _energy, _simulate
from tests._helpers import minkowski

# ------------------------------------------------------------------- make_charged_nbody
# Short runs keep the whole file fast; the physics does not depend on the length.
SHORT = dict(n_steps=50, horizon=20)


def _random_state(rng, n_systems, n_particles, loc_std=1.0):
    pos = loc_std * rng.standard_normal((n_systems, n_particles, 3))
    vel = 0.5 * rng.standard_normal((n_systems, n_particles, 3))
    charges = rng.choice([-1.0, 1.0], size=(n_systems, n_particles))
    return pos, vel, charges


def _random_orthogonal(rng, reflect):
    Q, R = np.linalg.qr(rng.standard_normal((3, 3)))
    Q = Q * np.sign(np.diag(R))
    if (np.linalg.det(Q) < 0) != reflect:
        Q[:, 0] = -Q[:, 0]
    return Q


def _reference_simulate(pos, vel, charges, n_steps, dt, k, max_force):
    """Plain per-system, per-pair loop, written directly from the formulas."""
    pos, vel = pos.copy(), vel.copy()
    n_systems, n = charges.shape
    for s in range(n_systems):
        for _ in range(n_steps):
            F = np.zeros((n, 3))
            for i in range(n):
                for j in range(n):
                    if i != j:
                        r = pos[s, i] - pos[s, j]
                        qq = charges[s, i] * charges[s, j]
                        F[i] += k * qq * r / np.linalg.norm(r) ** 3
            norms = np.linalg.norm(F, axis=1, keepdims=True)
            F = np.where(norms > max_force, F * max_force / norms, F)
            vel[s] += dt * F
            pos[s] += dt * vel[s]
    return pos, vel


def test_shapes_dtypes_and_layout():
    X, y = make_charged_nbody(7, n_particles=4, random_state=0, **SHORT)
    assert X.shape == (7, 4 * 7) and y.shape == (7, 4 * 3)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(y))
    assert set(np.unique(X[:, 24:])) <= {-1.0, 1.0}

    # horizon=0: the target is the input positions (first block of X).
    X0, y0 = make_charged_nbody(7, n_particles=4, n_steps=30, horizon=0, random_state=0)
    np.testing.assert_array_equal(y0, X0[:, :12])


def test_initial_state_distribution():
    X, _ = make_charged_nbody(2000, n_steps=0, horizon=0, random_state=1)
    vel = X[:, 15:30].reshape(-1, 5, 3)
    np.testing.assert_allclose(np.linalg.norm(vel, axis=-1), 0.5, rtol=1e-12)
    pos = X[:, :15]
    assert abs(pos.mean()) < 0.05 and abs(pos.std() - 1.0) < 0.05
    charges = X[:, 30:]
    assert set(np.unique(charges)) == {-1.0, 1.0}
    assert abs(charges.mean()) < 0.05


def test_input_and_target_are_consecutive_states():
    X, y = make_charged_nbody(5, n_steps=40, horizon=25, random_state=3)
    X_later, _ = make_charged_nbody(5, n_steps=65, horizon=0, random_state=3)
    np.testing.assert_array_equal(y, X_later[:, :15])
    # Charges are constant; velocities actually change.
    X_start, _ = make_charged_nbody(5, n_steps=0, horizon=0, random_state=3)
    np.testing.assert_array_equal(X[:, 30:], X_start[:, 30:])
    assert not np.allclose(X[:, 15:30], X_start[:, 15:30])


def test_determinism_and_seeds():
    a = make_charged_nbody(6, random_state=42, **SHORT)
    b = make_charged_nbody(6, random_state=42, **SHORT)
    c = make_charged_nbody(6, random_state=43, **SHORT)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.allclose(a[0], c[0])

    g1 = make_charged_nbody(6, random_state=np.random.default_rng(5), **SHORT)
    g2 = make_charged_nbody(6, random_state=np.random.default_rng(5), **SHORT)
    np.testing.assert_array_equal(g1[0], g2[0])
    r1 = make_charged_nbody(6, random_state=np.random.RandomState(5), **SHORT)
    r2 = make_charged_nbody(6, random_state=np.random.RandomState(5), **SHORT)
    np.testing.assert_array_equal(r1[1], r2[1])


def test_return_fields():
    _, _, fields = make_charged_nbody(3, return_fields=True, random_state=0, **SHORT)
    assert fields == {"pos": "point", "vel": "vector", "charge": "scalar"}
    assert fields == NBODY_FIELDS and fields is not NBODY_FIELDS
    assert list(fields) == ["pos", "vel", "charge"]
    assert NBODY_TARGET_FIELDS == {"pos": "point"}


def test_splits_are_one_simulation_in_order():
    parts = load_charged_nbody_splits(
        random_state=7, n_train=4, n_val=3, n_test=2, **SHORT
    )
    X, y = make_charged_nbody(9, random_state=7, **SHORT)
    X_tr, y_tr, X_va, y_va, X_te, y_te = parts
    assert [p.shape[0] for p in parts] == [4, 4, 3, 3, 2, 2]
    np.testing.assert_array_equal(np.vstack([X_tr, X_va, X_te]), X)
    np.testing.assert_array_equal(np.vstack([y_tr, y_va, y_te]), y)


@pytest.mark.parametrize("max_force", [np.inf, 5.0])
def test_simulate_matches_reference_loop(max_force):
    rng = np.random.default_rng(0)
    pos, vel, charges = _random_state(rng, 2, 4)
    got = _simulate(
        pos, vel, charges, 150, 1e-3, interaction_strength=1.3, max_force=max_force
    )
    want = _reference_simulate(pos, vel, charges, 150, 1e-3, 1.3, max_force)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("reflect", [False, True])
@pytest.mark.parametrize("max_force", [100.0, 2.0])  # 2.0: clipping is active
def test_simulator_is_e3_equivariant(reflect, max_force):
    rng = np.random.default_rng(11)
    pos, vel, charges = _random_state(rng, 50, 5)
    Q = _random_orthogonal(rng, reflect)
    b = rng.normal(scale=3.0, size=3)
    kwargs = dict(interaction_strength=1.0, max_force=max_force)

    p, v = _simulate(pos, vel, charges, 300, 1e-3, **kwargs)
    p_t, v_t = _simulate(pos @ Q + b, vel @ Q, charges, 300, 1e-3, **kwargs)

    def rel_err(a, ref):
        return np.max(np.abs(a - ref)) / np.max(np.abs(ref))

    assert rel_err(p_t, p @ Q + b) < 1e-9
    assert rel_err(v_t, v @ Q) < 1e-9
    assert not np.allclose(p, pos)  # the systems did move


def _max_force_norm(pos, charges):
    d = pos[:, :, None, :] - pos[:, None, :, :]
    r = np.linalg.norm(d, axis=-1)
    np.einsum("bii->bi", r)[:] = np.inf  # no self-interaction
    qq = charges[:, :, None] * charges[:, None, :]
    F = np.sum((qq / r**3)[..., None] * d, axis=2)
    return np.linalg.norm(F, axis=-1).max(axis=1)


def test_energy_roughly_conserved_without_clipping():
    rng = np.random.default_rng(2)
    pos, vel, charges = _random_state(rng, 200, 5, loc_std=2.0)

    # Step by step (same arithmetic as one long call) to record the largest force;
    # keep the systems whose forces stay far below the clipping threshold 0.1 / dt.
    p, v = pos, vel
    largest = _max_force_norm(p, charges)
    for _ in range(500):
        p, v = _simulate(p, v, charges, 1, 1e-3, max_force=np.inf)
        largest = np.maximum(largest, _max_force_norm(p, charges))
    keep = largest < 10.0
    assert keep.sum() > 100

    def rel_energy_error(p, v):
        e0 = _energy(pos[keep], vel[keep], charges[keep])
        e1 = _energy(p[keep], v[keep], charges[keep])
        scale = np.abs(e0) + 0.5 * np.sum(vel[keep] ** 2, axis=(1, 2))
        return np.max(np.abs(e1 - e0) / scale)

    err = rel_energy_error(p, v)
    assert err < 1e-2
    # Semi-implicit Euler is first order: halving dt halves the energy error.
    half = _simulate(pos, vel, charges, 1000, 5e-4, max_force=np.inf)
    err_half = rel_energy_error(*half)
    assert 1.7 < err / err_half < 2.3

    # The clipped simulator agrees exactly when clipping never triggers.
    p_c, v_c = _simulate(
        pos[keep], vel[keep], charges[keep], 500, 1e-3, max_force=100.0
    )
    np.testing.assert_array_equal(p_c, p[keep])
    np.testing.assert_array_equal(v_c, v[keep])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=0), "n_samples"),
        (dict(n_samples=2.5), "n_samples"),
        (dict(n_samples=True), "n_samples"),
        (dict(n_particles=1), "n_particles"),
        (dict(n_steps=-1), "n_steps"),
        (dict(horizon=-5), "horizon"),
        (dict(horizon="10"), "horizon"),
        (dict(dt=0.0), "dt"),
        (dict(dt=-1e-3), "dt"),
        (dict(dt=np.nan), "dt"),
        (dict(dt=np.inf), "dt"),
        (dict(loc_std=0.0), "loc_std"),
        (dict(vel_norm=-0.5), "vel_norm"),
        (dict(interaction_strength=np.nan), "interaction_strength"),
        (dict(max_force=0.0), "max_force"),
        (dict(random_state="seed"), None),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_charged_nbody(**{"n_samples": 2, "n_steps": 1, "horizon": 1, **kwargs})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_train=0), "n_train"),
        (dict(n_val=-1), "n_val"),
        (dict(n_test=1.5), "n_test"),
        (dict(dt=0.0), "dt"),
    ],
)
def test_splits_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_charged_nbody_splits(**{"n_steps": 1, "horizon": 1, **kwargs})


# ------------------------------------------------------------------------ make_toy_jets
def _momenta(X):
    return X.reshape(len(X), -1, 4)


def _mass(X):
    P = _momenta(X).sum(axis=1)
    return np.sqrt(np.maximum(minkowski(P, P), 0.0))


def test_jets_shapes_dtypes_and_fields():
    X, y = make_toy_jets(11, n_constituents=5, random_state=0)
    assert X.shape == (11, 20) and y.shape == (11,)
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert set(np.unique(y)) <= {0, 1}
    assert np.all(np.isfinite(X))
    assert JETS_FIELDS == {"p": "vector"}
    X, y = make_toy_jets(4, random_state=0)
    assert X.shape == (4, 64)


@pytest.mark.parametrize("gamma_max", [1.0, 2.0, 20.0])
def test_jets_constituents_are_massless_and_future_directed(gamma_max):
    X, _ = make_toy_jets(300, boost_gamma_max=gamma_max, random_state=1)
    p = _momenta(X)
    assert np.all(p[..., 0] > 0)
    assert np.max(np.abs(minkowski(p, p)) / p[..., 0] ** 2) <= 1e-12


def test_jets_boosts_change_energies_not_invariants():
    """Larger boosts raise the energies; the jet mass distribution stays the same."""
    X1, y1 = make_toy_jets(2000, boost_gamma_max=1.0, random_state=2)
    X5, y5 = make_toy_jets(2000, boost_gamma_max=10.0, random_state=2)
    E1, E5 = _momenta(X1)[..., 0].sum(1), _momenta(X5)[..., 0].sum(1)
    assert np.median(E5) > 2.0 * np.median(E1)
    assert E1.min() > 400 * 0.99 and E1.max() < 800 * 1.05
    for label in (0, 1):
        m1, m5 = np.median(_mass(X1)[y1 == label]), np.median(_mass(X5)[y5 == label])
        assert abs(m1 - m5) < 0.05 * m1


def test_jets_determinism_and_seeds():
    a = make_toy_jets(50, random_state=3)
    b = make_toy_jets(50, random_state=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = make_toy_jets(50, random_state=np.random.default_rng(3))
    d = make_toy_jets(50, random_state=np.random.RandomState(3))
    assert not np.array_equal(a[0], make_toy_jets(50, random_state=4)[0])
    assert c[0].shape == d[0].shape == a[0].shape


@pytest.mark.parametrize("n", [1, 2, 101, 1000])
def test_jets_label_balance(n):
    _, y = make_toy_jets(n, n_constituents=4, random_state=5)
    assert y.sum() == n // 2
    if n >= 100:   # shuffled, not sorted
        assert np.any(np.diff(y) > 0) and np.any(np.diff(y) < 0)


def test_jets_constituents_in_invariant_order():
    """Ordered by decreasing <p_i, P>: the same order in every Lorentz frame."""
    X, _ = make_toy_jets(200, boost_gamma_max=5.0, random_state=6)
    p = _momenta(X)
    key = minkowski(p, p.sum(axis=1, keepdims=True))
    assert np.all(np.diff(key, axis=1) <= 1e-9 * np.abs(key).max(axis=1, keepdims=True))


def test_jets_mass_separates_raw_energy_does_not():
    X, y = make_toy_jets(4000, boost_gamma_max=3.0, random_state=7)
    mass = _mass(X)
    assert roc_auc_score(y, mass) > 0.9
    assert 160 < np.median(mass[y == 1]) < 185 and np.median(mass[y == 0]) < 120
    p = _momenta(X)
    for raw in (p[..., 0].sum(axis=1), p[:, 0, 0], p[..., 0].max(axis=1)):
        assert 0.3 < roc_auc_score(y, raw) < 0.7


def test_jets_fast():
    import time

    start = time.perf_counter()
    make_toy_jets(20000, random_state=0)
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_samples=0), "n_samples"),
    (dict(n_samples=2.5), "n_samples"),
    (dict(n_samples=10, n_constituents=2), "n_constituents"),
    (dict(n_samples=10, boost_gamma_max=0.5), "boost_gamma_max"),
    (dict(n_samples=10, boost_gamma_max=np.nan), "boost_gamma_max"),
    (dict(n_samples=10, boost_gamma_max="big"), "boost_gamma_max"),
])
def test_jets_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_toy_jets(**kwargs)
