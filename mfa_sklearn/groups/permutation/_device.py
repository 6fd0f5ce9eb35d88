"""The colour fast path of S_n x G frames, computed where the rows are (any device).

The frames of :class:`~._product.PermutationProductGroup` are decided on the host
(:mod:`._invariant_graph`): for almost every generic sample the rows' *colours*, their
quantised norms ``rint(<z_i, z_i> / (delta s))`` and their scalar fields, already
differ, so their lexicographic order is the canonical row order and the G-frame of the
rows in that order is the whole frame (trivial stabilizer). :func:`colour_frames`
computes exactly that in the rows' own namespace and on their device, with the same
operations in the same order, so that the colours are those of the host bit for bit,
and says which samples it settles. The others (tied colours: symmetric or repeated
rows, which need colour refinement or a canonical labeling search) go to the host.

Only for G without translations and with the Euclidean metric (O(d), SO(d)): the
host's centroid and Minkowski scale of a padded sample are not computed as on the
compact one.

References
----------
Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More Symmetries and
Efficiency. ICML 2024, arXiv:2406.07598.
"""

import numpy as np

from .._namespace import class_sums, constant, get_namespace, power_of_two_scale, take_rows


def colour_frames(group, points, vectors, scalars, present, *, tol, delta, rule):
    """Canonical row orders and G-frames of the samples whose colours all differ.

    Parameters
    ----------
    group : PermutationProductGroup
        ``S_n x O(d)`` or ``S_n x SO(d)``.
    points, vectors : list of arrays of shape (B, n, d)
        Frame-defining rows, float64, zero in absent rows.
    scalars : list of arrays of shape (B, n, w)
        Per-row scalar fields (colours, compared exactly).
    present : bool array of shape (B, n)
    tol, delta : float
        Rank tolerance of the G-frames and quantisation step of the colours (see
        :meth:`~._product.PermutationProductGroup._batch`).
    rule : str
        Row selection rule of the G-frames.

    Returns
    -------
    order : int64 array of shape (B, n)
        The present rows in the order of their colours, then the absent rows in
        increasing index order.
    frame : Frame
        The G-frames (one element each) of the frame-defining rows in that order.
    settled : bool array of shape (B,)
        Whether a sample's present rows all have different colours: only there are
        ``order`` and ``frame`` its minimal frame.
    """
    if group.has_translations or group.metric is not None:
        raise ValueError(f"colour frames on the device take S_n x O(d) or S_n x SO(d); "
                         f"got {group.name}")
    rows = points + vectors
    xp = get_namespace(*rows)
    # the colours are decisions: no autograd graph of them
    values = [a.detach() if hasattr(a, "detach") else a for a in rows]
    order, settled = _colour_order(_colours(xp, values, scalars, delta), present)
    moved = [take_rows(xp, a, order) for a in rows]
    # One selection, with gradients: replaying the chosen rows (as the host-decided
    # path does) would spare the backward pass the other rows' residual updates, but
    # costs a second frame's kernel launches and saved no GPU time on an H200 (22.1
    # against 21.7 ms for the energies and forces of 260,000 atoms).
    frame = group.inner.frame(moved[:len(points)] or None, moved[len(points):] or None,
                              tol=tol, rule=rule)
    return order, frame, settled


def _colour_order(colours, present):
    """The lexicographic order of the present rows' colours (B, n, c), then the absent
    rows in index order, and whether the present colours all differ (B,).

    Ranks by counting, ``rank_i = #{present j: colour_j < colour_i}``: a handful of
    elementwise passes over (B, n, n) comparisons (O(n^2) per sample: for the few rows
    of a neighbourhood), where an accelerator's segmented sort makes several radix
    passes per colour column. Where the colours all differ the ranks give the unique
    sorting order; elsewhere the order is some permutation, not used."""
    xp = get_namespace(colours)
    B, n, c = colours.shape
    device = getattr(colours, "device", None)
    n_present = xp.sum(xp.astype(present, xp.int64), axis=1)
    less = equal = None
    for col in range(c - 1, -1, -1):    # lexicographic: the first column decides first
        a, b = colours[:, None, :, col], colours[:, :, None, col]   # [i, j]: j vs i
        lt, eq = a < b, a == b
        less = lt if less is None else lt | (eq & less)
        equal = eq if equal is None else eq & equal
    both = present[:, :, None] & present[:, None, :]
    rank = xp.sum(xp.astype(less & present[:, None, :], xp.int64), axis=2)
    settled = xp.sum(xp.astype(equal & both, xp.int64), axis=(1, 2)) == n_present
    # absent rows: after the present ones, in index order (a count, not a cumulative
    # sum: scans along short rows are slow on accelerators)
    earlier = constant(xp, np.tril(np.ones((n, n), dtype=bool), -1), device=device)
    behind = xp.sum(xp.astype(~present[:, None, :] & earlier, xp.int64), axis=2)
    rank = xp.where(present, rank, n_present[:, None] + behind)
    # the order is the inverse permutation of the ranks; tied samples keep their
    # rows in place, so that the order is a permutation everywhere
    position = xp.broadcast_to(xp.arange(n, dtype=xp.int64, device=device), (B, n))
    rank = xp.where(settled[:, None], rank, position)
    return class_sums(xp, xp.reshape(position, (B, n, 1)), rank, n)[..., 0], settled


def _colours(xp, rows, scalars, delta):
    """The vertex colours of :func:`~._invariant_graph.invariant_graph` (Euclidean, no
    translations): the quantised diagonal Gram blocks of each row's frame-defining
    vectors, then the scalar fields, (B, n, k k + w)."""
    largest = xp.zeros(rows[0].shape[0], dtype=rows[0].dtype,
                       device=getattr(rows[0], "device", None))
    for a in rows:   # max |x| over every frame-defining row, as the host's
        largest = xp.maximum(largest, xp.maximum(xp.max(a, axis=(1, 2)),
                                                 -xp.min(a, axis=(1, 2))))
    factor = power_of_two_scale(xp, largest)[0][:, None, None]
    Z = [a * factor for a in rows]
    d = Z[0].shape[-1]
    blocks = []
    for p in Z:          # entry (p, q): a sum of d products, left to right
        for q in Z:
            K = p[..., 0] * q[..., 0]
            for x in range(1, d):
                K = K + p[..., x] * q[..., x]
            blocks.append(K)
    norms = xp.stack([blocks[i * (len(Z) + 1)] for i in range(len(Z))], axis=2)
    B, n, k = norms.shape
    s = xp.max(xp.reshape(norms, (B, n * k)), axis=1) if B * n else norms[:, 0, 0]
    unit = delta * xp.where(s > 0, s, xp.ones_like(s))
    quantised = [xp.round(K / unit[:, None]) for K in blocks]
    colours = xp.concat([xp.stack(quantised, axis=2)]
                        + [xp.astype(a, xp.float64) for a in scalars], axis=2)
    return colours + 0.0   # -0.0 and 0.0 tie
