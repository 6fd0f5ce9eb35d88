"""Synthetic data sets with exact symmetry.

* :func:`make_charged_nbody` and :func:`load_charged_nbody_splits`: the charged-particle
  N-body system of the equivariance literature (Kipf et al. 2018, "Neural Relational
  Inference", charged particles; used in 3-D as "nbody_small" by Satorras et al. 2021,
  "E(n) Equivariant Graph Neural Networks"), re-implemented so that the simulator
  itself is exactly E(3)-equivariant.
* :func:`make_toy_jets`: toy collider jets, Lorentz-covariant.
* :func:`make_emt_clusters`: small metal clusters sampled by Langevin molecular
  dynamics under ASE's EMT potential, with energies and forces (needs ASE).
"""

from ._emt import EMT_FIELDS, EMT_FORCE_FIELDS, make_emt_clusters
from ._jets import JETS_FIELDS, make_toy_jets
from ._nbody import (
    NBODY_FIELDS,
    NBODY_TARGET_FIELDS,
    load_charged_nbody_splits,
    make_charged_nbody,
)

__all__ = [
    "EMT_FIELDS",
    "EMT_FORCE_FIELDS",
    "JETS_FIELDS",
    "NBODY_FIELDS",
    "NBODY_TARGET_FIELDS",
    "load_charged_nbody_splits",
    "make_charged_nbody",
    "make_emt_clusters",
    "make_toy_jets",
]
