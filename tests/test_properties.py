"""Property-based tests (hypothesis): every output is exact to rounding, or a clear error.

A strategy draws a *case*: a group of the registry (a family first, then one of its
groups), a column layout (one point field, point + vector + scalar fields, both also as
3-D X, an edge field for the groups that permute rows), the numbers of rows (1..8) and
samples (1..6), the input dtype, a per-sample scale ``10^k`` and a structure of the rows
(generic gaussian rows, duplicated rows, collinear rows, all rows equal, zero rows, a
rank-deficient cloud). The data are built with numpy from a drawn seed, so a falsifying
example is a :class:`Case` of a few names and small integers, which ``build`` turns back
into the arrays. The properties:

1. **Invariance of the canonical form.** ``MinimalFrameCanonicalizer`` maps ``X`` and
   ``g.X`` (one random element per sample, translations on the sample's own scale) to
   the same canonical form: bit for bit for S_n and graphs, otherwise per sample and
   field within the tolerance of tests/groups/__init__.py, loosened in proportion to the
   frame's conditioning (and one 40-bit rounding step, see :func:`tolerance`). The
   canonical form also lies in the orbit of ``X``: same singular values (centred, for
   translations), same Minkowski Gram spectrum, a linear map ``c = x M`` (det 1 for SL),
   the same rows reordered (S_n, graphs), up to the projection of directions below the
   rank tolerance.
2. **Frame averaging.** ``FrameAveragingRegressor`` around a fixed non-equivariant
   inner model (the protocol's homogeneous tanh MLP) is invariant or equivariant, per
   sample, for invariant targets and for the per-row target kinds the group acts on
   (``assert_equivariant`` as well, where all samples share a scale).
3. **Types and shapes.** Outputs keep X's dtype and shape; predictions have y's shape;
   every ``frame_diagnostics`` entry holds one value per sample.
4. **Power-of-two scaling.** Scaling the point and vector fields by ``2^k``
   (``|k| <= 20``) scales their canonical coordinates by ``2^k`` bit for bit (orthogonal,
   unitary, Lorentz, SL, whose ``H = D phi / |det phi|^(1/d)`` does not change, and the
   permutation groups) or leaves them unchanged bit for bit (GL, Aff); other fields are
   unchanged bit for bit. Every decision of a frame compares invariant numbers with
   thresholds relative to the sample's scale, and ``2^k`` scaling is exact in floating
   point, so the decisions are the same; ``round_bits`` rounds on a power-of-two grid
   read from the sample's largest coordinate, which scales with it.

"Or a clear error": where a case has no frame (rank-deficient GL/SL/Aff rows), the
estimator must raise the documented error (:class:`RankDeficientError`) with a message,
and it may raise it only there (or, for S_n x G, :class:`FrameTooLargeError` on samples
with repeated rows). Any other exception, any NaN or inf in an output, and any numpy
``RuntimeWarning`` (turned into an error) fails the property.

Regimes. ``moderate`` draws ``10^k`` with ``|k| <= 60`` (float64) or ``|k| <= 15``
(float32); ``extreme`` puts at least one float64 sample at ``60 < |k| <= 150``, where
squares and Minkowski squares overflow or underflow unless each sample is scaled by a
power of two first; ``float32-products`` draws float32 S_n x G cases with degenerate
rows, whose rank decisions once followed float64's tolerance. Two cases per group are
always checked first
(:func:`explicit_cases`).

Hypothesis profiles (tests/conftest.py): ``ci`` (the default: a fixed seed, no deadline)
and ``dev`` (``HYPOTHESIS_PROFILE=dev``: random seeds and more examples).
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, RegressorMixin

from mfa_sklearn import FrameAveragingRegressor, MinimalFrameCanonicalizer
from mfa_sklearn.exceptions import FrameTooLargeError, RankDeficientError
from mfa_sklearn.groups import get_group
from mfa_sklearn.layout import Layout, parse_fields
from mfa_sklearn.testing import apply_group, assert_equivariant, random_group_element
from tests._helpers import CONTROL, HomogeneousMLP

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    # documented for Lorentz rows that span a degenerate (lightlike) subspace
    pytest.mark.filterwarnings("ignore::mfa_sklearn.exceptions.FrameDegeneracyWarning"),
]

# ---------------------------------------------------------------------------- groups
GROUPS = (
    [f"{family}({d})" for family in ("O", "SO", "E", "SE") for d in range(1, 5)]
    + [f"{family}({d})" for family in ("U", "SU") for d in range(1, 4)]
    + [f"{family}(1,{d - 1})" for family in ("O", "SO") for d in range(2, 5)]
    + [f"{family}({d})" for family in ("GL", "SL", "Aff") for d in range(1, 4)]
    + ["S_n", "S_n x O(3)", "S_n x E(3)", "S_n x SO(1,3)", "graph"]
)
STRUCTURES = ("generic", "duplicated", "collinear", "all_equal", "zero_rows",
              "rank_deficient")
#: largest |k| of the per-sample scale 10^k: the moderate range, and the full range
MODERATE = {np.float64: 60, np.float32: 15}
EXTREME = {np.float64: 150, np.float32: 15}
PRODUCTS = ("S_n x O(3)", "S_n x E(3)", "S_n x SO(1,3)")
#: structures whose rows are exactly degenerate (rank below the number of rows), which
#: float32 rounding turns into nearly degenerate ones
DEGENERATE = ("collinear", "rank_deficient")

def family(group):
    """The family of a group name: orthogonal, unitary, lorentz, linear, S_n, graph or
    product (S_n x G)."""
    G = get_group(group)
    if group == "graph":
        return "graph"
    if group == "S_n":
        return "S_n"
    if group.startswith("S_n x"):
        return "product"
    if G.is_complex:
        return "unitary"
    if G.metric is not None:
        return "lorentz"
    if group.startswith(("GL", "SL", "Aff")):
        return "linear"
    return "orthogonal"


def layouts(group):
    """The layouts a group takes: one point field (2-D or 3-D X), point + vector +
    scalar fields (2-D or 3-D), and an edge field for the groups that permute rows."""
    if family(group) == "graph":
        return ("point", "pvs", "edge")       # edge fields exist in 2-D X only
    if family(group) in ("S_n", "product"):
        return ("point", "pvs", "point3d", "pvs3d", "edge")
    return ("point", "pvs", "point3d", "pvs3d")


# ------------------------------------------------------------------------------ cases
@dataclass(frozen=True)
class Case:
    """One drawn example: everything needed to rebuild its data."""

    group: str
    layout: str
    n: int
    exponents: tuple
    dtype: type
    structure: str
    seed: int

    @property
    def B(self):
        return len(self.exponents)

    def __repr__(self):
        return (f"Case(group={self.group!r}, layout={self.layout!r}, n={self.n}, "
                f"exponents={self.exponents}, dtype=np.{self.dtype.__name__}, "
                f"structure={self.structure!r}, seed={self.seed})")


@st.composite
def cases(draw, scales="moderate", groups=GROUPS, dtypes=(np.float64, np.float32),
          structures=STRUCTURES, headroom=0):
    """Cases drawn from ``groups``, ``dtypes`` and ``structures`` at moderate scales
    (every ``|k| <= MODERATE``) or extreme ones (at least one sample beyond, none
    beyond ``EXTREME - headroom``)."""
    # a family first, then one of its groups: each family is drawn as often
    families = sorted({family(group) for group in groups})
    chosen = draw(st.sampled_from(families))
    group = draw(st.sampled_from([group for group in groups if family(group) == chosen]))
    layout = draw(st.sampled_from(layouts(group)))
    # S_n x G enumerates the symmetries of bonded twins (7! = 5040 for 7 equal bonded
    # atoms, a second per sample): at most 6 rows with edge fields keeps examples fast
    n = draw(st.integers(1, 6 if (group in PRODUCTS and layout == "edge") else 8))
    extreme = scales == "extreme"
    dtype = draw(st.sampled_from([np.float64] if extreme else list(dtypes)))
    B = draw(st.integers(1, 6))
    low, high = MODERATE[dtype], EXTREME[dtype] - headroom
    if not extreme:
        exponents = draw(st.lists(st.integers(-low, low), min_size=B, max_size=B))
    else:  # at least one sample beyond the moderate range
        exponents = draw(st.lists(st.integers(-high, high), min_size=B - 1, max_size=B - 1))
        k = draw(st.one_of(st.integers(low + 1, high), st.integers(-high, -low - 1)))
        exponents.insert(draw(st.integers(0, B - 1)), k)
    structure = draw(st.sampled_from(structures))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return Case(group, layout, n, tuple(exponents), dtype, structure, seed)


def regime_cases(regime, groups=GROUPS, headroom=0):
    """The cases of a regime: "moderate" and "extreme" scales (see :func:`cases` for
    ``headroom``), or float32 S_n x G cases with degenerate rows."""
    if regime in ("moderate", "extreme"):
        return cases(regime, groups, headroom=headroom)
    if regime == "float32-products":
        return cases(groups=PRODUCTS, dtypes=(np.float32,), structures=DEGENERATE)
    raise ValueError(regime)


@dataclass
class Data:
    """A case's arrays: X, the ``fields`` parameter, the explicit layout, the fields in
    float64 before scaling (``raw``), the frame-defining point field's name."""

    X: np.ndarray
    fields: object
    layout: Layout
    raw: dict
    frame_field: str


