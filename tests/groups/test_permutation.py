"""S_n and S_n x G frames: the test protocol of tests/groups/__init__.py, symmetric
inputs in particular.

Every equivariance test wraps a deliberately non-equivariant backbone (a fixed-seed tanh
MLP on the flattened canonical input: it mixes rows, so it is neither permutation- nor
G-equivariant), applies an independent random permutation and random G element per
sample, ``P_sigma x T + b``, and compares ``g.F(x)`` with ``F(g.x)``. S_n alone is exact
(error == 0); products are asserted at 1e-10 (1e-9 Lorentz, 1e-5 float32 input), each
with a control showing the bare backbone is O(1) off.
"""

import math
import sys
import warnings

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeRegressor

from mfa_sklearn import FrameAveragingRegressor, MinimalFrameCanonicalizer, check_equivariance
from mfa_sklearn.datasets import NBODY_FIELDS, make_charged_nbody
from mfa_sklearn.exceptions import (
    FrameTooLargeError,
    GroupNotFoundError,
    LabelingBackendWarning,
    LayoutError,
    MissingDependencyError,
    NonFiniteInputError,
)
from mfa_sklearn.groups import PermutationGroup, PermutationProductGroup, get_group
from mfa_sklearn.testing import assert_equivariant
from tests._helpers import (
    CONTROL,
    CountingRegressor,
    RowBackbone,
    assert_frame_equivariant,
    cube_vertices,
    frame_averaged,
)

TOL64 = 1e-10
TOL_LORENTZ = 1e-9
TOL32 = 1e-5
PRODUCTS = ["S_n x O(3)", "S_n x SO(3)", "S_n x E(3)", "S_n x SE(3)",
            "S_n x O(1,3)", "S_n x SO(1,3)"]


# --------------------------------------------------------------------------- helpers
def check(G, fields, out_kind, *, tol=TOL64, g=None, **kwargs):
    """Assert the equivariance of the per-row outputs (of kind ``out_kind``) and the
    invariant, in the input's dtype, and an O(1) control (see
    ``assert_frame_equivariant``); return the frame and the two errors."""
    by_kind = {kind: [a for a, k in fields if k == kind] for kind in ("point", "vector",
                                                                      "scalar")}
    width_out = G.d if (out_kind != "scalar" and G.d is not None) else 2
    checked = assert_frame_equivariant(G, by_kind["point"], by_kind["vector"],
                                       scalars=by_kind["scalar"], bound=tol,
                                       outputs={out_kind: width_out}, element=g, **kwargs)
    assert all(out.dtype == fields[0][0].dtype for out in checked.outputs.values())
    return checked.frame, checked.errors[out_kind], checked.errors["invariant"]


def octahedron():
    return np.concatenate([np.eye(3), -np.eye(3)])


def tetrahedron():
    return np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float)


def square():
    return np.array([[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]], float)


def placed(shape, B, rng, scale=2.0):
    """B copies of a shape, each randomly rotated, scaled, shifted and permuted."""
    G = get_group("S_n x E(3)")
    g = G.random_element(B, rng)
    x = np.broadcast_to(shape * scale, (B,) + shape.shape)
    return G.act(g, x, "point")


# ----------------------------------------------------------------------------- S_n
def test_registry_names():
    assert get_group("S_n") == PermutationGroup()
    for text in ("S_n x E(3)", "S_n × E(3)", "s_n x e(3)", "Sn*E(3)", "  S_n  x  E(3) "):
        G = get_group(text)
        assert isinstance(G, PermutationProductGroup) and G.name == "S_n x E(3)"
    assert get_group("S_n x SO(1,3)").name == "S_n x SO(1,3)"
    assert get_group("S_n x O(3)") != get_group("S_n x SO(3)")
    for bad in ("S_n x U(3)", "S_n x GL(3)", "S_n x", "S_m"):
        with pytest.raises(GroupNotFoundError):
            get_group(bad)


