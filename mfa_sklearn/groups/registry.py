"""Parse group names such as ``"SE(3)"`` into group objects."""

import re

from ..exceptions import GroupNotFoundError
from ._base import Group
from .orthogonal import OrthogonalGroup

_ORTHOGONAL = {
    "O": dict(special=False, translations=False),
    "SO": dict(special=True, translations=False),
    "E": dict(special=False, translations=True),
    "SE": dict(special=True, translations=True),
}
_PATTERN = re.compile(r"^\s*([A-Za-z_+ ]+?)\s*\(\s*([0-9, ]+)\s*\)\s*$")
_PLANNED = ("U", "SU", "GL", "SL", "AFF")

AVAILABLE = "O(d), SO(d), E(d), SE(d) with an integer d >= 1, e.g. 'E(3)'"


def get_group(group):
    """Return the group object for a name such as ``"O(3)"`` or ``"SE(2)"``.

    Parameters
    ----------
    group : str or Group
        A group name, or a group object (returned unchanged).

    Returns
    -------
    Group

    Raises
    ------
    GroupNotFoundError
        If the name cannot be parsed or names a group this version does not provide.
    """
    if isinstance(group, Group):
        return group
    if not isinstance(group, str):
        raise GroupNotFoundError(
            f"group must be a string such as 'E(3)', a Group object or None; got "
            f"{type(group).__name__} {group!r}")
    match = _PATTERN.match(group)
    if match is None:
        raise GroupNotFoundError(f"cannot parse group {group!r}; available: {AVAILABLE}")
    family, args = match.group(1).strip().upper(), match.group(2).replace(" ", "")
    if family in _ORTHOGONAL and args.isdigit() and int(args) >= 1:
        return OrthogonalGroup(int(args), **_ORTHOGONAL[family])
    if family in _PLANNED or "," in args:
        raise GroupNotFoundError(
            f"group {group!r} is not available in this version; available: {AVAILABLE}")
    raise GroupNotFoundError(f"unknown group {group!r}; available: {AVAILABLE}")