def field_spec(case):
    """(explicit field spec, the estimator's ``fields`` parameter, 3-D X?)."""
    fam = family(case.group)
    width = 1 + case.seed % 3                      # rows of S_n have no fixed width
    three_d = case.layout.endswith("3d")
    if fam == "graph":
        spec = {"point": {"A": "edge"},
                "pvs": {"A": "edge", "pos": ("point", width), "vel": ("vector", width),
                        "q": ("scalar", 2)},
                "edge": {"A": "edge", "h": ("scalar", 1)}}[case.layout]
        return spec, (None if case.layout == "point" else spec), False
    geometric = {} if fam != "S_n" else {"point": ("point", width),
                                         "vector": ("vector", width)}
    point, vector = geometric.get("point", "point"), geometric.get("vector", "vector")
    if case.layout in ("point", "point3d"):
        if fam != "S_n":
            return {"x": "point"}, None, three_d
        if three_d:   # S_n's default for 3-D X: each whole row is one scalar field
            return {"x": ("scalar", width)}, None, True
        return {"x": point}, {"x": point}, False     # no default width in 2-D
    if case.layout == "edge":
        spec = {"bonds": "edge", "pos": point, "q": ("scalar", 1)}
        return spec, spec, False
    spec = {"pos": point, "vel": vector, "q": ("scalar", 2)}
    return spec, spec, three_d


def _geometry(rng, structure, B, n, width, complex_rows, offset):
    """Rows (B, n, width) of one point or vector field, complex for U/SU."""
    def gauss(*shape):
        z = rng.standard_normal(shape)
        return z + 1j * rng.standard_normal(shape) if complex_rows else z

    if structure == "collinear":
        x = gauss(B, n, 1) * gauss(B, 1, width)
    elif structure == "rank_deficient":
        r = int(rng.integers(0, width))            # rank 0 .. width - 1
        x = gauss(B, n, r) @ gauss(B, r, width) if r else np.zeros((B, n, width))
    else:
        x = gauss(B, n, width)
    if offset:
        x = x + 3.0 * gauss(B, 1, width)
    return x