@pytest.mark.parametrize("out_kind", ["scalar", "point"])
def test_sn_exact_with_ties(out_kind):
    """Integer-valued rows (many exact ties): error exactly 0, sizes prod m_k!."""
    G = get_group("S_n")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (300, 7, 2)).astype(np.float64)
    s = rng.integers(0, 2, (300, 7, 1)).astype(np.float64)
    f, e_rows, e_inv = check(G, [(x, "point"), (s, "scalar")], out_kind)
    assert e_rows == 0 and e_inv == 0
    keys = np.concatenate([x, s], axis=2)
    for b in range(20):
        _, counts = np.unique(keys[b], axis=0, return_counts=True)
        assert f.size[b] == np.prod([math.factorial(c) for c in counts])
    assert f.n_calls == 1


def test_sn_exact_generic_and_float32():
    G = get_group("S_n")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 9, 3))
    f, e_rows, e_inv = check(G, [(x, "scalar")], "scalar")
    assert e_rows == 0 and e_inv == 0 and np.all(f.size == 1)
    x32 = x.astype(np.float32)
    _, e_rows, e_inv = check(G, [(x32, "scalar")], "scalar")
    assert e_rows == 0 and e_inv == 0


def test_sn_canonical_order_and_signed_zero():
    """The order is lexicographic (first column first); -0.0 ties with 0.0."""
    G = get_group("S_n")
    x = np.array([[[1.0, 0.0], [0.0, 5.0], [1.0, -1.0], [0.0, 2.0]]])
    f = G.frame(x)
    np.testing.assert_array_equal(f.to_canonical(x, "scalar")[0, 0],
                                  [[0, 2], [0, 5], [1, -1], [1, 0]])
    z = np.array([[[0.0], [-0.0], [1.0]]])
    f = G.frame(z)
    assert f.size[0] == 2.0
    canon = f.to_canonical(z, "scalar")
    assert not np.any(np.signbit(canon))
    y = np.array([[[[1.0], [3.0], [7.0]]]])   # canonical output, ties averaged
    np.testing.assert_array_equal(f.from_canonical(y, "scalar")[0, :, 0], [2.0, 2.0, 7.0])


def test_sn_no_enumeration_large_ties():
    """100 equal rows: size 100! reported as a float, one call, no blow-up."""
    f = get_group("S_n").frame(np.zeros((2, 100, 1)))
    assert f.size[0] == pytest.approx(math.factorial(100), rel=1e-12)
    assert f.perms.shape == (2, 1, 100)


def test_sn_estimator_and_layout():
    rng = np.random.default_rng(2)
    X = rng.integers(0, 4, (120, 6 * 3)).astype(float)
    y = X.reshape(120, 6, 3).sum(axis=2) ** 2 + np.arange(6)
    fields = {"x": ("scalar", 3)}
    reg = FrameAveragingRegressor(LinearRegression(), group="S_n", fields=fields,
                                  target=("scalar", 1)).fit(X, y)
    assert_equivariant(reg, "S_n", X, random_state=0, rtol=0)
    # invariant target
    reg = FrameAveragingRegressor(KNeighborsRegressor(3), group="S_n", fields=fields)
    reg.fit(X, y.sum(axis=1))
    assert_equivariant(reg, "S_n", X, random_state=1, rtol=0)
    # 3-D input: each whole row is one field by default
    reg3 = FrameAveragingRegressor(LinearRegression(), group="S_n").fit(
        X.reshape(120, 6, 3), y.sum(axis=1))
    assert reg3.layout_.n_rows == 6
    # point/vector fields need a width
    with pytest.raises(LayoutError, match="explicit width"):
        FrameAveragingRegressor(group="S_n", fields={"x": "point"}).fit(X, y)


def test_bad_input():
    G, P = get_group("S_n"), get_group("S_n x O(3)")
    x = np.ones((4, 5, 3))
    bad = x.copy()
    bad[2, 1, 0] = np.nan
    for group in (G, P):
        with pytest.raises(NonFiniteInputError, match=r"1 sample\(s\) \(first: \[2\]\)"):
            group.frame(bad)
    huge = x.copy()
    huge[3, 0, 2] = np.inf
    with pytest.raises(NonFiniteInputError, match=r"\(first: \[3\]\)"):
        G.frame(x, scalars=[huge])
    np.testing.assert_array_equal(G.frame(np.full((2, 3, 1), 1e308)).perm, [[0, 1, 2]] * 2)
    with pytest.raises(ValueError, match="width 3"):
        P.frame(np.ones((4, 5, 2)))
    with pytest.raises(ValueError, match="same number"):
        P.frame(x, scalars=[np.ones((4, 6, 1))])
    with pytest.raises(ValueError, match="same number"):
        G.frame(x, scalars=[np.ones((3, 5, 1))])
    with pytest.raises(ValueError, match="shape"):
        G.frame(np.ones((4, 5)))
    with pytest.raises(ValueError, match="complex"):
        P.frame(x + 1j)


