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

**Ties at the cutoff.** Likewise an atom at the cutoff distance (an fcc cluster with
the lattice constant as the cutoff) would be a neighbour or not by the rounding of its
distance, and change the neighbourhood's frame though its cutoff weight is zero: atoms
within the band below the cutoff are left out too, ``r < cutoff (1 - band)`` is the
neighbour test. Their cosine cutoff weight is below ``(pi band)^2 / 4``.

**Atoms left out within the cutoff** make a ``UserWarning`` on the host (numpy): a cap
below the number of atoms within the cutoff silently drops part of the interaction
range (on 19-atom clusters, 12 of 18 other atoms: the sum kernel's energies 15 times
worse).
"""

import warnings

import numpy as np
from scipy.spatial import cKDTree

from ..exceptions import first_indices
from ..groups._namespace import constant, get_namespace, take_rows

#: systems with more atoms than this use a k-d tree
ALL_PAIRS_MAX_ATOMS = 96
#: all-pairs distances computed at once (entries of (systems, n, n) arrays)
_CHUNK_PAIRS = 2 ** 21


def neighbour_lists(pos, present, *, cutoff, n_neighbors=None, band):
    """Neighbours of every atom.

    Parameters
    ----------
    pos : ndarray or torch.Tensor of shape (S, n, d), float64
        Positions (absent atoms: any finite filler).
    present : bool array of shape (S, n), of pos's namespace
    cutoff : float
    n_neighbors : int or None
        At most this many neighbours per atom, the nearest (None: every atom within
        the cutoff).
    band : float
        Relative band of a tie at the k-th neighbour and at the cutoff (see the module
        docstring).

    Returns
    -------
    index : int64 array of shape (S, n, k)
        Atom index (within the system) of each neighbour, in no particular order; -1
        where there is none (absent atoms have none). ``k`` is ``n_neighbors``, or
        ``n - 1`` for None.
    distance : array of shape (S, n, k)
        Their distances (inf where there is none).

    Raises
    ------
    ValueError
        Two present atoms of a system at the same position (closer than the rounding
        level of the coordinates), named by system and atom. Numpy only: torch
        callers check :func:`coincident_atoms` when they next wait for the device.

    Notes
    -----
    Tensors are processed on their device by all pairs, also for large systems.
    """
    xp = get_namespace(pos)
    S, n, _ = pos.shape
    width = (n - 1) if n_neighbors is None else n_neighbors
    # the nearest `keep` atoms and the distance of the next one (inf: none left out)
    keep = min(width, n - 1)
    reach = cutoff * (1.0 - band)   # ties at the cutoff are left out (module docstring)
    if n > ALL_PAIRS_MAX_ATOMS and xp is np:
        index, distance, boundary = _tree_neighbours(pos, present, reach, keep)
    else:
        step = max(1, _CHUNK_PAIRS // max(1, n * n))
        parts = [_all_pairs(pos[s:s + step], present[s:s + step], reach, keep)
                 for s in range(0, S, step)] or [_all_pairs(pos, present, reach, keep)]
        index, distance, boundary = (xp.concat(a, axis=0) for a in zip(*parts))
    if xp is np:
        raise_coincident(coincident_atoms(pos, distance), distance)
        if n_neighbors is not None and np.isfinite(boundary).any():
            warnings.warn(
                f"n_neighbors={n_neighbors} leaves out atoms closer than the cutoff "
                f"({cutoff:g}) from some neighbourhoods, and the features and frames do "
                "not see them; to keep them, set n_neighbors=None (every atom within the "
                "cutoff) or a larger value, or a smaller cutoff", UserWarning,
                stacklevel=2)
    # neighbours tied with the first one left out are left out with it
    tied = distance >= (boundary * (1.0 - band))[..., None]
    if xp is np:
        index[tied] = -1
        distance[tied] = np.inf
    else:
        index = xp.where(tied, xp.full_like(index, -1), index)
        distance = xp.where(tied, xp.full_like(distance, np.inf), distance)
    if keep < width:
        device = getattr(pos, "device", None)
        index = xp.concat([index, xp.full((S, n, width - keep), -1, dtype=index.dtype,
                                          device=device)], axis=2)
        distance = xp.concat([distance, xp.full((S, n, width - keep), np.inf,
                                                dtype=distance.dtype, device=device)],
                             axis=2)
    return index, distance


def _off_diagonal(n):
    """(n, n - 1): row i lists the atoms other than i."""
    j = np.arange(n - 1)[None, :]
    return j + (j >= np.arange(n)[:, None])


def _all_pairs(pos, present, cutoff, keep):
    """The ``keep`` nearest neighbours within the cutoff (any order) and the distance
    of the nearest one left out, from all pairwise distances (numpy or torch, on the
    positions' device)."""
    xp = get_namespace(pos)
    S, n, d = pos.shape
    device = getattr(pos, "device", None)
    d2 = xp.zeros((S, n, n), dtype=pos.dtype, device=device)
    for c in range(d):
        diff = pos[:, :, None, c] - pos[:, None, :, c]
        d2 += diff * diff
    dist = np.sqrt(d2, out=d2) if xp is np else xp.sqrt(d2)   # numpy: in place
    far = ~(present[:, :, None] & present[:, None, :]) | (dist >= cutoff)
    if xp is np:
        np.putmask(dist, far, np.inf)
    else:
        dist = xp.where(far, xp.full_like(dist, np.inf), dist)
    others = constant(xp, _off_diagonal(n), device=device)               # (n, n - 1)
    dist = take_rows(xp, xp.reshape(dist, (S * n, n)),
                     xp.reshape(xp.broadcast_to(others, (S, n, n - 1)), (S * n, n - 1)))
    dist = xp.reshape(dist, (S, n, n - 1))
    if keep == n - 1:   # every other atom is a candidate: no order needed
        index = xp.broadcast_to(others, (S, n, n - 1))
        boundary = xp.full((S, n), np.inf, dtype=dist.dtype, device=device)
    else:
        order, boundary = _nearest(xp, dist, keep)
        index = xp.reshape(xp.take(xp.reshape(others, (-1,)), xp.reshape(
            order + (n - 1) * xp.arange(n, device=device)[None, :, None], (-1,))),
            order.shape)
        dist = xp.reshape(take_rows(xp, xp.reshape(dist, (S * n, n - 1)),
                                    xp.reshape(order, (S * n, keep))), (S, n, keep))
    index = xp.where(xp.isinf(dist), xp.full_like(index, -1), index)
    return index, dist, boundary


def _nearest(xp, dist, keep):
    """Positions of the ``keep`` smallest entries along the last axis of ``dist`` (in
    any order) and the next smallest value (the ``keep``-th in sorted order)."""
    if xp is np:
        order = np.argpartition(dist, keep, axis=2)
        boundary = np.take_along_axis(dist, order[..., keep:keep + 1], axis=2)[..., 0]
        return order[..., :keep], boundary
    values, order = dist.topk(keep + 1, dim=2, largest=False, sorted=True)
    return order[..., :keep], values[..., keep]


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


def coincident_atoms(pos, distance):
    """Atoms (S, n) with a neighbour closer than the rounding level of their system's
    coordinates, from the positions (S, n, d) and the neighbour distances (S, n, k)."""
    xp = get_namespace(pos)
    if distance.shape[2] == 0:
        return xp.zeros(distance.shape[:2], dtype=xp.bool, device=getattr(pos, "device",
                                                                          None))
    scale = xp.max(xp.abs(pos), axis=(1, 2))          # finite: absent atoms are filled
    tiny = np.finfo(np.float64).tiny
    level = 64 * np.finfo(np.float64).eps * xp.where(scale > tiny, scale,
                                                     xp.full_like(scale, tiny))
    return xp.min(distance, axis=2) <= level[:, None]


def raise_coincident(close, distance):
    """A clear error where :func:`coincident_atoms` found any (numpy arrays)."""
    if np.any(close):
        system, atom = (int(i) for i in np.argwhere(close)[0])
        nearest = distance[system, atom].min()
        raise ValueError(
            f"atoms coincide in {first_indices(close.any(axis=1))}: system {system}, atom "
            f"{atom} has a neighbour at distance {nearest:.3g}, within the rounding "
            "level of its coordinates; remove duplicate atoms")
