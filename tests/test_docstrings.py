"""The examples in the package's docstrings run and print what they show."""

import doctest
import importlib
import pkgutil

import pytest

import mfa_sklearn

MODULES = sorted(m.name for m in pkgutil.walk_packages(mfa_sklearn.__path__, "mfa_sklearn."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ImportError as error:        # an optional dependency (torch, ase, dask...)
        pytest.skip(f"{name} needs {error.name}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        if test.examples and test.name.startswith(name):
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"


@pytest.mark.parametrize("module_name", ["mfa_sklearn", "mfa_sklearn.torch"])
def test_public_objects_have_numpydoc_docstrings(module_name):
    # a docstring assembled from parts must be assigned to __doc__: as a bare
    # expression it is no docstring at all, and help() shows nothing
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        pytest.skip(f"{module_name} needs {error.name}")
    public = [getattr(module, name) for name in module.__all__]
    for obj in (o for o in public if callable(o)):
        doc = obj.__doc__ or ""
        assert "Parameters\n" in doc and "Examples\n" in doc, \
            f"{obj.__name__} lacks a numpydoc docstring with Parameters and Examples"
