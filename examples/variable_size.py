"""Systems of different sizes: charged n-body systems of 3 to 8 particles in one array.

Each system is simulated with its own number of particles and padded to 8 rows with
rows of NaN (absent rows). The task is each particle's displacement beyond ``x + v t``
after the horizon, a per-row "vector" target, NaN on the absent rows. Three MLPs see
the same data:

* plain: NaN rows replaced by zeros plus a 0/1 presence column per row (what one does
  without frames);
* E(3) frames: ``FrameAveragingRegressor(group="E(3)")`` on the padded array itself:
  absent rows are left out of the centroid and the frame, the inner MLP sees zeros and
  presence columns there, and predictions are NaN exactly on the absent rows;
* S_n x E(3) frames: the particles are interchangeable too; absent rows go last in the
  canonical order, so no presence column is needed.

The script prints the test MSE over present rows and the equivariance error under
random rotations, reflections and translations (absent rows stay absent). Run
``MFA_SMOKE=1 python examples/variable_size.py`` for a seconds-long check.
"""

import os
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from threadpoolctl import threadpool_limits

from mfa_sklearn import FrameAveragingRegressor, check_equivariance
from mfa_sklearn.datasets import make_charged_nbody

SMOKE = os.environ.get("MFA_SMOKE") == "1"
N_MAX = 8
SIZES = range(3, N_MAX + 1)
PER_SIZE_TRAIN, PER_SIZE_TEST = (60, 30) if SMOKE else (1000, 300)
HORIZON, STEPS, DT = (100, 100, 1e-3) if SMOKE else (1000, 1000, 1e-3)
MAX_ITER = 30 if SMOKE else 400


def padded_systems(per_size, rng):
    """X (B, 8, 7): rows [position, velocity, charge], NaN rows past each system's size;
    y (B, 24): displacement beyond x + v t, NaN on absent rows."""
    X, y = [], []
    for n in SIZES:
        flat, future = make_charged_nbody(per_size, n_particles=n, n_steps=STEPS,
                                          horizon=HORIZON, dt=DT, random_state=rng)
        pos = flat[:, :3 * n].reshape(-1, n, 3)
        vel = flat[:, 3 * n:6 * n].reshape(-1, n, 3)
        charge = flat[:, 6 * n:].reshape(-1, n, 1)
        shift = future.reshape(-1, n, 3) - pos - vel * (HORIZON * DT)
        rows = np.full((per_size, N_MAX, 7), np.nan)
        rows[:, :n] = np.concatenate([pos, vel, charge], axis=2)
        target = np.full((per_size, N_MAX, 3), np.nan)
        target[:, :n] = shift
        # the absent rows anywhere, not only last
        order = np.argsort(rng.random((per_size, N_MAX)), axis=1)
        X.append(np.take_along_axis(rows, order[:, :, None], axis=1))
        y.append(np.take_along_axis(target, order[:, :, None], axis=1).reshape(per_size, -1))
    return np.concatenate(X), np.concatenate(y)


def with_presence(X):
    """The plain model's input: zeros for NaN, and a presence column per row."""
    present = ~np.isnan(X[..., 0])
    return np.concatenate([np.nan_to_num(X), present[..., None]], axis=2).reshape(len(X), -1)


def mse(pred, y):
    present = ~np.isnan(y)
    return float(np.mean((pred[present] - y[present]) ** 2))


def main():
    rng = np.random.default_rng(0)
    X_train, y_train = padded_systems(PER_SIZE_TRAIN, rng)
    X_test, y_test = padded_systems(PER_SIZE_TEST, rng)
    fields = {"pos": "point", "vel": "vector", "charge": "scalar"}

    def mlp():
        return MLPRegressor(hidden_layer_sizes=(128, 128), max_iter=MAX_ITER,
                            early_stopping=not SMOKE, random_state=0)

    plain = mlp().fit(with_presence(X_train), np.nan_to_num(y_train))
    framed = {group: FrameAveragingRegressor(mlp(), group=group, fields=fields,
                                             target="vector").fit(X_train, y_train)
              for group in ("E(3)", "S_n x E(3)")}

    def plain_predict(X):
        return np.where(np.isnan(X[..., :3]).reshape(len(X), -1), np.nan,
                        plain.predict(with_presence(X)))

    print(f"{len(X_train)} training systems of 3 to {N_MAX} particles, padded to {N_MAX}")
    print(f"{'model':28s} {'test MSE':>10s} {'equivariance error':>20s}")
    baseline = mse(np.zeros_like(y_test), y_test)
    print(f"{'constant velocity x + v t':28s} {baseline:10.4f} {'exact':>20s}")
    for name, group, predict in [
            ("MLP (zeros + presence)", "E(3)", plain_predict),
            ("MLP + E(3) frames", "E(3)", framed["E(3)"].predict),
            ("MLP + S_n x E(3) frames", "S_n x E(3)", framed["S_n x E(3)"].predict)]:
        # the plain model is checked under E(3), the framed ones under their group
        error = check_equivariance(predict, group, X_test, fields=fields,
                                   target="vector", random_state=0)["max_error"]
        print(f"{name:28s} {mse(predict(X_test), y_test):10.4f} {error:20.1e}")
        assert np.array_equal(np.isnan(predict(X_test)), np.isnan(y_test))  # NaN: absent


if __name__ == "__main__":
    with threadpool_limits(limits=2), warnings.catch_warnings():
        if SMOKE:   # a few iterations only
            warnings.simplefilter("ignore", ConvergenceWarning)
        main()
