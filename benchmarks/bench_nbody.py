"""n-body benchmark: scikit-learn and torch models x symmetry modes.

Data: the charged 5-body systems of ``mfa_sklearn.datasets`` (the EGNN "nbody_small"
protocol: 3000 / 2000 / 2000 train / validation / test systems, predict the positions
1000 steps of ``dt = 1e-3`` ahead, ``t = 1.0``). Every model predicts the displacement
beyond straight-line motion, ``y - (x + v t)``: a "vector" target (rotated with the
system, not translated); the reported test MSE is on the future positions
``x + v t + prediction``, averaged over systems and the 15 coordinates.

Symmetry modes (all with the same inner estimator and hyper-parameters):

* ``none``: the estimator on the raw columns.
* ``augment``: the training set is *replaced* by randomly transformed copies:
  ``--aug-copies`` (default 1) copies of each system, each moved by its own random
  E(3) element (Haar rotation/reflection and an N(0, 1) translation per coordinate,
  the scale of the positions). With the default the inner estimator fits on exactly
  as many rows as in the ``none`` and minimal-frame modes: equal fitting budget.
  Prediction is the raw estimator on the raw test systems (one call per system).
* ``PCA frames``: ``FrameAveragingRegressor(frame="pca")``, the 2^3 = 8 sign-flip PCA
  frames of Puny et al.: the inner estimator fits on 8 canonical copies of each system
  and is called 8 times per test system.
* ``MFA E(3), <rule>``: minimal frames, ``group="E(3)"``, with each row rule
  (``row_rule`` "first", "pivoted", "first_above"): one canonical copy per system.
* ``MFA S_n x E(3), <rule>``: minimal frames of permutations and E(3) together (the
  particles are also put in a canonical order), each row rule.
* ``MFA E(3), first_above, k=<k>``: frame ensembles, ``n_frames=k`` minimal frames per
  system (rows re-ordered to start at each anchor): the inner estimator fits on ``k``
  canonical copies of each system and is called ``k`` times per test system.
* ``MFA S_n x E(3), first_above, k=<k>``: the same over the canonical ranking of the
  particles (anchor: the i-th ranked particle).
* ``MFA E(3), first_above, k=<k>, band=<b>``: weighted frames near ties
  (``tie_band=b``): systems whose frame would change if the row fraction moved by at most
  ``b`` times itself get a second frame, weighted; ``calls`` is then the measured mean
  number of inner calls per test system, and the inner estimator fits on the weighted
  copies (``inner rows``: the frame elements of nonzero weight of the training systems).
* ``MFA S_n x E(3), first_above, k=<k>, band=<b>``: the same for S_n x E(3), whose band
  also takes near-tied particles of its canonical ranking (squared distances to the
  centroid within ``b / 10`` of the largest squared norm) in every order, weighted.

Columns: test MSE, fit seconds, predict seconds (best of ``--timing-repeats``
predictions of the test set, and one prediction of the test set tiled 10 times, which
shows the per-system cost without fixed per-call overheads), and the measured
equivariance error (``check_equivariance(...)["max_error"]``, relative max error, one
random group element per system, on ``--eq-samples`` test systems) under E(3)
(rotations, reflections, translations) and under S_5 (permutations of the particles).
The MLPRegressor's L2 penalty is chosen per row on the validation systems
(:func:`make_grids`); every other hyper-parameter is shared by all modes.

A second table gives accuracy and prediction cost of every mode per inner estimator,
as ratios measured in the same run (against one minimal frame and against PCA frames).
``--models`` restricts the run to some inner estimators.

Then: learning curves (test MSE against training-set size) for the best few rows,
and a small message-passing network (``nbody_models.PairGNN``) trained with a time
budget, with and without ``mfa_sklearn.torch.FrameAveraged(group="E(3)")``, to
compare with the published n-body numbers (EGNN 0.0071, FA-GNN 0.0057, MFA-GNN 0.0036,
as reported in arXiv 2406.07598).

Usage::

    python benchmarks/bench_nbody.py            # full run, about an hour on 2 cores
    python benchmarks/bench_nbody.py --gnn-seeds 3   # PairGNN over 3 seeds, +16 min
    python benchmarks/bench_nbody.py --quick    # smoke run, about a minute
    # the PairGNN with the reference experiment's trick, 600 s of CPU time per run:
    OMP_NUM_THREADS=1 python benchmarks/bench_nbody.py --gnn-only --tag gnn_s0
        --gnn-rotations 4 --gnn-seconds 600 --gnn-cpu-clock
        --gnn-modes "MFA E(3)" "MFA E(3), 4 rotations, L1"
    # a reduced run on a shared machine: fewer systems, some models and modes
    python benchmarks/bench_nbody.py --no-gnn --curves 0 --n-train 500 --n-test 500
        --models MLPRegressor --modes none PCA "MFA E(3)," --tag weighted
    # this release's saved results, in two parts (the first is one command line):
    python benchmarks/bench_nbody.py --no-gnn --curves 1 --tag classic
        --models constant Ridge KNeighbors HistGradient
    python benchmarks/bench_nbody.py --no-gnn --curves 1 --tag mlp --models MLPRegressor

Outputs (``--out-dir``, default ``benchmarks/results``): ``nbody_table.md``,
``nbody_table.csv``, ``nbody_learning_curves.png`` (``nbody_quick_*`` with --quick).
"""

