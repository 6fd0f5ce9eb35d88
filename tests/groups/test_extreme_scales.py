"""Frames at extreme magnitudes: rows from 1e-300 to 1e300 (float64) and from 1e-35 to
1e37 (float32) give the canonical forms, diagnostics and symmetry of the same rows at
magnitude 1, and results that cannot be represented raise a clear error.

Squared norms and Gram products of rows near 1e154 overflow float64 and those of rows
near 1e-154 underflow; the frames scale each sample by a power of two first. Every test
here turns numpy's RuntimeWarnings (overflow, invalid values) and frame degeneracy
warnings (which the Lorentz frames gave for overflowing scales) into errors.
"""

import math

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from mfa_sklearn import (
    FrameAveragingRegressor,
    MinimalFrameCanonicalizer,
    check_equivariance,
    get_group,
)
from mfa_sklearn.exceptions import MagnitudeError, RankDeficientError, ResultOverflowError
from mfa_sklearn.testing import apply_group, random_group_element

pytestmark = [pytest.mark.filterwarnings("error::RuntimeWarning"),
              pytest.mark.filterwarnings(
                  "error::mfa_sklearn.exceptions.FrameDegeneracyWarning")]

SCALES64 = (1e-300, 1e-200, 1e-150, 1e-100, 1.0, 1e100, 1e150, 1e200, 1e300)
#: float32 magnitudes; the extremes are powers of two whose products with the rows'
#: entries (1e-3 to 3) stay normal float32 numbers, near both ends of float32's range
SCALES32 = (2.0 ** -116, 1e-30, 1e-20, 1e-10, 1.0, 1e10, 1e20, 1e30, 2.0 ** 123)
CLOUDS = ("generic", "rank_deficient", "duplicated")
B, N = 6, 6

#: every group family with frames computed from coordinates, and how the canonical
#: form of ``s x`` relates to that of ``x``: ``s^power`` times it (GL and Aff contain
#: the scalings, so their canonical forms do not change; SL frames have det 1)
GEOMETRIC = {"O(3)": 1, "SO(3)": 1, "E(3)": 1, "SE(3)": 1, "U(3)": 1, "SU(3)": 1,
             "O(1,3)": 1, "SO(1,3)": 1, "GL(3)": 0, "SL(3)": 1, "Aff(3)": 0,
             "S_n x O(3)": 1, "S_n x E(3)": 1, "S_n x SO(1,3)": 1}
LINEAR = ("GL(3)", "SL(3)", "Aff(3)")
#: tolerances of the relative equivariance error, float64 data (Lorentz frames and
#: linear solves amplify rounding, see the group modules)
TOL64 = {"O(1,3)": 1e-8, "SO(1,3)": 1e-8, "S_n x SO(1,3)": 1e-8, "GL(3)": 1e-9,
         "SL(3)": 1e-9, "Aff(3)": 1e-9}


def cloud(group, kind, seed=0, size=B):
    """Rows (size, N, d) of one kind for ``group``: complex for U and SU, future-directed
    timelike momenta for the Lorentz groups; entries of magnitude about 1, none below
    1e-3 in the generic clouds (so that ``2^-1000`` times them stays a normal number).
    """
    rng = np.random.default_rng(seed)
    G = get_group(group)
    d = G.d
    lorentz = G.metric is not None

    def generic(n):
        x = rng.choice([-1.0, 1.0], size=(size, n, d)) * (1e-3 + rng.random((size, n, d)))
        if lorentz:   # energy above the momentum: timelike, future-directed
            x[..., 0] = np.linalg.norm(x[..., 1:], axis=-1) + 0.5 + rng.random((size, n))
        if G.is_complex:
            x = x + 1j * rng.choice([-1.0, 1.0], (size, n, d)) * (1e-3 + rng.random(
                (size, n, d)))
        return x

    if kind == "generic":
        return generic(N)
    if kind == "duplicated":
        return generic(N)[:, [0, 1, 2, 0, 3, 1]]
    # rank 2 (an affine plane for the groups with translations; for Lorentz a plane
    # with a timelike direction)
    basis = generic(2)
    coefficients = rng.random((size, N, 2)) + 0.2
    x = coefficients @ basis
    if G.has_translations:
        x = x + generic(1)
    return x


