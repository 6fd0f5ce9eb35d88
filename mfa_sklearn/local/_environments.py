"""Local environments: one neighbourhood per atom, put in canonical form by S_k x O(d).

A batch of systems (one row of X per system, absent atoms as all-NaN rows) becomes a
batch of neighbourhoods, one per present atom, batched over every atom of every system:

* rows: the centre (row 0, at the origin) and its neighbours ``r_ab = x_b - x_a``
  (translation invariant, rotating with the system), nearest first; missing neighbours
  are absent rows;
* per-row fields: every scalar field of the system (species, charges: the centre's own
  values are its context) and every vector field (velocities), plus a 0/1 scalar that
  marks the centre, so that no relabelling can move it;
* optionally (``first_vector="weighted"``) a frame vector of the centre,
  ``u = L sum_b w_b r_b / |r_b| / sum_b w_b`` with the smooth cutoff weights ``w_b`` and
  ``L`` the largest neighbour distance, set to zero where ``|u| < L / 2`` (both to
  within the relative band ``sqrt(eps)`` of X's dtype, for the reasons given below). The
  ``"first_above"`` row rule then takes it first: the
  neighbours' mean direction where it is well defined, the nearest neighbour where the
  directions nearly cancel (symmetric environments, where ``u`` is rounding noise).

Each neighbourhood is one sample of the product group ``S_k x O(d)`` (``S_k x SO(d)``):
its rows get a canonical order from invariant signatures, its frame from the rows in
that order, and symmetric neighbourhoods (an atom inside a perfect fcc or icosahedral
cluster, a linear or planar one, a lone atom) are averaged over their stabilizer, all
by the group's own minimal frames. Every function of the canonical neighbourhood is
then invariant under rotations, reflections, translations and relabellings of the
system; a vector output of the centre mapped back with its frame is equivariant.

**Numpy and torch.** :meth:`LocalFrames.environments` and
:meth:`Environments.features` take numpy arrays or torch tensors; gradients reach the
positions (forces of a torch energy model). Tensors on an accelerator, of systems
of up to ``ALL_PAIRS_MAX_ATOMS`` atoms, are canonicalized where they live, decisions
included (neighbour lists, the colours and row orders of the neighbourhoods, their
frames): only the neighbourhoods whose colours tie (symmetric environments, a fraction
of a percent of thermal ones) are decided on a host copy, by the product group's own
search. Elsewhere (numpy, CPU tensors, larger systems, whose neighbours a k-d tree
finds) the host decides, and the frames of tensors are recomputed from the chosen rows
where the tensors live.
"""

from dataclasses import dataclass

import numpy as np

from .._engine import FramePlan, chunk_slices, fill_absent, find_absent
from .._parallel import map_chunks, shares_memory
from ..exceptions import LayoutError
from ..groups import get_group
from ..groups._namespace import (
    constant,
    get_namespace,
    machine_eps,
    on_host,
    subtract_inplace,
    take_rows,
)
from ..groups.permutation._device import colour_frames
from ..layout import Layout
from ._neighbours import ALL_PAIRS_MAX_ATOMS, coincident_atoms, neighbour_lists, raise_coincident

#: names the neighbourhoods use for their own fields (no user field may take them)
_R, _CENTRE, _DIRECTION = "_relative", "_centre", "_direction"
RESERVED_NAMES = (_R, _CENTRE, _DIRECTION)


def local_group(group):
    """The neighbourhood group ``S_n x O(d)`` / ``S_n x SO(d)`` of a system group
    ``E(d)`` / ``SE(d)`` (``O(d)`` / ``SO(d)`` are accepted too)."""
    system = get_group(group)
    family = type(system).__name__
    if family != "OrthogonalGroup":
        raise ValueError(f"local frames take group 'E(d)' or 'SE(d)' (rotations, "
                         f"reflections and translations of whole systems); got {group!r}")
    stem = "SO" if system.special else "O"
    return system, get_group(f"S_n x {stem}({system.d})")


def cosine_weight(distance, cutoff):
    """``0.5 (cos(pi r / r_c) + 1)`` below the cutoff, 0 beyond: the smooth cutoff
    weight of a neighbour at ``distance`` (an array of any namespace)."""
    xp = get_namespace(distance)
    inside = distance < cutoff
    wave = 0.5 * (xp.cos(np.pi * xp.clip(distance, max=cutoff) / cutoff) + 1.0)
    return xp.where(inside, wave, xp.zeros_like(wave))


def _host(a):
    """A numpy copy of an array of any namespace (no gradient)."""
    return np.asarray(a.detach().cpu()) if hasattr(a, "detach") else np.asarray(a)


