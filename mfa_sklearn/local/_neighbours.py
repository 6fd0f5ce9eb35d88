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
    """Neighbours of every atom.

    Parameters
    ----------
    pos : ndarray of shape (S, n, d), float64
        Positions (absent atoms: any finite filler).
    present : ndarray of shape (S, n) of bool
    cutoff : float
    n_neighbors : int or None
        At most this many neighbours per atom, the nearest (None: every atom within
        the cutoff).
    band : float
        Relative band of a tie at the k-th neighbour (see the module docstring).

    Returns
    -------
    index : ndarray of shape (S, n, k) of int64
        Atom index (within the system) of each neighbour, in no particular order; -1
        where there is none (absent atoms have none). ``k`` is ``n_neighbors``, or
        ``n - 1`` for None.
    distance : ndarray of shape (S, n, k)
        Their distances (inf where there is none).

    Raises
    ------
    ValueError
        Two present atoms of a system at the same position (closer than the rounding
        level of the coordinates), named by system and atom.
    """
    S, n, _ = pos.shape
    width = (n - 1) if n_neighbors is None else n_neighbors
    # the nearest `keep` atoms and the distance of the next one (inf: none left out)
    keep = min(width, n - 1)
    if n > ALL_PAIRS_MAX_ATOMS:
        index, distance, boundary = _tree_neighbours(pos, present, cutoff, keep)
    else:
        step = max(1, _CHUNK_PAIRS // max(1, n * n))
        parts = [_all_pairs(pos[s:s + step], present[s:s + step], cutoff, keep)
                 for s in range(0, S, step)] or [_all_pairs(pos, present, cutoff, keep)]
        index, distance, boundary = (np.concatenate(a) for a in zip(*parts))
    _check_coincident(pos, distance)
    # neighbours tied with the first one left out are left out with it
    tied = distance >= (boundary * (1.0 - band))[..., None]
    index[tied] = -1
    distance[tied] = np.inf
    if keep < width:
        index = np.concatenate([index, np.full((S, n, width - keep), -1)], axis=2)
        distance = np.concatenate([distance, np.full((S, n, width - keep), np.inf)], axis=2)
    return index, distance


def _off_diagonal(n):
    """(n, n - 1): row i lists the atoms other than i."""
    j = np.arange(n - 1)[None, :]
    return j + (j >= np.arange(n)[:, None])


def _all_pairs(pos, present, cutoff, keep):
    """The ``keep`` nearest neighbours within the cutoff (any order) and the distance
    of the nearest one left out, from all pairwise distances."""
    S, n, d = pos.shape
    d2 = np.zeros((S, n, n))
    for c in range(d):
        diff = pos[:, :, None, c] - pos[:, None, :, c]
        d2 += diff * diff
    dist = np.sqrt(d2, out=d2)
    np.putmask(dist, ~(present[:, :, None] & present[:, None, :]) | (dist >= cutoff), np.inf)
    others = _off_diagonal(n)                                       # (n, n - 1)
    dist = np.take_along_axis(dist, np.broadcast_to(others, (S, n, n - 1)), axis=2)
    if keep == n - 1:   # every other atom is a candidate: no order needed
        index = np.broadcast_to(others, (S, n, n - 1)).copy()
        boundary = np.full((S, n), np.inf)
    else:
        order = np.argpartition(dist, keep, axis=2)
        boundary = np.take_along_axis(dist, order[..., keep:keep + 1], axis=2)[..., 0]
        order = order[..., :keep]
        index = others[np.arange(n)[None, :, None], order]
        dist = np.take_along_axis(dist, order, axis=2)
    index[np.isinf(dist)] = -1
    return index, dist, boundary


def _tree_neighbours(pos, present, cutoff, keep):
    """:func:`_all_pairs` for large systems, with one k-d tree per system."""
    S, n, _ = pos.shape
    index = np.full((S, n, keep), -1, dtype=np.int64)
    distance = np.full((S, n, keep), np.inf)
    boundary = np.full((S, n), np.inf)
    for s in range(S):
        atoms = np.flatnonzero(present[s])
        if len(atoms) < 2:
            continue
        found_k = min(keep + 2, len(atoms))       # the atom itself, keep, the next one
        dist, found = cKDTree(pos[s, atoms]).query(pos[s, atoms], k=found_k,
                                                   distance_upper_bound=cutoff)
        dist, found = dist[:, 1:], found[:, 1:]   # the atom itself comes first
        hit = dist < cutoff
        columns = min(keep, dist.shape[1])
        index[s, atoms, :columns] = np.where(hit, atoms[np.minimum(found, len(atoms) - 1)],
                                             -1)[:, :columns]
        distance[s, atoms, :columns] = np.where(hit, dist, np.inf)[:, :columns]
        if dist.shape[1] > keep:
            boundary[s, atoms] = np.where(hit[:, keep], dist[:, keep], np.inf)
    return index, distance, boundary


def _check_coincident(pos, distance):
    """Clear error for two atoms at the same position."""
    if distance.shape[2] == 0:
        return
    scale = np.max(np.abs(pos), axis=(1, 2))          # finite: absent atoms are filled
    level = 64 * np.finfo(np.float64).eps * np.maximum(scale, np.finfo(np.float64).tiny)
    nearest = distance.min(axis=2)
    close = nearest <= level[:, None]
    if np.any(close):
        system, atom = (int(i) for i in np.argwhere(close)[0])
        raise ValueError(
            f"atoms coincide in {first_indices(close.any(axis=1))}: system {system}, atom "
            f"{atom} has a neighbour at distance {nearest[system, atom]:.3g}, within "
            "the rounding level of its coordinates; remove duplicate atoms")