def frame_and_canonical(G, x):
    """The frame of rows ``x`` and their canonical form, through the public API."""
    frame = G.frame(x)
    return frame, frame.to_canonical(x, "point")


def relative(a, b):
    """``max |a - b| / max |b|``."""
    a, b = np.asarray(a), np.asarray(b)
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / (scale if scale > 0 else 1.0))


def host(a):
    """A numpy array or tensor as a numpy array."""
    return a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)


def diagnostics(frame):
    """Rank, projection flag and frame size per sample, as numpy arrays."""
    return {name: host(frame.diagnostics[name])
            for name in ("rank", "projected", "frame_size")}


# -------------------------------------------------------- canonical forms and ranks
@pytest.mark.parametrize("kind", CLOUDS)
@pytest.mark.parametrize("group", GEOMETRIC)
def test_canonical_forms_scale_with_the_data(group, kind):
    """At every magnitude the canonical form is that of the rows at magnitude 1 times
    the magnitude (GL, Aff: the same), with the same rank and frame size; rank-deficient
    rows fail for GL, SL and Aff at every magnitude alike."""
    if group.startswith("S_n") and kind == "duplicated":
        pytest.importorskip("pynauty")
    G = get_group(group)
    x = cloud(group, kind)
    if group in LINEAR and kind == "rank_deficient":
        for s in SCALES64:
            with pytest.raises(RankDeficientError):
                G.frame(x * s)
        return
    frame, canon = frame_and_canonical(G, x)
    assert np.all(np.isfinite(canon))
    for s in SCALES64:
        frame_s, canon_s = frame_and_canonical(G, x * s)
        for name, value in diagnostics(frame).items():
            np.testing.assert_array_equal(diagnostics(frame_s)[name], value, err_msg=name)
        expected = canon * s ** GEOMETRIC[group]
        assert relative(canon_s, expected) <= 1e-10, (s, relative(canon_s, expected))


@pytest.mark.parametrize("group", ["S_n", "graph"])
def test_permutation_frames_are_exact_at_every_scale(group):
    """S_n and graphs only compare and permute: the canonical form of ``s x`` is exactly
    ``s`` times that of ``x``, bit for bit (S_n: tied rows included)."""
    G = get_group(group)
    rng = np.random.default_rng(3)
    if group == "graph":
        A = rng.integers(0, 3, size=(B, N, N)).astype(np.float64) + 0.5
        x = (A + np.swapaxes(A, 1, 2))[..., None]
        kind = "edge"
    else:
        x = rng.normal(size=(B, N, 2))[:, [0, 1, 2, 0, 3, 4]]   # one tie per sample
        kind = "scalar"

    def canonical(rows):
        frame = G.frame(edges=rows) if group == "graph" else G.frame(scalars=rows)
        return frame, frame.to_canonical(rows, kind)

    frame, canon = canonical(x)
    for s in SCALES64:
        frame_s, canon_s = canonical(x * s)
        np.testing.assert_array_equal(np.asarray(frame_s.perm), np.asarray(frame.perm))
        np.testing.assert_array_equal(canon_s, canon * s)


