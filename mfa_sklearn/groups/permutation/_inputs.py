"""Checks of per-row and edge fields, and the exact edge matrix the frames compare.

Permutation frames compare values exactly, so the inputs must be real, finite and of
consistent shapes: per-row fields ``(B, n, w)`` with the same ``B`` and ``n``, edge
fields ``(B, n, n, w)``. ``-0.0`` and ``0.0`` are made one value (``x + 0.0``) before any
comparison, and NaN is rejected (it equals nothing, not even itself, so no order of rows
holding it is canonical).

Edge fields describe undirected graphs: S_n acts on them by ``A -> A[pi][:, pi]``, and
the canonical labeling needs ``A = A^T`` exactly. A non-symmetric field is an error, or,
on request, is replaced by ``(A + A^T) / 2``, which commutes with every relabelling and
is bitwise symmetric (keeping one triangle would not be equivariant).
"""

import numpy as np

from ...exceptions import NonFiniteInputError, first_indices
from .._namespace import all_finite


def _check_numeric(a, need, field):
    """A real numeric dtype (else ValueError ``need``, with the dtype) and finite values
    (else NonFiniteInputError naming ``field`` and the samples)."""
    if np.iscomplexobj(a) or not (np.issubdtype(a.dtype, np.floating)
                                  or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{need}; got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and not all_finite(np, a):
        bad = ~np.all(np.isfinite(a), axis=tuple(range(1, a.ndim)))
        raise NonFiniteInputError(f"{field} contains NaN or inf in {first_indices(bad)}; "
                                  "frames cannot be computed")


def check_per_row(name, arrays, what):
    """Every array (B, n, w), same B and n, numeric and finite."""
    B, n = arrays[0].shape[:2]
    for a in arrays:
        if a.ndim != 3:
            raise ValueError(f"group {name} takes per-row fields of shape (n_samples, "
                             f"n_rows, width); got {what} of shape {tuple(a.shape)}")
        if a.shape[0] != B or a.shape[1] != n:
            raise ValueError(f"group {name} permutes rows, so all per-row fields need the "
                             f"same number of samples and rows; got {(B, n)} and "
                             f"{tuple(a.shape[:2])}")
        _check_numeric(a, f"group {name} needs real numeric rows", "a field")
    if n == 0:
        raise ValueError(f"group {name} needs at least one row per sample")


def check_edges(name, edges, nodes):
    """Edge fields (B, n, n, w) and node fields (B, n, k): shapes, dtypes, finiteness."""
    first = edges[0]
    if first.ndim != 4 or first.shape[1] != first.shape[2]:
        raise ValueError(f"group {name!r} takes edge fields of shape (n_samples, n, n, "
                         f"width); got {tuple(first.shape)}")
    B, n = first.shape[:2]
    if n == 0:
        raise ValueError(f"group {name!r} needs at least one vertex per sample")
    for a in edges:
        if a.shape[:3] != (B, n, n) or a.ndim != 4:
            raise ValueError(f"group {name!r}: all edge fields need shape ({B}, {n}, {n}, "
                             f"width); got {tuple(a.shape)}")
        _check_numeric(a, f"group {name!r} needs real numeric edge fields", "an edge field")
    if nodes:
        check_per_row(name, [edges[0][:, :, 0, :1]] + nodes, "a node field")


def edge_matrix_of(name, edges, symmetrize):
    """The edge fields side by side, float64 (B, n, n, w), symmetric (or symmetrized),
    with ``-0.0`` replaced by ``0.0`` for exact comparisons."""
    A = np.concatenate([a.astype(np.float64, copy=False) for a in edges], axis=3)
    if symmetrize:
        A = (A + np.swapaxes(A, 1, 2)) / 2
    else:
        bad = np.flatnonzero(np.any(np.swapaxes(A, 1, 2) != A, axis=(1, 2, 3)))
        if len(bad):
            asym = np.max(np.abs(A[bad] - np.swapaxes(A[bad], 1, 2)), axis=(1, 2, 3))
            hint = ("Pass symmetrize=True (GraphGroup(symmetrize=True)) to use (A + A^T)/2."
                    if name in ("graph", "S_n") else
                    "Symmetrize them first, e.g. (A + A^T)/2.")
            raise ValueError(
                f"group {name!r} needs symmetric adjacency matrices (edge fields); "
                f"{first_indices(bad)} are not: sample {bad[0]} has max abs(A - A^T) = "
                f"{asym[0]:.3g}. {hint}")
    return A + 0.0