import argparse
import csv
import os
import platform
import sys
import time
import warnings

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor

from mfa_sklearn import FrameAveragingRegressor, MinimalFrameCanonicalizer, check_equivariance
from mfa_sklearn.datasets import NBODY_FIELDS, load_charged_nbody_splits
from mfa_sklearn.testing import apply_group, random_group_element

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

T_AHEAD = 1.0                      # horizon 1000 steps x dt 1e-3
N = 5                              # particles
# The same columns with explicit row widths, for the permutation checks (S_n has no d).
SN_FIELDS = {"pos": ("point", 3), "vel": ("vector", 3), "charge": ("scalar", 1)}
SN_TARGET = {"disp": ("vector", 3)}
#: the row rule of the frame ensembles (the rule of the k = 1 rows is in their names)
ENSEMBLE_RULE = "first_above"
ENSEMBLE_SIZES = (2, 4, 8)
#: bands of the weighted frames near ties, with one frame and with k = 4
TIE_BANDS = (0.2, 0.5)
#: symmetry mode -> FrameAveragingRegressor parameters (None: not frame averaging)
MODE_PARAMS = {
    "none": None,
    "augment": None,
    "PCA frames": dict(group="E(3)", frame="pca"),
    **{f"MFA E(3), {rule}": dict(group="E(3)", row_rule=rule)
       for rule in ("first", "pivoted", "first_above")},
    **{f"MFA S_n x E(3), {rule}": dict(group="S_n x E(3)", row_rule=rule)
       for rule in ("first", "pivoted", "first_above")},
    **{f"MFA {group}, {ENSEMBLE_RULE}, k={k}": dict(group=group, row_rule=ENSEMBLE_RULE,
                                                    n_frames=k)
       for group in ("E(3)", "S_n x E(3)") for k in ENSEMBLE_SIZES},
    **{f"MFA {group}, {ENSEMBLE_RULE}, k={k}, band={band}": dict(
        group=group, row_rule=ENSEMBLE_RULE, n_frames=k, tie_band=band)
       for group in ("E(3)", "S_n x E(3)") for k in (1, 4) for band in TIE_BANDS},
}
MODES = list(MODE_PARAMS)
#: the modes of the --quick smoke run (every kind once, to stay under a minute)
QUICK_MODES = ["none", "augment", "PCA frames", "MFA E(3), pivoted",
               f"MFA E(3), {ENSEMBLE_RULE}", f"MFA S_n x E(3), {ENSEMBLE_RULE}",
               f"MFA E(3), {ENSEMBLE_RULE}, k=2", f"MFA S_n x E(3), {ENSEMBLE_RULE}, k=2",
               f"MFA E(3), {ENSEMBLE_RULE}, k=1, band={TIE_BANDS[-1]}"]
PUBLISHED = {"EGNN": 0.0071, "FA-GNN": 0.0057, "MFA-GNN": 0.0036}


def drift(X):
    """Straight-line motion x + v t."""
    return X[:, : 3 * N] + T_AHEAD * X[:, 3 * N: 6 * N]


class ZeroDisplacement(RegressorMixin, BaseEstimator):
    """Predicts zero displacement: with the drift added back, the constant-velocity
    baseline x + v t."""

    def fit(self, X, y):
        self.n_outputs_ = np.asarray(y).shape[1]
        return self

    def predict(self, X):
        return np.zeros((len(X), self.n_outputs_))


