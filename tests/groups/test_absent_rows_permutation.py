"""Absent rows (systems of different sizes) under S_n, graphs and S_n x G.

A padded batch holds samples with ``m <= n`` present rows at random positions; the
absent rows are zero-filled (edge fields: zero rows and columns), as the engine passes
them, and ``present`` (B, n) marks the present rows. The frame of a padded sample must
be the frame of the unpadded sample, bit for bit (row order mapped through the padding,
canonical present rows, stabilizer size, averaging), with the absent rows last in
increasing index order and zeros as their canonical inputs and outputs. Equivariance is
checked with the deliberately non-equivariant backbone of the protocol
(tests/groups/__init__.py) under random permutations of all n rows (which move the
absent rows too) and random elements of G acting on the present rows.
"""

import numpy as np
import pytest
import torch

from mfa_sklearn.groups import get_group
from tests._helpers import (
    CONTROL,
    RowBackbone,
    bare,
    cube_vertices,
    equivariance_errors,
    frame_averaged,
    needs_nauty,
    rel_error,
)

PRODUCTS = ["S_n x O(3)", "S_n x E(3)", "S_n x SO(1,3)"]
GROUPS = ["S_n"] + PRODUCTS
#: the order of the cube's stabilizer (translated for E/SE, at time 4 for Lorentz)
CUBE = {"S_n x O(3)": 48, "S_n x SO(3)": 24, "S_n x E(3)": 48, "S_n x SE(3)": 24,
        "S_n x O(1,3)": 48, "S_n x SO(1,3)": 24}
N = 10


# --------------------------------------------------------------------------- helpers
def pad(arrays, sizes, rng, n=N, edges=()):
    """Zero-padded copies (B, n, ...) of per-row fields (B, m, w) and edge fields
    (B, m, m, w), sample b keeping its first ``sizes[b]`` rows at random positions
    (increasing); returns the padded fields, the mask and the positions per sample."""
    B = len(sizes)
    positions = [np.sort(rng.choice(n, size, replace=False)) for size in sizes]
    mask = np.zeros((B, n), dtype=bool)
    for b, pos in enumerate(positions):
        mask[b, pos] = True
    padded = []
    for a in arrays:
        out = np.zeros((B, n) + a.shape[2:], dtype=a.dtype)
        for b, pos in enumerate(positions):
            out[b, pos] = a[b, :len(pos)]
        padded.append(out)
    padded_edges = []
    for a in edges:
        out = np.zeros((B, n, n) + a.shape[3:], dtype=a.dtype)
        for b, pos in enumerate(positions):
            out[b][np.ix_(pos, pos)] = a[b, :len(pos), :len(pos)]
        padded_edges.append(out)
    return padded, padded_edges, mask, positions


def dims(name):
    return 4 if "1,3" in name else 3


def samples(name, rng, dtype):
    """Per-row fields (B, 8, d) of eight samples with 0, 1, 2, 3, 5, 8, 8 and 6 present
    rows (generic, duplicated rows, a cube, a one-row and an empty sample), and their
    sizes."""
    d = dims(name)
    x = rng.normal(size=(8, 8, d))
    if d == 4:
        x[..., 0] += 4.0                                   # timelike rows
    x[3, 1] = x[3, 0]                                      # duplicated rows (twins)
    x[4, 2:4] = x[4, 0]
    cube = cube_vertices()
    x[5, :, -3:] = cube @ np.linalg.qr(rng.normal(size=(3, 3)))[0]
    if name in ("S_n x E(3)", "S_n x SE(3)"):
        x[5] += rng.normal(size=3)
    if d == 4:
        x[5, :, 0] = 4.0
    if name == "S_n":
        x = np.round(x, 1)
        x[6] = np.round(rng.normal(size=(8, d)))             # many exact ties
    return x.astype(dtype), [0, 1, 2, 3, 5, 8, 8, 6]


def canonical(f, a, kind="point"):
    return f.to_canonical(a, kind)[:, 0]


