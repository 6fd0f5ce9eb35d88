"""Parse group names such as ``"SE(3)"`` or ``"O(1,3)"`` into group objects."""

import importlib
import re

from ..exceptions import GroupNotFoundError
from ._base import Group

# family -> (module, class name, keyword arguments); modules are imported on first use
_FAMILIES = {
    "O": ("orthogonal", "OrthogonalGroup", dict(special=False, translations=False)),
    "SO": ("orthogonal", "OrthogonalGroup", dict(special=True, translations=False)),
    "E": ("orthogonal", "OrthogonalGroup", dict(special=False, translations=True)),
    "SE": ("orthogonal", "OrthogonalGroup", dict(special=True, translations=True)),
    "U": ("unitary", "UnitaryGroup", dict(special=False)),
    "SU": ("unitary", "UnitaryGroup", dict(special=True)),
    "GL": ("linear", "LinearGroup", dict(kind="GL")),
    "SL": ("linear", "LinearGroup", dict(kind="SL")),
    "AFF": ("linear", "LinearGroup", dict(kind="Aff")),
}
# Lorentz groups are written O(1,d-1) / SO(1,d-1): time first, mostly minus
_LORENTZ = {
    "O": ("lorentz", "LorentzGroup", dict(special=False)),
    "SO": ("lorentz", "LorentzGroup", dict(special=True)),
}
# "S_n", "S_n x E(3)", "S_n × SO(1,3)", "s_n*O(3)", "Sn x O(3)"
_PERMUTATION = re.compile(r"^\s*S_?n\s*(?:(?:x|×|\*)\s*(\S.*?))?\s*$", re.IGNORECASE)
_PRODUCT_FACTORS = ("O", "SO", "E", "SE")
_PATTERN = re.compile(r"^\s*([A-Za-z]+)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)\s*$")

AVAILABLE = ("O(d), SO(d), E(d), SE(d), U(d), SU(d), GL(d), SL(d), Aff(d), the "
             "Lorentz groups O(1,d-1), SO(1,d-1), with integer d >= 1 (d >= 2 for "
             "Lorentz), e.g. 'E(3)' or 'SO(1,3)'; S_n (sets of rows) and the products "
             "'S_n x G' for G in O(d), SO(d), E(d), SE(d), O(1,d-1), SO(1,d-1); 'graph' "
             "(S_n acting on adjacency matrices, A[pi][:, pi])")


def _build(module, cls, kwargs, d):
    family = importlib.import_module(f"{__package__}.{module}")
    return getattr(family, cls)(d, **kwargs)


def get_group(group):
    """Return the group object for a name such as ``"O(3)"``, ``"SE(2)"``, ``"SO(1,3)"``.

    ``"graph"`` is S_n acting on graphs (:class:`~mfa_sklearn.groups.GraphGroup`); for
    ``symmetrize=True`` pass ``GraphGroup(symmetrize=True)`` itself.

    Parameters
    ----------
    group : str or Group
        A group name (case-insensitive family), or a group object (returned unchanged).

    Returns
    -------
    Group

    Raises
    ------
    GroupNotFoundError
        If the name cannot be parsed or names no group of the registry.

    Examples
    --------
    >>> from mfa_sklearn import get_group
    >>> get_group("se(3)"), get_group("S_n x E(3)").name, get_group("SO(1,3)").d
    (get_group('SE(3)'), 'S_n x E(3)', 4)
    """
    if isinstance(group, Group):
        return group
    if not isinstance(group, str):
        raise GroupNotFoundError(
            f"group must be a string such as 'E(3)', a Group object or None; got "
            f"{type(group).__name__} {group!r}")
    if group.strip().lower() == "graph":
        from .permutation import GraphGroup

        return GraphGroup()
    permutation = _PERMUTATION.match(group)
    if permutation is not None:
        return _permutation_group(group, permutation.group(1))
    match = _PATTERN.match(group)
    if match is None:
        raise GroupNotFoundError(f"cannot parse group {group!r}; available: {AVAILABLE}")
    family, first, second = match.group(1).upper(), int(match.group(2)), match.group(3)
    if second is not None:
        if family not in _LORENTZ or first != 1 or int(second) < 1:
            raise GroupNotFoundError(
                f"unknown group {group!r}: two arguments name a Lorentz group O(1,k) or "
                f"SO(1,k) with k >= 1; available: {AVAILABLE}")
        return _build(*_LORENTZ[family], 1 + int(second))
    if family not in _FAMILIES or first < 1:
        raise GroupNotFoundError(f"unknown group {group!r}; available: {AVAILABLE}")
    return _build(*_FAMILIES[family], first)


def _permutation_group(name, factor):
    """S_n, or S_n x G for a geometric factor G given by its name."""
    from .permutation import PermutationGroup, PermutationProductGroup

    if factor is None:
        return PermutationGroup()
    match = _PATTERN.match(factor)
    if match is None or match.group(1).upper() not in _PRODUCT_FACTORS:
        raise GroupNotFoundError(
            f"unknown group {name!r}: S_n products take O(d), SO(d), E(d), SE(d), "
            f"O(1,d-1) or SO(1,d-1) as the second factor, e.g. 'S_n x E(3)'; got {factor!r}")
    if match.group(3) is not None and match.group(1).upper() not in ("O", "SO"):
        raise GroupNotFoundError(f"unknown group {name!r}: the Lorentz factors are O(1,k) "
                                 "and SO(1,k)")
    return PermutationProductGroup(get_group(factor))
