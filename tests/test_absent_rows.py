"""Systems of different sizes: absent rows (all-NaN rows) through the estimators, the
canonicalizer, check_equivariance and the torch module, for every non-permutation
group family.

A deliberately non-equivariant inner estimator (a fixed-seed tanh MLP on the flattened
canonical input, which mixes rows and reads the presence columns) predicts per-row
outputs of mixed-size batches, float64 and float32, generic and symmetric samples.
"""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from mfa_sklearn import (
    FrameAveragingClassifier,
    FrameAveragingRegressor,
    MinimalFrameCanonicalizer,
    _engine,
    assert_equivariant,
)
from mfa_sklearn.exceptions import AbsentRowsError, NonFiniteInputError
from mfa_sklearn.groups import LorentzGroup, get_group
from mfa_sklearn.layout import Layout
from tests._helpers import HomogeneousMLP

N = 7   # rows per padded sample
GROUPS = ["O(3)", "SO(3)", "E(3)", "SE(3)", "U(2)", "SU(2)", "O(1,3)", "SO(1,3)",
          LorentzGroup(4, anchor="cumsum"), "GL(3)", "SL(3)", "Aff(3)"]
LINEAR = ("GL", "SL", "Aff")


def _ids(group):
    return repr(get_group(group))


class FixedMLP(RegressorMixin, BaseEstimator):
    """A fixed-seed MLP of the canonical inputs: fit only learns the output width."""

    def fit(self, X, y):
        self.mlp_ = HomogeneousMLP(X.shape[1], y.reshape(len(y), -1).shape[1], seed=3)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        out = self.mlp_(np.asarray(X))
        return out[:, 0] if out.shape[1] == 1 else out


def _rows(G, rng, n, symmetric=False):
    """n rows of one sample in the group's real layout (complex: [Re | Im])."""
    d = G.d
    if symmetric:                       # a square (and its centre): ties and symmetry
        x = np.zeros((n, d))
        corners = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.0, 0.0]])
        x[:, :2] = corners[np.arange(n) % 5] * 2.0
        x += 0.5
    else:
        x = rng.normal(size=(n, d)) + 0.5
    if G.metric is not None:            # future-directed momenta
        x[:, 0] = np.linalg.norm(x[:, 1:], axis=1) + 1.0 + rng.random(n)
    if G.is_complex:
        x = np.concatenate([x, rng.normal(size=(n, d))], axis=1)
    return x


def _min_rows(G):
    return G.d + 2 if G.name.startswith(LINEAR) else 1   # well conditioned for float32


def _batch(G, rng, B, dtype=np.float64, symmetric=False, sizes=None):
    """Padded batch (B, N, w) with NaN rows at random places, its present rows, and
    the unpadded samples."""
    w = 2 * G.d if G.is_complex else G.d
    if sizes is None:
        sizes = rng.integers(_min_rows(G), N + 1, B)
    X = np.full((B, N, w), np.nan)
    present = np.zeros((B, N), dtype=bool)
    samples = []
    for b, n in enumerate(sizes):
        x = _rows(G, rng, n, symmetric)
        where = np.sort(rng.choice(N, n, replace=False))
        X[b, where], present[b, where] = x, True
        samples.append(x.astype(dtype))
    return X.astype(dtype), present, samples


def _skip_symmetric(G, symmetric):
    if symmetric and (G.metric is not None or G.name.startswith(LINEAR)):
        pytest.skip("the square is not a sample of this group (lightlike / rank 2)")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("group", GROUPS, ids=_ids)
def test_canonical_form_is_that_of_the_unpadded_sample(group, symmetric, dtype):
    """Present rows: the canonical rows of the sample without its absent rows (bit for
    bit, linear groups to rounding), wherever the absent rows sit; absent rows: zeros;
    the presence column: 1 on present rows, 0 on absent ones."""
    G = get_group(group)
    _skip_symmetric(G, symmetric)
    rng = np.random.default_rng(11)
    X, present, samples = _batch(G, rng, 24, dtype, symmetric)
    canon = MinimalFrameCanonicalizer(group=G).fit(X)
    Xc = canon.transform(X)
    assert Xc.dtype == dtype and Xc.shape == X.shape[:2] + (X.shape[2] + 1,)
    assert np.all(np.isfinite(Xc))
    np.testing.assert_array_equal(Xc[..., -1], present.astype(dtype))
    np.testing.assert_array_equal(Xc[~present], 0.0)
    # the same sample with its absent rows elsewhere: the same canonical rows
    moved = np.full_like(X, np.nan)
    moved_present = np.zeros_like(present)
    for b, x in enumerate(samples):
        where = np.sort(rng.choice(N, len(x), replace=False))
        moved[b, where], moved_present[b, where] = x, True
    Xm = canon.transform(moved)
    np.testing.assert_array_equal(Xm[..., -1], moved_present.astype(dtype))
    compare = (np.testing.assert_array_equal if not G.name.startswith(LINEAR) else
               lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 if
                                                       dtype == np.float64 else 1e-4))
    for b, x in enumerate(samples):
        compare(Xm[b][moved_present[b]], Xc[b][present[b]])
        # ... and those of the unpadded sample, canonicalized alone
        alone = MinimalFrameCanonicalizer(group=G).fit(x[None]).transform(x[None])[0]
        compare(Xc[b][present[b]][:, :-1], alone)


