"""Group math of Minimal Frame Averaging: frames, canonical forms, random elements.

This subpackage imports neither scikit-learn nor torch; its functions take numpy arrays
or torch tensors alike.
"""

from ._base import FIELD_KINDS, KINDS, Frame, Group, GroupElement
from .orthogonal import OrthogonalGroup
from .permutation import GraphGroup, PermutationGroup, PermutationProductGroup
from .registry import get_group

__all__ = ["FIELD_KINDS", "KINDS", "Frame", "Group", "GroupElement", "GraphGroup",
           "OrthogonalGroup", "PermutationGroup", "PermutationProductGroup", "get_group"]
