"""mfa_sklearn.torch: FrameAveraged, and skorch nets both inside and outside the frames."""

import importlib
import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mfa_sklearn import (
    FrameAveragingClassifier,
    FrameAveragingRegressor,
    MinimalFrameCanonicalizer,
    check_equivariance,
)
from mfa_sklearn.testing import apply_group, assert_equivariant, random_group_element
from tests._helpers import CONTROL, cube_vertices, rotated, run_script

torch = pytest.importorskip("torch")
skorch = pytest.importorskip("skorch")
nn = torch.nn

from mfa_sklearn.torch import FrameAveraged  # noqa: E402

FIELDS = {"pos": "point", "vel": "vector", "q": "scalar"}   # 4 particles: 12 + 12 + 4
# S_n alone has no dimension d: per-row fields give their width
SN_FIELDS = {"pos": ("point", 3), "vel": ("vector", 3), "q": "scalar"}
N_ROWS, N_COLS = 4, 28
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def mlp(n_in=N_COLS, n_out=1, hidden=32, dtype=torch.float64, batchnorm=False):
    """A fixed-seed MLP on the flat input: mixes rows and coordinates, so it is neither
    permutation- nor G-equivariant."""
    torch.manual_seed(1)
    layers = [nn.Linear(n_in, hidden)]
    layers += [nn.BatchNorm1d(hidden)] if batchnorm else []
    layers += [nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, n_out)]
    return nn.Sequential(*layers).to(dtype)


class MLP(nn.Module):
    """A backbone class for skorch (built from module__* arguments)."""

    def __init__(self, n_in=N_COLS, n_out=1, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(),
                                 nn.Linear(hidden, n_out))

    def forward(self, X):
        return self.net(X)


