"""The frames each path of S_n x G decides for part of a batch, and their assembly.

A batch is split by the fast path (one round of colour refinement on the invariant
graph separates the rows) into samples whose canonical row order is found at once and
samples that need nauty's search. Each path returns a part: for its samples the stored
elements ``(pi_s, H_s)`` with their weights, the classes of rows averaged in per-row
outputs, the stabilizer size and diagnostics. :func:`assemble` puts the parts back in
sample order, padding the stored elements to a common count with weight 0.

For torch input the G-frames are decided on a host copy, then recomputed on the
tensors' device by the same inner frame from the same rows (:meth:`_Part.geometry`):
the fast path from the rows in canonical order, the search path from the means of the
twin classes in each kept candidate's class order, so that ``H`` and ``t`` are
differentiable functions of the input.
"""

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .._base import Frame
from .._namespace import take_rows
from ._frame import Labeling


class Recipe(NamedTuple):
    """How one searched sample's G-frames arise from its rows.

    Attributes
    ----------
    twin : ndarray of shape (n,)
        Twin class of each row, ``0..N-1``.
    counts : ndarray of shape (N,)
        Rows per twin class.
    class_orders : ndarray of shape (m, N)
        The kept candidates' orders of the classes, one G-frame each.
    """

    twin: Any
    counts: Any
    class_orders: Any


@dataclass(frozen=True)
class _Part:
    """Frames of the samples ``index`` (m,) of a batch, decided by one path.

    Attributes
    ----------
    index : ndarray of shape (m,)
        The samples, in the batch.
    perms : ndarray of shape (m, S, n)
        Row orders of the stored elements.
    H : ndarray of shape (m, S, d, d)
        Their G-frames.
    t : ndarray of shape (m, d) or None
        Translations (E/SE).
    weights : ndarray of shape (m, S)
        Averaging weights (0 for padding).
    runs : ndarray of shape (m, n)
        Twin classes in canonical order.
    frame_size : ndarray of shape (m,)
        Size of the finite stabilizer (float).
    n_candidate_groups : ndarray of shape (m,)
        Number of distinct candidate canonical inputs.
    diagnostics : dict
        The representative G-frames' diagnostics (:attr:`Frame.diagnostic_names`).
    frame_type : type
        The geometric factor's Frame class.
    """

    #: the ``labeling_path`` diagnostic of the part's samples
    labeling_path: ClassVar[str]

    index: Any
    perms: Any
    H: Any
    t: Any
    weights: Any
    runs: Any
    frame_size: Any
    n_candidate_groups: Any
    diagnostics: dict
    frame_type: type

    def geometry(self, xp, rows, inner_frame):
        """The part's G-frames recomputed from device rows.

        Parameters
        ----------
        xp : namespace
            The rows' array namespace.
        rows : list of array of shape (B, n, d)
            The batch's frame-defining rows (points first), on the device.
        inner_frame : callable
            ``inner_frame(rows, choices=None)`` -> ``(H (m, d, d), t (m, d) or None)``,
            the inner group's frame of rows (m, n, d), from the host's row choices
            where given (see :meth:`~mfa_sklearn.groups._base.Group.replay_frame`).

        Yields
        ------
        samples : sequence of int
            Samples of the batch.
        H : array of shape (len(samples), s, d, d)
        t : array of shape (len(samples), d) or None
        """
        raise NotImplementedError


@dataclass(frozen=True)
class FastPart(_Part):
    """Samples whose rows colour refinement separates: one element, no twins."""

    labeling_path: ClassVar[str] = "fast"

    #: the host G-frames' row choices (:attr:`Frame.row_choices`), or None
    row_choices: Any = None

    def geometry(self, xp, rows, inner_frame):
        device = rows[0].device
        order = xp.asarray(self.perms[:, 0], device=device)
        if not np.array_equal(self.index, np.arange(rows[0].shape[0])):
            # the part's samples; all of them in order (the usual batch) need no copy
            take = xp.asarray(self.index, device=device)
            rows = [xp.take(a, take, axis=0) for a in rows]
        H, t = inner_frame([take_rows(xp, a, order) for a in rows], self.row_choices)
        yield self.index, H[:, None], t


@dataclass(frozen=True)
class SearchPart(_Part):
    """Samples labelled by nauty: the kept candidates ``h Stab(c)`` and their recipes."""

    labeling_path: ClassVar[str] = "search"

    #: per sample, how its G-frames arise from its rows
    recipes: tuple = ()

    def geometry(self, xp, rows, inner_frame):
        device = rows[0].device
        for b, (twin, counts, class_orders) in zip(self.index.tolist(), self.recipes):
            m, N = class_orders.shape
            means = xp.asarray((twin[None, :] == np.arange(N)[:, None])
                               / counts[:, None], dtype=rows[0].dtype,
                               device=device)                         # (N, n)
            flat = xp.asarray(class_orders.reshape(-1), device=device)
            H, t = inner_frame([xp.reshape(xp.take(means @ a[b], flat, axis=0),
                                           (m, N, a.shape[2])) for a in rows])
            yield [b], H[None], None if t is None else t[:1]


def assemble(B, n, parts):
    """The parts' frames in sample order.

    Parameters
    ----------
    B, n : int
        Samples and rows of the batch.
    parts : list of _Part
        Together they hold every sample once.

    Returns
    -------
    labeling : Labeling
        Row orders, weights, twin classes, sizes and diagnostics, padded to the largest
        number ``S`` of stored elements (identity orders, weight 0).
    H : ndarray of shape (B, S, d, d)
    t : ndarray of shape (B, d) or None
    """
    S = max(part.perms.shape[1] for part in parts)
    first = parts[0]
    d = first.H.shape[-1]
    perms = np.broadcast_to(np.arange(n), (B, S, n)).copy()
    H = np.zeros((B, S, d, d))
    weights = np.zeros((B, S))
    runs = np.zeros((B, n), dtype=np.int64)
    t = None if first.t is None else np.zeros((B, d))
    frame_size = np.ones(B)
    path = np.full(B, "fast", dtype="<U6")
    groups = np.ones(B, dtype=np.int64)
    diagnostics = dict.fromkeys(Frame.diagnostic_names)
    for part in parts:
        index, s = part.index, part.perms.shape[1]
        perms[index, :s] = part.perms
        H[index, :s] = part.H
        weights[index, :s] = part.weights
        runs[index] = part.runs
        if t is not None:
            t[index] = part.t
        frame_size[index] = part.frame_size
        path[index] = part.labeling_path
        groups[index] = part.n_candidate_groups
        for name in diagnostics:
            value = np.asarray(part.diagnostics[name])
            if diagnostics[name] is None:
                diagnostics[name] = np.zeros((B,), dtype=value.dtype)
            diagnostics[name][index] = value
    labeling = Labeling(perms, weights, runs, frame_size, labeling_path=path,
                         n_candidate_groups=groups, diagnostics=diagnostics)
    return labeling, H, t
