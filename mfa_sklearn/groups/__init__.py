"""Group math of Minimal Frame Averaging: frames, canonical forms, random elements.

This subpackage imports neither scikit-learn nor torch; its functions take numpy arrays
or torch tensors alike.
"""

from ._base import FIELD_KINDS, KINDS, Frame, Group, GroupElement
from .linear import LinearGroup
from .lorentz import LorentzGroup
from .orthogonal import OrthogonalGroup
from .permutation import GraphGroup, PermutationGroup, PermutationProductGroup
from .registry import get_group
from .unitary import UnitaryGroup

__all__ = [
           "FIELD_KINDS",
           "KINDS",
           "Frame",
           "GraphGroup",
           "Group",
           "GroupElement",
           "LinearGroup",
           "LorentzGroup",
           "OrthogonalGroup",
           "PermutationGroup",
           "PermutationProductGroup",
           "UnitaryGroup",
           "get_group",
]
