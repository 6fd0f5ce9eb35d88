"""Frames of GL(d), SL(d) and Aff(d): the test protocol of tests/groups/__init__.py.

A deliberately non-equivariant backbone (a fixed-seed tanh MLP with biases on the
flattened canonical input) is wrapped as

    F(x) = from_canonical(backbone(to_canonical(x)))

and one random group element per sample, of condition number kappa (see the protocol), is
drawn. The relative error

    e_max = max |g.F(x) - F(g.x)| / max |F(g.x)|

is asserted against the protocol's tolerance ``max(1e-15 * kappa * cond(data), 1e-12)``
in float64, where cond(data) is the largest ``cond(phi)`` of the batch (the selected rows, which the
frames solve with), and 1e-3 for float32 input with ``kappa <= 1e3``. Every such test is
paired with a control: the bare backbone is O(1) off (>= 1e-2).

Set MFA_PRINT_ERRORS=1 and run with ``-s`` to print the largest error per case.
"""

import pickle

import numpy as np
import pytest

from mfa_sklearn.exceptions import NonFiniteInputError, RankDeficientError
from mfa_sklearn.groups import Group, GroupElement, get_group
from mfa_sklearn.groups.linear import LinearFrame, LinearGroup
from tests._helpers import (
    CONTROL,
    assert_frame_equivariant,
    frame_averaged,
    generic,
    point_vector_backbone,
    record_error,
)

KINDS = ("GL", "SL", "Aff")
DIMS = (2, 3, 6)
KAPPAS = (10.0, 1e3, 1e6)
TOL32 = 1e-3           # the protocol's tolerances: float32 input, GL with kappa <= 1e3


# --------------------------------------------------------------------------- helpers
def bound64(kappa, cond):
    """The protocol's tolerance for GL, SL and Aff in float64."""
    return max(1e-15 * kappa * cond, 1e-12)


def check(G, points, vectors=(), *, kappa=10.0, bound=None, g=None, **kwargs):
    """Assert e_max <= bound (default: the float64 bound for kappa and the data's
    cond(phi)) for every output kind, and an O(1) control (see
    ``assert_frame_equivariant``); group elements of condition number kappa.

    Returns the frame of x and the largest error.
    """
    if bound is None:
        def bound(f):
            return bound64(kappa, float(np.max(f.conditioning)))
    checked = assert_frame_equivariant(G, points, vectors, bound=bound, element=g,
                                       draw={"kappa": kappa}, **kwargs)
    return checked.frame, max(checked.errors.values())


def selected_rows(f, x):
    """Index (B, d) of the row of x that each frame vector was taken from (GL, Aff)."""
    centred = x - f.t[:, None] if f.t is not None else x
    H = f.H[:, 0]
    match = np.all(centred[:, None, :, :] == H[:, :, None, :], axis=-1)   # (B, d, n)
    assert np.all(match.any(axis=-1)), "every frame vector is a data row"
    return np.argmax(match, axis=-1)


# ------------------------------------------------------------------ generic equivariance
@pytest.mark.parametrize("kappa", KAPPAS)
@pytest.mark.parametrize("kind,d", [(kind, d) for kind in KINDS for d in DIMS])
def test_generic_equivariance(kind, d, kappa):
    """float64: e_max <= max(1e-15 kappa cond(phi), 1e-12) for cond(T) = kappa."""
    G = get_group(f"{kind}({d})")
    rng = np.random.default_rng(10 * d + len(kind))
    x = generic(rng, 100, d + 4, d)
    f, _ = check(G, [x], kappa=kappa, case=f"{G.name} kappa={kappa:.0e}")
    np.testing.assert_array_equal(f.rank, d)
    assert not np.any(f.projected) and np.all(f.projection_is_average)
    assert f.n_calls == 1 and isinstance(f, LinearFrame)
    assert f.H.dtype == np.float64
    if kind == "Aff":
        np.testing.assert_allclose(f.t, x.mean(axis=1), rtol=0, atol=1e-14)
    else:
        assert f.t is None


