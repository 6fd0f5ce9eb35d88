"""Atomistic systems <-> the padded X of the estimators, and per-atom targets <-> rows.

The estimators take one system per row of ``X``; systems of different sizes are padded
with *absent* atoms (all-NaN rows) up to the largest one. With the fields
``{"pos": "point", "Z": "scalar"}`` (plus ``"v": "vector"`` for velocities), 2-D ``X``
holds field after field: the ``3 * n_max`` coordinates ``x0, y0, z0, x1, ...``, then
the velocities in the same order where present, then the ``n_max`` atomic numbers.
3-D ``X`` of shape ``(n_systems, n_max, width)`` holds them side by side per atom.
Per-atom targets such as forces are ``(n_systems, n_max * 3)`` arrays with NaN rows for
the absent atoms (:func:`pad_per_atom`, :func:`unpad_per_atom`).

:func:`atoms_to_X` takes any objects with ``get_positions()`` and
``get_atomic_numbers()`` (and ``get_velocities()`` for velocities), such as
``ase.Atoms``; only :func:`X_to_atoms` needs ASE (``pip install "mfa_sklearn[atoms]"``).
Cells and periodic boundaries are not carried: the systems are free clusters or
molecules.
"""

import warnings

import numpy as np

from .exceptions import LayoutError, MissingDependencyError, first_indices
from .layout import Layout, parse_fields

__all__ = ["X_to_atoms", "atoms_to_X", "pad_per_atom", "unpad_per_atom"]

ATOMS_HINT = 'pip install "mfa_sklearn[atoms]"'


def _fields(velocities):
    if velocities:
        return {"pos": "point", "v": "vector", "Z": "scalar"}
    return {"pos": "point", "Z": "scalar"}


def _padded(arrays, n_max, width, name):
    """Stack per-system arrays of shape (n_i, width) into (n_systems, n_max, width),
    NaN where a system has fewer than ``n_max`` atoms; also return the counts."""
    arrays = [np.asarray(a, dtype=np.float64).reshape(-1, width) for a in arrays]
    counts = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    longest = int(counts.max(initial=0))
    if n_max is None:
        n_max = longest
    elif longest > n_max:
        raise ValueError(f"{name}: a system has {longest} atoms, more than n_max={n_max}; "
                         "pass a larger n_max or None (the largest system)")
    out = np.full((len(arrays), n_max, width), np.nan)
    out[np.arange(n_max) < counts[:, None]] = np.concatenate(arrays) if arrays else 0.0
    return out, counts


def padded_to_X(pos, numbers, velocities=None, *, three_d=False):
    """X and its fields from padded (n_systems, n_max, 3) positions, (n_systems, n_max)
    atomic numbers and optional (n_systems, n_max, 3) velocities."""
    fields = _fields(velocities is not None)
    layout = Layout(parse_fields(fields, 3), pos.shape[1], three_d=three_d)
    parts = {"pos": pos, "Z": numbers[..., None], "v": velocities}
    return layout.join(parts), fields


