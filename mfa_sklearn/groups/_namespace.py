"""The one small shim that lets the group math run on numpy arrays and torch tensors.

NumPy >= 2.1 implements the array API standard in its main namespace, so numpy arrays
use ``numpy`` itself (no wrapper overhead in the hot path); anything else (torch
tensors) goes through ``array_api_compat``. The frame math is written once against that
namespace, so the frames of the matrix groups are computed where the tensors live.

**Working precision.** Frames are computed in float64 (complex128 for complex rows) by
default, whatever the input dtype; :func:`frame_precision` switches to float32
(complex64) for accelerators, half the memory traffic at float32's rounding level.
Tolerances follow the precision: with ``eps`` the machine epsilon of the least precise
of the inputs and the working precision (:func:`machine_eps`, :func:`work_eps`), the
rank tolerance defaults to ``sqrt(eps)`` (1.5e-8 in float64, 3.5e-4 in float32),
near-ties are broken within ``eps^(1/3)``, and canonical coordinates at the rounding
level (a few ``d eps`` times the data's magnitude) are snapped to 0.

**Extreme magnitudes.** Squared norms and Gram products of rows near ``1e154`` overflow
float64 (near ``1e19`` float32), and those of rows near ``1e-154`` underflow to zero.
Frames therefore multiply each sample's frame-defining rows by a power of two,
:func:`power_of_two_scale`, that brings their largest entry near 1 before any
arithmetic, and scale lengths (translations, snapping levels) back afterwards.
Multiplying by a power of two is exact, and every rounded operation commutes with it
away from overflow and underflow, so the scaled sample takes the decisions the
unscaled one would in unbounded floating point, bit for bit.

**Host checks.** Checks that need a value on the host (finiteness tests that raise,
warnings) run only for numpy arrays and CPU tensors (:func:`on_host`); on an accelerator
they would stall the device on every batch.

The helpers that gather rows per sample (:func:`take_rows`) and sum rows per label
(:func:`class_sums`) serve the permutation frames; :func:`class_sums` is the one
primitive with a branch per library, since the array API has no scatter-add.
"""

import contextlib
import contextvars
import functools
import math

import numpy as np

#: the precisions frames can be computed in
PRECISIONS = ("float64", "float32")
_PRECISION = contextvars.ContextVar("mfa_sklearn_frame_precision", default="float64")


