"""Tree models on their own training data: what ``round_bits`` buys and costs.

A tree splits at values seen in training. The canonical form of a moved training sample
``g . x`` differs from that of ``x`` by float rounding (about 1e-15 relative), which is
enough to fall on the other side of such a split. ``round_bits`` rounds canonical
coordinates to a power-of-two grid, so that both land on the same grid point.

For each group and ``round_bits`` in (None, 40, 32, 24) this fits
``FrameAveragingRegressor(MultiOutputRegressor(HistGradientBoostingRegressor()))`` on
charged n-body systems (future positions, ``target="point"``) and prints the
equivariance error on the training samples and on held-out samples, and the test MSE.

Usage::

    python benchmarks/bench_round_bits.py            # 300 training systems, ~1 minute
    python benchmarks/bench_round_bits.py --quick    # smoke test
"""

import argparse

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.multioutput import MultiOutputRegressor

from mfa_sklearn import FrameAveragingRegressor, check_equivariance
from mfa_sklearn.datasets import NBODY_FIELDS, make_charged_nbody


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode")
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--test", type=int, default=2000)
    args = parser.parse_args()
    if args.quick:
        args.train, args.test = 60, 60
    X, y = make_charged_nbody(args.train + args.test, random_state=0)
    X_train, y_train = X[:args.train], y[:args.train]
    X_test, y_test = X[args.train:], y[args.train:]
    groups = ["E(3)"] if args.quick else ["E(3)", "O(3)", "SO(3)", "S_n x E(3)"]
    print("| group | round_bits | error on training samples | error on test samples "
          "| test MSE |")
    print("|---|---|---|---|---|")
    for group in groups:
        for bits in (None, 40, 32, 24):
            trees = HistGradientBoostingRegressor(max_iter=20 if args.quick else 50,
                                                  random_state=0)
            reg = FrameAveragingRegressor(MultiOutputRegressor(trees), group=group,
                                          fields=NBODY_FIELDS, target="point",
                                          round_bits=bits).fit(X_train, y_train)
            train = check_equivariance(reg, group, X_train, random_state=1)["max_error"]
            test = check_equivariance(reg, group, X_test[:args.train],
                                      random_state=1)["max_error"]
            mse = float(np.mean((reg.predict(X_test) - y_test) ** 2))
            print(f"| {group} | {bits} | {train:.2e} | {test:.2e} | {mse:.5f} |",
                  flush=True)


if __name__ == "__main__":
    main()