def _row_pattern(rng, structure, n):
    """Which row each row copies (duplicates, all equal) and which rows are zero."""
    source, zero = np.arange(n), np.zeros(n, dtype=bool)
    if structure == "duplicated" and n > 1:
        targets = rng.choice(n, size=int(rng.integers(1, n)), replace=False)
        for i in targets:
            source[i] = source[int(rng.integers(n))]
    elif structure == "all_equal":
        source[:] = 0
    elif structure == "zero_rows":
        zero[rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False)] = True
    return source, zero


def _edges(rng, structure, B, n, source, width):
    """Symmetric 0/1 edge fields (B, n, n, width) that follow the row pattern."""
    if structure == "all_equal":
        A = np.ones((B, n, n, width)) - np.eye(n)[None, :, :, None]
    elif structure == "zero_rows":
        A = np.zeros((B, n, n, width))
    else:
        upper = np.triu(rng.integers(0, 2, (B, n, n, width)).transpose(0, 3, 1, 2), 1)
        A = (upper + upper.transpose(0, 1, 3, 2)).transpose(0, 2, 3, 1).astype(float)
        # duplicated rows are twin vertices: the same neighbours
        A = A[:, source][:, :, source]
        A[:, np.arange(n), np.arange(n)] = 0.0
    return A


def build(case):
    """The data of a case (see :class:`Data`)."""
    G = get_group(case.group)
    rng = np.random.default_rng(case.seed)
    spec, fields, three_d = field_spec(case)
    parsed = parse_fields(spec, G)
    layout = Layout(parsed, case.n, three_d=three_d)
    source, zero = _row_pattern(rng, case.structure, case.n)
    scale = 10.0 ** np.asarray(case.exponents, dtype=np.float64)
    raw, parts = {}, {}
    for f in parsed:
        if f.kind == "edge":
            raw[f.name] = parts[f.name] = _edges(rng, case.structure, case.B, case.n,
                                                 source, f.width)
            continue
        if f.kind == "scalar":
            x = rng.standard_normal((case.B, case.n, f.width))
        else:
            width = f.width // 2 if f.is_complex else f.width
            x = _geometry(rng, case.structure, case.B, case.n, width, f.is_complex,
                          offset=f.kind == "point")
        x = x[:, source]
        x[:, zero] = 0.0
        raw[f.name] = x
        if f.is_complex:
            x = np.concatenate([x.real, x.imag], axis=-1)
        if f.kind in ("point", "vector"):
            x = x * scale[:, None, None]
        parts[f.name] = x
    # C order, whatever join returns: BLAS and LAPACK may round differently for other
    # memory layouts, which property 4 (bitwise) would see
    X = np.ascontiguousarray(layout.join(parts), dtype=case.dtype)
    point_fields = [f.name for f in parsed if f.kind == "point"]
    return Data(X, fields, layout, raw, point_fields[0] if point_fields else None)


def group_element(case, data, seed):
    """One random element per sample; translations on each sample's own scale (10 times
    the rms of its point field), so that they do not wipe out small samples."""
    G = get_group(case.group)
    g = random_group_element(G, case.B, random_state=seed)
    if getattr(g, "b", None) is not None:
        points = data.layout.split(data.X.astype(np.float64))[data.frame_field]
        rms = np.sqrt(np.mean(np.square(points), axis=(1, 2)))
        fallback = 10.0 ** np.asarray(case.exponents, dtype=np.float64)
        # drawn with standard deviation 10: now 10 * rms per sample
        g.b = g.b * np.where(rms > 0, rms, fallback)[:, None]
    return g


# ------------------------------------------------------------------------- outcomes
def expected_errors(case, data):
    """(errors the case may raise, whether it must raise one, ratios or None).

    GL, SL and Aff have no frame for rows that do not span R^d (after centring for
    Aff): RankDeficientError is required where ``sigma_min / sigma_max`` of a sample's
    frame-defining rows (returned as the ratios) is far below the rank tolerance
    ``sqrt(eps)``, and allowed only within a factor 10 of it. S_n x G may refuse
    samples with repeated rows whose stabilizer is too large to enumerate
    (FrameTooLargeError).
    """
    fam = family(case.group)
    if fam == "linear":
        Z = data.raw[data.frame_field]
        eps = np.finfo(case.dtype).eps
        tol = math.sqrt(eps)
        floor = np.zeros(case.B)
        if case.group.startswith("Aff"):
            # centred points at the rounding level of their centroid are coincident
            t = Z.mean(axis=1, keepdims=True)
            floor = 16 * case.n * eps * np.linalg.norm(t[:, 0], axis=1)
            Z = Z - t
        d = Z.shape[2]
        s = np.linalg.svd(Z, compute_uv=False) if Z.shape[1] else np.zeros((case.B, 0))
        s = np.concatenate([s, np.zeros((case.B, max(0, d - s.shape[1])))], axis=1)
        ratio = np.where(s[:, 0] > 0, s[:, d - 1] / np.where(s[:, 0] > 0, s[:, 0], 1), 0)
        ratio = np.where(s[:, d - 1] > floor, ratio, 0.0)
        near = np.where(s[:, d - 1] > 10 * floor, ratio, 0.0)
        allowed = (RankDeficientError,) if np.any(near < 10 * tol) else ()
        return allowed, bool(np.any(ratio < tol / 10)), ratio
    if fam == "product" and case.structure in ("duplicated", "all_equal", "zero_rows"):
        return (FrameTooLargeError,), False, None
    return (), False, None


class Outcome:
    """The result of ``fn()`` with RuntimeWarnings as errors: ``value``, or the
    exception ``error``. After a RuntimeWarning, ``fn`` runs again with warnings
    recorded, so that ``warning`` holds the warning and ``error`` what ``fn`` raised
    in the end (None if it returned)."""

    def __init__(self, fn):
        self.value = self.error = self.warning = None
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            try:
                self.value = fn()
                return
            except RuntimeWarning as exc:
                self.warning = exc
            except Exception as exc:                # judged by check_outcome
                self.error = exc
                return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                fn()
            except Exception as exc:
                self.error = exc


