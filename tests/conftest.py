import os

# sklearn's common checks skip their array-API input check unless this is set before
# scipy is imported; with it, every common check runs.
os.environ.setdefault("SCIPY_ARRAY_API", "1")


# Largest equivariance error per named case, gathered by the group test modules through
# `record_error`; `MFA_PRINT_ERRORS=1 pytest -s` prints them as a table at the end.
_ERRORS = {}


def record_error(case, value):
    """Remember the largest error seen for ``case``."""
    _ERRORS[case] = max(_ERRORS.get(case, 0.0), float(value))


def pytest_terminal_summary(terminalreporter):
    if os.environ.get("MFA_PRINT_ERRORS") and _ERRORS:
        width = max(len(case) for case in _ERRORS)
        terminalreporter.write_line("largest e_max per case".ljust(width) + "   e_max")
        for case in sorted(_ERRORS):
            terminalreporter.write_line(f"{case.ljust(width)}   {_ERRORS[case]:.2e}")