def unpadded(G, compact, sizes, b, edge):
    """Sample b unpadded, and its frame in the batch of the unpadded samples of its
    size (the frames of S_n x O(1,3) depend on the batch at the rounding level: see
    test_lorentz_frames_depend_on_the_batch), as the frame's view of sample b."""
    m = sizes[b]
    same = [c for c, size in enumerate(sizes) if size == m]
    batch = compact[same, :m, :m] if edge else compact[same, :m]
    f = G.frame(edges=[batch]) if edge else G.frame(batch)
    return batch[same.index(b):same.index(b) + 1], f[[same.index(b)]]


def check_padded_frame(G, f, compact, padded, mask, positions, sizes, *, kind="point",
                       width_out=3, edge=False, seed=0):
    """The padded frame ``f`` against the frame of the unpadded samples (bitwise)."""
    rng = np.random.default_rng(seed)
    B, n = mask.shape
    canon = canonical(f, padded, "edge" if edge else kind)
    shape = (B, 1, n, n, 1) if edge else (B, 1, n, width_out)
    y = rng.normal(size=shape)
    out = f.from_canonical(y, "edge" if edge else kind)
    perm = np.asarray(f.perm)
    for b, (pos, m) in enumerate(zip(positions, sizes)):
        absent = np.flatnonzero(~mask[b])
        assert np.array_equal(perm[b, m:], absent)            # absent rows last, in order
        if edge:
            assert not np.any(canon[b, m:]) and not np.any(canon[b, :, m:])
            assert not np.any(out[b, absent]) and not np.any(out[b][:, absent])
        else:
            assert not np.any(canon[b, m:]) and not np.any(out[b, absent])
        if m == 0:
            assert np.array_equal(perm[b], np.arange(n)) and f.size[b] == 1
            continue
        one, g = unpadded(G, compact, sizes, b, edge)
        assert np.array_equal(perm[b, :m], pos[np.asarray(g.perm[0])])
        assert f.size[b] == g.size[0]
        expected = canonical(g, one, "edge" if edge else kind)[0]
        if edge:
            assert np.array_equal(canon[b, :m, :m], expected)
            y_one = y[b:b + 1, :, :m, :m]
        else:
            assert np.array_equal(canon[b, :m], expected)
            y_one = y[b:b + 1, :, :m]
        out_one = g.from_canonical(y_one, "edge" if edge else kind)[0]
        got = out[b][np.ix_(pos, pos)] if edge else out[b, pos]
        assert np.array_equal(got, out_one)
    return canon, out


# ------------------------------------------------------------- the padded frame
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["S_n"] + list(CUBE))
def test_padded_frame_is_the_frame_of_the_present_rows(name, dtype):
    rng = np.random.default_rng(1)
    G = get_group(name)
    x, sizes = samples(name, rng, dtype)
    (xp,), _, mask, positions = pad([x], sizes, rng)
    f = G.frame(xp, present=mask)
    check_padded_frame(G, f, x, xp, mask, positions, sizes, width_out=dims(name))
    if name != "S_n":
        assert f.size[5] == CUBE[name]
        assert f.rank[0] == 0                      # the empty sample
        if f.t is not None:
            assert not np.any(f.t[0])
    assert f.size[3] == 2 and f.size[4] == 6      # duplicated rows


@pytest.mark.parametrize("name", GROUPS)
def test_absent_positions_do_not_matter(name):
    """Two paddings of the same samples: the same canonical inputs, bit for bit."""
    rng = np.random.default_rng(2)
    G = get_group(name)
    x, sizes = samples(name, rng, np.float64)
    (a,), _, mask_a, _ = pad([x], sizes, rng)
    (b,), _, mask_b, _ = pad([x], sizes, rng)
    assert not np.array_equal(mask_a, mask_b)
    fa, fb = G.frame(a, present=mask_a), G.frame(b, present=mask_b)
    assert np.array_equal(canonical(fa, a), canonical(fb, b))
    assert np.array_equal(fa.size, fb.size)


