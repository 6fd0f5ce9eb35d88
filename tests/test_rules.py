"""Row rules, frame ensembles and weighted frames near ties: exactness for every rule,
ensemble size and band, continuity of weighted frames, the parameters of the estimators
and the torch module, and their errors.

Group level: the protocol of tests/groups/__init__.py (a non-equivariant backbone, one
random group element per sample, ``e_max`` relative to the largest output, a control
that the bare backbone is off) on the frames of :func:`ensemble_frame`, for the groups
whose frames read the rows in order, with generic and degenerate inputs, in float64 and
float32. Estimator level: ``assert_equivariant`` with a decision tree inside.
"""

import zlib

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mfa_sklearn import (
    FrameAveragingClassifier,
    FrameAveragingRegressor,
    MinimalFrameCanonicalizer,
    get_group,
)
from mfa_sklearn.groups._base import GroupElement
from mfa_sklearn.groups._ensemble import FrameEnsemble, ensemble_frame, n_row_orders, row_order
from mfa_sklearn.groups._selection import ROW_FRACTION
from mfa_sklearn.testing import assert_equivariant
from tests._helpers import CountingRegressor, assert_frame_equivariant, generic, low_rank

pytestmark = pytest.mark.usefixtures("one_thread")

#: (rule, n_frames) cases: every rule alone, ensembles for the rules that read the order
CASES = ([(rule, 1) for rule in ("first", "pivoted", "first_above")]
         + [(rule, k) for rule in ("first", "first_above") for k in (2, 4, 8)])
#: groups whose frames read the rows in order, and the data they take
GROUPS = ["O(3)", "SO(3)", "E(3)", "SE(3)", "U(2)", "O(1,3)", "GL(3)", "SL(3)", "Aff(3)"]
N_ROWS = 5
TOL64 = 1e-12
TOL32 = 1e-5


class Ensembled:
    """A group whose ``frame`` is the ensemble of ``k`` re-ordered frames (the engine's
    path), for the frame-level protocol of ``assert_frame_equivariant``."""

    def __init__(self, group, k, tie_band=0.0):
        self.group, self.k, self.tie_band = group, k, tie_band

    def __getattr__(self, name):
        return getattr(self.group, name)

    def frame(self, points=None, vectors=None, *, scalars=None, rule=None, **kwargs):
        def frame_of(p, v, present, rule=rule):
            return self.group.frame(p or None, v or None, scalars=scalars,
                                    present=present, rule=rule, **kwargs)
        return ensemble_frame(self.group, frame_of, points, vectors, None, self.k,
                              rule=rule, tol=kwargs.get("tol"), tie_band=self.tie_band)


def _data(name, rng, B=16, degenerate=False):
    """Frame-defining rows for group ``name``: generic, or of lower rank (a rank-2
    cloud for the orthogonal and unitary groups; GL/SL/Aff need full rank)."""
    G = get_group(name)
    d = G.d
    if name.startswith("U"):
        x = rng.standard_normal((B, N_ROWS, d)) + 1j * rng.standard_normal((B, N_ROWS, d))
        if degenerate:
            x[:, :, 1:] = 0.5 * x[:, :, :1]
        return x
    if degenerate and not name.startswith(("GL", "SL", "Aff")):
        return low_rank(rng, B, N_ROWS, d, 2)
    x = generic(rng, B, N_ROWS, d)
    if name.startswith("O(1"):
        x[..., 0] = 3.0 + np.abs(x[..., 0])     # timelike rows: moderate boosts
    return x


def _bound(name, dtype):
    """Largest relative error allowed: rounding level, looser for frames that solve
    (GL, SL, Aff: condition numbers of the data and of the element multiply) and boost
    (Lorentz)."""
    if dtype == np.float32:
        return 1e-3 if name.startswith(("GL", "SL", "Aff", "O(1")) else TOL32
    return 1e-9 if name.startswith(("GL", "SL", "Aff", "O(1")) else TOL64


def _conditioned(bound):
    """``bound``, or rounding times the frame's conditioning where that is larger: the
    "first" rule may take a short residual as an axis (conditioning up to ~1e4 on rank-2
    clouds, errors ~2 eps times it), which the well-conditioned rules never do."""
    return lambda frame: max(bound, 1e-14 * float(np.max(frame.diagnostics["conditioning"])))


@pytest.mark.parametrize("rule,k", CASES)
@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("degenerate", [False, True])
def test_frames_exact(name, rule, k, degenerate):
    # a fixed seed per case: str hashes change between processes (PYTHONHASHSEED)
    rng = np.random.default_rng(zlib.crc32(f"{name}-{rule}-{k}-{degenerate}".encode()))
    G = get_group(name)
    x = _data(name, rng, degenerate=degenerate)
    draw = {"kappa": 3.0} if name.startswith(("GL", "SL", "Aff")) else None
    bound = _bound(name, np.float64)
    check = assert_frame_equivariant(Ensembled(G, k), x,
                                     bound=_conditioned(bound) if rule == "first" else bound,
                                     complex=name.startswith("U"), rule=rule, draw=draw,
                                     case=f"rules {name}")
    assert check.frame.n_calls == k
    assert isinstance(check.frame, FrameEnsemble) == (k > 1)


