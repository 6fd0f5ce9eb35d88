"""Absent rows (``present``) in the frames of the non-permutation groups.

A sample padded with absent rows (finite filler, not zeros: the group must ignore the
values) anywhere among its rows gets the frame of the sample with those rows deleted:
the same ``H`` and ``t`` and the same canonical present rows, bit for bit where the
arithmetic is the same (orthogonal, unitary, Lorentz), to rounding for GL, SL and Aff
(a QR of more rows). One present row; no present row (the identity frame, rank 0).
"""

import numpy as np
import pytest

from mfa_sklearn.groups import LorentzGroup, get_group

GROUPS = ["O(3)", "SO(3)", "E(3)", "SE(3)", "O(2)", "SE(2)", "U(2)", "SU(3)",
          "O(1,3)", "SO(1,3)", LorentzGroup(4, anchor="cumsum"),
          LorentzGroup(4, anchor="none"), "GL(3)", "SL(3)", "Aff(3)", "Aff(2)"]
LINEAR = ("GL", "SL", "Aff")


def _ids(group):
    return repr(get_group(group))


def _sample(G, rng, B, n, dtype=np.float64, symmetric=False):
    if symmetric:     # a square in its plane, rows of equal norms and ties
        square = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        x = np.zeros((B, 4, G.d))
        x[..., :2] = square
        x = np.concatenate([x, x[:, :1] * 2.0], axis=1)[:, :n]
    else:
        x = rng.normal(size=(B, n, G.d))
    if G.metric is not None:       # future-directed momenta
        x[..., 0] = np.linalg.norm(x[..., 1:], axis=-1) + 1.0 + rng.random((B, n))
    if G.is_complex:
        x = x + 1j * rng.normal(size=x.shape)
        return x.astype(np.complex64 if dtype == np.float32 else np.complex128)
    return x.astype(dtype)


def _pad(rng, x, extra, filler):
    """x with ``extra`` absent rows of value ``filler`` at random places (per batch)."""
    B, n = x.shape[:2]
    N = n + extra
    where = np.sort(rng.choice(N, n, replace=False))
    padded = np.full((B, N) + x.shape[2:], filler, dtype=x.dtype)
    padded[:, where] = x
    present = np.zeros((B, N), dtype=bool)
    present[:, where] = True
    return padded, present, where


def _canonical(frame, x):
    return frame.snap(frame.to_canonical(x))


def _n_rows(G):
    return G.d + 2 if G.name[:2] not in ("Af",) else G.d + 3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("group", GROUPS, ids=_ids)
def test_padded_sample_has_the_frame_of_the_unpadded_one(group, symmetric, dtype):
    G = get_group(group)
    if symmetric and (G.metric is not None or (G.name.startswith(LINEAR) and G.d != 2)):
        pytest.skip("the square spans 2 dimensions only")
    rng = np.random.default_rng(7)
    x = _sample(G, rng, 6, _n_rows(G), dtype, symmetric)
    reference = G.frame(x)
    for extra, filler in [(1, 0.0), (4, 3.5), (7, -1e3)]:
        padded, present, where = _pad(rng, x, extra, filler)
        frame = G.frame(padded, present=present)
        exact = not G.name.startswith(LINEAR)
        compare = np.testing.assert_array_equal if exact else (
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12))
        compare(frame.H, reference.H)
        if reference.t is not None:
            compare(frame.t, reference.t)
        np.testing.assert_array_equal(frame.rank, reference.rank)
        canon = _canonical(frame, padded)[:, :, where]
        compare(canon, _canonical(reference, x))


@pytest.mark.parametrize("group", ["Aff(3)", "Aff(2)", "GL(3)"], ids=_ids)
def test_linear_orbit_rows_exact_with_absent_rows(group):
    """d (GL) or d + 1 (Aff) rows are one orbit: the canonical rows are exact, with
    absent rows anywhere, as without them (the Aff sum rule counts present rows)."""
    G = get_group(group)
    rng = np.random.default_rng(3)
    n = G.d + (1 if G.has_translations else 0)
    x = rng.normal(size=(5, n, G.d))
    reference = _canonical(G.frame(x), x)
    padded, present, where = _pad(rng, x, 3, 2.0)
    frame = G.frame(padded, present=present)
    np.testing.assert_array_equal(_canonical(frame, padded)[:, :, where], reference)