# --------------------------------------------------------------------------- S_n x G
@pytest.mark.parametrize("name", PRODUCTS)
@pytest.mark.parametrize("out_kind", ["point", "vector", "scalar"])
def test_product_generic(name, out_kind):
    G = get_group(name)
    rng = np.random.default_rng(3)
    d = G.d
    x = rng.standard_normal((200, 8, d)) + 2.0 * rng.standard_normal((200, 1, d))
    v = rng.standard_normal((200, 8, d))
    q = rng.choice([-1.0, 1.0], (200, 8, 1))
    tol = TOL_LORENTZ if "1," in name else TOL64
    f, _, _ = check(G, [(x, "point"), (v, "vector"), (q, "scalar")], out_kind, tol=tol)
    assert np.all(f.labeling_path == "fast") and np.all(f.size == 1)


@pytest.mark.parametrize("name", ["S_n x O(3)", "S_n x SE(3)"])
def test_product_float32(name):
    G = get_group(name)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((200, 6, 3)).astype(np.float32)
    check(G, [(x, "point")], "point", tol=TOL32)


SYMMETRIC = [("octahedron", octahedron, 48, 24), ("cube", cube_vertices, 48, 24),
             ("tetrahedron", tetrahedron, 24, 12), ("square", square, 8, 8)]


@pytest.mark.parametrize("shape_name,shape,size_o,size_so", SYMMETRIC)
@pytest.mark.parametrize("family", ["O", "SO", "E", "SE"])
def test_stabilizer_sizes(shape_name, shape, size_o, size_so, family):
    """Point groups found by nauty, one backbone call, exact equivariance."""
    pytest.importorskip("pynauty")
    G = get_group(f"S_n x {family}(3)")
    rng = np.random.default_rng(5)
    pts = shape()
    if family in ("E", "SE"):
        x = placed(pts, 20, rng)
    else:  # centred, randomly rotated and permuted
        P = get_group("S_n x O(3)")
        x = P.act(P.random_element(20, rng), np.broadcast_to(pts, (20,) + pts.shape))
    expected = size_o if family in ("O", "E") else size_so
    backbone = RowBackbone(len(pts), 3, {"point": 3}, seed=1)
    _, f = frame_averaged(G, backbone, x)
    assert backbone.calls == 1 and f.n_calls == 1
    np.testing.assert_array_equal(f.size, expected)
    assert np.all(f.labeling_path == "search")
    check(G, [(x, "point")], "point", seed=2)
    check(G, [(x, "point")], "vector", seed=3)


def test_stabilizer_output_is_symmetric():
    """On the octahedron the O(3) output is invariant under its 48 symmetries: the
    vector output of row i is a multiple of e_i's direction (the Reynolds projection)."""
    pytest.importorskip("pynauty")
    G = get_group("S_n x O(3)")
    x = octahedron()[None]
    outputs, _ = frame_averaged(G, RowBackbone(6, 3, {"vector": 3}, seed=7), x)
    out = outputs["vector"]
    along = np.einsum("bni,ni->bn", out, octahedron())
    np.testing.assert_allclose(out[0], along[0][:, None] * octahedron(), atol=1e-12)
    assert np.all(np.abs(along) > 1e-3)


def test_twins_and_ties():
    """Duplicated rows in generic clouds: twins collapse, their outputs are averaged."""
    pytest.importorskip("pynauty")
    G = get_group("S_n x E(3)")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((50, 6, 3))
    x[:, 5] = x[:, 0]
    x[:, 4] = x[:, 1]
    f, _, _ = check(G, [(x, "point")], "point")
    np.testing.assert_array_equal(f.size, 4.0)
    assert np.all(f.labeling_path == "search")
    out = frame_averaged(G, RowBackbone(6, 3, {"point": 3}), x)[0]["point"]
    np.testing.assert_allclose(out[:, 5], out[:, 0], atol=1e-12)
    # equal positions but different charges are not twins
    q = np.zeros((50, 6, 1))
    q[:, 5] = 1.0
    q[:, 4] = 1.0
    f, _, _ = check(G, [(x, "point"), (q, "scalar")], "point")
    np.testing.assert_array_equal(f.size, 1.0)