def _centre_positions(frame):
    """Where each neighbourhood's centre (input row 0) sits in its canonical order, from
    a host-decided frame (numpy (A,))."""
    return np.argmax(_host(frame.perm) == 0, axis=1)


def _safe_norm(xp, r, there):
    """Row norms of r (..., d) where ``there``, 1 elsewhere (no infinite gradient of
    the square root at the zero rows of absent neighbours)."""
    square = xp.sum(r * r, axis=-1)
    return xp.sqrt(xp.where(there, square, xp.ones_like(square)))


@dataclass(frozen=True)
class LocalFrames:
    """How the neighbourhoods of systems of one layout are built and canonicalized.

    Holds no data: :meth:`environments` computes them for a batch.

    Parameters
    ----------
    layout : Layout
        Layout of the systems: one point field (positions), any scalar and vector fields.
    group : Group
        The neighbourhood group, ``S_n x O(d)`` or ``S_n x SO(d)``.
    cutoff : float
    n_neighbors : int or None
    first_vector : {"nearest", "weighted"}
    row_rule : str
        Row selection rule of the frames (see ``select_rows``).
    cutoff_weight : {"cosine", None}
    """

    layout: Layout
    group: object
    cutoff: float
    n_neighbors: int | None
    first_vector: str = "nearest"
    row_rule: str = "first_above"
    cutoff_weight: str | None = "cosine"

    @classmethod
    def resolve(cls, group, fields, sample_shape, **options):
        """The local frames of systems of shape ``sample_shape`` under ``group``
        (``"E(d)"`` / ``"SE(d)"``), with clear errors for layouts they cannot take.

        ``options`` are the other fields of the dataclass (``cutoff``, ...)."""
        system_group, neighbourhood_group = local_group(group)
        layout = Layout.infer(fields, system_group, tuple(int(s) for s in sample_shape))
        kinds = [f.kind for f in layout.fields]
        taken = [f.name for f in layout.fields if f.name in RESERVED_NAMES]
        if taken:
            raise LayoutError(f"field names {taken} are reserved for the neighbourhoods' "
                              "own fields; rename them")
        if kinds.count("point") != 1 or "edge" in kinds:
            described = ", ".join(f"{f.name}: {f.kind}" for f in layout.fields)
            raise LayoutError(
                f"local frames need exactly one 'point' field (the positions), plus any "
                f"'scalar' and 'vector' fields, and no 'edge' field; got {described}")
        return cls(layout, neighbourhood_group, **options)

    @property
    def d(self):
        return self.group.d

    @property
    def positions(self):
        """Name of the systems' point field."""
        return next(f.name for f in self.layout.fields if f.kind == "point")

    def _names(self, kind):
        return [f.name for f in self.layout.fields if f.kind == kind]

    def angular_columns(self, n_radial):
        """Boolean mask over the columns of ``features("density", n_radial)``: True on
        the angular channels (monomials of degree 1 and 2), False on the centre's own
        fields and the radial channels."""
        fields = sum(f.width for f in self.layout.fields if f.kind in ("scalar", "vector"))
        own = fields + (self.d if self.first_vector == "weighted" else 0)
        monomials = 1 + self.d + self.d * (self.d + 1) // 2
        body = np.zeros((n_radial, monomials, 1 + fields), dtype=bool)
        body[:, 1:] = True
        return np.concatenate([np.zeros(own, dtype=bool), body.reshape(-1)])

    @property
    def width(self):
        """Neighbour rows per environment."""
        return self.n_neighbors if self.n_neighbors is not None else self.layout.n_rows - 1

    def plan(self):
        """The FramePlan of the neighbourhoods."""
        fields = {_R: ("point", self.d)}
        for f in self.layout.fields:
            if f.kind in ("scalar", "vector"):
                fields[f.name] = (f.kind, f.width)
        fields[_CENTRE] = ("scalar", 1)
        frame_fields = (_R,)
        if self.first_vector == "weighted":
            # a point field ahead of the relative positions: its one nonzero row is
            # the first candidate of the row selection
            fields[_DIRECTION] = ("point", self.d)
            frame_fields = (_DIRECTION, _R)
        env_layout = Layout.infer(fields, self.d, (self.width + 1, sum(
            w for _, w in fields.values())), what="neighbourhood fields")
        return FramePlan(self.group, env_layout, frame_fields, "minimal", self.row_rule)

    def environments(self, X, *, tol=None, n_jobs=None, present=None):
        """The canonical neighbourhoods of every present atom of X.

        Parameters
        ----------
        X : ndarray or torch.Tensor of shape (S, C) or (S, n, W)
            Systems in ``layout``; absent atoms are all-NaN rows of the positions.
        tol : float, optional
            Rank tolerance of the frames.
        n_jobs : int, optional
            Joblib workers over chunks of neighbourhoods (numpy).
        present : bool array of shape (S, n), optional
            The present atoms, in X's namespace; absent ones may then hold any value.
            Default: the atoms whose positions are not all NaN.

        Returns
        -------
        Environments
            Its canonical neighbourhoods in X's namespace, on X's device.
        """
        xp = get_namespace(X)
        if present is None:
            present = find_absent(X, self.layout, self.positions)
        if present is not None:
            X = fill_absent(X, self.layout, present)
        parts = self.layout.split(X)
        S, n = X.shape[0], self.layout.n_rows
        pos = parts[self.positions]
        pos = pos.astype(np.float64) if xp is np else xp.astype(pos, xp.float64)
        band = np.sqrt(machine_eps(X.dtype))
        if self.decides_on_device(X):
            return self._device_environments(xp, X, parts, pos, present, band, tol)
        present = np.ones((S, n), dtype=bool) if present is None else _host(present)
        index, _ = neighbour_lists(_host(pos), present, cutoff=self.cutoff,
                                   n_neighbors=self.n_neighbors, band=band)
        system, atom = np.nonzero(present)
        A = len(atom)
        neighbour = index[system, atom]                           # (A, k)
        has = neighbour >= 0
        # flat (system, atom) rows of the neighbours; the centre itself where there is
        # none, so that relative positions there are exact zeros
        centre = system * n + atom
        rows = system[:, None] * n + np.where(has, neighbour, atom[:, None])
        plan = self.plan()
        env_present = np.concatenate([np.ones((A, 1), dtype=bool), has], axis=1)
        if xp is np:
            Xc, frame = self._canonical_chunks(plan, pos, parts, X.dtype, centre, rows, has,
                                               env_present, tol, n_jobs)
        else:
            Xc, frame = self._canonical_tensors(xp, plan, pos, parts, X.dtype, centre, rows,
                                                has, env_present, tol)
        centre_at = _centre_positions(frame)
        n_present = env_present.sum(axis=1)
        if xp is not np:
            n_present, centre_at = (xp.asarray(a, device=X.device)
                                    for a in (n_present, centre_at))
        return Environments(self, plan, present, system, atom, Xc, frame, n_present,
                            centre_at)

    def decides_on_device(self, X):
        """Whether the neighbourhoods of X are decided where X lives
        (:meth:`_device_environments`) rather than on a host copy: for tensors on an
        accelerator, of systems of up to ``ALL_PAIRS_MAX_ATOMS`` atoms. On a CPU the
        host's decisions (numpy) with the frames recomputed from the chosen rows are
        as fast for energies and a little faster with forces (they record no
        autograd graph of the row selection)."""
        return not on_host(X) and self.layout.n_rows <= ALL_PAIRS_MAX_ATOMS

    def _device_environments(self, xp, X, parts, pos, present, band, tol):
        """:meth:`environments` of tensors, on their device.

        Everything is computed where X is: the neighbour lists (all pairs), the
        neighbourhoods, their colours, row orders and frames
        (:func:`~mfa_sklearn.groups.permutation._device.colour_frames`), and the
        canonical neighbourhoods, in the engine's chunks (one on an accelerator). The
        neighbourhoods whose colours tie (symmetric environments) are then done again
        by the host's decisions (:meth:`FramePlan.canonicalize`), the path they take
        anyway. The device is waited for twice: for the number of present atoms (a
        shape), and for whether atoms coincide or colours tie anywhere."""
        S, n = X.shape[0], self.layout.n_rows
        device = X.device
        if present is None:
            present = xp.ones((S, n), dtype=xp.bool, device=device)
        # decisions: no autograd graph of all pairs
        values = pos.detach() if hasattr(pos, "detach") else pos
        index, distance = neighbour_lists(values, present, cutoff=self.cutoff,
                                          n_neighbors=self.n_neighbors, band=band)
        system, atom = xp.nonzero(present)
        neighbour = index[system, atom]                            # (A, k)
        has = neighbour >= 0
        centre = system * n + atom
        rows = system[:, None] * n + xp.where(has, neighbour, atom[:, None])
        plan = self.plan()
        env_present = xp.concat([xp.ones((has.shape[0], 1), dtype=xp.bool, device=device),
                                 has], axis=1)
        chunks = [self._canonical_on_device(xp, plan, pos, parts, X.dtype, centre[s],
                                            rows[s], has[s], env_present[s], tol)
                  for s in chunk_slices(has, plan.layout.n_columns) or [slice(0, 0)]]
        Xc, centre_at, settled = (xp.concat(a, axis=0) for a in zip(*chunks))
        close = coincident_atoms(values, distance)
        flags = _host(xp.stack([xp.any(close), xp.any(~settled)]))
        if flags[0]:
            raise_coincident(_host(close), _host(distance))
        if flags[1]:
            redo = xp.nonzero(~settled)[0]
            env = self._neighbourhoods(xp, plan, pos, parts, X.dtype, centre[redo],
                                       rows[redo], has[redo])
            Xh, frame = plan.canonicalize(env, tol=tol, present=env_present[redo])
            Xc[redo] = Xh[:, 0]
            centre_at[redo] = xp.asarray(_centre_positions(frame), device=device)
        return Environments(self, plan, present, system, atom, Xc, None,
                            xp.sum(xp.astype(env_present, xp.int64), axis=1), centre_at)

    def _canonical_on_device(self, xp, plan, pos, parts, dtype, centre, rows, has,
                             env_present, tol):
        """Canonical neighbourhoods (a, k + 1, W) of a chunk of atoms (see
        :meth:`_neighbourhoods` for the arguments), where their colours settle them;
        where the centre sits in each (a,); and whether their colours settled them
        (a,)."""
        env = self._neighbourhoods(xp, plan, pos, parts, dtype, centre, rows, has)
        kinds = {f.name: f.kind for f in plan.layout.fields}
        fields = plan.layout.split(env)
        rank_tol, delta = plan.group.tolerances([env.dtype], tol)
        order, frame, settled = colour_frames(
            plan.group, [fields[f] for f in plan.frame_fields if kinds[f] == "point"],
            [fields[f] for f in plan.frame_fields if kinds[f] == "vector"],
            [fields[f] for f, kind in kinds.items() if kind == "scalar"], env_present,
            tol=rank_tol, delta=delta, rule=plan.row_rule)
        canonical = {}
        for name, kind in kinds.items():
            moved = take_rows(xp, fields[name], order)
            canonical[name] = moved if kind == "scalar" else \
                frame.to_canonical(moved, kind)[:, 0]
        centre_at = xp.argmax(xp.astype(order == 0, xp.int8), axis=1)
        return plan.layout.join(canonical), centre_at, settled

    def _neighbourhoods(self, xp, plan, pos, parts, dtype, centre, rows, has):
        """The neighbourhoods (a, k + 1, W) of ``dtype`` of the atoms whose flat
        (system, atom) rows are ``centre`` (a,), with neighbours at the flat rows
        ``rows`` (a, k), present where ``has`` (a, k): rows in ``plan``'s layout, in
        the namespace and on the device of the positions ``pos`` (S, n, d) and the
        fields ``parts``."""
        return plan.layout.join(self._neighbourhood_fields(xp, plan, pos, parts, dtype,
                                                           centre, rows, has))

    def _neighbourhood_fields(self, xp, plan, pos, parts, dtype, centre, rows, has):
        """:meth:`_neighbourhoods` field by field: a dict of the (a, k + 1, w) blocks of
        ``plan``'s layout by name, each in its own memory."""
        device = getattr(pos, "device", None)
        A, k = has.shape
        centre_at, rows_at, has_at = (xp.asarray(a, device=device)
                                      for a in (centre, rows.reshape(-1), has))

        def stacked(first, others):
            """``first`` (a, w) on row 0 above ``others`` (a, k, w), in ``dtype``."""
            return xp.concat([xp.astype(first[:, None], dtype, copy=False),
                              xp.astype(others, dtype, copy=False)], axis=1)

        def zeros(width, rows=k):
            return xp.zeros((A, rows, width), dtype=dtype, device=device)

        flat = xp.reshape(pos, (-1, self.d))
        r = xp.reshape(xp.take(flat, rows_at, axis=0), (A, k, self.d))
        r = subtract_inplace(r, xp.take(flat, centre_at, axis=0)[:, None])
        fields = {_R: xp.concat([zeros(self.d, 1), xp.astype(r, dtype, copy=False)],
                                axis=1)}
        for name in self._names("scalar") + self._names("vector"):
            width = parts[name].shape[-1]
            field = xp.reshape(parts[name], (-1, width))
            theirs = xp.reshape(xp.take(field, rows_at, axis=0), (A, k, width))
            fields[name] = stacked(xp.take(field, centre_at, axis=0),
                                   theirs * xp.astype(has_at, dtype)[..., None])
        fields[_CENTRE] = xp.concat([zeros(1, 1) + 1.0, zeros(1)], axis=1)
        if self.first_vector == "weighted":
            fields[_DIRECTION] = stacked(self._direction(xp, r, has_at, dtype),
                                         zeros(self.d))
        return fields

    def _canonical_tensors(self, xp, plan, pos, parts, dtype, centre, rows, has,
                           env_present, tol):
        """Canonical neighbourhoods (A, k + 1, W) and frames of host tensors decided on
        the host, in the engine's chunks (as :meth:`FramePlan.canonicalize` takes
        them): each chunk's fields go to the frames as they are built, never joined
        and split again (whose gradient filled a zero tensor of the whole
        neighbourhoods per field)."""
        device = pos.device
        present = xp.asarray(env_present, device=device)
        # every row present (full neighbourhoods): the frames of present=None, which
        # are the same, without a pass that zeros no row, forward and backward
        full = bool(env_present.all())
        chunks = []
        for s in chunk_slices(present, plan.layout.n_columns) or [slice(0, 0)]:
            fields = self._neighbourhood_fields(xp, plan, pos, parts, dtype, centre[s],
                                                rows[s], has[s])
            Xc, frame = plan.canonicalize_chunk(None, tol, True, False,
                                                 None if full else present[s], s.start,
                                                 parts=fields)
            # one frame element: a view without it (a reshape, whose gradient is a view
            # too, where indexing's is a zero-filled copy)
            chunks.append((xp.reshape(Xc, (Xc.shape[0],) + tuple(Xc.shape[2:])), frame))
        parts, frames = zip(*chunks)
        # one chunk: the tensor as it is (a concatenation would copy it, and its gradient)
        Xc = parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)
        frame = type(frames[0]).concat(frames)
        frame.present = present
        return Xc, frame

    def _canonical_chunks(self, plan, pos, parts, dtype, centre, rows, has, env_present,
                          tol, n_jobs):
        """Canonical neighbourhoods (A, k + 1, W) and frames of numpy systems, chunk
        by chunk: each chunk of neighbourhoods is built and canonicalized while it is
        in cache (the engine's chunks, so the same bits), never the whole batch at
        once."""
        A, rows_env = len(has), has.shape[1] + 1
        slices = chunk_slices(has, plan.layout.n_columns, n_jobs) or [slice(0, 0)]
        out = np.empty((A, rows_env, plan.layout.row_width),
                       dtype=dtype if np.issubdtype(dtype, np.floating) else np.float64)
        shared = shares_memory(n_jobs)   # else process workers send their chunks back

        def chunk(s):
            env = self._neighbourhoods(np, plan, pos, parts, dtype, centre[s], rows[s],
                                       has[s])
            target = out[s, None] if shared else None
            Xc, frame = plan.canonicalize_chunk(env, tol, True, False, env_present[s],
                                                 s.start, out=target)
            return (None if Xc is target else Xc[:, 0]), frame

        results = map_chunks(chunk, slices, n_jobs)
        for s, (part, _) in zip(slices, results):
            if part is not None:
                out[s] = part
        frame = type(results[0][1]).concat([frame for _, frame in results])
        frame.present = env_present
        return out, frame

    def _direction(self, xp, r, has, dtype):
        """``u`` of the module docstring, (A, d), from the relative positions r
        (A, k, d) of the neighbours ``has`` (A, k); zero where it is shorter than half
        the largest neighbour distance. Both decisions allow for the rounding of
        ``dtype``, X's (see below)."""
        if r.shape[1] == 0:     # no neighbour slots at all (lone atoms): zeros
            return xp.sum(r, axis=1)
        band = np.sqrt(machine_eps(dtype))
        distance = _safe_norm(xp, r, has)
        zero = xp.zeros_like(distance)
        weight = xp.where(has, cosine_weight(distance, self.cutoff), zero)
        total = xp.sum(weight, axis=1)
        u = xp.sum((weight / distance)[..., None] * r, axis=1)
        # L: the largest distance, but for ties (a symmetric shell) a weighted mean of
        # the distances near it, whose gradient the tied neighbours share; the
        # maximum's would go to the one that rounding makes largest (forces at
        # symmetric clusters would not be equivariant). The weights are 1 within half
        # the band of the largest and ramp down to 0 at the band's edge, so that L
        # stays continuous where a neighbour enters the band.
        largest = xp.max(xp.where(has, distance, zero), axis=1)
        ratio = distance / xp.where(largest > 0, largest, xp.ones_like(largest))[:, None]
        near = xp.where(has, xp.clip((ratio - (1.0 - band)) / (0.5 * band), min=0.0,
                                     max=1.0), zero)
        total_near = xp.sum(near, axis=1)
        reach = largest + xp.sum(near * (distance - largest[:, None]), axis=1) / xp.where(
            total_near > 0, total_near, xp.ones_like(total_near))
        u = u * (reach / xp.where(total > 0, total, xp.ones_like(total)))[:, None]
        # Only a long u can be the first frame vector. A short one would still be data
        # of the neighbourhood, and in symmetric ones it is rounding noise, which would
        # tell apart the stabilizer's candidates that must tie. The bound is raised by
        # the band: |u| = L / 2 exactly is common (two neighbours at 120 degrees, a
        # benzene ring's atoms), and rounding would decide it.
        long = xp.sum(u * u, axis=1) >= (0.25 * (1.0 + band)) * reach * reach
        return xp.where(long[:, None], u, xp.zeros_like(u))


