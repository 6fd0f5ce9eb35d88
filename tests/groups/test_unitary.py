"""Frames of U(d) and SU(d): the test protocol of tests/groups/__init__.py for complex rows.

Every equivariance test wraps a deliberately non-equivariant backbone (a fixed-seed MLP
with biases and tanh on the flattened canonical input, read as real blocks [Re | Im])
as

    F(x) = from_canonical(backbone(to_canonical(x)))

draws one Haar-random group element per sample and asserts the relative error

    e_max = max |g.F(x) - F(g.x)| / max |F(g.x)|

against the protocol's tolerances (1e-10 in float64, 1e-5 for complex64 / float32
input). Each such test is paired with a control showing that the bare backbone is far
from equivariant (>= 1e-2), so the assertion can fail. Estimator-level tests run
FrameAveragingRegressor / MinimalFrameCanonicalizer on real-block columns through
``check_equivariance``.

Set MFA_PRINT_ERRORS=1 and run with ``-s`` to print the largest error per case.
"""

import math
import pickle

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeRegressor

from mfa_sklearn import FrameAveragingRegressor, MinimalFrameCanonicalizer, check_equivariance
from mfa_sklearn.exceptions import LayoutError, NonFiniteInputError
from mfa_sklearn.groups import Group, GroupElement, get_group
from mfa_sklearn.groups.unitary import UnitaryFrame, UnitaryGroup
from mfa_sklearn.layout import Layout
from mfa_sklearn.testing import apply_group, assert_equivariant
from tests._helpers import (
    CONTROL,
    H0,
    assert_frame_equivariant,
    frame_averaged,
    point_vector_backbone,
    record_error,
    span_complement,
)

FAMILIES = ("U", "SU")
DIMS = (1, 2, 3, 6)
TOL64 = 1e-10          # protocol tolerance, float64 data and frames
TOL32 = 1e-5           # protocol tolerance, complex64 / float32 input, frames in complex128
TOL_EST = 1e-9         # estimator-level bound, as in test_estimators.py


# --------------------------------------------------------------------------- helpers
def _trivial(family, d):
    """SU(1) = {1}: nothing can fail, so no control."""
    return family == "SU" and d == 1


def crandn(rng, shape):
    """Standard complex Gaussian entries (N + iN) / sqrt(2)."""
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2.0)


def generic(rng, B, n, d):
    return crandn(rng, (B, n, d))


def low_rank(rng, B, n, d, r):
    """Random complex (n x r) times (r x d): rank r."""
    return crandn(rng, (B, n, r)) @ crandn(rng, (B, r, d))


def hermitian(A):
    return np.conj(np.swapaxes(A, -1, -2))


def check_equivariant(G, points, vectors=None, *, tol=TOL64, **kwargs):
    """Assert e_max <= tol for the complex vector and point outputs and the real
    invariant, and an O(1) control (see ``assert_frame_equivariant``); return the
    frame of x and F(x)."""
    checked = assert_frame_equivariant(G, points, vectors, bound=tol, complex=True,
                                       **kwargs)
    return checked.frame, checked.outputs


CASES = [(fam, d) for fam in FAMILIES for d in DIMS]


def _group(family, d):
    return get_group(f"{family}({d})")


# ------------------------------------------------------------------ generic equivariance
@pytest.mark.parametrize("rule", ["pivoted", "first"])
@pytest.mark.parametrize("family,d", CASES)
def test_generic_equivariance(family, d, rule):
    G = _group(family, d)
    rng = np.random.default_rng(10 * d + len(family))
    n = d + 4
    x = generic(rng, 100, n, d)
    f, _ = check_equivariant(G, x, rule=rule, control=not _trivial(family, d),
                             case=f"{G.name} generic {rule}")
    assert isinstance(f, UnitaryFrame) and f.H.dtype == np.complex128
    np.testing.assert_array_equal(f.rank, d)
    assert not np.any(f.projected) and np.all(f.projection_is_average)
    assert f.n_calls == 1 and f.t is None
    assert np.all(np.isfinite(f.conditioning)) and np.all(f.conditioning >= 1.0)


@pytest.mark.parametrize("family,d", CASES)
def test_real_input_is_promoted(family, d):
    """Real rows are complex rows with zero imaginary part: the same frames; complex out."""
    G = _group(family, d)
    x = np.random.default_rng(d).standard_normal((30, d + 2, d))
    f = G.frame(x)
    np.testing.assert_array_equal(f.H, G.frame(x.astype(np.complex128)).H)
    assert f.to_canonical(x).dtype == np.complex128
    assert f.to_canonical(x.astype(np.float32)).dtype == np.complex64
    check_equivariant(G, x, control=not _trivial(family, d), case=f"{G.name} real input")