def test_two_d_layout_presence_columns_and_fields():
    """2-D X of named fields: each field's block keeps its place, absent rows are zeros
    in every field (their velocities and charges too), the n presence columns come
    last; NaN or any value in the other fields of absent rows is ignored."""
    rng = np.random.default_rng(5)
    fields = {"pos": "point", "vel": "vector", "q": "scalar"}
    B, n = 30, 5
    pos, vel, q = rng.normal(size=(B, n, 3)), rng.normal(size=(B, n, 3)), rng.normal(size=(B, n))
    present = rng.random((B, n)) < 0.7
    pos[~present] = np.nan
    vel[~present] = 7.0 * np.where(rng.random(vel[~present].shape) < 0.5, np.nan, 1.0)
    X = np.concatenate([pos.reshape(B, -1), vel.reshape(B, -1), q], axis=1)
    canon = MinimalFrameCanonicalizer(group="E(3)", fields=fields).fit(X)
    Xc = canon.transform(X)
    assert Xc.shape == (B, 8 * n) and len(canon.get_feature_names_out()) == 8 * n
    np.testing.assert_array_equal(Xc[:, 7 * n:], present)
    for block, width in [(slice(0, 3 * n), 3), (slice(3 * n, 6 * n), 3),
                         (slice(6 * n, 7 * n), 1)]:
        np.testing.assert_array_equal(Xc[:, block].reshape(B, n, width)[~present], 0.0)
    # the velocities' filler does not matter
    vel2 = np.where(present[..., None], vel, -3.0)
    X2 = np.concatenate([pos.reshape(B, -1), vel2.reshape(B, -1), q], axis=1)
    np.testing.assert_array_equal(canon.transform(X2), Xc)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("group", GROUPS, ids=_ids)
def test_per_row_predictions_and_equivariance(group, symmetric, dtype):
    G = get_group(group)
    _skip_symmetric(G, symmetric)
    rng = np.random.default_rng(2)
    X, present, _ = _batch(G, rng, 40, dtype, symmetric)
    X[5] = np.nan                                   # a sample without present rows
    present[5] = False
    target = "vector" if G.metric is not None else "point"
    layout = Layout.infer(target, G, (N * X.shape[2],), what="target")
    y = layout.join({"y": np.where(present[..., None], rng.normal(size=X.shape), np.nan)})
    reg = FrameAveragingRegressor(FixedMLP(), group=G, target=target).fit(X, y.astype(dtype))
    pred = reg.predict(X)
    assert pred.dtype == dtype and pred.shape == y.shape
    rows = np.isnan(layout.split(pred)["y"])
    np.testing.assert_array_equal(rows.all(axis=-1), ~present)      # exactly absent rows
    assert not rows[present].any()
    assert_equivariant(reg, G, X, random_state=0)
    # the plain MLP is far from equivariant: the check can fail
    flat = X.reshape(len(X), -1)
    plain = FixedMLP().fit(np.nan_to_num(flat), np.nan_to_num(y))

    def bare(Z):
        out = plain.predict(np.nan_to_num(Z.reshape(len(Z), -1)))
        return np.where(np.isnan(y) | ~np.isnan(out), out, np.nan)

    with pytest.raises(AssertionError):
        assert_equivariant(bare, G, X, target=target, random_state=0)
    # invariant targets: NaN for the empty sample only
    inv = FrameAveragingRegressor(FixedMLP(), group=G).fit(X, np.ones(len(X)))
    out = inv.predict(X)
    assert np.isnan(out[5]) and np.all(np.isfinite(np.delete(out, 5)))
    assert_equivariant(inv, G, X, random_state=1)


