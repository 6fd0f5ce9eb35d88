"""A torch energy model on local minimal frames, trained on energies and forces.

Cu13 clusters from Langevin molecular dynamics under ASE's EMT potential (or, without
ASE, Morse clusters with analytic forces). ``LocalFrameAveraged`` gives every atom the
canonical form of its 12 nearest neighbours (minimal frames under S_12 x O(3)), a small
MLP maps each atom's invariant features to an atomic energy, the atomic energies add up
to the cluster's energy, and the forces are ``-dE/dx`` by autograd through the frames.
The energy is exactly invariant and the forces exactly equivariant under rotations,
reflections, translations and relabellings of the atoms, whatever the MLP's weights.

Trained three times on the same data: as a skorch ``NeuralNetRegressor`` (criterion
``EnergyForceLoss``, y packed by ``pack_targets``), in a plain torch loop, and by
``fit_energy_forces`` (features and their derivatives cached once, then full-batch
L-BFGS on the library's ``AtomMLP`` in float64, for 20 s of CPU time).

Run: ``python examples/atoms_torch.py`` (about 75 s of CPU time; torch's two OpenMP
threads slow down many-fold on a loaded machine, where ``OMP_NUM_THREADS=1`` helps);
``MFA_SMOKE=1`` for a seconds-long run. It printed (800 training and 300 test clusters,
25 epochs, the density encoding)::

    model                        E MAE meV/atom F MAE eV/A (comp)   fit s
    mean energy, zero forces              42.85            0.383     0.0
    skorch NeuralNetRegressor              0.87            0.018    12.0
    plain torch loop                       0.75            0.017    11.8
    fit_energy_forces (L-BFGS)             0.34            0.010    56.5
    S_n x E(3) errors in float64: energy 5.8e-15, forces 1.5e-14

(fit times in wall seconds on a 2-core machine, one torch thread, ``OMP_NUM_THREADS=1``;
the last row is the cache, 20 CPU seconds of L-BFGS and the exact solve of the output
layer, which here costs about as much as the training it follows).
"""

import os
import time

import numpy as np
import torch
from skorch import NeuralNetRegressor
from torch import nn

from mfa_sklearn import check_equivariance
from mfa_sklearn.torch import (
    AtomMLP,
    EnergyForceLoss,
    LocalFrameAveraged,
    fit_energy_forces,
    pack_targets,
)

SMOKE = os.environ.get("MFA_SMOKE") == "1"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
n_train, n_test = (100, 30) if SMOKE else (800, 300)
epochs = 2 if SMOKE else 25
FORCE_WEIGHT = 10.0


def morse_clusters(n_samples, n_atoms=13, random_state=0):
    """Jittered 13-atom clusters with Morse energies (eV) and forces (eV/A)."""
    rng = np.random.default_rng(random_state)
    pos = rng.normal(scale=1.6, size=(n_samples, n_atoms, 3))
    diff = pos[:, :, None] - pos[:, None, :]
    r = np.linalg.norm(diff, axis=-1) + np.eye(n_atoms)
    decay = np.exp(-1.6 * (r - 2.5))
    pair = 0.3 * (decay ** 2 - 2 * decay) * (1 - np.eye(n_atoms))
    energy = pair.sum(axis=(1, 2)) / 2
    dpair = 0.3 * (-2 * 1.6 * decay ** 2 + 2 * 1.6 * decay) * (1 - np.eye(n_atoms))
    forces = -np.sum((dpair / r)[..., None] * diff, axis=2)
    X = np.concatenate([pos.reshape(n_samples, -1), np.full((n_samples, n_atoms), 29.0)],
                       axis=1)
    return X, energy, forces.reshape(n_samples, -1), {"pos": "point", "Z": "scalar"}


def load():
    try:
        from mfa_sklearn.datasets import make_emt_clusters
        data = make_emt_clusters(n_train + n_test, elements="Cu", random_state=0,
                                 n_equilibration=100 if SMOKE else 400)
        return "EMT Cu13", data.X, data.energy, data.forces, data.fields
    except ImportError:      # ASE is an optional extra
        return ("Morse clusters (no ASE)",) + morse_clusters(n_train + n_test)


name, X, energy, forces, fields = load()
X = X.astype(np.float32)                            # float32 in; frames in float64
n_max = X.shape[1] // 4                             # columns: 3 n_max positions, n_max Z
n_atoms = np.sum(~np.isnan(X[:, 0:3 * n_max:3]), axis=1)
per_atom = np.mean(energy[:n_train] / n_atoms[:n_train])
y = pack_targets(energy - per_atom * n_atoms, forces)   # energies relative to n * mean
train, test = slice(0, n_train), slice(n_train, None)