@pytest.mark.parametrize("group", GEOMETRIC)
def test_power_of_two_scalings_are_exact(group):
    """Multiplying the rows by ``2^k`` changes no decision and no bit: the frames are
    the same (orthonormal H; GL and Aff frames, data rows, times ``2^k``; t times
    ``2^k``) and the canonical forms are scaled by exactly ``2^k`` (GL, Aff: unchanged).
    SL frames are normalised by ``|det phi|^(1/d)``, a logarithm and an exponential, so
    they agree to rounding."""
    if group.startswith("S_n"):
        pytest.importorskip("pynauty")
    G = get_group(group)
    x = np.concatenate([cloud(group, kind, seed=4) for kind in CLOUDS if not (
        group in LINEAR and kind == "rank_deficient")])
    frame, canon = frame_and_canonical(G, x)
    for k in (-1000, -600, 600, 1000):
        factor = 2.0 ** k
        frame_k, canon_k = frame_and_canonical(G, x * factor)
        for name, value in diagnostics(frame).items():
            np.testing.assert_array_equal(diagnostics(frame_k)[name], value)
        if group == "SL(3)":
            assert relative(frame_k.H, frame.H) <= 1e-14
        else:   # GL and Aff frames are data rows: they scale with the data
            H_power = 1 - GEOMETRIC[group]
            np.testing.assert_array_equal(frame_k.H, frame.H * factor ** H_power)
        if frame.t is not None:
            np.testing.assert_array_equal(frame_k.t, frame.t * factor)
        if hasattr(frame, "perm"):
            np.testing.assert_array_equal(frame_k.perm, frame.perm)
        if abs(k) <= 600 and group != "SL(3)":   # no subnormal canonical coordinate
            np.testing.assert_array_equal(canon_k, canon * factor ** GEOMETRIC[group])


@pytest.mark.parametrize("group", GEOMETRIC)
def test_float32_rows_at_every_float32_scale(group):
    """float32 rows (frames in float64) from 1e-35 to 1e37: canonical forms in float32,
    equal to those of the float32 rows at magnitude 1 times the magnitude, same rank."""
    G = get_group(group)
    x = cloud(group, "generic", seed=5)
    single = np.complex64 if G.is_complex else np.float32
    frame, canon = frame_and_canonical(G, x.astype(single))
    for s in SCALES32:
        x32 = (x * s).astype(single)
        frame_s, canon_s = frame_and_canonical(G, x32)
        assert canon_s.dtype == single
        np.testing.assert_array_equal(diagnostics(frame_s)["rank"],
                                      diagnostics(frame)["rank"])
        expected = canon.astype(np.complex128 if G.is_complex else np.float64)
        expected = expected * s ** GEOMETRIC[group]
        assert relative(canon_s.astype(expected.dtype), expected) <= 1e-5, s


# --------------------------------------------------- equivariance through estimators
class HomogeneousMLPRegressor(RegressorMixin, BaseEstimator):
    """A fixed random tanh MLP on the flattened input, homogeneous of degree 1: the
    input is divided by its per-sample max-abs and the output multiplied by it, so the
    backbone works at every magnitude. It learns nothing (``fit`` reads only the output
    width) and is deliberately neither invariant nor equivariant."""

    def __init__(self, hidden=16, seed=0):
        self.hidden = hidden
        self.seed = seed

    def fit(self, X, y):
        y = np.asarray(y)
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        self.one_d_ = y.ndim == 1
        rng = np.random.default_rng(self.seed)
        width = X.shape[1]
        self.W1_ = 2.0 * rng.standard_normal((width, self.hidden)) / math.sqrt(width)
        self.b1_ = rng.standard_normal(self.hidden)
        self.W2_ = rng.standard_normal((self.hidden, self.n_outputs_))
        return self

    def predict(self, X):
        X = np.asarray(X, dtype=np.float64)
        scale = np.max(np.abs(X), axis=1, keepdims=True)
        scale = np.where(scale > 0, scale, 1.0)
        out = np.tanh((X / scale) @ self.W1_ + self.b1_) @ self.W2_ * scale
        return out[:, 0] if self.one_d_ else out


def real_columns(group, x):
    """Rows (B, n, d) as the estimators' 2-D X: real blocks for the complex groups."""
    G = get_group(group)
    flat = x.reshape(len(x), -1)
    return np.concatenate([flat.real, flat.imag], axis=1) if G.is_complex else flat