def check_outcome(case, data, outcome):
    """Fail unless the outcome is a value where the case has a frame, or one of the
    errors the case allows, with a message, and no RuntimeWarning. Returns True when
    there is a value.

    """
    __tracebackhide__ = True
    allowed, required, ratio = expected_errors(case, data)
    if outcome.warning is not None:
        raise AssertionError(f"RuntimeWarning: {outcome.warning} (then "
                             f"{outcome.error!r}) in {case!r}") from outcome.warning
    if outcome.error is None:
        assert not required, (f"no error for a case without a frame ({allowed[0].__name__} "
                              f"expected); sigma_min / sigma_max per sample: {ratio}")
        return True
    error = outcome.error
    if not (allowed and isinstance(error, allowed)):
        raise AssertionError(f"unexpected {type(error).__name__}: {error}") from error
    assert str(error).strip(), f"{type(error).__name__} without a message"
    return False


def tolerance(case, conditioning=None):
    """The largest relative deviation allowed between two canonical forms (or outputs),
    per sample (B,): the protocol of tests/groups/__init__.py, loosened in proportion
    where a frame is ill-conditioned, plus one step of the 40-bit rounding grid
    (``round_bits=40``: two canonical coordinates that straddle a grid boundary round
    one step apart)."""
    fam = family(case.group)
    inner = case.group.split(" x ")[-1]
    single = case.dtype == np.float32
    eps = np.finfo(case.dtype).eps
    cond = np.ones(case.B) if conditioning is None else np.asarray(conditioning, float)
    cond = np.where(np.isfinite(cond), cond, np.inf)
    grid = 2.0 ** -39
    if fam == "linear":
        kappa = 10.0                               # random_element's condition number
        base = 1e-3 if single else 1e-12
        return np.maximum(base, 20 * eps * kappa * cond) + grid
    lorentz = fam == "lorentz" or "(1," in inner
    base = (1e-3 if lorentz else 1e-5) if single else (1e-9 if lorentz else 1e-10)
    return np.maximum(base, (1e3 if lorentz else 1e2) * eps * cond) + grid


def translation_factor(case, data, moved):
    """Per sample (B,): how much larger the point field of X or g.X is than its spread
    about the centroid (1 for groups without translations). Centring by a translated
    centroid leaves rounding errors relative to the translated magnitude, which the frame
    then carries over to every field."""
    G = get_group(case.group)
    if not G.has_translations:
        return np.ones(case.B)
    x = data.layout.split(data.X.astype(np.float64))[data.frame_field]
    gx = data.layout.split(moved.astype(np.float64))[data.frame_field]
    spread = per_sample(x - x.mean(axis=1, keepdims=True))
    size = np.maximum(per_sample(x), per_sample(gx))
    return np.where(spread > 0, np.maximum(size / np.where(spread > 0, spread, 1), 1), 1)


def lorentz_amplification(case, data, moved, Xc):
    """Per sample (B,): ``(max(|x|, |g.x|) / |c(x)|)^2`` for the frame-defining field of
    a Lorentz group (1 for the others), a lower bound of ``|H|^2``, by which a Lorentz
    frame amplifies rounding: ``|x| <= |c(x)| |H|``. It is large for boosted frames and
    for nearly lightlike rows (``|x|^2 >> |<x, x>_eta|``), which the ``conditioning``
    diagnostic does not see."""
    G = get_group(case.group)
    if G.metric is None:
        return np.ones(case.B)
    def part(a):
        return data.layout.split(np.asarray(a, dtype=np.float64))[data.frame_field]
    size = np.maximum(per_sample(part(data.X)), per_sample(part(moved)))
    canonical = per_sample(part(Xc))
    return np.where(canonical > 0, (size / np.where(canonical > 0, canonical, 1)) ** 2, 1)


def effective_tolerance(case, data, moved, diagnostics, Xc):
    """:func:`tolerance` with the conditioning the frames report, times the
    :func:`translation_factor`, and at least ``10 eps`` times the
    :func:`lorentz_amplification`."""
    tol = (tolerance(case, diagnostics.get("conditioning"))
           * translation_factor(case, data, moved))
    eps = np.finfo(case.dtype).eps
    return np.maximum(tol, 10 * eps * lorentz_amplification(case, data, moved, Xc))


def per_sample(a):
    """max |a| over everything but the sample axis."""
    a = np.abs(np.asarray(a)).astype(np.float64)
    a = a.reshape(a.shape[0], math.prod(a.shape[1:]))
    return a.max(axis=1) if a.shape[1] else np.zeros(len(a))


def assert_close(case, name, expected, actual, tol, references):
    """Per sample: ``max |expected - actual| <= tol * max(references)``."""
    __tracebackhide__ = True
    assert np.all(np.isfinite(actual)), f"{name}: NaN or inf in the output"
    ref = np.max([per_sample(r) for r in references], axis=0)
    err = per_sample(np.asarray(expected, np.float64) - np.asarray(actual, np.float64))
    bad = err > tol * ref
    assert not np.any(bad), (
        f"{name}: samples {np.flatnonzero(bad).tolist()} off by {err[bad]} "
        f"(relative {err[bad] / np.where(ref[bad] > 0, ref[bad], 1)}, tolerance "
        f"{np.broadcast_to(tol, err.shape)[bad]}) in {case!r}")


# ----------------------------------------------------------------------------- orbit
def _svals(x):
    return np.linalg.svd(x, compute_uv=False)