@pytest.mark.parametrize("rule,k", [("first", 4), ("first_above", 8), ("first_above", 1)])
@pytest.mark.parametrize("name", ["E(3)", "SO(3)", "GL(3)"])
def test_frames_exact_float32(name, rule, k):
    rng = np.random.default_rng(7)
    x = _data(name, rng).astype(np.float32)
    draw = {"kappa": 3.0} if name.startswith("GL") else None
    check = assert_frame_equivariant(Ensembled(get_group(name), k), x,
                                     bound=_bound(name, np.float32), rule=rule, draw=draw)
    assert check.outputs["point"].dtype == np.float32


def test_row_orders():
    assert [list(row_order(5, i)) for i in (0, 1, 5, 6)] == [
        [0, 1, 2, 3, 4], [1, 2, 3, 4, 0], [0, 4, 3, 2, 1], [1, 0, 4, 3, 2]]
    assert n_row_orders(5) == 10 and n_row_orders(2) == 2 and n_row_orders(1) == 1
    orders = {tuple(row_order(5, i)) for i in range(10)}
    assert len(orders) == 10


def test_first_above_rule():
    """First row with residual norm >= ROW_FRACTION of the largest, else the next."""
    G = get_group("O(2)")
    x = np.array([[[0.1, 0.0], [1.0, 0.1], [0.0, 2.0]],     # row 0 too short: row 1
                  [[0.3, 0.0], [1.0, 0.1], [0.0, 2.0]]])    # row 0 long enough
    first_vector = G.frame(x, rule="first_above").H[:, 0, 0]
    np.testing.assert_allclose(np.abs(first_vector[0]), x[0, 1] / np.linalg.norm(x[0, 1]))
    np.testing.assert_allclose(first_vector[1], [1.0, 0.0])
    assert ROW_FRACTION == 0.1


def test_conditioning_adversarial():
    """A tiny first row: "first" builds its frame on it, the other rules do not."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, N_ROWS, 3))
    X[:, 0] *= 1e-6
    X = X.reshape(50, -1)
    cond = {rule: MinimalFrameCanonicalizer(group="O(3)", row_rule=rule).fit(X)
            .frame_diagnostics(X)["conditioning"] for rule in ("first", "pivoted",
                                                               "first_above")}
    assert cond["first"].min() > 1e4
    assert cond["pivoted"].max() < 1e3
    assert np.all(cond["first_above"] <= cond["pivoted"] / ROW_FRACTION ** 2 + 1e-9)


# ------------------------------------------------------------------- the estimators
def _nbody_like(rng, B=40, n=N_ROWS):
    X = rng.standard_normal((B, n * 3)) + 2.0
    return X, rng.standard_normal((B, n * 3))


@pytest.mark.parametrize("rule,k", CASES)
@pytest.mark.parametrize("group", ["E(3)", "SO(3)", "Aff(3)", "S_n x E(3)"])
def test_regressor_exact(group, rule, k):
    rng = np.random.default_rng(0)
    X, y = _nbody_like(rng)
    reg = FrameAveragingRegressor(DecisionTreeRegressor(random_state=0), group=group,
                                  target="point", row_rule=rule, n_frames=k).fit(X, y)
    assert_equivariant(reg, group, X, random_state=1)
    assert len(reg.estimator_.tree_.value) > 1
    # float32 data, float64 frames
    assert_equivariant(reg, group, X.astype(np.float32), random_state=2)


def test_classifier_exact():
    rng = np.random.default_rng(1)
    X, _ = _nbody_like(rng)
    y = rng.integers(0, 3, len(X))
    clf = FrameAveragingClassifier(DecisionTreeClassifier(random_state=0), group="E(3)",
                                   row_rule="first_above", n_frames=4).fit(X, y)
    assert_equivariant(clf.predict_proba, "E(3)", X, random_state=1)
    assert_equivariant(clf.predict, "E(3)", X, random_state=1, rtol=0.0)
    np.testing.assert_array_equal(clf.predict(X),
                                  clf.classes_[clf.predict_proba(X).argmax(axis=1)])


def test_inner_calls():
    """k canonical copies per sample in fit, k inner rows per sample in predict."""
    rng = np.random.default_rng(2)
    X, y = _nbody_like(rng)
    reg = FrameAveragingRegressor(CountingRegressor(DecisionTreeRegressor()), group="E(3)",
                                  target="vector", row_rule="first", n_frames=4).fit(X, y)
    reg.predict(X[:7])
    assert reg.estimator_.fit_rows_ == [4 * len(X)]
    assert reg.estimator_.predict_rows_ == [28]
    assert np.all(reg.frame_diagnostics(X)["frame_size"] == 4)


def test_one_frame_is_the_plain_frame():
    """n_frames=1 and the default rule are today's behaviour, bit for bit."""
    rng = np.random.default_rng(4)
    X, y = _nbody_like(rng)
    base = FrameAveragingRegressor(DecisionTreeRegressor(random_state=0), group="E(3)",
                                   target="point").fit(X, y)
    same = FrameAveragingRegressor(DecisionTreeRegressor(random_state=0), group="E(3)",
                                   target="point", row_rule=base.row_rule,
                                   n_frames=1).fit(X, y)
    np.testing.assert_array_equal(base.predict(X), same.predict(X))
    rows = X.reshape(len(X), N_ROWS, 3)
    plain = get_group("E(3)").frame(rows, rule=base.row_rule)
    np.testing.assert_array_equal(
        MinimalFrameCanonicalizer(group="E(3)", round_bits=None).fit(X).transform(X),
        plain.snap(plain.to_canonical(rows))[:, 0].reshape(len(X), -1))


