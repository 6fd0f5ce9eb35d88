"""The group math is written once: torch tensors go through the same code as numpy."""

import numpy as np
import pytest

from mfa_sklearn.groups import get_group
from tests._helpers import HAS_NAUTY, cube_vertices, low_rank, rotated

torch = pytest.importorskip("torch")
pytest.importorskip("array_api_compat")

GROUPS = ["O(2)", "SO(2)", "O(3)", "SO(3)", "E(3)", "SE(3)", "O(6)", "SO(6)"]


@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("rank", ["full", "d-1", "1"])
def test_torch_matches_numpy(name, rank):
    group = get_group(name)
    d = group.d
    rng = np.random.default_rng(0)
    r = {"full": d, "d-1": d - 1, "1": 1}[rank]
    x = low_rank(rng, 40, 7, d, r, offset=0.0)
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


# ------------------------------------------------------- permutation groups on torch
def _permutation_inputs(case, rng):
    x = rng.standard_normal((30, 6, 3))
    if case == "generic":
        return x
    if case == "duplicated rows":
        return np.concatenate([x[:, :3], x[:, :3]], axis=1)
    pytest.importorskip("pynauty")
    return rotated(cube_vertices(), 6, rng)      # symmetric: the nauty search


@pytest.mark.parametrize("name", ["S_n", "S_n x O(3)", "S_n x SO(3)", "S_n x E(3)",
                                  "S_n x SE(3)"])
@pytest.mark.parametrize("case", ["generic", "duplicated rows", "cube"])
def test_permutation_frames_on_torch_match_numpy(name, case):
    group = get_group(name)
    rng = np.random.default_rng(1)
    x = _permutation_inputs(case, rng)
    v = rng.standard_normal(x.shape)
    frame_np = group.frame(x, scalars=v) if group.d is None else group.frame(x, v)
    tx, tv = torch.from_numpy(x), torch.from_numpy(v)
    frame_t = group.frame(tx, scalars=tv) if group.d is None else group.frame(tx, tv)
    assert isinstance(frame_t.perms, torch.Tensor)
    np.testing.assert_array_equal(frame_t.perms.numpy(), frame_np.perms)
    np.testing.assert_array_equal(frame_t.runs.numpy(), frame_np.runs)
    if group.d is not None:
        assert frame_t.H.dtype == torch.float64
        np.testing.assert_allclose(frame_t.H.numpy(), frame_np.H, rtol=0, atol=1e-12)
    y = rng.standard_normal((len(x), 1) + x.shape[1:])
    for kind in ("point", "vector", "scalar"):
        canon = frame_t.to_canonical(tx, kind).numpy()
        np.testing.assert_allclose(canon, frame_np.to_canonical(x, kind), rtol=0, atol=1e-12)
        back = frame_t.from_canonical(torch.from_numpy(y), kind).numpy()
        np.testing.assert_allclose(back, frame_np.from_canonical(y, kind), rtol=0,
                                   atol=1e-12)


@pytest.mark.parametrize("name", ["S_n x E(3)", "S_n x SE(3)"])
def test_near_symmetric_canonical_inputs_on_torch_match_numpy(name):
    """Octahedra 1e-7 off their symmetry keep several candidates, whose canonical
    inputs are averaged: the same mean on torch, differentiable."""
    pytest.importorskip("pynauty")
    group = get_group(name)
    rng = np.random.default_rng(2)
    octahedron = np.concatenate([np.eye(3), -np.eye(3)])
    x = rotated(octahedron, 8, rng) + 1e-7 * rng.standard_normal((8, 6, 3))
    frame_np = group.frame(x)
    assert np.all(frame_np.size > 1)
    tx = torch.from_numpy(x).requires_grad_(True)
    canon = group.frame(tx).to_canonical(tx)
    np.testing.assert_allclose(canon.detach().numpy(), frame_np.to_canonical(x),
                               rtol=0, atol=1e-12)
    (canon ** 2).sum().backward()
    assert torch.isfinite(tx.grad).all() and tx.grad.abs().max() > 0