def _minkowski_eigs(x):
    eta = np.ones(x.shape[-1])
    eta[1:] = -1.0
    gram = (x * eta) @ np.swapaxes(x, 1, 2)
    return np.sort(np.linalg.eigvalsh(gram), axis=1)


def assert_in_orbit(case, data, Xc, diagnostics):
    """The canonical form of each sample lies in the orbit of the sample.

    Checked by invariants of the frame-defining point field (singular values, of the
    centred rows for groups with translations; the spectrum of the Minkowski Gram matrix
    where the Lorentz frame spans the rows; a linear map onto the canonical rows, of
    determinant 1 for SL), and by the rows themselves for S_n and graphs (the same rows,
    reordered, up to the 40-bit rounding of point and vector fields; the same degrees).
    """
    __tracebackhide__ = True
    fam = family(case.group)
    G = get_group(case.group)
    given = data.layout.split(data.X.astype(np.float64))
    canon = data.layout.split(Xc.astype(np.float64))
    single = case.dtype == np.float32
    if fam in ("S_n", "graph"):
        for f in data.layout.fields:
            if f.kind == "edge":      # a relabelled graph: the same sorted degrees
                np.testing.assert_array_equal(np.sort(canon[f.name].sum(axis=2), axis=1),
                                              np.sort(given[f.name].sum(axis=2), axis=1))
                continue
            # the same rows, reordered (point/vector fields rounded to 40 bits)
            step = 2.0 ** -39 * per_sample(given[f.name])[:, None, None]
            ordered, expected = _sorted_rows(canon[f.name]), _sorted_rows(given[f.name])
            assert np.all(np.abs(ordered - expected) <= step), (
                f"field {f.name!r}: the canonical rows are not the rows of X in {case!r}")
        return
    if data.frame_field is None:
        return
    x, c = given[data.frame_field], canon[data.frame_field]
    if G.is_complex:
        x, c = G.from_real(x), G.from_real(c)
    scale = np.maximum(per_sample(x), per_sample(c))
    if G.has_translations:    # a translate of the canonical form: compare centred rows
        x = x - x.mean(axis=1, keepdims=True)
        c = c - c.mean(axis=1, keepdims=True)
    # components below the rank tolerance sqrt(eps) are projected out (documented)
    tol = 4 * math.sqrt(np.finfo(case.dtype).eps)
    if fam == "linear":
        # c = (x - t) phi^-1 (times a scale for SL): solve for that linear map
        M = np.stack([np.linalg.lstsq(xb, cb, rcond=None)[0] for xb, cb in zip(x, c)])
        assert_close(case, "orbit (c = x M)", x @ M, c,
                     10 * tolerance(case, diagnostics.get("conditioning")), [c])
        s = np.linalg.svd(M, compute_uv=False)
        assert np.all(s[:, -1] > 1e-12 * s[:, 0]), (
            f"singular map to the canonical form (singular values {s}) in {case!r}")
        if case.group.startswith("SL"):
            det = np.linalg.det(M)
            np.testing.assert_allclose(det, 1.0, rtol=1e-2 if single else 1e-6,
                                       err_msg=repr(case))
        return
    if G.metric is not None:
        # Minkowski Gram spectra agree where the frame vectors span the rows
        relative = 1e-5 if single else 1e-9
        rank = np.array([np.linalg.matrix_rank(xb, tol=relative * s) if s > 0 else 0
                         for xb, s in zip(x, scale)])
        full = np.asarray(diagnostics["rank"]) == rank
        err = per_sample(_minkowski_eigs(x[full]) - _minkowski_eigs(c[full]))
        bound = tol * case.n * scale[full] ** 2
        assert np.all(err <= bound), (
            f"Minkowski Gram spectra differ by {err} (bound {bound}) in {case!r}")
        return
    err = per_sample(_svals(x) - _svals(c)) if x.shape[1] else np.zeros(case.B)
    assert np.all(err <= tol * scale), (
        f"singular values of the canonical form differ by {err} (scale {scale}) "
        f"in {case!r}")


def _sorted_rows(a):
    """Rows of each sample (B, n, w) in lexicographic order."""
    flat = a.reshape(a.shape[0], a.shape[1], -1) + 0.0
    out = np.empty_like(flat)
    for b, rows in enumerate(flat):
        out[b] = rows[np.lexsort(rows.T[::-1])] if rows.shape[1] else rows
    return out


# ------------------------------------------------------------------------ the runner
def explicit_cases(groups=GROUPS):
    """Two cases per group that every run checks first, whatever hypothesis draws:
    generic rows in float64 at three scales, and duplicated rows in float32 in the
    group's last layout (edges for the groups that permute rows)."""
    return [case for i, group in enumerate(groups) for case in (
        Case(group, "pvs", 5, (0, 7, -9), np.float64, "generic", i),
        Case(group, layouts(group)[-1], 4, (3,), np.float32, "duplicated", i))]


def run(prop, regime, strategy=None, explicit=()):
    """Check ``prop(drawn)`` on the ``explicit`` examples and on what hypothesis draws
    for ``regime`` (or from ``strategy``)."""
    def test(drawn):
        note(repr(drawn))
        prop(drawn)

    for drawn in explicit:
        test = example(drawn)(test)
    given(strategy if strategy is not None else regime_cases(regime))(
        settings(settings(), suppress_health_check=[HealthCheck.function_scoped_fixture])(
            test))()