@pytest.mark.parametrize("name", GROUPS)
def test_all_present_is_no_mask(name):
    rng = np.random.default_rng(3)
    G = get_group(name)
    x, _ = samples(name, rng, np.float64)
    f, g = G.frame(x), G.frame(x, present=np.ones(x.shape[:2], dtype=bool))
    assert np.array_equal(f.perms, g.perms) and np.array_equal(canonical(f, x),
                                                               canonical(g, x))


@pytest.mark.parametrize("xp", [np, torch], ids=["numpy", "torch"])
def test_concat_and_slices_keep_the_mask(xp):
    """Chunks of a batch (one with absent rows, one without) concatenated, and slices
    of the result: the same canonical inputs and outputs as the frames of the chunks."""
    rng = np.random.default_rng(14)
    G = get_group("S_n x E(3)")
    x, sizes = samples("S_n x E(3)", rng, np.float64)
    (xp_pad,), _, mask, _ = pad([x], sizes, rng)
    full = rng.normal(size=(3, N, 3))
    a = xp_pad if xp is np else torch.tensor(xp_pad)
    c = full if xp is np else torch.tensor(full)
    fa = G.frame(a, present=mask if xp is np else torch.tensor(mask))
    fc = G.frame(c)
    both = type(fa).concat([fc, fa])
    joined = np.concatenate([full, xp_pad]) if xp is np else torch.cat([c, a])
    expected = np.concatenate([np.asarray(fc.to_canonical(c)), np.asarray(fa.to_canonical(a))])
    assert np.array_equal(np.asarray(both.to_canonical(joined)), expected)
    y = rng.normal(size=(len(joined), 1, N, 3))
    y = y if xp is np else torch.tensor(y)
    out = np.asarray(both.from_canonical(y))
    assert np.array_equal(out[3:], np.asarray(fa.from_canonical(y[3:])))
    assert not np.any(out[3:][~mask]) and np.all(np.any(out[:3] != 0, axis=2))
    part = both[[4, 9]]
    assert np.array_equal(np.asarray(part.to_canonical(joined[[4, 9]])), expected[[4, 9]])