@pytest.mark.parametrize("kappa", (10.0, 1e3))
@pytest.mark.parametrize("kind,d", [(kind, d) for kind in KINDS for d in DIMS])
def test_float32_input(kind, d, kappa):
    """float32 in (frames in float64): error <= 1e-3 for kappa <= 1e3; dtypes kept.

    The default float32 guard rejects rows with cond(Z) >= 1/sqrt(eps32) = 2.9e3, which
    kappa = 1e3 times a data conditioning of ~5 reaches (the guard is not GL-invariant,
    see mfa_sklearn.groups.linear), so kappa = 1e3 passes an explicit tol=1e-6.
    """
    G = get_group(f"{kind}({d})")
    rng = np.random.default_rng(d)
    x = generic(rng, 60, d + 4, d).astype(np.float32)
    guard = {} if kappa < 100 else {"tol": 1e-6}
    f, _ = check(G, [x], kappa=kappa, bound=TOL32, case=f"{G.name} float32 kappa={kappa:.0e}",
                 **guard)
    assert f.H.dtype == np.float64
    assert f.to_canonical(x).dtype == np.float32
    out, _ = frame_averaged(G, point_vector_backbone(d + 4, d), [x])
    assert all(value.dtype == np.float32 for value in out.values())


@pytest.mark.parametrize("kind", KINDS)
def test_points_and_vectors(kind):
    """Points and velocities stacked: t from the points only, vectors never centred."""
    G = get_group(f"{kind}(3)")
    rng = np.random.default_rng(3)
    pos, vel = generic(rng, 80, 5, 3), rng.standard_normal((80, 5, 3))
    f, _ = check(G, [pos], [vel], kappa=1e3, case=f"{G.name} points + vectors")
    H = f.H[:, 0]
    shift = f.t[:, None] if kind == "Aff" else 0.0
    np.testing.assert_allclose(f.to_canonical(vel, "vector")[:, 0] @ H, vel, rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(f.to_canonical(pos)[:, 0] @ H + shift, pos, rtol=0,
                               atol=1e-12)


def test_aff_collinear_points_with_velocities():
    """Collinear points fail alone for Aff(2); with velocities stacked in they span."""
    G = get_group("Aff(2)")
    rng = np.random.default_rng(4)
    direction = rng.standard_normal((60, 1, 2))
    pos = rng.standard_normal((60, 5, 1)) * direction + 3.0 * rng.standard_normal((60, 1, 2))
    with pytest.raises(RankDeficientError):
        G.frame(pos)
    vel = rng.standard_normal((60, 5, 2))
    f, _ = check(G, [pos], [vel], kappa=1e3, case="Aff(2) collinear + velocity")
    np.testing.assert_array_equal(f.rank, 2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", DIMS)
def test_exactly_repeated_rows_and_ties(kind, d):
    """Repeated rows and the images of +-e_i (all leverages tie): ties are resolved by
    index inside the pivot band on both sides of the action."""
    G = get_group(f"{kind}({d})")
    rng = np.random.default_rng(d + 50)
    distinct = generic(rng, 60, d + 1, d)
    x = distinct[:, [0, 1, 0, 2, 1, 0] + list(range(3, d + 1)) + [d, 2]]
    check(G, [x], kappa=1e3, case=f"{G.name} repeated rows")
    cross = np.concatenate([np.eye(d), -np.eye(d)], axis=0)
    T = get_group(f"GL({d})").random_element(60, 3, kappa=100.0).T
    sym = cross[None] @ T + (3.0 * rng.standard_normal((60, 1, d)) if kind == "Aff" else 0.0)
    check(G, [sym], kappa=1e3, seed=2, case=f"{G.name} +-e_i ties")


# ------------------------------------------------------------------ canonical form
@pytest.mark.parametrize("kind", ["GL", "Aff"])
@pytest.mark.parametrize("d", DIMS)
def test_selected_rows_map_to_unit_vectors(kind, d):
    """H is made of data rows (centred for Aff), and they map to e_1 .. e_d."""
    G = get_group(f"{kind}({d})")
    rng = np.random.default_rng(d)
    x = generic(rng, 100, d + 5, d)
    f = G.frame(x)
    S = selected_rows(f, x)
    c = f.to_canonical(x)[:, 0]
    chosen = np.take_along_axis(c, S[..., None], axis=1)               # (B, d, d)
    err = np.max(np.abs(chosen - np.eye(d)))
    record_error(f"{G.name} |c(selected rows) - I|", err)
    assert err <= 1e-15 * np.max(f.conditioning) + 4e-16, err
    # distinct rows, and the canonical form is a GL invariant: the same for g.x
    assert all(len(set(row)) == d for row in S.tolist())
    g = G.random_element(len(x), 1, kappa=1e3)
    gx = G.act(g, x)
    fg = G.frame(gx)
    np.testing.assert_array_equal(selected_rows(fg, gx), S)
    np.testing.assert_allclose(fg.to_canonical(gx), f.to_canonical(x), rtol=0,
                               atol=1e-15 * 1e3 * np.max(f.conditioning) * np.max(np.abs(c)))


@pytest.mark.parametrize("d", (1, 2, 3, 4, 5, 6))
def test_sl_determinant_is_plus_one(d):
    """SL: H = D phi / |det phi|^(1/d), det H = +1 for even and odd d, in particular
    for det phi < 0 (the even-d pitfall); phi is the GL frame's selection."""
    rng = np.random.default_rng(d)
    x = generic(rng, 200, d + 3, d, offset=0.0)
    phi = get_group(f"GL({d})").frame(x).H[:, 0]
    H = get_group(f"SL({d})").frame(x).H[:, 0]
    det_phi = np.linalg.det(phi)
    if d > 1:
        assert np.sum(det_phi < 0) > 20 and np.sum(det_phi > 0) > 20
    np.testing.assert_allclose(np.linalg.det(H), 1.0, rtol=0, atol=1e-13)
    D = np.ones((len(x), d))
    D[:, 0] = np.sign(det_phi)
    expected = D[:, :, None] * phi / np.abs(det_phi)[:, None, None] ** (1.0 / d)
    np.testing.assert_allclose(H, expected, rtol=0, atol=1e-13 * np.max(np.abs(expected)))
    # the canonical form lies in the SL-orbit: x = c(x) H with det H = 1
    f = get_group(f"SL({d})").frame(x)
    np.testing.assert_allclose(f.to_canonical(x)[:, 0] @ H, x, rtol=0, atol=1e-12)
    if d == 1:   # SL(1) is trivial
        np.testing.assert_allclose(H, 1.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("d", (2, 4, 6))
def test_sl_negative_determinant_even_d_equivariant(d):
    """Even d, only samples with det phi < 0: equivariant with det-1 elements."""
    G = get_group(f"SL({d})")
    rng = np.random.default_rng(d + 7)
    x = generic(rng, 300, d + 3, d, offset=0.0)
    negative = np.linalg.det(get_group(f"GL({d})").frame(x).H[:, 0]) < 0
    f, _ = check(G, [x[negative]], kappa=1e3, case=f"{G.name} det phi < 0")
    np.testing.assert_allclose(np.linalg.det(f.H[:, 0]), 1.0, rtol=0, atol=1e-13)


# --------------------------------------------------------------------- rank guard
@pytest.mark.parametrize("name", ["GL(3)", "SL(3)"])
def test_linear_rank_deficient_raises(name):
    """Rows of rank 2 in R^3 (samples 5 and 9), and an all-zero sample (12)."""
    G = get_group(name)
    rng = np.random.default_rng(0)
    x = generic(rng, 20, 6, 3, offset=0.0)
    x[5] = rng.standard_normal((6, 2)) @ rng.standard_normal((2, 3))
    x[9, :, 2] = 0.0
    with pytest.raises(RankDeficientError) as info:
        G.frame(x)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert (f"group {name} needs the frame-defining rows of every sample to span R^3 "
            "(n >= 3, numerically full rank); 2 sample(s) fail (first: [5, 9]") in message
    assert "tolerance 1.5e-08" in message
    x[12] = 0.0
    with pytest.raises(RankDeficientError, match=r"3 sample\(s\) fail \(first: \[5, 9, 12\]"):
        G.frame(x)
    # the generic samples alone are fine
    G.frame(np.delete(x, [5, 9, 12], axis=0))


@pytest.mark.parametrize("name,n", [("GL(3)", 2), ("SL(3)", 1), ("Aff(3)", 3), ("GL(6)", 5),
                                    ("Aff(2)", 2)])
def test_too_few_rows(name, n):
    G = get_group(name)
    x = generic(np.random.default_rng(0), 4, n, G.d)
    with pytest.raises(RankDeficientError, match=r"all 4 sample\(s\) fail: each has only"):
        G.frame(x)


def test_aff_rank_check_runs_after_centring():
    """4 coplanar points in 3-D (a plane off the origin) have full rank uncentred, so
    GL(3) accepts them, but they do not affinely span R^3: Aff(3) must raise."""
    rng = np.random.default_rng(1)
    x = generic(rng, 30, 4, 3)
    basis = rng.standard_normal((2, 2, 3))
    offsets = 5.0 * rng.standard_normal((2, 1, 3))
    x[[4, 17]] = rng.standard_normal((2, 4, 2)) @ basis + offsets
    assert np.all(np.linalg.matrix_rank(x) == 3)            # full rank uncentred
    get_group("GL(3)").frame(x)
    with pytest.raises(RankDeficientError) as info:
        get_group("Aff(3)").frame(x)
    message = str(info.value)
    assert ("group Aff(3) needs the points of every sample to affinely span R^3 (n >= 4 "
            "points, not all in one hyperplane); 2 sample(s) fail (first: [4, 17]") in message
    # collinear points in 2-D, likewise
    y = generic(rng, 10, 5, 2)
    y[3] = rng.standard_normal((5, 1)) * rng.standard_normal((1, 2)) + 2.0
    get_group("GL(2)").frame(y)
    with pytest.raises(RankDeficientError, match=r"1 sample\(s\) fail \(first: \[3\]"):
        get_group("Aff(2)").frame(y)


def test_aff_coincident_points_far_from_origin():
    """Coincident points (rounding noise after centring), and coplanar points whose
    off-plane noise comes only from centring at a large offset, are rank deficient."""
    rng = np.random.default_rng(2)
    x = generic(rng, 8, 5, 3)
    x[2] = 1e3 * rng.standard_normal((1, 3)) + np.zeros((5, 1))
    x[6] = (rng.standard_normal((5, 2)) @ rng.standard_normal((2, 3))
            + 1e9 * rng.standard_normal((1, 3)))
    with pytest.raises(RankDeficientError, match=r"2 sample\(s\) fail \(first: \[2, 6\]"):
        get_group("Aff(3)").frame(x)


def test_rank_tolerance_follows_dtype_and_tol():
    """A 1e-6 relative off-plane component: full rank in float64, deficient in float32
    (sqrt(eps) = 3.5e-4) and with tol=1e-3."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 8, 2)) @ rng.standard_normal((10, 2, 3))
    normal = np.cross(x[:, 0], x[:, 1])
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    x = x + 1e-6 * np.max(np.abs(x)) * rng.standard_normal((10, 8, 1)) * normal[:, None]
    G = get_group("GL(3)")
    G.frame(x)
    with pytest.raises(RankDeficientError, match=r"tolerance 0\.00035"):
        G.frame(x.astype(np.float32))
    with pytest.raises(RankDeficientError, match=r"tolerance 0\.001"):
        G.frame(x, tol=1e-3)


# ---------------------------------------------------------------------------- scales
@pytest.mark.parametrize("rule", ["pivoted", "first"])
@pytest.mark.parametrize("kind,d", [(kind, d) for kind in KINDS for d in DIMS])
def test_power_of_two_scaling(kind, d, rule):
    """x * 2^(+-20): same selection; GL/Aff canonical inputs bitwise identical and H
    scaled by exactly the factor; SL frames scale-invariant (det 1) to rounding."""
    G = get_group(f"{kind}({d})")
    rng = np.random.default_rng(d)
    x = generic(rng, 50, d + 4, d)
    vel = rng.standard_normal(x.shape)
    for vectors in ([], [vel]):
        f = G.frame(x, vectors or None, rule=rule)
        c = f.to_canonical(x)
        cv = f.to_canonical(vel, "vector")
        for factor in (2.0 ** 20, 2.0 ** -20):
            s = G.frame(x * factor, [v * factor for v in vectors] or None, rule=rule)
            cs, cvs = s.to_canonical(x * factor), s.to_canonical(vel * factor, "vector")
            if kind == "SL":
                np.testing.assert_allclose(s.H, f.H, rtol=0, atol=1e-14 * np.max(np.abs(f.H)))
                np.testing.assert_allclose(cs, c * factor, rtol=0,
                                           atol=1e-13 * factor * np.max(np.abs(c)))
            else:
                np.testing.assert_array_equal(s.H, f.H * factor)
                np.testing.assert_array_equal(cs, c)
                np.testing.assert_array_equal(cvs, cv)
                np.testing.assert_array_equal(s.conditioning, f.conditioning)
            if kind == "Aff":
                np.testing.assert_array_equal(s.t, f.t * factor)


@pytest.mark.parametrize("factor", [1e6, 1e-6])
@pytest.mark.parametrize("kind", KINDS)
def test_large_and_small_scales_equivariant(kind, factor):
    G = get_group(f"{kind}(3)")
    rng = np.random.default_rng(5)
    x = generic(rng, 60, 7, 3) * factor
    g = G.random_element(len(x), 9, kappa=1e3, translation_scale=10.0 * factor)
    check(G, [x], g=g, kappa=1e3, case=f"{G.name} x*{factor:g}")


# ---------------------------------------------------------------- pivoting
def test_pivoted_and_first():
    """Rows in index order start nearly parallel: 'first' takes them (the published
    choice), 'pivoted' takes high-leverage rows and a far better conditioned phi; both
    maps are equivariant, 'first' with the larger error."""
    rng = np.random.default_rng(2)
    B = 100
    a = rng.standard_normal((B, 1, 3))
    x = np.concatenate([a, a + 1e-4 * rng.standard_normal((B, 1, 3)),
                        rng.standard_normal((B, 1, 3)),
                        5.0 * rng.standard_normal((B, 4, 3))], axis=1)
    G = get_group("GL(3)")
    f_first, f_piv = G.frame(x, rule="first"), G.frame(x, rule="pivoted")
    np.testing.assert_array_equal(f_first.H[:, 0], x[:, :3])
    assert np.median(f_first.conditioning) > 1e3 * np.median(f_piv.conditioning)
    # the pivoted choice is near the best d-subset: cond(phi) within 20x of cond(Z)
    cond_z = np.linalg.cond(x)
    assert np.all(f_piv.conditioning <= 20.0 * cond_z)
    worst = {}
    for rule in ("first", "pivoted"):
        _, worst[rule] = check(G, [x], kappa=1e3, rule=rule, case=f"GL(3) ill-ordered {rule}")
    assert worst["pivoted"] < worst["first"]


# --------------------------------------------------------------- estimator level
@pytest.mark.parametrize("name", ["GL(3)", "SL(3)", "Aff(3)"])
@pytest.mark.parametrize("inner", ["knn", "tree"])
def test_estimators_check_equivariance(name, inner):
    """FrameAveragingRegressor with KNN/tree inner estimators: invariant, vector (and
    for Aff point) targets, measured with mfa_sklearn.check_equivariance."""
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.tree import DecisionTreeRegressor

    from mfa_sklearn import FrameAveragingRegressor, check_equivariance
    from mfa_sklearn.testing import assert_equivariant

    def make():
        return (KNeighborsRegressor(3) if inner == "knn"
                else DecisionTreeRegressor(random_state=0))

    rng = np.random.default_rng(0)
    B, n = 120, 6
    pts = generic(rng, B, n, 3)
    X = pts.reshape(B, -1)
    targets = {"invariant": rng.standard_normal(B),
               "vector": pts[:, 0] - pts[:, 1] + 0.1 * rng.standard_normal((B, 3))}
    if name == "Aff(3)":
        targets["point"] = pts[:, 2] + 0.1 * rng.standard_normal((B, 3))
    for target, y in targets.items():
        model = FrameAveragingRegressor(make(), group=name, target=target).fit(X, y)
        result = assert_equivariant(model, name, X, random_state=1, rtol=1e-10)
        record_error(f"{name} {inner} estimator {target}", result["max_error"])
        control = FrameAveragingRegressor(make(), group=None).fit(X, y)
        off = check_equivariance(control, name, X, target=target, random_state=1)
        assert off["max_error"] >= CONTROL, (target, off)


def test_estimator_targets_over_several_chunks():
    """More samples than one canonicalization chunk (8192): the fit targets are mapped
    by linear frames too. y = the first point: a linear model learns it exactly."""
    from mfa_sklearn import FrameAveragingRegressor

    pts = generic(np.random.default_rng(0), 9000, 6, 3)
    X = pts.reshape(len(pts), -1)
    model = FrameAveragingRegressor(group="GL(3)", target="vector").fit(X, pts[:, 0])
    np.testing.assert_allclose(model.predict(X), pts[:, 0], rtol=0, atol=1e-8)


def test_estimator_reports_rank_deficiency():
    from mfa_sklearn import FrameAveragingRegressor

    rng = np.random.default_rng(0)
    pts = generic(rng, 20, 4, 3)
    pts[7] = rng.standard_normal((4, 2)) @ rng.standard_normal((2, 3)) + 1.0   # coplanar
    with pytest.raises(RankDeficientError, match=r"Aff\(3\).*first: \[7\]"):
        FrameAveragingRegressor(group="Aff(3)").fit(pts.reshape(20, -1), np.zeros(20))


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("name", ["GL(3)", "SL(3)", "Aff(3)"])
def test_non_finite_input(name, bad):
    x = generic(np.random.default_rng(0), 20, 5, 3)
    x[3, 1, 2] = bad
    x[17, 0, 0] = bad
    with pytest.raises(NonFiniteInputError, match=r"NaN or inf in 2 sample\(s\) "
                                                  r"\(first: \[3, 17\]\)"):
        get_group(name).frame(x)


@pytest.mark.parametrize("name", ["GL(3)", "SL(3)", "Aff(3)"])
def test_bad_shapes_and_dtypes(name):
    G = get_group(name)
    good = generic(np.random.default_rng(0), 2, 5, 3)
    with pytest.raises(ValueError, match=r"width 3.*width 4"):
        G.frame(np.ones((2, 5, 4)))
    with pytest.raises(ValueError, match=r"U\(d\)"):
        G.frame(good.astype(complex))
    with pytest.raises(ValueError, match="0 rows"):
        G.frame(np.ones((2, 0, 3)))
    with pytest.raises(ValueError, match="shape"):
        G.frame(np.ones((5, 3)))
    with pytest.raises(ValueError, match="samples"):
        G.frame(good, np.ones((3, 5, 3)))
    with pytest.raises(ValueError, match="method"):
        G.frame(good, method="pca")
    with pytest.raises(ValueError, match="rule"):
        G.frame(good, rule="last")
    with pytest.raises(ValueError, match="frame-defining"):
        G.frame(None)
    f = G.frame(good)
    with pytest.raises(ValueError, match="width 4"):
        f.to_canonical(np.ones((2, 5, 4)), "vector")


def test_aff_needs_points_and_bad_construction():
    with pytest.raises(ValueError, match="point"):
        get_group("Aff(3)").frame(None, np.ones((2, 5, 3)))
    get_group("GL(3)").frame(None, generic(np.random.default_rng(0), 2, 5, 3))
    with pytest.raises(ValueError, match="dimension"):
        LinearGroup(0)
    with pytest.raises(ValueError, match="kind"):
        LinearGroup(3, kind="PGL")
    with pytest.raises(ValueError, match="kappa"):
        get_group("GL(3)").random_element(2, kappa=0.5)


# ------------------------------------------------------------------ group objects
def test_registry_names_and_pickle():
    for kind in KINDS:
        G = get_group(f"{kind}(3)")
        assert isinstance(G, LinearGroup) and isinstance(G, Group)
        assert G.name == f"{kind}(3)" and G.kind == kind and G.d == 3
        assert G.has_translations == (kind == "Aff")
        assert LinearGroup(3, kind=kind) == G and hash(G) == hash(LinearGroup(3, kind=kind))
        assert repr(G) == f"get_group('{kind}(3)')"
        clone = pickle.loads(pickle.dumps(G))
        assert clone == G
    assert get_group("aff(2)") == LinearGroup(2, kind="Aff")
    assert get_group("GL(3)") != get_group("SL(3)") != get_group("Aff(3)")
    assert get_group("GL(3)") != get_group("O(3)")


@pytest.mark.parametrize("kappa", KAPPAS)
@pytest.mark.parametrize("kind,d", [(kind, d) for kind in KINDS for d in (1,) + DIMS])
def test_random_element(kind, d, kappa):
    G = get_group(f"{kind}({d})")
    g = G.random_element(300, 0, kappa=kappa, translation_scale=5.0)
    assert isinstance(g, GroupElement)
    T = g.T
    assert T.shape == (300, d, d) and T.dtype == np.float64
    sv = np.linalg.svd(T, compute_uv=False)
    if d > 1:   # both ends of [1, kappa] included: cond(T) = kappa
        np.testing.assert_allclose(sv[:, 0] / sv[:, -1], kappa, rtol=1e-8)
    dets = np.linalg.det(T)
    if kind == "SL":
        np.testing.assert_allclose(dets, 1.0, rtol=1e-9)
    else:
        if d > 1:
            assert 0.3 < np.mean(dets < 0) < 0.7
        # lambda ~ LogNormal(0, 1): log of the smallest singular value is N(0, 1)
        log_lambda = np.log(sv[:, -1])
        assert abs(np.mean(log_lambda)) < 0.2 and 0.8 < np.std(log_lambda) < 1.2
    if kind == "Aff":
        assert g.b.shape == (300, d) and 4.0 < np.std(g.b) < 6.0
    else:
        assert g.b is None
    np.testing.assert_array_equal(G.random_element(300, 0, kappa=kappa).T, T)
    if kind == "SL" and d == 1:   # SL(1) is trivial
        np.testing.assert_array_equal(T, 1.0)
    else:
        assert not np.array_equal(G.random_element(300, 1, kappa=kappa).T, T)


def test_act():
    G = get_group("Aff(3)")
    g = G.random_element(4, 2)
    x = np.random.default_rng(0).standard_normal((4, 6, 3))
    np.testing.assert_allclose(G.act(g, x, "point"), x @ g.T + g.b[:, None], rtol=0,
                               atol=1e-13)
    np.testing.assert_allclose(G.act(g, x, "vector"), x @ g.T, rtol=0, atol=1e-13)
    assert G.act(g, x, "scalar") is x


# --------------------------------------------------------------------- diagnostics
def test_diagnostics_concat_and_slices():
    G = get_group("GL(3)")
    rng = np.random.default_rng(0)
    x = generic(rng, 10, 6, 3)
    f = G.frame(x)
    diag = f.diagnostics
    np.testing.assert_array_equal(diag["rank"], 3)
    np.testing.assert_array_equal(diag["frame_size"], 1.0)
    assert not np.any(diag["projected"])
    np.testing.assert_allclose(diag["conditioning"], np.linalg.cond(f.H[:, 0]), rtol=1e-12)
    # rows e_1, e_2, 1e-3 e_3: cond(phi) = 1e3
    y = np.zeros((1, 3, 3))
    y[0, 0, 0], y[0, 1, 1], y[0, 2, 2] = 1.0, 1.0, 1e-3
    np.testing.assert_allclose(G.frame(y).conditioning, 1e3, rtol=1e-12)
    part = f[2:5]
    assert isinstance(part, LinearFrame) and part.n_samples == 3
    both = LinearFrame.concat([G.frame(x[:4]), G.frame(x[4:])])
    assert isinstance(both, LinearFrame)
    np.testing.assert_array_equal(both.H, f.H)
    np.testing.assert_array_equal(both.to_canonical(x), f.to_canonical(x))


@pytest.mark.parametrize("kind", KINDS)
def test_inputs_not_modified_integer_and_empty(kind):
    G = get_group(f"{kind}(3)")
    rng = np.random.default_rng(0)
    pos, vel = generic(rng, 10, 6, 3), rng.standard_normal((10, 6, 3))
    view = generic(rng, 10, 12, 3)[:, ::2]
    copies = [a.copy() for a in (pos, vel, view)]
    f = G.frame(pos, vel)
    f.from_canonical(f.to_canonical(pos), "point")
    f.to_canonical(vel, "vector")
    np.testing.assert_array_equal(G.frame(view).H, G.frame(np.ascontiguousarray(view)).H)
    for a, b in zip((pos, vel, view), copies):
        np.testing.assert_array_equal(a, b)
    xi = rng.integers(-5, 5, (6, 5, 3))
    fi = G.frame(xi)
    np.testing.assert_array_equal(fi.H, G.frame(xi.astype(np.float64)).H)
    assert fi.to_canonical(xi).dtype == np.float64
    empty = G.frame(np.zeros((0, 5, 3)))
    assert empty.H.shape == (0, 1, 3, 3) and empty.rank.shape == (0,)


def test_torch_matches_numpy():
    """The frame math runs on torch tensors too (array-API namespace), with gradients."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for name in ("GL(3)", "SL(4)", "Aff(3)"):
        G = get_group(name)
        x = generic(rng, 8, G.d + 3, G.d)
        f = G.frame(x)
        xt = torch.tensor(x, requires_grad=True)
        ft = G.frame(xt)
        c = ft.to_canonical(xt)
        np.testing.assert_allclose(c.detach().numpy(), f.to_canonical(x), rtol=0, atol=1e-13)
        out = ft.from_canonical(torch.tanh(c), "point")
        out.sum().backward()
        assert torch.all(torch.isfinite(xt.grad))