@pytest.mark.parametrize("kind", ["generic", "rank_deficient"])
@pytest.mark.parametrize("group", GEOMETRIC)
def test_frame_averaged_regressor_equivariant_at_every_scale(group, kind):
    """Frame averaging a non-equivariant backbone is equivariant at every magnitude
    (outputs transform like the points), and the backbone alone is not."""
    if group in LINEAR and kind == "rank_deficient":
        pytest.skip("rank-deficient rows are an error for GL, SL and Aff")
    X = real_columns(group, cloud(group, kind, seed=6))
    tol = TOL64.get(group, 1e-10)
    for s in SCALES64:
        Xs = X * s
        model = FrameAveragingRegressor(HomogeneousMLPRegressor(), group=group,
                                        target="point").fit(Xs, Xs)
        result = check_equivariance(model, group, Xs, random_state=7)
        assert result["max_error"] <= tol, (s, result)
        assert np.isfinite(result["output_scale"]) and result["output_scale"] > 0
    bare = HomogeneousMLPRegressor().fit(Xs, Xs)
    control = check_equivariance(bare, group, Xs, target="point", random_state=7)
    assert control["max_error"] >= 1e-2


@pytest.mark.parametrize("group", ["S_n", "graph"])
def test_permutation_estimators_invariant_at_every_scale(group):
    """S_n and graph frames only permute: the invariant model is exact, error 0."""
    rng = np.random.default_rng(8)
    if group == "graph":
        A = rng.normal(size=(B, N, N))
        X = (A + np.swapaxes(A, 1, 2)).reshape(B, -1)
    else:
        X = rng.normal(size=(B, N, 2))[:, [0, 1, 2, 0, 3, 4]]
    for s in SCALES64:
        Xs = X * s
        model = FrameAveragingRegressor(HomogeneousMLPRegressor(), group=group).fit(
            Xs, np.ones(B))
        assert check_equivariance(model, group, Xs, random_state=9)["max_error"] == 0.0


def test_canonicalizer_scales_and_is_invariant_at_every_scale():
    """The canonicalizer (rounding to 40 bits on a power-of-two grid included) maps
    ``s X`` to ``s`` times the canonical form of X, invariantly, at every magnitude."""
    X = cloud("E(3)", "generic", seed=10).reshape(B, -1)
    reference = MinimalFrameCanonicalizer("E(3)").fit(X).transform(X)
    for s in SCALES64:
        can = MinimalFrameCanonicalizer("E(3)").fit(X * s)
        Xc = can.transform(X * s)
        assert relative(Xc, reference * s) <= 1e-10, s
        assert check_equivariance(can, "E(3)", X * s, random_state=11)["max_error"] <= 1e-10


# ------------------------------------------------------------------------ torch
@pytest.mark.parametrize("frame_dtype", ["float64", "float32"])
@pytest.mark.parametrize("group", ["O(3)", "E(3)", "SU(3)", "SO(1,3)", "SL(3)",
                                   "S_n x E(3)"])
def test_torch_frame_averaged_equivariant_at_every_scale(group, frame_dtype):
    """``mfa_sklearn.torch.FrameAveraged`` around a non-equivariant homogeneous MLP, on
    float64 tensors from 1e-300 to 1e300 and float32 ones from 1e-37 to 1e37, with
    frames in float64 or float32 (squares of float32 rows overflow from 1e19): finite,
    equivariant outputs and finite input gradients."""
    torch = pytest.importorskip("torch")
    from mfa_sklearn.torch import FrameAveraged

    G = get_group(group)
    X = real_columns(group, cloud(group, "generic", seed=12))
    width = X.shape[1]

    class Homogeneous(torch.nn.Module):
        def __init__(self):
            super().__init__()
            generator = torch.Generator().manual_seed(0)
            self.W1 = torch.randn(width, 16, generator=generator, dtype=torch.float64)
            # outputs about as large as the inputs (float32 rows reach 1e37)
            self.W2 = torch.randn(16, width, generator=generator, dtype=torch.float64) / 16

        def forward(self, x):
            scale = torch.amax(torch.abs(x), dim=1, keepdim=True)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            h = torch.tanh((x / scale) @ self.W1.to(x.dtype) + 0.3)
            return h @ self.W2.to(x.dtype) * scale

    model = FrameAveraged(Homogeneous(), group=group, target="point",
                          frame_dtype=frame_dtype)
    cases = [(np.float32, s) for s in (1e-37, 1e-30, 1e30, 1e37)]
    if frame_dtype == "float64":   # float32 frames take float64 rows in float32's range
        cases += [(np.float64, s) for s in (1e-300, 1e-150, 1e150, 1e300)]
    lorentz = G.metric is not None
    for dtype, s in cases:
        if dtype is np.float32 and G.has_translations and s > 1e36:
            continue   # the random translations, 10 times the data, overflow float32
        single = dtype is np.float32 or frame_dtype == "float32"
        tol = (1e-2 if lorentz else 1e-4) if single else (1e-8 if lorentz else 1e-10)
        Xs = (X * s).astype(dtype)
        g = random_group_element(group, B, random_state=13)
        gX = apply_group(group, g, Xs)
        x = torch.from_numpy(Xs).requires_grad_(True)
        out = model(x)
        # Backward through float32 frames carries the output's size times the frame's
        # conditioning before the scale factor comes in, which overflows float32 for
        # rows near its largest value; float64 frames have the room.
        if frame_dtype == "float64" or s < 1e36:
            out.sum().backward()
            assert torch.all(torch.isfinite(x.grad)), (dtype, s)
        out = out.detach().numpy()
        out_g = model(torch.from_numpy(gX)).detach().numpy()
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(out_g))
        expected = apply_group(group, g, out.astype(np.float64))
        error = relative(out_g.astype(np.float64), expected)
        assert error <= tol, (dtype, s, error)


