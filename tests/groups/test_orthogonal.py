"""Frames of O(d), SO(d), E(d) and SE(d): the test protocol of tests/groups/__init__.py.

Every equivariance test wraps a deliberately non-equivariant backbone (a fixed-seed MLP
with biases and tanh on the flattened canonical input) as

    F(x) = from_canonical(backbone(to_canonical(x)))

draws one random group element per sample and asserts the relative error

    e_max = max |g.F(x) - F(g.x)| / max |F(g.x)|

against the protocol's tolerances (1e-10 in float64, 1e-5 for float32 input). Each
such test is paired with a control showing that the bare backbone is far from
equivariant (>= 1e-2), so the assertion can fail.

Set MFA_PRINT_ERRORS=1 and run with ``-s`` to print the largest error per case.
"""

import pickle

import numpy as np
import pytest

from mfa_sklearn.exceptions import GroupNotFoundError, NonFiniteInputError
from mfa_sklearn.groups import (
    Frame,
    Group,
    GroupElement,
    LinearGroup,
    OrthogonalGroup,
    UnitaryGroup,
    get_group,
)
from tests._helpers import (
    H0,
    assert_frame_equivariant,
    equivariance_errors,
    frame_averaged,
    generic,
    low_rank,
    moved,
    point_vector_backbone,
    record_error,
    span_complement,
)

FAMILIES = ("O", "SO", "E", "SE")
DIMS = (2, 3, 6)
TOL64 = 1e-10          # protocol tolerance, float64 data and frames
TOL32 = 1e-5           # protocol tolerance, float32 input, frames in float64


# --------------------------------------------------------------------------- helpers
def _name(family, d):
    return f"{family}({d})"


def _special(family):
    return family in ("SO", "SE")


def _translations(family):
    return family in ("E", "SE")


def check_equivariant(G, points, vectors=None, *, tol=TOL64, **kwargs):
    """Assert e_max <= tol for the vector, point and invariant outputs and an O(1)
    control (see ``assert_frame_equivariant``); return the frame of x and F(x)."""
    checked = assert_frame_equivariant(G, points, vectors, bound=tol, **kwargs)
    return checked.frame, checked.outputs


# ------------------------------------------------------------------ generic equivariance
GENERIC_CASES = [(fam, d) for d in (1,) + DIMS for fam in FAMILIES
                 if not (fam == "SO" and d == 1)]   # SO(1) is trivial: tested apart


@pytest.mark.parametrize("rule", ["pivoted", "first"])
@pytest.mark.parametrize("family,d", GENERIC_CASES)
def test_generic_equivariance(family, d, rule):
    G = get_group(_name(family, d))
    rng = np.random.default_rng(10 * d + len(family))
    n = d + 4
    x = generic(rng, 100, n, d)
    f, _ = check_equivariant(G, x, case=f"{G.name} generic {rule}", rule=rule)
    expected_rank = min(n - 1, d) if _translations(family) else min(n, d)
    np.testing.assert_array_equal(f.rank, expected_rank)
    assert not np.any(f.projected)
    assert f.n_calls == 1
    assert np.all(np.isfinite(f.conditioning)) and np.all(f.conditioning >= 1.0)
    if _translations(family):
        np.testing.assert_allclose(f.t, x.mean(axis=1), rtol=0, atol=1e-14)
    else:
        assert f.t is None


@pytest.mark.parametrize("family,d", [(fam, d) for fam in FAMILIES for d in (1,) + DIMS])
def test_frames_orthonormal(family, d):
    """H H^T = I on the occupied rows, zero rows beyond; det +1 for SO/SE at rank >= d-1."""
    G = get_group(_name(family, d))
    rng = np.random.default_rng(d)
    batches = [generic(rng, 50, d + 3, d)]
    for r in range(d):
        batches.append(low_rank(rng, 20, d + 3, d, r, offset=0.0))
    x = np.concatenate(batches, axis=0)
    f = G.frame(x)
    H = H0(f)
    occupied = f.rank + (1 if _special(family) else 0) * (f.rank == d - 1)
    if _special(family) and d == 1:
        occupied = np.ones_like(f.rank)
    for b in range(len(x)):
        k = int(occupied[b])
        np.testing.assert_allclose(H[b, :k] @ H[b, :k].T, np.eye(k), rtol=0, atol=1e-12)
        assert np.all(H[b, k:] == 0.0)
    if _special(family):
        full = occupied == d
        np.testing.assert_allclose(np.linalg.det(H[full]), 1.0, rtol=0, atol=1e-12)


