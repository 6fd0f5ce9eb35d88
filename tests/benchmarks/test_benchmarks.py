"""Smoke runs of the speed benchmarks (``--quick``: seconds, nothing saved), so they keep
working; their numbers are not checked (tests never assert timings)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(script, *args):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script),
                           "--quick", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_bench_frames_quick():
    out = _run("bench_frames.py")
    for group in ("O(3)", "SE(6)", "U(3)", "SO(1,3)", "Aff(3)", "S_n x O(3)"):
        assert group in out


def test_bench_torch_quick():
    pytest.importorskip("torch")
    out = _run("bench_torch.py", "--samples", "2000")
    for row in ("O(3)       torch cpu 64", "E(3)       torch cpu 32", "S_n x E(3) numpy"):
        assert row in out
    assert "One training epoch" in out