@pytest.mark.parametrize("family", FAMILIES)
def test_points_and_vectors_stacked(family):
    """Two fields define one frame, applied to both: rank from the stacked rows."""
    G = _group(family, 3)
    rng = np.random.default_rng(3)
    pos = low_rank(rng, 60, 5, 3, 1)          # rank 1 alone
    vel = generic(rng, 60, 5, 3)
    f, _ = check_equivariant(G, pos, vel, case=f"{G.name} points + vectors")
    np.testing.assert_array_equal(f.rank, 3)
    np.testing.assert_allclose(f.to_canonical(vel, "vector")[:, 0], vel @ hermitian(H0(f)),
                               rtol=0, atol=1e-13)


@pytest.mark.parametrize("family,d", CASES)
def test_frames_unitary(family, d):
    """H H^H = I on the occupied rows, zero rows beyond; det H = 1 for SU at rank >= d-1."""
    G = _group(family, d)
    rng = np.random.default_rng(d)
    batches = [generic(rng, 30, d + 3, d)] + [low_rank(rng, 10, d + 3, d, r) for r in range(d)]
    x = np.concatenate(batches, axis=0)
    f = G.frame(x)
    H = H0(f)
    occupied = f.rank + (f.rank == d - 1) if family == "SU" else f.rank
    if _trivial(family, d):
        occupied = np.ones_like(f.rank)
    for b in range(len(x)):
        k = int(occupied[b])
        np.testing.assert_allclose(H[b, :k] @ hermitian(H[b, :k]), np.eye(k), rtol=0,
                                   atol=1e-12)
        assert np.all(H[b, k:] == 0.0)
    if family == "SU":
        full = occupied == d
        assert full.sum() >= 40
        np.testing.assert_allclose(np.linalg.det(H[full]), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("d", [2, 3, 6])
def test_phase_conventions(d):
    """Each frame vector is a positive multiple of its residual: the generating row's
    coordinate z_k w_j^H is real and positive."""
    rng = np.random.default_rng(d)
    x = generic(rng, 50, d + 3, d)
    scale = np.max(np.abs(x))
    # "first": rows 0..d-1 generate slots 0..d-1; canonical rows are lower triangular
    # with a real positive diagonal (the unique QR with positive R_jj)
    first = get_group(f"U({d})").frame(x, rule="first").to_canonical(x)[:, 0]
    square = first[:, :d, :d]
    diag = np.diagonal(square, axis1=1, axis2=2)
    assert np.all(diag.real > 0.0)
    assert np.max(np.abs(diag.imag)) <= 1e-13 * scale
    assert np.max(np.abs(np.triu(square, 1))) <= 1e-13 * scale
    # QR of x^T: the same triangle, with phases fixed to make the diagonal positive
    _, R = np.linalg.qr(np.swapaxes(x[:, :d], 1, 2))
    phase = np.diagonal(R, axis1=1, axis2=2) / np.abs(np.diagonal(R, axis1=1, axis2=2))
    np.testing.assert_allclose(square, np.swapaxes(R * np.conj(phase)[:, :, None], 1, 2),
                               rtol=0, atol=1e-12 * scale)
    # "pivoted": slot 0 comes from the row of largest norm (first in the tie band)
    c = get_group(f"U({d})").frame(x).to_canonical(x)[:, 0]
    q = np.sum(np.abs(x) ** 2, axis=-1)
    k0 = np.argmax(q >= (1.0 - np.finfo(float).eps ** (1 / 3)) * q.max(axis=1, keepdims=True),
                   axis=1)
    lead = c[np.arange(len(x)), k0]
    np.testing.assert_allclose(lead[:, 0], np.sqrt(q[np.arange(len(x)), k0]), rtol=1e-13,
                               atol=0)
    assert np.max(np.abs(lead[:, 1:])) <= 1e-13 * scale
    # SU keeps the convention on rows 0..d-2 (row d-1 carries the determinant phase)
    su = get_group(f"SU({d})").frame(x, rule="first").to_canonical(x)[:, 0]
    np.testing.assert_allclose(su[..., :d - 1], first[..., :d - 1], rtol=0, atol=1e-12 * scale)


# ----------------------------------------------------------------------- rank deficiency
RANK_CASES = ([("U", d, r) for d in DIMS for r in range(d)]
              + [("SU", d, r) for d in DIMS for r in range(d - 1)])


@pytest.mark.parametrize("family,d,r", RANK_CASES)
def test_rank_deficient_projection(family, d, r):
    """Rank r < d (r <= d-2 for SU): projection onto the span, equivariant; the output
    component orthogonal to the span vanishes."""
    G = _group(family, d)
    rng = np.random.default_rng(100 * d + r)
    x = low_rank(rng, 60, d + 4, d, r)
    f, out = check_equivariant(G, x, seed=r, control=r > 0, case=f"{G.name} rank<d")
    np.testing.assert_array_equal(f.rank, r)
    assert np.all(f.projected) and np.all(f.projection_is_average)
    assert np.all(H0(f)[:, r:] == 0.0)
    c = f.to_canonical(x)[:, 0]
    assert np.all(c[..., r:] == 0.0)
    if r == 0:
        return
    # pitfall regression: the canonical input is NOT identically 0 --
    # the used rows carry it, and it keeps every sample's norm (unitary on the span)
    np.testing.assert_allclose(np.linalg.norm(c, axis=(1, 2)), np.linalg.norm(x, axis=(1, 2)),
                               rtol=1e-12)
    N = span_complement(x, r)
    for key in ("vector", "point"):
        off = out[key] @ N
        assert np.max(np.abs(off)) <= 1e-12 * np.max(np.abs(out[key])), key


@pytest.mark.parametrize("family", FAMILIES)
def test_rank_deficient_canonical_input_is_not_zero(family):
    """Pitfall regression: zeroing the USED rows of H would make the
    canonical input identically 0 (measured error 1.58); the unused rows are zeroed."""
    G = _group(family, 6)
    x = low_rank(np.random.default_rng(11), 20, 9, 6, 2)
    f = G.frame(x)
    H, c = H0(f), f.to_canonical(x)[:, 0]
    assert np.all(np.abs(H[:, :2]).max(axis=(1, 2)) > 0.1) and np.all(H[:, 2:] == 0.0)
    assert np.all(np.abs(c[..., :2]).max(axis=(1, 2)) > 0.1 * np.abs(x).max(axis=(1, 2)))
    check_equivariant(G, x, case=f"{G.name} rank 2 canonical not 0")


@pytest.mark.parametrize("family,d,r", RANK_CASES)
def test_rank_deficient_output_exactly_in_span(family, d, r):
    """Rows in span(e_0..e_{r-1}): outputs have exactly zero coordinates r..d-1."""
    G = _group(family, d)
    rng = np.random.default_rng(7 * d + r)
    x = np.zeros((40, d + 3, d), dtype=complex)
    x[..., :r] = generic(rng, 40, d + 3, r)
    out, f = frame_averaged(G, point_vector_backbone(d + 3, d, complex=True, seed=r), x)
    np.testing.assert_array_equal(f.rank, r)
    if _trivial(family, d):
        return
    assert np.all(out["vector"][..., r:] == 0.0) and np.all(out["point"][..., r:] == 0.0)
    assert np.all(f.to_canonical(x)[..., r:] == 0.0)
    if r:
        assert np.max(np.abs(out["vector"][..., :r])) > 1e-2


@pytest.mark.parametrize("d,n", [(d, n) for d in (2, 3, 6) for n in (d - 1, d, d + 4, 64)])
def test_su_rank_d_minus_1_completion(d, n):
    """Rank d-1 for SU: det H = 1, unitary, equivariant, the completion is the unit
    normal of the span, and the output is NOT confined to the span (U projects)."""
    G = get_group(f"SU({d})")
    rng = np.random.default_rng(1000 * d + n)
    x = low_rank(rng, 50, n, d, d - 1)
    f, out = check_equivariant(G, x, seed=n, case=f"{G.name} rank d-1")
    np.testing.assert_array_equal(f.rank, d - 1)
    assert not np.any(f.projected)
    H = H0(f)
    np.testing.assert_allclose(np.linalg.det(H), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(H @ hermitian(H), np.broadcast_to(np.eye(d), H.shape), rtol=0,
                               atol=1e-12)
    normal = np.conj(span_complement(x, d - 1)[..., 0])     # the row orthogonal to x
    np.testing.assert_allclose(np.abs(np.einsum("bi,bi->b", H[:, d - 1], np.conj(normal))),
                               1.0, rtol=0, atol=1e-12)
    for key in ("vector", "point"):
        along = np.abs(np.einsum("bni,bi->bn", out[key], np.conj(normal)))
        assert np.max(along) >= 0.05 * np.max(np.abs(out[key])), key
    # U(d) on the same data projects: the normal component vanishes
    out_u, f_u = frame_averaged(get_group(f"U({d})"),
                                point_vector_backbone(n, d, complex=True, seed=n), x)
    assert np.all(f_u.projected)
    along = np.abs(np.einsum("bni,bi->bn", out_u["vector"], np.conj(normal)))
    assert np.max(along) <= 1e-12 * np.max(np.abs(out_u["vector"]))


def test_su_completion_deterministic():
    """Two calls give bitwise-equal completions (no random vector), also per sample."""
    rng = np.random.default_rng(5)
    for d in (2, 3, 6):
        G = get_group(f"SU({d})")
        x = low_rank(rng, 30, d + 2, d, d - 1)
        H1, H2 = G.frame(x).H, G.frame(x.copy()).H
        np.testing.assert_array_equal(H1, H2)
        np.testing.assert_array_equal(G.frame(x[7:8]).H, H1[7:8])


def test_su_one_dimensional_is_trivial():
    rng = np.random.default_rng(1)
    x = np.concatenate([generic(rng, 5, 4, 1), np.zeros((2, 4, 1), complex)])
    f = get_group("SU(1)").frame(x)
    np.testing.assert_array_equal(H0(f), np.ones((7, 1, 1)))
    assert not np.any(f.projected)
    np.testing.assert_allclose(get_group("SU(1)").random_element(20, 0).T, 1.0, rtol=0,
                               atol=1e-15)
    # U(1) by contrast removes the phase: |x_k| at the generating row
    c = get_group("U(1)").frame(x[:5], rule="first").to_canonical(x[:5])[:, 0]
    np.testing.assert_allclose(c[:, 0, 0], np.abs(x[:5, 0, 0]), rtol=1e-14, atol=0)


# ----------------------------------------------------------- repeated singular values
def _repeated_singular_values(rng, B, n=128, d=6):
    """x = U diag(1,1,1,1,0,0) V^H with orthonormal complex U (n x d), Haar-like V."""
    U = np.linalg.qr(crandn(rng, (B, n, d)))[0]
    V = np.linalg.qr(crandn(rng, (B, d, d)))[0]
    return (U * np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])) @ hermitian(V)