def test_special_one_dimensional_is_trivial():
    """SO(1)/SE(1): the frame is H = [1] for every rank."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal((5, 4, 1)), np.zeros((2, 4, 1)),
                        -np.abs(rng.standard_normal((3, 4, 1)))], axis=0)
    for name in ("SO(1)", "SE(1)"):
        f = get_group(name).frame(x)
        # rank 1 normalises v / |v|, which may round to 1 - 2^-53; rank 0 completes to 1
        np.testing.assert_allclose(H0(f), np.ones((10, 1, 1)), rtol=0, atol=2.3e-16)
        assert not np.any(f.projected)
    g = get_group("SO(1)").random_element(20, 0)
    np.testing.assert_array_equal(g.T, np.ones((20, 1, 1)))
    # O(1), by contrast, flips signs: the canonical input is sign-invariant
    f = get_group("O(1)").frame(x)
    np.testing.assert_allclose(np.abs(H0(f))[:5], np.ones((5, 1, 1)), rtol=0, atol=2.3e-16)
    c = f.to_canonical(x)
    np.testing.assert_array_equal(get_group("O(1)").frame(-x).to_canonical(-x), c)


# ----------------------------------------------------------------------- rank deficiency
RANK_CASES = ([(fam, d, r) for fam in ("O", "E") for d in DIMS for r in range(1, d)]
              + [(fam, d, r) for fam in ("SO", "SE") for d in (3, 6) for r in range(1, d - 1)])


@pytest.mark.parametrize("family,d,r", RANK_CASES)
def test_rank_deficient_projection(family, d, r):
    """Rank r < d (r <= d-2 for SO/SE): projection, equivariant, and the output has no
    component orthogonal to the span."""
    G = get_group(_name(family, d))
    rng = np.random.default_rng(100 * d + r)
    n = d + 4
    x = low_rank(rng, 60, n, d, r, offset=3.0 if _translations(family) else 0.0)
    f, out = check_equivariant(G, x, case=f"{G.name} rank<d", seed=r)
    np.testing.assert_array_equal(f.rank, r)
    assert np.all(f.projected)
    assert np.all(H0(f)[:, r:] == 0.0)
    assert np.all(f.to_canonical(x)[..., r:] == 0.0)
    # rotated data: the orthogonal component is zero to rounding
    N = span_complement(x, r, centred=_translations(family))
    t = f.t[:, None, :] if _translations(family) else 0.0
    for key, shift in (("vector", 0.0), ("point", t)):
        off = (out[key] - shift) @ N
        assert np.max(np.abs(off)) <= 1e-12 * np.max(np.abs(out[key] - shift)), key


@pytest.mark.parametrize("family,d,r", [(fam, d, r) for fam in FAMILIES for d in DIMS
                                        for r in range(d - (1 if _special(fam) else 0))])
def test_rank_deficient_output_exactly_in_span(family, d, r):
    """Rows in span(e_0..e_{r-1}): outputs have exactly zero coordinates r..d-1."""
    G = get_group(_name(family, d))
    rng = np.random.default_rng(7 * d + r)
    x = np.zeros((40, d + 3, d))
    x[..., :r] = generic(rng, 40, d + 3, r) if r else 0.0
    backbone = point_vector_backbone(d + 3, d, seed=r)
    out, f = frame_averaged(G, backbone, x)
    np.testing.assert_array_equal(f.rank, r)
    assert np.all(out["vector"][..., r:] == 0.0)
    assert np.all(out["point"][..., r:] == 0.0)
    assert np.all(f.to_canonical(x)[..., r:] == 0.0)
    # ... and the output inside the span is not trivially zero
    if r:
        assert np.max(np.abs(out["vector"][..., :r])) > 1e-2


RANK_D_MINUS_1 = [("SO", d, n) for d in DIMS for n in (d - 1, d, d + 4, 64)] + \
                 [("SE", d, n) for d in DIMS for n in (d, d + 1, d + 4, 64)]


@pytest.mark.parametrize("family,d,n", RANK_D_MINUS_1)
def test_special_rank_d_minus_1_completion(family, d, n):
    """Rank d-1 for SO/SE: det H = +1, equivariant, and the output leaves the span."""
    G = get_group(_name(family, d))
    rng = np.random.default_rng(1000 * d + n)
    x = low_rank(rng, 50, n, d, d - 1, offset=3.0 if family == "SE" else 0.0)
    f, out = check_equivariant(G, x, case=f"{G.name} rank d-1", seed=n)
    np.testing.assert_array_equal(f.rank, d - 1)
    assert not np.any(f.projected)
    H = H0(f)
    np.testing.assert_allclose(np.linalg.det(H), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(H @ np.swapaxes(H, 1, 2), np.broadcast_to(np.eye(d), H.shape),
                               rtol=0, atol=1e-12)
    # the completion is the unit normal of the span (found independently by SVD)
    normal = span_complement(x, d - 1, centred=family == "SE")[..., 0]
    np.testing.assert_allclose(np.abs(np.einsum("bi,bi->b", H[:, d - 1], normal)), 1.0,
                               rtol=0, atol=1e-12)
    t = f.t[:, None, :] if family == "SE" else 0.0
    for key, shift in (("vector", 0.0), ("point", t)):
        along = np.abs(np.einsum("bni,bi->bn", out[key] - shift, normal))
        assert np.max(along) >= 0.05 * np.max(np.abs(out[key] - shift)), key
    # O(d)/E(d) on the same data project instead: the normal component vanishes
    G_full = get_group(_name("E" if family == "SE" else "O", d))
    out_o, f_o = frame_averaged(G_full, point_vector_backbone(n, d, seed=n), x)
    assert np.all(f_o.projected)
    shift = f_o.t[:, None, :] if family == "SE" else 0.0
    along = np.abs(np.einsum("bni,bi->bn", out_o["vector"] - 0.0, normal))
    assert np.max(along) <= 1e-12 * np.max(np.abs(out_o["vector"]))
    along = np.abs(np.einsum("bni,bi->bn", out_o["point"] - shift, normal))
    assert np.max(along) <= 1e-12 * np.max(np.abs(out_o["point"] - shift))


@pytest.mark.parametrize("d", [2, 3])
def test_special_rank_d_minus_1_single_row(d):
    """SO(2) from one row, SO(3) from two rows: no crash, det +1, equivariant."""
    G = get_group(f"SO({d})")
    rng = np.random.default_rng(d)
    x = rng.standard_normal((100, d - 1, d))
    f, _ = check_equivariant(G, x, case=f"{G.name} n=d-1")
    np.testing.assert_array_equal(f.rank, d - 1)
    np.testing.assert_allclose(np.linalg.det(H0(f)), 1.0, rtol=0, atol=1e-12)


def test_so_completion_deterministic():
    """Two calls give bitwise-equal completions (no random vector), also per sample."""
    rng = np.random.default_rng(5)
    for d in DIMS:
        G = get_group(f"SO({d})")
        x = low_rank(rng, 30, d + 2, d, d - 1, offset=0.0)
        H1, H2 = G.frame(x).H, G.frame(x.copy()).H
        np.testing.assert_array_equal(H1, H2)
        np.testing.assert_array_equal(G.frame(x[7:8]).H, H1[7:8])


# ----------------------------------------------------------- repeated singular values
def _repeated_singular_values(rng, B, n=128, d=6, centred=False):
    """x = U diag(1,1,1,1,0,0) V^T with orthonormal U (n x d) and Haar V."""
    cols = rng.standard_normal((B, n, d + 1))
    if centred:
        cols[:, :, 0] = 1.0      # the first Q column is the constant; drop it
    Q = np.linalg.qr(cols)[0]
    U = Q[:, :, 1:] if centred else Q[:, :, :d]
    V = np.linalg.qr(rng.standard_normal((B, d, d)))[0]
    s = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    return (U * s) @ np.swapaxes(V, 1, 2)


@pytest.mark.parametrize("family", FAMILIES)
def test_repeated_singular_values(family):
    """d = 6, n = 128, singular values (1,1,1,1,0,0): rank 4, projection, equivariant.
    PCA frames are not equivariant there."""
    G = get_group(f"{family}(6)")
    rng = np.random.default_rng(64)
    x = _repeated_singular_values(rng, 16, centred=_translations(family))
    x = x + 3.0 * rng.standard_normal((16, 1, 6)) * _translations(family)
    f, _ = check_equivariant(G, x, case=f"{G.name} sv (1,1,1,1,0,0)")
    np.testing.assert_array_equal(f.rank, 4)
    assert np.all(f.projected) and np.all(f.projection_is_average)
    # PCA baseline: the eigenbasis of the repeated eigenvalue is arbitrary
    backbone = point_vector_backbone(128, 6, seed=0)
    g = G.random_element(16, 1)
    out_x, fp = frame_averaged(G, backbone, x, method="pca")
    out_gx, _ = frame_averaged(G, backbone, moved(G, g, x, "point"), method="pca")
    assert fp.n_calls == (32 if _special(family) else 64)
    err = equivariance_errors(G, g, out_x, out_gx)
    record_error(f"{G.name} sv (1,1,1,1,0,0) PCA (must be large)", max(err.values()))
    assert err["vector"] >= 1e-3 and err["invariant"] >= 1e-3, err


# ------------------------------------------------------------ ties, zeros, one point
@pytest.mark.parametrize("family,d", [(fam, d) for fam in FAMILIES for d in DIMS])
def test_exactly_repeated_rows(family, d):
    """Rows repeated exactly (ties resolved by index on both sides): equivariant."""
    G = get_group(_name(family, d))
    rng = np.random.default_rng(d + 50)
    distinct = generic(rng, 80, d + 1, d)
    x = distinct[:, [0, 1, 0, 2, 1, 0] + list(range(3, d + 1)) + [d, 2]]
    f, _ = check_equivariant(G, x, case=f"{G.name} repeated rows")
    np.testing.assert_array_equal(f.rank, d)
    # equal-norm rows (a regular polygon/cross-polytope-like set) tie in the pivot band
    signs = np.concatenate([np.eye(d), -np.eye(d)], axis=0)
    Q = get_group(f"O({d})").random_element(60, 3).T
    sym = signs[None] @ Q + (3.0 * rng.standard_normal((60, 1, d)) if _translations(family)
                            else 0.0)
    check_equivariant(G, sym, case=f"{G.name} +-e_i ties", seed=2)


@pytest.mark.parametrize("family,d", [(fam, d) for fam in FAMILIES for d in (1,) + DIMS])
def test_all_zero_sample(family, d):
    """An all-zero sample: rank 0, zero canonical input, no crash, others unaffected."""
    G = get_group(_name(family, d))
    rng = np.random.default_rng(d)
    x = generic(rng, 12, d + 3, d)
    x[[0, 5, 11]] = 0.0
    f = G.frame(x)
    np.testing.assert_array_equal(f.rank[[0, 5, 11]], 0)
    c = f.to_canonical(x)
    assert np.all(c[[0, 5, 11]] == 0.0)
    assert np.all(np.isfinite(f.H)) and np.all(np.isfinite(f.conditioning))
    trivial = _special(family) and d == 1
    if not trivial:
        assert np.all(f.H[[0, 5, 11]] == 0.0)
        assert np.all(f.projected[[0, 5, 11]])
    # the other samples get the frame they get alone
    alone = G.frame(x[[1, 2, 3]])
    np.testing.assert_allclose(f.H[[1, 2, 3]], alone.H, rtol=0, atol=1e-15)
    backbone = point_vector_backbone(d + 3, d)
    out, _ = frame_averaged(G, backbone, x)
    for key in out:
        assert np.all(np.isfinite(out[key]))
    if not trivial:
        assert np.all(out["vector"][[0, 5, 11]] == 0.0)
        assert np.all(out["point"][[0, 5, 11]] == 0.0)
    # and the zero samples do not break equivariance of the batch
    check_equivariant(G, x, control=not trivial, case=f"{G.name} zero samples",
                      tol=TOL64)


@pytest.mark.parametrize("family,d", [(fam, d) for fam in ("E", "SE") for d in DIMS]
                         + [("E", 1)])
def test_one_point(family, d):
    """One point for E/SE: rank 0, the point output is t (= the point itself)."""
    G = get_group(_name(family, d))
    rng = np.random.default_rng(d)
    x = generic(rng, 50, 1, d)
    f, out = check_equivariant(G, x, case=f"{G.name} one point", seed=3)
    np.testing.assert_array_equal(f.rank, 0)
    np.testing.assert_array_equal(f.t, x[:, 0])
    assert np.all(f.to_canonical(x) == 0.0)
    np.testing.assert_array_equal(out["point"], x)
    assert np.all(out["vector"] == 0.0)


@pytest.mark.parametrize("family,d", [(fam, d) for fam in ("E", "SE") for d in DIMS])
def test_identical_points_have_rank_zero(family, d):
    """n bitwise-identical points are one E-orbit with the all-zero sample (g.0 = b):
    rank 0, canonical input exactly 0, point output exactly t, vector output 0."""
    n = 5
    G = get_group(_name(family, d))
    rng = np.random.default_rng(n + d)
    x = np.repeat(10.0 * rng.standard_normal((200, 1, d)), n, axis=1)
    f = G.frame(x)
    np.testing.assert_array_equal(f.rank, 0)
    assert np.all(f.to_canonical(x) == 0.0)
    out, _ = frame_averaged(G, point_vector_backbone(n, d), x)
    assert np.all(out["vector"] == 0.0)
    np.testing.assert_array_equal(out["point"], np.broadcast_to(f.t[:, None], x.shape))


def test_all_rows_identical():
    """Identical rows: O sees one direction (rank 1), E sees nothing after centring."""
    rng = np.random.default_rng(0)
    x = np.repeat(generic(rng, 40, 1, 3), 5, axis=1)
    f, _ = check_equivariant(get_group("O(3)"), x, case="O(3) identical rows")
    np.testing.assert_array_equal(f.rank, 1)
    f, out = check_equivariant(get_group("SE(3)"), x, case="SE(3) identical rows")
    np.testing.assert_array_equal(f.rank, 0)
    np.testing.assert_allclose(out["point"], x, rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------- scales
@pytest.mark.parametrize("family,d", [(fam, d) for fam in FAMILIES for d in DIMS])
@pytest.mark.parametrize("rule", ["pivoted", "first"])
def test_power_of_two_scaling_is_exact(family, d, rule):
    """x * 2^(+-20): bitwise-identical decisions and frames, canonical input scaled by
    exactly the factor (no absolute thresholds)."""
    G = get_group(_name(family, d))
    rng = np.random.default_rng(d)
    x = np.concatenate([generic(rng, 20, d + 3, d)]
                       + [low_rank(rng, 10, d + 3, d, r) for r in range(1, d)]
                       + [np.zeros((2, d + 3, d)),
                          generic(rng, 4, d + 3, d)[:, [i // 2 for i in range(d + 3)]]],
                       axis=0)
    vel = rng.standard_normal(x.shape)
    f = G.frame(x, rule=rule)
    fv = G.frame(x, vel, rule=rule)
    for factor in (2.0 ** 20, 2.0 ** -20):
        for frame, scaled in ((f, G.frame(x * factor, rule=rule)),
                              (fv, G.frame(x * factor, vel * factor, rule=rule))):
            np.testing.assert_array_equal(scaled.rank, frame.rank)
            np.testing.assert_array_equal(scaled.projected, frame.projected)
            np.testing.assert_array_equal(scaled.conditioning, frame.conditioning)
            np.testing.assert_array_equal(scaled.H, frame.H)
            if _translations(family):
                np.testing.assert_array_equal(scaled.t, frame.t * factor)
            np.testing.assert_array_equal(scaled.to_canonical(x * factor),
                                          frame.to_canonical(x) * factor)
            np.testing.assert_array_equal(scaled.to_canonical(vel * factor, "vector"),
                                          frame.to_canonical(vel, "vector") * factor)


@pytest.mark.parametrize("factor", [1e6, 1e-6])
@pytest.mark.parametrize("family,d", [(fam, d) for fam in FAMILIES for d in DIMS])
def test_large_and_small_scales_equivariant(family, d, factor):
    """x * 1e+-6 stays equivariant within 1e-10 (translations scaled with the data, as
    b ~ N(0, 10^2) is 'larger than the data scale' at unit scale)."""
    G = get_group(_name(family, d))
    rng = np.random.default_rng(d)
    offset = 3.0 if _translations(family) else 0.0
    x = np.concatenate([generic(rng, 40, d + 3, d),
                        low_rank(rng, 20, d + 3, d, d - 1, offset=offset)])
    g = G.random_element(len(x), 9, translation_scale=10.0 * factor)
    check_equivariant(G, x * factor, element=g, case=f"{G.name} x*{factor:g}")


# ---------------------------------------------------------------------------- float32
@pytest.mark.parametrize("family,d", [(fam, d) for fam in FAMILIES for d in (1,) + DIMS
                                      if not (fam == "SO" and d == 1)])
def test_float32_input(family, d):
    """float32 in: canonical input and outputs float32, error <= 1e-5 (the protocol's
    tolerance)."""
    G = get_group(_name(family, d))
    rng = np.random.default_rng(d)
    x64 = np.concatenate([generic(rng, 60, d + 3, d)]
                         + ([low_rank(rng, 20, d + 3, d, d - 1,
                                      offset=3.0 if _translations(family) else 0.0)]
                            if d > 1 else []))
    x = x64.astype(np.float32)
    f, out = check_equivariant(G, x, tol=TOL32, case=f"{G.name} float32")
    assert f.H.dtype == np.float64
    assert f.to_canonical(x).dtype == np.float32
    for key in out:
        assert out[key].dtype == np.float32, key


def test_float32_rank_tolerance_is_relative_to_dtype():
    """The default rank tolerance is sqrt(eps) of the input dtype: a 1e-6 relative
    off-plane component is rank 3 in float64 but rank 2 in float32."""
    rng = np.random.default_rng(0)
    x = low_rank(rng, 10, 8, 3, 2, offset=0.0)
    normal = span_complement(x, 2, centred=False)[..., 0]
    x = x + 1e-6 * np.max(np.abs(x)) * rng.standard_normal((10, 8, 1)) * normal[:, None, :]
    G = get_group("O(3)")
    np.testing.assert_array_equal(G.frame(x).rank, 3)
    np.testing.assert_array_equal(G.frame(x.astype(np.float32)).rank, 2)
    np.testing.assert_array_equal(G.frame(x, tol=1e-3).rank, 2)


# -------------------------------------------------------------------------- PCA frames
@pytest.mark.parametrize("family,d", [(fam, d) for fam in FAMILIES for d in DIMS])
def test_pca_frames_generic(family, d):
    """Puny et al.'s sign-flip PCA frames: 2^d (2^(d-1) for SO/SE) calls, equivariant on
    generic data."""
    G = get_group(_name(family, d))
    rng = np.random.default_rng(d)
    x = generic(rng, 40 if d == 6 else 100, d + 4, d)
    f, _ = check_equivariant(G, x, method="pca", case=f"{G.name} PCA generic")
    K = 2 ** (d - 1) if _special(family) else 2 ** d
    assert f.n_calls == K and f.H.shape == (len(x), K, d, d)
    H = f.H
    np.testing.assert_allclose(H @ np.swapaxes(H, -1, -2),
                               np.broadcast_to(np.eye(d), H.shape), rtol=0, atol=1e-12)
    dets = np.linalg.det(H)
    if _special(family):
        np.testing.assert_allclose(dets, 1.0, rtol=0, atol=1e-12)
    else:
        np.testing.assert_allclose(np.sort(np.round(dets), axis=1),
                                   np.repeat([[-1.0] * (K // 2) + [1.0] * (K // 2)],
                                             len(x), axis=0))


# ------------------------------------------------------ several fields, velocities
@pytest.mark.parametrize("family", ["E", "SE"])
def test_several_point_fields_and_velocities(family):
    """Two point fields and a velocity field: t from the first point field only, vectors
    never centred; all fields transformed by their kinds."""
    G = get_group(f"{family}(3)")
    rng = np.random.default_rng(3)
    pos = generic(rng, 80, 5, 3)
    pos2 = pos + 0.5 * rng.standard_normal(pos.shape)
    vel = rng.standard_normal(pos.shape)
    f, _ = check_equivariant(G, [pos, pos2], vel, case=f"{G.name} 2 points + velocity")
    np.testing.assert_allclose(f.t, pos.mean(axis=1), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(f.rank, 3)
    # the same frame maps pos2 and vel consistently: (x - t) H^T and v H^T
    H = H0(f)
    np.testing.assert_allclose(f.to_canonical(pos2)[:, 0],
                               (pos2 - f.t[:, None]) @ np.swapaxes(H, 1, 2), rtol=0,
                               atol=1e-13)
    np.testing.assert_allclose(f.to_canonical(vel, "vector")[:, 0],
                               vel @ np.swapaxes(H, 1, 2), rtol=0, atol=1e-13)


@pytest.mark.parametrize("family", ["E", "SE"])
def test_velocities_fix_frame_of_collinear_positions(family):
    """Collinear positions alone give rank 1; with velocities stacked in, rank 3."""
    G = get_group(f"{family}(3)")
    rng = np.random.default_rng(4)
    B, n = 60, 5
    direction = rng.standard_normal((B, 1, 3))
    pos = rng.standard_normal((B, n, 1)) * direction + 3.0 * rng.standard_normal((B, 1, 3))
    vel = rng.standard_normal((B, n, 3))
    f_pos, _ = check_equivariant(G, pos, case=f"{G.name} collinear", seed=5)
    np.testing.assert_array_equal(f_pos.rank, 1)
    assert np.all(f_pos.projected)
    f, _ = check_equivariant(G, pos, vel, case=f"{G.name} collinear + velocity", seed=5)
    np.testing.assert_array_equal(f.rank, 3)
    assert not np.any(f.projected)


def test_translation_groups_need_points():
    vel = np.ones((2, 3, 3))
    with pytest.raises(ValueError, match="point"):
        get_group("E(3)").frame(None, vel)
    # O(3) accepts vectors alone
    assert get_group("O(3)").frame(None, vel).rank.tolist() == [1, 1]


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["O(3)", "SO(3)", "E(3)", "SE(3)"])
def test_non_finite_input(name, bad):
    G = get_group(name)
    x = np.ones((20, 4, 3))
    x[3, 1, 2] = bad
    x[17, 0, 0] = bad
    with pytest.raises(NonFiniteInputError) as info:
        G.frame(x)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "NaN or inf" in message
    assert "2 sample(s)" in message and "[3, 17]" in message
    # in a second (vector) field too
    v = np.ones((20, 4, 3))
    v[11, 2, 1] = bad
    with pytest.raises(NonFiniteInputError, match=r"NaN or inf.*\[11\]"):
        G.frame(np.ones((20, 4, 3)), v)


def test_non_finite_index_list_is_truncated():
    x = np.ones((30, 2, 2))
    x[::2] = np.nan
    with pytest.raises(NonFiniteInputError) as info:
        get_group("O(2)").frame(x)
    message = str(info.value)
    assert "15 sample(s)" in message and "[0, 2, 4, 6, 8, 10, 12, 14, 16, 18, ...]" in message


@pytest.mark.parametrize("name", ["O(3)", "SE(3)"])
def test_wrong_width(name):
    G = get_group(name)
    with pytest.raises(ValueError, match=r"width 3.*width 4"):
        G.frame(np.ones((2, 5, 4)))
    with pytest.raises(ValueError, match="width 2"):
        G.frame(np.ones((2, 5, 3)), np.ones((2, 5, 2)))
    f = G.frame(np.random.default_rng(0).standard_normal((2, 5, 3)))
    with pytest.raises(ValueError, match="width 4"):
        f.to_canonical(np.ones((2, 5, 4)), "vector")
    with pytest.raises(ValueError, match="width 2"):
        f.from_canonical(np.ones((2, 1, 5, 2)), "point")


def test_wrong_number_of_dimensions_and_samples():
    G = get_group("O(3)")
    with pytest.raises(ValueError, match="shape"):
        G.frame(np.ones((5, 3)))
    with pytest.raises(ValueError, match="samples"):
        G.frame(np.ones((2, 5, 3)), np.ones((3, 5, 3)))
    with pytest.raises(ValueError):
        G.frame(None)


@pytest.mark.parametrize("name", ["O(3)", "SO(2)", "E(3)", "SE(6)"])
def test_complex_input(name):
    G = get_group(name)
    d = G.d
    with pytest.raises(ValueError, match=r"U\(d\)"):
        G.frame(np.ones((2, 4, d), dtype=complex))
    with pytest.raises(ValueError, match=r"U\(d\)"):
        G.frame(np.ones((2, 4, d)), np.ones((2, 4, d), dtype=np.complex64))


def test_bad_method_and_rule():
    G = get_group("O(3)")
    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    with pytest.raises(ValueError, match="method"):
        G.frame(x, method="svd")
    with pytest.raises(ValueError, match="rule"):
        G.frame(x, rule="last")


@pytest.mark.parametrize("bad", ["X(3)", "O(0)", "SE(0)", "O(-1)", "E(1,3)", "O(2,2)",
                                 "O(3,1)", "O(d)", "O3", ""])
def test_get_group_rejects_names(bad):
    with pytest.raises(ValueError) as info:
        get_group(bad)
    assert isinstance(info.value, GroupNotFoundError)
    assert "O(d)" in str(info.value)      # names what is available


@pytest.mark.parametrize("bad", [3, 3.0, ("O", 3), b"O(3)"])
def test_get_group_rejects_non_strings(bad):
    with pytest.raises(ValueError, match="string") as info:
        get_group(bad)
    assert isinstance(info.value, GroupNotFoundError)


@pytest.mark.parametrize("d", [0, -2, 2.5, True])
@pytest.mark.parametrize("make", [OrthogonalGroup, UnitaryGroup, LinearGroup],
                         ids=["O", "U", "GL"])
def test_matrix_groups_reject_bad_dimension(make, d):
    with pytest.raises(ValueError, match=rf"dimension must be an integer d >= 1; got d={d!r}"):
        make(d)


# ------------------------------------------------------------------ group objects
def test_group_equality_hash_repr_pickle():
    G = get_group("SE(3)")
    assert isinstance(G, Group) and isinstance(G, OrthogonalGroup)
    assert G.d == 3 and G.special and G.has_translations
    assert G == get_group(" se ( 3 ) ") == OrthogonalGroup(3, special=True, translations=True)
    assert hash(G) == hash(get_group("SE(3)"))
    assert get_group("E(3)") != G and get_group("SO(3)") != G and get_group("SE(2)") != G
    assert G != "SE(3)"
    assert get_group(G) is G
    assert repr(G) == "get_group('SE(3)')" and str(G) == "SE(3)"
    assert eval(repr(G), {"get_group": get_group}) == G
    assert len({get_group(f"{fam}({d})") for fam in FAMILIES for d in (1, 2, 3)
                for _ in range(2)}) == 12
    names = [get_group(f"{fam}(4)").name for fam in FAMILIES]
    assert names == ["O(4)", "SO(4)", "E(4)", "SE(4)"]
    clone = pickle.loads(pickle.dumps(G))
    assert clone == G and hash(clone) == hash(G)
    x = np.random.default_rng(0).standard_normal((4, 5, 3))
    np.testing.assert_array_equal(clone.frame(x).H, G.frame(x).H)
    np.testing.assert_array_equal(clone.frame(x).t, G.frame(x).t)


@pytest.mark.parametrize("family,d", [(fam, d) for fam in FAMILIES for d in (1,) + DIMS])
def test_random_element(family, d):
    G = get_group(_name(family, d))
    g = G.random_element(200, 0)
    assert isinstance(g, GroupElement)
    T = g.T
    assert T.shape == (200, d, d) and T.dtype == np.float64
    np.testing.assert_allclose(T @ np.swapaxes(T, 1, 2), np.broadcast_to(np.eye(d), T.shape),
                               rtol=0, atol=1e-13)
    dets = np.linalg.det(T)
    if _special(family):
        np.testing.assert_allclose(dets, 1.0, rtol=0, atol=1e-13)
    else:
        assert 0.3 < np.mean(dets < 0) < 0.7     # both components, about evenly
    if _translations(family):
        assert g.b.shape == (200, d)
        assert 5.0 < np.std(g.b) < 15.0          # N(0, 10^2)
    else:
        assert g.b is None
    again = G.random_element(200, 0)
    np.testing.assert_array_equal(again.T, T)
    if d > 1:
        assert not np.array_equal(G.random_element(200, 1).T, T)
        # Haar: the mean of the entries is about 0 and E[T_ij^2] = 1/d
        np.testing.assert_allclose(np.mean(T ** 2), 1.0 / d, rtol=0.1)
        assert abs(np.mean(T)) < 0.1


def test_act_by_kind():
    G = get_group("E(3)")
    g = G.random_element(4, 2)
    x = np.random.default_rng(0).standard_normal((4, 6, 3))
    np.testing.assert_allclose(G.act(g, x, "point"), x @ g.T + g.b[:, None], rtol=0,
                               atol=1e-14)
    np.testing.assert_allclose(G.act(g, x, "vector"), x @ g.T, rtol=0, atol=1e-14)
    assert G.act(g, x, "scalar") is x
    with pytest.raises(ValueError, match="kind"):
        G.act(g, x, "edge")


# --------------------------------------------------------------------- diagnostics
def test_diagnostics_and_conditioning():
    G = get_group("O(3)")
    rng = np.random.default_rng(0)
    Q = G.random_element(5, 0).T                     # orthonormal rows: conditioning 1
    x = np.concatenate([Q, 1e-3 * rng.standard_normal((5, 2, 3))], axis=1)
    f = G.frame(x)
    diag = f.diagnostics
    assert set(diag) >= {"rank", "frame_size", "projected", "projection_is_average",
                         "conditioning"}
    np.testing.assert_array_equal(diag["rank"], 3)
    np.testing.assert_array_equal(diag["frame_size"], 1.0)
    np.testing.assert_allclose(diag["conditioning"], 1.0, rtol=0, atol=1e-12)
    # rows of norms 1 and 1e-4 in orthogonal directions: conditioning 1e4
    y = np.zeros((1, 2, 3))
    y[0, 0, 0], y[0, 1, 1] = 1.0, 1e-4
    f = G.frame(y)
    np.testing.assert_allclose(f.conditioning, 1e4, rtol=1e-12)
    assert f.rank.tolist() == [2] and f.projected.tolist() == [True]
    part = G.frame(x)[1:3]
    assert isinstance(part, Frame) and part.n_samples == 2
    both = Frame.concat([G.frame(x[:2]), G.frame(x[2:])])
    np.testing.assert_array_equal(both.H, G.frame(x).H)


def test_pivoted_and_first_choose_differently_but_both_equivariant():
    """Rows in index order start nearly parallel: 'first' picks them, 'pivoted' picks the
    largest residuals; the canonical forms differ, both maps are equivariant."""
    rng = np.random.default_rng(2)
    B = 50
    a = rng.standard_normal((B, 1, 3))
    x = np.concatenate([a, a + 1e-3 * rng.standard_normal((B, 1, 3)),
                        5.0 * rng.standard_normal((B, 4, 3))], axis=1)
    G = get_group("O(3)")
    f_first = G.frame(x, rule="first")
    f_piv = G.frame(x, rule="pivoted")
    assert np.median(f_first.conditioning) > 100 * np.median(f_piv.conditioning)
    np.testing.assert_allclose(H0(f_first)[:, 0] * np.linalg.norm(a[:, 0], axis=-1)[:, None],
                               a[:, 0], rtol=0, atol=1e-12)
    for rule in ("first", "pivoted"):
        check_equivariant(G, x, rule=rule, case=f"O(3) ill-ordered rows {rule}")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ["minimal", "pca"])
def test_inputs_not_modified(family, method):
    """frame() and the canonical maps never write into the caller's arrays."""
    G = get_group(f"{family}(3)")
    rng = np.random.default_rng(0)
    arrays = {
        "pos": generic(rng, 10, 6, 3),
        "pos2": generic(rng, 10, 6, 3),
        "vel": rng.standard_normal((10, 6, 3)),
        "pos32": generic(rng, 10, 6, 3).astype(np.float32),
        # non-contiguous views
        "view": generic(rng, 10, 12, 3)[:, ::2],
        "fortran": np.asfortranarray(generic(rng, 10, 6, 3)),
    }
    copies = {k: v.copy() for k, v in arrays.items()}
    frames = [G.frame(arrays["pos"], method=method),
              G.frame([arrays["pos"], arrays["pos2"]], arrays["vel"], method=method),
              G.frame(arrays["pos32"], method=method),
              G.frame(arrays["view"], method=method),
              G.frame(arrays["fortran"], arrays["vel"], method=method)]
    for f in frames:
        y = f.to_canonical(arrays["pos"])
        f.from_canonical(y, "point")
        f.to_canonical(arrays["vel"], "vector")
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], copies[k], err_msg=k)
    # frames of views equal frames of contiguous copies
    np.testing.assert_array_equal(G.frame(arrays["view"]).H,
                                  G.frame(np.ascontiguousarray(arrays["view"])).H)
    np.testing.assert_array_equal(G.frame(arrays["fortran"]).H,
                                  G.frame(np.ascontiguousarray(arrays["fortran"])).H)


@pytest.mark.parametrize("name", ["O(3)", "SE(3)"])
def test_integer_input_and_empty_batch(name):
    """Integer rows are promoted to float64 (same frames); an empty batch gives an empty
    frame."""
    G = get_group(name)
    xi = np.random.default_rng(0).integers(-5, 5, (6, 5, 3))
    f, f64 = G.frame(xi), G.frame(xi.astype(np.float64))
    np.testing.assert_array_equal(f.H, f64.H)
    c = f.to_canonical(xi)
    assert c.dtype == np.float64
    np.testing.assert_array_equal(c, f64.to_canonical(xi.astype(np.float64)))
    empty = G.frame(np.zeros((0, 5, 3)))
    assert empty.H.shape == (0, 1, 3, 3) and empty.rank.shape == (0,)