@pytest.mark.parametrize("group", ["O(3)", "E(3)", "SE(2)", "U(2)", "O(1,3)",
                                   LorentzGroup(3, anchor="cumsum"), "SO(1,2)"],
                         ids=_ids)
def test_one_present_row(group):
    G = get_group(group)
    rng = np.random.default_rng(1)
    x = _sample(G, rng, 4, 1)
    padded, present, _ = _pad(rng, x, 5, 7.0)
    frame, reference = G.frame(padded, present=present), G.frame(x)
    np.testing.assert_array_equal(frame.H, reference.H)
    np.testing.assert_array_equal(frame.rank, reference.rank)
    if reference.t is not None:
        np.testing.assert_array_equal(frame.t, reference.t)


@pytest.mark.parametrize("group", GROUPS, ids=_ids)
def test_no_present_row_gets_the_identity(group):
    G = get_group(group)
    rng = np.random.default_rng(2)
    x = _sample(G, rng, 3, _n_rows(G))
    padded, present, _ = _pad(rng, x, 2, 0.0)
    present[1] = False
    padded[1] = 5.0                       # filler, whatever its value
    frame = G.frame(padded, present=present)
    np.testing.assert_array_equal(frame.H[1, 0], np.eye(G.d))
    assert int(frame.rank[1]) == 0
    if frame.t is not None:
        np.testing.assert_array_equal(frame.t[1], 0.0)
    # the other samples are as without the empty one
    others = G.frame(padded[[0, 2]], present=present[[0, 2]])
    np.testing.assert_array_equal(frame.H[[0, 2]], others.H)


@pytest.mark.parametrize("group", ["O(3)", "SO(3)", "E(3)", "SE(3)"], ids=_ids)
def test_pca_frames_ignore_absent_rows(group):
    G = get_group(group)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 6, 3))
    padded, present, _ = _pad(rng, x, 3, 9.0)
    frame = G.frame(padded, present=present, method="pca")
    reference = G.frame(x, method="pca")
    np.testing.assert_allclose(frame.H, reference.H, atol=1e-13)
    if reference.t is not None:
        np.testing.assert_array_equal(frame.t, reference.t)


def test_rank_guard_counts_present_rows_only():
    """GL(3) needs 3 independent present rows: 2 present rows fail even when the
    filler of the absent rows would span R^3."""
    from mfa_sklearn.exceptions import RankDeficientError

    G = get_group("GL(3)")
    x = np.eye(3)[None].repeat(2, axis=0)
    present = np.array([[True, True, True], [True, True, False]])
    G.frame(x[:1], present=present[:1])
    with pytest.raises(RankDeficientError, match=r"first: \[1\]"):
        G.frame(x, present=present)


def test_present_is_validated():
    G = get_group("E(3)")
    x = np.zeros((2, 4, 3))
    with pytest.raises(ValueError, match="shape"):
        G.frame(x, present=np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="boolean"):
        G.frame(x, present=np.ones((2, 4)))


def test_torch_present_matches_numpy():
    torch = pytest.importorskip("torch")
    for group in ["E(3)", "SO(1,3)", "Aff(3)", "SU(2)"]:
        G = get_group(group)
        rng = np.random.default_rng(5)
        x = _sample(G, rng, 4, _n_rows(G))
        padded, present, _ = _pad(rng, x, 3, 0.0)
        present[2] = False
        expected = G.frame(padded, present=present)
        got = G.frame(torch.as_tensor(padded), present=torch.as_tensor(present))
        np.testing.assert_allclose(got.H.numpy(), expected.H, atol=1e-12)
        np.testing.assert_array_equal(got.rank.numpy(), expected.rank)
