"""Smoke test of the n-body benchmark: ``benchmarks/bench_nbody.py --quick`` (< 60 s)."""

import csv

import pytest

from tests._helpers import run_script

pytest.importorskip("torch")
pytest.importorskip("skorch")
pytest.importorskip("matplotlib")


def test_bench_nbody_quick(tmp_path):
    run_script("benchmarks/bench_nbody.py", "--quick", "--out-dir", str(tmp_path),
               timeout=900)
    with open(tmp_path / "nbody_quick_table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 10
    assert (tmp_path / "nbody_quick_table.md").stat().st_size > 0
    assert (tmp_path / "nbody_quick_learning_curves.png").stat().st_size > 0
    minimal = [r for r in rows if r["symmetry"].startswith("MFA")]
    assert minimal
    for r in minimal:
        # float64 sklearn models: rounding level; the torch rows run in float32
        tol = 1e-4 if "float32" in r["model"] else 1e-6
        assert float(r["eq_E3"]) < tol, r
        if "S_n" in r["symmetry"]:
            assert float(r["eq_Sn"]) < tol, r
    for r in rows:
        assert float(r["test_mse"]) < 1.0, r
