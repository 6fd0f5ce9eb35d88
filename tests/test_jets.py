"""make_toy_jets: shapes, physics (massless constituents), determinism, labels, and a
task that an invariant (the jet mass) solves while raw energies do not."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mfa_sklearn.datasets import JETS_FIELDS, make_toy_jets


def _momenta(X):
    return X.reshape(len(X), -1, 4)


def _minkowski(u, v):
    return u[..., 0] * v[..., 0] - np.sum(u[..., 1:] * v[..., 1:], axis=-1)


def _mass(X):
    P = _momenta(X).sum(axis=1)
    return np.sqrt(np.maximum(_minkowski(P, P), 0.0))


def test_shapes_dtypes_and_fields():
    X, y = make_toy_jets(11, n_constituents=5, random_state=0)
    assert X.shape == (11, 20) and y.shape == (11,)
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert set(np.unique(y)) <= {0, 1}
    assert np.all(np.isfinite(X))
    assert JETS_FIELDS == {"p": "vector"}
    X, y = make_toy_jets(4, random_state=0)
    assert X.shape == (4, 64)


@pytest.mark.parametrize("gamma_max", [1.0, 2.0, 20.0])
def test_constituents_are_massless_and_future_directed(gamma_max):
    X, _ = make_toy_jets(300, boost_gamma_max=gamma_max, random_state=1)
    p = _momenta(X)
    assert np.all(p[..., 0] > 0)
    assert np.max(np.abs(_minkowski(p, p)) / p[..., 0] ** 2) <= 1e-12


def test_boosts_change_energies_not_invariants():
    """Larger boosts raise the energies; the jet mass distribution stays the same."""
    X1, y1 = make_toy_jets(2000, boost_gamma_max=1.0, random_state=2)
    X5, y5 = make_toy_jets(2000, boost_gamma_max=10.0, random_state=2)
    E1, E5 = _momenta(X1)[..., 0].sum(1), _momenta(X5)[..., 0].sum(1)
    assert np.median(E5) > 2.0 * np.median(E1)
    assert 400 * 0.99 < E1.min() and E1.max() < 800 * 1.05
    for label in (0, 1):
        m1, m5 = np.median(_mass(X1)[y1 == label]), np.median(_mass(X5)[y5 == label])
        assert abs(m1 - m5) < 0.05 * m1


def test_determinism_and_seeds():
    a = make_toy_jets(50, random_state=3)
    b = make_toy_jets(50, random_state=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = make_toy_jets(50, random_state=np.random.default_rng(3))
    d = make_toy_jets(50, random_state=np.random.RandomState(3))
    assert not np.array_equal(a[0], make_toy_jets(50, random_state=4)[0])
    assert c[0].shape == d[0].shape == a[0].shape


@pytest.mark.parametrize("n", [1, 2, 101, 1000])
def test_label_balance(n):
    _, y = make_toy_jets(n, n_constituents=4, random_state=5)
    assert y.sum() == n // 2
    if n >= 100:   # shuffled, not sorted
        assert np.any(np.diff(y) > 0) and np.any(np.diff(y) < 0)


def test_constituents_in_invariant_order():
    """Ordered by decreasing <p_i, P>: the same order in every Lorentz frame."""
    X, _ = make_toy_jets(200, boost_gamma_max=5.0, random_state=6)
    p = _momenta(X)
    key = _minkowski(p, p.sum(axis=1, keepdims=True))
    assert np.all(np.diff(key, axis=1) <= 1e-9 * np.abs(key).max(axis=1, keepdims=True))


def test_mass_separates_raw_energy_does_not():
    X, y = make_toy_jets(4000, boost_gamma_max=3.0, random_state=7)
    mass = _mass(X)
    assert roc_auc_score(y, mass) > 0.9
    assert 160 < np.median(mass[y == 1]) < 185 and np.median(mass[y == 0]) < 120
    p = _momenta(X)
    for raw in (p[..., 0].sum(axis=1), p[:, 0, 0], p[..., 0].max(axis=1)):
        assert 0.3 < roc_auc_score(y, raw) < 0.7


def test_fast():
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
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_toy_jets(**kwargs)