def test_rules_differ_and_agree_on_generic_rows():
    """Each rule gives its own canonical forms; all three are invariant."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((30, N_ROWS * 3))
    forms = {rule: MinimalFrameCanonicalizer(group="O(3)", row_rule=rule).fit_transform(X)
             for rule in ("first", "pivoted", "first_above")}
    assert not np.allclose(forms["first"], forms["pivoted"])
    for rule in forms:
        assert_equivariant(MinimalFrameCanonicalizer(group="O(3)", row_rule=rule).fit(X),
                           "O(3)", X, random_state=0)


@pytest.mark.parametrize("group", ["E(3)", "S_n x E(3)"])
def test_absent_rows_ensemble(group):
    rng = np.random.default_rng(6)
    X, y = _nbody_like(rng)
    X.reshape(len(X), N_ROWS, 3)[::3, 1] = np.nan
    y.reshape(len(y), N_ROWS, 3)[::3, 1] = np.nan
    reg = FrameAveragingRegressor(DecisionTreeRegressor(random_state=0), group=group,
                                  target="point", row_rule="first", n_frames=4).fit(X, y)
    pred = reg.predict(X)
    assert np.isnan(pred.reshape(len(X), N_ROWS, 3)[::3, 1]).all()
    assert np.isfinite(pred.reshape(len(X), N_ROWS, 3)[1::3]).all()
    assert_equivariant(reg, group, X, random_state=3)


@pytest.mark.parametrize("params,match", [
    ({"row_rule": "largest"}, "row_rule"),
    ({"n_frames": 0}, "n_frames"),
    ({"n_frames": 2.5}, "n_frames"),
    ({"n_frames": 2, "row_rule": "pivoted"}, "reads the row order"),
    ({"n_frames": 2, "row_rule": "first", "frame": "pca"}, "frame='minimal'"),
    ({"n_frames": 11, "row_rule": "first"}, "exceeds the 10 distinct row orders"),
    ({"n_frames": 2, "row_rule": "first", "group": "S_n", "fields": {"x": ("point", 3)}},
     "has none"),
])
def test_parameter_errors(params, match):
    rng = np.random.default_rng(0)
    X, y = _nbody_like(rng, B=10)
    reg = FrameAveragingRegressor(**{"group": "E(3)", **params})
    with pytest.raises(ValueError, match=match):
        reg.fit(X, y)
    if "n_frames" not in params:
        with pytest.raises(ValueError, match=match):
            MinimalFrameCanonicalizer(**{"group": "E(3)", **params}).fit(X)


def test_grid_over_rules():
    from sklearn.model_selection import GridSearchCV
    rng = np.random.default_rng(8)
    X, _ = _nbody_like(rng, B=30)
    y = np.linalg.norm(X.reshape(30, N_ROWS, 3), axis=2).sum(axis=1)
    search = GridSearchCV(FrameAveragingRegressor(group="E(3)"), cv=2, param_grid={
        "row_rule": ["first", "first_above"], "n_frames": [1, 2]}).fit(X, y)
    assert len(search.cv_results_["params"]) == 4


# ------------------------------------------------------------------------ torch
def test_torch_module():
    torch = pytest.importorskip("torch")
    from mfa_sklearn.torch import FrameAveraged
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Linear(15, 32), torch.nn.Tanh(),
                                   torch.nn.Linear(32, 15)).double()
    model = FrameAveraged(backbone, group="E(3)", target="point", row_rule="first_above",
                          n_frames=4)
    X = np.random.default_rng(9).standard_normal((12, 15))
    Xc, frame = model.canonicalize(torch.as_tensor(X))
    assert tuple(Xc.shape) == (12, 4, 15) and frame.n_calls == 4

    def call(A):
        with torch.no_grad():
            return model(torch.as_tensor(A)).numpy()
    assert_equivariant(call, "E(3)", X, target="point", random_state=0)
    # the numpy engine computes the same frames
    can = MinimalFrameCanonicalizer(group="E(3)", row_rule="first_above",
                                    round_bits=None).fit(X)
    np.testing.assert_allclose(Xc[:, 0].numpy(), can.transform(X), atol=1e-12)
    assert "n_frames=4" in repr(model)
    ranked = FrameAveraged(backbone, group="S_n x E(3)", fields={"pos": ("point", 3)},
                           target={"pos": ("point", 3)}, row_rule="first", n_frames=3)
    Xt = torch.as_tensor(X).requires_grad_()
    ranked(Xt).sum().backward()
    assert Xt.grad.shape == Xt.shape

    def call_ranked(A):
        with torch.no_grad():
            return ranked(torch.as_tensor(A)).numpy()
    assert_equivariant(call_ranked, "S_n x E(3)", X, fields={"pos": ("point", 3)},
                       target={"pos": ("point", 3)}, random_state=0)
    with pytest.raises(ValueError, match="reads the row order"):
        FrameAveraged(backbone, group="E(3)", n_frames=2, row_rule="pivoted")
    with pytest.raises(ValueError, match="row_rule"):
        FrameAveraged(backbone, group="E(3)", row_rule="nope")


def test_first_above_exact_half():
    """Rows whose norms have ratio exactly ROW_FRACTION are decided alike for x and g.x:
    the threshold has the tie band of pivoting."""
    x = np.zeros((64, 4, 3))
    x[:, 0] = [1.0, 0.0, 0.0]
    x[:, 1] = [0.0, 10.0, 0.0]
    x[:, 2] = [0.0, 0.0, 10.0]
    x[:, 3] = [1.0, 1.0, 1.0]
    can = MinimalFrameCanonicalizer(group="O(3)", row_rule="first_above").fit(
        x.reshape(64, -1))
    assert_equivariant(can, "O(3)", x.reshape(64, -1), random_state=0)


@pytest.mark.parametrize("group", ["S_n x E(3)", "S_n x SO(3)", "S_n x O(1,3)"])
def test_permutation_products(group):
    """Ensembles over the canonical ranking: exact under the whole group, with fields
    of every kind, and on clouds with symmetries (a finite stabilizer)."""
    rng = np.random.default_rng(10)
    fields = {"pos": "point", "vel": "vector", "q": "scalar"}
    d = 4 if "O(1" in group else 3
    pos = rng.standard_normal((40, N_ROWS, d))
    if d == 4:
        pos[..., 0] = 4.0 + np.abs(pos[..., 0])        # timelike rows, moderate boosts
    else:
        # a symmetric sample: a square pyramid (rows 0-3 a square, row 4 the apex)
        pos[0] = [[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0], [0, 0, 1.5]]
    vel = rng.standard_normal((40, N_ROWS, d))
    vel[0] = 0.0
    X = np.concatenate([pos.reshape(40, -1), vel.reshape(40, -1),
                        np.ones((40, N_ROWS))], axis=1)
    y = rng.standard_normal((40, N_ROWS * d))
    reg = FrameAveragingRegressor(DecisionTreeRegressor(random_state=0), group=group,
                                  fields=fields, target="vector", row_rule="first_above",
                                  n_frames=4).fit(X, y)
    assert_equivariant(reg, group, X, fields=fields, random_state=1,
                       rtol=1e-9 if "O(1" not in group else 1e-7)
    assert np.all(reg.frame_diagnostics(X)["frame_size"] >= 4)


def test_predict_frames():
    """Fit on k canonical copies, predict with fewer frames: exact, fewer inner calls."""
    rng = np.random.default_rng(12)
    X, y = _nbody_like(rng)
    reg = FrameAveragingRegressor(CountingRegressor(DecisionTreeRegressor(random_state=0)),
                                  group="S_n x E(3)", target="point", n_frames=4,
                                  predict_frames=1).fit(X, y)
    assert reg.estimator_.fit_rows_ == [4 * len(X)]
    assert_equivariant(reg, "S_n x E(3)", X, random_state=0)
    reg.predict(X[:5])
    assert reg.estimator_.predict_rows_[-1] == 5
    clf = FrameAveragingClassifier(DecisionTreeClassifier(random_state=0), group="E(3)",
                                   n_frames=3, predict_frames=2).fit(
        X, rng.integers(0, 2, len(X)))
    assert_equivariant(clf.predict_proba, "E(3)", X, random_state=1)
    with pytest.raises(ValueError, match="reads the row order"):
        FrameAveragingRegressor(group="E(3)", row_rule="pivoted", predict_frames=2).fit(X, y)
    with pytest.raises(ValueError, match="predict_frames"):
        FrameAveragingRegressor(group="E(3)", predict_frames=0).fit(X, y)


# ------------------------------------------------------- weighted frames near ties
#: groups with weighted frames
BANDED = ["O(3)", "SO(3)", "E(3)", "SE(3)", "U(2)", "O(1,3)"]
#: the band of the tests: fractions 0.05 .. 0.15
BAND = 0.5


def _spread(name, rng, B=48, degenerate=False):
    """:func:`_data` with each row's offset from the sample's mean (translation groups)
    or each row (the others) scaled by ``exp(U(-3.5, 0))``, so that residual norm
    fractions spread over [0.03, 1] and many samples fall inside the band."""
    x = _data(name, rng, B=B, degenerate=degenerate)
    factor = np.exp(rng.uniform(-3.5, 0.0, (B, N_ROWS, 1)))
    if get_group(name).has_translations:
        mean = x.mean(axis=1, keepdims=True)
        return mean + (x - mean) * factor
    return x * factor


def _weighted(bound, dtype):
    """``bound``, or ``450 eps`` times the frame's conditioning where that is larger,
    for single precision: there the moved rows ``g.x`` are themselves rounded to
    float32, by ~eps times the translation, which moves a residual norm fraction by
    about that times a row's norm over its residual's, and the weights (steep functions
    of the fractions) with it. In float64 the plain bound holds: the rounding of the
    moved input is 2^29 times smaller."""
    eps = float(np.finfo(dtype).eps)
    return lambda frame: max(bound, 450.0 * eps
                             * float(np.max(frame.diagnostics["conditioning"])))


def _in_band(frame):
    """Samples with a second element of nonzero weight (any member)."""
    return np.asarray(frame.diagnostics["frame_size"]) > frame.n_calls / 2


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("name", BANDED)
@pytest.mark.parametrize("degenerate", [False, True])
def test_banded_frames_exact(name, k, degenerate):
    rng = np.random.default_rng(zlib.crc32(f"band-{name}-{k}-{degenerate}".encode()))
    x = _spread(name, rng, degenerate=degenerate)
    check = assert_frame_equivariant(Ensembled(get_group(name), k, BAND), x,
                                     bound=_bound(name, np.float64),
                                     rule="first_above",
                                     complex=name.startswith("U"), case=f"band {name}")
    frame = check.frame
    assert frame.n_calls == 2 * k
    inside = _in_band(frame)
    assert 0 < inside.sum() < len(x)     # both kinds of samples were checked
    weights = np.asarray(frame.element_weights)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-14)
    assert np.all(weights >= 0.0)


@pytest.mark.parametrize("name", ["E(3)", "SE(3)"])
@pytest.mark.parametrize("k", [1, 4])
def test_banded_frames_exact_far_away(name, k):
    """Nearly planar clouds (height 1/128 of their width) translated by ~100 times
    their size: exact to 1e-12 in float64. Their last norm fractions are ratios of
    small residuals, which a shift common to all centred rows (the rounding of a far
    centroid) moved by ~1e-11; the group elements here (signed permutations, dyadic
    translations of dyadic rows) are exact in floating point, so any error is the
    frame's own."""
    rng = np.random.default_rng(zlib.crc32(f"far-{name}-{k}".encode()))
    B, grid = 64, 2.0 ** 16
    x = np.round(_spread(name, rng, B=B) * grid) / grid
    x[..., 2] *= 2.0 ** -7
    T = np.zeros((B, 3, 3))
    for i, (order, signs) in enumerate(zip(rng.permuted(np.tile(np.arange(3), (B, 1)),
                                                        axis=1),
                                           rng.choice([-1.0, 1.0], (B, 3)))):
        T[i, np.arange(3), order] = signs
    if name == "SE(3)":   # determinant +1
        T[:, 0] *= np.linalg.det(T)[:, None]
    b = np.round(rng.normal(0.0, 100.0, (B, 3)) * grid) / grid
    G = get_group(name)
    check = assert_frame_equivariant(Ensembled(G, k, BAND), x, bound=TOL64,
                                     rule="first_above", element=GroupElement(T, b),
                                     case=f"band far {name}")
    assert _in_band(check.frame).sum() > B // 8