# -------------------------------------------------------------------- the properties
def canonical_invariance(case):
    """Property 1 (with 3's dtype and shape): the canonical form of g.X is that of X."""
    data = build(case)
    G = get_group(case.group)
    g = group_element(case, data, seed=case.seed + 1)
    can = MinimalFrameCanonicalizer(group=case.group, fields=data.fields)

    def transform():
        can.fit(data.X)
        Xc = can.transform(data.X)
        moved = apply_group(G, g, data.X, data.fields)
        return Xc, can.transform(moved), moved, can.frame_diagnostics(data.X)

    outcome = Outcome(transform)
    if not check_outcome(case, data, outcome):
        return
    Xc, Xc_moved, moved, diagnostics = outcome.value
    for out in (Xc, Xc_moved):
        assert out.dtype == data.X.dtype and out.shape == data.X.shape, (out.dtype, out.shape)
        assert np.all(np.isfinite(out)), f"NaN or inf in the canonical form of {case!r}"
    if family(case.group) in ("S_n", "graph"):
        np.testing.assert_array_equal(Xc_moved, Xc, err_msg=repr(case))
    else:
        tol = effective_tolerance(case, data, moved, diagnostics, Xc)
        parts, parts_moved = data.layout.split(Xc), data.layout.split(Xc_moved)
        given, given_moved = data.layout.split(data.X), data.layout.split(moved)
        for f in data.layout.fields:
            assert_close(case, f"canonical field {f.name!r}", parts[f.name],
                         parts_moved[f.name], tol,
                         [parts[f.name], parts_moved[f.name], given[f.name],
                          given_moved[f.name]])
    assert_in_orbit(case, data, Xc, diagnostics)


def targets(case):
    """Target kinds to try: invariant, and the per-row kinds the group acts on."""
    fam = family(case.group)
    if fam in ("S_n", "graph"):
        return ["invariant", ("point", 2)] + (["edge"] if fam == "graph" else [])
    return ["invariant", "point", "vector"]


class HomogeneousRegressor(RegressorMixin, BaseEstimator):
    """A fixed, deliberately non-equivariant regressor: the tanh MLP of the protocol
    (``HomogeneousMLP``, degree-1 homogeneous, so no scale saturates it), sized by fit.

    Parameters
    ----------
    seed : int, default=0
        Seed of the MLP's weights.
    """

    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, X, y):
        y = np.asarray(y)
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        self.mlp_ = HomogeneousMLP(np.asarray(X).shape[1], self.n_outputs_, seed=self.seed)
        return self

    def predict(self, X):
        return self.mlp_(np.asarray(X))


def _target_y(case, data, target, rng):
    """Random targets of the target's layout (per-row targets on the input's rows)."""
    n = case.n
    G = get_group(case.group)
    if target == "invariant":
        return rng.standard_normal((case.B, 3))
    if target == "edge":
        return rng.standard_normal((case.B, n * n))
    kind, width = (target, None) if isinstance(target, str) else target
    width = width or (2 * G.d if G.is_complex else G.d)
    y = rng.standard_normal((case.B, n * width))
    if kind in ("point", "vector"):
        y = y * (10.0 ** np.asarray(case.exponents, dtype=np.float64))[:, None]
    return y


def averaging_equivariance(case):
    """Property 2 (with 3's shapes): predictions move with the input."""
    data = build(case)
    G = get_group(case.group)
    rng = np.random.default_rng(case.seed + 2)
    g = group_element(case, data, seed=case.seed + 1)
    for target in targets(case):
        y = _target_y(case, data, target, rng).astype(case.dtype)
        reg = FrameAveragingRegressor(HomogeneousRegressor(), group=case.group,
                                      fields=data.fields, target=target)

        def predict(reg=reg, y=y):
            reg.fit(data.X, y)
            moved = apply_group(G, g, data.X, data.fields)
            return (reg.predict(data.X), reg.predict(moved), moved,
                    reg.frame_diagnostics(data.X))

        outcome = Outcome(predict)
        if not check_outcome(case, data, outcome):
            return
        out, out_moved, moved, diagnostics = outcome.value
        assert out.shape == y.shape and out.dtype == data.X.dtype, (out.shape, out.dtype)
        if target == "invariant":
            expected = out
        else:
            expected = apply_group(G, g, out.astype(np.float64), target)
        Xc = (MinimalFrameCanonicalizer(group=case.group, fields=data.fields)
              .fit_transform(data.X) if G.metric is not None else None)
        tol = 10 * effective_tolerance(case, data, moved, diagnostics, Xc)
        if family(case.group) in ("S_n", "graph"):
            np.testing.assert_array_equal(out_moved, expected.astype(out.dtype),
                                          err_msg=f"target {target!r} in {case!r}")
        else:
            assert_close(case, f"predictions (target {target!r})", expected, out_moved,
                         tol, [expected, out_moved])
        if len(set(case.exponents)) == 1:   # one scale: the library's own assertion too
            assert_equivariant(reg, case.group, data.X, fields=data.fields, target=target,
                               random_state=case.seed + 3, rtol=float(np.max(tol)))


def diagnostics_shapes(case):
    """Property 3: dtype and shape of outputs, and per-sample diagnostics."""
    data = build(case)
    can = MinimalFrameCanonicalizer(group=case.group, fields=data.fields)

    def run_all():
        return can.fit_transform(data.X), can.frame_diagnostics(data.X)

    outcome = Outcome(run_all)
    if not check_outcome(case, data, outcome):
        return
    Xc, diagnostics = outcome.value
    assert Xc.dtype == data.X.dtype and Xc.shape == data.X.shape
    assert {"rank", "frame_size", "projected", "conditioning"} <= set(diagnostics)
    for key, value in diagnostics.items():
        if value is None:
            continue
        assert isinstance(value, np.ndarray) and value.shape == (case.B,), (
            f"diagnostic {key!r} has shape {getattr(value, 'shape', None)}, expected "
            f"({case.B},) in {case!r}")
        if value.dtype.kind == "f":
            assert np.all(~np.isnan(value)), f"NaN in diagnostic {key!r} in {case!r}"
    assert np.all(diagnostics["frame_size"] >= 1)


