"""Canonicalization cost of minimal frames for O(d), SO(d), E(d) and SE(d).

Two workloads, ``B`` random clouds each: ``n = 5, d = 3`` and ``n = 128, d = 6``.
For every group the time per sample (best of several repeats after one warm-up,
``time.perf_counter``) is measured for

(a) ``MinimalFrameCanonicalizer(group=...).fit(X).transform(X)`` on 2-D float64
    ``X`` of shape ``(B, n * d)``: the number users see;
(b) the floor: one batched matmul ``x @ M``, ``x`` of shape ``(B, n, d)`` and ``M`` of
    shape ``(B, d, d)`` (numpy), which any canonicalization must at least do;
(c) PCA frames of Puny et al.: ``group.frame(x, method="pca")`` plus ``to_canonical``
    of all ``2^d`` (``2^(d-1)`` for SO/SE) elements, in chunks of samples so that the
    ``K``-fold canonical inputs fit in memory;
(d) a straightforward per-sample implementation: a Python loop that centres each
    cloud (E/SE), takes the numpy QR of the ``d x n`` transposed cloud (frame of its
    first ``d`` rows, signs so that ``diag(R) > 0``, last vector flipped for det -1 in
    SO/SE) and maps the cloud into that frame; timed on ``--loop-samples`` samples.

It also reports the peak extra memory of (a), traced with ``tracemalloc`` (numpy
reports its allocations there), relative to the size of ``X``.

A second table times (a) and (b) for U(3), SU(3) (complex rows, given to the
transformer as real blocks), O(1,3), SO(1,3) (``n = 16`` massive 4-momenta) and GL(3),
SL(3), Aff(3).

A third table times canonicalization per graph (``MinimalFrameCanonicalizer`` with
group ``"graph"`` on flattened adjacency matrices) for Erdos-Renyi ``G(n, 0.5)``,
``n = 128`` (target 2 ms per graph) and dense weighted graphs ``round(z z^T, 3)``,
``n = 24`` (target 10 ms), and S_n x O(3) on clouds of ``n = 32`` points, ``B = 10 000``
(target 50 µs per sample).

A fourth table times ``n_jobs=1`` against ``n_jobs=2`` (E(3), ``10^6`` clouds of 5
points; S_n x E(3), ``10^5``): two jobs should be at least 1.6x faster on two cores.
``--parallel-only`` times that table alone, in a fresh process (the full run times it
after the other tables, whose large temporaries have already changed how glibc's
malloc keeps freed memory).

Targets: ``(a)/(b) <= 10``, ``(d)/(a) >= 1000`` for ``n = 5``, peak memory of
(a) ``<= 3x`` the input; ``(a)/(b) <= 50`` for the other groups. ``(c)/(a)`` is
the extra canonicalization cost of PCA frame averaging (which also needs ``K``
backbone calls instead of 1).

Usage::

    python benchmarks/bench_frames.py            # full run, B = 100 000, writes results/
    python benchmarks/bench_frames.py --quick    # smoke test in a few seconds
    python benchmarks/bench_frames.py --parallel-only   # the n_jobs table, nothing saved
"""

import argparse
import csv
import os
import platform
import subprocess
import time
import tracemalloc
from pathlib import Path

import numpy as np
from machine import cpu_model

import mfa_sklearn
from mfa_sklearn import MinimalFrameCanonicalizer, get_group

GROUPS = ("O", "SO", "E", "SE")
METHODS = {"a": "MFA transformer", "b": "matmul floor", "c": "PCA frames",
           "d": "per-sample loop"}


def machine_info():
    info = [f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} usable cores "
            f"(os.cpu_count() = {os.cpu_count()})",
            f"Python {platform.python_version()}, numpy {np.__version__}, "
            f"mfa_sklearn {mfa_sklearn.__version__} (git {git_revision()})"]
    try:
        from threadpoolctl import threadpool_info
        info += [f"{p['user_api']}: {p['internal_api']} {p.get('version')} "
                 f"({p.get('architecture')}, {p['num_threads']} threads) {p['prefix']}"
                 for p in threadpool_info()]
    except ImportError:
        info.append("BLAS: threadpoolctl not installed")
    return info