class Counting(nn.Module):
    """Counts calls and remembers the shape of the last input."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls, self.shape = inner, 0, None

    def forward(self, X):
        self.calls += 1
        self.shape = tuple(X.shape)
        return self.inner(X)


class TorchFunction(RegressorMixin, BaseEstimator):
    """An sklearn regressor whose prediction is a fixed torch module, in float64 (for
    parity between the numpy estimator path and the torch path)."""

    def __init__(self, module=None):
        self.module = module

    def fit(self, X, y):
        self.seen_ = None
        return self

    def predict(self, X):
        self.seen_ = X
        with torch.no_grad():
            return self.module(torch.from_numpy(X)).numpy()


def data(n_samples=64, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=(n_samples, N_COLS)).astype(dtype)


def layouts(group, target):
    """Fields and target for a group: S_n needs explicit widths."""
    if group != "S_n":
        return FIELDS, target
    return SN_FIELDS, (target if target == "invariant" else (target, 3))


def as_function(model):
    """A numpy -> numpy callable for check_equivariance."""
    def call(X):
        with torch.no_grad():
            return model(torch.from_numpy(X)).numpy()
    return call


# ------------------------------------------------------------------ construction
def test_module_class_gets_prefixed_kwargs_and_bad_kwargs_fail():
    fa = FrameAveraged(MLP, group="O(3)", fields=FIELDS, module__hidden=7)
    assert fa.module.net[0].out_features == 7
    assert "group='O(3)'" in repr(fa)
    with pytest.raises(TypeError, match="module__<name>"):
        FrameAveraged(MLP, hidden=7)
    with pytest.raises(TypeError, match="need a class"):
        FrameAveraged(MLP(), module__hidden=7)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        FrameAveraged(lambda x: x)


@pytest.mark.parametrize("kwargs, match", [
    (dict(group="Q(3)"), "Q\\(3\\)"),
    (dict(frame="random"), "'frame' parameter of FrameAveraged must be a str among"),
    (dict(fields={"x": "tensor"}), "unknown kind"),
    (dict(target={"y": "spinor"}), "unknown kind"),
    (dict(tol=2.0), "tol"),
    (dict(frame_dtype="float16"), "frame_dtype"),
    (dict(group="S_n x E(3)", fields=None, presence_column=True),
     "presence_column=True is for groups that keep rows in place"),
])
def test_bad_parameters_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FrameAveraged(MLP(), **kwargs)


def test_bad_input_fails_clearly():
    fa = FrameAveraged(MLP(), group="E(3)", fields=FIELDS)
    with pytest.raises(ValueError, match="cannot divide"):
        fa(torch.zeros(2, 29))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        fa.canonicalize(np.zeros((2, N_COLS)))
    with pytest.raises(TypeError, match=r"floating torch\.Tensor; got torch\.int64"):
        fa(torch.ones(2, N_COLS, dtype=torch.int64))
    X = torch.from_numpy(data(2))
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_rows\) = \(2, 4\); got \(2,\)"):
        fa(X, torch.ones(2, dtype=bool))
    with pytest.raises(TypeError, match=r"boolean torch\.Tensor .* got ndarray of bool"):
        fa(X, np.ones((2, 4), dtype=bool))
    partly_nan = torch.randn(2, N_COLS)
    partly_nan[1, 4] = float("nan")                # one coordinate of a position
    with pytest.raises(ValueError, match=r"NaN or inf.*sample 1, row 1 is partly NaN"):
        fa(partly_nan)
    # all NaN: two samples without present rows (see test_absent_rows.py), NaN outputs
    assert torch.isnan(fa(torch.full((2, N_COLS), float("nan")))).all()
    wrong_output = FrameAveraged(mlp(n_out=13), group="E(3)", fields=FIELDS,
                                 target="point")
    with pytest.raises(ValueError, match="module's output has 13 columns"):
        wrong_output(torch.from_numpy(data(2)))


def test_missing_torch_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "mfa_sklearn.torch")
    with pytest.raises(ImportError, match=r"pip install 'mfa_sklearn\[torch\]'"):
        importlib.import_module("mfa_sklearn.torch")


# ------------------------------------------------------- parity with the numpy path
@pytest.mark.parametrize("group", ["O(3)", "SO(3)", "E(3)", "SE(3)", "S_n", "S_n x O(3)",
                                   "S_n x E(3)"])
@pytest.mark.parametrize("target", ["invariant", "point", "vector"])
def test_torch_path_equals_numpy_estimator_path(group, target):
    X = data()
    n_out = 1 if target == "invariant" else 3 * N_ROWS
    module = mlp(n_out=n_out)
    fields, target = layouts(group, target)
    # numpy path: canonicalize with the estimators, predict with the same module (the
    # torch path does not round canonical coordinates, so neither does this one)
    reg = FrameAveragingRegressor(TorchFunction(module), group=group, fields=fields,
                                  target=target, round_bits=None).fit(
        X, np.zeros((len(X), n_out)))
    expected = reg.predict(X)
    canonical_np = reg.estimator_.seen_
    canonical_t, _ = FrameAveraged(module, group=group, fields=fields).canonicalize(
        torch.from_numpy(X))
    fa = FrameAveraged(module, group=group, fields=fields, target=target)
    with torch.no_grad():
        got = fa(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(canonical_t[:, 0].numpy(), canonical_np, rtol=0, atol=1e-12)
    transformed = MinimalFrameCanonicalizer(group, fields=fields,
                                            round_bits=None).fit(X).transform(X)
    np.testing.assert_allclose(canonical_t[:, 0].numpy(), transformed, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("group, target", [
    ("U(2)", "point"), ("SU(2)", "vector"), ("O(1,3)", "vector"), ("SO(1,3)", "vector"),
    ("GL(3)", "vector"), ("SL(3)", "vector"), ("Aff(3)", "point")])
def test_other_group_families_match_numpy_and_are_equivariant(group, target):
    width = 4 if group.startswith(("U", "SU")) else 3 if "(1," not in group else 4
    fields, n = {"x": "point", "q": "scalar"}, 6
    X = np.random.default_rng(11).normal(size=(48, n * width + n))
    if "(1," in group:                             # mostly timelike rows
        X[:, 0:n * width:width] += 3.0
    module = mlp(n_in=n * width + n, n_out=n * width)
    reg = FrameAveragingRegressor(TorchFunction(module), group=group, fields=fields,
                                  target=target).fit(X, np.zeros((len(X), n * width)))
    fa = FrameAveraged(module, group=group, fields=fields, target=target)
    with torch.no_grad():
        got = fa(torch.from_numpy(X)).numpy()
    expected = reg.predict(X)
    # the regressor rounds canonical inputs to 40 bits (round_bits), the module does not:
    # a coordinate at a grid boundary differs by one step, 2^-40 relative
    np.testing.assert_allclose(got, expected, rtol=0, atol=4e-12 * np.abs(expected).max())
    assert_equivariant(as_function(fa), group, X, fields=fields, target=target,
                       random_state=12, rtol=1e-9)


def test_three_d_input_keeps_its_shape_for_the_module():
    X = torch.from_numpy(data(8)[:, :24].reshape(8, 4, 6))   # per row: pos, vel
    body = Counting(nn.Sequential(nn.Flatten(), nn.Linear(24, 12)).double())
    out = FrameAveraged(body, group="E(3)", fields={"pos": "point", "vel": "vector"},
                        target="vector")(X)
    assert body.shape == (8, 4, 6) and out.shape == (8, 12)


def test_group_none_is_the_bare_module():
    module = mlp()
    X = torch.from_numpy(data(16))
    torch.testing.assert_close(FrameAveraged(module, group=None)(X), module(X),
                               rtol=0, atol=0)


# ----------------------------------------------------------------- equivariance
@pytest.mark.parametrize("group", ["O(3)", "SE(3)", "E(3)", "S_n", "S_n x E(3)",
                                   "S_n x SO(3)"])
@pytest.mark.parametrize("target", ["invariant", "point", "vector"])
@pytest.mark.parametrize("dtype, bound", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_equivariance_with_a_non_equivariant_mlp(group, target, dtype, bound):
    X = data(128, dtype=dtype)
    n_out = 1 if target == "invariant" else 3 * N_ROWS
    module = mlp(n_out=n_out, dtype=getattr(torch, np.dtype(dtype).name))
    fields, target = layouts(group, target)
    fa = FrameAveraged(module, group=group, fields=fields, target=target)
    kwargs = dict(fields=fields, target=target, random_state=3)
    assert fa(torch.from_numpy(X)).dtype == module[0].weight.dtype
    assert_equivariant(as_function(fa), group, X, **kwargs, rtol=bound)
    control = check_equivariance(as_function(module), group, X, **kwargs)["max_error"]
    assert control >= 1e-2, control


def test_batchnorm_in_training_mode_stays_equivariant():
    X = data(128)
    fa = FrameAveraged(mlp(n_out=12, batchnorm=True), group="E(3)", fields=FIELDS,
                       target="point").train()
    assert_equivariant(as_function(fa), "E(3)", X, fields=FIELDS, target="point",
                       random_state=4, rtol=1e-7)


@pytest.mark.parametrize("frame, rows", [("minimal", 1), ("pca", 8)])
def test_module_is_called_once_per_forward(frame, rows):
    body = Counting(mlp(n_out=12))
    fa = FrameAveraged(body, group="E(3)", fields=FIELDS, target="point", frame=frame)
    X = torch.from_numpy(data(20))
    out = fa(X)
    assert body.calls == 1 and body.shape == (20 * rows, N_COLS) and out.shape == (20, 12)
    assert_equivariant(as_function(fa), "E(3)", X.numpy(), fields=FIELDS, target="point",
                       random_state=5, rtol=1e-10)


def test_pca_frames_of_se3_use_four_rows():
    body = Counting(mlp())
    fa = FrameAveraged(body, group="SE(3)", fields=FIELDS, frame="pca")
    fa(torch.from_numpy(data(5)))
    assert body.shape == (5 * 4, N_COLS)


def test_large_cpu_batches_are_chunked_with_the_same_result():
    X = torch.from_numpy(data(40000, seed=7))     # 3 chunks of 18724 clouds
    fa = FrameAveraged(Counting(mlp(n_out=12)), group="E(3)", fields=FIELDS,
                       target="vector")
    with torch.no_grad():
        whole = fa(X)
        pieces = torch.cat([fa(X[:20000]), fa(X[20000:])])
    assert fa.module.calls == 3 and fa.module.shape == (20000, N_COLS)
    torch.testing.assert_close(whole, pieces, rtol=0, atol=1e-13)


# -------------------------------------------------------------------- gradients
def _forces(energy, x):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(x).sum(), x)
    return -grad


@pytest.mark.parametrize("group, detach_frame", [("E(3)", False), ("E(3)", True),
                                                ("S_n x E(3)", False)])
def test_forces_of_an_invariant_energy_are_equivariant(group, detach_frame):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(64, 15))
    energy = FrameAveraged(mlp(n_in=15), group=group, detach_frame=detach_frame)
    g = random_group_element(group, 64, random_state=9)
    F = _forces(energy, torch.from_numpy(x)).numpy()
    F_moved = _forces(energy, torch.from_numpy(apply_group(group, g, x))).numpy()
    # forces are vectors: rotated (and permuted), not translated
    expected = apply_group(group, g, F, fields="vector")
    error = np.abs(F_moved - expected).max() / np.abs(F_moved).max()
    assert error <= 1e-9, error
    control = _forces(energy.module, torch.from_numpy(x)).numpy()
    control_moved = _forces(energy.module, torch.from_numpy(apply_group(group, g, x)))
    assert np.abs(control_moved.numpy()
                  - apply_group(group, g, control, fields="vector")).max() > 1e-3
    if detach_frame:  # still equivariant, but not the gradient of the composition
        exact = _forces(FrameAveraged(energy.module, group=group), torch.from_numpy(x))
        assert np.abs(exact.numpy() - F).max() > 1e-6


def test_gradients_on_symmetric_clouds_are_symmetric():
    """Cubes take the nauty search and average over 48 stored elements. The energy is
    invariant, and so is its gradient with respect to the backbone's parameters (what
    training uses): the orbit of a cube has one set of canonical inputs. The function is
    not differentiable there, but its input gradient is that of the mean of the 48
    elements' canonical inputs: forces are equivariant too."""
    pytest.importorskip("pynauty")
    rng = np.random.default_rng(13)
    x = rotated(cube_vertices(), 4, rng, shift=False).reshape(4, 24)
    energy = FrameAveraged(mlp(n_in=24), group="S_n x E(3)")
    gx = apply_group("S_n x E(3)", random_group_element("S_n x E(3)", 4, random_state=14), x)

    def parameter_gradients(z):
        z = torch.from_numpy(z).requires_grad_(True)
        value = energy(z)
        grads = torch.autograd.grad(value.sum(), [z] + list(energy.parameters()))
        assert torch.isfinite(grads[0]).all()
        return value.detach(), torch.cat([g.ravel() for g in grads[1:]])

    e, grad = parameter_gradients(x)
    e_moved, grad_moved = parameter_gradients(gx)
    torch.testing.assert_close(e_moved, e, rtol=0, atol=1e-13)
    torch.testing.assert_close(grad_moved, grad, rtol=0, atol=1e-12)
    assert grad.abs().max() > 0
    F = _forces(energy, torch.from_numpy(x)).numpy()
    F_moved = _forces(energy, torch.from_numpy(gx)).numpy()
    expected = apply_group("S_n x E(3)", random_group_element("S_n x E(3)", 4,
                                                              random_state=14), F,
                           fields="vector")
    np.testing.assert_allclose(F_moved, expected, rtol=0, atol=1e-12 * np.abs(F).max())
    assert np.abs(F).max() > 1e-6