@pytest.mark.parametrize("group", ["E(3)", "S_n x E(3)"])
def test_float32_frames_reject_float64_rows_beyond_float32(group):
    """Frames computed in float32 cannot hold float64 rows near 1e-300 or 1e300 (cast,
    they vanish or overflow): a clear error naming the samples, not zeros."""
    torch = pytest.importorskip("torch")
    from mfa_sklearn.torch import FrameAveraged

    X = cloud(group, "generic", seed=16).reshape(B, -1)
    for s in (1e-300, 1e300):
        Xs = X.copy()
        Xs[2] *= s
        model = FrameAveraged(torch.nn.Identity(), group=group, target="point",
                              frame_dtype="float32")
        with pytest.raises(MagnitudeError, match=r"float32.*first: \[2\]"):
            model(torch.from_numpy(Xs))
        model(torch.from_numpy(X))   # rows in float32's range are fine


@pytest.mark.parametrize("group", ["O(3)", "E(3)", "U(3)", "SO(1,3)", "Aff(3)",
                                   "S_n x O(3)"])
def test_torch_frames_match_numpy_at_extreme_scales(group):
    """The group frames of torch tensors (float64 and float32 working precision) agree
    with numpy's at extreme magnitudes."""
    torch = pytest.importorskip("torch")
    from mfa_sklearn.groups._namespace import frame_precision

    G = get_group(group)
    x = cloud(group, "generic", seed=14)
    rank = diagnostics(G.frame(x))["rank"]
    for s in (1e-300, 1e-100, 1e100, 1e300):
        frame, canon_s = frame_and_canonical(G, x * s)
        frame_t, canon_t = frame_and_canonical(G, torch.from_numpy(x * s))
        np.testing.assert_array_equal(diagnostics(frame)["rank"], rank)
        np.testing.assert_array_equal(diagnostics(frame_t)["rank"], rank)
        assert relative(host(canon_t), canon_s) <= 1e-12, s
    # float32 frames of float32 rows, against those at magnitude 1
    x32 = torch.from_numpy(x).to(torch.complex64 if G.is_complex else torch.float32)
    with frame_precision("float32"):
        frame_t, canon_t = frame_and_canonical(G, x32)
        for s in SCALES32:
            frame_s, canon_s = frame_and_canonical(G, x32 * s)
            np.testing.assert_array_equal(diagnostics(frame_s)["rank"],
                                          diagnostics(frame_t)["rank"])
            expected = host(canon_t).astype(np.complex128 if G.is_complex else np.float64)
            expected = expected * s ** GEOMETRIC[group]
            assert relative(host(canon_s).astype(expected.dtype), expected) <= 1e-4, s