def test_near_ties():
    """Symmetric clouds perturbed well above the tie tolerance take the fast path;
    perturbed at rounding level they are symmetric (the octahedron's 48 elements)."""
    pytest.importorskip("pynauty")
    G = get_group("S_n x O(3)")
    rng = np.random.default_rng(8)
    base = np.broadcast_to(octahedron(), (30, 6, 3))
    x = base + 1e-3 * rng.standard_normal((30, 6, 3))
    f, _, _ = check(G, [(x, "point")], "point")
    assert np.all(f.labeling_path == "fast")
    x = base + 1e-12 * rng.standard_normal((30, 6, 3))
    f, _, _ = check(G, [(x, "point")], "point")
    assert np.all(f.labeling_path == "search") and np.all(f.size == 48)


def lightlike_octahedron():
    """A timelike row plus six lightlike rows (1, +-e_i): octahedral in O(1,3)."""
    return np.concatenate([[[3.0, 0.0, 0.0, 0.0]],
                           np.concatenate([np.ones((6, 1)), octahedron()], axis=1)])


@pytest.mark.parametrize("name", PRODUCTS)
@pytest.mark.parametrize("noise", [1e-8, 1e-7, 1e-6])
def test_below_the_tie_tolerance_is_exact(name, noise):
    """Clouds off their symmetry by less than the tie tolerance (6e-6 of the scale in
    float64) but far more than rounding: several candidates are kept, whose canonical
    inputs differ by the perturbation. The canonical input is their mean, which
    depends on the kept set only, so the frame average is exact (the first
    candidate's input alone was off by the perturbation), also for a backbone that is
    discontinuous there (a decision tree), and the canonical input is invariant."""
    pytest.importorskip("pynauty")
    G = get_group(name)
    shape = lightlike_octahedron() if G.metric is not None else octahedron()
    rng = np.random.default_rng(3)
    x = np.broadcast_to(shape, (30,) + shape.shape) + noise * rng.standard_normal(
        (30,) + shape.shape)
    x = G.act(G.random_element(30, 4), x)
    tol = TOL_LORENTZ if G.metric is not None else TOL64   # boosts amplify rounding
    f, _, _ = check(G, [(x, "point")], "point", tol=tol)
    assert np.any(f.size > 1)
    X = x.reshape(30, -1)
    tree = FrameAveragingRegressor(DecisionTreeRegressor(random_state=0), group=name,
                                   target="point").fit(X, rng.standard_normal(X.shape))
    assert_equivariant(tree, name, X, random_state=5, rtol=tol)
    canonical = MinimalFrameCanonicalizer(name).fit(X)
    gx = G.act(G.random_element(30, 6), x)
    np.testing.assert_allclose(canonical.transform(gx.reshape(30, -1)),
                               canonical.transform(X), rtol=0, atol=tol)


def _square_with_normal_velocities():
    square = np.array([[1.0, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]])
    return square, np.tile([0.0, 0.0, 1.0], (4, 1))


def _line_with_normal_velocities():
    line = np.outer([-1.5, -0.5, 0.5, 1.5], [1.0, 0, 0])
    return line, np.tile([0.0, 1.0, 0.0], (4, 1))


def _lorentz_plane_with_normal_vectors():
    return (np.array([[2.0, 1, 0, 0], [2, -1, 0, 0], [3, 0, 0, 0]]),
            np.tile([0.0, 0.0, 1.0, 0.0], (3, 1)))


@pytest.mark.parametrize("name,shape", [
    ("S_n x O(3)", _square_with_normal_velocities),
    ("S_n x E(3)", _square_with_normal_velocities),
    ("S_n x SO(3)", _line_with_normal_velocities),
    ("S_n x SE(3)", _line_with_normal_velocities),
    ("S_n x O(1,3)", _lorentz_plane_with_normal_vectors),
    ("S_n x SO(1,3)", _lorentz_plane_with_normal_vectors)])
