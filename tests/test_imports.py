"""The package's modules use each other through names without a leading underscore:
a module's underscore names are its own, so that each can be changed where it stands."""

import ast
import pathlib

import pytest

import mfa_sklearn

PACKAGE = pathlib.Path(mfa_sklearn.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def _private(name):
    return name.startswith("_") and not name.startswith("__")


def _resolve(path, level, module):
    """The file or package directory that ``from <level dots><module> import`` names."""
    base = path.parent
    for _ in range(level - 1):
        base = base.parent
    target = base.joinpath(*module.split(".")) if module else base
    return target


def _is_module(target, name):
    return (target / f"{name}.py").exists() or (target / name / "__init__.py").exists()


def _private_uses(path):
    """(line, text) of every use of another module's private name in the module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    uses, module_aliases = [], set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        target = _resolve(path, node.level, node.module)
        for alias in node.names:
            if _is_module(target, alias.name):   # a submodule: its name may be private
                module_aliases.add(alias.asname or alias.name)
            elif _private(alias.name):
                uses.append((node.lineno, f"imports {alias.name} from {node.module or '.'}"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases and _private(node.attr)):
            uses.append((node.lineno, f"uses {node.value.id}.{node.attr}"))
    return uses


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_uses_another_modules_private_names(path):
    uses = _private_uses(path)
    assert not uses, f"{path.relative_to(PACKAGE)}: " + "; ".join(
        f"line {line} {text}" for line, text in uses)


def test_the_check_finds_private_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "_helpers.py").write_text("def _hidden():\n    pass\n")
    (package / "user.py").write_text(
        "from . import _helpers\nfrom ._helpers import _hidden\n\n_helpers._hidden()\n")
    uses = _private_uses(package / "user.py")
    assert [line for line, _ in uses] == [2, 4]
