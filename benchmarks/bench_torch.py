"""Cost of minimal frames on the torch path (``mfa_sklearn.torch.FrameAveraged``).

Two measurements, each a ratio taken in the same run on the same data:

1. Canonicalization throughput, ``B`` clouds of ``n = 5`` points in 3-D (float32 in,
   frames in float64), for O(3) and E(3), and for S_n x E(3) on B / 10 clouds (its
   row order is decided on the host, so a GPU run includes the round trip):
   the numpy path ``MinimalFrameCanonicalizer(group).fit(X).transform(X)`` against the
   torch path ``FrameAveraged(...).canonicalize(X)`` with frames in float64 ("64") and
   in float32 ("32", ``frame_dtype="float32"``) on the CPU (target: within 2x of numpy)
   and, where available, on CUDA (with ``torch.cuda.synchronize``).
2. One training epoch (Adam, MSE, shuffled mini-batches) of an MLP on n-body-shaped
   data (35 columns: positions, velocities, charges; 15 outputs, a "vector" target),
   frame-averaged with E(3) against the bare MLP (target on GPU: <= 1.3x): frames
   computed at every step (in float64, then float32), and frames computed once before
   the epoch (``canonicalize``; the steps call ``from_canonical``).

Times are the best of ``--repeats`` runs after one warm-up (``time.perf_counter``).

Usage::

    python benchmarks/bench_torch.py            # B = 1 000 000, under 3 minutes
    python benchmarks/bench_torch.py --quick    # smoke test in seconds, nothing saved

Outputs: ``benchmarks/results/bench_torch.md`` (the tables) and ``bench_torch.png``.
"""

import argparse
import os
import platform
import time

import numpy as np
import torch
from machine import cpu_model
from torch import nn

import mfa_sklearn
from mfa_sklearn import MinimalFrameCanonicalizer
from mfa_sklearn.datasets import NBODY_FIELDS
from mfa_sklearn.torch import FrameAveraged

GROUPS = ("O(3)", "E(3)", "S_n x E(3)")
#: clouds per group, as a fraction of B (the permutation frames cost about 10x more)
FRACTION = {"S_n x E(3)": 10}


def devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def best_time(fn, repeats, device="cpu"):
    """Best wall time of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def machine_info():
    lines = [f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} usable cores, "
             f"torch threads {torch.get_num_threads()}",
             f"Python {platform.python_version()}, numpy {np.__version__}, torch "
             f"{torch.__version__}, mfa_sklearn {mfa_sklearn.__version__}"]
    if torch.cuda.is_available():
        lines.append(f"GPU: {torch.cuda.get_device_name()}")
    return lines


def bench_canonicalization(B, repeats):
    """Rows (group, device, seconds, samples per second, ratio to numpy)."""
    X_all = np.random.default_rng(0).standard_normal((B, 5 * 3)).astype(np.float32)
    rows = []
    for group in GROUPS:
        X = X_all[:B // FRACTION.get(group, 1)]
        canonicalizer = MinimalFrameCanonicalizer(group).fit(X[:10])
        numpy_s = best_time(lambda: canonicalizer.transform(X), repeats)
        rows.append((group, "numpy", numpy_s, len(X) / numpy_s, 1.0))
        for device in devices():
            Xt = torch.from_numpy(X).to(device)
            for precision in ("float64", "float32"):
                wrapper = FrameAveraged(nn.Identity(), group=group, frame_dtype=precision)
                with torch.no_grad():
                    seconds = best_time(lambda: wrapper.canonicalize(Xt), repeats, device)
                rows.append((group, f"torch {device} {precision[-2:]}", seconds,
                             len(X) / seconds, seconds / numpy_s))
    return rows


def mlp(hidden):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(35, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                         nn.SiLU(), nn.Linear(hidden, 15))


def train_epoch(model, X, y, batch_size, frame=None):
    """One epoch of Adam on the MSE over shuffled mini-batches. With a ``frame``, X holds
    canonical inputs computed once and the steps call ``model.from_canonical``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(X), device=X.device)
    for start in range(0, len(X), batch_size):
        batch = order[start:start + batch_size]
        optimizer.zero_grad()
        out = model(X[batch]) if frame is None else model.from_canonical(X[batch],
                                                                         frame[batch])
        loss = torch.mean((out - y[batch]) ** 2)
        loss.backward()
        optimizer.step()