@pytest.mark.parametrize("family", FAMILIES)
def test_repeated_singular_values(family):
    G = _group(family, 6)
    x = _repeated_singular_values(np.random.default_rng(64), 16)
    f, _ = check_equivariant(G, x, case=f"{G.name} sv (1,1,1,1,0,0)")
    np.testing.assert_array_equal(f.rank, 4)
    assert np.all(f.projected) and np.all(f.projection_is_average)


# ------------------------------------------------------------ ties, zeros
@pytest.mark.parametrize("family,d", CASES)
def test_exactly_repeated_rows_and_ties(family, d):
    G = _group(family, d)
    rng = np.random.default_rng(d + 50)
    distinct = generic(rng, 80, d + 2, d)
    x = distinct[:, [0, 1, 0, 2, 1, 0] + list(range(3, d + 2)) + [d + 1, 2]]
    f, _ = check_equivariant(G, x, control=not _trivial(family, d),
                             case=f"{G.name} repeated rows")
    np.testing.assert_array_equal(f.rank, d)
    # equal-norm rows {e_i, -e_i, i e_i} rotated by a random unitary tie in the pivot band
    units = np.concatenate([np.eye(d), -np.eye(d), 1j * np.eye(d)], axis=0)
    sym = units[None] @ get_group(f"U({d})").random_element(60, 3).T
    check_equivariant(G, sym, seed=2, control=not _trivial(family, d),
                      case=f"{G.name} +-e_i, i e_i ties")


