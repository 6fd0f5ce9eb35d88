"""Canonical labeling with nauty (through the optional ``pynauty`` package).

Samples whose colour refinement leaves vertices with equal colours are labelled by
nauty's individualization-refinement search: it returns a canonical labeling ``lab``
(position ``p`` of the canonical order holds vertex ``lab[p]``; isomorphic inputs get
identical relabelled graphs) and generators of the automorphism group ``Aut`` with its
order and its orbits. A canonical vertex colouring, sorted, is passed as the initial
*ordered* partition (graphs: the refined colours; S_n x G: the colours and multiplicities
of the twin classes), so the labeling stays canonical and the search is pruned.

**Edge labels as layers.** nauty labels vertex-coloured simple graphs. An undirected
graph with ``K`` distinct edge labels (dense codes ``0..K-1`` by ascending value, 0 for
an absent edge) becomes ``L = max(1, ceil(log2 K))`` copies of the vertex set: vertex
``(l, i)`` has id ``l * N + i``, ``(l, i) - (l, j)`` is an edge iff bit ``l`` of the
label of ``{i, j}`` is 1, and ``(l, i) - (l + 1, i)`` joins the copies of a vertex. The
ordered partition is the colour cells of layer 0, then one cell per further layer, so
automorphisms map layers to themselves and the layer-0 part of the labeling (and of
every generator) is the answer for the labelled graph. A 0/1 graph is its own layer.

**Orbits and orbitals.** Node outputs are averaged within the orbits of ``Aut`` (nauty
returns them), edge outputs within its orbitals, the orbits on ordered pairs, found by
union-find over ``(i, j) ~ (a(i), a(j))`` for every generator ``a``: the Reynolds
average over ``Aut`` without enumerating it (``|Aut|`` is only reported, as a float: the
empty graph on 100 vertices has ``100!`` automorphisms).

**Threads.** Every call into pynauty (``autgrp``, ``canon_label``) holds one module
lock, :data:`_NAUTY_LOCK`, so concurrent canonicalizations (the engine's joblib threads
for ``n_jobs > 1``, or user threads) are safe. pynauty 2.8.8.1 is not re-entrant: its C
wrapper never releases the GIL around ``nauty()``, but it keeps the graph being labelled
in a static global (``GRAPH_PTR``, set when the C graph is built) through which nauty's
automorphism callback stores generators, and between setting it and calling ``nauty()``
it reads ``adjacency_dict`` and ``vertex_coloring``, Python properties whose bytecode
lets the interpreter switch threads. Another thread's ``autgrp`` or ``canon_label`` can
then repoint ``GRAPH_PTR`` and free its graph: generators land in freed memory (a
segfault) or in the wrong graph (silently wrong generators and orbits). The GIL already
serializes ``nauty()`` itself, so the lock only adds the ordering of the Python
conversions around it (inside the lock: under 2% of the time of canonicalizing cubes
under S_n x O(3); the search around it is Python and holds the GIL anyway). The lock is
renewed in a forked child, where a copy held by another thread would never be released.

**Reproducibility.** Canonical labelings depend on the nauty version: the estimators
record :func:`labeling_backend` at fit time and warn when it changes.

References
----------
McKay, Piperno. Practical graph isomorphism, II. J. Symbolic Computation 60, 2014.

McKay, Piperno. nauty and Traces User's Guide (vertex- and edge-coloured graphs).

Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More Symmetries and
Efficiency. ICML 2024, arXiv:2406.07598.
"""

import functools
import math
import os
import threading

import numpy as np

from ...exceptions import MissingDependencyError, first_indices
from ._ranking import first_occurrence

#: how to install the optional canonical labeling backend
NAUTY_HINT = "pip install 'mfa_sklearn[nauty]'"

#: held around every call into pynauty (see "Threads" in the module docstring)
_NAUTY_LOCK = threading.Lock()


def _new_lock_after_fork():
    # a fork while another thread holds the lock would leave the child's copy locked
    global _NAUTY_LOCK
    _NAUTY_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)


@functools.cache
def labeling_backend():
    """The canonical labeling backend of the search path, with its version.

    Returns
    -------
    str
        E.g. ``"pynauty 2.8.8.1 (nauty2_8_8)"``, or a note that none is installed (then
        only samples the colour refinement separates can be labelled). Labelings, hence
        canonical forms of symmetric samples, may differ between versions.
    """
    try:
        import pynauty
    except ImportError:
        return "none (pynauty is not installed)"
    return f"pynauty {pynauty.__version__} ({getattr(pynauty, '_nauty_version', 'nauty')})"


