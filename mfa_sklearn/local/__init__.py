"""Local minimal frames for atomistic data: one canonical neighbourhood per atom.

A global canonical form of a whole system is a poor input for the models users bring to
atomistic data: it changes everywhere when one atom moves far away. Local frames give
every atom a minimal frame of its own neighbourhood (the atoms within a cutoff, under
``S_k x O(3)``), so that an estimator sees one row of invariant features per atom and
the system's outputs decompose into atomic terms:

* :class:`LocalFrameRegressor`: per-atom vectors (forces) and scalars (charges),
  exactly equivariant / invariant; additive invariant targets (energies) by exact sum
  kernels;
* :class:`LocalFrameFeaturizer`: per-atom features mapped by any transformer and
  pooled over each system, for any regressor.

References
----------
Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More Symmetries and
Efficiency. ICML 2024, arXiv:2406.07598.
"""

from ._estimators import LocalFrameFeaturizer, LocalFrameRegressor

__all__ = ["LocalFrameFeaturizer", "LocalFrameRegressor"]
