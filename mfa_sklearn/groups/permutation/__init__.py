"""Minimal frames of the symmetric group S_n: sets of rows, graphs and S_n x G.

Permutations act on the left, ``(sigma . x)_i = x_{sigma(i)}``, a geometric group G on
the right: ``(sigma, T, b) . x = P_sigma x T + b``. A minimal frame (Lin et al.) maps a
sample to a canonical form ``c(x)`` by one element ``h``; the backbone runs once, on
``c(x)``, and its output is averaged over the stabilizer of ``c(x)`` (the Reynolds
projection) and mapped back by ``h``:

* **S_n** (:class:`PermutationGroup`): the canonical order is the exact lexicographic
  order of the rows; exactly equal rows are averaged. Error 0, bitwise.
* **Graphs** (:class:`GraphGroup`, or S_n with an ``edge`` field): ``A -> A[pi][:, pi]``;
  colour refinement or nauty's canonical labeling orders the vertices; outputs are
  averaged over the orbits and orbitals of the automorphism group. Error 0, bitwise.
* **S_n x G** (:class:`PermutationProductGroup`, G in O(d), SO(d), E(d), SE(d),
  O(1,d-1), SO(1,d-1)): a canonical order of a G-invariant graph of the rows, then the
  G-frame of the reordered rows; symmetric samples are averaged over the kept
  candidates ``h Stab(c)`` and over twin rows.

**Absent rows.** Every ``frame`` takes ``present`` (B, n), the rows that exist in a
padded batch of systems of different sizes: the frame is that of the present rows alone,
with the zero-filled absent rows last in increasing index order, never averaged, and
zeros as their canonical inputs and outputs (``_absent``).

Modules: ``_ranking`` (batched exact sorts, ranks, class means), ``_refinement``
(colour refinement), ``_nauty`` (canonical labeling with nauty), ``_inputs`` (checks of
the fields), ``_frame`` (:class:`PermutationFrame`, :class:`PermutationElement`) and
``_row_products`` (its products of rows by matrices, rounded alike for every row),
``_symmetric`` (S_n and graphs), ``_invariant_graph``, ``_parts``, ``_search`` and
``_product`` (S_n x G: the invariant graph and fast path, the assembly of the paths,
the search path, the group), ``_absent`` (frames of padded batches with absent rows).

References
----------
Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More Symmetries and
Efficiency. ICML 2024, arXiv:2406.07598.

McKay, Piperno. Practical graph isomorphism, II. J. Symbolic Computation 60, 2014.
"""

from ._frame import PermutationElement, PermutationFrame
from ._nauty import NAUTY_HINT, labeling_backend
from ._product import PermutationProductGroup
from ._symmetric import GraphGroup, PermutationGroup

__all__ = [
           "NAUTY_HINT",
           "GraphGroup",
           "PermutationElement",
           "PermutationFrame",
           "PermutationGroup",
           "PermutationProductGroup",
           "labeling_backend",
]
