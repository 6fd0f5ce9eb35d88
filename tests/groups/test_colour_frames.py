"""S_n x G frames decided on the tensors' device (``_device.colour_frames``).

Where a sample's colours all differ, the device's row order must be the host's
(``invariant_graph`` and its dense ranking, bit for bit: the colours are computed by
the same operations) and its G-frame that of the rows in that order; where they tie,
the device must say so, so that the host decides. Checked on generic rows, rows with
exactly tied norms, rows tied only by their scalar colours, tiny and huge scales, and
with absent rows.
"""

import zlib

import numpy as np
import pytest

from mfa_sklearn.groups import get_group
from mfa_sklearn.groups.permutation._device import _colour_order, colour_frames
from mfa_sklearn.groups.permutation._invariant_graph import invariant_graph
from mfa_sklearn.groups.permutation._ranking import dense_rank_order
from tests._helpers import generic

torch = pytest.importorskip("torch")


def _samples(kind, rng, B=200, n=7, d=3):
    x = generic(rng, B, n, d)
    colour = rng.integers(0, 3, size=(B, n, 1)).astype(float)
    if kind == "tied norms":       # every other sample: rows 1 and 2 of equal norm
        q = np.linalg.qr(rng.normal(size=(B, d, d)))[0]
        x[::2, 2] = (x[:, 1, None] @ q)[::2, 0]
    elif kind == "tied colours":   # equal norms, different scalar colours: told apart
        x[:, 2] = -x[:, 1]
        colour[:, 2] = colour[:, 1] + 1.0
    elif kind == "tiny":
        x = 1e-150 * x
    elif kind == "huge":
        x = 1e150 * x
    return x, colour


@pytest.mark.parametrize("name", ["S_n x O(3)", "S_n x SO(3)", "S_n x O(2)"])
@pytest.mark.parametrize("kind", ["generic", "tied norms", "tied colours", "tiny", "huge"])
def test_colour_frames_are_the_hosts(name, kind):
    group = get_group(name)
    rng = np.random.default_rng(zlib.crc32(f"{name} {kind}".encode()))
    x, colour = _samples(kind, rng, d=group.d)
    data = group._batch([x], [], [colour], [], None, None, "first_above")
    _, order, distinct = dense_rank_order(invariant_graph(data, group.metric).colours)
    present = np.ones(x.shape[:2], dtype=bool)
    got_order, frame, settled = colour_frames(
        group, [torch.tensor(x)], [], [torch.tensor(colour)], torch.tensor(present),
        tol=data.tol, delta=data.delta, rule="first_above")
    np.testing.assert_array_equal(settled.numpy(), distinct)
    assert kind != "tied norms" or not distinct.all()
    np.testing.assert_array_equal(got_order.numpy()[distinct], order[distinct])
    expected = data.inner_frame(np.flatnonzero(distinct), order[distinct])
    np.testing.assert_allclose(frame.H.numpy()[distinct], expected.H, rtol=0, atol=1e-14)


def test_colour_frames_with_absent_rows():
    """Absent rows (zeros) come last in index order and never tie; the present rows
    are ordered and framed as the compact sample's."""
    group = get_group("S_n x O(3)")
    rng = np.random.default_rng(3)
    x, colour = _samples("generic", rng, B=50, n=9)
    present = rng.random(x.shape[:2]) < 0.7
    present[:, 0] = True
    x[~present], colour[~present] = 0.0, 0.0
    tol, delta = group.tolerances([x.dtype])
    order, frame, settled = colour_frames(
        group, [torch.tensor(x)], [], [torch.tensor(colour)], torch.tensor(present),
        tol=tol, delta=delta, rule="first_above")
    assert settled.all()
    for b in range(len(x)):
        rows = np.flatnonzero(present[b])
        compact = group.frame(x[b:b + 1, rows], scalars=colour[b:b + 1, rows],
                              rule="first_above")
        np.testing.assert_array_equal(order[b, :len(rows)].numpy(),
                                      rows[compact.perm[0]])
        np.testing.assert_array_equal(order[b, len(rows):].numpy(),
                                      np.flatnonzero(~present[b]))
        np.testing.assert_allclose(frame.H[b].numpy(), compact.H[0], rtol=0, atol=1e-14)


def test_colour_frames_refuse_translations():
    with pytest.raises(ValueError, match="S_n x O"):
        colour_frames(get_group("S_n x E(3)"), [torch.zeros(1, 3, 3)], [], [],
                      torch.ones(1, 3, dtype=torch.bool), tol=1e-8, delta=1e-5,
                      rule="first_above")


@pytest.mark.parametrize("kind", ["generic", "tied norms", "tied colours"])
def test_counted_order_is_the_hosts_ranking(kind):
    """Ranks by counting settle the samples whose present rows the host's dense ranking
    tells apart, order them as it does (absent rows last, in index order), and give a
    permutation of each sample's rows everywhere."""
    group = get_group("S_n x O(3)")
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    x, colour = _samples(kind, rng)
    present = rng.random(x.shape[:2]) < 0.8
    x[~present], colour[~present] = 0.0, 0.0
    data = group._batch([x], [], [colour], [], None, None, "first_above")
    colours = invariant_graph(data, group.metric).colours
    _, host_order, distinct = dense_rank_order(colours, present)
    order, settled = _colour_order(torch.tensor(colours), torch.tensor(present))
    np.testing.assert_array_equal(settled.numpy(), distinct)
    assert int(settled.sum()) > 0
    assert kind != "tied norms" or not bool(settled.all())
    np.testing.assert_array_equal(order.numpy()[distinct], host_order[distinct])
    assert torch.equal(torch.sort(order, dim=1).values,
                       torch.arange(x.shape[1]).expand(x.shape[:2]))