@pytest.mark.parametrize("family,d", CASES)
def test_all_zero_sample(family, d):
    """An all-zero sample: rank 0, zero canonical input, zero outputs, no crash."""
    G = _group(family, d)
    x = generic(np.random.default_rng(d), 12, d + 3, d)
    x[[0, 5, 11]] = 0.0
    f = G.frame(x)
    np.testing.assert_array_equal(f.rank[[0, 5, 11]], 0)
    assert np.all(f.to_canonical(x)[[0, 5, 11]] == 0.0)
    assert np.all(np.isfinite(f.H)) and np.all(np.isfinite(f.conditioning))
    np.testing.assert_allclose(H0(f)[[1, 2, 3]], H0(G.frame(x[[1, 2, 3]])), rtol=0,
                               atol=1e-15)
    out, _ = frame_averaged(G, point_vector_backbone(d + 3, d, complex=True), x)
    if not _trivial(family, d):
        assert np.all(f.H[[0, 5, 11]] == 0.0) and np.all(f.projected[[0, 5, 11]])
        assert np.all(out["vector"][[0, 5, 11]] == 0.0)
    check_equivariant(G, x, control=not _trivial(family, d), case=f"{G.name} zero samples")


# ---------------------------------------------------------------------------- scales
@pytest.mark.parametrize("rule", ["pivoted", "first"])
@pytest.mark.parametrize("family,d", CASES)
def test_power_of_two_scaling_is_exact(family, d, rule):
    """x * 2^(+-20): bitwise-identical decisions and frames, canonical input scaled by
    exactly the factor (no absolute thresholds)."""
    G = _group(family, d)
    rng = np.random.default_rng(d)
    x = np.concatenate([generic(rng, 20, d + 3, d)]
                       + [low_rank(rng, 10, d + 3, d, r) for r in range(1, d)]
                       + [np.zeros((2, d + 3, d), complex)])
    f = G.frame(x, rule=rule)
    for factor in (2.0 ** 20, 2.0 ** -20):
        scaled = G.frame(x * factor, rule=rule)
        np.testing.assert_array_equal(scaled.rank, f.rank)
        np.testing.assert_array_equal(scaled.projected, f.projected)
        np.testing.assert_array_equal(scaled.conditioning, f.conditioning)
        np.testing.assert_array_equal(scaled.H, f.H)
        np.testing.assert_array_equal(scaled.to_canonical(x * factor),
                                      f.to_canonical(x) * factor)


