"""Lorentz frames of massive momenta whose rest-frame momenta nearly share a plane: full
rank (no direction dropped, no warning) and exactly equivariant; truly dependent rows
and lightlike rows keep their documented behaviour."""

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from mfa_sklearn import FrameAveragingRegressor, check_equivariance, get_group
from mfa_sklearn.exceptions import FrameDegeneracyWarning
from mfa_sklearn.groups.lorentz import LorentzGroup
from mfa_sklearn.testing import apply_group, random_group_element

TOL = np.sqrt(np.finfo(np.float64).eps)
ETA = np.diag([1.0, -1.0, -1.0, -1.0])
GROUPS = [LorentzGroup(4, special=special, anchor=anchor)
          for special in (False, True) for anchor in ("total", "cumsum", "none")]


def massive(seed, size, n=4):
    """``n`` unit-mass 4-momenta per sample, spatial momenta N(0, 1)."""
    p = np.random.default_rng(seed).standard_normal((size, n, 3))
    return np.concatenate([np.sqrt(1.0 + np.sum(p * p, axis=-1, keepdims=True)), p], axis=-1)


def massless(seed, size, n=4):
    """``n`` future-directed lightlike momenta per sample."""
    p = np.random.default_rng(seed).standard_normal((size, n, 3))
    return np.concatenate([np.linalg.norm(p, axis=-1, keepdims=True), p], axis=-1)


def nearly_planar(X):
    """Samples whose smallest rest-frame direction has a Minkowski square of at most
    ``tol * ||Z eta Z^T||_F`` (Z: the total momentum and the rows), although the rows
    are far from dependent in Euclidean terms: the samples whose weakest direction a
    comparison of Minkowski squares with ``tol * s`` drops."""
    Z = np.concatenate([X.sum(axis=1, keepdims=True), X], axis=1)
    s = np.linalg.norm(Z @ ETA @ np.swapaxes(Z, 1, 2), axis=(1, 2))
    P = Z[:, 0]
    w = P / np.sqrt(np.einsum("bi,ij,bj->b", P, ETA, P))[:, None]
    V = X - np.einsum("bni,ij,bj->bn", X, ETA, w)[..., None] * w[:, None]
    spatial = -(V @ ETA @ np.swapaxes(V, 1, 2))          # rest-frame Euclidean Gram
    weakest = np.linalg.eigvalsh(spatial)[:, 1]           # of the three nonzero ones
    sv = np.linalg.svd(X, compute_uv=False)
    return (weakest <= TOL * s) & (sv[:, -1] > 1e3 * TOL * sv[:, 0])


class TanhMLP(RegressorMixin, BaseEstimator):
    """A fixed random tanh MLP on the flattened canonical input, homogeneous of degree
    one: a deliberately non-equivariant backbone."""

    def fit(self, X, y):
        rng = np.random.default_rng(0)
        self.W1_ = rng.standard_normal((X.shape[1], 32)) / np.sqrt(X.shape[1])
        self.b1_ = rng.standard_normal(32)
        self.W2_ = rng.standard_normal((32, np.shape(y)[1])) / np.sqrt(32)
        return self

    def predict(self, X):
        scale = np.max(np.abs(X), axis=1, keepdims=True)
        return np.tanh(X / scale @ self.W1_ + self.b1_) @ self.W2_ * scale


@pytest.fixture(scope="module")
def batch():
    X = massive(0, 5000)
    hard = nearly_planar(X)
    # the batch holds the samples this module is about
    assert hard.sum() >= 5
    return X, hard


def frames_without_warning(G, X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrameDegeneracyWarning)
        return G.frame(X)


