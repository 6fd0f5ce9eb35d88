"""Smoke runs of the speed benchmarks (``--quick``: seconds, nothing saved), so they keep
working; their numbers are not checked (tests never assert timings)."""

import pytest

from tests._helpers import run_script


def _run(script, *args):
    return run_script(f"benchmarks/{script}", "--quick", *args, smoke=False)


def test_bench_frames_quick():
    out = _run("bench_frames.py")
    for group in ("O(3)", "SE(6)", "U(3)", "SO(1,3)", "Aff(3)", "S_n x O(3)"):
        assert group in out
    assert "padded to 16 rows" in out


def test_bench_torch_quick():
    pytest.importorskip("torch")
    out = _run("bench_torch.py", "--samples", "2000")
    for row in ("O(3)       torch cpu 64", "E(3)       torch cpu 32", "S_n x E(3) numpy"):
        assert row in out
    assert "One training epoch" in out


def test_bench_local_frames_quick():
    out = _run("bench_local_frames.py", "--atoms", "5000")
    for stage in ("neighbour lists", "canonical neighbourhoods (weighted)", "features"):
        assert stage in out


def test_bench_torch_local_quick():
    pytest.importorskip("torch")
    out = _run("bench_torch_local.py")
    for row in ("energy (forward)", "energy + forces", "train step", "atom MLP"):
        assert row in out


def test_bench_rules_quick(tmp_path):
    out = _run("bench_rules.py", "--out-dir", str(tmp_path), "--paths", "3",
               "--steps", "200")
    for rule in ("| first |", "| pivoted |", "| first_above |"):
        assert rule in out
    assert (tmp_path / "bench_rules_quick.md").stat().st_size > 0