@pytest.mark.parametrize("name", ["E(3)", "SO(3)"])
def test_banded_frames_exact_float32(name):
    rng = np.random.default_rng(11)
    x = _spread(name, rng).astype(np.float32)
    check = assert_frame_equivariant(Ensembled(get_group(name), 2, BAND), x,
                                     bound=_weighted(_bound(name, np.float32), np.float32),
                                     rule="first_above")
    assert check.outputs["point"].dtype == np.float32
    assert _in_band(check.frame).any()


def _path(s):
    """O(3) clouds along a path: row 0 has length ``s`` (B,) and a direction 20 degrees
    from row 1's, the other rows have norms near 1, so the first frame vector is row
    0's direction where its fraction exceeds 0.1 and row 1's below, and nothing else
    decides within 0.1 (1 +- 0.3): row 1's residual against row 0 is 0.34, row 0's
    against row 1 below 0.34 s."""
    rest = np.array([[1.0, 0.0, 0.0], [0.2, 1.1, 0.5], [-0.3, 0.4, 0.9], [0.5, -0.6, 0.7]])
    angle = np.deg2rad(20.0)
    direction = np.array([np.cos(angle), np.sin(angle), 0.0])
    x = np.broadcast_to(rest, (len(s), 4, 3))
    return np.concatenate([s[:, None, None] * direction, x], axis=1)