@contextlib.contextmanager
def frame_precision(precision):
    """Compute the frames built inside the ``with`` block in ``precision``.

    Parameters
    ----------
    precision : {"float64", "float32"}
        "float64" (complex128), the default everywhere, or "float32" (complex64): half
        the memory traffic, for accelerators, at float32's rounding level (equivariance
        errors about 1e-6 instead of 1e-15, rank tolerances of at least ``sqrt(eps32)``).

    Frames keep the precision they were built in: mapping outputs back needs no context.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"frame precision must be one of {list(PRECISIONS)}; got "
                         f"{precision!r}")
    token = _PRECISION.set(precision)
    try:
        yield
    finally:
        _PRECISION.reset(token)


def work_dtype(xp):
    """The real dtype frames are computed in (see :func:`frame_precision`)."""
    return xp.float32 if _PRECISION.get() == "float32" else xp.float64


def work_eps(xp):
    """Machine epsilon of the working precision."""
    return machine_eps(work_dtype(xp))


#: ``xp.isdtype`` kinds as numpy's one-letter ``dtype.kind`` codes
_NUMPY_KINDS = {"bool": "b", "signed integer": "i", "unsigned integer": "u",
                "integral": "iu", "real floating": "f", "complex floating": "c",
                "numeric": "iufc"}


def isdtype(xp, dtype, kind):
    """``xp.isdtype(dtype, kind)`` (``kind`` a name or a tuple of names).

    numpy dtypes are read from their one-letter ``kind``: ``numpy.isdtype`` costs about
    2 microseconds a call in Python, and the frame math asks dozens of times per chunk of
    samples, with the GIL held, which joblib's other threads then wait for.
    """
    if isinstance(dtype, np.dtype):
        if isinstance(kind, str):
            return dtype.kind in _NUMPY_KINDS[kind]
        return any(dtype.kind in _NUMPY_KINDS[k] for k in kind)
    return xp.isdtype(dtype, kind)


def _cast(xp, x, single):
    if isdtype(xp, x.dtype, "complex floating"):
        target = xp.complex64 if single else xp.complex128
    else:
        target = xp.float32 if single else xp.float64
    return x if x.dtype == target else xp.astype(x, target)


def work_float(xp, x):
    """``x`` in the working precision (complex stays complex), copying only if needed."""
    return _cast(xp, x, _PRECISION.get() == "float32")


def like_frame(xp, x, ref):
    """``x`` in the precision of the frame array ``ref`` (complex stays complex)."""
    return _cast(xp, x, ref.dtype in (xp.float32, xp.complex64))


def get_namespace(*arrays):
    """Return the array namespace shared by ``arrays`` (``None`` entries ignored)."""
    arrays = [a for a in arrays if a is not None]
    if all(isinstance(a, np.ndarray) for a in arrays):
        return np
    import array_api_compat

    return array_api_compat.array_namespace(*arrays)


def sum_rows(xp, a):
    """``a`` (n, ...) summed over its leading axis, row after row.

    numpy sums a leading axis in row order, elementwise over the other axes, unless
    those hold a single entry (coordinate-major rows (n, B) of a batch of one sample):
    the rows are then the innermost axis, which numpy sums pairwise from 8 terms on
    (complex from 4), and a sample's centroid or Gram matrix would differ in its last
    bits with the batch it comes in. Those are summed row by row here.
    """
    if xp is np and a.shape[0] > 1 and math.prod(a.shape[1:]) == 1:
        total = a[0].copy()
        for row in a[1:]:
            total += row
        return total
    return xp.sum(a, axis=0)


def first_true(xp, mask):
    """Index of the first True along axis 0 of a 2-D mask (0 where a column has none)."""
    m = mask.shape[0]
    # max of (m - i) over the True rows: a reduction over the leading axis runs as fast
    # elementwise passes, where argmax(axis=0) makes numpy transpose the mask first
    dtype = xp.int16 if m < 2 ** 15 else xp.int32
    weights = xp.reshape(xp.arange(m, 0, -1, dtype=dtype, device=mask.device), (m, 1))
    first = m - xp.astype(xp.max(mask * weights, axis=0), xp.int64)
    return first % m


def machine_eps(dtype):
    """Machine epsilon of a floating or complex dtype (numpy or torch)."""
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return float(np.finfo(dtype).eps)
    import torch

    return float(torch.finfo(dtype).eps)


def subtract_inplace(a, b):
    """``a - b``, in place when ``a`` is a numpy array (callers pass arrays they own).

    Allocating a fresh array of a chunk's size costs page faults on every pass, which
    made the frame math several times slower; torch keeps out-of-place arithmetic, which
    autograd needs.
    """
    if isinstance(a, np.ndarray):
        a -= b
        return a
    return a - b


def stacked_matmul(a, b):
    """``a @ b`` for stacks of small matrices, ``(..., n, m) @ (..., m, p)``.

    numpy's matmul runs a stack as one small product per matrix (BLAS where the operands
    allow), and those do not run side by side in threads, although the GIL is released:
    with two threads each mapping 32 768 clouds of 5 points by their 3 x 3 frames, every
    call took 6x as long as alone. For numpy stacks of matrices with
    ``m, p <= 3`` and ``n <= 12`` the sums run instead as elementwise passes over the
    stack, which threads share (1.7x for two) and which one thread runs about as fast
    as the BLAS calls (1.4 ms against 2.0 for those clouds; larger matrices favour
    BLAS). The products are rounded before they are added, where BLAS may fuse them:
    the results can differ in the last bit. Torch: ``a @ b``.
    """
    m, p = a.shape[-1], b.shape[-1]
    if not isinstance(a, np.ndarray) or m > 3 or p > 3 or a.shape[-2] > 12 or m == 0:
        return a @ b
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], p)
    out = np.empty(shape, dtype=np.result_type(a, b))
    for col in range(p):
        column = a[..., 0] * b[..., 0, col, None]
        for k in range(1, m):
            column += a[..., k] * b[..., k, col, None]
        # sums of negative zeros are -0.0 here, +0.0 from BLAS (its sums start at
        # +0.0): zero rows must map to +0.0 whichever way they go
        np.add(column, 0.0, out=out[..., col])
    return out


def all_finite(xp, a):
    """Whether every entry of ``a`` is finite.

    One summation pass without a temporary array of ``a``'s size (a NaN or inf makes the
    sum non-finite); the exact elementwise test runs only when the sum is not finite,
    which also covers a sum that merely overflowed.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if bool(xp.all(xp.isfinite(xp.sum(a)))):
            return True
    return bool(xp.all(xp.isfinite(a)))