def test_mask_is_checked():
    G = get_group("S_n")
    x = np.zeros((2, 3, 2))
    with pytest.raises(ValueError, match="boolean"):
        G.frame(x, present=np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        G.frame(x, present=np.ones((2, 4), dtype=bool))


@pytest.mark.parametrize("name", GROUPS)
def test_scalar_colours_and_one_present_row(name):
    """Scalars (colours) of present rows only; a batch whose samples have one row."""
    rng = np.random.default_rng(4)
    G = get_group(name)
    d = dims(name)
    x = rng.normal(size=(3, 5, d))
    x[..., 0] += 4.0
    s = rng.integers(0, 2, size=(3, 5, 1)).astype(np.float64)
    (xp, sp), _, mask, positions = pad([x, s], [5, 1, 4], rng, n=7)
    f = G.frame(xp, scalars=sp, present=mask)
    for b, (pos, m) in enumerate(zip(positions, [5, 1, 4])):
        g = G.frame(x[b:b + 1, :m], scalars=s[b:b + 1, :m])
        assert np.array_equal(np.asarray(f.perm[b, :m]), pos[g.perm[0]])
        assert np.array_equal(canonical(f, xp)[b, :m], canonical(g, x[b:b + 1, :m])[0])
        assert np.array_equal(canonical(f, sp, "scalar")[b, :m],
                              canonical(g, s[b:b + 1, :m], "scalar")[0])
        assert f.size[b] == g.size[0]


@needs_nauty
@pytest.mark.parametrize("name", ["S_n x E(3)", "S_n x O(1,3)"])
def test_bonds_and_colours_of_present_rows(name):
    """Edge fields (bonds) and scalar colours under S_n x G, padded: the bonds of
    absent rows are zero rows and columns and take no part."""
    rng = np.random.default_rng(12)
    G = get_group(name)
    x, sizes = samples(name, rng, np.float64)
    bonds = np.zeros((8, 8, 8, 1))
    for b, m in enumerate(sizes):
        cyc = cycle(m) if m > 2 else np.zeros((m, m))
        bonds[b, :m, :m, 0] = cyc
    s = (np.arange(8) % 2).astype(np.float64)[None, :, None].repeat(8, axis=0)
    (xp, sp), (bp,), mask, positions = pad([x, s], sizes, rng, edges=[bonds])
    f = G.frame(xp, scalars=sp, edges=bp, present=mask)
    canon = canonical(f, xp)
    for b, (pos, m) in enumerate(zip(positions, sizes)):
        assert not np.any(canon[b, m:])
        if not m:
            continue
        same = [c for c, size in enumerate(sizes) if size == m]
        i = same.index(b)
        g = G.frame(x[same, :m], scalars=s[same, :m], edges=bonds[same, :m, :m])
        assert np.array_equal(np.asarray(f.perm[b, :m]), pos[g.perm[i]])
        assert np.array_equal(canon[b, :m], canonical(g, x[same, :m])[i])
        assert np.array_equal(canonical(f, bp, "edge")[b, :m, :m],
                              canonical(g, bonds[same, :m, :m], "edge")[i])
        assert f.size[b] == g.size[i]
    assert f.size[5] == 2       # the cube with a cycle of bonds and alternating colours


# --------------------------------------------------------------------------- torch
@pytest.mark.parametrize("name", GROUPS)
def test_torch_matches_numpy(name):
    rng = np.random.default_rng(5)
    G = get_group(name)
    x, sizes = samples(name, rng, np.float64)
    (xp,), _, mask, _ = pad([x], sizes, rng)
    f = G.frame(xp, present=mask)
    xt = torch.tensor(xp, requires_grad=True)
    ft = G.frame(xt, present=torch.tensor(mask))
    assert np.array_equal(ft.perm.numpy(), f.perm) and np.array_equal(ft.size, f.size)
    canon_t = ft.to_canonical(xt)[:, 0]
    assert rel_error(canon_t.detach().numpy(), canonical(f, xp)) < 1e-12
    for b, m in enumerate(sizes):
        assert not torch.any(canon_t[b, m:])
        if m:      # bitwise the unpadded torch frame
            one, g = unpadded(G, torch.tensor(x), sizes, b, edge=False)
            assert torch.equal(canon_t[b, :m], g.to_canonical(one)[0, 0])
    y = torch.tensor(rng.normal(size=(len(sizes), 1, N, dims(name))))
    out = ft.from_canonical(y)
    assert rel_error(out.detach().numpy(), f.from_canonical(y.numpy())) < 1e-12
    (canon_t.square().sum() + out.sum()).backward()
    grad = xt.grad.numpy()
    assert not np.any(grad[~mask])                  # absent rows: no dependence at all
    # finite gradients; SO(1,3) frames of rank <= d - 2 have NaN gradients, padded or
    # not (test_so13_rank_deficient_gradient)
    finite = (np.ones(len(sizes), dtype=bool) if name != "S_n x SO(1,3)"
              else np.asarray(ft.rank) >= dims(name) - 1)
    assert np.sum(finite) >= 4 and np.all(np.isfinite(grad[finite]))
    if name != "S_n":
        assert np.any(grad[mask])


def test_so13_rank_deficient_gradient():
    """SO(1,3) frames of rank <= d - 2 (two present rows, say) have finite gradients."""
    xt = torch.tensor([[[4.0, 0.3, -0.2, 0.5], [3.0, -0.1, 0.4, 0.2]]], dtype=torch.float64,
                      requires_grad=True)
    get_group("SO(1,3)").frame(xt).to_canonical(xt).square().sum().backward()
    assert torch.all(torch.isfinite(xt.grad))


# --------------------------------------------------------------------------- graphs
def cycle(m):
    A = np.zeros((m, m))
    i = np.arange(m)
    A[i, (i + 1) % m] = A[(i + 1) % m, i] = 1.0
    return A


def graph_batch(rng):
    """Adjacency matrices (B, 8, 8, 1) of C8, C6, a weighted random graph on 7
    vertices, K4, one vertex and none, with their sizes and |Aut|."""
    graphs = [cycle(8), cycle(6), np.round(rng.random((7, 7)), 1), np.ones((4, 4))
              - np.eye(4), np.zeros((1, 1)), np.zeros((0, 0))]
    graphs[2] = graphs[2] + graphs[2].T
    A = np.zeros((len(graphs), 8, 8, 1))
    for b, g in enumerate(graphs):
        A[b, :len(g), :len(g), 0] = g
    return A, [len(g) for g in graphs], [16, 12, 1, 24, 1, 1]


@needs_nauty
@pytest.mark.parametrize("name", ["graph", "S_n"])
def test_padded_graph_frame_is_the_frame_of_the_present_vertices(name):
    rng = np.random.default_rng(6)
    G = get_group(name)
    A, sizes, aut = graph_batch(rng)
    _, (Ap,), mask, positions = pad([], sizes, rng, edges=[A])
    f = G.frame(edges=Ap, present=mask)
    assert list(f.size) == aut                     # Aut of the present vertices only
    check_padded_frame(G, f, A, Ap, mask, positions, sizes, edge=True)
    # node outputs: averaged over the orbits of the present vertices only
    y = rng.normal(size=(len(sizes), 1, N, 2))
    out = f.from_canonical(y, "scalar")
    for b, (pos, m) in enumerate(zip(positions, sizes)):
        if m:
            g = G.frame(edges=A[b:b + 1, :m, :m])
            assert np.array_equal(out[b, pos], g.from_canonical(y[b:b + 1, :, :m],
                                                                "scalar")[0])
        assert not np.any(out[b, ~mask[b]])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["S_n", "S_n x E(3)"])
