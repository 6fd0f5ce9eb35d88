"""Array helpers shared by the groups' numpy and torch paths."""

import numpy as np
import pytest

from mfa_sklearn.groups._namespace import (
    get_namespace,
    largest_per_sample,
    per_sample,
    stacked_matmul,
    sum_rows,
)


@pytest.mark.parametrize("a_shape, b_shape", [
    ((7, 1, 5, 3), (7, 2, 3, 3)),      # frames of one or two elements
    ((7, 1, 12, 3), (1, 1, 3, 3)),     # broadcast stack
    ((7, 4, 2), (7, 2, 1)),
    ((7, 13, 3), (7, 3, 3)),           # too many rows: numpy's matmul
    ((7, 5, 4), (7, 4, 4)),            # too wide: numpy's matmul
    ((0, 5, 3), (0, 3, 3)),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_stacked_matmul_is_matmul(a_shape, b_shape, dtype):
    rng = np.random.default_rng(0)
    a = rng.normal(size=a_shape).astype(dtype)
    b = rng.normal(size=b_shape).astype(dtype)
    if np.iscomplexobj(a):
        a = a + 1j * rng.normal(size=a_shape)
    got, want = stacked_matmul(a, b), a @ b
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=10 * np.finfo(dtype).eps,
                               atol=10 * np.finfo(dtype).eps)


def test_stacked_matmul_zero_rows_are_positive_zeros():
    """Rows of zeros map to +0.0, as through BLAS, also against negative entries: a
    filled absent row must come out as the zeros that stand in for it elsewhere."""
    a = np.zeros((3, 4, 3))
    a[:, 1] = [-0.0, 0.0, -0.0]
    b = -np.abs(np.random.default_rng(1).normal(size=(3, 3, 3)))
    out = stacked_matmul(a, b)
    assert not np.signbit(out).any()
    np.testing.assert_array_equal(out, 0.0)


def test_stacked_matmul_torch_is_matmul():
    torch = pytest.importorskip("torch")
    a, b = torch.randn(4, 5, 3, dtype=torch.float64), torch.randn(4, 3, 3, dtype=torch.float64)
    assert torch.equal(stacked_matmul(a, b), a @ b)


@pytest.mark.parametrize("shape", [(3, 4, 2), (0, 4, 2), (2,), (0, 5)])
def test_per_sample_flattens_each_sample_also_of_an_empty_batch(shape):
    torch = pytest.importorskip("torch")
    a = np.arange(float(np.prod(shape))).reshape(shape)
    for x in (a, torch.from_numpy(a)):
        flat = per_sample(get_namespace(x), x)
        expected = (shape[0], int(np.prod(shape[1:])))
        assert tuple(flat.shape) == expected
        np.testing.assert_array_equal(np.asarray(flat), a.reshape(expected))


@pytest.mark.parametrize("shape", [(40, 1, 5, 3), (40, 2, 5, 6), (40, 1, 16, 3), (40, 1, 7, 7),
                                   (40, 1, 9, 4), (0, 1, 5, 3), (40, 1, 0, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_largest_per_sample_matches_numpys_reduction(shape, dtype):
    # magnitudes reduced transposed up to 48 entries (49 take numpy's reduction per row);
    # samples of shape (n, w), as rounded_field takes each frame element's field
    part = np.random.default_rng(3).normal(size=shape).astype(dtype)
    if part.size:
        part[3, 0, 1, 1] = np.nan
        part[5] = -0.0
    expected = np.abs(part).max(axis=(-2, -1), initial=0.0).reshape(-1)
    largest = largest_per_sample(np, part.reshape((shape[0] * shape[1],) + shape[-2:]))
    assert largest.dtype == dtype
    np.testing.assert_array_equal(largest, expected)


@pytest.mark.parametrize("shape", [(9,), (9, 1), (9, 1, 1), (40, 1), (9, 3), (1, 1), (0, 1)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_sum_rows_sums_in_row_order(shape, dtype):
    rng = np.random.default_rng(len(shape) + shape[0])
    a = rng.normal(size=shape) * 10.0 ** rng.integers(-6, 6, size=shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.normal(size=shape)
    a = a.astype(dtype)
    expected = np.zeros(shape[1:], dtype=dtype)
    for row in a:
        expected = expected + row
    total = sum_rows(np, a)
    assert total.dtype == dtype and total.shape == shape[1:]
    np.testing.assert_array_equal(np.atleast_1d(total).view(np.uint8),
                                  np.atleast_1d(expected).view(np.uint8))