def test_lorentz_product_frames_on_torch_match_numpy():
    group = get_group("S_n x SO(1,3)")
    x = np.random.default_rng(2).standard_normal((20, 5, 4))
    x[..., 0] = np.abs(x[..., 0]) + 3.0
    frame_np, frame_t = group.frame(x), group.frame(torch.from_numpy(x))
    np.testing.assert_allclose(frame_t.H.numpy(), frame_np.H, rtol=0, atol=1e-12)
    np.testing.assert_allclose(frame_t.to_canonical(torch.from_numpy(x)).numpy(),
                               frame_np.to_canonical(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("graphs", ["generic", "cycles"])
def test_graph_frames_on_torch_match_numpy(graphs):
    rng = np.random.default_rng(3)
    n = 8
    if graphs == "generic":
        A = (rng.random((10, n, n)) < 0.5).astype(float)
        A = np.triu(A, 1) + np.triu(A, 1).transpose(0, 2, 1)
    else:                             # C8: Aut has 16 elements, orbits need nauty
        pytest.importorskip("pynauty")
        A = np.zeros((4, n, n))
        i = np.arange(n)
        A[:, i, (i + 1) % n] = A[:, (i + 1) % n, i] = 1.0
        perm = np.argsort(rng.random((4, n)), axis=1)
        A = np.stack([a[p][:, p] for a, p in zip(A, perm)])
    A = A[..., None]
    group = get_group("graph")
    frame_np, frame_t = group.frame(edges=A), group.frame(edges=torch.from_numpy(A))
    np.testing.assert_array_equal(frame_t.perms.numpy(), frame_np.perms)
    np.testing.assert_array_equal(frame_t.to_canonical(torch.from_numpy(A), "edge").numpy(),
                                  frame_np.to_canonical(A, "edge"))
    y_edge = rng.standard_normal((len(A), 1, n, n, 2))
    y_node = rng.standard_normal((len(A), 1, n, 2))
    np.testing.assert_allclose(
        frame_t.from_canonical(torch.from_numpy(y_edge), "edge").numpy(),
        frame_np.from_canonical(y_edge, "edge"), rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        frame_t.from_canonical(torch.from_numpy(y_node), "scalar").numpy(),
        frame_np.from_canonical(y_node, "scalar"), rtol=0, atol=1e-15)


def test_permutation_frames_concatenate_and_slice_on_torch():
    rng = np.random.default_rng(4)
    group = get_group("S_n x E(3)")
    x = np.concatenate([rng.standard_normal((3, 8, 3)), rotated(cube_vertices(), 2, rng)]) \
        if HAS_NAUTY else rng.standard_normal((5, 8, 3))
    whole = group.frame(torch.from_numpy(x))
    parts = type(whole).concat([group.frame(torch.from_numpy(x[:3])),
                                group.frame(torch.from_numpy(x[3:]))])
    y = torch.from_numpy(rng.standard_normal((len(x), 1, 8, 3)))
    for kind in ("point", "vector"):   # padded elements (weight 0) may differ
        torch.testing.assert_close(parts.from_canonical(y, kind),
                                   whole.from_canonical(y, kind), rtol=0, atol=1e-14)
        torch.testing.assert_close(parts[1:4].from_canonical(y[1:4], kind),
                                   whole.from_canonical(y, kind)[1:4], rtol=0, atol=1e-14)
    torch.testing.assert_close(parts[1:4].to_canonical(torch.from_numpy(x[1:4])),
                               whole.to_canonical(torch.from_numpy(x))[1:4], rtol=0,
                               atol=1e-14)


@pytest.mark.parametrize("case", ["generic", "bonded cube"])
def test_product_frames_with_bonds_on_torch_match_numpy(case):
    rng = np.random.default_rng(5)
    if case == "generic":
        x = rng.standard_normal((12, 6, 3))
        A = np.triu((rng.random((12, 6, 6)) < 0.5).astype(float), 1)
    else:
        pytest.importorskip("pynauty")
        x = np.broadcast_to(rotated(cube_vertices(), 1, rng)[0], (3, 8, 3)).copy()
        i = np.arange(8)[:, None]
        A = np.broadcast_to(np.triu(np.bitwise_count(i ^ i.T) == 1, 1), (3, 8, 8)) * 1.0
        A = A.copy()
        A[1, 0, 1] = 2.0                                     # a marked bond
    A = (A + A.transpose(0, 2, 1))[..., None]
    group = get_group("S_n x E(3)")
    frame_np = group.frame(x, edges=A)
    frame_t = group.frame(torch.from_numpy(x), edges=torch.from_numpy(A))
    np.testing.assert_array_equal(frame_t.perms.numpy(), frame_np.perms)
    np.testing.assert_allclose(frame_t.H.numpy(), frame_np.H, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(
        frame_t.to_canonical(torch.from_numpy(A), "edge").numpy(),
        frame_np.to_canonical(A, "edge"))
    y = rng.standard_normal((len(x), 1) + A.shape[1:3] + (2,))
    np.testing.assert_allclose(frame_t.from_canonical(torch.from_numpy(y), "edge").numpy(),
                               frame_np.from_canonical(y, "edge"), rtol=0, atol=1e-15)


@pytest.mark.parametrize("case", ["generic", "duplicated rows", "cube"])
def test_float32_permutation_frames_are_invariant_to_float32_rounding(case):
    """Float32 frames (their tie bands are wider, so near ties may be decided otherwise
    than in float64) give the same canonical form to a cloud and its moved copy."""
    from mfa_sklearn.groups._namespace import frame_precision

    x = _permutation_inputs(case, np.random.default_rng(6))
    group = get_group("S_n x E(3)")
    moved = group.act(group.random_element(len(x), 7), x)
    canon = []
    for cloud in (x, moved):
        with frame_precision("float32"):
            frame = group.frame(torch.from_numpy(cloud))
        assert frame.H.dtype == torch.float32
        canon.append(frame.to_canonical(torch.from_numpy(cloud)))
    torch.testing.assert_close(canon[1], canon[0], rtol=0, atol=1e-5 * float(np.abs(x).max()))


@pytest.mark.parametrize("tail", [(), (3,), (2, 4)])
def test_take_rows_is_take_along_axis_on_numpy_and_torch(tail):
    from mfa_sklearn.groups._namespace import get_namespace, take_rows
    rng = np.random.default_rng(30)
    x = rng.normal(size=(6, 5) + tail)
    index = rng.integers(0, 5, size=(6, 7))
    expected = np.take_along_axis(x, index.reshape(index.shape + (1,) * len(tail)), axis=1)
    assert np.array_equal(take_rows(np, x, index), expected)
    xt = torch.from_numpy(x).requires_grad_(True)
    got = take_rows(get_namespace(xt), xt, torch.from_numpy(index))
    assert np.array_equal(got.detach().numpy(), expected)
    got.sum().backward()       # each row's gradient counts how often it was taken
    counts = np.zeros((6, 5))
    np.add.at(counts, (np.arange(6)[:, None], index), 1.0)
    assert np.array_equal(xt.grad.numpy(), np.broadcast_to(
        counts.reshape(counts.shape + (1,) * len(tail)), x.shape))