def _averaged(frame, x):
    """A fixed non-equivariant backbone, averaged over ``frame``: (B, n, 3) vectors."""
    W = np.random.default_rng(0).standard_normal((15, 15)) / 3.0
    canon = frame.to_canonical(x)
    out = np.tanh(canon.reshape(canon.shape[:2] + (15,)) @ W)
    return frame.from_canonical(out.reshape(canon.shape), "vector")


def _continuous(G, x, band):
    """The plain and the weighted frame average of :func:`_averaged` along a path of
    clouds ``x``, and the weighted frame, after checking that the plain one jumps and
    the weighted one moves by less than a twentieth of that at every step."""
    plain = _averaged(G.frame(x, rule="first_above"), x)
    frame = Ensembled(G, 1, band).frame(x, rule="first_above")
    weighted = _averaged(frame, x)
    jump = np.abs(np.diff(plain, axis=0)).max(axis=(1, 2))
    step = np.abs(np.diff(weighted, axis=0)).max(axis=(1, 2))
    assert jump.max() > 0.1
    assert step.max() < 0.05 * jump.max()
    return plain, weighted, frame


def test_banded_frames_continuous():
    """Along a path across the threshold the plain frame jumps; the weighted one moves
    by about the path's step, and equals the plain one outside the band."""
    G = get_group("O(3)")
    band = 0.3
    s = np.linspace(0.03, 0.2, 721)
    x = _path(s)
    largest = np.linalg.norm(x, axis=2).max(axis=1)
    plain, weighted, weighted_frame = _continuous(G, x, band)
    fraction = s / largest
    outside = (fraction < 0.95 * ROW_FRACTION * (1 - band)) | (
        fraction > 1.05 * ROW_FRACTION * (1 + band))
    assert outside.sum() > 100
    # the same frame (the backbone's matmul rounds by batch shape)
    np.testing.assert_allclose(weighted[outside], plain[outside], rtol=0.0, atol=1e-14)
    inside = _in_band(weighted_frame)
    np.testing.assert_array_equal(
        inside, (fraction >= ROW_FRACTION * (1 - band)) & (fraction < ROW_FRACTION * (1 + band)))
    # the frame of the upper edge (row 0 passed over) weighs 1 at the band's lower
    # edge and falls to 0 at its upper edge
    second = np.asarray(weighted_frame.element_weights)[:, 1][inside]
    assert np.all(np.diff(second) <= 1e-12)
    assert second[0] > 0.99 and second[-1] < 0.01


