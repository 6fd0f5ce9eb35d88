"""Frames of O(1,d-1) and SO(1,d-1): the test protocol of tests/groups/__init__.py.

Every equivariance test wraps a deliberately non-equivariant backbone (a fixed-seed MLP
with biases and tanh on the flattened canonical input) as

    F(x) = from_canonical(backbone(to_canonical(x)))

draws one random Lorentz transformation per sample (a boost of speed below
``beta_max``, a rotation, parity and time reversal; see the protocol) and asserts the
relative error

    e_max = max |g.F(x) - F(g.x)| / max |F(g.x)|

against the bounds of the protocol's tolerances: 1e-9 in float64 for gamma <= 7.1, 1e-7 for
gamma ~ 70, 1e-3 for float32 input. Each such test is paired with a control showing
that the bare backbone is far from equivariant (>= 1e-2), so the assertion can fail.

Set MFA_PRINT_ERRORS=1 and run with ``-s`` to print the largest error per case.
"""

import math
import pickle
import warnings

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mfa_sklearn import FrameAveragingClassifier, FrameAveragingRegressor, check_equivariance
from mfa_sklearn.exceptions import FrameDegeneracyWarning, NonFiniteInputError
from mfa_sklearn.groups import get_group
from mfa_sklearn.groups.lorentz import LorentzFrame, LorentzGroup
from mfa_sklearn.testing import assert_equivariant
from tests._helpers import (
    CONTROL,
    H0,
    RowBackbone,
    assert_frame_equivariant,
    frame_averaged,
    minkowski,
    record_error,
)

TOL64 = 1e-9           # protocol tolerance, gamma <= 7.1
TOL_STRESS = 1e-7      # protocol tolerance, gamma <= 100
TOL32 = 1e-3           # protocol tolerance, float32 input, gamma <= 7.1
NAMES = ("O(1,3)", "SO(1,3)")
SMALL_NAMES = ("O(1,1)", "SO(1,1)", "O(1,2)", "SO(1,2)")
ANCHORS = ("total", "cumsum", "none")


# --------------------------------------------------------------------------- helpers
def eta(d):
    return np.diag([1.0] + [-1.0] * (d - 1))


def group(name, anchor="total"):
    G = get_group(name)
    return G if anchor == "total" else LorentzGroup(G.d, special=G.special, anchor=anchor)


def check_equivariant(G, x, *, tol=TOL64, beta_max=0.99, **kwargs):
    """Assert e_max <= tol for the vector and invariant outputs of F on the momenta x
    (boosts of speed below ``beta_max``) and an O(1) control (see
    ``assert_frame_equivariant``); return the frame of x and F(x)."""
    checked = assert_frame_equivariant(G, vectors=x, bound=tol, outputs={"vector": G.d},
                                       draw={"beta_max": beta_max}, **kwargs)
    return checked.frame, checked.outputs


def mixed(rng, B, n, d):
    """Gaussian rows, time scaled up: timelike, spacelike and (rarely) near-null rows."""
    x = rng.standard_normal((B, n, d))
    x[..., 0] *= 1.5
    return x


def timelike(rng, B, n, d):
    """Future-directed massive rows: masses in [0.5, 2], momenta N(0, 1)."""
    p = rng.standard_normal((B, n, d - 1))
    mass = rng.uniform(0.5, 2.0, (B, n, 1))
    return np.concatenate([np.sqrt(mass ** 2 + np.sum(p ** 2, -1, keepdims=True)), p], -1)


def lightlike(rng, B, n, d):
    """Future-directed massless rows E = |p| (a toy jet: momenta around one axis)."""
    p = rng.standard_normal((B, n, d - 1)) + 2.0 * rng.standard_normal((B, 1, d - 1))
    return np.concatenate([np.linalg.norm(p, axis=-1, keepdims=True), p], axis=-1)


def check_eta_orthonormal(f, d, atol=1e-12):
    """H eta H^T = eta on the occupied slots, zero rows elsewhere."""
    H = H0(f)
    G = H @ eta(d) @ np.swapaxes(H, 1, 2)
    occupied = np.any(H != 0.0, axis=2)                          # (B, d)
    expected = eta(d)[None] * (occupied[:, :, None] & occupied[:, None, :])
    np.testing.assert_allclose(G, expected, rtol=0, atol=atol)
    return occupied


