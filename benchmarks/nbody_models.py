"""Torch backbones for the n-body benchmark (``bench_nbody.py``).

* :class:`FlatMLP`: a plain MLP on the 35 flat columns (15 positions, 15 velocities,
  5 charges) predicting the 15 displacement columns; the skorch row of the table.
* :class:`PairGNN`: a small *non-equivariant* message-passing network over the 5
  particles (fully connected, dense ``(B, n, n, F)`` tensors, so one batched matmul per
  layer). Node features: position, velocity, charge, speed. Edge features: relative
  position and velocity, distance, 1/distance, charge product and the Coulomb term
  ``q_i q_j (x_i - x_j) / r^3``. It sees raw coordinates, so it is not
  rotation-equivariant by itself; wrapped in
  ``mfa_sklearn.torch.FrameAveraged(group="E(3)", target="vector")`` it is exactly
  E(3)-equivariant (and, as message passing, permutation-equivariant).
* :func:`train_torch`: a plain Adam loop with a wall-clock budget, early stopping on
  the validation split and the best validation state restored.
"""

import copy
import time

import numpy as np
import torch
from torch import nn


class FlatMLP(nn.Module):
    """Plain MLP on the flat columns: knows nothing about rotations or particles."""

    def __init__(self, n_in=35, n_out=15, hidden=256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, n_out))

    def forward(self, X):
        return self.net(X)


def _mlp(n_in, hidden, n_out):
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, n_out))


class PairGNN(nn.Module):
    """Fully connected message passing over ``n`` particles of a flat n-body row.

    Parameters
    ----------
    n_particles : int, default=5
    hidden : int, default=64
        Width of node states and messages.
    n_layers : int, default=4
    coulomb : bool, default=True
        Add the Coulomb edge feature ``q_i q_j (x_i - x_j) / r^3`` (the initial force
        contribution, a physics prior; its norm is softly capped).
    """

    n_edge = 13

    def __init__(self, n_particles=5, hidden=64, n_layers=4, coulomb=True):
        super().__init__()
        self.n = n_particles
        self.coulomb = coulomb
        self.embed = _mlp(8, hidden, hidden)
        self.edge_embed = _mlp(self.n_edge, hidden, hidden)
        self.messages = nn.ModuleList(
            [_mlp(3 * hidden, hidden, hidden) for _ in range(n_layers)])
        self.updates = nn.ModuleList(
            [_mlp(2 * hidden, hidden, hidden) for _ in range(n_layers)])
        self.head = _mlp(hidden, hidden, 3)
        mask = 1.0 - torch.eye(n_particles)
        self.register_buffer("mask", mask[None, :, :, None])

    def features(self, X):
        n = self.n
        B = X.shape[0]
        pos = X[:, : 3 * n].reshape(B, n, 3)
        vel = X[:, 3 * n: 6 * n].reshape(B, n, 3)
        q = X[:, 6 * n: 7 * n].reshape(B, n, 1)
        speed = torch.linalg.vector_norm(vel, dim=-1, keepdim=True)
        nodes = torch.cat([pos, vel, q, speed], dim=-1)                 # (B, n, 8)
        rel = pos[:, :, None, :] - pos[:, None, :, :]                   # x_i - x_j
        relv = vel[:, :, None, :] - vel[:, None, :, :]
        eye = torch.eye(n, dtype=X.dtype, device=X.device)[None, :, :, None]
        r = torch.linalg.vector_norm(rel, dim=-1, keepdim=True) + eye  # 1 on diagonal
        qq = q[:, :, None, :] * q[:, None, :, :]
        inv = 1.0 / (r + 0.05)
        coul = qq * rel * inv ** 3
        if not self.coulomb:
            coul = torch.zeros_like(coul)
        coul = coul / (1.0 + torch.linalg.vector_norm(coul, dim=-1, keepdim=True) / 10.0)
        edges = torch.cat([rel, relv, r, inv, qq, coul, torch.zeros_like(r)], dim=-1)
        return nodes, edges, pos

    def forward(self, X):
        nodes, edges, _ = self.features(X)
        n = self.n
        h = self.embed(nodes)                                           # (B, n, H)
        e = self.edge_embed(edges)                                      # (B, n, n, H)
        for message, update in zip(self.messages, self.updates):
            hi = h[:, :, None, :].expand(-1, -1, n, -1)
            hj = h[:, None, :, :].expand(-1, n, -1, -1)
            m = message(torch.cat([hi, hj, e], dim=-1)) * self.mask
            h = h + update(torch.cat([h, m.sum(dim=2)], dim=-1))
        return self.head(h).reshape(X.shape[0], 3 * n)