def test_a_field_outside_the_frames_span_keeps_every_stabilizer_element(name, shape):
    """A symmetric cloud spanning fewer than d directions, with a second field normal to
    them that does not define the frame (out-of-plane velocities): that field's
    canonical coordinates are rounding noise, which must not choose among the
    stabilizer's elements (they were dropped for some g: a constant non-symmetric
    output off by O(1))."""
    pytest.importorskip("pynauty")
    rows, normal = shape()
    lorentz = get_group(name).metric is not None
    fields = {"p": "vector", "q": "vector"} if lorentz else {"pos": "point", "vel": "vector"}
    X = np.concatenate([rows.ravel(), normal.ravel()])[None]
    constant = np.random.default_rng(5).standard_normal(rows.size)
    model = FrameAveragingRegressor(DummyRegressor(strategy="constant", constant=constant),
                                    group=name, fields=fields,
                                    target="vector" if lorentz else "point")
    model.fit(X, constant[None])
    size = model.frame_diagnostics(X)["frame_size"][0]
    assert size > 1
    for seed in range(6):
        assert_equivariant(model, name, X, random_state=seed,
                           rtol=TOL_LORENTZ if lorentz else TOL64)


@pytest.mark.parametrize("name,size", [("S_n x O(1,3)", 48), ("S_n x SO(1,3)", 24)])
def test_lorentz_symmetric(name, size):
    """A timelike row plus six lightlike rows (1, +-e_i), randomly boosted: the
    octahedral symmetry is found in the Minkowski Gram graph."""
    pytest.importorskip("pynauty")
    G = get_group(name)
    x = G.act(G.random_element(20, 0), np.broadcast_to(lightlike_octahedron(), (20, 7, 4)))
    f, _, _ = check(G, [(x, "point")], "point", tol=TOL_LORENTZ)
    np.testing.assert_array_equal(f.size, size)


def test_frame_too_large():
    pytest.importorskip("pynauty")
    G = PermutationProductGroup(get_group("O(3)"), max_frame_size=10)
    with pytest.raises(FrameTooLargeError, match="max_frame_size=10"):
        G.frame(octahedron()[None])


def test_missing_pynauty_message(monkeypatch):
    """Without pynauty, symmetric samples raise MissingDependencyError (an ImportError)
    naming the extra; generic samples do not need it."""
    monkeypatch.setitem(sys.modules, "pynauty", None)
    G = get_group("S_n x O(3)")
    rng = np.random.default_rng(9)
    G.frame(rng.standard_normal((5, 6, 3)))
    x = np.concatenate([rng.standard_normal((3, 6, 3)), octahedron()[None]])
    with pytest.raises(MissingDependencyError,
                       match=r"pip install 'mfa_sklearn\[nauty\]'") as info:
        G.frame(x)
    assert isinstance(info.value, ImportError)
    assert "first: [3]" in str(info.value)


def test_frame_concat_and_slice():
    pytest.importorskip("pynauty")
    G = get_group("S_n x SE(3)")
    rng = np.random.default_rng(10)
    a = G.frame(rng.standard_normal((4, 6, 3)))
    b = G.frame(placed(octahedron(), 3, rng))
    both = type(a).concat([a, b])
    assert both.n_samples == 7 and both.perms.shape[1] == b.perms.shape[1]
    np.testing.assert_array_equal(both.size, [1, 1, 1, 1, 24, 24, 24])
    np.testing.assert_array_equal(both[4:].perm, b.perm)
    assert set(both.diagnostics) >= {"rank", "frame_size", "labeling_path",
                                     "n_candidate_groups"}


# ------------------------------------------------------------------- estimator level
@pytest.fixture(scope="module")
def nbody():
    X, y = make_charged_nbody(200, n_steps=200, horizon=200, random_state=0)
    return X, y


@pytest.mark.parametrize("inner", [LinearRegression(), KNeighborsRegressor(3)])
@pytest.mark.parametrize("name", ["S_n x E(3)", "S_n x SE(3)", "S_n x O(3)"])
def test_nbody_regressor(nbody, inner, name):
    X, y = nbody
    reg = FrameAveragingRegressor(inner, group=name, fields=NBODY_FIELDS,
                                  target="point").fit(X, y)
    assert_equivariant(reg, name, X[:100], random_state=0, rtol=TOL64)
    bare = FrameAveragingRegressor(inner, fields=NBODY_FIELDS, target="point").fit(X, y)
    assert check_equivariance(bare, name, X[:100], random_state=0)["max_error"] >= CONTROL