def test_banded_inner_calls():
    """Only samples inside the band get a second frame and inner row, in fit (weighted
    copies) and predict; frame_size and n_band_samples_ count them."""
    rng = np.random.default_rng(5)
    B = 60
    X = _spread("E(3)", rng, B=B).reshape(B, -1)
    y = rng.standard_normal((B, N_ROWS * 3))
    reg = FrameAveragingRegressor(CountingRegressor(Ridge()), group="E(3)", target="point",
                                  tie_band=BAND).fit(X, y)
    size = reg.frame_diagnostics(X)["frame_size"]
    inside = int(np.count_nonzero(size == 2))
    assert 0 < inside < B and set(np.unique(size)) == {1.0, 2.0}
    assert reg.n_band_samples_ == inside
    assert reg.estimator_.fit_rows_ == [B + inside]
    reg.predict(X)
    assert reg.estimator_.predict_rows_ == [B + inside]
    assert_equivariant(reg, "E(3)", X, random_state=1)
    plain = FrameAveragingRegressor(CountingRegressor(Ridge()), group="E(3)",
                                    target="point").fit(X, y)
    assert plain.n_band_samples_ == 0
    # the default is the plain frame, bit for bit
    zero = FrameAveragingRegressor(CountingRegressor(Ridge()), group="E(3)", target="point",
                                   tie_band=0.0).fit(X, y)
    np.testing.assert_array_equal(zero.predict(X), plain.predict(X))
    # the copies' weights reach an inner estimator that takes them
    ridge = FrameAveragingRegressor(Ridge(), group="E(3)", target="point",
                                    tie_band=BAND).fit(X, y)
    assert not np.allclose(ridge.estimator_.coef_, reg.estimator_.model_.coef_)


@pytest.mark.parametrize("group,k", [("E(3)", 1), ("SO(3)", 3)])
def test_banded_estimators_exact(group, k):
    rng = np.random.default_rng(6)
    X = _spread(group, rng).reshape(48, -1)
    y = rng.standard_normal((48, N_ROWS * 3))
    reg = FrameAveragingRegressor(DecisionTreeRegressor(random_state=0), group=group,
                                  target="point", n_frames=k, tie_band=BAND).fit(X, y)
    assert_equivariant(reg, group, X, random_state=1)
    assert_equivariant(reg, group, X.astype(np.float32), random_state=2)
    labels = rng.integers(0, 3, len(X))
    clf = FrameAveragingClassifier(DecisionTreeClassifier(random_state=0), group=group,
                                   n_frames=k, tie_band=BAND).fit(X, labels)
    assert_equivariant(clf.predict_proba, group, X, random_state=1)
    assert_equivariant(clf.predict, group, X, random_state=1, rtol=0.0)


def test_banded_absent_rows():
    """Weighted frames of padded samples: exact, NaN at the absent rows."""
    rng = np.random.default_rng(3)
    X = _spread("E(3)", rng, B=60)
    X[::3, 4] = np.nan
    X = X.reshape(60, -1)
    reg = FrameAveragingRegressor(DecisionTreeRegressor(random_state=0), group="E(3)",
                                  target="point", tie_band=BAND).fit(
        X, rng.standard_normal((60, N_ROWS * 3)))
    assert reg.n_band_samples_ > 0
    assert_equivariant(reg, "E(3)", X, random_state=1)
    pred = reg.predict(X).reshape(60, N_ROWS, 3)
    assert np.isnan(pred[::3, 4]).all() and np.isfinite(pred[1::3]).all()


@pytest.mark.parametrize("params,match", [
    ({"tie_band": -0.1}, "tie_band"),
    ({"tie_band": 1.0}, "tie_band"),
    ({"tie_band": 0.2, "row_rule": "first"}, "row_rule='first'"),
    ({"tie_band": 0.2, "frame": "pca"}, "frame='minimal'"),
    ({"tie_band": 0.2, "group": "GL(3)"}, "not for group GL"),
    ({"tie_band": 0.2, "group": "S_n x O(1,2)"}, "not for group S_n x O"),
    ({"tie_band": 0.2, "group": "S_n", "fields": {"x": ("point", 3)}}, "not for group S_n"),
])
def test_tie_band_errors(params, match):
    rng = np.random.default_rng(0)
    X, y = _nbody_like(rng, B=10)
    with pytest.raises(ValueError, match=match):
        FrameAveragingRegressor(**{"group": "E(3)", **params}).fit(X, y)


@pytest.mark.parametrize("n, how_many", [(6, "up to 32 orders"), (12, "at least 233 orders"),
                                         (64, "at least 17167680177565 orders")])
