"""The row selection's kernels: the same bits whichever way the coordinates are held,
and frames of a sample that do not depend on the batch it comes in (numpy)."""

import numpy as np
import pytest

from mfa_sklearn.groups import get_group
from mfa_sklearn.groups._selection import dot_rows, metric_scale, select_rows
from tests._helpers import generic, low_rank


@pytest.mark.parametrize("d", [1, 2, 3, 4, 6, 8, 9])
@pytest.mark.parametrize("B", [1, 2, 17])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
@pytest.mark.parametrize("minkowski", [False, True])
def test_stacked_dot_rows_sums_like_the_coordinate_list(d, B, dtype, minkowski):
    # one sample is where numpy's own reduction over the coordinates would sum pairwise
    rng = np.random.default_rng(d * 100 + B)
    u, w = (rng.normal(size=(d, B)) * 10.0 ** rng.integers(-4, 4, size=(d, B))
            for _ in range(2))
    if np.dtype(dtype).kind == "c":
        u, w = u + 1j * rng.normal(size=(d, B)), w - 1j * rng.normal(size=(d, B))
    u, w = u.astype(dtype), w.astype(dtype)
    signature = (1.0,) + (-1.0,) * (d - 1) if minkowski else None
    stacked = dot_rows(u, w, signature=signature)
    listed = dot_rows(list(u), list(w), signature=signature)
    assert stacked.dtype == listed.dtype
    assert_same_bits(stacked, listed)


@pytest.mark.parametrize("name", ["O(3)", "SE(3)", "U(3)", "SU(6)", "O(1,3)", "SO(1,3)",
                                  "GL(3)", "Aff(3)", "S_n x E(3)"])
@pytest.mark.parametrize("rank_deficient", [False, True])
@pytest.mark.parametrize("extra_rows", [2, 37])
def test_a_samples_frame_does_not_depend_on_its_batch(name, rank_deficient, extra_rows):
    # from 8 rows on (centroids, Lorentz anchors and Gram matrices), numpy would sum the
    # rows of a lone sample pairwise and those of a batch in order
    group = get_group(name)
    rng = np.random.default_rng(11)
    d = group.d
    n = d + extra_rows
    # GL frames need full rank; its rank-deficient rows are an error
    deficient = rank_deficient and name[:2] not in ("GL", "Af")
    x = low_rank(rng, 12, n, d, d - 1) if deficient else generic(rng, 12, n, d)
    if group.is_complex:
        x = x + 1j * (low_rank(rng, 12, n, d, d - 1) if deficient else generic(rng, 12, n, d))
    batch = group.frame(x)
    for i in (0, 5, 11):
        alone = group.frame(x[i:i + 1])
        assert_same_bits(alone.H, batch.H[i:i + 1])
        if batch.t is not None:
            assert_same_bits(alone.t, batch.t[i:i + 1])


@pytest.mark.parametrize("B", [1, 5])
def test_metric_scale_handed_to_the_selection(B):
    # the Lorentz frame hands the scale it computed to the selection: the same bits
    rng = np.random.default_rng(B)
    Z = list(rng.normal(size=(4, 12, B)))
    signature = (1.0, -1.0, -1.0, -1.0)
    options = dict(tol=1e-8, delta=1e-5, rule="first_above", signature=signature)
    given = select_rows([z.copy() for z in Z], scale=metric_scale(Z, signature), **options)
    computed = select_rows([z.copy() for z in Z], **options)
    for name in ("W", "rank", "norms", "signs", "scale"):
        assert_same_bits(np.asarray(getattr(given, name)), np.asarray(getattr(computed, name)))
    # and it is the Frobenius norm of Z eta Z^T
    rows = np.stack(Z, axis=-1).transpose(1, 0, 2)                # (B, m, d)
    expected = np.linalg.norm(rows @ np.diag(signature) @ rows.transpose(0, 2, 1),
                              axis=(1, 2))
    np.testing.assert_allclose(metric_scale(Z, signature), expected, rtol=1e-12)


def assert_same_bits(a, b):
    """Equal arrays, signs of zero included."""
    np.testing.assert_array_equal(np.ascontiguousarray(a).view(np.uint8),
                                  np.ascontiguousarray(b).view(np.uint8))
