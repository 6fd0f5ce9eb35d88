"""Frames of samples with absent rows: systems of different sizes in one padded batch.

A batch of systems with different numbers of rows is padded to ``n`` rows; the boolean
mask ``present`` (B, n) marks the rows that exist, and the engine fills every field of
an absent row with zeros (edge fields: the rows and columns of absent vertices). The
frame of a padded sample is the frame of the sample with its absent rows deleted, with
the absent rows appended **last** in the canonical order, in increasing index order,
each a class of its own (never averaged with another row):

* **Compaction.** ``layout`` (B, n) lists each sample's present rows in increasing
  index order, then its absent rows, likewise. The samples are grouped by their number
  ``m`` of present rows; the present rows of a group are gathered into a batch of
  ``m`` rows (edge fields: rows and columns), in the inputs' namespace and on their
  device, and its frames are computed as for any batch. The decisions are those of the
  unpadded samples, bit for bit, whatever the positions of the absent rows.
* **Embedding.** A compact row order ``pi`` (over ``0..m-1``) becomes
  ``layout[pi]`` followed by the absent rows; tie classes, twins and orbits keep their
  labels (all below ``m``) and the absent row at position ``p >= m`` gets the label
  ``p``; orbitals (pairs ``p * m + q``) are relabelled ``p * n + q``, and every pair with
  an absent vertex is a class of its own. ``H``, ``t``, weights, ``frame_size`` and
  the diagnostics are those of the compact frame: symmetries count present rows only.
  The frame keeps the mask: canonical inputs and outputs of absent rows are zeros (a
  zero row would otherwise become ``-t H^{-1}``, which moves with the translation).
* **Empty samples** (no present row) get the identity order and the frame of one zero
  row (rank 0, ``t = 0``).

The groups compute the compact frames in as many calls as there are distinct sizes
``m`` in the batch; each call is vectorized over its samples. Products ``S_n x G``
without translations first frame the samples that their fast path (one round of
colour refinement) tells apart on the padded batch at once, with the same bits (see
``PermutationProductGroup._fast_frames_padded``); only the others are compacted.

References
----------
Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More Symmetries and
Efficiency. ICML 2024, arXiv:2406.07598.
"""

import numpy as np

from .._base import as_list, to_numpy
from .._namespace import get_namespace, take_rows


def present_mask(present, B, n):
    """The host mask of present rows (B, n), or None when every row is present.

    Parameters
    ----------
    present : array of shape (B, n) of bool, or None
        Present rows (numpy bool array or torch bool tensor).
    B, n : int
        Samples and rows of the batch.

    Returns
    -------
    ndarray of shape (B, n) of bool, or None
    """
    if present is None:
        return None
    mask = to_numpy(present)
    if mask.dtype != np.bool_:
        raise ValueError(f"present must be a boolean array of shape ({B}, {n}); got "
                         f"dtype {mask.dtype}")
    if mask.shape != (B, n):
        raise ValueError(f"present must have shape ({B}, {n}) (samples, rows); got "
                         f"{tuple(mask.shape)}")
    return None if bool(np.all(mask)) else mask


def batch_shape(points, vectors, scalars, others, edges):
    """``(B, n)`` of the first given per-row or edge field (None if there is none)."""
    given = (as_list(points) + as_list(vectors) + [a for a, _ in (others or [])]
             + as_list(scalars) + as_list(edges))
    return tuple(given[0].shape[:2]) if given else None


def _gathered(a, index, rows, empty, edge=False):
    """The rows ``rows`` (b, r) of the samples ``index`` (b,) of a field, in its
    namespace and on its device (edge fields: rows and columns); zeros if ``empty``."""
    xp = get_namespace(a)
    if isinstance(a, np.ndarray) and not edge:
        # one gather: row r of sample index[b] is row index[b] * n + r of the flat batch
        n, rest = a.shape[1], a.shape[2:]
        flat = (index[:, None] * n + rows).reshape(-1)
        sub = np.take(a.reshape((-1,) + rest), flat, axis=0).reshape(rows.shape + rest)
        return np.zeros_like(sub) if empty else sub
    if not isinstance(a, np.ndarray):
        index = xp.asarray(index, device=a.device)
        rows = xp.asarray(rows, device=a.device)
    sub = take_rows(xp, xp.take(a, index, axis=0), rows)
    if edge:
        sub = xp.take_along_axis(sub, rows[:, None, :, None], axis=2)
    return xp.zeros_like(sub) if empty else sub


