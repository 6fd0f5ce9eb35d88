"""Products ``x @ M`` of rows by per-sample matrices, rounded the same way for every row.

Permutation frames map rows by the G-frame of their sample, ``(B, K, n, d)`` rows times
``(B, S, d, d)`` matrices. Matmul kernels round an entry differently depending on the
shape of the operands, so a row's canonical coordinates would depend on how many rows
its sample has and where the row sits. Here every entry is a sum of ``d`` products in a
fixed order, for numpy (batch axis innermost, which is also faster for small ``d``) and
torch (with matmul gradients).
"""

import functools

import numpy as np


def row_products(xp, x, M):
    """``x @ M`` for rows x (B, K, n, d) and matrices M (B, S, d, d), broadcast over
    the element axis, as a sum of d products in a fixed order: every entry is rounded
    the same way whatever the number of rows and the row's position (matmul kernels
    round an entry differently depending on the shape). (B, max(K, S), n, d)."""
    if isinstance(x, np.ndarray) and isinstance(M, np.ndarray):
        return _row_products_numpy(x, M)
    if getattr(x, "requires_grad", False) or getattr(M, "requires_grad", False):
        return _row_products_autograd().apply(x, M)
    return _row_products_sum(x, M)


def _row_products_sum(x, M):
    """The sum of :func:`row_products` for tensors (autograd records every term)."""
    out = x[..., :1] * M[:, :, None, 0, :]
    for k in range(1, M.shape[-2]):
        out = out + x[..., k:k + 1] * M[:, :, None, k, :]
    return out


@functools.cache
def _row_products_autograd():
    """A torch autograd Function with the forward bits of :func:`_row_products_sum`
    and matmul gradients. Autograd's backward of the broadcast terms reduces over the
    rows axis term by term, slower than all the rest of the frame; gradients need no
    bit-for-bit rounding, and matmuls are differentiable again (training on forces)."""
    import torch

    class RowProducts(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, M):
            ctx.save_for_backward(x, M)
            return _row_products_sum(x, M)

        @staticmethod
        def backward(ctx, grad):
            x, M = ctx.saved_tensors
            grad_x = grad_M = None
            if ctx.needs_input_grad[0]:
                grad_x = torch.matmul(grad, M.mT)
                if x.shape[1] < grad_x.shape[1]:   # broadcast over the element axis
                    grad_x = grad_x.sum(dim=1, keepdim=True)
            if ctx.needs_input_grad[1]:
                grad_M = torch.matmul(x.mT, grad)
                if M.shape[1] < grad_M.shape[1]:
                    grad_M = grad_M.sum(dim=1, keepdim=True)
            return grad_x, grad_M

    return RowProducts


def _row_products_numpy(x, M):
    """:func:`row_products` for numpy arrays, with the batch axis innermost.

    The same products summed in the same order (so the same bits), on coordinate-major
    copies ``x[..., k]`` (K, n, B) and ``M[:, :, k, j]`` (S, 1, B): numpy's loops then
    run over the batch rather than over the d columns of one row, several times faster
    for small d. Returns a new C-contiguous array."""
    B, K, n, d = x.shape
    S, e = M.shape[1], M.shape[-1]
    dtype = np.result_type(x, M)
    xc = np.ascontiguousarray(np.transpose(x, (3, 1, 2, 0)))           # (d, K, n, B)
    Mc = np.ascontiguousarray(np.transpose(M, (2, 3, 1, 0)))[:, :, :, None, :]
    # (K|S, n, e, B): the transpose back is one of a 2-D (K|S * n * e, B) array
    out = np.empty((max(K, S), n, e, B), dtype=dtype)
    scratch = np.empty((max(K, S), n, B), dtype=dtype)
    for j in range(e):
        column = out[:, :, j]
        np.multiply(xc[0], Mc[0, j], out=column)
        for k in range(1, d):
            column += np.multiply(xc[k], Mc[k, j], out=scratch)
    return np.ascontiguousarray(np.transpose(out, (3, 0, 1, 2)))