class RotationAveraged(nn.Module):
    """A backbone averaged over a few fixed rotations of its (canonical) input.

    ``forward(X) = mean_j R_j^T f(R_j X)`` over ``n_rotations`` fixed rotations (the
    identity and Haar draws of a fixed seed), acting on the positions and velocities of
    a flat n-body row (charges unchanged) and rotated back on the displacement output.
    In training mode each sample gets one of the rotations at random (an augmentation
    inside the canonical frame, at the cost of one backbone call); in eval mode the
    output is the average over all of them. Inside ``FrameAveraged`` the result stays
    exactly equivariant: the rotations act on canonical inputs, a function of them.

    Parameters
    ----------
    backbone : nn.Module
        Maps flat rows (B, 7 n) to displacements (B, 3 n).
    n_rotations : int, default=4
    n_particles : int, default=5
    seed : int, default=0
    """

    def __init__(self, backbone, n_rotations=4, n_particles=5, seed=0):
        super().__init__()
        self.backbone, self.n = backbone, n_particles
        gen = torch.Generator().manual_seed(seed)
        Q, R = torch.linalg.qr(torch.randn(n_rotations, 3, 3, generator=gen,
                                              dtype=torch.float64))
        Q = Q * torch.sign(torch.diagonal(R, dim1=1, dim2=2))[:, None, :]
        Q = Q * torch.sign(torch.linalg.det(Q))[:, None, None]      # rotations only
        Q[0] = torch.eye(3, dtype=torch.float64)
        self.register_buffer("rotations", Q)

    def _rotate(self, X, R):
        """Positions and velocities of flat rows X (B, 7 n) times R (B, 3, 3)."""
        n, B = self.n, X.shape[0]
        moved = X[:, :6 * n].reshape(B, 2 * n, 3) @ R
        return torch.cat([moved.reshape(B, 6 * n), X[:, 6 * n:]], dim=1)

    def forward(self, X):
        B, n, K = X.shape[0], self.n, len(self.rotations)
        R = self.rotations.to(X.dtype)
        if self.training:
            R = R[torch.randint(K, (B,), device=X.device)]
            out = self.backbone(self._rotate(X, R)).reshape(B, n, 3)
            return (out @ R.transpose(1, 2)).reshape(B, 3 * n)
        copies = self._rotate(X.repeat(K, 1), R.repeat_interleave(B, dim=0))
        out = self.backbone(copies).reshape(K, B, n, 3) @ R.transpose(1, 2)[:, None]
        return out.mean(dim=0).reshape(B, 3 * n)


def train_torch(model, X_train, y_train, X_val, y_val, *, seconds=120.0, lr=1e-3,
                weight_decay=1e-6, batch_size=100, max_epochs=100000, patience=200,
                seed=0, loss="mse", log=None, clock=time.perf_counter):
    """Train ``model`` with Adam under a time budget; keep the best val state.

    The learning rate follows a cosine schedule over the time budget (by elapsed
    fraction, so it anneals whatever the speed of the machine). ``clock`` measures the
    budget: wall-clock time by default, ``time.process_time`` for CPU time (a fair
    budget on a shared machine). Returns a dict with the best validation MSE, the epoch
    it was reached, epochs run and training seconds (of ``clock``).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    Xt = torch.as_tensor(X_train, dtype=torch.float32)
    yt = torch.as_tensor(y_train, dtype=torch.float32)
    Xv = torch.as_tensor(X_val, dtype=torch.float32)
    yv = torch.as_tensor(y_val, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.MSELoss() if loss == "mse" else nn.L1Loss()
    best = (np.inf, -1, None)
    start = clock()
    epoch = 0
    for epoch in range(1, max_epochs + 1):
        elapsed = clock() - start
        if elapsed > seconds:
            break
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + np.cos(np.pi * min(elapsed / seconds, 1.0)))
        model.train()
        order = torch.as_tensor(rng.permutation(len(Xt)))
        for i in range(0, len(Xt), batch_size):
            idx = order[i: i + batch_size]
            opt.zero_grad()
            out = loss_fn(model(Xt[idx]), yt[idx])
            out.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = float(torch.mean((predict_torch(model, Xv, as_numpy=False) - yv) ** 2))
        if val < best[0]:
            best = (val, epoch, copy.deepcopy(model.state_dict()))
        if log is not None and epoch % 25 == 0:
            log(f"  epoch {epoch:5d}  {clock() - start:6.1f}s  "
                f"val MSE {val:.5f}  best {best[0]:.5f} @ {best[1]}")
        if epoch - best[1] > patience:
            break
    seconds_used = clock() - start
    if best[2] is not None:
        model.load_state_dict(best[2])
    model.eval()
    return {"val_mse": best[0], "best_epoch": best[1], "epochs": epoch,
            "seconds": seconds_used}


def predict_torch(model, X, *, batch_size=2000, as_numpy=True):
    """Batched no-grad forward pass; float32 in, numpy float64 out by default."""
    X = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        out = torch.cat([model(X[i: i + batch_size]) for i in range(0, len(X), batch_size)])
    return out.double().numpy() if as_numpy else out