@pytest.mark.parametrize("factor", [1e6, 1e-6])
@pytest.mark.parametrize("family,d", CASES)
def test_large_and_small_scales_equivariant(family, d, factor):
    G = _group(family, d)
    rng = np.random.default_rng(d)
    x = np.concatenate([generic(rng, 40, d + 3, d),
                        low_rank(rng, 20, d + 3, d, max(d - 1, 1))])
    check_equivariant(G, x * factor, control=not _trivial(family, d),
                      case=f"{G.name} x*{factor:g}")


# ---------------------------------------------------------------------------- float32
@pytest.mark.parametrize("dtype", [np.complex64, np.float32])
@pytest.mark.parametrize("family,d", CASES)
def test_single_precision_input(family, d, dtype):
    """complex64 / float32 in: canonical input and outputs complex64, error <= 1e-5."""
    G = _group(family, d)
    rng = np.random.default_rng(d)
    x = np.concatenate([generic(rng, 60, d + 3, d), low_rank(rng, 20, d + 3, d, max(d - 1, 1))])
    x = (x.real if dtype == np.float32 else x).astype(dtype)
    f, out = check_equivariant(G, x, tol=TOL32, control=not _trivial(family, d),
                               case=f"{G.name} {np.dtype(dtype).name}")
    assert f.H.dtype == np.complex128
    assert f.to_canonical(x).dtype == np.complex64
    assert out["vector"].dtype == np.complex64 and out["invariant"].dtype == np.float32


def test_single_precision_rank_tolerance():
    """sqrt(eps) of the input dtype: a 1e-6 off-span component is rank 3 in complex128
    but rank 2 in complex64."""
    rng = np.random.default_rng(0)
    x = low_rank(rng, 10, 8, 3, 2)
    normal = np.conj(span_complement(x, 2)[..., 0])
    x = x + 1e-6 * np.max(np.abs(x)) * crandn(rng, (10, 8, 1)) * normal[:, None, :]
    G = get_group("U(3)")
    np.testing.assert_array_equal(G.frame(x).rank, 3)
    np.testing.assert_array_equal(G.frame(x.astype(np.complex64)).rank, 2)
    np.testing.assert_array_equal(G.frame(x, tol=1e-3).rank, 2)


# ---------------------------------------------------------------- random elements
@pytest.mark.parametrize("family,d", CASES)
def test_random_element(family, d):
    G = _group(family, d)
    g = G.random_element(400, 0, translation_scale=5.0)
    assert isinstance(g, GroupElement) and g.b is None
    T = g.T
    assert T.shape == (400, d, d) and T.dtype == np.complex128
    np.testing.assert_allclose(T @ hermitian(T), np.broadcast_to(np.eye(d), T.shape), rtol=0,
                               atol=1e-13)
    dets = np.linalg.det(T)
    if family == "SU":
        np.testing.assert_allclose(dets, 1.0, rtol=0, atol=1e-13)
    else:
        np.testing.assert_allclose(np.abs(dets), 1.0, rtol=0, atol=1e-13)
        assert abs(np.mean(dets)) < 0.2             # phases spread around the circle
    np.testing.assert_array_equal(G.random_element(400, 0).T, T)
    if not _trivial(family, d):
        assert not np.array_equal(G.random_element(400, 1).T, T)
        # Haar: E[T_ij] = 0, E|T_ij|^2 = 1/d
        np.testing.assert_allclose(np.mean(np.abs(T) ** 2), 1.0 / d, rtol=1e-12)
        assert abs(np.mean(T)) < 0.1
        if d > 1:
            assert np.std(np.abs(T[:, 0, 0]) ** 2) > 0.05


