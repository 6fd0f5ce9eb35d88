"""Row rules: how often canonical forms jump, and how well conditioned their frames are.

Two measurements per row rule of ``MinimalFrameCanonicalizer(group="E(3)")``:

* **Jumps along smooth paths.** ``--paths`` random closed paths of 5-point clouds,
  ``x(s) = a cos s + b sin s + c`` with Gaussian ``a, b, c`` (5 x 3 each), sampled at
  ``--steps`` points of ``s in [0, 2 pi)``. Between neighbouring points the cloud moves
  by about ``2 pi / steps`` of its size, so a continuous canonical form moves by about
  as much; a step where it moves by more than ``--jump`` times the cloud's size is a
  jump (a frame decision flipped). Reported: jumps per path, the share of steps.
* **Jumps of an averaged model, weighted frames near ties.** The same paths through
  ``FrameAveragingRegressor(target="vector")`` around a fixed random map of the
  canonical coordinates (``tanh(x W)``, nothing fitted), for ``"first_above"`` with
  ``tie_band`` 0 (plain frames), 0.2 and 0.5, with ``group="E(3)"`` and
  ``"S_n x E(3)"`` (whose band also weights the orders of near-tied rows): jumps of
  its output, inner calls per sample (mean ``frame_diagnostics(X)["frame_size"]``) and
  the share of samples with more than one call. A weighted model can change
  steeply but continuously where a path crosses the band quickly, so a step whose
  output moves by more than ``--jump`` times the output's mean norm on the path is
  bisected 8 times (following the half that moves more); it is a jump if the last
  interval, 1/256 of the step, still moves by half as much.
* **Conditioning on adversarial inputs.** ``frame_diagnostics(X)["conditioning"]``
  (largest over smallest chosen residual norm) on Gaussian clouds, and on clouds whose
  first centred row is ``1e-3`` or ``1e-8`` times a Gaussian row (a tiny leading row),
  or whose second centred row is within ``1e-6`` of the first's direction.
  Reported: median and maximum over the samples, and the equivariance error
  ``check_equivariance(...)["max_error"]`` of the canonical forms.

Usage::

    python benchmarks/bench_rules.py             # ~1 min of CPU
    python benchmarks/bench_rules.py --quick

Output: ``benchmarks/results/bench_rules.md`` (``bench_rules_quick.md`` with --quick).
"""

import argparse
import os

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from mfa_sklearn import FrameAveragingRegressor, MinimalFrameCanonicalizer, check_equivariance

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = ("first", "pivoted", "first_above")
#: tie bands of the weighted frames measured (0: the plain frames)
BANDS = (0.0, 0.2, 0.5)
#: groups of the averaged model: E(3), and S_n x E(3), whose bands also weight the
#: orders of near-tied rows of its canonical ranking
GROUPS = ("E(3)", "S_n x E(3)")
N = 5


def paths(rng, n_paths, steps):
    """Closed random paths: their coefficients ``(a, b, c)`` (n_paths, 1, N * 3) each,
    and their clouds at ``steps`` points, (n_paths, steps, N * 3)."""
    coefficients = rng.standard_normal((3, n_paths, 1, N * 3))
    s = np.linspace(0.0, 2 * np.pi, steps, endpoint=False)
    return coefficients, on_paths(coefficients, np.broadcast_to(s, (n_paths, steps)))


def on_paths(coefficients, s):
    """Clouds ``a cos s + b sin s + c`` at the parameters ``s`` (n_paths, m)."""
    a, b, c = coefficients
    s = s[:, :, None]
    return a * np.cos(s) + b * np.sin(s) + c


def jumps(rule, X, threshold):
    """Jumps per path and their share of the steps."""
    n_paths, steps, _ = X.shape
    can = MinimalFrameCanonicalizer(group="E(3)", row_rule=rule, round_bits=None)
    Xc = can.fit_transform(X.reshape(-1, N * 3)).reshape(n_paths, steps, -1)
    size = np.linalg.norm(X - X.mean(axis=1, keepdims=True), axis=2).mean(axis=1)
    step = np.linalg.norm(np.diff(Xc, axis=1, append=Xc[:, :1]), axis=2)
    flipped = step > threshold * size[:, None]
    return flipped.sum(axis=1).mean(), flipped.mean()


class RandomMap(RegressorMixin, BaseEstimator):
    """``tanh(x W)`` with a fixed Gaussian ``W`` (N * 3 x N * 3): a smooth,
    non-equivariant stand-in for a fitted model; ``fit`` only draws ``W``."""

    def fit(self, X, y):
        self.W_ = np.random.default_rng(1).standard_normal((X.shape[1], y.shape[1]))
        self.W_ /= np.sqrt(X.shape[1])
        return self

    def predict(self, X):
        return np.tanh(X @ self.W_)


