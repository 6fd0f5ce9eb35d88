"""The group math is written once: torch tensors go through the same code as numpy."""

import numpy as np
import pytest

from mfa_sklearn.groups import get_group

torch = pytest.importorskip("torch")
pytest.importorskip("array_api_compat")

GROUPS = ["O(2)", "SO(2)", "O(3)", "SO(3)", "E(3)", "SE(3)", "O(6)", "SO(6)"]


def _rank_deficient(rng, B, n, d, r):
    return rng.standard_normal((B, n, r)) @ rng.standard_normal((B, r, d))


@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("rank", ["full", "d-1", "1"])
def test_torch_matches_numpy(name, rank):
    group = get_group(name)
    d = group.d
    rng = np.random.default_rng(0)
    r = {"full": d, "d-1": d - 1, "1": 1}[rank]
    x = _rank_deficient(rng, 40, 7, d, r)
    frame_np = group.frame(x)
    frame_t = group.frame(torch.from_numpy(x))
    assert isinstance(frame_t.H, torch.Tensor)
    np.testing.assert_array_equal(frame_np.rank, frame_t.rank.numpy())
    np.testing.assert_allclose(frame_t.H.numpy(), frame_np.H, rtol=0, atol=1e-12)
    canon_np = frame_np.to_canonical(x, "point")
    canon_t = frame_t.to_canonical(torch.from_numpy(x), "point")
    np.testing.assert_allclose(canon_t.numpy(), canon_np, rtol=0, atol=1e-12)
    back = frame_t.from_canonical(canon_t, "point").numpy()
    np.testing.assert_allclose(back, frame_np.from_canonical(canon_np, "point"),
                               rtol=0, atol=1e-12)


def test_torch_gradients_flow_and_dtype_is_kept():
    group = get_group("SE(3)")
    x = torch.randn(16, 5, 3, dtype=torch.float32, requires_grad=True)
    frame = group.frame(x)
    canon = frame.to_canonical(x, "point")
    assert canon.dtype == torch.float32
    assert frame.H.dtype == torch.float64
    (canon ** 2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