def skorch_mlp(quick):
    import torch
    from nbody_models import FlatMLP
    from skorch import NeuralNetRegressor
    torch.manual_seed(0)
    return NeuralNetRegressor(FlatMLP, module__hidden=128 if quick else 256,
                              optimizer=torch.optim.Adam, lr=2e-3, batch_size=256,
                              max_epochs=5 if quick else 25, train_split=None, verbose=0)


def make_models(quick):
    """name -> (estimator, dtype of its computations)."""
    models = {
        "constant velocity x + v t": ZeroDisplacement(),
        "Ridge": Ridge(alpha=1e-2),
        "KernelRidge (rbf)": KernelRidge(alpha=1e-2, kernel="rbf", gamma=1.0 / 35),
        "KNeighbors (k=10)": KNeighborsRegressor(10, weights="distance"),
        "MLPRegressor (256, 256)": MLPRegressor(
            hidden_layer_sizes=(64, 64) if quick else (256, 256), batch_size=64,
            early_stopping=True, n_iter_no_change=20, max_iter=20 if quick else 200,
            random_state=0),
    }
    if not quick:
        # canonical coordinates that vanish in exact arithmetic are exact zeros (the
        # canonicalizer snaps the rounding level), so tree bin edges cannot split them.
        # No early stopping: "auto" would switch it on for the 24 000 rows of PCA frames
        # only, giving that mode fewer trees (a different, cheaper inner model).
        models["HistGradientBoosting (x15)"] = MultiOutputRegressor(
            HistGradientBoostingRegressor(max_iter=150, learning_rate=0.1,
                                          early_stopping=False, random_state=0))
        models["skorch MLP (torch)"] = skorch_mlp(quick)
    return models


def make_grids(quick):
    """name -> {parameter: values} chosen per row on the validation systems. The MLP's
    best L2 penalty differs between modes (PCA frames fit 8 copies of each system,
    which regularizes by itself), so one shared value would favour one mode."""
    return {"MLPRegressor (256, 256)": {"alpha": [1e-2] if quick else [1e-2, 1e-1]}}


class Augmented(RegressorMixin, BaseEstimator):
    """Fit on random E(3) copies of the training set (which it replaces); predict raw."""

    def __init__(self, estimator, copies=1, translation_scale=1.0, random_state=0):
        self.estimator = estimator
        self.copies = copies
        self.translation_scale = translation_scale
        self.random_state = random_state

    def fit(self, X, y):
        rng = np.random.default_rng(self.random_state)
        Xs, ys = [], []
        for _ in range(self.copies):
            g = random_group_element("E(3)", len(X), rng)
            # translations on the data's scale (the default, 10, is a stress test)
            g = type(g)(g.T, rng.normal(0.0, self.translation_scale, g.b.shape)) \
                if g.b is not None else g
            Xs.append(apply_group("E(3)", g, X, NBODY_FIELDS))
            ys.append(apply_group("E(3)", g, y, "vector"))
        self.estimator_ = _fit_inner(clone(self.estimator), np.vstack(Xs), np.vstack(ys))
        return self

    def predict(self, X):
        return _predict_inner(self.estimator_, X)


def _is_skorch(est):
    return type(est).__module__.startswith("skorch")


def _fit_inner(est, X, y):
    if _is_skorch(est):
        return est.fit(X.astype(np.float32), y.astype(np.float32))
    return est.fit(X, y)


def _predict_inner(est, X):
    if _is_skorch(est):
        return np.asarray(est.predict(X.astype(np.float32)), dtype=np.float64)
    return est.predict(X)