def test_nan_targets_at_absent_rows_are_zeros_for_the_inner_estimator():
    rng = np.random.default_rng(3)
    G = get_group("E(3)")
    X, present, _ = _batch(G, rng, 20)
    y = rng.normal(size=X.shape)
    with_nan = np.where(present[..., None], y, np.nan).reshape(len(X), -1)
    y = y.reshape(len(X), -1)
    a = FrameAveragingRegressor(FixedMLP(), group="E(3)", target="point").fit(X, with_nan)
    b = FrameAveragingRegressor(FixedMLP(), group="E(3)", target="point").fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))

    class Recorder(FixedMLP):
        def fit(self, X, y):
            Recorder.seen = (X.copy(), y.copy())
            return super().fit(X, y)

    FrameAveragingRegressor(Recorder(), group="E(3)", target="point").fit(X, with_nan)
    Xi, yi = Recorder.seen
    assert np.all(np.isfinite(Xi)) and np.all(np.isfinite(yi))
    np.testing.assert_array_equal(yi.reshape(X.shape)[~present], 0.0)


def test_errors_name_sample_and_row():
    rng = np.random.default_rng(4)
    X, present, _ = _batch(get_group("E(3)"), rng, 10, sizes=[5] * 10)
    reg = FrameAveragingRegressor(FixedMLP(), group="E(3)", target="point")
    b, r = 3, int(np.flatnonzero(present[3])[1])
    partly = X.copy()
    partly[b, r, 1] = np.nan
    with pytest.raises(NonFiniteInputError, match=rf"sample {b}, row {r} is partly NaN"):
        reg.fit(partly, np.nan_to_num(X).reshape(10, -1))
    inf = X.copy()
    absent_row = int(np.flatnonzero(~present[6])[0])
    inf[6, absent_row, 0] = np.inf                 # inf is an error even in absent rows
    with pytest.raises(NonFiniteInputError, match=rf"sample 6, row {absent_row} holds inf"):
        reg.fit(inf, np.nan_to_num(X).reshape(10, -1))
    # NaN in another field of a present row
    fields = {"pos": "point", "vel": "vector"}
    XV = np.concatenate([X, np.zeros_like(X)], axis=2)
    XV[b, r, 4] = np.nan
    with pytest.raises(NonFiniteInputError, match=rf"field 'vel'.*sample {b}, row {r} is "
                                                  "NaN in a present row"):
        MinimalFrameCanonicalizer(group="E(3)", fields=fields).fit(XV)
    # NaN in y outside absent rows
    y = np.nan_to_num(X)
    y[2, int(np.flatnonzero(present[2])[0]), 0] = np.nan
    y = y.reshape(10, -1)
    with pytest.raises(NonFiniteInputError, match=r"y contains NaN.*first: \[2\]"):
        reg.fit(X, y)
    # fitted without absent rows, asked about padded data
    full = np.nan_to_num(X)
    fitted = FrameAveragingRegressor(FixedMLP(), group="E(3)", target="point").fit(
        full, full.reshape(10, -1))
    with pytest.raises(AbsentRowsError, match="Fit on padded data"):
        fitted.predict(X)
    with pytest.raises(AbsentRowsError, match="Fit on padded data"):
        MinimalFrameCanonicalizer(group="E(3)").fit(full).transform(X)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_errors_from_a_later_chunk(monkeypatch, n_jobs):
    """Chunks check their own values: NaN or inf far from the first chunk is still
    found, with the error naming its sample, on one worker and on two."""
    monkeypatch.setattr(_engine, "_CHUNK_SAMPLES", 64)
    X = np.random.default_rng(8).normal(size=(1000, 15))
    canonicalizer = MinimalFrameCanonicalizer(group="E(3)", n_jobs=n_jobs).fit(X)
    absent, inf = X.copy(), X.copy()
    absent[900, 6:9] = np.nan
    inf[700, 4] = np.inf
    with pytest.raises(AbsentRowsError, match=r"first: \[900\].*Fit on padded data"):
        canonicalizer.transform(absent)
    with pytest.raises(NonFiniteInputError, match="sample 700, row 1 holds inf"):
        canonicalizer.transform(inf)
    np.testing.assert_array_equal(canonicalizer.transform(X),
                                  canonicalizer.set_params(n_jobs=1).transform(X))