def power_of_two_scaling(case, k):
    """Property 4: 2^k X has the canonical form 2^k c(X) (GL/Aff: c(X)), bitwise."""
    data = build(case)
    factor = 2.0 ** k
    parts = data.layout.split(data.X.copy())
    scaled_parts = {f.name: (parts[f.name] * factor if f.kind in ("point", "vector")
                             else parts[f.name]) for f in data.layout.fields}
    scaled = np.ascontiguousarray(data.layout.join(scaled_parts), dtype=case.dtype)
    can = MinimalFrameCanonicalizer(group=case.group, fields=data.fields)
    outcome = Outcome(lambda: can.fit(data.X).transform(data.X))
    outcome_scaled = Outcome(lambda: can.transform(scaled))
    has_value = check_outcome(case, data, outcome)
    has_value_scaled = check_outcome(case, data, outcome_scaled)
    assert (has_value, type(outcome.error)) == (has_value_scaled, type(outcome_scaled.error)), (
        f"X gives {outcome.error!r} but 2^{k} X gives {outcome_scaled.error!r} in {case!r}")
    if not has_value:
        return
    Xc, Xc_scaled = outcome.value, outcome_scaled.value
    linear = family(case.group) == "linear" and not case.group.startswith("SL")
    canon, canon_scaled = data.layout.split(Xc), data.layout.split(Xc_scaled)
    for f in data.layout.fields:
        expected = canon[f.name]
        if f.kind in ("point", "vector") and not linear:
            expected = (expected.astype(np.float64) * factor).astype(case.dtype)
        np.testing.assert_array_equal(
            canon_scaled[f.name], expected,
            err_msg=f"field {f.name!r} of 2^{k} X (kind {f.kind}) in {case!r}")


def _explicit(regime, groups=GROUPS):
    return explicit_cases(groups) if regime == "moderate" else ()


@pytest.mark.parametrize("regime", ["moderate", "extreme", "float32-products"])
def test_canonical_form_is_invariant(regime):
    run(canonical_invariance, regime, explicit=_explicit(regime))


@pytest.mark.parametrize("regime", ["moderate", "extreme", "float32-products"])
def test_frame_averaging_is_equivariant(regime):
    run(averaging_equivariance, regime, explicit=_explicit(regime))


@pytest.mark.parametrize("regime", ["moderate", "extreme"])
def test_dtype_shape_and_diagnostics(regime):
    run(diagnostics_shapes, regime, explicit=_explicit(regime))


@pytest.mark.parametrize("regime", ["moderate", "extreme"])
def test_power_of_two_scaling_is_exact(regime):
    # 2^20 is 10^6.02: extreme samples stay at |k| <= 144, within 1e+-150 once scaled
    strategy = st.tuples(regime_cases(regime, headroom=6), st.integers(-20, 20))
    explicit = [(case, k) for case, k in zip(_explicit(regime), [-20, 20, 1, -3] * 99)]
    run(lambda drawn: power_of_two_scaling(*drawn), regime, strategy, explicit)


# ------------------------------------------------------------------------- controls
@pytest.mark.parametrize("group", ["O(3)", "E(2)", "U(2)", "SO(1,3)", "GL(2)", "Aff(3)",
                                   "SL(2)", "S_n", "S_n x E(3)", "graph"])
def test_controls_can_fail(group):
    """The checks above detect what is not symmetric: without frames, the inner
    model's predictions are at least CONTROL off; the invariance check rejects an
    identity 'canonicalizer'; the orbit check rejects a perturbed canonical form."""
    case = Case(group, "edge" if group == "graph" else "pvs", 6, (0, 3, -2), np.float64,
                "generic", 7)
    data = build(case)
    G = get_group(case.group)
    g = group_element(case, data, seed=1)
    moved = apply_group(G, g, data.X, data.fields)
    bare = HomogeneousRegressor().fit(data.X, np.zeros((case.B, 3)))
    out, out_moved = bare.predict(data.X), bare.predict(moved)
    with pytest.raises(AssertionError, match="predictions"):
        assert_close(case, "predictions", out, out_moved, CONTROL, [out, out_moved])
    with pytest.raises(AssertionError, match="canonical"):
        assert_close(case, "canonical form", data.X, moved, CONTROL, [data.X, moved])
    can = MinimalFrameCanonicalizer(group=case.group, fields=data.fields).fit(data.X)
    Xc, diagnostics = can.transform(data.X), can.frame_diagnostics(data.X)
    assert_in_orbit(case, data, Xc, diagnostics)
    noise = np.random.default_rng(0).standard_normal(Xc.shape) * per_sample(Xc)[:, None]
    with pytest.raises(AssertionError):
        assert_in_orbit(case, data, Xc + noise, diagnostics)


def test_too_many_symmetries_is_a_clear_error():
    """Eight equal atoms, all bonded: S_n x E(3) would enumerate 8! = 40320 symmetries,
    more than max_frame_size, and says so (the same atoms without bonds, or with an
    all-zero bond matrix, are averaged as twins without enumeration)."""
    n = 8
    X = np.concatenate([(1.0 - np.eye(n)).ravel(), np.tile([1.0, 2.0, 3.0], n)])[None]
    can = MinimalFrameCanonicalizer("S_n x E(3)", fields={"bonds": "edge", "pos": "point"})
    with pytest.raises(FrameTooLargeError, match="max_frame_size"):
        can.fit(X).transform(X)