def radial_functions(xp, distance, cutoff, n_radial, radial_basis):
    """The radial functions ``g_i`` of ``Environments.features`` at ``distance``
    (..., n_radial), in its namespace.

    ``"scales"``: ``exp(-(r / s_i)^2)`` with widths ``s_i`` spaced geometrically from
    ``0.15 cutoff`` to ``1.5 cutoff``; ``"shells"``: ``exp(-((r - c_i) / h)^2)`` with
    centres ``c_i`` spaced evenly over ``[0, cutoff]`` and ``h`` their spacing;
    ``"exponentials"``: ``exp(-r / l_i)`` with decay lengths ``l_i`` spaced
    geometrically from ``0.05 cutoff`` to ``cutoff``.
    """
    device = getattr(distance, "device", None)
    if radial_basis == "exponentials":
        lengths = constant(xp, cutoff * np.geomspace(0.05, 1.0, n_radial),
                           dtype=distance.dtype, device=device)
        return xp.exp(-(distance[..., None] / lengths))
    if radial_basis == "scales":
        centres = np.zeros(n_radial)
        widths = cutoff * np.geomspace(0.15, 1.5, n_radial)
    elif radial_basis == "shells":
        centres = np.linspace(0.0, cutoff, n_radial)
        widths = np.full(n_radial, cutoff / max(n_radial - 1, 1))
    else:
        raise ValueError(f"radial_basis must be 'scales', 'shells' or 'exponentials'; "
                         f"got {radial_basis!r}")
    centres, widths = (constant(xp, a, dtype=distance.dtype, device=device)
                       for a in (centres, widths))
    return xp.exp(-(((distance[..., None] - centres) / widths) ** 2))


