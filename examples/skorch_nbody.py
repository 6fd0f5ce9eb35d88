"""An exactly E(3)-equivariant torch MLP through skorch, with minimal frames.

Five charged particles move under Coulomb forces; from their positions, velocities and
charges, predict where they will be 1000 steps later. The MLP predicts the
displacement ``y - (x + v t)`` beyond straight-line motion: a "vector" target, rotated
with the system but not translated. ``FrameAveraged`` canonicalizes every batch inside
the torch forward pass (on the GPU when there is one), calls the MLP once, and rotates
its output back, so the model is E(3)-equivariant to rounding, whatever its weights.

Run: ``python examples/skorch_nbody.py`` (about 20 s on 2 CPU cores);
``MFA_SMOKE=1`` for a seconds-long run.
"""

import os
import time

import numpy as np
import torch
from skorch import NeuralNetRegressor
from torch import nn

from mfa_sklearn import check_equivariance
from mfa_sklearn.datasets import NBODY_FIELDS, make_charged_nbody
from mfa_sklearn.torch import FrameAveraged

SMOKE = os.environ.get("MFA_SMOKE") == "1"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
n_train, n_test = (300, 100) if SMOKE else (6000, 1000)
n_steps, horizon = (300, 100) if SMOKE else (3000, 1000)
time_ahead = horizon * 1e-3                        # steps times dt

# X columns: 15 positions (5 particles x 3), 15 velocities, 5 charges; y: 15 positions.
X, y = make_charged_nbody(n_samples=n_train + n_test, n_steps=n_steps, horizon=horizon,
                          random_state=0)
drift = X[:, 0:15] + time_ahead * X[:, 15:30]      # straight-line motion x + v t
X = X.astype(np.float32)                           # skorch never casts: float32 in
displacement = (y - drift).astype(np.float32)
train, test = slice(0, n_train), slice(n_train, None)


class MLP(nn.Module):
    """A plain MLP on the 35 flat columns: knows nothing about rotations."""

    def __init__(self, n_in=35, n_out=15, hidden=128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, n_out))

    def forward(self, X):
        return self.net(X)


def net(module, **module_params):
    torch.manual_seed(0)
    return NeuralNetRegressor(
        module, **module_params, optimizer=torch.optim.Adam, lr=2e-3, batch_size=128,
        max_epochs=3 if SMOKE else 40, train_split=None, device=DEVICE, verbose=0)


models = {
    "MLP": net(MLP),
    "MLP + E(3) frames": net(FrameAveraged, module__module=MLP, module__group="E(3)",
                             module__fields=NBODY_FIELDS, module__target="vector"),
}

print(f"device: {DEVICE}")
print(f"{'model':24s} {'test MSE':>9s} {'E(3) equivariance error':>24s} {'fit s':>6s}")
baseline = np.mean((drift[test] - y[test]) ** 2)
print(f"{'straight line x + v t':24s} {baseline:9.4f} {'exact':>24s} {0:6.1f}")
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X[train], displacement[train])
    seconds = time.perf_counter() - start
    prediction = drift[test] + model.predict(X[test])
    mse = np.mean((prediction - y[test]) ** 2)
    # model(g.x) against g.model(x), a random rotation/reflection and translation per
    # sample; the float32 pipeline puts the frame-averaged error at float32 rounding.
    error = check_equivariance(model, "E(3)", X[test], fields=NBODY_FIELDS,
                               target="vector", random_state=1)["max_error"]
    print(f"{name:24s} {mse:9.4f} {error:24.1e} {seconds:6.1f}")
