"""Frames recomputed from recorded row choices (``Group.replay_frame``).

The S_n x G product decides its frames on a host copy of torch input and recomputes
the G-frames on the tensors' device from the host's row choices. A replayed frame must
be the frame of the same rows bit for bit (torch, whose row selection never
downdates), for every rule, on generic, rank-deficient, tiny and huge rows and with
absent rows, and its gradients those of the frame.
"""

import zlib

import numpy as np
import pytest

from mfa_sklearn.groups import get_group
from mfa_sklearn.groups._selection import ROW_RULES
from tests._helpers import generic, low_rank

torch = pytest.importorskip("torch")


def _rows(kind, rng, B=64, n=6, d=3):
    if kind == "generic":
        return generic(rng, B, n, d)
    if kind == "rank 2":
        return low_rank(rng, B, n, d, 2)
    if kind == "rank 1":
        return low_rank(rng, B, n, d, 1)
    if kind == "tiny":
        return 1e-150 * generic(rng, B, n, d)
    return 1e150 * generic(rng, B, n, d)


@pytest.mark.parametrize("name", ["O(3)", "SO(3)", "E(3)", "SE(3)", "O(2)", "SE(2)"])
@pytest.mark.parametrize("rule", ROW_RULES)
@pytest.mark.parametrize("kind", ["generic", "rank 2", "rank 1", "tiny", "huge"])
def test_replay_equals_frame_bit_for_bit(name, rule, kind):
    group = get_group(name)
    d = group.d
    rng = np.random.default_rng(zlib.crc32(f"{name} {rule} {kind}".encode()))
    x = _rows(kind, rng, d=d)
    velocities = rng.standard_normal(x.shape) * np.abs(x).max()
    present = rng.random(x.shape[:2]) < 0.8
    for p, v in [(None, None), (present, None), (None, velocities), (present, velocities)]:
        host = group.frame(x, v, present=p, rule=rule)        # numpy decides
        assert host.row_choices is not None
        xt, vt = torch.tensor(x), None if v is None else torch.tensor(v)
        pt = None if p is None else torch.tensor(p)
        full = group.frame(xt, vt, present=pt, rule=rule)     # torch decides again
        replay = group.replay_frame(xt, vt, present=pt, choices=host.row_choices)
        assert torch.equal(replay.H, full.H)
        if full.t is not None:
            assert torch.equal(replay.t, full.t)
        assert torch.equal(replay.rank, full.rank)


def test_replay_gradients_match_the_frame():
    group = get_group("E(3)")
    rng = np.random.default_rng(0)
    x = generic(rng, 32, 5, 3)
    host = group.frame(x, rule="first_above")
    weights = torch.tensor(rng.standard_normal((32, 1, 3, 3)))
    grads = []
    for replay in (False, True):
        xt = torch.tensor(x, requires_grad=True)
        frame = (group.replay_frame(xt, choices=host.row_choices) if replay
                 else group.frame(xt, rule="first_above"))
        (g,) = torch.autograd.grad((frame.H * weights).sum() + frame.t.sum(), xt)
        grads.append(g)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-12, atol=1e-14)


def test_replay_needs_recorded_choices():
    with pytest.raises(NotImplementedError, match="records no row choices"):
        get_group("S_n").replay_frame(np.zeros((1, 2, 1)), choices=None)


def test_replay_of_a_weighted_frame_centres_as_it_did():
    # weighted frames' rules centre E/SE rows twice; the replay repeats it
    from mfa_sklearn.groups._selection import BandedRule

    group = get_group("E(3)")
    rng = np.random.default_rng(5)
    x = 1e3 * rng.standard_normal((64, 1, 3)) + low_rank(rng, 64, 6, 3, 2, offset=0.0)
    rule = BandedRule(0.09)
    host = group.frame(x, rule=rule)
    xt = torch.tensor(x)
    full = group.frame(xt, rule=rule)
    replay = group.replay_frame(xt, choices=host.row_choices, rule=rule)
    assert torch.equal(replay.H, full.H) and torch.equal(replay.t, full.t)