@pytest.mark.parametrize("G", GROUPS, ids=repr)
def test_massive_momenta_get_full_rank_without_warning(G, batch):
    X, _ = batch
    for x in (X, apply_group(G, random_group_element(G, len(X), 1), X)):
        frame = frames_without_warning(G, x)
        assert np.all(frame.rank == 4)
        assert not np.any(frame.projected)
        assert np.all(frame.projection_is_average)
        # eta-orthonormal frame rows, timelike first
        H = frame.H[:, 0]
        np.testing.assert_allclose(H @ ETA @ np.swapaxes(H, 1, 2),
                                   np.broadcast_to(ETA, H.shape), atol=1e-9)
        if G.special:
            np.testing.assert_allclose(np.linalg.det(H), 1.0, atol=1e-9)


@pytest.mark.parametrize("G", GROUPS, ids=repr)
@pytest.mark.parametrize("target", ["invariant", "vector"])
def test_nearly_planar_samples_are_equivariant(G, target, batch):
    X, hard = batch
    Xh = X[hard].reshape(int(hard.sum()), -1)
    width = 1 if target == "invariant" else Xh.shape[1]
    model = FrameAveragingRegressor(TanhMLP(), group=G, target=target, round_bits=None)
    model.fit(Xh, np.zeros((len(Xh), width)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrameDegeneracyWarning)
        for seed in range(3):
            assert check_equivariance(model, G, Xh, random_state=seed)["max_error"] <= 1e-9
    # control: the backbone alone is far from equivariant
    bare = TanhMLP().fit(Xh, np.zeros((len(Xh), width)))
    assert check_equivariance(bare, G, Xh, target=target, random_state=0)["max_error"] > 1e-2


@pytest.mark.parametrize("G", GROUPS, ids=repr)
def test_dependent_rows_keep_their_rank(G):
    """Four massive momenta in the plane p_z = 0 span a timelike 3-space: rank 3, the
    projection is the exact average over the stabilizer O(1), no warning; rows
    independent only to 1e-10 relative count as dependent too."""
    X = massive(2, 200)
    X[:, :, 3] = 0.0
    near = X.copy()
    near[:, 3, 3] = 1e-10 * np.abs(X).max(axis=(1, 2))
    for x in (X, apply_group(G, random_group_element(G, len(X), 3), X), near):
        frame = frames_without_warning(G, x)
        expected = 4 if G.special else 3        # SO(1,3) completes rank d - 1
        assert np.all(frame.rank == 3)
        assert np.all(~frame.projected == (expected == 4))
        assert np.all(frame.projection_is_average)


def test_lightlike_rows_without_anchor_still_warn():
    """Only lightlike rows and anchor "none": no eligible row, rank 0 and the warning;
    the default anchor (the total momentum) gives full rank without one. In a mixed
    batch only the lightlike samples lose their frame vectors."""
    none = LorentzGroup(4, anchor="none")
    X = np.concatenate([massive(4, 50), massless(5, 50)])
    with pytest.warns(FrameDegeneracyWarning, match=r"\[50, 51, 52"):
        frame = none.frame(X)
    assert np.all(frame.rank[:50] == 4) and np.all(frame.rank[50:] == 0)
    np.testing.assert_array_equal(frame.projection_is_average, np.arange(100) < 50)
    total = frames_without_warning(get_group("O(1,3)"), X)
    assert np.all(total.rank == 4)


class IdentityRegressor(RegressorMixin, BaseEstimator):
    """Predicts its input: frame-averaged with a vector target, it maps every sample
    back onto itself unless the frame dropped a direction."""

    def fit(self, X, y):
        return self

    def predict(self, X):
        return X


@pytest.mark.parametrize("G", GROUPS, ids=repr)
def test_nearly_planar_samples_keep_every_direction(G, batch):
    X, hard = batch
    Xh = X[hard].reshape(int(hard.sum()), -1)
    model = FrameAveragingRegressor(IdentityRegressor(), group=G, target="vector",
                                    round_bits=None).fit(Xh, Xh)
    np.testing.assert_allclose(model.predict(Xh), Xh, rtol=0, atol=1e-12 * np.abs(Xh).max())
