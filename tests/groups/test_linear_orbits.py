"""GL, SL and Aff on orbit-degenerate inputs: the canonical rows that exact arithmetic
fixes (the chosen rows, and for Aff the last point of the first point field) come out
exactly, so every sample of one orbit gets the same canonical form bit for bit."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor

from mfa_sklearn import (
    FrameAveragingRegressor,
    MinimalFrameCanonicalizer,
    check_equivariance,
    get_group,
)
from mfa_sklearn.testing import apply_group, random_group_element

N = 200


def _clouds(rng, n, d, size=N):
    """Gaussian clouds at random overall scales (log-normal)."""
    return rng.standard_normal((size, n, d)) * rng.lognormal(0.0, 1.0, (size, 1, 1))


def _orbit(group, X, seed):
    """X followed by one randomly moved copy of every sample."""
    return np.concatenate([X, apply_group(group, random_group_element(group, len(X), seed),
                                          X)])


def _distinct(C):
    """Number of bitwise distinct canonical forms (rows of C)."""
    return len({row.tobytes() for row in np.ascontiguousarray(C)})


# One orbit each: d independent rows (GL), d + 1 affinely independent points (Aff).
ORBIT_CASES = [
    ("GL(3)", 3, np.eye(3)),
    ("Aff(3)", 4, np.vstack([np.eye(3), -np.ones((1, 3))])),
    ("Aff(2)", 3, np.vstack([np.eye(2), -np.ones((1, 2))])),
    ("GL(1)", 1, np.eye(1)),
    ("Aff(1)", 2, np.array([[1.0], [-1.0]])),
]


@pytest.mark.parametrize("group, n, expected", ORBIT_CASES)
@pytest.mark.parametrize("round_bits", [None, 40])
def test_one_orbit_one_canonical_form(group, n, expected, round_bits):
    d = get_group(group).d
    X = _orbit(group, _clouds(np.random.default_rng(0), n, d), seed=1)
    C = MinimalFrameCanonicalizer(group, round_bits=round_bits).fit(X).transform(X)
    assert _distinct(C) == 1
    # the chosen rows are e_1 .. e_d (ties resolve by index) and, for Aff, the centred
    # rows sum to zero; +0.0, never -0.0
    np.testing.assert_array_equal(C[0].reshape(n, d), expected)
    assert not np.any(np.signbit(C[0]) & (C[0] == 0))


@pytest.mark.parametrize("group, n, expected", ORBIT_CASES[:3])
@pytest.mark.parametrize("round_bits", [None, 40])
def test_knn_on_one_orbit_is_constant(group, n, expected, round_bits):
    rng = np.random.default_rng(2)
    d = get_group(group).d
    X, y = _clouds(rng, n, d), rng.standard_normal(N)
    model = FrameAveragingRegressor(KNeighborsRegressor(3), group=group,
                                    round_bits=round_bits).fit(X, y)
    pred = model.predict(_orbit(group, _clouds(rng, n, d), seed=3))
    # every canonical form is the same point, so every prediction is the mean of the
    # same three training targets
    assert np.ptp(pred) == 0.0


def test_sl_canonical_rows_are_exact_multiples_of_unit_vectors():
    """SL(3) with 3 rows: the canonical form is ``diag(s c, c, c)``, ``c = |det|^(1/3)``,
    ``s = sign det``: off-diagonal zeros exact, the diagonal one number per sample."""
    X = _clouds(np.random.default_rng(4), 3, 3)
    C = MinimalFrameCanonicalizer("SL(3)", round_bits=None).fit(X).transform(X)
    C = C.reshape(N, 3, 3)
    det = np.linalg.det(X)
    off = ~np.eye(3, dtype=bool)
    assert np.all(C[:, off] == 0.0) and not np.any(np.signbit(C[:, off]))
    diagonal = np.diagonal(C, axis1=1, axis2=2)
    np.testing.assert_array_equal(diagonal[:, 0], np.sign(det) * diagonal[:, 1])
    np.testing.assert_array_equal(diagonal[:, 1], diagonal[:, 2])
    np.testing.assert_allclose(diagonal[:, 1], np.abs(det) ** (1 / 3), rtol=1e-13)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_sl_one_orbit_one_canonical_form(sign):
    """SL(3) orbits of 3 rows are labelled by det, which the data resolves: with
    ``|det| = 1.5^3`` every sample of the orbit maps to ``diag(1.5 sign, 1.5, 1.5)``
    (with the default rounding: 1.5 is on the rounding grid, so the computed ``c``,
    off in its last bits, rounds to it), and KNN answers the same everywhere."""
    rng = np.random.default_rng(5)
    base = np.diag([1.5 * sign, 1.5, 1.5])
    X = apply_group("SL(3)", random_group_element("SL(3)", N, 6), np.tile(base, (N, 1, 1)))
    C = MinimalFrameCanonicalizer("SL(3)").fit(X).transform(X)
    assert _distinct(C) == 1
    np.testing.assert_array_equal(C[0].reshape(3, 3), base)
    model = FrameAveragingRegressor(KNeighborsRegressor(3), group="SL(3)").fit(
        _clouds(rng, 3, 3), rng.standard_normal(N))
    assert np.ptp(model.predict(X)) == 0.0


@pytest.mark.parametrize("group, fields, n", [
    # rows a | b: one orbit of GL(2); the vector field's rows follow the point field's
    ("GL(2)", {"a": "point", "b": "vector"}, 1),
    # p0, p1 | v0, v1 with p1 - p0, v0, v1 independent: one orbit of Aff(3); the point
    # row that is not chosen is minus the chosen one
    ("Aff(3)", {"p": "point", "v": "vector"}, 2),
])
def test_one_orbit_with_two_frame_fields(group, fields, n):
    d = get_group(group).d
    rng = np.random.default_rng(7)
    X = rng.standard_normal((N, n, 2 * d))
    X = np.concatenate([X, apply_group(group, random_group_element(group, N, 8), X,
                                       fields)])
    can = MinimalFrameCanonicalizer(group, fields=fields, frame_fields=list(fields),
                                    round_bits=None).fit(X)
    C = can.transform(X)
    assert _distinct(C) == 1
    # every canonical coordinate is 0 or +-1: the rows are unit vectors, or minus one
    assert set(np.unique(C[0])) <= {-1.0, 0.0, 1.0}
    assert not np.any(np.signbit(C[0]) & (C[0] == 0))


@pytest.mark.parametrize("group, n", [("GL(3)", 8), ("Aff(3)", 10), ("SL(3)", 7)])
def test_only_the_rows_fixed_by_the_frame_are_snapped(group, n):
    """More rows than the orbit needs: the other rows are data and stay as computed;
    the snapped rows move by no more than the rounding level."""
    G = get_group(group)
    X = _clouds(np.random.default_rng(9), n, G.d)
    frame = G.frame(X)
    raw = frame.to_canonical(X, "point")
    snapped = frame.snap(raw.copy())
    changed = np.any(snapped != raw, axis=-1)[:, 0]            # (B, n) rows touched
    touched_per_sample = changed.sum(axis=1)
    assert touched_per_sample.max() <= G.d
    assert touched_per_sample.sum() > 0
    # the touched rows are unit vectors (times |det|^(1/d) for SL), within rounding
    scale = np.abs(np.linalg.det(frame.H[:, 0])) ** (1 / G.d) if G.kind == "SL" else 1.0
    diff = np.abs(snapped - raw)[:, 0].max(axis=(1, 2))
    assert np.all(diff <= 1e-12 * np.maximum(1.0, scale))
    for b, i in zip(*np.nonzero(changed)):
        row = snapped[b, 0, i]
        assert np.count_nonzero(row) == 1


def test_snap_leaves_rows_the_frame_does_not_fix():
    """Fed rows that are not the frame's own (the chosen rows moved by 1e-6), the snap
    changes nothing: the exact values replace only rows within the rounding level."""
    G = get_group("GL(3)")
    X = _clouds(np.random.default_rng(10), 3, 3)
    frame = G.frame(X)
    moved = X + 1e-6 * np.abs(X).max()
    canon = frame.to_canonical(moved, "point")
    np.testing.assert_array_equal(frame.snap(canon.copy()), canon)
    # and the frame's own rows do snap, to the identity
    own = frame.snap(frame.to_canonical(X, "point"))
    np.testing.assert_array_equal(own[:, 0], np.broadcast_to(np.eye(3), (N, 3, 3)))


@pytest.mark.parametrize("group, n", [("GL(3)", 8), ("SL(3)", 8), ("Aff(3)", 10),
                                      ("Aff(2)", 6)])
def test_generic_clouds_stay_equivariant(group, n):
    rng = np.random.default_rng(11)
    d = get_group(group).d
    X = _clouds(rng, n, d, size=100).reshape(100, -1)
    Y = X + 0.1 * rng.standard_normal(X.shape)
    model = FrameAveragingRegressor(Ridge(1e-3), group=group, target="point",
                                    round_bits=None).fit(X, Y)
    result = check_equivariance(model, group, X, random_state=12)
    assert result["max_error"] < 1e-9


def test_torch_canonical_rows_exact_with_gradients():
    torch = pytest.importorskip("torch")
    from mfa_sklearn.torch import FrameAveraged

    X = torch.tensor(_clouds(np.random.default_rng(13), 4, 3, size=50), requires_grad=True)
    fa = FrameAveraged(torch.nn.Identity(), group="Aff(3)")
    Xc, _ = fa.canonicalize(X)
    expected = torch.tensor(np.vstack([np.eye(3), -np.ones((1, 3))]), dtype=Xc.dtype)
    assert torch.equal(Xc[:, 0], expected.expand(50, 4, 3))
    # the canonical form is constant in X: its gradient is exactly zero
    (Xc ** 2).sum().backward()
    assert torch.equal(X.grad, torch.zeros_like(X))