def test_tie_band_refuses_too_many_orders_before_listing_them(n, how_many):
    # a chain of n rows whose squared norms lie 0.01 apart, in a band of 0.02: n = 12
    # listed 12! orders (MemoryError), n = 64 ran out of memory at once
    rng = np.random.default_rng(0)
    u = rng.normal(size=(n, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    X = (u * np.sqrt(1.0 - 0.01 * np.arange(n))[:, None]).reshape(1, -1)
    with pytest.raises(ValueError, match=f"{how_many} of near-tied rows"):
        FrameAveragingRegressor(group="S_n x O(3)", tie_band=0.2).fit(X, [1.0])


@pytest.mark.parametrize("group", ["S_n x E(3)", "S_n x SE(3)", "S_n x O(3)"])
def test_tie_band_with_twin_rows_is_finite_and_exact(group):
    """A duplicated row sends a sample to nauty's labeling, whose canonical order need
    not sort the rows by key; the near-tie orders were listed from it, so the plain
    order could have weight 0 and every weight 0/0 (NaN predictions for 59% of such
    clouds under E(3)). They are listed from the rows sorted by key."""
    pytest.importorskip("pynauty")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6, 3))
    X[:, 1] = X[:, 0]
    y = rng.normal(size=(60, 18))
    reg = FrameAveragingRegressor(DecisionTreeRegressor(random_state=0), group=group,
                                  target="point", tie_band=0.1).fit(X, y)
    assert np.isfinite(reg.predict(X)).all()
    assert_equivariant(reg, group, X, random_state=1, rtol=1e-10)