def _density(xp, r, distance, weight, fields, cutoff, n_radial, radial_basis,
             angular=True):
    """Neighbour densities in canonical frames (see ``Environments.features``),
    (A, n_radial * L * (1 + channels)) with L = 1 + d + d (d + 1) / 2 monomials, or
    L = 1 (the radial channels alone) without ``angular``."""
    d = r.shape[-1]
    A, k = distance.shape
    one = xp.ones_like(distance)
    monomials = [one]
    if angular:
        # unstacked at once: autograd then joins the coordinates' gradients in one
        # stack, where indexing them one by one fills and adds a full-size gradient per
        # use; from a coordinate-major copy (d, A, k), so that the products and their
        # gradients read contiguous memory (strided by d, they took several times longer)
        unit = xp.permute_dims(r / distance[..., None], (2, 0, 1))
        unit = xp.unstack(xp.reshape(xp.reshape(unit, (-1,)), (d, A, k)), axis=0)
        monomials += list(unit) + [unit[i] * unit[j] for i in range(d) for j in range(i, d)]
    radial = radial_functions(xp, distance, cutoff, n_radial, radial_basis) * weight[..., None]
    if xp is not np:
        return _density_matmul(xp, radial, monomials, fields)
    angular = xp.stack(monomials, axis=-1)                                 # (A, k, L)
    channels = xp.concat([one[..., None], fields], axis=-1)                # (A, k, C)
    width = angular.shape[-1] * channels.shape[-1]      # explicit: A may be 0
    products = xp.reshape(angular[..., :, None] * channels[..., None, :], (A, k, width))
    # a sum over the neighbours k of outer products; numpy's einsum with a contraction
    # path is several times faster here than a batched matmul of small matrices
    out = np.einsum("akr,akj->arj", radial, products, optimize=True)
    return xp.reshape(out, (A, n_radial * width))


