"""Neighbour lists of atoms in systems of different sizes, batched.

For each present atom, the indices of its neighbours: the other present atoms of its
system closer than ``cutoff``, at most ``n_neighbors`` of them, nearest first.

Small systems go through one all-pairs distance array per chunk of systems; large ones
through scipy's ``cKDTree`` (``n log n``), one tree per system. Both return the same
lists.

**Ties at the k-th neighbour.** Keeping the k nearest is a decision on computed
distances. Where the k-th and the (k+1)-th are equally far (a symmetric cluster), any
choice between them would depend on the atoms' labels and orientation, so every
neighbour within a relative band ``sqrt(eps)`` of the (k+1)-th distance is dropped
with it: the neighbourhood keeps fewer than k atoms but stays invariant under
rotations, reflections and relabellings (the band exceeds the rounding of distances
computed from rotated coordinates).
"""

import numpy as np
from scipy.spatial import cKDTree

from ..exceptions import first_indices

#: systems with more atoms than this use a k-d tree
ALL_PAIRS_MAX_ATOMS = 96
#: all-pairs distances computed at once (entries of (systems, n, n) arrays)
_CHUNK_PAIRS = 2 ** 21


def neighbour_lists(pos, present, *, cutoff, n_neighbors=None, band):
    """Neighbours of every atom, nearest first.

    Parameters
    ----------
    pos : ndarray of shape (S, n, d), float64
        Positions (absent atoms: any finite filler).
    present : ndarray of shape (S, n) of bool
    cutoff : float
    n_neighbors : int or None
        At most this many neighbours per atom (None: every atom within the cutoff).
    band : float
        Relative band of a tie at the k-th neighbour (see the module docstring).

    Returns
    -------
    index : ndarray of shape (S, n, k) of int64
        Atom index (within the system) of each neighbour; -1 where there is none
        (absent atoms have none).
    distance : ndarray of shape (S, n, k)
        Their distances (inf where there is none).

    Raises
    ------
    ValueError
        Two present atoms of a system at the same position (closer than the rounding
        level of the coordinates), named by system and atom.
    """
    S, n, _ = pos.shape
    if n > ALL_PAIRS_MAX_ATOMS:
        index, distance = _tree_neighbours(pos, present, cutoff, n_neighbors)
    else:
        k = (n - 1) if n_neighbors is None else min(n_neighbors + 1, n - 1)
        step = max(1, _CHUNK_PAIRS // max(1, n * n))
        parts = [_all_pairs(pos[s:s + step], present[s:s + step], cutoff, k)
                 for s in range(0, S, step)]
        index = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, n, k), int)
        distance = (np.concatenate([p[1] for p in parts]) if parts
                    else np.zeros((0, n, k)))
    _check_coincident(pos, distance)
    width = (n - 1) if n_neighbors is None else n_neighbors
    return _keep_k(index, distance, width, band)


def _all_pairs(pos, present, cutoff, k):
    """The k nearest neighbours within the cutoff, from all pairwise distances."""
    S, n, d = pos.shape
    d2 = np.zeros((S, n, n))
    for c in range(d):
        diff = pos[:, :, None, c] - pos[:, None, :, c]
        d2 += diff * diff
    dist = np.sqrt(d2)
    pair = present[:, :, None] & present[:, None, :]
    pair[:, np.arange(n), np.arange(n)] = False
    dist[~pair | (dist >= cutoff)] = np.inf
    if k < n - 1:
        index = np.argpartition(dist, k - 1, axis=2)[..., :k] if k > 0 else (
            np.zeros((S, n, 0), dtype=np.int64))
        part = np.take_along_axis(dist, index, axis=2)
    else:
        index = np.broadcast_to(np.arange(n), (S, n, n)).copy()
        part = dist
    order = np.argsort(part, axis=2, kind="stable")
    index = np.take_along_axis(index, order, axis=2)[..., :k]
    distance = np.take_along_axis(part, order, axis=2)[..., :k]
    index[np.isinf(distance)] = -1
    return index.astype(np.int64), distance


def _tree_neighbours(pos, present, cutoff, n_neighbors):
    """The neighbours of large systems with one k-d tree per system (same output as
    :func:`_all_pairs`, with one more column for the tie rule)."""
    S, n, _ = pos.shape
    trees, counts = [], []
    for s in range(S):
        atoms = np.flatnonzero(present[s])
        tree = cKDTree(pos[s, atoms])
        trees.append((atoms, tree))
        counts.append(int(np.max(tree.query_ball_point(pos[s, atoms], cutoff,
                                                       return_length=True), initial=1)))
    within = max(counts) - 1            # the most neighbours any atom has (self excluded)
    k = within if n_neighbors is None else min(n_neighbors + 1, within)
    index = np.full((S, n, k), -1, dtype=np.int64)
    distance = np.full((S, n, k), np.inf)
    for s, (atoms, tree) in enumerate(trees):
        if k == 0 or len(atoms) < 2:
            continue
        dist, found = tree.query(pos[s, atoms], k=min(k + 1, len(atoms)),
                                 distance_upper_bound=cutoff)
        dist, found = dist[:, 1:], found[:, 1:]      # the atom itself comes first
        hit = np.isfinite(dist) & (dist < cutoff)
        index[s, atoms, :dist.shape[1]] = np.where(hit, atoms[np.minimum(found, len(atoms) - 1)],
                                                   -1)
        distance[s, atoms, :dist.shape[1]] = np.where(hit, dist, np.inf)
    return index, distance


def _check_coincident(pos, distance):
    """Clear error for two atoms at the same position."""
    if distance.shape[2] == 0:
        return
    scale = np.max(np.abs(np.where(np.isfinite(pos), pos, 0.0)), axis=(1, 2))
    level = 64 * np.finfo(np.float64).eps * np.maximum(scale, np.finfo(np.float64).tiny)
    close = distance[..., 0] <= level[:, None]
    if np.any(close):
        system, atom = (int(i) for i in np.argwhere(close)[0])
        raise ValueError(
            f"atoms coincide in {first_indices(close.any(axis=1))}: system {system}, atom "
            f"{atom} has a neighbour at distance {distance[system, atom, 0]:.3g}, within "
            "the rounding level of its coordinates; remove duplicate atoms")


def _keep_k(index, distance, width, band):
    """Exactly ``width`` columns: padded with none (-1, inf), or cut to the nearest
    ``width``, dropping the neighbours tied with the first one left out (within the
    relative ``band``)."""
    k = distance.shape[2]
    if k <= width:
        S, n = index.shape[:2]
        return (np.concatenate([index, np.full((S, n, width - k), -1, np.int64)], axis=2),
                np.concatenate([distance, np.full((S, n, width - k), np.inf)], axis=2))
    boundary = distance[..., width]                             # the first left out
    index, distance = index[..., :width].copy(), distance[..., :width].copy()
    tied = distance >= (boundary * (1.0 - band))[..., None]
    index[tied] = -1
    distance[tied] = np.inf
    return index, distance
