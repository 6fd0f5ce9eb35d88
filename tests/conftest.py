"""pytest's hooks and fixtures for the whole suite; shared helpers live in _helpers.py."""

import os

# sklearn's common checks skip their array-API input check unless this is set before
# scipy is imported; with it, every common check runs.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest
from hypothesis import settings
from threadpoolctl import threadpool_limits

from tests._helpers import ERRORS

# Hypothesis profiles of the property tests (tests/test_properties.py). "ci", the
# default: a fixed seed (the same examples on every run and machine), few examples,
# no deadline (a shared 2-core machine times erratically) and no example database.
# "dev": many more examples, for a search before a release; HYPOTHESIS_PROFILE=dev.
settings.register_profile("ci", derandomize=True, max_examples=300, deadline=None,
                          database=None, print_blob=True)
settings.register_profile("dev", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_terminal_summary(terminalreporter):
    """With MFA_PRINT_ERRORS set, the largest e_max per case recorded by the tests."""
    if os.environ.get("MFA_PRINT_ERRORS") and ERRORS:
        width = max(len(case) for case in ERRORS)
        terminalreporter.write_line("largest e_max per case".ljust(width) + "   e_max")
        for case in sorted(ERRORS):
            terminalreporter.write_line(f"{case.ljust(width)}   {ERRORS[case]:.2e}")


@pytest.fixture(scope="module")
def one_thread():
    """One BLAS / OpenMP thread: on tiny data the threads are pure overhead (slow when
    the machine is loaded)."""
    with threadpool_limits(limits=1):
        yield