def bench_epoch(n_samples, batch_size, hidden, repeats):
    """Rows (device, bare seconds, then seconds and ratio to bare for: E(3) frames in
    float64 at every step, in float32 at every step, and in float64 computed once
    before the epoch, plus the seconds of that one canonicalization)."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n_samples, 35)).astype(np.float32)
    X[:, 30:] = np.sign(X[:, 30:])                 # charges +-1
    y = rng.standard_normal((n_samples, 15)).astype(np.float32)
    rows = []
    for device in devices():
        Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
        bare = mlp(hidden).to(device)
        framed = {precision: FrameAveraged(mlp(hidden), group="E(3)", fields=NBODY_FIELDS,
                                           target="vector", frame_dtype=precision).to(device)
                  for precision in ("float64", "float32")}
        bare_s = best_time(lambda: train_epoch(bare, Xt, yt, batch_size), repeats, device)
        row = [device, bare_s]
        for model in framed.values():
            seconds = best_time(lambda: train_epoch(model, Xt, yt, batch_size), repeats,
                                device)
            row += [seconds, seconds / bare_s]
        canonical = {}

        def canonicalize_once():
            with torch.no_grad():
                canonical["Xc"], canonical["frame"] = framed["float64"].canonicalize(Xt)

        once_s = best_time(canonicalize_once, repeats, device)
        seconds = best_time(lambda: train_epoch(framed["float64"], canonical["Xc"], yt,
                                                batch_size, canonical["frame"]),
                            repeats, device)
        rows.append(tuple(row + [seconds, seconds / bare_s, once_s]))
    return rows


def save(lines, canonicalization, out_dir):
    """The printed tables as ``bench_torch.md`` and the throughputs as
    ``bench_torch.png`` in ``out_dir``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "bench_torch.md"), "w") as f:
        f.write("# Torch path: `python benchmarks/bench_torch.py`\n\n```text\n"
                + "\n".join(lines) + "\n```\n")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = [f"{group}\n{path}" for group, path, *_ in canonicalization]
    ax.bar(range(len(labels)), [rate for *_, rate, _ in canonicalization])
    ax.set_xticks(range(len(labels)), labels, fontsize=6)
    ax.set_yscale("log")
    ax.set_ylabel("clouds per second")
    ax.set_title("canonicalization throughput, 5 points in 3-D")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "bench_torch.png"), dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="seconds-long smoke run (nothing saved)")
    parser.add_argument("--samples", type=int, default=None,
                        help="clouds to canonicalize (default 1 000 000; quick 10 000)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out-dir", default=os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "results"))
    args = parser.parse_args()
    B = args.samples or (10_000 if args.quick else 1_000_000)
    repeats = args.repeats or (1 if args.quick else 3)
    epoch = dict(n_samples=2_048, batch_size=256, hidden=64) if args.quick else \
        dict(n_samples=50_000, batch_size=1_024, hidden=256)
    lines = []

    def say(line=""):
        print(line, flush=True)
        lines.append(line)

    for line in machine_info():
        say(line)
    say(f"\n1. Canonicalization, B = {B:,} clouds of 5 points in 3-D, float32 in, "
        f"frames in float64 (64) or float32 (32) (best of {repeats})")
    say(f"{'group':10s} {'path':14s} {'seconds':>8s} {'clouds/s':>12s} {'vs numpy':>9s}")
    canonicalization = bench_canonicalization(B, repeats)
    for group, path, seconds, rate, ratio in canonicalization:
        say(f"{group:10s} {path:14s} {seconds:8.3f} {rate:12,.0f} {ratio:8.2f}x")
    say("target: torch cpu <= 2x numpy")

    say(f"\n2. One training epoch, {epoch['n_samples']:,} samples, batch "
        f"{epoch['batch_size']}, MLP 35-{epoch['hidden']}-{epoch['hidden']}-15, "
        f"Adam (best of {repeats})")
    say(f"{'device':6s} {'bare s':>8s} {'E(3) f64 s':>11s} {'ratio':>7s} "
        f"{'E(3) f32 s':>11s} {'ratio':>7s} {'once f64 s':>11s} {'ratio':>7s} "
        f"{'canon. s':>9s}")
    for device, bare, f64, r64, f32, r32, once, r_once, canon in bench_epoch(
            repeats=repeats, **epoch):
        say(f"{device:6s} {bare:8.3f} {f64:11.3f} {r64:6.2f}x {f32:11.3f} {r32:6.2f}x "
            f"{once:11.3f} {r_once:6.2f}x {canon:9.4f}")
    say("once: frames computed before the epoch (canonicalize), the steps call "
        "from_canonical; canon. s: that one canonicalization")
    say("target: ratio <= 1.3x on GPU")
    if not args.quick:
        save(lines, canonicalization, args.out_dir)


if __name__ == "__main__":
    main()