def test_act_by_kind():
    G = get_group("U(3)")
    g = G.random_element(4, 2)
    x = generic(np.random.default_rng(0), 4, 6, 3)
    np.testing.assert_allclose(G.act(g, x, "point"), x @ g.T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(G.act(g, x, "vector"), x @ g.T, rtol=0, atol=1e-15)
    assert G.act(g, x.real, "vector").dtype == np.complex128
    s = np.ones((4, 6, 2))
    assert G.act(g, s, "scalar") is s
    with pytest.raises(ValueError, match="kind"):
        G.act(g, x, "edge")


# ------------------------------------------------------------------ diagnostics
def test_diagnostics_and_frame_slices():
    G = get_group("U(3)")
    rng = np.random.default_rng(0)
    Q = G.random_element(5, 0).T                     # orthonormal rows: conditioning 1
    x = np.concatenate([Q, 1e-3 * crandn(rng, (5, 2, 3))], axis=1)
    diag = G.frame(x).diagnostics
    np.testing.assert_array_equal(diag["rank"], 3)
    np.testing.assert_array_equal(diag["frame_size"], 1.0)
    np.testing.assert_allclose(diag["conditioning"], 1.0, rtol=0, atol=1e-12)
    assert not diag["projected"].any() and diag["projection_is_average"].all()
    y = np.zeros((1, 2, 3), complex)
    y[0, 0, 0], y[0, 1, 1] = 1j, 1e-4
    f = G.frame(y)
    np.testing.assert_allclose(f.conditioning, 1e4, rtol=1e-12)
    assert f.rank.tolist() == [2] and f.projected.tolist() == [True]
    part = G.frame(x)[1:3]
    assert isinstance(part, UnitaryFrame) and part.n_samples == 2
    both = type(part).concat([G.frame(x[:2]), G.frame(x[2:])])
    assert isinstance(both, UnitaryFrame)
    np.testing.assert_array_equal(both.H, G.frame(x).H)
    # canonical form and back: from_canonical(to_canonical(x)) = x at full rank
    f = G.frame(x)
    np.testing.assert_allclose(f.from_canonical(f.to_canonical(x, "vector"), "vector"), x,
                               rtol=0, atol=1e-14)


def test_inputs_not_modified():
    rng = np.random.default_rng(0)
    arrays = {"z": generic(rng, 10, 6, 3), "v": generic(rng, 10, 6, 3),
              "view": generic(rng, 10, 12, 3)[:, ::2], "real": rng.standard_normal((10, 6, 3))}
    copies = {k: v.copy() for k, v in arrays.items()}
    for name in ("U(3)", "SU(3)"):
        G = get_group(name)
        for f in (G.frame(arrays["z"], arrays["v"]), G.frame(arrays["view"]),
                  G.frame(arrays["real"])):
            f.from_canonical(f.to_canonical(arrays["z"]), "point")
        np.testing.assert_array_equal(G.frame(arrays["view"]).H,
                                      G.frame(np.ascontiguousarray(arrays["view"])).H)
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], copies[k], err_msg=k)


def test_integer_input_and_empty_batch():
    G = get_group("SU(3)")
    xi = np.random.default_rng(0).integers(-5, 5, (6, 5, 3))
    np.testing.assert_array_equal(G.frame(xi).H, G.frame(xi.astype(np.complex128)).H)
    empty = G.frame(np.zeros((0, 5, 3), complex))
    assert empty.H.shape == (0, 1, 3, 3) and empty.rank.shape == (0,)


