"""The README's commands and examples stay runnable and in step with CI."""

import re

from tests._helpers import ROOT, run_script


def _readme_commands():
    return re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    commands = _readme_commands()
    assert len(commands) >= 2
    setup_and_run, setup_and_test = commands[0], commands[1]
    assert setup_and_run.endswith("python examples/quickstart.py")
    assert setup_and_test.endswith("python -m pytest -q")
    for command in (setup_and_run, setup_and_test):
        assert "pip install torch==2.13.0 &&" in command
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup_and_test in ci


def test_quickstart_runs_in_smoke_mode():
    out = run_script("examples/quickstart.py")
    assert "MLP + E(3) frames" in out
    # the frame-averaged rows report rounding-level equivariance errors
    errors = [float(line.split()[-2]) for line in out.splitlines()
              if line.startswith(("MLP + E(3)", "MLP + S_n x E(3)"))]
    assert len(errors) == 3 and max(errors) < 1e-9


def test_readme_python_snippets_run():
    """The README's code runs as written (the torch snippet reuses the first's data)."""
    torch = __import__("pytest").importorskip("torch")
    blocks = re.findall(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) >= 2
    namespace = {}
    exec(blocks[0], namespace)
    result = namespace["check_equivariance"](namespace["reg"], "E(3)", namespace["X"],
                                             random_state=0)
    assert result["max_error"] < 1e-12
    namespace["X_batch"] = torch.tensor(namespace["X"][:32], dtype=torch.float32)
    exec(blocks[1], namespace)
    assert tuple(namespace["forces"].shape) == (32, 15)


def test_readme_local_frames_snippet_runs():
    """The README's local-frames code runs as written."""
    __import__("pytest").importorskip("ase")
    blocks = re.findall(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    block = next(b for b in blocks if "LocalFrameRegressor" in b)
    namespace = {}
    exec(block, namespace)
    X = namespace["X"]
    assert namespace["forces"].predict(X[:5]).shape == (5, X.shape[1] // 4 * 3)
    assert namespace["pooled"].predict(X[:5]).shape == (5,)


def test_lorentz_jets_example_runs_in_smoke_mode():
    out = run_script("examples/lorentz_jets.py")
    framed = [line for line in out.splitlines() if "SO(1,3) frames" in line]
    assert framed and float(framed[0].split()[-2]) < 1e-9   # the invariance error column