def test_symmetric_clouds_one_inner_call():
    pytest.importorskip("pynauty")
    rng = np.random.default_rng(11)
    X = np.concatenate([placed(octahedron(), 5, rng), rng.standard_normal((5, 6, 3))])
    X = X.reshape(10, -1)
    y = X + 0.1 * rng.standard_normal(X.shape)
    reg = FrameAveragingRegressor(CountingRegressor(LinearRegression()), group="S_n x E(3)",
                                  target="point").fit(X, y)
    reg.estimator_.predict_rows_.clear()
    reg.predict(X)
    assert reg.estimator_.predict_rows_ == [10]
    np.testing.assert_array_equal(reg.frame_diagnostics(X)["frame_size"], [48] * 5 + [1] * 5)
    assert_equivariant(reg, "S_n x E(3)", X, random_state=2, rtol=TOL64)


def test_grid_search_over_groups(nbody):
    X, y = nbody
    reg = FrameAveragingRegressor(KNeighborsRegressor(), fields=NBODY_FIELDS, target="point")
    search = GridSearchCV(reg, {"group": [None, "E(3)", "S_n x E(3)"]}, cv=3).fit(X, y)
    assert search.best_params_["group"] in (None, "E(3)", "S_n x E(3)")
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


@pytest.mark.parametrize("group", ["S_n x E(3)", "S_n x O(3)", "S_n x SO(1,3)"])
def test_targets_on_other_rows_feel_the_geometric_factor_only(group):
    # a centroid, a dipole or a total momentum: one row that permutations leave alone
    # and G moves; generic and symmetric samples (stabilizers averaged), padded ones
    rng = np.random.default_rng(3)
    G = get_group(group)
    lorentz = G.metric is not None
    n, d = 8, G.d
    x = rng.normal(size=(40, n, d))
    if lorentz:
        x[..., 0] = np.abs(x[..., 0]) + np.linalg.norm(x[..., 1:], axis=-1) + 0.5
    else:
        x[:10] = cube_vertices() * rng.uniform(0.5, 2.0, (10, 1, 1))   # symmetric
        x[30:, 6:] = np.nan                                            # padded
    fields = {"p": "vector"} if lorentz else None
    kind = "vector" if lorentz else "point"
    y = np.nansum(x, axis=1) if lorentz else np.nanmean(x, axis=1)
    X = x.reshape(40, -1)
    reg = FrameAveragingRegressor(KNeighborsRegressor(3), group=group, fields=fields,
                                  target=kind).fit(X, y)
    assert reg.predict(X).shape == (40, d)
    assert_equivariant(reg, group, X, fields=fields, random_state=1, rtol=1e-12)
    control = FrameAveragingRegressor(KNeighborsRegressor(3), group=None).fit(
        np.nan_to_num(X), y)
    assert check_equivariance(control, group, np.nan_to_num(X), fields=fields,
                              random_state=1)["max_error"] > CONTROL
    # several rows (4 points of a sample, not X's 8): check_equivariance moves them by G
    # alone, as the model does, and does not permute them
    if not lorentz:
        four = np.nan_to_num(x[:, :4]).reshape(40, -1)
        reg.fit(X, four)
        assert_equivariant(reg, group, X, random_state=2, rtol=1e-12)


def test_labeling_backend_is_recorded_and_a_change_warns(nbody):
    X, y = nbody
    reg = FrameAveragingRegressor(KNeighborsRegressor(), group="S_n x E(3)",
                                  fields=NBODY_FIELDS, target="point").fit(X, y)
    canon = MinimalFrameCanonicalizer("S_n x E(3)", fields=NBODY_FIELDS).fit(X)
    assert reg.labeling_backend_ == canon.labeling_backend_
    assert reg.labeling_backend_.startswith(("pynauty", "none"))
    other = FrameAveragingRegressor(KNeighborsRegressor(), group="E(3)",
                                    fields=NBODY_FIELDS, target="point").fit(X, y)
    assert other.labeling_backend_ is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.predict(X)                                  # same backend: silent
    for est in (reg, canon):
        est.labeling_backend_ = "pynauty 0.0 (nauty0)"
        with pytest.warns(LabelingBackendWarning, match="pynauty 0.0"):
            est.predict(X) if est is reg else est.transform(X)