@pytest.mark.parametrize("group", ["O(3)", "E(3)", "S_n x E(3)"])
@pytest.mark.parametrize("target", ["invariant", "point"])
def test_gradcheck(group, target):
    x = torch.from_numpy(np.random.default_rng(10).normal(size=(2, 12)))
    x.requires_grad_(True)
    fa = FrameAveraged(mlp(n_in=12, n_out=1 if target == "invariant" else 12),
                       group=group, target=target)
    assert torch.autograd.gradcheck(fa, (x,), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("case", ["planar cloud", "planar polygon"])
def test_gradcheck_where_canonical_coordinates_are_snapped(case):
    """A planar cloud's coordinates off its plane are at the rounding level, and
    snapped to exact zeros, but they still move with the input: their gradient is kept
    (with it cut, the gradient of a square missed those terms, off by O(1))."""
    rng = np.random.default_rng(11)
    if case == "planar cloud":
        x = rng.normal(size=(2, 4, 3)) * [1.0, 1.0, 0.0]
    else:
        angle = 2 * np.pi * np.arange(4) / 4 + 0.3
        x = np.stack([np.cos(angle), np.sin(angle), np.zeros(4)], axis=1) * [[[1.0]], [[2.0]]]
    x = torch.from_numpy(x.reshape(2, 12)).requires_grad_(True)
    fa = FrameAveraged(mlp(n_in=12, n_out=12), group="E(3)", target="point")
    assert torch.autograd.gradcheck(lambda z: fa(z).square().sum(dim=1), (x,), eps=1e-6,
                                    atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("group", ["O(3)", "E(3)", "S_n x E(3)"])
def test_tie_band_gradients_are_finite_at_rank_deficient_clouds(group):
    """A water molecule (planar) and a collinear cloud: a frame step finds no vector,
    its residual is exactly 0, and the band's bounds took sqrt of it in an unused
    branch of `where`, whose infinite derivative made every input gradient NaN."""
    if group.startswith("S_n"):
        pytest.importorskip("pynauty")
    water = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    line = np.outer([0.2, -1.0, 0.7], [0.3, -1.2, 0.8])
    for cloud in (water, line):
        fa = FrameAveraged(mlp(n_in=9), group=group, tie_band=0.3)
        x = torch.from_numpy(cloud.reshape(1, 9)).requires_grad_(True)
        (grad,) = torch.autograd.grad(fa(x).sum(), x)
        assert torch.isfinite(grad).all() and grad.abs().max() > 0


def test_pca_frames_gradients_are_finite_where_eigenvalues_repeat_and_exact_elsewhere():
    """PCA frames of a linear molecule and a square: repeated covariance eigenvalues,
    whose eigenvectors' derivative is infinite (torch's eigh gave NaN forces, which
    poison a training batch); generic clouds keep the exact gradient."""
    co2 = np.array([[0.0, 0.0, -1.16], [0.0, 0.0, 0.0], [0.0, 0.0, 1.16], [0.0, 0.0, 2.0]])
    square = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1.0, 0, 0], [0, -1.0, 0]])
    fa = FrameAveraged(mlp(n_in=12), group="E(3)", frame="pca")
    x = torch.from_numpy(np.stack([co2, square]).reshape(2, 12)).requires_grad_(True)
    (grad,) = torch.autograd.grad(fa(x).sum(), x)
    assert torch.isfinite(grad).all()
    generic = torch.from_numpy(np.random.default_rng(1).normal(size=(3, 12)))
    assert torch.autograd.gradcheck(fa, (generic.requires_grad_(True),), eps=1e-6,
                                    atol=1e-6, rtol=1e-4)