def test_padded_frames_on_cuda(name):
    pytest.importorskip("pynauty")   # the samples include symmetric ones
    rng = np.random.default_rng(13)
    G = get_group(name)
    x, sizes = samples(name, rng, np.float64)
    (xp,), _, mask, _ = pad([x], sizes, rng)
    f = G.frame(xp, present=mask)
    xc = torch.tensor(xp, device="cuda")
    fc = G.frame(xc, present=torch.tensor(mask, device="cuda"))
    assert fc.perm.device == xc.device and fc.present.device == xc.device
    assert np.array_equal(fc.perm.cpu().numpy(), f.perm)
    canon = fc.to_canonical(xc)[:, 0].cpu().numpy()
    absent_last = np.sort(~mask, axis=1)                  # absent rows, canonical order
    assert rel_error(canon, canonical(f, xp)) < 1e-12 and not np.any(canon[absent_last])


@needs_nauty
def test_padded_graph_torch():
    rng = np.random.default_rng(7)
    G = get_group("graph")
    A, sizes, aut = graph_batch(rng)
    _, (Ap,), mask, _ = pad([], sizes, rng, edges=[A])
    f = G.frame(edges=Ap, present=mask)
    ft = G.frame(edges=torch.tensor(Ap), present=torch.tensor(mask))
    assert np.array_equal(ft.perm.numpy(), f.perm) and list(ft.size) == aut
    assert np.array_equal(ft.to_canonical(torch.tensor(Ap), "edge").numpy(),
                          f.to_canonical(Ap, "edge"))


# -------------------------------------------------------------------- equivariance
def moved_padded(G, g, a, mask, kind):
    """g.x on the present rows (all n rows permuted), absent rows zero."""
    moved = G.act(g, a, kind)
    keep = G.act(g, mask[..., None].astype(np.float64), "scalar")[..., 0] > 0
    if kind == "edge":
        keep2 = keep[:, :, None] & keep[:, None, :]
        return np.where(keep2[..., None], moved, 0.0), keep
    return np.where(keep[..., None], moved, 0.0).astype(a.dtype), keep


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", GROUPS)
def test_equivariance_on_present_rows(name, dtype):
    rng = np.random.default_rng(8)
    G = get_group(name)
    x, sizes = samples(name, rng, dtype)
    (xp,), _, mask, _ = pad([x], sizes, rng)
    d = dims(name)
    backbone = RowBackbone(N, d, {"vector": d, "point": d} if name != "S_n"
                           else {"scalar": 2}, seed=3)
    g = G.random_element(len(sizes), 9)
    gx, moved_mask = moved_padded(G, g, xp, mask, "point")
    out_x, _ = frame_averaged(G, backbone, xp, present=mask)
    out_gx, _ = frame_averaged(G, backbone, gx, present=moved_mask)
    # g.F(x): the present rows move, absent ones stay zero
    expected = {kind: moved_padded(G, g, value, mask, kind)[0]
                for kind, value in out_x.items() if kind != "invariant"}
    errors = {kind: rel_error(expected[kind], out_gx[kind]) for kind in expected}
    errors["invariant"] = rel_error(out_x["invariant"], out_gx["invariant"])
    bound = 0.0 if name == "S_n" else (1e-10 if dtype == np.float64 else 1e-5)
    assert max(errors.values()) <= bound, errors
    for kind in expected:
        assert not np.any(out_gx[kind][~moved_mask])
    control = equivariance_errors(G, g, bare(backbone, xp), bare(backbone, gx))
    assert min(control.values()) >= CONTROL, control


