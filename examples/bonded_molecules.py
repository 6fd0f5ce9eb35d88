"""Clouds with bonds: S_n x E(3) frames with an "edge" field.

Toy "molecules": 6 atoms at random 3-D positions, joined by a random tree of bonds (5
bonds, independent of the positions). The energy is harmonic in the bond lengths plus a
soft repulsion between every pair,

    E = sum over bonds (|r_i - r_j| - 1)^2 + 0.5 sum over pairs exp(-|r_i - r_j|^2),

so it is invariant under rotations, reflections and translations of the positions and
under relabellings of the atoms (which permute the bond matrix along with them).

Three HistGradientBoosting models see the same columns, positions and the bond matrix:

* plain: raw coordinates and bonds;
* E(3) frames: positions in their canonical pose, each atom's bond row as features;
* S_n x E(3) frames with the bonds as an "edge" field: the bonds label the invariant
  graph whose canonical order numbers the atoms, so relabelling atoms changes nothing.

The script prints test MSE and the measured errors under random E(3) motions and atom
relabellings. Run ``MFA_SMOKE=1 python examples/bonded_molecules.py`` for a
seconds-long check.
"""

import os

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from mfa_sklearn import FrameAveragingRegressor, check_equivariance

SMOKE = os.environ.get("MFA_SMOKE") == "1"
N_ATOMS = 6
N_TRAIN, N_TEST = (400, 200) if SMOKE else (8000, 2000)
MAX_ITER = 30 if SMOKE else 400


def make_molecules(n_molecules, n, rng):
    """Flattened ``[bonds (n * n) | positions (n * 3)]`` and energies."""
    bonds = np.zeros((n_molecules, n, n))
    for i in range(1, n):                       # a random tree: atom i bonds to an earlier one
        j = rng.integers(0, i, size=n_molecules)
        bonds[np.arange(n_molecules), i, j] = bonds[np.arange(n_molecules), j, i] = 1.0
    relabel = np.argsort(rng.random((n_molecules, n)), axis=1)   # no atom order left
    bonds = np.take_along_axis(np.take_along_axis(bonds, relabel[:, :, None], 1),
                               relabel[:, None, :], 2)
    pos = rng.normal(scale=0.8, size=(n_molecules, n, 3))
    dist = np.linalg.norm(pos[:, :, None] - pos[:, None, :], axis=-1)
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    energy = (np.sum(bonds * upper * (dist - 1.0) ** 2, axis=(1, 2))
              + 0.5 * np.sum(upper * np.exp(-dist ** 2), axis=(1, 2)))
    return np.hstack([bonds.reshape(n_molecules, n * n), pos.reshape(n_molecules, n * 3)]), \
        energy


def main():
    rng = np.random.default_rng(0)
    X_train, y_train = make_molecules(N_TRAIN, N_ATOMS, rng)
    X_test, y_test = make_molecules(N_TEST, N_ATOMS, rng)

    def hgb():
        return HistGradientBoostingRegressor(max_iter=MAX_ITER, learning_rate=0.1,
                                             random_state=0)

    bonded = {"bonds": "edge", "pos": "point"}
    # E(3) alone does not permute atoms: each atom's bond row is just n features of it
    rows = {"bonds": ("scalar", N_ATOMS), "pos": "point"}
    models = [
        ("plain", hgb(), None),
        ("E(3) frames", FrameAveragingRegressor(hgb(), group="E(3)", fields=rows), rows),
        ("S_n x E(3) frames + bonds", FrameAveragingRegressor(
            hgb(), group="S_n x E(3)", fields=bonded), bonded),
    ]
    print(f"{N_TRAIN} training / {N_TEST} test molecules of {N_ATOMS} atoms; "
          f"test energy variance {np.var(y_test):.4f}")
    print(f"{'model':28s} {'test MSE':>9s} {'E(3) error':>11s} {'relabel error':>14s}")
    with threadpool_limits(2):
        for name, model, _fields in models:
            model.fit(X_train, y_train)
            mse = float(np.mean((model.predict(X_test) - y_test) ** 2))
            e3 = check_equivariance(model, "E(3)", X_test, fields=rows,
                                    random_state=1)["max_error"]
            sn = check_equivariance(model, "S_n x E(3)", X_test, fields=bonded,
                                    random_state=2)["max_error"]
            print(f"{name:28s} {mse:9.4f} {e3:11.1e} {sn:14.1e}")


if __name__ == "__main__":
    main()