# ------------------------------------------------------------ skorch, frames inside
def _to_float32(X):
    return np.asarray(X, dtype=np.float32)


def _net(**kwargs):
    params = dict(module__module=MLP, module__group="E(3)", module__fields=FIELDS,
                  max_epochs=3, lr=0.05, train_split=None, device="cpu", verbose=0,
                  batch_size=32)
    params.update(kwargs)
    return skorch.NeuralNetRegressor(FrameAveraged, **params)


def test_skorch_regressor_with_frame_averaged_module_in_a_pipeline():
    X = data(96, dtype=np.float32)
    y = np.linalg.norm(X[:, :12].reshape(-1, 4, 3), axis=2).sum(1, keepdims=True)
    pipe = make_pipeline(FunctionTransformer(_to_float32), _net(module__module__hidden=8))
    pipe.fit(X.astype(np.float64), y)
    net = pipe[-1]
    assert isinstance(net.module_, FrameAveraged)
    assert net.module_.module.net[0].out_features == 8
    pred = pipe.predict(X)
    assert pred.shape == (96, 1) and pred.dtype == np.float32
    # float64 in, float32 inside the net: float32 rounding
    assert_equivariant(pipe, "E(3)", X.astype(np.float64), fields=FIELDS, random_state=0,
                       rtol=1e-5)
    assert clone(pipe).get_params()["neuralnetregressor__module__group"] == "E(3)"


