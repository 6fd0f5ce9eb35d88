"""Exact sum kernels between systems of atoms.

``K(A, B) = sum_{a in A} sum_{b in B} k(f_a, f_b)`` for per-atom features ``f``: a kernel
between systems that is invariant whenever the features are, and that makes any kernel
method fit additive targets (energies as sums of atomic terms) without atomic labels.
The atom-by-atom kernel is never held whole: it is computed in blocks of atoms and
summed into systems by sparse indicator products.
"""

import itertools

import numpy as np
from scipy import sparse
from sklearn.metrics.pairwise import pairwise_kernels

from .._parallel import Parallel, delayed

#: kernel entries computed at once (atoms of a block times all atoms of the other side)
_BLOCK_ENTRIES = 2 ** 22


def indicator(system, n_systems):
    """Sparse (n_systems, A) matrix with a 1 where atom a belongs to system s."""
    A = len(system)
    return sparse.csr_matrix((np.ones(A), (system, np.arange(A))), shape=(n_systems, A))


def kernel_parameters(estimator):
    """The kernel of a kernel method, as ``pairwise_kernels`` takes it: by name with
    ``gamma``, ``degree``, ``coef0`` (where the estimator has them) and
    ``kernel_params``; a callable of two feature rows with ``kernel_params`` only, as
    ``KernelRidge`` calls it."""
    params = estimator.get_params(deep=False)
    if "kernel" not in params:
        raise TypeError(
            f"target='sum' needs a kernel method as the estimator (one with a 'kernel' "
            f"parameter, such as KernelRidge or SVR): the system kernel is the sum of its "
            f"kernel over the atom pairs of two systems. {type(estimator).__name__} has "
            "none. For other regressors use LocalFrameFeaturizer (pooled atom features) "
            "in a pipeline with it, or per-atom targets (target='scalar' or 'vector').")
    kernel = params["kernel"]
    if isinstance(kernel, str) and kernel == "precomputed":
        raise ValueError("target='sum' computes the system kernel itself from the inner "
                         "estimator's kernel; give it a kernel such as 'rbf', not "
                         "'precomputed'")
    if not (isinstance(kernel, str) or callable(kernel)):
        raise ValueError(f"target='sum' needs a kernel given by name or as a callable of "
                         f"two feature arrays; got {type(kernel).__name__}")
    if callable(kernel):
        return kernel, dict(params.get("kernel_params") or {})
    extra = {key: params[key] for key in ("gamma", "degree", "coef0") if key in params}
    if isinstance(extra.get("gamma"), str):
        raise ValueError(f"target='sum' needs a numeric gamma (or None); got "
                         f"gamma={extra['gamma']!r}, which depends on the inputs the "
                         "estimator would see (the system kernel, not the atoms)")
    extra.update(params.get("kernel_params") or {})
    return kernel, extra


def system_kernel(F, system, n_systems, G, other, n_other, kernel, params, n_jobs=None):
    """``K[s, t] = sum_{a in s, b in t} k(F[a], G[b])``.

    Parameters
    ----------
    F : ndarray of shape (A, p)
        Atom features of the first systems; ``system`` (A,) their systems, in
        non-decreasing order (atoms of a system together).
    n_systems : int
    G : ndarray of shape (A2, p)
        Atom features of the second systems; ``other`` (A2,) their systems.
    n_other : int
    kernel, params
        See :func:`kernel_parameters`.
    n_jobs : int, optional
        Joblib threads over blocks of systems.

    Returns
    -------
    ndarray of shape (n_systems, n_other)
    """
    right = indicator(other, n_other).T.tocsr()                 # (A2, n_other)
    # blocks of whole systems of about `step` atoms: each block fills its own rows
    step = max(1, _BLOCK_ENTRIES // max(1, len(G)))
    bounds = np.append(np.searchsorted(system, np.arange(n_systems)), len(F))
    wanted = np.arange(step, len(F), step)
    cuts = np.unique(np.concatenate([[0], bounds[np.searchsorted(bounds, wanted)], [len(F)]]))

    def block(lo, hi):
        k = pairwise_kernels(F[lo:hi], G, metric=kernel, filter_params=True, **params)
        per_atom = (right.T @ k.T).T                            # (atoms, n_other)
        first = system[lo]
        rows = indicator(system[lo:hi] - first, system[hi - 1] - first + 1)
        return first, rows @ per_atom

    out = np.zeros((n_systems, n_other))
    for first, part in Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(block)(lo, hi) for lo, hi in itertools.pairwise(cuts) if hi > lo):
        out[first:first + len(part)] = part
    return out