def power_of_two_scale(xp, largest):
    """Per-sample powers of two that bring magnitudes ``largest`` near 1, exactly.

    Parameters
    ----------
    largest : array of shape (B,), real floating
        The largest absolute entry of each sample (0 for an all-zero sample).

    Returns
    -------
    factor : array of shape (B,)
        ``2^-e`` with ``2^(e-1) <= largest < 2^e``, so ``largest * factor`` lies in
        ``[1/2, 1)``; 1 where ``largest`` is 0. The exponent is clamped so that
        ``factor`` stays a normal number: subnormal magnitudes end up at least at
        ``2^-52`` (float64; ``2^-22`` float32) and magnitudes within a factor 8 of the
        dtype's largest value in ``[1/2, 4)``, far from overflow and underflow either
        way.
    inverse : array of shape (B,)
        ``1 / factor`` (exact: a power of two).

    Notes
    -----
    ``frexp`` splits ``largest = m 2^e`` exactly; numpy builds ``2^-e`` with ``ldexp``,
    other libraries as ``m / largest``, which is exactly ``2^-e`` (IEEE division is
    correctly rounded). The factor is a constant: gradients do not flow through it, and
    scaling back by ``inverse`` undoes it exactly.
    """
    if hasattr(largest, "detach"):
        largest = largest.detach()
    info = np.finfo(str(largest.dtype).rsplit(".", 1)[-1])
    if xp is np:  # ldexp: exact, and frexp(0) has exponent 0, so 0 gets factor 1
        exponent = np.clip(-np.frexp(largest)[1], info.minexp, info.maxexp - 1)
        ones = np.ones_like(largest)
        return np.ldexp(ones, exponent), np.ldexp(ones, -exponent)
    # clamped to [2^(minexp - 2), 2^(maxexp - 3)], largest has an exponent e in
    # [minexp - 1, maxexp - 2], so 2^-e is a normal number
    low, high = 2.0 ** (info.minexp - 2), 2.0 ** (info.maxexp - 3)
    clipped = xp.clip(largest, low, high)
    mantissa, _ = xp.frexp(clipped)
    factor = xp.where(largest > 0, mantissa / clipped, 1.0)
    return factor, 1.0 / factor


def on_host(a):
    """Whether ``a`` lives in host memory (numpy, or a CPU tensor).

    Checks that need a value on the host (a finiteness test that raises, a warning)
    run only there: on an accelerator they would stall the device on every batch. There
    NaN or inf in the input shows up as NaN in the outputs instead.
    """
    return isinstance(a, np.ndarray) or getattr(getattr(a, "device", None), "type", "cpu") == "cpu"


def constant(xp, values, *, dtype=None, device=None):
    """``values`` (a small numpy array of fixed numbers) in namespace ``xp`` on
    ``device``.

    Tensors are kept per (values, dtype, device): copying host memory to an
    accelerator waits for the work queued there, so a constant copied on every batch
    would stall the device each time. The tensors are shared: read them only."""
    values = np.asarray(values)
    if xp is np:
        return values if dtype is None else values.astype(dtype, copy=False)
    return _device_constant(xp, values.tobytes(), values.dtype.str, values.shape, dtype,
                            device)