def test_classifier_with_absent_rows():
    rng = np.random.default_rng(6)
    X, present, _ = _batch(get_group("SE(3)"), rng, 60)
    labels = present.sum(axis=1) > 3
    clf = FrameAveragingClassifier(group="SE(3)").fit(X, labels)
    assert_equivariant(clf, "SE(3)", X, random_state=0)
    assert_equivariant(clf.predict_proba, "SE(3)", X, random_state=0)
    X[0] = np.nan
    assert np.all(np.isnan(clf.predict_proba(X)[0]))
    with pytest.raises(AbsentRowsError, match=r"first: \[0\].*no present rows"):
        clf.predict(X)


def test_data_without_absent_rows_keeps_its_format():
    """No presence column unless the fitted data had absent rows."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(10, 12))
    canon = MinimalFrameCanonicalizer(group="E(3)").fit(X)
    assert not canon.absent_rows_ and canon.transform(X).shape == (10, 12)
    padded = MinimalFrameCanonicalizer(group="E(3)").fit(np.vstack([X, np.full((1, 12), np.nan)]))
    assert padded.absent_rows_
    out = padded.transform(X)
    assert out.shape == (10, 16)
    np.testing.assert_array_equal(out[:, :12], canon.transform(X))
    np.testing.assert_array_equal(out[:, 12:], 1.0)


# ----------------------------------------------------------------------------- torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("group", GROUPS, ids=_ids)
def test_torch_mask_and_nan_rows_agree_and_gradients_vanish_at_absent_rows(group, dtype):
    torch = pytest.importorskip("torch")
    from mfa_sklearn.torch import FrameAveraged

    G = get_group(group)
    rng = np.random.default_rng(9)
    X, present, _ = _batch(G, rng, 12, getattr(np, dtype))
    X[4], present[4] = np.nan, False
    w = X.shape[2]
    torch.manual_seed(0)
    tdtype = getattr(torch, dtype)
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(N * (w + 1), 32),
                              torch.nn.Tanh(), torch.nn.Linear(32, N * w),
                              torch.nn.Unflatten(1, (N, w))).to(tdtype)
    target = "vector" if G.metric is not None else "point"
    model = FrameAveraged(mlp, group=G, target=target, presence_column=True)
    mask = torch.as_tensor(present)
    x_nan = torch.as_tensor(X).requires_grad_()
    filler = np.where(present[..., None], X, 5.0)     # any value
    x_mask = torch.as_tensor(filler).requires_grad_()
    out_nan, out_mask = model(x_nan), model(x_mask, mask=mask)
    expected_nan = torch.as_tensor(np.isnan(X))
    assert torch.equal(torch.isnan(out_nan), expected_nan)
    assert torch.equal(out_nan.isnan(), out_mask.isnan())
    torch.testing.assert_close(out_nan.nan_to_num(), out_mask.nan_to_num(), rtol=0, atol=0)
    for x, out in [(x_nan, out_nan), (x_mask, out_mask)]:
        out.nan_to_num().square().sum().backward()
        grad = x.grad.reshape(X.shape)
        assert torch.isfinite(grad).all()
        assert torch.all(grad[~mask] == 0)
        assert torch.any(grad[mask] != 0)
    # the numpy estimators' canonical inputs, without rounding
    Xc, _ = model.canonicalize(x_nan.detach())
    canon = MinimalFrameCanonicalizer(group=G, round_bits=None).fit(X)
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(Xc[:, 0].numpy(), canon.transform(X),
                               rtol=tol, atol=tol)


def test_torch_mask_is_checked():
    torch = pytest.importorskip("torch")
    from mfa_sklearn.torch import FrameAveraged

    model = FrameAveraged(torch.nn.Linear(12, 1).double(), group="E(3)")
    x = torch.zeros(2, 12, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_rows\) = \(2, 4\)"):
        model(x, mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="boolean"):
        model(x, mask=torch.ones(2, 4))
    x[1, :3] = float("nan")
    with pytest.raises(NonFiniteInputError, match="mask marks rows present"):
        model(x, mask=torch.ones(2, 4, dtype=torch.bool))


def test_readme_snippet_on_systems_of_different_sizes():
    """The README's padded-format snippet runs, and predicts NaN exactly on the absent
    rows."""
    import re
    from pathlib import Path

    from sklearn.neighbors import KNeighborsRegressor

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("### Systems of different sizes"):]
    block = re.findall(r"```python\n(.*?)\n```", section, re.S)[0]
    rng = np.random.default_rng(0)
    n_systems = 6
    y = np.full((n_systems, 24), np.nan)
    y[:, :15] = rng.normal(size=(n_systems, 15))
    namespace = {"np": np, "KNeighborsRegressor": KNeighborsRegressor,
                 "FrameAveragingRegressor": FrameAveragingRegressor,
                 "n_systems": n_systems, "positions_of_system_0": rng.normal(size=(5, 3)),
                 "y": y}
    exec(block, namespace)
    namespace["X"][1:, :5] = rng.normal(size=(n_systems - 1, 5, 3))
    reg = namespace["reg"].fit(namespace["X"], y)
    pred = reg.predict(namespace["X"])
    np.testing.assert_array_equal(np.isnan(pred), np.isnan(y))


def test_variable_size_example_runs_in_smoke_mode():
    from tests._helpers import run_script

    out = run_script("examples/variable_size.py")
    lines = out.splitlines()
    framed = [float(line.split()[-1]) for line in lines if "E(3) frames" in line]
    plain = [float(line.split()[-1]) for line in lines if "zeros + presence" in line]
    assert framed and framed[0] < 1e-9       # the equivariance error column
    assert plain and plain[0] > 1e-2


@pytest.mark.parametrize("group", ["S_n x E(3)", "S_n x O(3)"])
def test_permuting_groups_through_the_engine(group):
    """S_n x G: absent rows go last (no presence column), per-row outputs NaN exactly at
    absent rows, and assert_equivariant moves the absent rows with the permutation."""
    rng = np.random.default_rng(12)
    B, n = 50, 6
    X = rng.normal(size=(B, n, 7))
    X[..., 6] = rng.choice([-1.0, 1.0], (B, n))
    present = rng.random((B, n)) < 0.7
    present[:, 0] = True
    X[~present] = np.nan
    fields = {"pos": "point", "vel": "vector", "q": "scalar"}
    y = np.where(present[..., None], rng.normal(size=(B, n, 3)), np.nan).reshape(B, -1)
    Xc = MinimalFrameCanonicalizer(group=group, fields=fields).fit(X).transform(X)
    assert Xc.shape == X.shape and np.all(np.isfinite(Xc))
    counts = present.sum(axis=1)
    last = np.arange(n)[None, :] >= counts[:, None]           # absent rows last, zeros
    np.testing.assert_array_equal(Xc[last], 0.0)
    reg = FrameAveragingRegressor(FixedMLP(), group=group, fields=fields,
                                  target="vector").fit(X, y)
    np.testing.assert_array_equal(np.isnan(reg.predict(X)), np.isnan(y))
    assert_equivariant(reg, group, X, random_state=0)


def _padded_batches(rng, B):
    """Padded 3-D batches (B, 9, 3) with every share of absent rows (every sample the
    same count, or counts of 0 .. 9), one present row, and -0.0 coordinates."""
    x = rng.normal(size=(B, 9, 3))
    same = np.argsort(rng.random((B, 9)), axis=1) < 4          # 4 present rows each
    mixed = rng.random((B, 9)) < rng.uniform(0.0, 1.0, (B, 1))
    single = np.argsort(rng.random((B, 9)), axis=1) < 1         # one present row each
    signed = np.round(x)
    signed[signed == 0] = -0.0                                  # ties, zeros, -0.0
    for rows, present in ((x, same), (x, mixed), (x, single), (signed, mixed)):
        X = rows.copy()
        X[~present] = np.nan
        yield X


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("group", ["O(3)", "SO(3)", "E(3)", "SE(3)"])
def test_present_rows_alone_give_the_canonical_forms_of_filled_batches(group, dtype,
                                                                      monkeypatch):
    """Groups whose minimal frames list "minimal" in ``compact_methods`` canonicalize
    the present rows alone; bit for bit what filling the absent rows with zeros gives
    (several chunks, 2-D and 3-D layouts, a non-frame field, predictions mapped back)."""
    rng = np.random.default_rng(21)
    B = 9000                                                    # two chunks
    fields = {"p": "point", "v": "vector", "q": "scalar"}
    for X in _padded_batches(rng, B):
        X = X.astype(dtype)
        extra = rng.normal(size=(B, 9, 4)).astype(dtype)
        X2 = np.concatenate([X, extra], axis=2)                 # p, v, q side by side
        flat = np.concatenate([X2[..., :3].reshape(B, -1), X2[..., 3:6].reshape(B, -1),
                               X2[..., 6]], axis=1)
        y = np.nan_to_num(X).reshape(B, -1)

        def outputs():
            canonical = MinimalFrameCanonicalizer(group).fit(X)
            both = MinimalFrameCanonicalizer(group, fields=fields, frame_fields="p",
                                             round_bits=None)
            reg = FrameAveragingRegressor(FixedMLP(), group=group, target="point")
            return [canonical.transform(X), both.fit(X2).transform(X2),
                    both.fit(flat).transform(flat),
                    reg.fit(X.reshape(B, -1), y).predict(X.reshape(B, -1))]

        compacted = outputs()
        monkeypatch.setattr(_engine, "_COMPACT_SHARE", 0.0)     # fill the absent rows
        filled = outputs()
        monkeypatch.undo()
        for a, b in zip(compacted, filled):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("group", ["E(3)", "GL(3)"])
def test_process_workers_give_the_serial_canonical_forms(group):
    """n_jobs under a process backend (loky): chunks and present rows come back from the
    workers instead of being written in place."""
    from joblib import parallel_config

    rng = np.random.default_rng(22)
    X = rng.normal(size=(9000, 6, 3))
    X[:, 4:][rng.random((9000, 2)) < 0.5] = np.nan
    serial = MinimalFrameCanonicalizer(group).fit(X).transform(X)
    with parallel_config(backend="loky"):
        parallel = MinimalFrameCanonicalizer(group, n_jobs=2).fit(X).transform(X)
    np.testing.assert_array_equal(parallel, serial)


def test_score_of_padded_per_row_targets():
    # absent rows are NaN in y and in the predictions: each output column is scored on
    # the samples where it is present (r2_score raised on the NaN, cross-validation and
    # grid searches over the group scored NaN)
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.neighbors import KNeighborsRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8, 3))
    for i in range(120):
        X[i, rng.integers(3, 9):] = np.nan
    y = (2.0 * X).reshape(120, -1) + 0.1 * rng.normal(size=(120, 24))
    y[np.isnan(X.reshape(120, -1))] = np.nan
    reg = FrameAveragingRegressor(KNeighborsRegressor(), group="E(3)", target="point")
    reg.fit(X, y)
    pred = reg.predict(X)
    expected = np.mean([r2_score(y[~np.isnan(y[:, j]), j], pred[~np.isnan(y[:, j]), j])
                        for j in range(24)])
    assert reg.score(X, y) == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(cross_val_score(reg, X, y, cv=3)))
    search = GridSearchCV(reg, {"group": ["E(3)", "SE(3)"]}, cv=3).fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    # without absent rows, the score is sklearn's
    full = rng.normal(size=(60, 8, 3))
    target = (2.0 * full).reshape(60, -1)
    reg.fit(full, target)
    assert reg.score(full, target) == r2_score(target, reg.predict(full))


def test_edge_targets_are_nan_at_every_pair_with_an_absent_row():
    """Edge outputs (bond targets) of padded samples: NaN on the pairs with an absent
    row, exact elsewhere (predict raised a broadcasting error: the NaN mask was per
    row), through the estimator and the torch module alike."""
    pytest.importorskip("pynauty")
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    B, n = 20, 5
    pos = rng.normal(size=(B, n, 3))
    pos[:, -1] = np.nan
    bonds = np.triu(rng.integers(0, 2, size=(B, n, n)).astype(float), 1)
    bonds = bonds + np.swapaxes(bonds, 1, 2)
    X = np.concatenate([bonds.reshape(B, -1), pos.reshape(B, -1)], axis=1)
    pairs = np.zeros((B, n, n), dtype=bool)
    pairs[:, -1] = pairs[:, :, -1] = True
    y = np.where(pairs, np.nan, rng.normal(size=(B, n, n))).reshape(B, -1)
    fields = {"bond": "edge", "pos": "point"}
    model = FrameAveragingRegressor(DecisionTreeRegressor(random_state=0),
                                    group="S_n x E(3)", fields=fields,
                                    target={"e": "edge"}).fit(X, y)
    out = model.predict(X)
    np.testing.assert_array_equal(np.isnan(out), pairs.reshape(B, -1))
    assert_equivariant(model, "S_n x E(3)", X, random_state=1, rtol=1e-10)
    torch = pytest.importorskip("torch")
    from mfa_sklearn.torch import FrameAveraged

    torch.manual_seed(0)
    module = FrameAveraged(torch.nn.Linear(X.shape[1], n * n).double(), group="S_n x E(3)",
                           fields=fields, target={"e": "edge"})
    out = module(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_array_equal(np.isnan(out), pairs.reshape(B, -1))
    assert_equivariant(lambda Z: module(torch.from_numpy(Z)).detach().numpy(),
                       "S_n x E(3)", X, fields=fields, target={"e": "edge"},
                       random_state=2, rtol=1e-10)
