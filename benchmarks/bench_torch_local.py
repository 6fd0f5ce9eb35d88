"""Throughput of local frames in torch (``mfa_sklearn.torch.LocalFrameAveraged``).

``B`` clusters of 13 atoms (jittered icosahedra with a centre, two species, random
orientations), 12 neighbours per atom, a two-layer 64-wide tanh atom MLP, float32 in
(frames in float64, features in float32). Atoms per second for

* ``energy``: forward, energies only;
* ``energy + forces``: forward and the backward pass ``-dE/dx``;
* ``train step``: energies and forces with the graph kept (``create_graph``), the
  :class:`~mfa_sklearn.torch.EnergyForceLoss` and its backward to the weights;

and where the time of a forward pass goes: the neighbourhoods (neighbour lists and
host decisions, relative positions, the product group's frames), the features, and
the atom MLP. Times are the best of ``--repeats`` runs after a warm-up
(``time.perf_counter``; ``torch.cuda.synchronize`` on CUDA).

Usage::

    python benchmarks/bench_torch_local.py              # B = 2000, about a minute
    python benchmarks/bench_torch_local.py --quick      # seconds
    python benchmarks/bench_torch_local.py --threads 1  # torch intra-op threads
    python benchmarks/bench_torch_local.py --device cuda --systems 20000

Callable from other benchmarks: :func:`measure` returns the table's rows.
"""

import argparse
import platform
import time

import numpy as np
import torch
from machine import cpu_model
from torch import nn

from mfa_sklearn.torch import EnergyForceLoss, LocalFrameAveraged, pack_targets

FIELDS = {"pos": "point", "Z": "scalar"}


def icosahedral_clusters(B, random_state=0, jitter=0.1, dtype=np.float32):
    """``B`` jittered 13-atom icosahedra with a centre (neighbour distance 2.5), two
    species, random orientations and offsets; (B, 13, 4): x, y, z, Z."""
    rng = np.random.default_rng(random_state)
    phi = (1 + 5 ** 0.5) / 2
    cyclic = [(0.0, a, b * phi) for a in (-1, 1) for b in (-1, 1)]
    shell = np.array([p for c in cyclic for p in (c, c[1:] + c[:1], c[2:] + c[:2])])
    sites = np.concatenate([np.zeros((1, 3)), shell * 2.5 / np.sqrt(1 + phi ** 2)])
    rotation = np.linalg.qr(rng.normal(size=(B, 3, 3)))[0]
    pos = (sites + jitter * rng.normal(size=(B, 13, 3))) @ rotation
    pos += rng.normal(scale=5.0, size=(B, 1, 3))
    species = rng.choice([29.0, 79.0], size=(B, 13, 1))
    return np.concatenate([pos, species], axis=2).astype(dtype)


class AtomMLP(nn.Module):
    """Two hidden layers of 64 tanh units, one atomic energy per atom."""

    def __init__(self, n_features_in, hidden=64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features_in, hidden), nn.Tanh(),
                                 nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, 1))

    def forward(self, features):
        return self.net(features)


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def best_time(fn, repeats, device):
    """Best wall time of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    _sync(device)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def measure(B=2000, repeats=3, device="cpu"):
    """Rows ``(what, seconds, atoms per second)`` of one device."""
    torch.manual_seed(0)
    model = LocalFrameAveraged(AtomMLP, fields=FIELDS, cutoff=6.0, n_neighbors=12)
    model = model.to(device)
    X = torch.tensor(icosahedral_clusters(B), device=device)
    atoms = B * 13
    y = torch.tensor(pack_targets(np.zeros(B), np.zeros((B, 13, 3))), device=device)
    loss_fn = EnergyForceLoss(force_weight=10.0)

    def energy():
        with torch.no_grad():
            model.eval().energy(X)

    def energy_forces():
        model.eval().energy_and_forces(X)

    def train_step():
        model.train()
        model.zero_grad()
        loss_fn(model.energy_and_forces(X, create_graph=True), y).backward()

    envs = model.environments(X)
    features = envs.features(model.encoding, model.n_radial, dtype=X.dtype)

    def neighbourhoods():
        model.environments(X)

    def featurize():
        envs.features(model.encoding, model.n_radial, dtype=X.dtype)

    def mlp():
        with torch.no_grad():
            model.atom_module(features)

    rows = []
    for what, fn in [("energy (forward)", energy),
                     ("energy + forces (forward + backward)", energy_forces),
                     ("train step (E + F loss, backward to weights)", train_step),
                     ("  of which: neighbourhoods + frames", neighbourhoods),
                     ("  of which: features", featurize),
                     ("  of which: atom MLP forward", mlp)]:
        seconds = best_time(fn, repeats, device)
        rows.append((what, seconds, atoms / seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--systems", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="200 systems, one repeat")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="where to run (all: the CPU, then CUDA where present)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    B, repeats = (200, 1) if args.quick else (args.systems, args.repeats)
    print(f"LocalFrameAveraged: {B} clusters x 13 atoms, 12 neighbours, 2 x 64 tanh MLP, "
          f"float32 in; {cpu_model()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, Python {platform.python_version()}")
    devices = (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
               if args.device == "all" else [args.device])
    for device in devices:
        print(f"\n{device}:\n{'':46} {'seconds':>9} {'atoms/s':>11}")
        for what, seconds, rate in measure(B, repeats, device):
            print(f"{what:46} {seconds:9.3f} {rate:11.3g}")


if __name__ == "__main__":
    main()
