"""Speed of local minimal frames: neighbour lists, canonical neighbourhoods, features.

Copper-like clusters of 13 atoms (random compact configurations, one species), every atom
with its 12 neighbours, as ``LocalFrameRegressor`` computes them. Reported per atom,
each stage as a ratio to one batched ``(atoms, 12, 3) @ (3, 3)`` matmul over the same
atoms (the least any local frame costs: rotating every neighbourhood once), all measured
in the same run (best of ``--repeats``).

Usage::

    python benchmarks/bench_local_frames.py            # 10^6 atoms
    python benchmarks/bench_local_frames.py --quick    # 10^5 atoms (or --atoms), once
    python benchmarks/bench_local_frames.py --cpu      # CPU time, for a shared machine

Every stage runs on one core, but the last: the nearest neighbourhoods again with
``n_jobs=2`` (joblib threads over chunks of atoms, wall time only).
"""

import argparse
import os
import sys
import time

import numpy as np

from mfa_sklearn import LocalFrameFeaturizer
from mfa_sklearn.local._environments import LocalFrames, local_group
from mfa_sklearn.local._neighbours import neighbour_lists

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import cpu_model


def clusters(n_systems, n_atoms, rng):
    """Compact random clusters: jittered points of a cubic grid, spacing 2.5."""
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pick = np.argsort(rng.random((n_systems, len(grid))), axis=1)[:, :n_atoms]
    pos = grid[pick] * 2.5 + rng.normal(scale=0.15, size=(n_systems, n_atoms, 3))
    Z = np.full((n_systems, n_atoms, 1), 29.0)
    return np.concatenate([pos, Z], axis=2)


def best(fn, repeats, clock=time.perf_counter):
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--atoms", type=float, default=1e6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu", action="store_true",
                        help="CPU seconds of this process instead of wall-clock seconds "
                             "(steadier on a shared machine; the stages are single-threaded)")
    args = parser.parse_args(argv)
    n_atoms = 13
    total = int(min(args.atoms, 1e5) if args.quick else args.atoms)
    repeats = 1 if args.quick else args.repeats
    rng = np.random.default_rng(0)
    X = clusters(total // n_atoms, n_atoms, rng)
    A = X.shape[0] * n_atoms
    fields = {"pos": "point", "Z": "scalar"}
    featurizer = LocalFrameFeaturizer(fields=fields, cutoff=6.0, n_neighbors=12).fit(X[:50])
    spec = featurizer.local_frames_
    _, group = local_group("E(3)")
    spec_nearest, spec_weighted = (
        LocalFrames(spec.layout, group, spec.cutoff, spec.n_neighbors, first_vector,
                    spec.row_rule, spec.cutoff_weight)
        for first_vector in ("nearest", "weighted"))
    pos = X[..., :3].copy()
    present = np.ones(X.shape[:2], dtype=bool)
    rows = rng.normal(size=(A, 12, 3))
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    stages = {
        "one (atoms, 12, 3) @ (3, 3) matmul": lambda: rows @ rotation,
        "neighbour lists": lambda: neighbour_lists(pos, present, cutoff=6.0, n_neighbors=12,
                                                   band=1e-8),
        "canonical neighbourhoods (weighted)": lambda: spec_weighted.environments(X),
        "canonical neighbourhoods (nearest)": lambda: spec_nearest.environments(X),
        "features (atom_features, defaults)": lambda: featurizer.atom_features(X),
    }
    if not args.cpu:    # wall time of both cores (CPU time would add the threads up)
        stages["canonical neighbourhoods (nearest), n_jobs=2"] = (
            lambda: spec_nearest.environments(X, n_jobs=2))
    clock = time.process_time if args.cpu else time.perf_counter
    results = {name: best(fn, repeats, clock) for name, fn in stages.items()}
    base = results["one (atoms, 12, 3) @ (3, 3) matmul"]
    print(f"# Local frames: {A} atoms of {n_atoms}-atom clusters, 12 neighbours; "
          f"{cpu_model()}, {os.cpu_count()} cores, best of {repeats}"
          f"{', CPU time' if args.cpu else ''}\n")
    print(f"| stage | {'CPU seconds' if args.cpu else 'seconds'} | atoms/s | x matmul |")
    print("|---|---|---|---|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.3f} | {A / seconds:.3g} | {seconds / base:.1f} |")


if __name__ == "__main__":
    main()