class StandardizedMLP(nn.Module):
    """Standardized features -> 2 x 64 SiLU -> atomic energy. Knows nothing about
    rotations; ``n_features_in`` is filled in by LocalFrameAveraged."""

    def __init__(self, n_features_in, shift=0.0, scale=1.0, hidden=64):
        super().__init__()
        self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.net = nn.Sequential(nn.Linear(n_features_in, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, features):
        return self.net((features - self.shift) / self.scale)


MODEL = dict(fields=fields, cutoff=5.0, n_neighbors=12)
# feature statistics of the training atoms, for the MLP's input scaling
features = LocalFrameAveraged(nn.Identity(), **MODEL).atom_features(
    torch.tensor(X[train])).numpy()
shift, scale = features.mean(axis=0), features.std(axis=0) + 1e-6


def report(label, model, seconds):
    model.eval()
    dtype = next(model.parameters()).dtype
    e, f = model.energy_and_forces(torch.tensor(X[test], dtype=dtype, device=DEVICE))
    e, f = e.cpu().numpy(), f.cpu().numpy()
    e_err = np.mean(np.abs(e - y[test, 0]) / n_atoms[test]) * 1000
    f_err = np.nanmean(np.abs(f - y[test, 1:]))
    print(f"{label:28s} {e_err:14.2f} {f_err:16.3f} {seconds:7.1f}")
    return model


print(f"{name}: {n_train} training / {n_test} test clusters, device {DEVICE}")
print(f"{'model':28s} {'E MAE meV/atom':>14s} {'F MAE eV/A (comp)':>16s} {'fit s':>7s}")
zero_e = np.mean(np.abs(y[test, 0] - y[train, 0].mean()) / n_atoms[test]) * 1000
print(f"{'mean energy, zero forces':28s} {zero_e:14.2f} "
      f"{np.nanmean(np.abs(y[test, 1:])):16.3f} {0:7.1f}")

# 1. skorch: the module returns (energy, forces), y packs both, the loss weighs them
torch.manual_seed(0)
net = NeuralNetRegressor(
    LocalFrameAveraged, module__atom_module=StandardizedMLP, module__atom_module__shift=shift,
    module__atom_module__scale=scale, **{f"module__{k}": v for k, v in MODEL.items()},
    module__return_forces=True, criterion=EnergyForceLoss,
    criterion__force_weight=FORCE_WEIGHT, optimizer=torch.optim.Adam, lr=3e-3,
    batch_size=100, max_epochs=epochs, train_split=None, device=DEVICE, verbose=0)
start = time.perf_counter()
net.fit(X[train], y[train])
skorch_model = report("skorch NeuralNetRegressor", net.module_, time.perf_counter() - start)

# 2. a plain loop over mini-batches
torch.manual_seed(0)
model = LocalFrameAveraged(StandardizedMLP(shift.size, shift, scale), return_forces=True,
                           **MODEL).to(DEVICE)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = EnergyForceLoss(force_weight=FORCE_WEIGHT)
X_train = torch.tensor(X[train], device=DEVICE)
y_train = torch.tensor(y[train], device=DEVICE)
start = time.perf_counter()
for _ in range(epochs):
    model.train()
    for batch in torch.randperm(n_train).split(100):
        loss = loss_fn(model(X_train[batch]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
report("plain torch loop", model, time.perf_counter() - start)

# 3. fit_energy_forces: features and their Jacobians cached once, then full-batch
# L-BFGS on the library's AtomMLP (standardized features, energy offset) in float64
torch.manual_seed(0)
fast = LocalFrameAveraged(AtomMLP, **MODEL).double().to(DEVICE)
start = time.perf_counter()
fit_energy_forces(fast, X[train].astype(np.float64), y[train, 0], y[train, 1:],
                  cpu_seconds=2.0 if SMOKE else 20.0)
report("fit_energy_forces (L-BFGS)", fast, time.perf_counter() - start)

# Exactness: E(g.x) = E(x) and F(g.x) = g.F(x) for a random rotation or reflection,
# translation and relabelling of the atoms per cluster (float64 copy of the model)
exact = skorch_model.double().eval().cpu()
X64 = X[test].astype(np.float64)
e_error = check_equivariance(lambda A: exact.energy(torch.tensor(A)).detach().numpy(),
                             "S_n x E(3)", X64, fields=fields, target="invariant",
                             random_state=1)["max_error"]
f_error = check_equivariance(lambda A: exact.forces(torch.tensor(A)).numpy(),
                             "S_n x E(3)", X64, fields=fields,
                             target={"F": "vector"}, random_state=2)["max_error"]
print(f"S_n x E(3) errors in float64: energy {e_error:.1e}, forces {f_error:.1e}")