def _density_matmul(xp, radial, monomials, fields):
    """The sums of :func:`_density` as one batched matmul (torch).

    ``(A, L, k) @ (A, k, C R)``: the monomials stacked along a middle axis and the
    radial functions times each channel joined along the last, so that every copy
    moves contiguous blocks of k or R values, and the matmul takes both operands as
    they are. Stacking on a new trailing axis instead (the layout of the numpy path)
    copies one value at a time, forward and backward, which cost more than the matmul;
    the result is put in that layout (r, l, c) by one permutation of (A, R L C) values."""
    A, _, R = radial.shape
    angular = xp.stack(monomials, axis=1)                                  # (A, L, k)
    channels = [radial] + [radial * fields[..., c:c + 1] for c in range(fields.shape[-1])]
    out = xp.matmul(angular, xp.concat(channels, axis=-1))                # (A, L, C R)
    out = xp.reshape(out, (A, len(monomials), len(channels), R))
    return xp.reshape(xp.permute_dims(out, (0, 3, 1, 2)), (A, R * out.shape[1] * out.shape[2]))


def _standardized(features, standardize):
    """``features`` (numpy, fresh) standardized in place with ``(mean, scale)``."""
    mean, scale = standardize
    features -= mean
    features /= scale
    return features


def _atom_chunks(A, size=4096):
    """Slices of at most ``size`` atoms."""
    return [slice(i, min(i + size, A)) for i in range(0, A, size)]