def test_grid_search_over_module_group_including_none():
    X = data(64, dtype=np.float32)
    y = np.linalg.norm(X[:, :12].reshape(-1, 4, 3), axis=2).sum(1, keepdims=True)
    search = GridSearchCV(_net(max_epochs=2), {"module__group": [None, "O(3)", "E(3)"]},
                          cv=2, scoring="neg_mean_squared_error").fit(X, y)
    assert len(search.cv_results_["params"]) == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_params_["module__group"] in (None, "O(3)", "E(3)")
    net = _net().set_params(module__group="SE(3)").fit(X, y)
    assert net.module_.group_.name == "SE(3)"


def test_skorch_classifier_with_frame_averaged_module_is_invariant():
    X = data(80, dtype=np.float32)
    y = (np.linalg.norm(X[:, :3], axis=1) > 1.5).astype(np.int64)
    net = skorch.NeuralNetClassifier(
        FrameAveraged, module__module=MLP, module__module__n_out=2, module__group="O(3)",
        module__fields=FIELDS, criterion=nn.CrossEntropyLoss, max_epochs=2,
        train_split=None, verbose=0).fit(X, y)
    proba = net.predict_proba(X)
    assert proba.shape == (80, 2) and np.allclose(proba.sum(1), 1, atol=1e-6)
    assert_equivariant(net.predict_proba, "O(3)", X, fields=FIELDS, random_state=1,
                       rtol=1e-5)


# ----------------------------------------------------------- skorch, frames outside
def _inner_net(n_out=1, cls=None, **kwargs):
    cls = cls or skorch.NeuralNetRegressor
    return cls(MLP, module__n_out=n_out, max_epochs=2, lr=0.05, train_split=None,
               device="cpu", verbose=0, **kwargs)


def test_skorch_net_inside_frame_averaging_regressor_with_1d_y():
    X = data(96)                                   # float64, as sklearn users have it
    y = np.linalg.norm(X[:, :12].reshape(-1, 4, 3), axis=2).sum(1)
    reg = FrameAveragingRegressor(_inner_net(), group="E(3)", fields=FIELDS).fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == (96,) and pred.dtype == np.float64 and np.isfinite(pred).all()
    assert reg.score(X, y) > -1e3
    assert_equivariant(reg, "E(3)", X, random_state=2, rtol=1e-5)


def test_skorch_net_inside_frame_averaging_regressor_with_point_target():
    X = data(96)
    y = X[:, :12] + 0.1 * X[:, 12:24]              # moves like the positions
    reg = FrameAveragingRegressor(_inner_net(n_out=12), group="E(3)", fields=FIELDS,
                                  target="point").fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == (96, 12) and pred.dtype == np.float64
    assert_equivariant(reg, "E(3)", X, random_state=3, rtol=1e-5)


def test_skorch_net_inside_frame_averaging_regressor_grid_search():
    X = data(64)
    y = np.linalg.norm(X[:, :12].reshape(-1, 4, 3), axis=2).sum(1)
    reg = FrameAveragingRegressor(_inner_net(), fields=FIELDS)
    search = GridSearchCV(reg, {"group": [None, "E(3)"]}, cv=2).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_skorch_classifier_inside_frame_averaging_classifier():
    X = data(80)
    y = np.where(np.linalg.norm(X[:, :3], axis=1) > 1.5, "far", "near")
    clf = FrameAveragingClassifier(
        _inner_net(n_out=2, cls=skorch.NeuralNetClassifier, criterion=nn.CrossEntropyLoss),
        group="O(3)", fields=FIELDS).fit(X, y)
    assert set(clf.predict(X)) <= {"far", "near"}
    assert clf.predict_proba(X).dtype == np.float64
    assert_equivariant(clf.predict_proba, "O(3)", X, fields=FIELDS, random_state=4,
                       rtol=1e-5)


def test_skorch_nbody_example_runs_in_smoke_mode():
    out = run_script("examples/skorch_nbody.py")
    rows = {line[:24].strip(): line.split() for line in out.splitlines()}
    assert float(rows["MLP + E(3) frames"][-2]) < 1e-5    # float32 rounding
    assert float(rows["MLP"][-2]) > 1e-2


