"""Quickstart: exact E(3) equivariance for a plain scikit-learn regressor.

Five charged particles move under Coulomb forces; from their positions, velocities
and charges, predict where they will be 1000 steps later. Rotating or translating
the whole system rotates or translates the answer, so the right model is
E(3)-equivariant. A plain ``MLPRegressor`` does not know that;
``FrameAveragingRegressor(..., group="E(3)", target="point")`` makes it exact by
fitting and predicting in each system's canonical frame.

Run: ``python examples/quickstart.py`` (about 30 s on 2 CPU cores).
"""

import os
import time

import numpy as np
from sklearn.neural_network import MLPRegressor

from mfa_sklearn import FrameAveragingRegressor, check_equivariance
from mfa_sklearn.datasets import NBODY_FIELDS, make_charged_nbody

SMOKE = os.environ.get("MFA_SMOKE") == "1"  # a seconds-long run for CI
n_train, n_test = (300, 100) if SMOKE else (3000, 1000)

# X columns: 15 positions (5 particles x 3), 15 velocities, 5 charges; y: 15 positions.
X, y = make_charged_nbody(n_samples=n_train + n_test, random_state=0,
                          n_steps=300 if SMOKE else 3000, horizon=100 if SMOKE else 1000)
X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
positions, velocities = slice(0, 15), slice(15, 30)
horizon = (0.1 if SMOKE else 1.0)  # steps times dt = 0.001


def mlp():
    return MLPRegressor(hidden_layer_sizes=(256, 256), batch_size=64,
                        early_stopping=True, n_iter_no_change=20,
                        max_iter=20 if SMOKE else 200,
                        random_state=0)


def drift(X):
    """Where the particles would be without forces: x + v t."""
    return X[:, positions] + horizon * X[:, velocities]


models = {
    "MLP": (mlp(), "point", False),
    "MLP + E(3) frames": (
        FrameAveragingRegressor(mlp(), group="E(3)", fields=NBODY_FIELDS,
                                target="point"), "point", False),
    # y - (x + v t) is a displacement: it rotates with the system but does not
    # translate, so it is a "vector" target.
    "MLP + E(3) frames, displacement": (
        FrameAveragingRegressor(mlp(), group="E(3)", fields=NBODY_FIELDS,
                                target="vector"), "vector", True),
    # the particles are interchangeable too: S_n x E(3) orders them canonically
    "MLP + S_n x E(3) frames, displ.": (
        FrameAveragingRegressor(mlp(), group="S_n x E(3)", fields=NBODY_FIELDS,
                                target="vector"), "vector", True),
}

print(f"{'model':34s} {'test MSE':>9s} {'equivariance error':>24s} {'fit s':>6s}")
baseline = np.mean((drift(X_test) - y_test) ** 2)
print(f"{'constant velocity x + v t':34s} {baseline:9.4f} {'exact':>24s} {0:6.1f}")
for name, (model, target, displacement) in models.items():
    start = time.perf_counter()
    model.fit(X_train, y_train - drift(X_train) if displacement else y_train)
    seconds = time.perf_counter() - start
    prediction = model.predict(X_test) + (drift(X_test) if displacement else 0.0)
    mse = np.mean((prediction - y_test) ** 2)
    # F(g.x) against g.F(x) for a random rotation/reflection and translation per sample
    group = "S_n x E(3)" if "S_n" in name else "E(3)"
    error = check_equivariance(model, group, X_test, fields=NBODY_FIELDS, target=target,
                               random_state=1)["max_error"]
    print(f"{name:34s} {mse:9.4f} {error:24.1e} {seconds:6.1f}")