def _columns(layout):
    """Column slice of each field in the rows of a 3-D layout (the layout's own
    offsets: split of the column indices)."""
    return {name: slice(int(c[0]), int(c[-1]) + 1)
            for name, c in layout.split(np.arange(layout.row_width)).items()}


class Environments:
    """The canonical neighbourhoods of the atoms of a batch of systems.

    Numpy arrays, or for neighbourhoods computed on a torch device, tensors there.

    Attributes
    ----------
    present : bool array of shape (S, n)
    system, atom : int array of shape (A,)
        System and row of every present atom (system-major order).
    canonical : array of shape (A, k + 1, W)
        Canonical neighbourhoods (rows in canonical order, absent rows last, zeros).
    frame : Frame or None
        Their frames (one element each, with the stabilizer of symmetric ones); None
        where they were computed on the device, which keeps the canonical
        neighbourhoods only (:meth:`to_local` and :meth:`from_local` need the frames).
    n_present : int array of shape (A,)
        Present rows of each neighbourhood (the atom and its neighbours).
    centre : int array of shape (A,)
        Where the atom itself sits in its canonical neighbourhood.
    """

    def __init__(self, spec, plan, present, system, atom, canonical, frame, n_present,
                 centre):
        self.spec, self.plan = spec, plan
        self.present, self.system, self.atom = present, system, atom
        self.canonical, self.frame = canonical, frame
        self.n_present, self.centre = n_present, centre

    @property
    def n_systems(self):
        return self.present.shape[0]

    def features(self, encoding="density", n_radial=8, standardize=None,
                 radial_basis="scales", dtype=None, angular=True):
        """Invariant features of every atom, (A, p), in the namespace and on the
        device of the canonical neighbourhoods.

        ``dtype``, a floating dtype of their namespace, computes the features from the
        canonical neighbourhoods rounded to it (default: theirs, float64): the frames
        stay exact, and a float32 model needs no float64 features.

        ``angular=False`` leaves out the density's angular channels (monomials of
        degree 1 and 2; the columns :meth:`LocalFrames.angular_columns` marks) without
        computing them: the centre's own fields and the radial channels, in their order.

        ``standardize``, a pair ``(mean, scale)`` of arrays (p,), gives
        ``(features - mean) / scale`` instead (numpy: in place, chunk by chunk where
        the features' dtype holds the result).

        The centre's own scalar and vector fields (and weighted direction) come first.
        Then the neighbours, by ``encoding``:

        * ``"rows"``: per neighbour in canonical order, its relative position, fields
          and cutoff weight (zeros for absent neighbours);
        * ``"density"``: the neighbour density in the canonical frame,
          ``sum_b w_b g_i(|r_b|) Y_l(r_b / |r_b|) c_b``, with ``n_radial`` radial
          functions ``g_i`` (``radial_basis``: Gaussians centred on the atom with
          widths from ``0.15 cutoff`` to ``1.5 cutoff``, ``"scales"``; Gaussians of
          one width centred over ``[0, cutoff]``, ``"shells"``; exponentials
          ``exp(-r / l_i)`` with decay lengths from ``0.05 cutoff`` to ``cutoff``,
          ``"exponentials"``), the monomials ``Y_l`` of degree at most 2 of the unit
          vector (the frame fixes its orientation, so no rotational invariants are
          needed), the cutoff weight ``w_b`` (1 without one) and the
          channels ``c_b``: 1 and each neighbour field. A sum over neighbours: smooth
          where neighbours swap order, and the radial channels alone are radial
          symmetry functions (with ``"scales"``, Behler's G2 at ``R_s = 0``).
        """
        xp = get_namespace(self.canonical)
        A = self.canonical.shape[0]
        if xp is np and encoding == "density" and A:
            # chunks of atoms, from the reordering to the densities written into the
            # output: the temporaries stay in cache (the same operations as below)
            out = None
            for s in _atom_chunks(A):
                part = self._features(s, encoding, n_radial, radial_basis, dtype,
                                      angular)
                if out is None:
                    out = np.empty((A, part.shape[1]), dtype=part.dtype)
                    inplace = standardize is not None and out.dtype == np.result_type(
                        out, *standardize)
                out[s] = part
                if inplace:
                    _standardized(out[s], standardize)
            if standardize is not None and not inplace:
                out = (out - standardize[0]) / standardize[1]
            return out
        out = self._features(slice(None), encoding, n_radial, radial_basis, dtype,
                             angular)
        if standardize is None:
            return out
        if xp is np and out.dtype == np.result_type(out, *standardize):
            return _standardized(out, standardize)
        return (out - standardize[0]) / standardize[1]

    def _features(self, atoms, encoding, n_radial, radial_basis, dtype=None,
                  angular=True):
        """:meth:`features` of the atoms of the slice ``atoms``."""
        canonical, centre_at = self.canonical, self.centre
        if atoms != slice(None):   # a slice of every atom: torch would record a copy
            canonical, centre_at = canonical[atoms], centre_at[atoms]
        xp = get_namespace(canonical)
        if dtype is not None:
            canonical = xp.astype(canonical, dtype)
        device = getattr(canonical, "device", None)
        A, rows, width = canonical.shape
        ordered = canonical
        # the centre first, the neighbours in their order (on the host only where
        # needed; on an accelerator asking would wait for the device)
        if not on_host(centre_at) or bool(xp.any(centre_at != 0)):
            position = xp.arange(rows, device=device)[None, :]
            centre_row = centre_at[:, None]
            order = xp.where(position == 0, centre_row,
                             xp.where(position <= centre_row, position - 1, position))
            ordered = take_rows(xp, ordered, order)
        columns = _columns(self.plan.layout)
        every = np.arange(width)
        own = np.concatenate([[]] + [every[c] for name, c in columns.items()
                                     if name not in (_R, _CENTRE)]).astype(np.intp)
        fields = np.concatenate([[]] + [every[c] for name, c in columns.items()
                                        if name not in (_R, _CENTRE, _DIRECTION)]
                                ).astype(np.intp)
        neighbours = ordered[:, 1:]
        r = neighbours[..., columns[_R]]
        neighbour_fields = xp.take(neighbours, constant(xp, fields, device=device), axis=2)
        there = xp.arange(rows - 1, device=device) < (self.n_present[atoms] - 1)[:, None]
        distance = _safe_norm(xp, r, there)
        weight = xp.astype(there, r.dtype)
        if self.spec.cutoff_weight == "cosine":
            weight = xp.where(there, cosine_weight(distance, self.spec.cutoff),
                              xp.zeros_like(distance))
        if encoding == "rows":
            neighbours = [r, neighbour_fields]
            if self.spec.cutoff_weight == "cosine":
                neighbours.append(weight[..., None])
            block = xp.concat(neighbours, axis=2)
            block = xp.reshape(block, (A, block.shape[1] * block.shape[2]))
        else:
            block = _density(xp, r, distance, weight, neighbour_fields, self.spec.cutoff,
                             n_radial, radial_basis, angular)
        centre = xp.take(ordered[:, 0], constant(xp, own, device=device), axis=1)
        return xp.concat([centre, block], axis=1)

    def _centre_field(self, values):
        """A 'vector' field of the neighbourhoods holding ``values`` (A, d) on the
        centre row (input order) and zeros elsewhere."""
        field = np.zeros((len(values), self.canonical.shape[1], values.shape[1]),
                         dtype=values.dtype)
        field[:, 0] = values
        return field

    def to_local(self, Y):
        """Per-atom vectors (A, d) in each atom's canonical frame."""
        canon = self.frame.to_canonical(self._centre_field(Y), "vector")[:, 0]
        return np.take_along_axis(canon, self.centre[:, None, None], axis=1)[:, 0]

    def from_local(self, Yc):
        """Per-atom vectors (A, d) given in canonical frames, mapped back and averaged
        over each neighbourhood's stabilizer: exactly equivariant."""
        field = np.zeros((len(Yc), self.canonical.shape[1], Yc.shape[1]), dtype=Yc.dtype)
        np.put_along_axis(field, self.centre[:, None, None], Yc[:, None], axis=1)
        return self.frame.from_canonical(field[:, None], "vector")[:, 0]

    def per_system(self, values):
        """Per-atom values (A, w) scattered to (S, n, w), NaN for absent atoms."""
        out = np.full(self.present.shape + values.shape[1:], np.nan, dtype=values.dtype)
        out[self.system, self.atom] = values
        return out

    def per_atom(self, Y, width):
        """Per-atom targets (S, n * width) or (S, n, width) of the present atoms,
        (A, width)."""
        Y = np.asarray(Y).reshape(self.present.shape + (width,))
        return Y[self.system, self.atom]