# ------------------------------------------------------------------ generic equivariance
@pytest.mark.parametrize("rule", ["pivoted", "first"])
@pytest.mark.parametrize("anchor", ANCHORS)
@pytest.mark.parametrize("name", NAMES + SMALL_NAMES)
def test_generic_equivariance(name, anchor, rule):
    G = group(name, anchor)
    d = G.d
    rng = np.random.default_rng(d + len(anchor))
    x = np.concatenate([mixed(rng, 60, d + 3, d), timelike(rng, 60, d + 3, d)])
    f, _ = check_equivariant(G, x, rule=rule, case=f"{name} generic {anchor} {rule}")
    np.testing.assert_array_equal(f.rank, d)
    assert not np.any(f.projected) and np.all(f.projection_is_average)
    occupied = check_eta_orthonormal(f, d)
    assert np.all(occupied)
    assert isinstance(f, LorentzFrame) and f.n_calls == 1 and f.t is None
    dets = np.linalg.det(H0(f))
    np.testing.assert_allclose(np.abs(dets), 1.0, rtol=0, atol=1e-12)
    if G.special:
        np.testing.assert_allclose(dets, 1.0, rtol=0, atol=1e-12)
    # the canonical input is x eta H^T eta, and y H maps it back to x
    H = H0(f)
    c = f.to_canonical(x, "vector")
    np.testing.assert_allclose(c[:, 0], x @ eta(d) @ np.swapaxes(H, 1, 2) @ eta(d),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(f.from_canonical(c, "vector"), x, rtol=0, atol=1e-11)


@pytest.mark.parametrize("name", NAMES)
def test_large_boosts(name):
    """beta_max = 0.9999 (gamma up to 70.7): e_max <= 1e-7 (the protocol's tolerances)."""
    G = get_group(name)
    rng = np.random.default_rng(5)
    x = np.concatenate([mixed(rng, 60, 7, 4), timelike(rng, 60, 7, 4),
                        lightlike(rng, 60, 16, 4)[:, :7]])
    check_equivariant(G, x, beta_max=0.9999, tol=TOL_STRESS, case=f"{name} gamma~70")
    g = G.random_element(2000, 0, beta_max=0.9999)
    assert np.max(np.abs(g.T[:, 0, 0])) > 30.0


@pytest.mark.parametrize("name", NAMES)
def test_float32_input(name):
    G = get_group(name)
    rng = np.random.default_rng(6)
    x = np.concatenate([mixed(rng, 60, 7, 4), timelike(rng, 60, 7, 4)]).astype(np.float32)
    f, out = check_equivariant(G, x, tol=TOL32, case=f"{name} float32")
    assert f.H.dtype == np.float64
    assert f.to_canonical(x, "vector").dtype == np.float32
    assert out["vector"].dtype == np.float32 and out["invariant"].dtype == np.float32


@pytest.mark.parametrize("anchor", ANCHORS)
@pytest.mark.parametrize("name", NAMES)
def test_pivoted_and_first_both_equivariant(name, anchor):
    """Rows in index order start with two nearly parallel rows: without an anchor
    'first' takes them (bad conditioning), 'pivoted' does not; both maps are
    equivariant with every anchor."""
    G = group(name, anchor)
    rng = np.random.default_rng(7)
    a = timelike(rng, 60, 1, 4)
    x = np.concatenate([a, a + 1e-3 * rng.standard_normal(a.shape),
                        3.0 * mixed(rng, 60, 5, 4)], axis=1)
    f_first = G.frame(x, rule="first")
    f_piv = G.frame(x, rule="pivoted")
    if anchor == "none":
        assert np.median(f_first.conditioning) > 30 * np.median(f_piv.conditioning)
    for rule in ("first", "pivoted"):
        check_equivariant(G, x, rule=rule, case=f"{name} ill-ordered rows {anchor} {rule}")


# ------------------------------------------------------------ null residuals, jets
NULL_ROWS = np.array([[0.0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


@pytest.mark.parametrize("rule", ["pivoted", "first"])
@pytest.mark.parametrize("anchor", ANCHORS)
@pytest.mark.parametrize("name", NAMES)
def test_null_residual_rows(name, anchor, rule):
    """(0,1,0,0), (1,1,1,0), (0,0,1,0), (0,0,0,1): the residual of the second row
    against the first is lightlike; it is skipped and reconsidered, r = 4, no blow-up."""
    G = group(name, anchor)
    x = np.repeat(NULL_ROWS[None], 30, axis=0)
    f = G.frame(x, rule=rule)
    np.testing.assert_array_equal(f.rank, 4)
    check_eta_orthonormal(f, 4)
    assert np.max(np.abs(H0(f))) <= 10.0
    # boosted copies too, and equivariance
    moved = G.act(G.random_element(30, 9), x, "vector")
    fm = G.frame(moved, rule=rule)
    np.testing.assert_array_equal(fm.rank, 4)
    check_eta_orthonormal(fm, 4, atol=1e-10)
    check_equivariant(G, x, rule=rule, case=f"{name} null residuals {anchor} {rule}")


@pytest.mark.parametrize("name", NAMES)
def test_lightlike_jet_without_anchor_warns(name):
    """16 future-directed lightlike rows with anchor 'none': no eligible row, r = 0,
    zero canonical input and a FrameDegeneracyWarning suggesting anchor='total'."""
    G = group(name, "none")
    x = lightlike(np.random.default_rng(9), 20, 16, 4)
    with pytest.warns(FrameDegeneracyWarning, match="anchor='total'"):
        f = G.frame(x)
    np.testing.assert_array_equal(f.rank, 0)
    np.testing.assert_array_equal(f.n_lightlike_rows, 16)
    assert np.all(f.projected) and not np.any(f.projection_is_average)
    assert np.all(f.to_canonical(x, "vector") == 0.0)


@pytest.mark.parametrize("anchor", ["total", "cumsum"])
@pytest.mark.parametrize("name", NAMES)
def test_lightlike_jet_with_anchor(name, anchor):
    """With the total momentum (or cumulative sums) the jet gets a full frame: the
    first frame vector is the rest-frame time axis, r = 4, equivariant."""
    G = group(name, anchor)
    x = lightlike(np.random.default_rng(10), 60, 16, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrameDegeneracyWarning)
        f, _ = check_equivariant(G, x, case=f"{name} lightlike jet {anchor}")
        check_equivariant(G, x, beta_max=0.9999, tol=TOL_STRESS,
                          case=f"{name} lightlike jet {anchor} gamma~70")
    np.testing.assert_array_equal(f.rank, 4)
    np.testing.assert_array_equal(f.n_lightlike_rows, 16)
    check_eta_orthonormal(f, 4)
    if anchor == "total":
        P = x.sum(axis=1)
        mass = np.sqrt(minkowski(P, P))
        np.testing.assert_allclose(H0(f)[:, 0], P / mass[:, None], rtol=1e-12, atol=0)
        # canonical total momentum is (M, 0, 0, 0): the jet rest frame
        c = f.to_canonical(x, "vector")[:, 0].sum(axis=1)
        np.testing.assert_allclose(c[:, 0], mass, rtol=1e-12)
        assert np.max(np.abs(c[:, 1:])) <= 1e-12 * np.max(mass)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("anchor", ANCHORS)
@pytest.mark.parametrize("name", NAMES + SMALL_NAMES)
def test_boosted_collinear_lightlike_rows_get_no_frame(name, anchor, dtype):
    """Massless momenta along one direction, whose total is lightlike too: once boosted
    (or rounded) every Minkowski product is rounding noise. Nothing is eligible below
    the rounding floor: r = 0, zero canonical input and a FrameDegeneracyWarning, for
    the sample and its transformed copy alike. Without the floor the noise was
    normalised into frames of any size: broken symmetry, or canonical inputs that
    overflowed (one sample of three rows of size 1 was enough)."""
    G = group(name, anchor)
    d, B, n = G.d, 40, 6
    rng = np.random.default_rng(12)
    direction = rng.standard_normal((B, 1, d - 1))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    energy = rng.uniform(0.5, 2.0, (B, n, 1))
    x = np.concatenate([energy, energy * direction], axis=-1)
    gx = G.act(G.random_element(B, random_state=13), x)
    for rows in (x, gx):
        rows = rows.astype(dtype)
        with pytest.warns(FrameDegeneracyWarning, match="fewer frame vectors"):
            f = G.frame(rows)
        np.testing.assert_array_equal(f.rank, 0)
        np.testing.assert_array_equal(f.n_lightlike_rows, n)
        assert np.all(f.to_canonical(rows, "vector") == 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_nearly_lightlike_systems_warn_of_their_boost(name):
    """Nearly collinear massless momenta (spread theta) have frames that boost by about
    1 / theta: relative rounding errors of about eps / theta^2. The diagnostic ``boost``
    shows it, and boosts above eps^(-1/4) warn; moderate ones stay silent and exact."""
    G = get_group(name)
    rng = np.random.default_rng(14)

    def jets(spread, B=50, n=6):
        u = np.array([0.0, 0.0, 1.0]) + spread * rng.standard_normal((B, n, 3))
        u /= np.linalg.norm(u, axis=-1, keepdims=True)
        energy = rng.uniform(0.5, 2.0, (B, n, 1))
        return np.concatenate([energy, energy * u], axis=-1)

    x = jets(1e-5)
    with pytest.warns(FrameDegeneracyWarning, match="boost by factors up to"):
        f = G.frame(x)
    assert np.all(f.boost > 1e4) and np.all(f.rank == 4)
    x = jets(0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrameDegeneracyWarning)
        f, _ = check_equivariant(G, x, case=f"{name} jet of spread 0.1")
    assert np.all((f.boost >= 1.0) & (f.boost < 1e3))


def test_toy_jets_dataset_frames():
    """make_toy_jets: SO(1,3) frames of full rank with the default anchor."""
    from mfa_sklearn.datasets import make_toy_jets

    X, _ = make_toy_jets(100, boost_gamma_max=5.0, random_state=0)
    x = X.reshape(100, 16, 4)
    f, _ = check_equivariant(get_group("SO(1,3)"), x, case="SO(1,3) make_toy_jets")
    np.testing.assert_array_equal(f.rank, 4)
    assert np.all(f.n_lightlike_rows == 16)


def test_degenerate_span_warns_even_with_total_anchor():
    """Rows spanning a degenerate plane (a null direction plus a spacelike one): the
    null direction cannot be a frame vector whatever the anchor; r = 1 < rank 2."""
    n = np.array([1.0, 1.0, 0.0, 0.0])
    e2 = np.array([0.0, 0.0, 1.0, 0.0])
    x = np.stack([np.stack([2 * n, e2, n + 3 * e2])] * 5)
    with pytest.warns(FrameDegeneracyWarning, match="degenerate"):
        f = get_group("O(1,3)").frame(x)
    np.testing.assert_array_equal(f.rank, 1)
    assert not np.any(f.projection_is_average)


# ----------------------------------------------------------------------- rank deficiency
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("r", [1, 2, 3])
def test_rank_deficient_timelike_span(name, r):
    """Rows in an r-dim span containing a timelike vector: projection (exact average)
    for r <= 2 (and r = 3 for O), completion for SO at r = 3; equivariant."""
    G = get_group(name)
    rng = np.random.default_rng(11 + r)
    B, n = 60, 7
    basis = rng.standard_normal((B, r, 4))
    basis[:, 0] = timelike(rng, B, 1, 4)[:, 0] * 2.0
    x = rng.standard_normal((B, n, r)) @ basis
    f, out = check_equivariant(G, x, seed=r, case=f"{name} rank {r} timelike span")
    np.testing.assert_array_equal(f.rank, r)
    occupied = check_eta_orthonormal(f, 4)
    completed = G.special and r == 3
    assert np.all(f.projected != completed)
    assert np.all(f.projection_is_average)
    assert np.all(occupied.sum(axis=1) == (4 if completed else r))
    # the output component eta-orthogonal to the span: zero unless completed
    _, _, Vt = np.linalg.svd(x @ eta(4))
    normal = Vt[:, r:]                                      # (B, 4-r, 4): x eta N^T = 0
    off = np.einsum("bnk,bjk->bnj", out["vector"] @ eta(4), normal)
    ratio = np.max(np.abs(off)) / np.max(np.abs(out["vector"]))
    assert ratio > 1e-2 if completed else ratio <= 1e-12


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("r", [1, 2])
def test_rank_deficient_exactly_in_span(name, r):
    """Rows in span(e_0 .. e_r): outputs and canonical inputs have exact zeros beyond
    (except SO(1,3) at rank 3, which completes the frame)."""
    G = get_group(name)
    rng = np.random.default_rng(12)
    x = np.zeros((40, 6, 4))
    x[..., : r + 1] = timelike(rng, 40, 6, r + 1)
    out, f = frame_averaged(G, RowBackbone(6, 4, {"vector": 4}, seed=r), vectors=x)
    np.testing.assert_array_equal(f.rank, r + 1)
    if G.special and r + 1 == 3:      # completed: the output leaves the span
        assert np.max(np.abs(out["vector"][..., 3])) > 1e-2
        return
    assert np.all(out["vector"][..., r + 1:] == 0.0)
    assert np.all(f.to_canonical(x, "vector")[..., r + 1:] == 0.0)
    assert np.max(np.abs(out["vector"][..., : r + 1])) > 1e-2


@pytest.mark.parametrize("name", NAMES)
def test_purely_spacelike_span(name):
    """Rows in span(e_1, e_2): the stabilizer O(1,1) is not compact, so the projection
    is equivariant but not an average (projection_is_average False)."""
    G = get_group(name)
    rng = np.random.default_rng(13)
    x = np.zeros((60, 5, 4))
    x[..., 1:3] = rng.standard_normal((60, 5, 2))
    f, out = check_equivariant(G, x, case=f"{name} spacelike span")
    np.testing.assert_array_equal(f.rank, 2)
    assert np.all(f.projected) and not np.any(f.projection_is_average)
    H = H0(f)
    assert np.all(H[:, 0] == 0.0) and np.all(H[:, 3] == 0.0)   # slots: 1, 2 spacelike
    assert np.all(out["vector"][..., [0, 3]] == 0.0)
    check_eta_orthonormal(f, 4)


@pytest.mark.parametrize("name", NAMES)
def test_spacelike_hyperplane(name):
    """Rows in span(e_1, e_2, e_3): O(1,3) projects (stabilizer O(1), an exact average);
    SO(1,3) completes with the timelike normal, into slot 0, det +1."""
    G = get_group(name)
    rng = np.random.default_rng(14)
    x = np.zeros((60, 5, 4))
    x[..., 1:] = rng.standard_normal((60, 5, 3))
    f, _ = check_equivariant(G, x, case=f"{name} spacelike hyperplane")
    np.testing.assert_array_equal(f.rank, 3)
    assert np.all(f.projection_is_average)
    H = H0(f)
    if G.special:
        assert not np.any(f.projected)
        np.testing.assert_allclose(np.abs(H[:, 0]), np.tile([1.0, 0, 0, 0], (60, 1)),
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.linalg.det(H), 1.0, rtol=0, atol=1e-12)
    else:
        assert np.all(f.projected) and np.all(H[:, 0] == 0.0)
    check_eta_orthonormal(f, 4)


@pytest.mark.parametrize("n", [3, 4, 8, 64])
def test_so_rank_d_minus_1_completion(n):
    """SO(1,3) at rank 3, for any number of rows: det H = +1, H eta H^T = eta, the
    output is not confined to the span, and the completion is deterministic."""
    G = get_group("SO(1,3)")
    rng = np.random.default_rng(15 + n)
    basis = rng.standard_normal((50, 3, 4))
    basis[:25, 0] = timelike(rng, 25, 1, 4)[:, 0] * 2.0       # half with a timelike span
    x = rng.standard_normal((50, n, 3)) @ basis
    f, out = check_equivariant(G, x, case="SO(1,3) rank 3 completion")
    np.testing.assert_array_equal(f.rank, 3)
    assert not np.any(f.projected)
    check_eta_orthonormal(f, 4)
    np.testing.assert_allclose(np.linalg.det(H0(f)), 1.0, rtol=0, atol=1e-12)
    _, _, Vt = np.linalg.svd(x @ eta(4))
    off = np.einsum("bnk,bk->bn", out["vector"] @ eta(4), Vt[:, 3])
    assert np.max(np.abs(off)) > 1e-2 * np.max(np.abs(out["vector"]))
    np.testing.assert_array_equal(G.frame(x).H, f.H)


def test_o_rank_d_minus_1_projects_and_det_signs_both_occur():
    """O(1,3) frames are not det-fixed: both signs occur; rank 3 projects."""
    rng = np.random.default_rng(16)
    G = get_group("O(1,3)")
    f = G.frame(timelike(rng, 200, 6, 4))
    dets = np.linalg.det(H0(f))
    assert np.any(dets > 0.5) and np.any(dets < -0.5)
    x = rng.standard_normal((20, 6, 3)) @ rng.standard_normal((20, 3, 4))
    f = G.frame(x)
    assert np.all(f.projected) and np.all(np.sum(np.any(H0(f) != 0, axis=2), 1) == 3)


@pytest.mark.parametrize("name", NAMES)
def test_all_zero_sample_and_repeated_rows(name):
    G = get_group(name)
    x = np.zeros((3, 5, 4))
    x[1] = [2.0, 1.0, 0.0, 0.0]                       # five equal timelike rows
    x[2] = [1.0, 1.0, 0.0, 0.0]                       # five equal lightlike rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FrameDegeneracyWarning)
        f = G.frame(x)
    assert f.rank.tolist() == [0, 1, 0]
    assert np.all(np.isfinite(f.H))
    assert np.all(f.to_canonical(x, "vector")[[0, 2]] == 0.0)
    assert f.n_lightlike_rows.tolist() == [5, 0, 5]


# ---------------------------------------------------------------------------- scales
@pytest.mark.parametrize("anchor", ANCHORS)
@pytest.mark.parametrize("name", NAMES)
def test_power_of_two_scaling_is_exact(name, anchor):
    """x * 2^(+-20): bitwise-identical decisions and frames, canonical input scaled by
    exactly the factor (no absolute thresholds)."""
    G = group(name, anchor)
    rng = np.random.default_rng(17)
    basis = rng.standard_normal((10, 3, 4))
    x = np.concatenate([mixed(rng, 20, 6, 4), timelike(rng, 10, 6, 4),
                        lightlike(rng, 10, 6, 4), rng.standard_normal((10, 6, 3)) @ basis,
                        np.repeat(NULL_ROWS[None, :, :], 2, axis=0)[:, [0, 1, 2, 3, 3, 3]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FrameDegeneracyWarning)
        f = G.frame(x)
        for factor in (2.0 ** 20, 2.0 ** -20):
            scaled = G.frame(x * factor)
            for key in ("rank", "projected", "projection_is_average", "conditioning",
                        "n_lightlike_rows"):
                np.testing.assert_array_equal(scaled.diagnostics[key], f.diagnostics[key])
            np.testing.assert_array_equal(scaled.H, f.H)
            np.testing.assert_array_equal(scaled.to_canonical(x * factor, "vector"),
                                          f.to_canonical(x, "vector") * factor)


@pytest.mark.parametrize("factor", [1e6, 1e-6])
def test_large_and_small_scales_equivariant(factor):
    G = get_group("SO(1,3)")
    rng = np.random.default_rng(18)
    x = np.concatenate([timelike(rng, 40, 6, 4), lightlike(rng, 40, 6, 4)])
    check_equivariant(G, x * factor, case=f"SO(1,3) x*{factor:g}")


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input(bad):
    x = np.ones((10, 4, 4))
    x[3, 1, 2] = bad
    with pytest.raises(NonFiniteInputError, match=r"NaN or inf.*\[3\]"):
        get_group("O(1,3)").frame(x)


def test_wrong_width_complex_and_dimension():
    G = get_group("SO(1,3)")
    with pytest.raises(ValueError, match=r"width 4.*width 3"):
        G.frame(np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match="complex"):
        G.frame(np.ones((2, 5, 4), dtype=complex))
    with pytest.raises(ValueError, match="shape"):
        G.frame(np.ones((5, 4)))
    f = G.frame(timelike(np.random.default_rng(0), 2, 5, 4))
    with pytest.raises(ValueError, match="width 4"):
        f.to_canonical(np.ones((2, 5, 3)), "vector")
    for d in (0, 1, 2.5, True):
        with pytest.raises(ValueError, match="d >= 2"):
            LorentzGroup(d)
    with pytest.raises(ValueError, match="anchor"):
        LorentzGroup(4, anchor="sum")
    with pytest.raises(ValueError, match="method"):
        G.frame(np.ones((2, 5, 4)), method="pca")
    with pytest.raises(ValueError, match="rule"):
        G.frame(np.ones((2, 5, 4)), rule="last")
    with pytest.raises(ValueError, match="at least one"):
        G.frame(None)
    with pytest.raises(ValueError, match="beta_max"):
        G.random_element(3, 0, beta_max=1.0)


def test_integer_input_empty_batch_and_inputs_not_modified():
    G = get_group("O(1,3)")
    rng = np.random.default_rng(19)
    xi = rng.integers(-5, 5, (6, 5, 4))
    xi[..., 0] = 10
    f = G.frame(xi)
    np.testing.assert_array_equal(f.H, G.frame(xi.astype(np.float64)).H)
    assert f.to_canonical(xi, "vector").dtype == np.float64
    empty = G.frame(np.zeros((0, 5, 4)))
    assert empty.H.shape == (0, 1, 4, 4) and empty.rank.shape == (0,)
    x = timelike(rng, 5, 6, 4)
    view = timelike(rng, 5, 12, 4)[:, ::2]
    copies = x.copy(), view.copy()
    for anchor in ANCHORS:
        G = group("SO(1,3)", anchor)
        G.frame(x, view)
        G.frame(view).to_canonical(x, "vector")
    np.testing.assert_array_equal(x, copies[0])
    np.testing.assert_array_equal(view, copies[1])


# ------------------------------------------------------------------ group objects
def test_names_equality_repr_pickle():
    G = get_group("O(1,3)")
    assert isinstance(G, LorentzGroup) and G.d == 4 and not G.special
    assert G.name == "O(1,3)" and str(G) == "O(1,3)" and repr(G) == "get_group('O(1,3)')"
    assert get_group("so(1,1)") == LorentzGroup(2, special=True)
    assert get_group("SO(1,3)").name == "SO(1,3)"
    cumsum = LorentzGroup(4, special=True, anchor="cumsum")
    assert repr(cumsum) == "LorentzGroup(4, special=True, anchor='cumsum')"
    assert cumsum != get_group("SO(1,3)") and cumsum == LorentzGroup(4, special=True,
                                                                     anchor="cumsum")
    assert len({G, get_group("O(1,3)"), cumsum, get_group("SO(1,3)")}) == 3
    assert get_group("O(4)") != G
    for obj in (G, cumsum):
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj and back.anchor == obj.anchor


@pytest.mark.parametrize("name", NAMES + SMALL_NAMES)
def test_random_element(name):
    """T eta T^T = eta; gamma = |T_00| <= 7.1 by default; parity and time reversal
    occur (jointly only for SO)."""
    G = get_group(name)
    d = G.d
    g = G.random_element(400, 0)
    assert g.T.shape == (400, d, d) and g.b is None
    np.testing.assert_allclose(g.T @ eta(d) @ np.swapaxes(g.T, 1, 2),
                               np.broadcast_to(eta(d), g.T.shape), rtol=0, atol=1e-12)
    gamma = np.abs(g.T[:, 0, 0])
    assert np.all(gamma >= 1.0 - 1e-12) and np.all(gamma <= 1.0 / math.sqrt(1 - 0.99 ** 2))
    dets = np.linalg.det(g.T)
    np.testing.assert_allclose(np.abs(dets), 1.0, rtol=0, atol=1e-10)
    orthochronous = g.T[:, 0, 0] > 0
    assert np.any(orthochronous) and np.any(~orthochronous)
    if G.special:
        np.testing.assert_allclose(dets, 1.0, rtol=0, atol=1e-10)
    else:
        assert np.any(dets < 0) and np.any(dets > 0)
    np.testing.assert_array_equal(G.random_element(5, 3).T, G.random_element(5, 3).T)
    # speeds fill the ball: some boosts near beta_max
    assert np.max(gamma) > 4.0


def test_act_and_check_equivariance_signature():
    G = get_group("O(1,3)")
    g = G.random_element(3, 0, translation_scale=5.0)   # accepted and ignored
    x = timelike(np.random.default_rng(0), 3, 4, 4)
    np.testing.assert_array_equal(G.act(g, x, "vector"), x @ g.T)
    np.testing.assert_array_equal(G.act(g, x, "point"), x @ g.T)
    np.testing.assert_array_equal(G.act(g, x, "scalar"), x)
    # invariants are preserved
    np.testing.assert_allclose(minkowski(x @ g.T, x @ g.T), minkowski(x, x), rtol=1e-10)


# --------------------------------------------------------------------- diagnostics
def test_diagnostics_slicing_and_concat():
    G = get_group("SO(1,3)")
    rng = np.random.default_rng(20)
    x = np.concatenate([timelike(rng, 3, 16, 4), lightlike(rng, 3, 16, 4)])
    x[0, :2] = lightlike(rng, 1, 2, 4)[0]
    f = G.frame(x)
    diag = f.diagnostics
    assert set(diag) >= {"rank", "frame_size", "projected", "projection_is_average",
                         "conditioning", "n_lightlike_rows"}
    assert diag["n_lightlike_rows"].tolist() == [2, 0, 0, 16, 16, 16]
    assert np.all(diag["conditioning"] >= 1.0)
    part = f[1:4]
    assert isinstance(part, LorentzFrame) and part.n_lightlike_rows.tolist() == [0, 0, 16]
    both = LorentzFrame.concat([G.frame(x[:2]), G.frame(x[2:])])
    assert isinstance(both, LorentzFrame)
    np.testing.assert_array_equal(both.H, f.H)
    np.testing.assert_array_equal(both.n_lightlike_rows, f.n_lightlike_rows)
    np.testing.assert_array_equal(both.to_canonical(x, "vector"), f.to_canonical(x, "vector"))
    # conditioning: frame vectors from residuals of sqrt|rho| 2 and 1e-3
    y = np.zeros((1, 2, 4))
    y[0, 0, 0], y[0, 1, 1] = 2.0, 1e-3
    f = LorentzGroup(4, anchor="none").frame(y)
    np.testing.assert_allclose(f.conditioning, 2e3, rtol=1e-12)


# ---------------------------------------------------------------- estimator level
def _invariant_target(X):
    p = X.reshape(len(X), -1, 4)
    P = p.sum(axis=1)
    return np.sqrt(np.abs(minkowski(P, P))) + minkowski(p[:, 0], p[:, 1])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("inner", [KNeighborsRegressor(3), DecisionTreeRegressor(
    max_depth=6, random_state=0)])
def test_regressor_invariant_and_vector_targets(name, inner):
    rng = np.random.default_rng(21)
    X = timelike(rng, 120, 5, 4).reshape(120, -1)
    fields = {"p": "vector"}
    reg = FrameAveragingRegressor(inner, group=name, fields=fields).fit(
        X, _invariant_target(X))
    result = assert_equivariant(reg, name, X, random_state=0, rtol=TOL64)
    record_error(f"{name} regressor invariant {type(inner).__name__}", result["max_error"])
    # vector target: the sum of the momenta, per sample ("vector" of one row)
    y = X.reshape(120, -1, 4).sum(axis=1)
    reg = FrameAveragingRegressor(inner, group=name, fields=fields, target="vector")
    reg.fit(X, y)
    result = assert_equivariant(reg, name, X, random_state=1, rtol=TOL64)
    record_error(f"{name} regressor vector {type(inner).__name__}", result["max_error"])
    # the bare model is not invariant (the control)
    bare = inner.fit(X, _invariant_target(X))
    assert check_equivariance(bare, name, X, fields=fields, random_state=0)["max_error"] \
        >= CONTROL


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("inner", [KNeighborsClassifier(3), DecisionTreeClassifier(
    max_depth=4, random_state=0)])
def test_classifier_invariant(name, inner):
    rng = np.random.default_rng(22)
    X = timelike(rng, 150, 5, 4).reshape(150, -1)
    y = (_invariant_target(X) > np.median(_invariant_target(X))).astype(int)
    clf = FrameAveragingClassifier(inner, group=name, fields={"p": "vector"}).fit(X, y)
    for method in ("predict", "predict_proba"):
        result = assert_equivariant(getattr(clf, method), name, X, fields={"p": "vector"},
                                    random_state=2, rtol=TOL64)
        record_error(f"{name} classifier {method} {type(inner).__name__}", result["max_error"])
    assert clf.score(X, y) > 0.8
    diag = clf.frame_diagnostics(X)
    assert np.all(diag["rank"] == 4) and np.all(diag["n_lightlike_rows"] == 0)


def test_estimator_with_anchor_group_object():
    """A LorentzGroup object with another anchor works as the estimators' group."""
    rng = np.random.default_rng(23)
    X = lightlike(rng, 80, 6, 4).reshape(80, -1)
    G = LorentzGroup(4, special=True, anchor="cumsum")
    reg = FrameAveragingRegressor(KNeighborsRegressor(2), group=G,
                                  fields={"p": "vector"}).fit(X, _invariant_target(X))
    assert_equivariant(reg, G, X, random_state=0, rtol=TOL64)
    with pytest.warns(FrameDegeneracyWarning):
        FrameAveragingRegressor(KNeighborsRegressor(2), group=LorentzGroup(4, anchor="none"),
                                fields={"p": "vector"}).fit(X, _invariant_target(X))


def test_estimator_many_chunks():
    """Samples with many rows are canonicalized in several chunks; the frames joined
    afterwards must still map by eta H^T eta (a vector target goes through them)."""
    from mfa_sklearn._engine import chunk_slices

    rng = np.random.default_rng(24)
    X = timelike(rng, 100, 2048, 4).reshape(100, -1)
    assert len(chunk_slices(X, X.shape[1])) > 1
    y = X.reshape(100, -1, 4)[:, :3].sum(axis=1)
    reg = FrameAveragingRegressor(KNeighborsRegressor(1), group="SO(1,3)",
                                  fields={"p": "vector"}, target="vector").fit(X, y)
    np.testing.assert_allclose(reg.predict(X), y, rtol=1e-9, atol=1e-9 * np.abs(y).max())
    assert_equivariant(reg, "SO(1,3)", X, random_state=0, rtol=TOL64)


def test_diagnostics_over_many_chunks():
    rng = np.random.default_rng(25)
    X = lightlike(rng, 100, 2048, 4).reshape(100, -1)
    reg = FrameAveragingRegressor(KNeighborsRegressor(1), group="SO(1,3)",
                                  fields={"p": "vector"}).fit(X, np.arange(100.0))
    diag = reg.frame_diagnostics(X)
    assert diag["n_lightlike_rows"] is not None
    np.testing.assert_array_equal(diag["n_lightlike_rows"], 2048)
