"""Fit on k frames, predict with fewer: the MLPRegressor of bench_nbody.py on the charged
n-body data, ``FrameAveragingRegressor(group="S_n x E(3)", n_frames=k)``, predictions
with ``predict_frames`` 1 and k from the same fitted model (L2 penalty chosen on the
validation systems per prediction setting, from {0.01, 0.1}, as in bench_nbody.py).

Usage::

    python benchmarks/bench_predict_frames.py          # k = 4, about 2 minutes idle
    python benchmarks/bench_predict_frames.py --k 8

Output: ``benchmarks/results/nbody_predict_frames_k<k>.md``.
"""

import argparse
import os
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from mfa_sklearn import FrameAveragingRegressor
from mfa_sklearn.datasets import NBODY_FIELDS, load_charged_nbody_splits

HERE = os.path.dirname(os.path.abspath(__file__))


def drift(X):
    """Straight-line motion x + v t (t = 1)."""
    return X[:, :15] + X[:, 15:30]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)
    X, y, Xv, yv, Xt, yt = load_charged_nbody_splits(0, n_train=3000, n_val=2000,
                                                     n_test=2000)
    results = {}
    for alpha in (0.01, 0.1):
        mlp = MLPRegressor(hidden_layer_sizes=(256, 256), batch_size=64, alpha=alpha,
                           early_stopping=True, n_iter_no_change=20, max_iter=200,
                           random_state=0)
        reg = FrameAveragingRegressor(mlp, group="S_n x E(3)", fields=NBODY_FIELDS,
                                      target="vector", n_frames=args.k)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.fit(X, y - drift(X))
        fit_s = time.perf_counter() - start
        for calls in (args.k, 1):
            reg.set_params(predict_frames=calls)
            val = np.mean((drift(Xv) + reg.predict(Xv) - yv) ** 2)
            test = np.mean((drift(Xt) + reg.predict(Xt) - yt) ** 2)
            results.setdefault(calls, []).append((val, test, alpha, fit_s))
    lines = [f"# Fit on {args.k} frames, predict with fewer (MLPRegressor, S_n x E(3))", "",
             "| predict_frames | test MSE | alpha (val MSE) | fit s |", "|---|---|---|---|"]
    for calls, rows in results.items():
        val, test, alpha, fit_s = min(rows)
        lines.append(f"| {calls} | {test:.5f} | {alpha:g} ({val:.5f}) | {fit_s:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, f"nbody_predict_frames_k{args.k}.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