def model_jumps(band, coefficients, X, threshold, halvings=8, group="E(3)"):
    """Jumps per path of the frame-averaged :class:`RandomMap` (``"first_above"``,
    ``tie_band=band``), its inner calls per sample and the share of samples with more
    than one call (inside a band)."""
    n_paths, steps, _ = X.shape
    flat = X.reshape(-1, N * 3)
    model = FrameAveragingRegressor(RandomMap(), group=group, target="vector",
                                    row_rule="first_above", tie_band=band,
                                    round_bits=None).fit(flat[:10], flat[:10])

    def predict(path, s):
        """The model at parameters ``s`` (k,) of paths ``path`` (k,)."""
        clouds = on_paths(coefficients[:, path], s[:, None])[:, 0]
        return model.predict(clouds)

    out = model.predict(flat).reshape(n_paths, steps, -1)
    size = np.linalg.norm(out, axis=2).mean(axis=1)
    step = np.linalg.norm(np.diff(out, axis=1, append=out[:, :1]), axis=2)
    path, start = np.nonzero(step > threshold * size[:, None])
    width = 2 * np.pi / steps
    lo, hi = start * width, (start + 1) * width
    y_lo, y_hi = out[path, start], out[path, (start + 1) % steps]
    moved = step[path, start]
    for _ in range(halvings):   # follow the half that moves more
        mid = 0.5 * (lo + hi)
        y_mid = predict(path, mid)
        left = np.linalg.norm(y_mid - y_lo, axis=1) >= np.linalg.norm(y_hi - y_mid, axis=1)
        hi, y_hi = np.where(left, mid, hi), np.where(left[:, None], y_mid, y_hi)
        lo, y_lo = np.where(left, lo, mid), np.where(left[:, None], y_lo, y_mid)
    jumped = np.linalg.norm(y_hi - y_lo, axis=1) > 0.5 * moved
    calls = model.frame_diagnostics(flat)["frame_size"]
    return np.count_nonzero(jumped) / n_paths, calls.mean(), np.mean(calls > 1)


def _with_lead(rng, lead):
    """Centred clouds (B, N, 3) whose first rows are ``lead`` (B, L, 3) exactly: the
    other rows are Gaussian, shifted so that all rows sum to zero."""
    B, L, _ = lead.shape
    rest = rng.standard_normal((B, N - L, 3))
    rest -= rest.mean(axis=1, keepdims=True) + lead.sum(axis=1, keepdims=True) / (N - L)
    return np.concatenate([lead, rest], axis=1)


def adversarial(rng, B):
    """name -> clouds (B, N * 3) with a hard leading row after centring, moved by a
    common offset (E(3) centres it away)."""
    out = {"Gaussian": rng.standard_normal((B, N, 3))}
    for scale in (1e-3, 1e-8):
        out[f"first centred row x {scale:g}"] = _with_lead(
            rng, scale * rng.standard_normal((B, 1, 3)))
    first = rng.standard_normal((B, 1, 3))
    second = 1.3 * first + 1e-6 * rng.standard_normal((B, 1, 3))
    out["row 2 parallel to row 1 (1e-6)"] = _with_lead(
        rng, np.concatenate([first, second], axis=1))
    return {name: x.reshape(B, -1) + 3.0 for name, x in out.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--paths", type=int, default=None)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--jump", type=float, default=0.05)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)
    n_paths = args.paths or (20 if args.quick else 200)
    B = 100 if args.quick else args.samples
    rng = np.random.default_rng(0)
    coefficients, X = paths(rng, n_paths, args.steps)
    lines = ["# Row rules: jumps and conditioning (E(3), 5 points)", "",
             f"Jumps: {n_paths} closed random paths of {args.steps} steps; a jump is a "
             f"step where the canonical form moves by more than {args.jump} times the "
             "cloud's size (a smooth step moves it by about "
             f"{2 * np.pi / args.steps:.4f}).", "",
             "| row rule | jumps per path | share of steps |", "|---|---|---|"]
    for rule in RULES:
        per_path, share = jumps(rule, X, args.jump)
        lines.append(f"| {rule} | {per_path:.2f} | {share:.4f} |")
    lines += ["", "Jumps of a frame-averaged fixed random map (`tanh(x W)`, vector "
              "output) along the same paths, `first_above` with weighted frames near "
              f"ties (a jump: a step above {args.jump} times the output's mean norm "
              "that still moves by half as much over 1/256 of it); "
              "inner calls per sample: mean `frame_size`.", "",
              "| group | tie_band | model jumps per path | inner calls per sample "
              "| samples inside a band |", "|---|---|---|---|---|"]
    for group in GROUPS:
        for band in BANDS:
            per_path, calls, inside = model_jumps(band, coefficients, X, args.jump,
                                                  group=group)
            lines.append(f"| {group} | {band:g} | {per_path:.2f} | {calls:.3f} "
                         f"| {inside:.3f} |")
    data = adversarial(rng, B)
    lines += ["", f"Conditioning (`frame_diagnostics(X)[\"conditioning\"]`, largest over "
              f"smallest chosen residual norm; median / max over {B} clouds) and the "
              "equivariance error of the canonical forms (`check_equivariance`, "
              "relative max).", "",
              "| input | " + " | ".join(RULES) + " |", "|---|" + "---|" * len(RULES)]
    for name, Xa in data.items():
        cells = []
        for rule in RULES:
            can = MinimalFrameCanonicalizer(group="E(3)", row_rule=rule).fit(Xa)
            cond = can.frame_diagnostics(Xa)["conditioning"]
            err = check_equivariance(can, "E(3)", Xa, random_state=1)["max_error"]
            cells.append(f"{np.median(cond):.3g} / {cond.max():.3g}; error {err:.1e}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out_dir, exist_ok=True)
    name = "bench_rules_quick.md" if args.quick else "bench_rules.md"
    with open(os.path.join(args.out_dir, name), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