def _embedded(compact, layout, mask, size):
    """A compact frame of samples with ``size`` present rows, embedded in the padded
    rows: row orders through ``layout`` (b, n), absent rows last (see the module
    docstring)."""
    b, n = layout.shape
    perms_c = to_numpy(compact.perms)
    S = perms_c.shape[1]
    perms = np.empty((b, S, n), dtype=np.int64)
    perms[:, :, :size] = np.take_along_axis(layout[:, None, :size], perms_c[:, :, :size],
                                            axis=2)
    perms[:, :, size:] = layout[:, None, size:]
    runs = np.broadcast_to(np.arange(n), (b, n)).copy()
    runs[:, :size] = to_numpy(compact.runs)[:, :size]
    orbitals = None
    if compact.orbitals is not None:
        orbitals = np.broadcast_to(np.arange(n * n).reshape(n, n), (b, n, n)).copy()
        if size:
            p, q = np.divmod(to_numpy(compact.orbitals), size)
            orbitals[:, :size, :size] = (p * n + q).reshape(b, size, size)
        orbitals = orbitals.reshape(b, n * n)
    if not isinstance(compact.perms, np.ndarray):
        xp = get_namespace(compact.perms)
        device = compact.perms.device
        perms, runs = (xp.asarray(perms, device=device), xp.asarray(runs, device=device))
        orbitals = None if orbitals is None else xp.asarray(orbitals, device=device)
        mask = xp.asarray(mask, device=device)
    return compact._like(perms, compact.H, compact.t, weights=compact.weights,
                         runs=runs, frame_size=compact.frame_size, orbitals=orbitals,
                         diagnostics={name: getattr(compact, name)
                                      for name in compact.diagnostic_names},
                         present=mask)


def frame_of_present(frame, mask, points, vectors, scalars, others, edges, done=None,
                      **options):
    """The frames of a padded batch with absent rows (see the module docstring).

    Parameters
    ----------
    frame : callable
        The group's ``frame`` (called without ``present`` on compact batches).
    mask : ndarray of shape (B, n) of bool
        Present rows (not all True).
    points, vectors, scalars, others, edges
        The fields, as passed to ``frame``.
    done : (ndarray, PermutationFrame), optional
        Samples (m,) whose frames are known already, and those frames (with ``mask``
        as their present rows); the other samples are framed here.
    **options
        ``method``, ``tol`` and ``rule``, passed on.

    Returns
    -------
    PermutationFrame
    """
    B = mask.shape[0]
    frames, samples = [], []
    todo = np.ones(B, dtype=bool)
    if done is not None:
        samples.append(done[0])
        frames.append(done[1])
        todo[done[0]] = False
    left = np.flatnonzero(todo)
    sizes = np.count_nonzero(mask[left], axis=1)
    # present rows, then absent ones, of the samples left
    layout = np.argsort(~mask[left], axis=1, kind="stable")
    for size in np.unique(sizes).tolist():
        at = np.flatnonzero(sizes == size)
        index = left[at]
        rows = layout[at, :max(size, 1)]
        empty = size == 0

        def gather(arrays, edge=False, index=index, rows=rows, empty=empty):
            return [_gathered(a, index, rows, empty, edge) for a in as_list(arrays)] or None

        compact = frame(gather(points), gather(vectors), scalars=gather(scalars),
                        others=[(_gathered(a, index, rows, empty), kind)
                                for a, kind in others or []] or None,
                        edges=gather(edges, edge=True), **options)
        frames.append(_embedded(compact, layout[at], mask[index], size))
        samples.append(index)
    out = type(frames[0]).concat(frames)
    source = np.argsort(np.concatenate(samples), kind="stable")
    if np.array_equal(source, np.arange(B)):
        return out
    if not isinstance(out.perms, np.ndarray):
        source = get_namespace(out.perms).asarray(source, device=out.perms.device)
    return out[source]