def atoms_to_X(atoms_list, *, velocities=False, three_d=False, n_max=None):
    """Pack atomistic systems into the padded ``X`` of the estimators.

    Parameters
    ----------
    atoms_list : sequence of ase.Atoms
        The systems, or any objects with ``get_positions()`` (Å) and
        ``get_atomic_numbers()`` (and ``get_velocities()`` if ``velocities``). Finite
        systems: periodic ones (``pbc`` set) lose their cell, with a warning.
    velocities : bool, default=False
        Also store the velocities, as a ``"v": "vector"`` field between positions and
        atomic numbers (ASE units: Å per ASE time unit).
    three_d : bool, default=False
        Return 3-D ``X`` of shape ``(n_systems, n_max, width)`` instead of 2-D.
    n_max : int or None, default=None
        Atoms per row; None means the largest system. Smaller systems are padded with
        absent (all-NaN) atoms at the end.

    Returns
    -------
    X : ndarray of float64
        Shape ``(n_systems, n_max * width)``, field-major (positions ``x0, y0, z0, x1,
        ...``, then velocities, then atomic numbers), or ``(n_systems, n_max, width)``
        if ``three_d``; ``width`` is 4 (7 with velocities).
    fields : dict
        ``{"pos": "point", "Z": "scalar"}``, with ``"v": "vector"`` after ``"pos"`` if
        ``velocities``.

    Examples
    --------
    >>> from ase import Atoms
    >>> X, fields = atoms_to_X([Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]),
    ...                         Atoms("H", positions=[[0, 0, 0]])])
    >>> X.shape, fields
    ((2, 8), {'pos': 'point', 'Z': 'scalar'})
    """
    if n_max is not None and (isinstance(n_max, bool) or not isinstance(n_max, int | np.integer)
                              or n_max < 1):
        raise ValueError(f"n_max must be a positive integer or None, got {n_max!r}")
    atoms_list = list(atoms_list)
    if not atoms_list:
        raise ValueError("atoms_list is empty; pass at least one system")
    needed = ("get_positions", "get_atomic_numbers") + (("get_velocities",) if velocities
                                                          else ())
    for method in needed:
        if not callable(getattr(atoms_list[0], method, None)):
            raise TypeError(f"atoms_list holds {type(atoms_list[0]).__name__} objects, which "
                            f"have no {method}(); pass ase.Atoms or objects with {needed}")
    periodic = [i for i, a in enumerate(atoms_list)
                if callable(getattr(a, "get_pbc", None)) and np.any(a.get_pbc())]
    if periodic:
        warnings.warn(
            f"atoms_to_X: {first_indices(periodic)} of atoms_list are periodic (pbc "
            "set). X holds positions only: the cell is dropped, and the estimators see "
            "each system as a finite cluster, without the neighbours across the cell's "
            "faces. Set atoms.pbc = False for clusters and molecules to silence this.",
            UserWarning, stacklevel=2)
    pos, _ = _padded([a.get_positions() for a in atoms_list], n_max, 3, "atoms_list")
    numbers, _ = _padded([a.get_atomic_numbers() for a in atoms_list], pos.shape[1], 1,
                         "atoms_list")
    vel = None
    if velocities:
        vel, _ = _padded([a.get_velocities() for a in atoms_list], pos.shape[1], 3,
                         "atoms_list")
    return padded_to_X(pos, numbers[..., 0], vel, three_d=three_d)