# ---------------------------------------------------------------- devices, dtypes
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("group", ["E(3)", "S_n x E(3)"])
def test_tensors_stay_on_their_device_and_keep_their_dtype(device, dtype, group):
    X = torch.from_numpy(data(256)).to(device, dtype)
    module = mlp(n_out=12, dtype=dtype)
    fa = FrameAveraged(module, group=group, fields=FIELDS, target="point").to(device)
    Xc, frame = fa.canonicalize(X)
    assert Xc.device == X.device and Xc.dtype == dtype
    assert frame.H.device == X.device and frame.H.dtype == torch.float64
    out = fa(X)
    assert out.device == X.device and out.dtype == dtype
    if device != "cpu":   # the same numbers as on the CPU
        cpu = FrameAveraged(mlp(n_out=12, dtype=dtype), group=group, fields=FIELDS,
                            target="point")
        torch.testing.assert_close(out.cpu(), cpu(X.cpu()), rtol=0,
                                   atol=1e-4 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("group, frame", [("E(3)", "minimal"), ("E(3)", "pca"),
                                          ("S_n x E(3)", "minimal"), ("SO(1,3)", "minimal"),
                                          ("graph", "minimal")])
def test_frames_computed_once_train_like_forward(group, frame, device):
    """canonicalize once, then from_canonical on mini-batches: forward's numbers, and
    gradients that reach the backbone's weights."""
    if group == "graph":
        pytest.importorskip("pynauty")
    X, fields = _cloud_for(group)
    target = "invariant" if group == "graph" else "point"
    n_out = 1 if target == "invariant" else X.shape[1] - 6
    fa = FrameAveraged(mlp(n_in=X.shape[1], n_out=n_out), group=group, fields=fields,
                       target=target, frame=frame).to(device)
    Xt = torch.from_numpy(X).to(device)
    with torch.no_grad():
        Xc, frame_ = fa.canonicalize(Xt)
    for idx in (torch.randperm(len(X), device=device)[:20], slice(5, 30),
                np.arange(len(X)) % 3 == 0):
        out = fa.from_canonical(Xc[idx], frame_[idx])
        with torch.no_grad():
            expected = fa(Xt[idx])
        # CUDA's batched eigensolver (PCA frames) and GEMMs may round differently for
        # different batch sizes (test_cuda_gives_the_cpu_numbers_for_every_group
        # allows 1e-10 between devices)
        atol = 1e-12 if device == "cpu" else 1e-9 * max(1.0, expected.abs().max())
        torch.testing.assert_close(out.detach(), expected, rtol=0, atol=atol)
    out.pow(2).sum().backward()
    # every weight gets a gradient; the output layer's bias may get none: averaged over
    # PCA frames' sign flips, a constant output maps back to zero (on CUDA exactly 0)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fa.parameters())
    assert all(p.grad.abs().sum() > 0 for name, p in fa.named_parameters()
               if name.endswith("weight"))


def test_from_canonical_needs_matching_samples():
    fa = FrameAveraged(mlp(), group="E(3)", fields=FIELDS, target="point")
    Xc, frame = fa.canonicalize(torch.from_numpy(data(16)))
    with pytest.raises(ValueError, match=r"Xc\[idx\], frame\[idx\]"):
        fa.from_canonical(Xc[:8], frame)
    with pytest.raises(ValueError, match="shape"):
        fa.from_canonical(Xc[:, 0], frame)
    with pytest.raises(ValueError, match="group=None"):
        FrameAveraged(mlp(), group=None).from_canonical(Xc, frame)


def _cloud_for(group, n=6, n_samples=64, seed=21):
    """Points and charges of width 4 for U/SU/Lorentz groups, 3 otherwise; mostly
    timelike rows for the Lorentz groups; adjacency matrices for graphs."""
    rng = np.random.default_rng(seed)
    if group == "graph":
        A = np.triu((rng.random((n_samples, n, n)) < 0.4).astype(float), 1)
        return (A + A.transpose(0, 2, 1)).reshape(n_samples, n * n), {"A": "edge"}
    width = 4 if group.startswith(("U", "SU")) or "(1," in group else 3
    X = rng.normal(size=(n_samples, n * width + n))
    if "(1," in group:
        X[:, 0:n * width:width] = np.abs(X[:, 0:n * width:width]) + 3.0
    return X, {"x": "point", "q": "scalar"}


@CUDA
@pytest.mark.filterwarnings("ignore::mfa_sklearn.exceptions.FrameDegeneracyWarning")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("group, frame", [
    ("O(3)", "minimal"), ("SO(3)", "minimal"), ("E(3)", "minimal"), ("SE(3)", "minimal"),
    ("E(3)", "pca"), ("U(2)", "minimal"), ("SU(2)", "minimal"), ("O(1,3)", "minimal"),
    ("SO(1,3)", "minimal"), ("GL(3)", "minimal"), ("SL(3)", "minimal"),
    ("Aff(3)", "minimal"), ("S_n x O(3)", "minimal"), ("S_n x E(3)", "minimal"),
    ("S_n x SO(1,3)", "minimal"), ("graph", "minimal")])
def test_cuda_gives_the_cpu_numbers_for_every_group(group, frame, dtype):
    if group == "graph":
        pytest.importorskip("pynauty")
    X, fields = _cloud_for(group)
    target = "invariant" if group == "graph" else "point"
    n_out = 1 if target == "invariant" else X.shape[1] - 6
    precision = "float32" if dtype == torch.float32 else "float64"
    fa = FrameAveraged(mlp(n_in=X.shape[1], n_out=n_out, dtype=dtype), group=group,
                       fields=fields, target=target, frame=frame, frame_dtype=precision)
    Xt = torch.from_numpy(X).to(dtype)
    with torch.no_grad():
        expected = fa(Xt)
        got = fa.cuda()(Xt.cuda())
    assert got.device.type == "cuda" and got.dtype == dtype
    # float32 frames are decided the same way on both devices but rounded differently
    atol = (1e-10 if dtype == torch.float64 else 1e-3) * max(1.0, expected.abs().max())
    torch.testing.assert_close(got.cpu(), expected, rtol=0, atol=atol)
    assert_equivariant(lambda Z: fa(torch.from_numpy(Z).to("cuda", dtype))
                       .detach().cpu().double().numpy(), group, X, fields=fields,
                       target=target, random_state=22,
                       rtol=1e-9 if dtype == torch.float64 else 1e-3)


@CUDA
def test_cuda_forces_and_skorch():
    x = torch.from_numpy(data(64)[:, :15]).cuda()
    energy = FrameAveraged(mlp(n_in=15), group="E(3)").cuda()
    assert _forces(energy, x).device == x.device
    X = data(64, dtype=np.float32)
    y = np.linalg.norm(X[:, :12].reshape(-1, 4, 3), axis=2).sum(1, keepdims=True)
    net = _net(device="cuda").fit(X, y)
    assert net.predict(X).shape == (64, 1)


# ---------------------------------------------------------------- graphs on torch
@pytest.mark.parametrize("target, n_out", [("invariant", 1), ("scalar", 8), ("edge", 64)])
def test_graph_module_is_exactly_symmetric_and_matches_numpy(target, n_out):
    """Adjacency matrices (random, plus cycles that need nauty when it is installed)."""
    pytest.importorskip("pynauty")       # random graphs of 8 vertices often have ties
    rng = np.random.default_rng(15)
    A = (rng.random((24, 8, 8)) < 0.4).astype(float)
    A = np.triu(A, 1) + np.triu(A, 1).transpose(0, 2, 1)
    i = np.arange(8)
    A[:4] = 0.0
    A[:4, i, (i + 1) % 8] = A[:4, (i + 1) % 8, i] = 1.0
    X = A.reshape(24, 64)
    module = mlp(n_in=64, n_out=n_out)
    fields = {"A": "edge"}
    fa = FrameAveraged(module, group="graph", fields=fields, target=target)
    assert_equivariant(as_function(fa), "graph", X, fields=fields, target=target,
                       random_state=16, rtol=0)
    control = check_equivariance(as_function(module), "graph", X, fields=fields,
                                 target=target, random_state=16)
    assert control["max_error"] > 1e-3
    reg = FrameAveragingRegressor(TorchFunction(module), group="graph", fields=fields,
                                  target=target).fit(X, np.zeros((24, n_out)))
    with torch.no_grad():
        got = fa(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(got.reshape(24, -1), reg.predict(X).reshape(24, -1),
                               rtol=0, atol=1e-13)


# ------------------------------------------------------------------ float32 frames
# float32's rank tolerance (sqrt(eps32)) counts more residuals of these random
# 4-vectors as lightlike, which the Lorentz frames report
@pytest.mark.filterwarnings("ignore::mfa_sklearn.exceptions.FrameDegeneracyWarning")
@pytest.mark.parametrize("group, target, frame, bound", [
    ("E(3)", "point", "minimal", 1e-5), ("SO(3)", "vector", "pca", 1e-5),
    # S_n x E(3): the default row rule's frames may be up to 10x less well conditioned
    # than pivoting's (a chosen residual down to a tenth of the largest)
    ("S_n x E(3)", "vector", "minimal", 3e-5), ("U(2)", "invariant", "minimal", 1e-5),
    ("SO(1,3)", "vector", "minimal", 1e-4), ("Aff(3)", "point", "minimal", 1e-4)])
def test_float32_frames_are_float32_and_equivariant_to_float32_rounding(group, target,
                                                                         frame, bound):
    width = {"U(2)": 4, "SO(1,3)": 4}.get(group, 3)
    fields = {"x": "point", "q": "scalar"}
    X = np.random.default_rng(17).normal(size=(96, 5 * width + 5)).astype(np.float32)
    if "(1," in group:
        X[:, 0:5 * width:width] = np.abs(X[:, 0:5 * width:width]) + 3.0
    n_out = 1 if target == "invariant" else 5 * width
    module = mlp(n_in=5 * width + 5, n_out=n_out, dtype=torch.float32)
    fa = FrameAveraged(module, group=group, fields=fields, target=target, frame=frame,
                       frame_dtype="float32")
    _, frame_ = fa.canonicalize(torch.from_numpy(X))
    assert frame_.H.dtype in (torch.float32, torch.complex64)
    assert_equivariant(as_function(fa), group, X, fields=fields, target=target,
                       random_state=18, rtol=bound)
    control = check_equivariance(as_function(module), group, X, fields=fields,
                                 target=target, random_state=18)["max_error"]
    assert control >= 1e-2, control
    precise = FrameAveraged(module, group=group, fields=fields, target=target, frame=frame)
    with torch.no_grad():
        difference = (fa(torch.from_numpy(X)) - precise(torch.from_numpy(X))).abs().max()
    assert difference <= 1e3 * bound, difference


@pytest.mark.parametrize("group", ["S_n x O(3)", "S_n x E(3)"])
def test_float32_frames_of_float64_collinear_rows(group):
    # float64 rows, float32 frames: the rank tolerance is float32's, so the float32
    # rounding of collinear rows is no frame vector (it was rank 3 with inf in H)
    rng = np.random.default_rng(21)
    X = rng.normal(size=(48, 6, 1)) * rng.normal(size=(48, 1, 3))    # lines through 0
    if "E" in group:
        X = X + rng.normal(size=(48, 1, 3))
    X = X.reshape(48, -1)
    fa = FrameAveraged(mlp(n_in=18, n_out=18), group=group, target="point",
                       frame_dtype="float32")
    _, frame_ = fa.canonicalize(torch.from_numpy(X))
    assert np.all(np.asarray(frame_.rank) == 1)
    assert_equivariant(as_function(fa), group, X, target="point", random_state=22,
                       rtol=1e-5)


@pytest.mark.parametrize("group", ["S_n x O(3)", "S_n x E(3)"])
def test_float32_frames_of_float64_symmetric_clouds(group):
    # regular hexagons: their ties, rounded to float32 in the frames, are ties at
    # float32's tolerance (float64's split them, errors of 4e-3)
    rng = np.random.default_rng(23)
    angle = 2 * np.pi * np.arange(6) / 6
    hexagon = np.stack([np.cos(angle), np.sin(angle), np.zeros(6)], axis=-1)
    X = hexagon @ np.linalg.qr(rng.normal(size=(32, 3, 3)))[0]
    if "E" in group:
        X = X + rng.normal(size=(32, 1, 3))
    fa = FrameAveraged(mlp(n_in=18, n_out=18), group=group, target="point",
                       frame_dtype="float32")
    assert_equivariant(as_function(fa), group, X.reshape(32, -1), target="point",
                       random_state=24, rtol=1e-5)


def test_forces_with_float32_frames_are_equivariant():
    x = np.random.default_rng(19).normal(size=(64, 15)).astype(np.float32)
    energy = FrameAveraged(mlp(n_in=15, dtype=torch.float32), group="E(3)",
                           frame_dtype="float32")
    g = random_group_element("E(3)", 64, random_state=20)
    F = _forces(energy, torch.from_numpy(x)).numpy()
    F_moved = _forces(energy, torch.from_numpy(
        apply_group("E(3)", g, x).astype(np.float32))).numpy()
    expected = apply_group("E(3)", g, F, fields="vector")
    assert np.abs(F_moved - expected).max() <= 1e-4 * np.abs(F).max()


@pytest.mark.parametrize("group", ["E(3)", "S_n x E(3)", "O(1,3)"])
@pytest.mark.parametrize("target", ["invariant", "point"])
def test_empty_batch_gives_an_empty_output(group, target):
    width = 4 if group == "O(1,3)" else 3
    fields, out = ({"p": "vector"}, {"p": "vector"}) if width == 4 else (None, "point")
    n_out = 1 if target == "invariant" else N_ROWS * width
    fa = FrameAveraged(mlp(n_in=N_ROWS * width, n_out=n_out), group=group, fields=fields,
                       target="invariant" if target == "invariant" else out)
    got = fa(torch.zeros(0, N_ROWS * width, dtype=torch.float64))
    assert got.shape == (0, n_out)


def test_output_on_other_rows_under_a_row_permuting_group():
    # one point per sample (a centroid-like output) from an MLP on all rows: S_n leaves
    # it alone, E(3) moves it; exact, where the bare MLP is not
    net = torch.nn.Sequential(torch.nn.Linear(15, 32), torch.nn.Tanh(),
                              torch.nn.Linear(32, 3)).double()
    fa = FrameAveraged(net, group="S_n x E(3)", target="point")
    X = np.random.default_rng(4).normal(size=(30, 15))

    def call(module):
        return lambda A: module(torch.as_tensor(A)).detach().numpy()

    assert call(fa)(X).shape == (30, 3)
    assert_equivariant(call(fa), "S_n x E(3)", X, target="point", random_state=2,
                       rtol=1e-12)
    assert check_equivariance(call(net), "S_n x E(3)", X, target="point",
                              random_state=2)["max_error"] > CONTROL


@pytest.mark.parametrize("three_d", [False, True])
def test_empty_batch_gets_the_presence_columns_too(three_d):
    # the backbone expects them: C + n inputs (2-D X), W + 1 per row (3-D X)
    n_in = 4 if three_d else N_ROWS * 3 + N_ROWS
    fa = FrameAveraged(torch.nn.Linear(n_in, 1).double(), group="E(3)",
                       presence_column=True)
    shape = (N_ROWS, 3) if three_d else (N_ROWS * 3,)
    full = fa(torch.randn((4,) + shape, dtype=torch.float64))
    empty = fa(torch.zeros((0,) + shape, dtype=torch.float64))
    assert empty.shape == (0,) + full.shape[1:]


@pytest.mark.parametrize("group, fields", [("graph", {"A": "edge"}),
                                           ("S_n", {"x": ("point", 2), "A": "edge"})])
def test_empty_batch_of_graphs_gives_an_empty_output(group, fields):
    width = sum(N_ROWS * (N_ROWS if kind == "edge" else kind[1])
                for kind in fields.values())
    fa = FrameAveraged(mlp(n_in=width, n_out=1), group=group, fields=fields)
    assert fa(torch.zeros(0, width, dtype=torch.float64)).shape == (0, 1)