@needs_nauty
def test_graph_equivariance_on_present_vertices():
    rng = np.random.default_rng(10)
    G = get_group("graph")
    A, sizes, _ = graph_batch(rng)
    _, (Ap,), mask, _ = pad([], sizes, rng, edges=[A])
    backbone = RowBackbone(N, N, {"scalar": 2, "edge": N}, seed=4)

    def F(a, present):
        f = G.frame(edges=a, present=present)
        c = f.to_canonical(a, "edge")                               # (B, 1, n, n, 1)
        y = backbone(c.reshape(c.shape[:3] + (N,)))
        edge = y["edge"].reshape(c.shape)
        return {"scalar": f.from_canonical(y["scalar"], "scalar"),
                "edge": f.from_canonical(edge, "edge"), "invariant": y["invariant"][:, 0]}

    g = G.random_element(len(sizes), 11)
    gA, moved_mask = moved_padded(G, g, Ap, mask, "edge")
    out_x, out_gx = F(Ap, mask), F(gA, moved_mask)
    assert np.array_equal(moved_padded(G, g, out_x["scalar"], mask, "scalar")[0],
                          out_gx["scalar"])
    assert np.array_equal(moved_padded(G, g, out_x["edge"], mask, "edge")[0],
                          out_gx["edge"])
    assert np.array_equal(out_x["invariant"], out_gx["invariant"])
    # control: the bare backbone is not equivariant
    flat = backbone(Ap.reshape(len(sizes), 1, N, N))["scalar"][:, 0]
    flat_g = backbone(gA.reshape(len(sizes), 1, N, N))["scalar"][:, 0]
    assert rel_error(moved_padded(G, g, flat, mask, "scalar")[0], flat_g) >= CONTROL