class Raw(RegressorMixin, BaseEstimator):
    """The estimator as is (float32 casting for skorch nets)."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y):
        self.estimator_ = _fit_inner(clone(self.estimator), X, y)
        return self

    def predict(self, X):
        return _predict_inner(self.estimator_, X)


def wrap(est, mode, aug_copies):
    if mode == "none":
        return Raw(est)
    if mode == "augment":
        return Augmented(est, copies=aug_copies)
    return FrameAveragingRegressor(est, fields=NBODY_FIELDS, target="vector",
                                   **MODE_PARAMS[mode])


def calls_per_system(mode):
    """Inner-estimator calls (canonical copies) per system; the most, for weighted
    frames (whose measured mean is in the row's ``calls``)."""
    params = MODE_PARAMS[mode] or {}
    if params.get("frame") == "pca":
        return 8
    return params.get("n_frames", 1) * (2 if params.get("tie_band") else 1)


def inner_rows(mode, n_train, aug_copies):
    if mode == "augment":
        return aug_copies * n_train
    return calls_per_system(mode) * n_train


def equivariance(model, X):
    """Relative max errors under E(3) and under S_5 (one random element per system)."""
    e3 = check_equivariance(model, "E(3)", X, fields=NBODY_FIELDS, target="vector",
                            random_state=1)["max_error"]
    sn = check_equivariance(model, "S_n", X, fields=SN_FIELDS, target=SN_TARGET,
                            random_state=2)["max_error"]
    return e3, sn


def position_mse(X, displacement, y):
    """MSE of the predicted future positions ``x + v t + displacement``."""
    return float(np.mean((drift(X) + displacement - y) ** 2))


def best_predict_time(model, X, repeats):
    """Best of ``repeats`` timed predictions (the first also returns the prediction)."""
    times, pred = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = model.predict(X)
        times.append(time.perf_counter() - t0)
        pred = out if pred is None else pred
    return pred, min(times)


def run_row(name, est, mode, data, args, log, grid=None):
    """Fit, time and check one (model, mode) cell; with a ``grid``, every value is
    fitted and the one with the lowest validation MSE is kept."""
    X_train, d_train, X_val, y_val, X_test, y_test = data
    (param, values), = (grid or {None: [None]}).items()
    fits, notes = [], ""
    for value in values:
        inner = est if param is None else clone(est).set_params(**{param: value})
        model = wrap(inner, mode, args.aug_copies)
        t0 = time.perf_counter()
        model.fit(X_train, d_train)
        fit_s = time.perf_counter() - t0
        val = position_mse(X_val, model.predict(X_val), y_val) if param else np.nan
        fits.append((val, fit_s, value, model))
    if param is not None:
        notes = f"{param} from {values} on val: " + ", ".join(
            f"{v:g} -> {m:.4f}" for m, _, v, _ in fits)
        fits.sort(key=lambda f: f[0])
    _, fit_s, value, model = fits[0]
    pred, predict_s = best_predict_time(model, X_test, args.timing_repeats)
    # per-system cost without fixed per-call overheads: 10 x the test set in one call
    _, predict_big_s = best_predict_time(model, np.tile(X_test, (10, 1)), 1)
    mse = position_mse(X_test, pred, y_test)
    e3, sn = equivariance(model, X_test[: args.eq_samples])
    rows = inner_rows(mode, len(X_train), args.aug_copies)
    calls = "1" if mode in ("none", "augment") else str(calls_per_system(mode))
    if (MODE_PARAMS[mode] or {}).get("tie_band"):
        # weighted frames: a second copy and call only for the systems inside the band
        sizes = model.frame_diagnostics(X_test)["frame_size"]
        calls = f"{sizes.mean():.3f}"
        rows = int(model.frame_diagnostics(X_train)["frame_size"].sum())
        notes = (notes + "; " if notes else "") + (
            f"inside the band: {model.n_band_samples_} / {len(X_train)} train, "
            f"{int(np.count_nonzero(sizes > MODE_PARAMS[mode]['n_frames']))} / "
            f"{len(X_test)} test systems")
    row = dict(model=name, symmetry=mode, test_mse=mse, fit_s=fit_s, predict_s=predict_s,
               predict_big_s=predict_big_s, eq_E3=e3, eq_Sn=sn, inner_train_rows=rows,
               calls=calls, notes=notes, estimator=est if param is None else
               clone(est).set_params(**{param: value}))
    log(f"{name:28s} {mode:15s} MSE {mse:.5f}  fit {fit_s:7.2f}s  predict "
        f"{predict_s:6.3f}s ({predict_big_s:6.3f}s x10)  E(3) {e3:.1e}  S_n {sn:.1e}"
        + (f"  {param}={value:g}" if param else ""))
    return row


def skipped_row(name, mode, why, n_train, args):
    return dict(model=name, symmetry=mode, test_mse=np.nan, fit_s=np.nan,
                predict_s=np.nan, predict_big_s=np.nan, eq_E3=np.nan, eq_Sn=np.nan,
                inner_train_rows=inner_rows(mode, n_train, args.aug_copies),
                calls=str(calls_per_system(mode)), notes=why)


def gnn_rows(data_full, args, log):
    """PairGNN with and without E(3) minimal frames, each under a wall-clock budget."""
    import torch
    from nbody_models import PairGNN, RotationAveraged, predict_torch, train_torch

    from mfa_sklearn.torch import FrameAveraged

    X_train, y_train, X_val, y_val, X_test, y_test = data_full
    rows = []
    d_train, d_val = y_train - drift(X_train), y_val - drift(X_val)
    modes = [("none", None, 0), ("MFA E(3)", "E(3)", 0)]
    if args.gnn_rotations:   # the reference experiment's trick, see RotationAveraged
        modes.append((f"MFA E(3), {args.gnn_rotations} rotations, L1", "E(3)",
                      args.gnn_rotations))
    seeds = range(args.gnn_first_seed, args.gnn_first_seed + args.gnn_seeds)
    runs = [(mode, group, rotations, seed) for seed in seeds
            for mode, group, rotations in modes
            if args.gnn_modes is None or mode in args.gnn_modes]
    for mode, group, rotations, seed in runs:
        torch.manual_seed(seed)
        backbone = PairGNN(hidden=args.gnn_hidden)
        if rotations:
            backbone = RotationAveraged(backbone, rotations, seed=seed)
        model = FrameAveraged(backbone, group=group, fields=NBODY_FIELDS, target="vector")
        Xt, dt, Xv, dv = X_train, d_train, X_val, d_val
        if group is not None:
            # Frames are fixed per system, so canonicalize the training and validation
            # sets once (numpy, the same frames FrameAveraged computes) and train the
            # backbone on them: identical to training the wrapped model, without
            # recomputing frames at every step. The displacement rides along as an
            # extra "vector" field; the frame is defined by the positions alone.
            canon = MinimalFrameCanonicalizer(group=group, fields=dict(
                NBODY_FIELDS, disp="vector"), frame_fields=["pos"])
            Xt, dt = np.split(canon.fit_transform(np.hstack([X_train, d_train])), [35], 1)
            Xv, dv = np.split(canon.transform(np.hstack([X_val, d_val])), [35], 1)
        log(f"PairGNN, {mode}, seed {seed}: training for up to {args.gnn_seconds:.0f} s")
        loss = "l1" if rotations else "mse"
        info = train_torch(backbone, Xt, dt, Xv, dv, seconds=args.gnn_seconds,
                           lr=args.gnn_lr, patience=args.gnn_patience, loss=loss, log=log,
                           clock=time.process_time if args.gnn_cpu_clock else time.perf_counter)
        t0 = time.perf_counter()
        pred = predict_torch(model, X_test)
        predict_s = time.perf_counter() - t0
        mse = float(np.mean((drift(X_test) + pred - y_test) ** 2))

        def call(X, model=model):
            return predict_torch(model, X)

        Xe = X_test[: args.eq_samples]
        e3 = check_equivariance(call, "E(3)", Xe, fields=NBODY_FIELDS, target="vector",
                                random_state=1)["max_error"]
        sn = check_equivariance(call, "S_n", Xe, fields=SN_FIELDS, target=SN_TARGET,
                                random_state=2)["max_error"]
        log(f"PairGNN {mode}: test MSE {mse:.5f} (val {info['val_mse']:.5f}, best epoch "
            f"{info['best_epoch']} of {info['epochs']}, {info['seconds']:.0f} s)  "
            f"E(3) {e3:.1e}  S_n {sn:.1e}")
        rows.append(dict(model="PairGNN (torch, float32)", symmetry=mode, test_mse=mse,
                         fit_s=info["seconds"], predict_s=predict_s, predict_big_s=np.nan,
                         eq_E3=e3, eq_Sn=sn,
                         inner_train_rows=len(X_train),
                         notes=f"seed {seed}, val MSE {info['val_mse']:.5f}, best epoch "
                               f"{info['best_epoch']}/{info['epochs']}, hidden "
                               f"{args.gnn_hidden}, 4 layers, Adam lr {args.gnn_lr} "
                               f"cosine, batch 100, {loss.upper()} loss, early stop on "
                               "val"))
    return rows


def cost_table(models, table):
    """Accuracy and prediction cost per inner estimator, every mode, ratios measured in
    the same run: prediction time over that of the plain minimal frame (pivoted rows,
    one call per system) and over that of the PCA frames (8 calls)."""
    lines = ["## Accuracy and prediction cost (same run, same inner estimator)", "",
             "`calls`: inner-estimator calls per system (and canonical copies per "
             "training system; weighted frames: the mean over the test systems). "
             "`cost`: prediction time of the test set repeated 10 times in one call, "
             "over that of `MFA E(3), pivoted` (one call per system; `MFA E(3), "
             f"{ENSEMBLE_RULE}` where that row was not run) "
             "and over that of `PCA frames` (8 calls per system). Best MSE per model "
             "in bold.", "",
             "| model | symmetry | calls | test MSE | predict s, x10 | cost / minimal "
             "| cost / PCA |", "|---|---|---|---|---|---|---|"]
    for name in models:
        by = {r["symmetry"]: r for r in table if r["model"] == name}
        if len(by) < 2:
            continue
        base = by.get("MFA E(3), pivoted", by.get(f"MFA E(3), {ENSEMBLE_RULE}", {})).get(
            "predict_big_s", np.nan)
        pca = by.get("PCA frames", {}).get("predict_big_s", np.nan)
        best = np.nanmin([r["test_mse"] for r in by.values()])
        for mode, r in by.items():
            mse = fmt(r["test_mse"], ".5f")
            if r["test_mse"] == best:
                mse = f"**{mse}**"
            lines.append(f"| {name} | {mode} | {r['calls']} | {mse} | "
                         f"{fmt(r['predict_big_s'], '.3f')} | "
                         f"{fmt(r['predict_big_s'] / base, '.2f')} | "
                         f"{fmt(r['predict_big_s'] / pca, '.2f')} |")
    return lines + [""]


def learning_curves(models, table, data, sizes, args, out_png, log):
    X_train, d_train, _, _, X_test, y_test = data
    ranked = sorted((r for r in table if np.isfinite(r["test_mse"])
                     and r["model"] in models), key=lambda r: r["test_mse"])
    picks = []
    for r in ranked:
        if len(picks) >= args.curves:
            break
        if (r["model"], r["symmetry"]) not in picks:
            picks.append((r["model"], r["symmetry"]))
    if picks and (picks[0][0], "none") not in picks:
        picks.append((picks[0][0], "none"))          # the best model without symmetry
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X_train))
    curves = {}
    for name, mode in picks:
        mses = []
        row = next(r for r in table if (r["model"], r["symmetry"]) == (name, mode))
        full = [row["test_mse"]]
        for n in sizes:
            if n >= len(X_train) and full:
                mses.append(full[0])     # the table's row: the same model, all the data
                continue
            idx = order[:n]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                # the row's estimator, with the hyper-parameters chosen for it
                model = wrap(row["estimator"], mode, args.aug_copies).fit(X_train[idx],
                                                                          d_train[idx])
            mses.append(float(np.mean((drift(X_test) + model.predict(X_test) - y_test)
                                      ** 2)))
        curves[f"{name}, {mode}"] = mses
        log(f"curve {name}, {mode}: " + ", ".join(f"{n}: {m:.4f}"
                                                  for n, m in zip(sizes, mses)))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, mses in curves.items():
        ax.plot(sizes, mses, "o-", label=label)
    base = float(np.mean((drift(X_test) - y_test) ** 2))
    ax.axhline(base, color="gray", ls=":", label="constant velocity x + v t")
    ax.axhline(PUBLISHED["EGNN"], color="k", ls="--", lw=0.8, label="EGNN (published)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training systems")
    ax.set_ylabel("test MSE (future positions)")
    ax.set_title("charged 5-body, t = 1.0: learning curves")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return sizes, curves