def import_pynauty(index):
    """The ``pynauty`` module, or a MissingDependencyError naming the samples ``index``
    that need it."""
    try:
        import pynauty
    except ImportError:
        raise MissingDependencyError(
            f"{first_indices(index)} have tied vertex signatures (symmetric or repeated "
            "rows) and need a canonical labeling search; install the optional extra: "
            f"{NAUTY_HINT} (pynauty)") from None
    return pynauty


def layered_graph(pynauty, N, labels, cell):
    """The layered bit-plane encoding of an undirected edge-labelled graph (see the
    module docstring) as a ``pynauty.Graph``.

    Parameters
    ----------
    N : int
        Vertices (layer 0 holds them; vertex ``(layer, i)`` has id ``layer * N + i``).
    labels : ndarray of shape (N * (N - 1) // 2,), int
        Dense labels ``0..K-1`` of the pairs ``np.triu_indices(N, 1)`` (0: absent).
    cell : ndarray of shape (N,), int
        Dense vertex colours ``0..C-1`` of the layer-0 vertices (the ordered partition).
    """
    iu, ju = np.triu_indices(N, 1)
    n_labels = int(labels.max()) + 1 if len(labels) else 1
    L = max(1, math.ceil(math.log2(n_labels)))
    adjacency = {v: [] for v in range(N * L)}
    for layer in range(L):
        on = ((labels >> layer) & 1).astype(bool)
        for i, j in zip(iu[on].tolist(), ju[on].tolist()):
            adjacency[layer * N + i].append(layer * N + j)
        if layer + 1 < L:
            for i in range(N):
                adjacency[layer * N + i].append((layer + 1) * N + i)
    partition = [set(np.flatnonzero(cell == c).tolist()) for c in range(int(cell.max()) + 1)]
    partition += [set(range(layer * N, (layer + 1) * N)) for layer in range(1, L)]
    return pynauty.Graph(N * L, directed=False, adjacency_dict=adjacency,
                         vertex_coloring=partition)


def automorphisms(pynauty, g, N):
    """Generators of ``Aut(g)`` restricted to layer 0 (arrays of shape (N,) mapping
    vertex -> vertex), its order ``|Aut|`` (float) and its orbits (N,) on layer 0."""
    with _NAUTY_LOCK:
        generators, size1, size2, orbits, _ = pynauty.autgrp(g)
    gens = [np.asarray(gen[:N], dtype=np.int64) for gen in generators]
    return gens, float(size1) * 10.0 ** float(size2), np.asarray(orbits[:N], dtype=np.int64)


def canonical_order(pynauty, g, N):
    """nauty's canonical labeling of the layer-0 vertices: position p holds ``lab[p]``."""
    with _NAUTY_LOCK:
        lab = pynauty.canon_label(g)
    return np.asarray(lab[:N], dtype=np.int64)


def nauty_graph(pynauty, A, cell):
    """Canonical labeling, orbits and orbitals of one edge-labelled graph.

    Parameters
    ----------
    A : ndarray of shape (n, n, w)
        Symmetric edge fields (exact values; ``-0.0`` already replaced by ``0.0``).
    cell : ndarray of shape (n,), int
        Canonical vertex colours (dense ranks), giving the ordered partition.

    Returns
    -------
    lab : ndarray of shape (n,)
        Canonical order: position p holds vertex ``lab[p]``.
    orbits : ndarray of shape (n,)
        Orbits of Aut, first-occurrence labels in canonical order.
    orbitals : ndarray of shape (n * n,)
        Orbitals of Aut (pairs ``p * n + q``), first-occurrence labels, canonical order.
    size : float
        ``|Aut|``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(cell)
    iu, ju = np.triu_indices(n, 1)
    # labels 0..K-1 by ascending value, 0 = the value 0 (absent) when present
    pairs = A[iu, ju]
    keys = np.concatenate([np.any(pairs != 0, axis=1, keepdims=True), pairs], axis=1)
    _, upper = np.unique(keys, axis=0, return_inverse=True)
    g = layered_graph(pynauty, n, upper.ravel(), cell)
    images, size, orbits = automorphisms(pynauty, g, n)
    lab = canonical_order(pynauty, g, n)
    # orbitals: union-find over ordered pairs (i, j) ~ (a(i), a(j)), one pass per generator
    pairs = np.arange(n * n)
    i, j = np.divmod(pairs, n)
    src = np.concatenate([pairs] + [pairs for _ in images])
    dst = np.concatenate([pairs] + [a[i] * n + a[j] for a in images])
    _, component = connected_components(
        coo_matrix((np.ones(len(src)), (src, dst)), shape=(n * n, n * n)),
        directed=True, connection="weak")
    canonical_pairs = component.reshape(n, n)[lab][:, lab].reshape(1, n * n)
    return (lab, first_occurrence(orbits[lab][None])[0],
            first_occurrence(canonical_pairs)[0], size)