# ------------------------------------------------ padded batches framed at once (S_n x O)
def _fast_path_batch(rng, dtype, B=60, n=9):
    """Samples of S_n x O(3) with 0..n present rows holding random finite filler at
    their absent rows: generic ones, ones whose first two rows have equal norms (only
    colour refinement tells them apart), and cubes and twin rows (symmetric: the
    general path); returns the padded fields, the mask and the symmetric samples."""
    sizes = rng.integers(0, n + 1, size=B)
    sizes[:4] = [0, 1, 2, n]
    x = rng.normal(size=(B, n, 3))
    for b in range(4, B, 3):                       # equal norms, generic otherwise
        x[b, 1] = x[b, 0] @ np.linalg.qr(rng.normal(size=(3, 3)))[0]
    symmetric = [5, 6]
    sizes[5], sizes[6] = 8, 5
    x[5, :8] = cube_vertices() @ np.linalg.qr(rng.normal(size=(3, 3)))[0]
    x[6, 2] = x[6, 0]                              # twins
    u = np.zeros((B, n, 3))                        # a second point field, mostly zero
    u[:, 0] = rng.normal(size=(B, 3)) * (rng.random((B, 1)) < 0.5)
    s = rng.integers(0, 2, size=(B, n, 1)).astype(np.float64)
    s[4::3, :2] = 1.0                              # equal colours for the equal norms
    s[5], s[6, 2] = 0.0, s[6, 0]                   # uncoloured cube, twins
    v = rng.normal(size=(B, n, 3))
    u[5], v[5] = 0.0, 0.0                          # nothing else breaks the cube's symmetry
    (xp, up, sp, vp), _, mask, positions = pad([a.astype(dtype) for a in (x, u, s, v)],
                                                sizes, rng, n=n)
    for a in (xp, up, sp, vp):
        a[~mask] = rng.normal(size=(int((~mask).sum()), a.shape[-1]))
    return (xp, up, sp, vp), (x, u, s, v), mask, positions, sizes, symmetric


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["S_n x O(3)", "S_n x SO(3)"])
@pytest.mark.parametrize("two_fields", [False, True])
def test_padded_batch_at_once_is_the_frame_of_the_present_rows(name, dtype, two_fields,
                                                               monkeypatch):
    """Groups without translations frame the samples whose present rows colour
    refinement tells apart on the padded batch, at once; the frames are those of the
    present rows alone, bit for bit, and only the others (symmetric, empty) are framed
    by their present rows."""
    rng = np.random.default_rng(7)
    G = get_group(name)
    (xp, up, sp, vp), (x, u, s, v), mask, positions, sizes, symmetric = \
        _fast_path_batch(rng, dtype)
    compact_samples = []
    frame = G.frame

    def spy(*args, **options):
        if options.get("present") is None:
            compact_samples.append(len(args[0][0] if isinstance(args[0], list) else args[0]))
        return frame(*args, **options)

    monkeypatch.setattr(G, "frame", spy)
    points = [up, xp] if two_fields else [xp]
    f = G.frame(points, scalars=sp, others=[(vp, "vector")], present=mask,
                rule="first_above")
    monkeypatch.undo()
    searched = 0
    for m in np.unique(sizes):
        same = np.flatnonzero(sizes == m)
        if m == 0:
            assert np.array_equal(np.asarray(f.perm)[same], np.broadcast_to(
                np.arange(mask.shape[1]), (len(same), mask.shape[1])))
            continue
        compact = [u[same, :m], x[same, :m]] if two_fields else [x[same, :m]]
        g = G.frame([a.astype(dtype) for a in compact], scalars=s[same, :m].astype(dtype),
                    others=[(v[same, :m].astype(dtype), "vector")], rule="first_above")
        searched += int(np.sum(g.labeling_path == "search"))
        for i, b in enumerate(same):
            pos = positions[b]
            assert np.array_equal(f.perms[b, 0, :m], pos[g.perms[i, 0]])
            assert np.array_equal(f.perms[b, 0, m:], np.flatnonzero(~mask[b]))
            live = g.weights[i] > 0
            assert np.array_equal(f.weights[b][:live.sum()], g.weights[i][live])
            assert np.array_equal(f.H[b][:live.sum()], g.H[i][live])
            assert np.array_equal(f.runs[b, :m], g.runs[i])
            for name_ in ("size", "rank", "conditioning", "labeling_path",
                          "n_candidate_groups"):
                assert getattr(f, name_)[b] == getattr(g, name_)[i]
        for padded, alone, kind in [(xp, x, "point"), (sp, s, "scalar"), (vp, v, "vector")]:
            got = canonical(f, padded, kind)[same]
            want = canonical(g, alone[same, :m].astype(dtype), kind)
            assert np.array_equal(got[:, :m], want)
            assert not np.any(got[:, m:])
        y = rng.normal(size=(len(same), 1, m, 3))
        full = np.zeros((len(mask), 1, mask.shape[1], 3))
        full[same, :, :m] = y
        out = f.from_canonical(full, "vector")[same]
        back = g.from_canonical(y, "vector")
        for i, b in enumerate(same):
            assert np.array_equal(out[i, positions[b]], back[i])
    assert all(f.labeling_path[symmetric] == "search")
    assert f.size[symmetric[0]] == (48 if name == "S_n x O(3)" else 24)
    assert searched < len(mask) // 4
    # the searched and the empty samples alone were framed by their present rows
    assert sum(compact_samples) == searched + int(np.sum(sizes == 0))