def machine():
    import threadpoolctl
    from machine import cpu_model
    cpu = cpu_model()
    try:
        import torch
        tv = torch.__version__
    except ImportError:
        tv = "-"
    threads = max((p["num_threads"] for p in threadpoolctl.threadpool_info()), default=1)
    return (f"{cpu}, {os.cpu_count()} logical CPUs (BLAS/OpenMP threads {threads}); "
            f"Python {platform.python_version()}, numpy {np.__version__}, scikit-learn "
            f"{sklearn.__version__}, torch {tv}")


def fmt(v, spec):
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else \
        format(v, spec)


def write_outputs(table, args, extra_lines, prefix):
    csv_path = os.path.join(args.out_dir, prefix + "table.csv")
    keys = ["model", "symmetry", "test_mse", "fit_s", "predict_s", "predict_big_s",
            "eq_E3", "eq_Sn", "inner_train_rows", "calls", "notes"]
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        for r in table:
            w.writerow({k: r.get(k, "") for k in keys})   # PairGNN rows: no calls
    md = [f"# n-body benchmark{' (quick smoke run)' if args.quick else ''}", "",
          f"Machine: {machine()}.", "",
          f"Data: `load_charged_nbody_splits(random_state={args.seed})`, "
          f"{args.n_train} / {args.n_val} / {args.n_test} train / val / test systems "
          "(5 charged particles, predict positions at t = 1.0). All models predict the "
          "displacement `y - (x + v t)` (a \"vector\" target); MSE on future positions, "
          "mean over coordinates. Equivariance errors: `check_equivariance(...)"
          f"[\"max_error\"]` (relative max) on {args.eq_samples} test systems, one "
          "random element each; E(3) includes N(0, (10 rms)^2) translations, S_5 "
          "permutes particles. `augment`: the training set replaced by "
          f"{args.aug_copies} random E(3) cop{'y' if args.aug_copies == 1 else 'ies'} "
          "of each system (equal fitting budget with the `none` and MFA rows; PCA "
          "frames fit on 8 copies). `inner rows`: rows the inner estimator is fitted on. "
          f"`predict s`: best of {args.timing_repeats} predictions of the test set; "
          "`x10`: one prediction of the test set repeated 10 times in one call (the "
          "per-system cost, without fixed per-call overheads).",
          "", "| model | symmetry | test MSE | fit s | predict s | predict s, x10 | "
          "E(3) eq. error | S_5 eq. error | inner rows | notes |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        md.append(f"| {r['model']} | {r['symmetry']} | {fmt(r['test_mse'], '.5f')} | "
                  f"{fmt(r['fit_s'], '.2f')} | {fmt(r['predict_s'], '.3f')} | "
                  f"{fmt(r['predict_big_s'], '.3f')} | "
                  f"{fmt(r['eq_E3'], '.1e')} | {fmt(r['eq_Sn'], '.1e')} | "
                  f"{r['inner_train_rows']} | {r['notes']} |")
    md += [""] + extra_lines
    with open(os.path.join(args.out_dir, prefix + "table.md"), "w") as f:
        f.write("\n".join(md) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run, < 60 s")
    p.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--aug-copies", type=int, default=1)
    p.add_argument("--eq-samples", type=int, default=None)
    p.add_argument("--timing-repeats", type=int, default=3,
                   help="predictions of the test set timed per row (best kept)")
    p.add_argument("--curves", type=int, default=3, help="best rows with learning curves")
    p.add_argument("--no-gnn", action="store_true")
    p.add_argument("--n-train", type=int, default=None,
                   help="training systems (default 3000, 200 with --quick)")
    p.add_argument("--n-test", type=int, default=None,
                   help="validation and test systems each (default 2000, 100/200 quick)")
    p.add_argument("--modes", nargs="+", default=None,
                   help="run only the symmetry modes whose name contains one of these")
    p.add_argument("--models", nargs="+", default=None,
                   help="run only the models whose names contain one of these strings")
    p.add_argument("--tag", default="",
                   help="output names nbody_<tag>_* (runs of different --models)")
    p.add_argument("--gnn-seconds", type=float, default=None,
                   help="training budget per PairGNN run (with and without frames)")
    p.add_argument("--gnn-hidden", type=int, default=64)
    p.add_argument("--gnn-lr", type=float, default=1e-3)
    p.add_argument("--gnn-patience", type=int, default=300)
    p.add_argument("--gnn-seeds", type=int, default=1,
                   help="PairGNN runs per mode (seeds 0, 1, ...)")
    p.add_argument("--gnn-first-seed", type=int, default=0)
    p.add_argument("--gnn-only", action="store_true",
                   help="run the PairGNN rows alone (no scikit-learn estimators)")
    p.add_argument("--gnn-rotations", type=int, default=0,
                   help="also train the PairGNN averaged over this many fixed rotations "
                        "in the canonical frame, with an L1 loss (the reference n-body "
                        "experiment's trick; 0: not run)")
    p.add_argument("--gnn-cpu-clock", action="store_true",
                   help="--gnn-seconds counts CPU time of this process (all its threads), "
                        "not wall-clock time: a fair budget on a shared machine")
    p.add_argument("--gnn-modes", nargs="+", default=None,
                   help="PairGNN modes to run (default: all), e.g. 'MFA E(3)'")
    args = p.parse_args(argv)
    q = args.quick
    n_train, n_val, n_test = (200, 100, 200) if q else (3000, 2000, 2000)
    args.n_train = args.n_train or n_train
    args.n_val, args.n_test = (args.n_test, args.n_test) if args.n_test else (n_val, n_test)
    args.eq_samples = args.eq_samples or (100 if q else 500)
    if args.gnn_seconds is None:
        args.gnn_seconds = 4.0 if q else 240.0
    sizes = [50, 100, 200] if q else [100, 300, 1000, 3000]
    prefix = ("nbody_quick_" if q else "nbody_") + (f"{args.tag}_" if args.tag else "")
    os.makedirs(args.out_dir, exist_ok=True)
    start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", flush=True)

    splits = load_charged_nbody_splits(args.seed, n_train=args.n_train, n_val=args.n_val,
                                       n_test=args.n_test)
    X_train, y_train, X_val, y_val, X_test, y_test = splits
    d_train = y_train - drift(X_train)
    data = (X_train, d_train, X_val, y_val, X_test, y_test)
    log(f"data: {len(X_train)} / {len(X_val)} / {len(X_test)} systems")

    models = {} if args.gnn_only else make_models(q)
    if args.models:
        models = {name: est for name, est in models.items()
                  if any(part.lower() in name.lower() for part in args.models)}
    grids = make_grids(q)
    table = []
    for name, est in models.items():
        modes = ["none"] if isinstance(est, ZeroDisplacement) else (
            QUICK_MODES if q else MODES)
        if args.modes:
            modes = [m for m in modes if any(part in m for part in args.modes)]
        for mode in modes:
            copies = inner_rows(mode, args.n_train, args.aug_copies)
            if name.startswith("KernelRidge") and copies > 8000:
                table.append(skipped_row(name, mode, f"skipped: kernel matrix of "
                                         f"{copies} rows", args.n_train, args))
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                table.append(run_row(name, est, mode, data, args, log,
                                     grid=grids.get(name)))

    extra = cost_table(models, table) if models else []

    if not args.no_gnn:
        gnn = gnn_rows(splits, args, log)
        table += gnn
        extra += ["## PairGNN over seeds", "", "| symmetry | seeds | test MSE mean | std "
                  "| min | max |", "|---|---|---|---|---|---|"]
        for mode in dict.fromkeys(r["symmetry"] for r in gnn):
            mse = np.array([r["test_mse"] for r in gnn if r["symmetry"] == mode])
            extra.append(f"| {mode} | {len(mse)} | {mse.mean():.5f} | {mse.std():.5f} | "
                         f"{mse.min():.5f} | {mse.max():.5f} |")
        extra.append("")
        write_outputs(table, args, extra, prefix)
        if not models:
            log(f"wrote {os.path.join(args.out_dir, prefix + 'table.md')}")
            return table

    sizes, curves = learning_curves(models, table, data, sizes, args,
                                    os.path.join(args.out_dir,
                                                 prefix + "learning_curves.png"), log)
    extra += ["## Learning curves (test MSE)", "",
              "| model, symmetry | " + " | ".join(str(n) for n in sizes) + " |",
              "|---|" + "---|" * len(sizes)]
    extra += [f"| {k} | " + " | ".join(f"{m:.5f}" for m in v) + " |"
              for k, v in curves.items()]
    extra += ["", "Published (other implementations of the data set, not re-run here): "
              + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items()) + ".",
              "", f"Total wall time: {time.perf_counter() - start:.0f} s."]
    write_outputs(table, args, extra, prefix)
    log(f"wrote {os.path.join(args.out_dir, prefix + 'table.md')}")
    return table


if __name__ == "__main__":
    main()
