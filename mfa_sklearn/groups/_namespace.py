"""The one small shim that lets the group math run on numpy arrays and torch tensors.

NumPy >= 2.1 implements the array API standard in its main namespace, so numpy arrays
use ``numpy`` itself (no wrapper overhead in the hot path); anything else (torch
tensors) goes through ``array_api_compat``.
"""

import numpy as np


def get_namespace(*arrays):
    """Return the array namespace shared by ``arrays`` (``None`` entries ignored)."""
    arrays = [a for a in arrays if a is not None]
    if all(isinstance(a, np.ndarray) for a in arrays):
        return np
    import array_api_compat

    return array_api_compat.array_namespace(*arrays)


def float64_of(xp, x):
    """``x`` as float64 (complex stays complex128) on its own device, copying only if needed."""
    target = xp.complex128 if xp.isdtype(x.dtype, "complex floating") else xp.float64
    return x if x.dtype == target else xp.astype(x, target)


def first_true(xp, mask, axis=0):
    """Index of the first True along ``axis`` (0 where a slice has none)."""
    if xp is not np:  # torch's argmax refuses booleans
        mask = xp.astype(mask, xp.uint8)
    return xp.argmax(mask, axis=axis)


def machine_eps(dtype):
    """Machine epsilon of a floating or complex dtype (numpy or torch)."""
    try:
        return float(np.finfo(dtype).eps)
    except TypeError:
        import torch

        return float(torch.finfo(dtype).eps)