def test_tie_band_on_samples_without_near_ties():
    # a batch (or a chunk) with no near-tied rows at all: one order per sample
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5, 3))
    y = rng.normal(size=60)
    reg = FrameAveragingRegressor(group="S_n x E(3)", tie_band=0.2).fit(X, y)
    together = reg.predict(X)
    alone = np.concatenate([reg.predict(X[i:i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(alone, together, rtol=1e-12, atol=1e-12)


def test_banded_torch_module():
    torch = pytest.importorskip("torch")
    from mfa_sklearn.torch import FrameAveraged
    torch.manual_seed(0)
    calls = []

    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(15, 32), torch.nn.Tanh(),
                                           torch.nn.Linear(32, 15)).double()

        def forward(self, rows):
            calls.append(len(rows))
            return self.net(rows)

    model = FrameAveraged(Counting(), group="E(3)", target="point", tie_band=BAND)
    X = _spread("E(3)", np.random.default_rng(8)).reshape(48, -1)
    Xc, frame = model.canonicalize(torch.as_tensor(X))
    assert tuple(Xc.shape) == (48, 2, 15)
    inside = int((frame.element_weights[:, 1] > 0).sum())
    assert 0 < inside < 48
    Xt = torch.as_tensor(X).requires_grad_()
    calls.clear()
    model(Xt).sum().backward()
    assert calls == [48 + inside] and Xt.grad.shape == Xt.shape

    def call(A):
        with torch.no_grad():
            return model(torch.as_tensor(A)).numpy()
    assert_equivariant(call, "E(3)", X, target="point", random_state=0)
    assert "tie_band=0.5" in repr(model)
    with pytest.raises(ValueError, match="row_rule='first'"):
        FrameAveraged(Counting(), group="E(3)", row_rule="first", tie_band=0.1)


# ------------------------------------------- S_n x G: near ties of the canonical ranking
#: S_n products with weighted frames (orders of near-tied rows, weighted G-frames)
SN_BANDED = ["S_n x E(3)", "S_n x SE(3)", "S_n x O(3)"]


def _near_tied(name, rng, B=48, chain=False):
    """Clouds whose first four rows (about the centroid for E/SE) have norms in two
    near-tied pairs (``chain``: three near-tied rows), 1 and 0.6 each up to +-1.5%,
    rows shuffled: keys of the canonical ranking within the band and outside it."""
    directions = rng.standard_normal((B, 4, 3))
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    norms = np.array([0.8, 0.8, 0.8, 0.45] if chain else [1.0, 1.0, 0.6, 0.6])
    lead = directions * (norms + rng.uniform(-0.015, 0.015, (B, 4)))[..., None]
    x = np.concatenate([lead, -lead.sum(axis=1, keepdims=True)], axis=1)
    x = rng.permuted(x, axis=1)
    if get_group(name).has_translations:
        x = x + rng.normal(0.0, 3.0, (B, 1, 3))
    return x


def _orders(frame):
    """Orders of nonzero weight per sample of a weighted S_n x G frame."""
    return np.count_nonzero(np.asarray(frame.weights) > 0, axis=1)


@pytest.mark.parametrize("chain", [False, True])
@pytest.mark.parametrize("k,scale", [(1, 1.0), (2, 1.0), (1, 1e-160), (1, 1e160)])
@pytest.mark.parametrize("name", SN_BANDED)
def test_ranked_frames_exact(name, k, chain, scale):
    rng = np.random.default_rng(zlib.crc32(f"ranked-{name}-{k}-{chain}".encode()))
    x = _near_tied(name, rng, chain=chain) * scale
    G = get_group(name)
    # translations on the data's scale (10 would wipe out clouds of size 1e-160)
    draw = {"translation_scale": 10.0 * scale} if G.has_translations else None
    check = assert_frame_equivariant(Ensembled(G, k, BAND), x, bound=TOL64, draw=draw,
                                     rule="first_above", case=f"ranked {name}")
    frame = check.frame
    orders = _orders(frame)
    assert (orders == 1).any() and (orders > 1).any()
    if chain:   # every order of a cluster of three whose keys are close enough
        assert orders.max() >= 6
    weights = np.asarray(frame.element_weights)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-14)
    assert np.all(weights >= 0.0)


def test_ranked_frames_exact_float32():
    rng = np.random.default_rng(21)
    x = _near_tied("S_n x E(3)", rng).astype(np.float32)
    check = assert_frame_equivariant(Ensembled(get_group("S_n x E(3)"), 1, BAND), x,
                                     bound=_weighted(TOL32, np.float32), rule="first_above")
    assert check.outputs["point"].dtype == np.float32
    assert (_orders(check.frame) > 1).any()


def _crossing(t, chain=False):
    """O(3) clouds along a path where rows 0 and 1 (``chain``: and row 3) swap their
    norms at ``t = 0`` (t: (B,)); rows 2 and 4 have norms 1.5 and 0.4."""
    rows = np.array([[1.0, 0.0, 0.0], [0.3, 0.9, 0.1], [0.2, -0.4, 1.4], [-0.5, 0.6, 0.6],
                     [0.1, 0.2, -0.3]])
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    norms = np.stack([1.0 + t, 1.0 - t, np.full_like(t, 1.5),
                      1.0 + (0.5 * t if chain else np.full_like(t, 0.3)),
                      np.full_like(t, 0.4)], axis=1)
    return rows * norms[..., None]


@pytest.mark.parametrize("chain", [False, True])
def test_ranked_frames_continuous(chain):
    """Where near-tied rows swap in the canonical ranking the plain S_n x O(3) frame
    jumps; the weighted one moves by about the path's step (also where three rows tie
    at once), and equals the plain one outside the band."""
    G = get_group("S_n x O(3)")
    t = np.linspace(-0.15, 0.15, 601)
    x = _crossing(t, chain)
    plain, weighted, frame = _continuous(G, x, BAND)
    orders = _orders(frame)
    assert orders.max() == (6 if chain else 2)
    outside = orders == 1
    assert 0 < outside.sum() < len(t)
    np.testing.assert_allclose(weighted[outside], plain[outside], rtol=0.0, atol=1e-14)


def test_ranked_estimators():
    """Estimators with weighted S_n x E(3) frames: exact, extra inner rows and calls
    only for the samples inside a band."""
    rng = np.random.default_rng(22)
    B = 48
    X = _near_tied("S_n x E(3)", rng, B=B).reshape(B, -1)
    y = rng.standard_normal((B, N_ROWS * 3))
    reg = FrameAveragingRegressor(CountingRegressor(DecisionTreeRegressor(random_state=0)),
                                  group="S_n x E(3)", target="point", tie_band=BAND).fit(X, y)
    size = reg.frame_diagnostics(X)["frame_size"]
    assert 0 < reg.n_band_samples_ == np.count_nonzero(size > 1) < B
    assert reg.estimator_.fit_rows_ == [int(size.sum())]
    assert_equivariant(reg, "S_n x E(3)", X, random_state=1)
    assert_equivariant(reg, "S_n x E(3)", X.astype(np.float32), random_state=2)
    clf = FrameAveragingClassifier(DecisionTreeClassifier(random_state=0),
                                   group="S_n x E(3)", tie_band=BAND, n_frames=2).fit(
        X, rng.integers(0, 3, B))
    assert_equivariant(clf.predict_proba, "S_n x E(3)", X, random_state=1)
    # padded samples: absent rows stay last, never in a cluster
    Xp = X.reshape(B, N_ROWS, 3).copy()
    Xp[::3, 4] = np.nan
    Xp = Xp.reshape(B, -1)
    padded = FrameAveragingRegressor(DecisionTreeRegressor(random_state=0),
                                     group="S_n x E(3)", target="point",
                                     tie_band=BAND).fit(Xp, y)
    assert padded.n_band_samples_ > 0
    assert_equivariant(padded, "S_n x E(3)", Xp, random_state=1)


def test_ranked_torch_module():
    torch = pytest.importorskip("torch")
    from mfa_sklearn.torch import FrameAveraged
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Linear(15, 32), torch.nn.Tanh(),
                                   torch.nn.Linear(32, 15)).double()
    model = FrameAveraged(backbone, group="S_n x E(3)", target="point", tie_band=BAND)
    X = _near_tied("S_n x E(3)", np.random.default_rng(23)).reshape(48, -1)
    Xt = torch.as_tensor(X).requires_grad_()
    model(Xt).sum().backward()
    assert Xt.grad.shape == Xt.shape and torch.isfinite(Xt.grad).all()

    def call(A):
        with torch.no_grad():
            return model(torch.as_tensor(A)).numpy()
    assert_equivariant(call, "S_n x E(3)", X, target="point", random_state=0)


def test_ranked_too_many_orders():
    """Five rows of equal norms would need 120 orders: a clear error."""
    rng = np.random.default_rng(24)
    x = rng.standard_normal((4, N_ROWS, 3))
    x /= np.linalg.norm(x, axis=2, keepdims=True)
    with pytest.raises(ValueError, match="orders of near-tied rows"):
        Ensembled(get_group("S_n x O(3)"), 1, BAND).frame(x, rule="first_above")