def _pick(layout, kind, name, preferred):
    """The field of this kind: the one called ``preferred``, else the only one."""
    candidates = [f for f in layout.fields if f.kind == kind]
    named = [f for f in candidates if f.name == preferred]
    if named:
        return named[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates and name == "velocities":
        return None
    found = [f.name for f in candidates]
    raise LayoutError(f"fields: need one {kind!r} field for the {name} (or one named "
                      f"{preferred!r}); found {found or 'none'}")


def X_to_atoms(X, fields):
    """Unpack the padded ``X`` of the estimators into ``ase.Atoms``, one per row.

    Parameters
    ----------
    X : array-like of shape (n_systems, n_columns) or (n_systems, n_max, width)
        Padded systems as made by :func:`atoms_to_X`; absent atoms (rows whose
        positions are all NaN) are dropped.
    fields : dict
        The fields of ``X``: one "point" field (positions, Å), one "scalar" field of
        atomic numbers (the one named ``"Z"``, else the only scalar field) and
        optionally one "vector" field of velocities (named ``"v"``, else the only one).

    Returns
    -------
    list of ase.Atoms
        Without cell or periodic boundaries.

    Raises
    ------
    MissingDependencyError
        If ASE is not installed.
    LayoutError
        If ``X`` does not match ``fields`` or the fields lack positions or numbers.
    ValueError
        If a present atom has a NaN coordinate or a non-integer atomic number.
    """
    try:
        from ase import Atoms
    except ImportError:
        raise MissingDependencyError(f"X_to_atoms needs ASE; install it with: {ATOMS_HINT}"
                                     ) from None
    X = np.asarray(X, dtype=np.float64)
    if X.ndim not in (2, 3):
        raise LayoutError(f"X must be 2-D or 3-D; got shape {X.shape}")
    layout = Layout.infer(fields, 3, X.shape[1:])
    parts = layout.split(X)
    pos = parts[_pick(layout, "point", "positions", "pos").name]
    numbers = parts[_pick(layout, "scalar", "atomic numbers", "Z").name][..., 0]
    vel_field = _pick(layout, "vector", "velocities", "v")
    vel = None if vel_field is None else parts[vel_field.name]
    nan = np.isnan(pos)
    present = ~nan.all(axis=-1)
    bad = present & nan.any(axis=-1)
    if bad.any():
        raise ValueError(f"X: {int(bad.sum())} atom(s) have some but not all position "
                         "coordinates NaN (first in system "
                         f"{int(np.argwhere(bad)[0, 0])}); an absent atom is all NaN")
    Z = numbers[present]
    if not np.all(np.isfinite(Z) & (np.round(Z) == Z) & (Z >= 1)):
        raise ValueError("X: present atoms need positive integer atomic numbers in the "
                         "scalar field; found other values")
    return [Atoms(numbers=numbers[i, m].astype(np.int64), positions=pos[i, m],
                  velocities=None if vel is None else vel[i, m])
            for i, m in enumerate(present)]


def pad_per_atom(arrays, n_max=None, *, three_d=False):
    """Stack per-atom arrays (e.g. forces) of systems of different sizes, NaN-padded.

    Parameters
    ----------
    arrays : sequence of array-like of shape (n_atoms_i, width)
        One array per system, e.g. ``atoms.get_forces()``.
    n_max : int or None, default=None
        Atoms per row; None means the largest system.
    three_d : bool, default=False
        Return shape ``(n_systems, n_max, width)`` instead of ``(n_systems, n_max *
        width)``.

    Returns
    -------
    Y : ndarray of float64 of shape (n_systems, n_max * width)
        Atom-major (``fx0, fy0, fz0, fx1, ...``), NaN for absent atoms; the layout of a
        "vector" target field next to :func:`atoms_to_X`'s ``X``.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    if not arrays:
        raise ValueError("arrays is empty; pass one array per system")
    widths = {1 if a.ndim == 1 else a.shape[-1] for a in arrays}
    if len(widths) != 1 or any(a.ndim > 2 for a in arrays):
        raise ValueError("arrays must all have shape (n_atoms_i, width) with the same width; "
                         f"got shapes {sorted({a.shape for a in arrays})[:5]}")
    width = widths.pop()
    Y, _ = _padded(arrays, n_max, width, "arrays")
    return Y if three_d else Y.reshape(len(arrays), -1)


def unpad_per_atom(Y, n_atoms=None, *, width=3):
    """Split NaN-padded per-atom rows back into one array per system.

    Parameters
    ----------
    Y : array-like of shape (n_systems, n_max * width) or (n_systems, n_max, width)
        E.g. forces from :func:`pad_per_atom` or a model's predictions.
    n_atoms : None, array-like of int of shape (n_systems,) or of bool of shape \
(n_systems, n_max)
        Which atoms are present: None means the rows of ``Y`` that are not all NaN;
        counts mean the first ``n_atoms[i]`` atoms of system ``i``; a boolean mask
        names them (e.g. the present atoms of ``X``, whose positions are not NaN).
    width : int, default=3
        Values per atom of 2-D ``Y``.

    Returns
    -------
    list of ndarray of shape (n_atoms_i, width)
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 2:
        if Y.shape[1] % width:
            raise ValueError(f"Y has {Y.shape[1]} columns, not a multiple of width={width}")
        Y = Y.reshape(Y.shape[0], -1, width)
    elif Y.ndim != 3:
        raise ValueError(f"Y must be 2-D or 3-D; got shape {Y.shape}")
    if n_atoms is None:
        present = ~np.isnan(Y).all(axis=-1)
    else:
        n_atoms = np.asarray(n_atoms)
        if n_atoms.dtype == bool:
            present = n_atoms
        else:
            present = np.arange(Y.shape[1]) < n_atoms.reshape(-1, 1)
            if n_atoms.max(initial=0) > Y.shape[1]:
                raise ValueError(f"n_atoms has a system of {int(n_atoms.max())} atoms, more "
                                 f"than the {Y.shape[1]} rows of Y")
        if present.shape != Y.shape[:2]:
            raise ValueError(f"n_atoms must have shape ({Y.shape[0]},) (counts) or "
                             f"{Y.shape[:2]} (mask); got {n_atoms.shape}")
    return np.split(Y[present], np.cumsum(present.sum(axis=1))[:-1])