# ------------------------------------------------------ results that cannot be stored
def test_canonical_inputs_beyond_the_largest_float_raise():
    """Rows whose canonical coordinates (their norms) exceed the largest float64 raise
    ResultOverflowError naming the field and the sample of the whole batch, also from
    a later chunk of samples; rows just below the limit are fine."""
    x = np.zeros((8200, 2, 3))
    x[:, 0] = [1e300, 2e300, -1e300]
    x[:, 1] = [0.0, 1.0, 0.0]
    x[8195, 0] = [1.3e308, 1.3e308, 0.0]          # norm 1.84e308 > 1.80e308
    X = x.reshape(len(x), -1)
    can = MinimalFrameCanonicalizer("O(3)", round_bits=None).fit(X[:10])
    with pytest.raises(ResultOverflowError, match=r"field 'x'.*first: \[8195\]"):
        can.transform(X)
    x[8195, 0] = [1.2e308, 1.2e308, 0.0]          # norm 1.70e308: representable
    Xc = can.transform(x.reshape(len(x), -1))
    np.testing.assert_allclose(Xc[8195, 0], math.hypot(1.2e308, 1.2e308), rtol=1e-15)


def test_float32_canonical_inputs_beyond_float32_raise():
    """float32 rows whose canonical coordinates exceed the largest float32 raise (the
    frames run in float64, the canonical form comes back in float32)."""
    G = get_group("O(3)")
    x = np.array([[[2.5e38, 2.5e38, 0.0], [0.0, 1.0, 0.0]],
                  [[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]], dtype=np.float32)
    with pytest.raises(ResultOverflowError, match=r"first: \[0\]"):
        G.frame(x).to_canonical(x, "point")


def test_outputs_mapped_back_beyond_the_largest_float_raise():
    """Outputs whose value in the input's frame (rotated back, plus the centroid)
    exceeds the largest float64 raise ResultOverflowError."""
    G = get_group("E(3)")
    x = np.array([[[1.5e308, 0.0, 0.0], [1.0e308, 5e307, 0.0], [1.0e308, 0.0, 5e307],
                   [1.0e308, 5e307, 5e307]]])
    frame = G.frame(x)
    y = frame.to_canonical(x, "point")
    assert relative(frame.from_canonical(y, "point"), x) <= 1e-14
    assert frame.t[0, 0] > 1.1e308

    def along_first_axis(value):
        """A canonical output whose rows are mapped back to (value, 0, 0) + t."""
        row = np.array([value, 0.0, 0.0]) @ frame.H[0, 0].T
        return np.broadcast_to(row, y.shape).copy()

    back = frame.from_canonical(along_first_axis(5e307), "point")
    np.testing.assert_allclose(back[0, :, 0], 5e307 + frame.t[0, 0], rtol=1e-12)
    with pytest.raises(ResultOverflowError, match=r"outputs mapped back.*first: \[0\]"):
        frame.from_canonical(along_first_axis(1e308), "point")


def test_boosted_rows_near_the_largest_float_are_canonicalized():
    """Rows boosted by gamma = 1e3 to near 1e308: the products with the frame's large
    entries overflow although the canonical coordinates (rest-frame momenta, near
    1e305) do not; the canonical form is computed all the same, and equals that of the
    rows scaled down by a power of two, scaled back."""
    G = get_group("O(1,3)")
    rng = np.random.default_rng(15)
    rest = rng.normal(size=(3, 5, 4))
    rest[..., 0] = np.linalg.norm(rest[..., 1:], axis=-1) + 1.0
    gamma = 1e3
    beta = math.sqrt(1.0 - 1.0 / gamma ** 2)
    boost = np.eye(4)
    boost[0, 0] = boost[1, 1] = gamma
    boost[0, 1] = boost[1, 0] = gamma * beta
    x = (rest @ boost) * 1e304
    assert np.max(np.abs(x)) < 1e308
    factor = 2.0 ** -20
    _, canon = frame_and_canonical(G, x)
    _, canon_small = frame_and_canonical(G, x * factor)
    assert np.all(np.isfinite(canon))
    assert relative(canon, canon_small / factor) <= 1e-12