def git_revision():
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], text=True,
                              capture_output=True, check=True,
                              cwd=Path(mfa_sklearn.__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def best_time(fn, repeats, max_seconds, warmup=None):
    """Best wall time of ``fn()`` over ``repeats`` runs (fewer if over ``max_seconds``)."""
    (warmup or fn)()
    times = []
    while len(times) < repeats and (not times or sum(times) < max_seconds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def transformer(group, X):
    return MinimalFrameCanonicalizer(group=group).fit(X).transform(X)


def pca_canonical(group, x, chunk_values=2 ** 22):
    """PCA frames and the canonical inputs of all their elements, chunk by chunk."""
    K = 2 ** (group.d - group.special)
    step = max(1, chunk_values // (K * x[0].size))
    for i in range(0, len(x), step):
        frame = group.frame(x[i:i + step], method="pca")
        frame.to_canonical(x[i:i + step], "point")


def loop_canonical(group, x):
    """Straightforward per-sample canonicalization (QR frame of the whole cloud)."""
    out = np.empty_like(x)
    for i, xi in enumerate(x):
        if group.has_translations:
            xi = xi - xi.mean(axis=0)
        Q, R = np.linalg.qr(xi.T)
        Q = Q * np.sign(np.diag(R))
        if group.special and np.linalg.det(Q) < 0:
            Q[:, -1] = -Q[:, -1]
        out[i] = xi @ Q
    return out


def peak_memory(fn):
    """Peak memory (bytes) allocated while ``fn()`` runs, as traced by tracemalloc."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def bench_workload(n, d, B, args, rng):
    X = rng.standard_normal((B, n * d))
    x = X.reshape(B, n, d)
    M = rng.standard_normal((B, d, d))
    small = slice(0, min(B, 1000))
    floor = best_time(lambda: x @ M, args.repeats, args.max_seconds) / B
    rows = []
    for stem in GROUPS:
        name = f"{stem}({d})"
        group = get_group(name)
        a = best_time(lambda: transformer(name, X), args.repeats, args.max_seconds,
                      warmup=lambda: transformer(name, X[small])) / B
        c = best_time(lambda: pca_canonical(group, x), args.repeats, args.max_seconds,
                      warmup=lambda: pca_canonical(group, x[small])) / B
        loop = x[:min(B, args.loop_samples)]
        dd = best_time(lambda: loop_canonical(group, loop), args.repeats,
                       args.max_seconds, warmup=lambda: loop_canonical(group, loop[:10]))
        dd /= len(loop)
        mem = peak_memory(lambda: transformer(name, X)) / X.nbytes
        row = dict(group=name, n=n, d=d, B=B, a_us=1e6 * a, b_us=1e6 * floor,
                   c_us=1e6 * c, d_us=1e6 * dd, a_over_b=a / floor, d_over_a=dd / a,
                   c_over_a=c / a, peak_mem_x=mem)
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


# The groups of the second table: (name, n, d, data); (a) and (b) only, target (a)/(b) <= 50
OTHER_GROUPS = [("U(3)", 5, 3, "complex"), ("SU(3)", 5, 3, "complex"),
                ("O(1,3)", 16, 4, "momenta"), ("SO(1,3)", 16, 4, "momenta"),
                ("GL(3)", 5, 3, "real"), ("SL(3)", 5, 3, "real"), ("Aff(3)", 5, 3, "real")]


def other_data(kind, B, n, d, rng):
    """X as the estimators take it (2-D real columns) and the rows x for the floor."""
    if kind == "complex":  # complex rows travel as real parts, then imaginary parts
        z = rng.standard_normal((B, n, d)) + 1j * rng.standard_normal((B, n, d))
        return np.concatenate([z.real.reshape(B, -1), z.imag.reshape(B, -1)], axis=1), z
    x = rng.standard_normal((B, n, d))
    if kind == "momenta":  # massive future-directed 4-momenta, E = sqrt(p^2 + m^2)
        mass = rng.uniform(0.1, 1.0, (B, n))
        x[..., 0] = np.sqrt(np.sum(x[..., 1:] ** 2, axis=-1) + mass ** 2)
    return x.reshape(B, -1), x


def bench_other_groups(B, args, rng):
    rows = []
    for name, n, d, kind in OTHER_GROUPS:
        X, x = other_data(kind, B, n, d, rng)
        M = rng.standard_normal((B, d, d)).astype(x.dtype)
        small = slice(0, min(B, 1000))
        floor = best_time(lambda: x @ M, args.repeats, args.max_seconds) / B
        a = best_time(lambda: transformer(name, X), args.repeats, args.max_seconds,
                      warmup=lambda: transformer(name, X[small])) / B
        mem = peak_memory(lambda: transformer(name, X)) / X.nbytes
        row = dict(group=name, n=n, d=d, B=B, a_us=1e6 * a, b_us=1e6 * floor,
                   c_us=float("nan"), d_us=float("nan"), a_over_b=a / floor,
                   d_over_a=float("nan"), c_over_a=float("nan"), peak_mem_x=mem)
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def graph_data(kind, B, n, rng):
    """Flattened adjacency matrices: G(n, 0.5) or dense weighted round(z z^T, 3)."""
    if kind == "er":
        upper = np.triu(rng.random((B, n, n)) < 0.5, 1).astype(np.float64)
        return (upper + upper.transpose(0, 2, 1)).reshape(B, n * n)
    z = rng.standard_normal((B, n, 1))
    return np.round(z @ z.transpose(0, 2, 1), 3).reshape(B, n * n)


def bench_graphs(args, rng):
    """Canonicalization time per sample for graphs and S_n x O(3) (third table)."""
    scale = 10 if args.quick else 1
    cases = [("graph G(n,0.5)", 128, 200 // scale, 2000.0, "er"),
             ("graph weighted", 24, 2000 // scale, 10000.0, "weighted"),
             ("S_n x O(3)", 32, 10000 // scale, 50.0, "cloud")]
    rows = []
    for name, n, B, target, kind in cases:
        if kind == "cloud":
            X = rng.standard_normal((B, n * 3))
            model = MinimalFrameCanonicalizer(group="S_n x O(3)").fit(X[:10])
        else:
            X = graph_data(kind, B, n, rng)
            model = MinimalFrameCanonicalizer(group="graph", fields={"A": "edge"}).fit(X[:10])
        seconds = best_time(lambda: model.transform(X), args.repeats, args.max_seconds,
                            warmup=lambda: model.transform(X[:10])) / B
        fast = np.mean(model.frame_diagnostics(X[:100])["labeling_path"] == "fast")
        row = dict(case=name, n=n, B=B, us=1e6 * seconds, target_us=target, fast=fast)
        rows.append(row)
        print(f"{name:>16} | n={n:4d} | B={B:6d} | {row['us']:9.1f} µs per sample "
              f"(target {target:g}) | fast path {fast:.0%}", flush=True)
    return rows


def bench_parallel(args, rng):
    """``n_jobs=1`` against ``n_jobs=2`` for one large batch (fourth table).

    Chunks of samples go to joblib with threads as the soft hint, so the speed-up
    needs numpy to release the GIL in the frame math; two jobs should be at least 1.6x
    faster on two cores.
    """
    cases = [("E(3)", 5, args.B_parallel), ("S_n x E(3)", 5, args.B_parallel // 10)]
    rows = []
    for group, n, B in cases:
        X = rng.standard_normal((B, n * 3))
        models = {n_jobs: MinimalFrameCanonicalizer(group=group, n_jobs=n_jobs).fit(X[:10])
                  for n_jobs in (1, 2)}
        # the two settings alternate, so that load from elsewhere hits both alike
        times = {n_jobs: [] for n_jobs in models}
        for model in models.values():
            model.transform(X)
        while len(times[2]) < args.repeats and sum(times[1] + times[2]) < args.max_seconds:
            for n_jobs, model in models.items():
                start = time.perf_counter()
                model.transform(X)
                times[n_jobs].append(time.perf_counter() - start)
        seconds = {n_jobs: min(values) for n_jobs, values in times.items()}
        row = dict(group=group, n=n, B=B, jobs1_s=seconds[1], jobs2_s=seconds[2],
                   speedup=seconds[1] / seconds[2])
        rows.append(row)
        print(f"{group:>12} | n={n} | B={B:8d} | n_jobs=1 {seconds[1]:.3f} s | "
              f"n_jobs=2 {seconds[2]:.3f} s | {row['speedup']:.2f}x (target >= 1.6)",
              flush=True)
    return rows


def bench_padded(args, rng):
    """Absent rows: E(3) clouds of 8 points, as they are and padded to 16 rows with 8
    NaN rows at random places (fifth table), against 16-point clouds (every row
    present, the same array shape). Target: the cost per present row of the padded
    batch within 1.5x of the unpadded one. Frames process every row, present or not,
    so the padded batch does at least the work of the 16-point one."""
    B, n, d = args.B_small, 8, 3
    X = rng.standard_normal((B, n, d))
    padded = np.full((B, 2 * n, d), np.nan)
    where = np.sort(np.argsort(rng.random((B, 2 * n)), axis=1)[:, :n], axis=1)
    np.put_along_axis(padded, where[:, :, None], X, axis=1)
    full = rng.standard_normal((B, 2 * n, d))
    seconds = {}
    for name, data in [("unpadded", X), ("padded", padded), ("full", full)]:
        model = MinimalFrameCanonicalizer(group="E(3)").fit(data[:10])
        seconds[name] = best_time(lambda data=data, model=model: model.transform(data),
                                  args.repeats, args.max_seconds)
    per_row = {name: 1e6 * value / (B * n) for name, value in seconds.items()}
    per_row["full"] /= 2                       # 16 present rows per sample
    row = dict(group="E(3)", n=n, padded_to=2 * n, B=B, unpadded_us=per_row["unpadded"],
               padded_us=per_row["padded"], full_us=per_row["full"],
               ratio=per_row["padded"] / per_row["unpadded"],
               same_shape=seconds["padded"] / seconds["full"])
    print(f"E(3) | {n} points | padded to {2 * n} rows | B={B} | µs per present row: "
          f"{row['unpadded_us']:.3f} unpadded, {row['padded_us']:.3f} padded "
          f"({row['ratio']:.2f}x; target <= 1.5) | padded / {2 * n} present rows: "
          f"{row['same_shape']:.2f}x", flush=True)
    return [row]


COLUMNS = [("group", "group", "{}"), ("n", "n", "{}"), ("d", "d", "{}"), ("B", "B", "{}"),
           ("a_us", "(a) µs", "{:.3g}"), ("b_us", "(b) µs", "{:.3g}"),
           ("c_us", "(c) µs", "{:.3g}"), ("d_us", "(d) µs", "{:.3g}"),
           ("a_over_b", "(a)/(b) ≤10", "{:.1f}"), ("d_over_a", "(d)/(a) ≥1000", "{:.3g}"),
           ("c_over_a", "(c)/(a)", "{:.1f}"), ("peak_mem_x", "mem(a)/X ≤3", "{:.2f}")]


def format_row(row):
    return " | ".join(fmt.format(row[key]).rjust(len(title))
                      for key, title, fmt in COLUMNS)


def header():
    return " | ".join(title for _, title, _ in COLUMNS)


def save(rows, info, prefix, graph_rows=(), parallel_rows=(), padded_rows=()):
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["# Canonicalization cost per sample (benchmarks/bench_frames.py)", ""]
    lines += [f"- {line}" for line in info]
    lines += ["", "(a) MinimalFrameCanonicalizer fit+transform, (b) batched matmul floor, "
              "(c) PCA frames + all 2^d canonical inputs, (d) per-sample Python loop; "
              "µs per sample, best of repeats.", "",
              "| " + header() + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + format_row(row) + " |" for row in rows]
    lines += ["", "U/SU, Lorentz and GL/SL/Aff rows: (a) and (b) only (target (a)/(b) <= 50); "
              "Lorentz rows are massive future-directed 4-momenta."]
    if graph_rows:
        lines += ["", "Graphs and S_n x O(3): MinimalFrameCanonicalizer transform, µs per "
                  "sample; fast = share of the first 100 samples labelled by colour "
                  "refinement (the rest by nauty).", "",
                  "| case | n | B | µs | target µs | fast |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['case']} | {r['n']} | {r['B']} | {r['us']:.1f} | "
                  f"{r['target_us']:g} | {r['fast']:.0%} |" for r in graph_rows]
    if parallel_rows:
        lines += ["", "n_jobs: MinimalFrameCanonicalizer(group, n_jobs=...).transform on "
                  "one batch, seconds (best of repeats); target: 2 jobs >= 1.6x faster.", "",
                  "| group | n | B | n_jobs=1 s | n_jobs=2 s | speed-up |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['group']} | {r['n']} | {r['B']} | {r['jobs1_s']:.3f} | "
                  f"{r['jobs2_s']:.3f} | {r['speedup']:.2f}x |" for r in parallel_rows]
    if padded_rows:
        lines += ["", "Absent rows: MinimalFrameCanonicalizer(\"E(3)\").transform, µs per "
                  "present row (best of repeats), clouds as they are and padded with as "
                  "many NaN rows at random places; target: padded within 1.5x.", "",
                  "| group | n | padded to | B | unpadded µs/row | padded µs/row | ratio | "
                  "padded / all rows present (same shape) |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['group']} | {r['n']} | {r['padded_to']} | {r['B']} | "
                  f"{r['unpadded_us']:.3f} | {r['padded_us']:.3f} | {r['ratio']:.2f}x | "
                  f"{r['same_shape']:.2f}x |" for r in padded_rows]
    prefix.with_suffix(".md").write_text("\n".join(lines) + "\n")
    plot(rows, prefix.with_suffix(".png"))


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['group']}\nn={r['n']}" for r in rows]
    positions = np.arange(len(rows))
    width = 0.8 / len(METHODS)
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 4.5))
    for k, (key, title) in enumerate(METHODS.items()):
        offset = (k - (len(METHODS) - 1) / 2) * width
        ax.bar(positions + offset, [r[f"{key}_us"] for r in rows], width,
               label=f"({key}) {title}")
    ax.set_xticks(positions, labels)
    ax.set_yscale("log")
    ax.set_ylabel("µs per sample")
    ax.set_title("Canonicalization time per sample")
    ax.legend(fontsize="small")
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke mode: small B, 2 repeats, nothing saved")
    parser.add_argument("--B-small", type=int, default=100_000,
                        help="clouds for n=5, d=3 (default 100000)")
    parser.add_argument("--B-large", type=int, default=100_000,
                        help="clouds for n=128, d=6 (default 100000)")
    parser.add_argument("--B-parallel", type=int, default=1_000_000,
                        help="E(3) clouds for the n_jobs table (S_n x E(3): a tenth)")
    parser.add_argument("--loop-samples", type=int, default=2000,
                        help="samples timed for the per-sample loop (d)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="stop repeating a measurement after this many seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parallel-only", action="store_true",
                        help="only the n_jobs table (fresh process), nothing saved")
    parser.add_argument("--out", type=Path, default=None,
                        help="output prefix (default benchmarks/results/bench_frames; "
                             "--quick saves only when given)")
    args = parser.parse_args()
    if args.quick:
        args.B_small, args.B_large, args.B_parallel = 2000, 200, 20_000
        args.loop_samples, args.repeats = 100, 2
    if args.out is None and not args.quick:
        args.out = Path(__file__).resolve().parent / "results" / "bench_frames"

    np.ones((4, 4)) @ np.ones((4, 4))  # load BLAS so threadpoolctl sees it
    info = machine_info()
    print("\n".join(info))
    print(header())
    rng = np.random.default_rng(args.seed)
    if args.parallel_only:
        print("\nn_jobs=1 against n_jobs=2 (threads)")
        bench_parallel(args, rng)
        return
    rows = bench_workload(5, 3, args.B_small, args, rng)
    rows += bench_workload(128, 6, args.B_large, args, rng)
    print("\nOther groups: (a) and (b) only; target (a)/(b) <= 50")
    rows += bench_other_groups(args.B_small, args, rng)
    print("\nGraphs and S_n x O(3): canonicalization per sample")
    graph_rows = bench_graphs(args, rng)
    print("\nn_jobs=1 against n_jobs=2 (threads)")
    parallel_rows = bench_parallel(args, rng)
    print("\nAbsent rows: half of the rows NaN")
    padded_rows = bench_padded(args, rng)
    if args.out is not None:
        save(rows, info, args.out, graph_rows, parallel_rows, padded_rows)
        print(f"saved {args.out}.md, .csv, .png")


if __name__ == "__main__":
    main()