def test_torch_tensors():
    """The same frame math on torch tensors (complex det on the array library)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for name, r in (("SU(3)", 3), ("SU(3)", 2), ("SU(6)", 5), ("U(3)", 2)):
        G = get_group(name)
        x = low_rank(rng, 8, 7, G.d, r)
        f, ft = G.frame(x), G.frame(torch.from_numpy(x))
        np.testing.assert_allclose(ft.H.numpy(), f.H, rtol=0, atol=1e-14)
        xr = torch.tensor(x.real, requires_grad=True)
        G.frame(xr).to_canonical(xr).abs().sum().backward()
        assert torch.isfinite(xr.grad).all()


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, complex(0, np.nan), complex(1, np.inf)])
@pytest.mark.parametrize("name", ["U(3)", "SU(3)"])
def test_non_finite_input(name, bad):
    G = get_group(name)
    x = np.ones((20, 4, 3), complex)
    x[3, 1, 2] = bad
    x[17, 0, 0] = bad
    with pytest.raises(NonFiniteInputError) as info:
        G.frame(x)
    assert isinstance(info.value, ValueError)
    assert "NaN or inf" in str(info.value) and "2 sample(s)" in str(info.value)
    assert "[3, 17]" in str(info.value)
    v = np.ones((20, 4, 3))
    v[11, 2, 1] = np.nan
    with pytest.raises(NonFiniteInputError, match=r"NaN or inf.*\[11\]"):
        G.frame(np.ones((20, 4, 3), complex), v)


@pytest.mark.parametrize("name", ["U(3)", "SU(3)"])
def test_wrong_shapes(name):
    G = get_group(name)
    with pytest.raises(ValueError, match=r"width 3.*width 4"):
        G.frame(np.ones((2, 5, 4), complex))
    with pytest.raises(ValueError, match="width 2"):
        G.frame(np.ones((2, 5, 3)), np.ones((2, 5, 2)))
    with pytest.raises(ValueError, match="shape"):
        G.frame(np.ones((5, 3), complex))
    with pytest.raises(ValueError, match="0 rows"):
        G.frame(np.ones((2, 0, 3), complex))
    with pytest.raises(ValueError, match="samples"):
        G.frame(np.ones((2, 5, 3)), np.ones((3, 5, 3)))
    with pytest.raises(ValueError, match="numeric"):
        G.frame(np.ones((2, 5, 3), bool))
    with pytest.raises(ValueError, match="frame-defining"):
        G.frame(None)
    f = G.frame(generic(np.random.default_rng(0), 2, 5, 3))
    with pytest.raises(ValueError, match="width 4"):
        f.to_canonical(np.ones((2, 5, 4)), "vector")
    with pytest.raises(ValueError, match="method"):
        G.frame(np.ones((2, 5, 3)), method="pca")
    with pytest.raises(ValueError, match="rule"):
        G.frame(np.ones((2, 5, 3)), rule="last")


@pytest.mark.parametrize("name", ["O(3)", "SO(3)", "E(3)", "SE(3)"])
def test_complex_input_to_real_group_still_errors(name):
    with pytest.raises(ValueError, match=r"is real but a field is complex.*U\(d\)"):
        get_group(name).frame(np.ones((2, 4, 3), complex))


@pytest.mark.parametrize("d", [0, -2, 2.5])
def test_bad_dimension(d):
    with pytest.raises(ValueError, match="dimension"):
        UnitaryGroup(d)


# ------------------------------------------------------------------ group objects
def test_group_objects():
    G = get_group("SU(3)")
    assert isinstance(G, Group) and isinstance(G, UnitaryGroup)
    assert G.d == 3 and G.special and not G.has_translations and G.is_complex
    assert G == get_group(" su ( 3 ) ") == UnitaryGroup(3, special=True)
    assert G != get_group("U(3)") != get_group("O(3)")
    assert hash(G) == hash(get_group("SU(3)"))
    assert repr(G) == "get_group('SU(3)')" and str(G) == "SU(3)"
    assert get_group("U(2)").name == "U(2)" and not get_group("O(2)").is_complex
    clone = pickle.loads(pickle.dumps(G))
    x = generic(np.random.default_rng(0), 4, 5, 3)
    assert clone == G
    np.testing.assert_array_equal(clone.frame(x).H, G.frame(x).H)


def test_real_block_conversions():
    """from_real / to_real: [Re | Im] (..., n, 2d) <-> complex (..., n, d); identity for
    real groups and scalar fields."""
    G = get_group("U(3)")
    z = generic(np.random.default_rng(0), 4, 5, 3)
    blocks = G.to_real(z)
    np.testing.assert_array_equal(blocks, np.concatenate([z.real, z.imag], axis=-1))
    np.testing.assert_array_equal(G.from_real(blocks), z)
    assert G.from_real(blocks.astype(np.float32)).dtype == np.complex64
    s = np.ones((4, 5, 2))
    assert G.from_real(s, "scalar") is s and G.to_real(s, "scalar") is s
    o3 = get_group("O(3)")
    assert o3.from_real(blocks) is blocks and o3.to_real(blocks) is blocks
    with pytest.raises(ValueError, match="even"):
        G.from_real(np.ones((2, 5, 5)))


def test_layout_of_complex_fields():
    """2-D: all real parts (row-major), then all imaginary parts; 3-D: [Re | Im]."""
    G = get_group("U(2)")
    z = generic(np.random.default_rng(1), 3, 4, 2)
    w = np.random.default_rng(2).standard_normal((3, 4, 1))
    flat = np.concatenate([z.real.reshape(3, -1), z.imag.reshape(3, -1), w.reshape(3, -1)],
                          axis=1)
    layout = Layout.infer({"z": "point", "w": "scalar"}, G, flat.shape[1:])
    assert layout.n_rows == 4 and layout.field("z").width == 4 and layout.field("z").is_complex
    parts = layout.split(flat)
    np.testing.assert_array_equal(G.from_real(parts["z"]), z)
    np.testing.assert_array_equal(parts["w"], w)
    np.testing.assert_array_equal(layout.join(parts), flat)
    three = np.concatenate([z.real, z.imag, w], axis=-1)
    layout3 = Layout.infer({"z": "point", "w": "scalar"}, G, three.shape[1:])
    np.testing.assert_array_equal(G.from_real(layout3.split(three)["z"]), z)
    np.testing.assert_array_equal(layout3.join(layout3.split(three)), three)
    # apply_group moves the complex field, not the scalar one
    g = G.random_element(3, 0)
    moved = apply_group(G, g, flat, {"z": "point", "w": "scalar"})
    np.testing.assert_allclose(G.from_real(layout.split(moved)["z"]), z @ g.T, rtol=0,
                               atol=1e-15)
    np.testing.assert_array_equal(layout.split(moved)["w"], w)
    with pytest.raises(LayoutError, match="width 4"):
        Layout.infer({"z": ("point", 2)}, G, (16,))
    with pytest.raises(LayoutError, match="cannot divide"):
        Layout.infer("point", G, (10,))


# ---------------------------------------------------------------- estimators
def _columns(z):
    """(B, n, d) complex -> (B, 2 n d) real columns: all real parts, then imaginary."""
    return np.concatenate([z.real.reshape(len(z), -1), z.imag.reshape(len(z), -1)], axis=1)


def _targets(z, target):
    norms = np.linalg.norm(z, axis=2)
    if target == "invariant":
        return norms @ np.arange(1.0, z.shape[1] + 1)
    return _columns(z * np.tanh(norms)[..., None])


@pytest.mark.parametrize("target", ["invariant", "point"])
@pytest.mark.parametrize("make", [lambda: KNeighborsRegressor(3),
                                  lambda: DecisionTreeRegressor(random_state=0)],
                         ids=["knn", "tree"])
@pytest.mark.parametrize("group,kind", [("U(2)", "generic"), ("SU(3)", "generic"),
                                        ("U(3)", "rank1"), ("SU(3)", "rank2"),
                                        ("SU(3)", "float32")])
def test_regressor_on_real_blocks(group, kind, make, target):
    G = get_group(group)
    d, n = G.d, 5
    rng = np.random.default_rng(d)
    r = int(kind[-1]) if kind.startswith("rank") else d
    z = low_rank(rng, 200, n, d, r)
    X, y = _columns(z), _targets(z, target)
    if kind == "float32":
        X, y = X.astype(np.float32), y.astype(np.float32)
    reg = FrameAveragingRegressor(make(), group=group, target=target).fit(X[:150], y[:150])
    assert reg.predict(X[150:]).shape == y[150:].shape
    result = assert_equivariant(reg, group, X[150:], random_state=0,
                                rtol=TOL32 if kind == "float32" else TOL_EST)
    record_error(f"estimator {group} {kind} {target}", result["max_error"])
    np.testing.assert_array_equal(reg.frame_diagnostics(X[150:])["rank"], r)
    # control: the bare inner estimator is far from symmetric on the same data
    bare_model = make().fit(X[:150], y[:150])
    control = check_equivariance(bare_model, group, X[150:], target=target, random_state=0)
    assert control["max_error"] >= CONTROL, control


@pytest.mark.parametrize("group", ["U(2)", "SU(2)", "U(1)"])
def test_canonicalizer_and_3d_input(group):
    """MinimalFrameCanonicalizer on 2-D and 3-D real blocks, with a scalar field."""
    G = get_group(group)
    d, n = G.d, 4
    rng = np.random.default_rng(7)
    z, w = generic(rng, 40, n, d), rng.standard_normal((40, n, 1))
    fields = {"z": "point", "w": "scalar"}
    X2 = np.concatenate([_columns(z), w[..., 0]], axis=1)
    X3 = np.concatenate([z.real, z.imag, w], axis=-1)
    for X in (X2, X3, X2.astype(np.float32)):
        can = MinimalFrameCanonicalizer(group=group, fields=fields).fit(X)
        Xc = can.transform(X)
        assert Xc.shape == X.shape and Xc.dtype == X.dtype
        result = assert_equivariant(can, group, X, random_state=1,
                                    rtol=TOL32 if X.dtype == np.float32 else TOL64)
        record_error(f"canonicalizer {group} {X.ndim}-D {X.dtype}", result["max_error"])
    # the canonical form is the frame's x H^H, in real blocks; scalars pass through
    can = MinimalFrameCanonicalizer(group=group, fields=fields, round_bits=None).fit(X3)
    H = H0(G.frame(z, rule=can.row_rule))
    expected = np.concatenate([G.to_real(z @ hermitian(H)), w], axis=-1)
    np.testing.assert_allclose(can.transform(X3), expected, rtol=0, atol=1e-14)
    control = check_equivariance(lambda X: X, group, X3, fields=fields, random_state=1)
    assert control["max_error"] >= CONTROL
    # a regressor on 3-D real blocks, point target given as 2-D columns
    y = _targets(z, "point")
    reg = FrameAveragingRegressor(KNeighborsRegressor(3), group=group, fields=fields,
                                  target="point").fit(X3, y)
    result = assert_equivariant(reg, group, X3, random_state=2, rtol=TOL_EST)
    record_error(f"estimator {group} 3-D point", result["max_error"])


def test_estimator_input_errors():
    X = np.ones((6, 2 * 3 * 3))
    with pytest.raises(LayoutError, match="cannot divide"):
        MinimalFrameCanonicalizer(group="U(3)").fit(np.ones((6, 9)))
    with pytest.raises(LayoutError, match="width 6"):
        MinimalFrameCanonicalizer(group="U(3)").fit(np.ones((6, 3, 3)))
    X = np.random.default_rng(0).standard_normal((6, 18))
    X[4, 10] = np.nan
    with pytest.raises(NonFiniteInputError, match=r"'x'.*\[4\]"):
        MinimalFrameCanonicalizer(group="SU(3)").fit(X)