@functools.lru_cache(maxsize=256)
def _device_constant(xp, data, numpy_dtype, shape, dtype, device):
    values = np.frombuffer(data, dtype=numpy_dtype).reshape(shape).copy()
    return xp.asarray(values, dtype=dtype, device=device)


def per_sample(xp, a):
    """``a`` (B, ...) as (B, p), each sample's entries in a row (torch cannot infer the
    -1 of ``(B, -1)`` for an empty batch)."""
    return xp.reshape(a, (a.shape[0], math.prod(a.shape[1:])))


def largest_per_sample(xp, a):
    """Largest absolute entry (modulus) of each sample of ``a`` (B, ...), (B,) in its
    namespace.

    numpy reduces the few entries of each sample one sample at a time (about 30 ns
    each). Up to 48 entries, the magnitudes are written transposed, (entries, B), and
    reduced over their leading axis, which runs as elementwise passes: 1.4x faster than
    numpy's reduction for clouds of 5 points in 3-D, in two calls that release the GIL
    (a running maximum over the columns, as fast, made one call per column, and every
    such call hands the GIL over between joblib's threads). Beyond 48 entries, at the
    sizes of the engine's chunks, numpy's reduction is faster. A numpy sample without
    entries has 0.
    """
    rows = per_sample(xp, a)
    if xp is not np:
        return xp.max(xp.abs(rows), axis=1)
    if rows.shape[1] > 48:
        return np.max(np.abs(rows), axis=1, initial=0.0)
    return np.max(np.abs(rows.T, order="C"), axis=0, initial=0.0)


def take_rows(xp, x, index):
    """Per sample, the rows ``index`` of ``x``: ``out[b, i] = x[b, index[b, i]]``.

    Parameters
    ----------
    x : array of shape (B, n, ...)
    index : integer array of shape (B, m), entries in ``0..n-1``

    Returns
    -------
    array of shape (B, m, ...)

    Notes
    -----
    ``take_along_axis`` with ``index[..., None]``, as one flat ``take`` (numpy's
    ``take_along_axis`` builds broadcast index grids and is several times slower).
    """
    B, n = x.shape[:2]
    rest = tuple(x.shape[2:])
    rows = xp.take(xp.reshape(x, (B * n,) + rest), flat_index(xp, index, n), axis=0)
    return xp.reshape(rows, (B, index.shape[1]) + rest)


def flat_index(xp, index, n):
    """Per-sample indices (B, m) into ``0..n-1`` -> indices (B * m,) into the ``B * n``
    rows of the flattened batch."""
    B = index.shape[0]
    offsets = xp.reshape(xp.arange(B, dtype=xp.int64, device=index.device) * n, (B, 1))
    return xp.reshape(index + offsets, (-1,))


def class_sums(xp, values, labels, n_labels):
    """Per sample, the sums of the rows of ``values`` that share a label.

    Parameters
    ----------
    values : array of shape (m, L, w)
    labels : integer array of shape (m, L), entries in ``0..n_labels-1``
    n_labels : int

    Returns
    -------
    array of shape (m, n_labels, w)
        ``out[b, c] = sum of values[b, i] over i with labels[b, i] == c``.

    Notes
    -----
    The array API has no scatter-add, so this is the one primitive with a branch per
    library: ``np.add.at`` for numpy, out-of-place ``index_add`` (autograd) for torch.
    """
    m, L, w = values.shape
    flat = flat_index(xp, labels, n_labels)
    rows = xp.reshape(values, (m * L, w))
    out = xp.zeros((m * n_labels, w), dtype=values.dtype, device=values.device)
    if isinstance(values, np.ndarray):
        np.add.at(out, flat, rows)
    else:
        out = out.index_add(0, flat, rows)
    return xp.reshape(out, (m, n_labels, w))