@pytest.mark.parametrize("lorentz", [False, True])
def test_gram_blocks_are_exact_under_row_permutations(lorentz):
    """The invariant graph quantises these inner products, so they must not depend on
    where a row sits: permuting rows permutes K bit for bit, and K is exactly symmetric
    (BLAS matmul kernels round by position and fail this)."""
    from mfa_sklearn.groups.permutation._invariant_graph import _gram_blocks
    rng = np.random.default_rng(40)
    B, n, k, d = 500, 9, 2, 4
    Z = rng.normal(size=(B, n, k, d)) * 10.0 ** rng.uniform(-8, 8, size=(B, 1, 1, 1))
    K = _gram_blocks(Z, lorentz=lorentz)
    eta = np.array([1.0, -1.0, -1.0, -1.0]) if lorentz else np.ones(d)
    error = np.abs(K - np.einsum("bipx,bjqx->bijpq", Z * eta, Z)).max(axis=(1, 2, 3, 4))
    assert np.all(error <= 1e-14 * np.abs(K).max(axis=(1, 2, 3, 4)))
    perm = rng.permutation(n)
    assert np.array_equal(_gram_blocks(Z[:, perm], lorentz=lorentz), K[:, perm][:, :, perm])
    assert np.array_equal(K, K.transpose(0, 2, 1, 4, 3))
    # per-row blocks (the vertex colours) are the diagonal of K, bit for bit
    rows = _gram_blocks(Z.reshape(B * n, 1, k, d), lorentz=lorentz).reshape(B, n, k, k)
    assert np.array_equal(rows, K[:, np.arange(n), np.arange(n)])


def test_dense_rank_is_the_lexicographic_rank_with_and_without_first_column_ties():
    from mfa_sklearn.groups.permutation._ranking import dense_rank
    rng = np.random.default_rng(41)
    keys = rng.integers(0, 3, size=(300, 7, 3)).astype(float)   # many ties
    keys[:150] = rng.normal(size=(150, 7, 3))                     # none
    keys[150:200, :, 0] = 1.0                                     # first column all tied
    ranks = dense_rank(keys)           # one batch: tied and untied samples together
    for b in range(len(keys)):
        rows = [tuple(r) for r in keys[b]]
        assert ranks[b].tolist() == [sorted(set(rows)).index(r) for r in rows]


def test_present_order_matches_each_sample_alone_with_ties_and_constant_columns():
    """Padded batches: the present rows in lexicographic order, absent rows last in
    index order, and `distinct` of the present rows alone, whatever columns are equal
    throughout (they are skipped) and whatever the absent rows hold."""
    rng = np.random.default_rng(43)
    B, n = 400, 8
    keys = rng.integers(0, 3, size=(B, n, 4)).astype(float)      # many ties
    keys[:100] = rng.normal(size=(100, n, 4))                     # none
    keys[:, :, 2] = 7.0                                           # equal throughout
    keys[200:, :, 1] = 0.0
    present = rng.random((B, n)) < 0.7
    present[:5] = False                                           # empty samples
    keys[~present] = rng.normal(size=(np.count_nonzero(~present), 4))   # any filler
    _check_present_order(keys, present)
    _check_present_order(np.where(present[:, :, None], 1.0, keys), present)   # all tied


def _check_present_order(keys, present):
    from mfa_sklearn.groups.permutation._ranking import present_order
    rank, order, distinct = present_order(keys, present)
    for b in range(len(keys)):
        inside = np.flatnonzero(present[b])
        rows = [tuple(keys[b, i]) for i in inside]
        m = len(inside)
        assert order[b, m:].tolist() == np.flatnonzero(~present[b]).tolist()
        assert sorted(rows) == [tuple(keys[b, i]) for i in order[b, :m]]
        assert rank[b, inside].tolist() == [sorted(set(rows)).index(r) for r in rows]
        assert bool(distinct[b]) == (len(set(rows)) == m)