# ------------------------------------------------- smallest failures found, fixed
@pytest.mark.parametrize("which", ["lorentz-tiny", "lorentz-huge", "product-tiny"])
def test_extreme_scale_examples(which):
    """The smallest failures of the extreme regime before frames scaled each sample by a
    power of two: O(1,2) at 1e-85 picked frame vectors in the rounding noise of g.X
    (rank 3 for one row), without a warning; O(1,1) at 1e77 overflowed and returned a
    zero canonical form; three equal rows at 1e-144 under S_n x E(3) divided by zero."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        if which == "lorentz-tiny":
            X = np.array([[1.0, 0.5, 0.25]]) * 1e-85
            can = MinimalFrameCanonicalizer("O(1,2)").fit(X)
            g = random_group_element("O(1,2)", 1, random_state=19)
            moved = apply_group("O(1,2)", g, X)
            assert can.frame_diagnostics(moved)["rank"][0] == 1
            np.testing.assert_allclose(can.transform(moved), can.transform(X), rtol=1e-9)
        elif which == "lorentz-huge":
            X = np.array([[2.0, 1.0]]) * 1e77      # <x, x> = 3e154: c = (sqrt(3) 1e77, 0)
            c = MinimalFrameCanonicalizer("O(1,1)").fit(X).transform(X)
            np.testing.assert_allclose(c, [[np.sqrt(3.0) * 1e77, 0.0]], rtol=1e-12)
        else:
            X = np.tile([-6.8701922067634625e-144, -1.1920443649587482e-144,
                         -3.3761377868497108e-144], 3)[None]
            c = MinimalFrameCanonicalizer("S_n x E(3)").fit(X).transform(X)
            np.testing.assert_array_equal(c, 0.0)


def test_sl_scaling_example():
    """2x maps to 2 c(x) bit for bit, and SL(1) frames are +-1, so the canonical form is
    +-x exactly (one ulp off while |det phi|^(1/d) was exp(-log|det phi| / d) of the
    unscaled rows: 7.999999999999998 for 8)."""
    X = np.array([[8.0, 6.0, 5.0]])
    can = MinimalFrameCanonicalizer("SL(1)", round_bits=None).fit(X)
    np.testing.assert_array_equal(can.transform(2 * X), 2 * can.transform(X))
    np.testing.assert_array_equal(np.abs(can.transform(X)), X)


# ------------------------------------------------- minimal reproducers of fixed bugs
def test_products_float32_rank_tolerance():
    """Three coplanar points (rank 2 under O(3)), rounded to float32: O(3) finds rank 2,
    S_n x O(3) finds a third frame vector in the rounding noise for X but not for g.X,
    so the velocities' canonical coordinates along it differ by O(1)."""
    pos = np.array([[0.98571426, -1.8428571, 3.557143],
                    [0.7714286, -1.5857143, 3.2142856],
                    [0.6142857, -1.4142857, 3.0142858]], dtype=np.float32)
    X = np.concatenate([pos.ravel(), np.eye(3, dtype=np.float32).ravel()])[None]
    fields = {"pos": "point", "vel": "vector"}
    ranks = {group: MinimalFrameCanonicalizer(group, fields=fields).fit(X)
             .frame_diagnostics(X)["rank"][0] for group in ("O(3)", "S_n x O(3)")}
    can = MinimalFrameCanonicalizer("S_n x O(3)", fields=fields).fit(X)
    g = random_group_element("S_n x O(3)", 1, random_state=0)
    moved = can.transform(apply_group("S_n x O(3)", g, X, fields))
    assert np.abs(moved - can.transform(X)).max() <= 1e-5    # 0.80 today
    assert ranks == {"O(3)": 2, "S_n x O(3)": 2}


@pytest.mark.parametrize("group", ["GL(3)", "SL(3)", "Aff(3)"])
def test_linear_rank_guard_does_not_warn(group):
    """One non-zero row and zero rows: RankDeficientError, and no RuntimeWarning."""
    X = np.zeros((1, 4, 3))
    X[0, 0] = [2.0, 3.0, 4.0]
    if group.startswith("Aff"):
        X[0, 1] = X[0, 0]          # two equal points: centred, one non-zero direction
    can = MinimalFrameCanonicalizer(group).fit(X.reshape(1, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(RankDeficientError, match="span"):
            can.transform(X.reshape(1, -1))


# ------------------------------------------------------------------- absent rows
ABSENT_GROUPS = ("O(3)", "SO(3)", "E(3)", "SE(3)", "GL(3)", "Aff(3)", "S_n x O(3)",
                 "S_n x E(3)")


@settings(settings(), max_examples=60)
@given(group=st.sampled_from(ABSENT_GROUPS), n=st.integers(1, 7),
       dtype=st.sampled_from([np.float64, np.float32]), exponent=st.integers(-15, 15),
       share=st.floats(0.0, 1.0), seed=st.integers(0, 2 ** 32 - 1))
def test_absent_rows_are_exact_or_a_clear_error(group, n, dtype, exponent, share, seed):
    """Padded batches (absent rows as NaN rows anywhere, any share of them, empty
    samples included): the canonical form is finite and invariant, or the one error the
    group documents (too few present rows for GL/Aff); no other exception or warning."""
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((5, n, 3)) * 10.0 ** exponent).astype(dtype)
    X[rng.random((5, n)) < share] = np.nan
    note(f"present rows per sample: {np.sum(~np.isnan(X[:, :, 0]), axis=1)}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        can = MinimalFrameCanonicalizer(group).fit(X)
        present = np.sum(~np.isnan(X[:, :, 0]), axis=1)
        # GL needs d present rows spanning R^3, Aff d + 1 (empty samples are identity)
        needed = {"GL(3)": 3, "Aff(3)": 4}.get(group, 0)
        if n < needed or np.any((present > 0) & (present < needed)):
            with pytest.raises(RankDeficientError, match=r"needs the .* span R\^3"):
                can.transform(X)
            return
        Xc = can.transform(X)
        assert np.all(np.isfinite(Xc)) and Xc.dtype == X.dtype
        assert_equivariant(can, group, X, random_state=seed % 997,
                           rtol=1e-4 if dtype == np.float32 else 1e-9)
