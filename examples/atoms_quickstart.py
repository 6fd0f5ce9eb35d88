"""Energies and forces of metal clusters with local minimal frames, in a dozen lines.

EMT copper clusters of 6 to 13 atoms (molecular dynamics at 300-900 K) in one padded
array. One model sums atomic energies through an exact sum kernel; another predicts
each atom's force in its own canonical frame and maps it back. Both are exactly
symmetric under rotations, reflections, translations and relabellings of the atoms,
which the script checks. Needs ASE (``pip install "mfa_sklearn[atoms]"``); run with
``MFA_SMOKE=1`` for a seconds-long check.
"""

import os

import numpy as np
from sklearn.kernel_ridge import KernelRidge

from mfa_sklearn import LocalFrameRegressor, check_equivariance
from mfa_sklearn.datasets import make_emt_clusters

SMOKE = os.environ.get("MFA_SMOKE") == "1"
n_train, n_test = (80, 40) if SMOKE else (1500, 500)

data = make_emt_clusters(n_train + n_test, elements="Cu", n_atoms=(6, 13), random_state=0)
X, energy, forces, atoms = data.X, data.energy, data.forces, data.n_atoms
train, test = slice(0, n_train), slice(n_train, None)

energies = LocalFrameRegressor(KernelRidge(kernel="rbf", gamma=3e-3, alpha=1e-4),
                               fields=data.fields, cutoff=6.0, n_neighbors=12)
energies.fit(X[train], energy[train])
force_field = LocalFrameRegressor(KernelRidge(kernel="rbf", gamma=1e-2, alpha=1e-3),
                                  target="vector", fields=data.fields, cutoff=6.0)
force_field.fit(X[train][:600], forces[train][:600])

E_mae = np.mean(np.abs(energies.predict(X[test]) - energy[test]) / atoms[test]) * 1000
F_mae = np.nanmean(np.abs(force_field.predict(X[test]) - forces[test]))
zero = np.nanmean(np.abs(forces[test]))
print(f"energy MAE {E_mae:.2f} meV/atom (spread {1000 * np.std(energy / atoms):.1f})")
print(f"force MAE {F_mae:.3f} eV/A per component (predicting zero: {zero:.3f})")
symmetry = "S_n x E(3)"
e_err = check_equivariance(energies, symmetry, X[test][:20], random_state=0)["max_error"]
f_err = check_equivariance(force_field, symmetry, X[test][:20], random_state=0)["max_error"]
print(f"equivariance error: energies {e_err:.1e}, forces {f_err:.1e} (relative)")
