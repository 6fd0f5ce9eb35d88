"""O(1,d-1) and SO(1,d-1): minimal Lorentz frames.

**Conventions.** Metric ``eta = diag(+1, -1, ..., -1)``: time is coordinate 0, mostly
minus, and ``<u, v>_eta = u eta v^T``. A group element acts on the right on every row,
``g.x = x T`` with ``T eta T^T = eta``; there are no translations. A frame element is a
``d x d`` matrix ``H`` whose rows are eta-orthonormal frame vectors, the timelike one
first, so that ``H eta H^T = eta`` at full rank and ``H^{-1} = eta H^T eta``: the
canonical input is ``x eta H^T eta`` and an equivariant output ``y`` is restored as
``y H``. The frame is equivariant, ``H(x T) = H(x) T``. Time orientation and handedness
are read from the data, so the frames cover parity and time reversal.

**Anchors.** The row selection sees the data rows plus, optionally, anchor rows built
from them (``anchor`` of :class:`LorentzGroup`): ``"total"`` (default) prepends the
total momentum ``sum_i x_i``, ``"cumsum"`` uses the cumulative sums
``x_1, x_1 + x_2, ...`` instead of the rows, ``"none"`` the rows as they are. Anchors
never change the span, and every data row stays in the canonical input; they only give
the selection a better row to start from (see 'Null residuals and massless particles').

**Frame.** Gram-Schmidt in the Minkowski product with an invariant choice of the next
row (:func:`~mfa_sklearn.groups._selection.select_rows`). At every step the residual
``v`` of every unchosen row against the frame vectors chosen so far is recomputed
(Minkowski residuals are not monotone, so a row skipped earlier may be chosen later).

* Timelike first: while no timelike frame vector has been chosen and some eligible
  residual has ``<v, v>_eta > 0``, only those compete.
* ``rule="pivoted"`` (default) then takes the lowest index among the candidates within
  the relative band ``delta`` of the largest ``|<v, v>_eta|``; ``rule="first"`` takes
  the lowest index; ``rule="first_above"`` the lowest index with ``|<v, v>_eta|`` at
  least a hundredth of the largest (residual "norm" at least a tenth).
* The frame vector is ``w = v / sqrt(|<v, v>_eta|)``, of sign
  ``<w, w>_eta = sign <v, v>_eta``; the generating row's coordinate along it,
  ``sign <v, v>_eta * <z, w>_eta = sqrt(|<v, v>_eta|)``, is positive, which fixes every
  sign from the data.
* Layout: the timelike vector (if any) becomes row 0 of ``H``, the spacelike ones rows
  1, 2, ... in selection order, and unused rows stay zero. By Sylvester's law of inertia
  a full-rank frame has exactly one timelike vector.

**SO(1,d-1).** At ``r = d - 1`` the missing vector is ``u = C eta``, where ``C`` is the
cofactor vector of the chosen rows (``W C^T = 0``, so ``u`` is eta-orthogonal to them).
``<u, u>_eta`` is not 0 because the chosen span is non-degenerate, so ``u`` is
normalised and placed in the layout by its sign. Then, wherever ``r >= d - 1`` and
``det H < 0``, the last-constructed frame vector (the completion, or else the last
chosen vector) is negated, which keeps ``H eta H^T = eta``. Both decisions read
``det H`` and ``<u, u>_eta``, which SO(1,d-1) leaves unchanged. Parity combined with
time reversal has determinant +1 and stays in the group.

**Null residuals and massless particles.** A residual can be lightlike although no row
is: after the frame vector ``(0, 1, 0, 0)``, the row ``(1, 1, 1, 0)`` leaves the
residual ``(1, 0, 1, 0)``, and normalising it would divide by zero (or, after a tiny
perturbation, produce entries of order ``1e4``). Such residuals fail the relative
eligibility test and are reconsidered at later steps. Once a timelike vector is chosen,
every later residual lies in its spacelike (definite) complement, where no residual is
lightlike: hence timelike first. Lightlike rows, such as the massless constituents of a
collider jet, are never filtered out by an absolute cut on ``<x, x>_eta`` (that is not
scale-invariant and would remove nearly all of them). Instead, with ``anchor="total"``,
the total momentum of future-directed rows that are not all collinear is timelike and,
by the reverse triangle inequality ``m(sum_i p_i) >= sum_i m(p_i)``, the most timelike
row: pivoting picks it first, the first frame vector is the rest-frame time axis of the
system, and every row's residual is spacelike (or zero). With ``anchor="none"``, a set
of lightlike rows has no eligible row at all (``r = 0``, zero canonical input, and a
``FrameDegeneracyWarning``).

**Tolerances.** Decisions compare Minkowski squares with the invariant scale
``s = ||Z eta Z^T||_F`` of the rows ``Z`` the selection sees (computed from the
``d x d`` Gram matrix ``Z^T Z``, in ``O(m d^2)``), with ``tol = sqrt(eps)`` by default
(``eps`` of the least precise of the input and the working precision) and
``delta = eps^(1/3)``. Until a timelike frame vector is chosen, a residual ``v`` is
eligible iff ``|<v, v>_eta| > tol * s``, not ``tol^2 * s`` as Euclidean squares are: a
nearly lightlike residual is small in its Minkowski square only, and normalising it by
``sqrt(|<v, v>_eta|)`` would amplify its rounding error; the larger threshold keeps such
residuals out. Once a timelike vector is chosen, every residual lies in its spacelike
complement, where ``-<v, v>_eta`` is the squared Euclidean norm of ``v`` in the rest
frame of that vector and nothing is nearly null, so ``|<v, v>_eta| > tol^2 * s``, as for
Euclidean residuals. (With ``tol * s`` there, rows independent to about ``sqrt(tol)``,
e.g. four massive momenta whose rest-frame momenta nearly share a plane, lost a
direction: 79 of 40 000 random sets of four unit-mass particles.)
Canonical coordinates that vanish in exact arithmetic are set to exactly 0 at or below
``8 d eps max_i |x_i| max_jk |H_jk|`` (Euclidean sizes; the entries of ``H`` grow with
the boost). Before any product, each sample's rows are multiplied by the power of two
that brings their largest absolute entry into ``[1/2, 1)``. Under an indefinite metric
no norm bounds the entries (a lightlike row has Minkowski square 0 whatever its size),
so the entries themselves are the scale: they bound every product, and ``s`` (a sum of
fourth powers of the entries) overflows float64 for rows near ``1e77`` and underflows
for rows near ``1e-77`` otherwise. The factor is exact and every rounded operation
commutes with it, so the frame is that of the unscaled rows bit for bit (``H`` is
scale-free) and the snapping level is scaled back exactly.

**Rounding floor.** Until a timelike vector is chosen, the threshold is raised to the
rounding level of the products, ``32 d eps max_i |z_i|^2`` (Euclidean sizes of the rows
the selection sees; the definite complement needs no floor): a Minkowski square below
it is zero to working precision, with room for the rounding of data that were computed
themselves (lightlike rows boosted and rounded have squares up to about
``18 eps max_i |z_i|^2``). Without it, rows that are all lightlike and
collinear (massless momenta along one direction, whose total is lightlike too) have
``s`` and every residual made of rounding noise once they are boosted, the relative
test admitted the noise, and normalising it gave frames of arbitrary size: canonical
inputs that broke the symmetry or overflowed. With it they get no frame vector, the
zero canonical input and a ``FrameDegeneracyWarning``, in every frame. The floor is not
Lorentz-invariant, but it only decides about squares that the arithmetic cannot tell
from zero. The diagnostic ``n_lightlike_rows`` counts the data rows with
``|<x_i, x_i>_eta|`` at or below ``tol * s`` or the floor.

**Conditioning.** A frame that boosts by ``gamma`` (the diagnostic ``boost``, the
largest entry of ``H``) maps rows of Euclidean size ``|x|`` to canonical rows as small
as ``|x| / gamma``, computed with errors of about ``eps |x| gamma``: relative errors of
about ``eps gamma^2``, and row choices that close to a tie can differ between a sample
and its transformed copy. Nearly lightlike systems (nearly collinear massless momenta,
spread ``theta``: ``gamma ~ 1 / theta``) are therefore symmetric only to about
``eps / theta^2``. Where ``gamma > eps^(-1/4)`` (about 8 000 for float64 data, 58 for
float32), i.e. errors above ``sqrt(eps)``, a ``FrameDegeneracyWarning`` names the
samples.

**Stabilizers.** A sample with ``r < d`` frame vectors gets zero rows beyond its span.

* If a timelike vector was chosen, the complement of the span is spacelike, the
  stabilizer is the compact ``O(d - r)`` (``SO(d - r)`` for SO) acting on it, whose Haar
  mean is 0: the projection ``y H`` is the exact stabilizer average.
* If the span is purely spacelike, the complement is Lorentzian and the stabilizer
  ``O(1, d - r - 1)`` is compact only for ``d - r = 1``. A non-compact stabilizer has no
  invariant probability measure, so no frame average exists; the projection is still
  equivariant (its output lies in the subspace the stabilizer fixes), but not an
  average, and the diagnostic ``projection_is_average`` is False.
* It is False too where fewer frame vectors were found than the Euclidean numerical rank
  of the frame-defining rows (the span is degenerate, lightlike residuals were left
  out), which also raises a ``FrameDegeneracyWarning`` on the host. That rank counts the
  singular values above ``tol`` times the largest, as the rank guard of GL does. The
  check is a diagnostic: numerical rank is not Lorentz-invariant.

**Cost.** The scale and the Gram matrix ``O(m d^2)`` per sample, ``d`` selection steps
``O(m d^2)``, and for SO ``d`` determinants of size ``d - 1``, vectorized over the
batch. The degeneracy check (singular values of the stacked rows, ``O(m d^2)``) runs
only when some sample has ``r < d``, and always on accelerators, where skipping it
would need a host synchronisation.

References
----------
* G. Lin, J. Helwig, S. Gui, S. Ji. Equivariance via Minimal Frame Averaging for More
  Symmetries and Efficiency. ICML 2024, arXiv:2406.07598 (minimal frames of the
  Lorentz groups).
"""

import warnings

import numpy as np

from ..exceptions import FrameDegeneracyWarning, first_indices
from ._base import Frame, Group, GroupElement, check_dimension, identity_where_empty, to_numpy
from ._namespace import get_namespace, on_host, sum_rows, work_eps, work_float
from ._selection import cofactor_vector, dot_rows, frame_rows, metric_scale, select_rows
from .orthogonal import haar_orthogonal, residual_conditioning

ANCHORS = ("total", "cumsum", "none")


class LorentzFrame(Frame):
    """Frames of a Lorentz group: rows of ``H`` are eta-orthonormal (zero rows project).

    Adds the diagnostics ``n_lightlike_rows`` and ``boost`` to those of :class:`Frame`,
    and maps inputs to the canonical frame with ``H^{-1} = eta H^T eta``.

    Parameters
    ----------
    H, t, rank, conditioning, projected, projection_is_average :
        As for :class:`Frame` (``t`` is always None: no translations).
    n_lightlike_rows : array of shape (B,), optional
        Number of frame-defining rows with Minkowski squares at or below the
        eligibility threshold per sample (see the module docstring, 'Tolerances').
    boost : array of shape (B,), optional
        Largest absolute entry of ``H`` per sample: 1 for a frame without a boost,
        ``gamma`` for a boost by ``gamma`` (0 where no frame vector was found).
        Canonical inputs carry relative rounding errors of about ``eps * boost^2``.
    """

    diagnostic_names = Frame.diagnostic_names + ("n_lightlike_rows", "boost")

    def _apply_inverse(self, x):
        """``x eta H^T eta`` for x of shape (B, 1, n, d)."""
        xp = get_namespace(x, self.H)
        d = self.H.shape[-1]
        eta = _eta(xp, d, self.H.device, self.H.dtype)
        inverse = (self.H * (eta[:, None] * eta[None, :])).mT   # eta H^T eta
        if xp is np:  # a contiguous right operand makes numpy's small matmuls faster
            inverse = np.ascontiguousarray(inverse)
        return x @ inverse


class LorentzGroup(Group):
    """The Lorentz group O(1,d-1), or SO(1,d-1), acting on rows ``(t, x_1, ..., x_{d-1})``.

    An element acts on the right on every row, ``g.x = x T`` with ``T eta T^T = eta``
    and ``eta = diag(+1, -1, ..., -1)``. The minimal frame [1]_ of a sample is one
    matrix ``H`` of eta-orthonormal rows built from the data by a Minkowski
    Gram-Schmidt that picks a timelike row first; rank-deficient samples are projected
    onto their span, which is the exact stabilizer average when the span contains a
    timelike vector. The module docstring of ``mfa_sklearn.groups.lorentz`` details the
    frame, anchors, tolerances and stabilizers.

    Parameters
    ----------
    d : int
        Spacetime dimension (``d >= 2``); ``LorentzGroup(4)`` is O(1,3).
    special : bool, default=False
        Restrict to determinant +1 (SO(1,d-1); parity combined with time reversal is
        still in the group).
    anchor : {"total", "cumsum", "none"}, default="total"
        Rows that the row selection sees besides (for ``"cumsum"``: instead of) the
        frame-defining rows, to help it; they never change the span, and every data
        row stays in the canonical input.

        * ``"total"``: the sum of all rows is prepended. For future-directed momenta
          (e.g. the massless constituents of a collider jet) it is timelike, the most
          timelike row, so the first frame vector is the rest-frame time axis of the
          whole system and every other row's residual is spacelike. Invariant under
          permutations of the rows. The right default for momenta.
        * ``"cumsum"``: the cumulative sums ``x_1, x_1 + x_2, ...`` replace the rows.
          Also makes lightlike rows usable, but depends on the order of the rows: use
          it for ordered rows (e.g. sorted by an invariant) only.
        * ``"none"``: the rows as they are. Lightlike rows are never chosen, so a set of
          only lightlike rows gets no frame vector at all (and a warning).

        The anchor changes the canonical form, hence the frame-averaged function: it
        is part of the group object's identity (``repr``, ``==``, ``hash``).

    References
    ----------
    .. [1] G. Lin, J. Helwig, S. Gui, S. Ji. "Equivariance via Minimal Frame Averaging
       for More Symmetries and Efficiency." ICML 2024, arXiv:2406.07598.
    """

    frame_methods = ("minimal",)
    row_breaks = True

    def __init__(self, d, *, special=False, anchor="total"):
        if anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {list(ANCHORS)}; got {anchor!r}")
        self.d = check_dimension(d, 2, "the spacetime dimension of O(1,d-1) (time plus "
                                       "at least one space coordinate)")
        self.special = bool(special)
        self.anchor = anchor

    @property
    def name(self):
        return f"{'SO' if self.special else 'O'}(1,{self.d - 1})"

    @property
    def metric(self):
        """The diagonal ``(1, -1, ..., -1)`` of the Minkowski metric, float64 (d,)."""
        return _eta(np, self.d, "cpu", np.float64)

    def __repr__(self):
        if self.anchor == "total":
            return super().__repr__()
        return f"LorentzGroup({self.d}, special={self.special}, anchor={self.anchor!r})"

    def __eq__(self, other):
        return (isinstance(other, LorentzGroup) and other.name == self.name
                and other.anchor == self.anchor)

    def __hash__(self):
        return hash((self.name, self.anchor))

    # ------------------------------------------------------------------ frames
    def _frame(self, points, vectors, present, method, tol, rule):
        """:meth:`Group.frame` of O(1,d-1) and SO(1,d-1): the frame-defining rows
        (4-momenta, say) of both kinds are treated alike and stacked, points first.
        Absent rows are left out of every decision (the anchors sum present rows only;
        cumulative sums are not repeated at absent rows). A residual ``v`` is eligible
        iff ``|<v, v>| > tol * ||Z eta Z^T||_F``, or ``tol**2 * ||Z eta Z^T||_F`` once a
        timelike frame vector is chosen (see the module docstring, 'Tolerances'); both
        row rules prefer timelike rows while no timelike frame vector has been chosen.

        Returns
        -------
        LorentzFrame
            One element per sample. Diagnostics: ``rank``, ``conditioning``,
            ``projected``, ``projection_is_average`` (False where the stabilizer is
            non-compact: a purely spacelike span with ``d - r >= 2``, or rows whose
            span is degenerate) and ``n_lightlike_rows``.

        Warns
        -----
        FrameDegeneracyWarning
            When fewer frame vectors were found than the numerical (Euclidean) rank of
            the frame-defining rows (singular values above ``tol`` times the largest),
            i.e. lightlike residuals were left out.
        """
        xp, points, vectors, eps, tol = self._frame_inputs(points, vectors, method, tol)
        arrays = points + vectors
        d = self.d
        signature = (1.0,) + (-1.0,) * (d - 1)
        present = self._present(xp, present, arrays)
        # largest |entry| near 1 before any product (see the module docstring,
        # 'Tolerances'): the scale below is a sum of fourth powers
        rows, weights, inverse = frame_rows(xp, arrays, present)
        if present is not None:  # absent rows are zeros, here and in the anchors
            arrays = [xp.where(present[..., None], a, xp.zeros_like(a)) for a in arrays]
        Z = self._anchored(xp, rows)  # new memory unless "none" (rows are ours too)
        if weights is not None and self.anchor == "cumsum":
            Z = [Zk * weights for Zk in Z]   # a sum repeated at an absent row is not one
        scale = metric_scale(Z, signature)
        # Minkowski squares at or below the rounding level of their entries are zero
        # (see 'Rounding floor')
        floor = (32.0 * d * eps) * xp.max(sum(Zk * Zk for Zk in Z), axis=0)
        lightlike = (xp.abs(dot_rows(rows, rows, signature=signature))
                     <= xp.maximum(tol * scale, floor))
        if present is not None:
            lightlike = lightlike & (weights > 0)
        n_lightlike = xp.sum(xp.astype(lightlike, xp.int64), axis=0)
        # Euclidean size of the rows, before the selection overwrites them ("none")
        magnitude = xp.sqrt(xp.max(sum(rk * rk for rk in rows), axis=0))

        selection = select_rows(Z, tol=tol, delta=eps ** (1.0 / 3.0), rule=rule,
                                floor=floor, signature=signature, scale=scale)
        W, rank, norms, signs = selection[:4]
        found = [rank > j for j in range(d)]
        if self.special:
            W, signs, found = self._complete(xp, W, signs, found, rank, signature)
        H_rows, timelike = _slot_layout(xp, W, signs, found)
        if self.special:
            H_rows = self._fix_determinant(xp, H_rows, signs, rank)
        packed = xp.reshape(xp.stack([hk for h in H_rows for hk in h], axis=0), (d, d, -1))
        H = xp.reshape(xp.reshape(xp.permute_dims(packed, (2, 0, 1)), (-1,)), (-1, d, d))

        full = rank >= (d - 1 if self.special else d)
        compact = timelike | (d - rank < 2)
        degenerate = xp.zeros_like(full)
        if not on_host(rank):  # no host sync on accelerators: always compute, never warn
            degenerate = rank < _numerical_rank(xp, arrays, tol)
        elif bool(xp.any(rank < d)):  # else r = d >= the rank: skip the SVD
            numerical_rank = _numerical_rank(xp, arrays, tol)
            degenerate = rank < numerical_rank
            self._warn_degenerate(xp, degenerate, rank, numerical_rank)
        boost = xp.max(xp.reshape(xp.abs(H), (-1, d * d)), axis=1)
        if on_host(boost):
            self._warn_boost(boost, eps)
        frame = LorentzFrame(H[:, None], rank=rank,
                             conditioning=residual_conditioning(xp, norms, rank),
                             projected=~full,
                             projection_is_average=full | (compact & ~degenerate),
                             n_lightlike_rows=n_lightlike, boost=boost)
        # rounding level of the canonical coordinates x eta H^T eta (see Frame.snap):
        # Euclidean size of the rows times that of H, which grows with the boost
        frame.snap_level = (8.0 * d * work_eps(xp)) * magnitude * inverse * boost
        frame.row_breaks = selection.breaks
        return identity_where_empty(xp, frame, present)

    def _anchored(self, xp, rows):
        """The rows that the selection sees: anchor rows and/or data rows, new memory."""
        if self.anchor == "total":
            return [xp.concat([sum_rows(xp, rk)[None], rk], axis=0)
                    for rk in rows]
        if self.anchor == "cumsum":
            return [xp.cumulative_sum(rk, axis=0) for rk in rows]
        return rows

    def _complete(self, xp, W, signs, found, rank, signature):
        """SO(1,d-1), rank d-1: the eta-orthogonal complement ``u = C eta`` of the chosen
        vectors, normalised, becomes frame vector d-1 (see the module docstring,
        'SO(1,d-1)')."""
        d = self.d
        C = cofactor_vector(W[: d - 1], d, like=W[0][0])
        u = [Ck * sk for Ck, sk in zip(C, signature)]
        q = dot_rows(u, u, signature=signature)
        complete = rank == d - 1
        # sqrt of a stand-in 1, not of q: below rank d - 1 the cofactor vector is 0, and
        # sqrt's infinite derivative at 0 times the unused branch is a NaN gradient
        safe = xp.sqrt(xp.where(complete, xp.abs(q), 1.0))
        W[d - 1] = [xp.where(complete, uk / safe, wk) for uk, wk in zip(u, W[d - 1])]
        signs[d - 1] = xp.where(complete, xp.where(q < 0, -1.0, 1.0), signs[d - 1])
        found[d - 1] = found[d - 1] | complete
        return W, signs, found

    def _fix_determinant(self, xp, H_rows, signs, rank):
        """Where det H < 0 (rank >= d-1), negate the last-constructed frame vector: frame
        vector d-1 in selection order, in slot 0 if timelike, else in slot d-1."""
        d = self.d
        det = dot_rows(H_rows[d - 1], cofactor_vector(H_rows[: d - 1], d, like=H_rows[0][0]))
        flip = (rank >= d - 1) & (det < 0)
        last_timelike = signs[d - 1] > 0
        for slot, chosen in ((0, last_timelike), (d - 1, ~last_timelike)):
            factor = xp.where(flip & chosen, -1.0, 1.0)
            H_rows[slot] = [hk * factor for hk in H_rows[slot]]
        return H_rows

    def _warn_degenerate(self, xp, degenerate, rank, numerical_rank):
        if not bool(xp.any(degenerate)):
            return
        bad = np.asarray(to_numpy(degenerate))
        r = np.asarray(to_numpy(rank))[bad]
        full = np.asarray(to_numpy(numerical_rank))[bad]
        hint = ("; for future-directed momenta (e.g. massless particles) use "
                "anchor='total' (the default), whose total momentum is timelike"
                if self.anchor != "total" else
                "; the rows span a degenerate (lightlike) subspace, which no anchor fixes")
        warnings.warn(
            f"group {self.name}: {first_indices(bad)} got fewer frame vectors than the "
            f"rank of their rows (e.g. {int(r[0])} of {int(full[0])}): lightlike "
            f"residuals were left out (anchor={self.anchor!r}), so the canonical input "
            f"loses those directions{hint}.", FrameDegeneracyWarning, stacklevel=3)

    def _warn_boost(self, boost, eps):
        """Warn where rounding errors of about ``eps * boost^2`` exceed ``sqrt(eps)``
        (see the module docstring, 'Conditioning')."""
        bad = np.asarray(to_numpy(boost)) > eps ** -0.25
        if not bad.any():
            return
        largest = float(np.asarray(to_numpy(boost))[bad].max())
        warnings.warn(
            f"group {self.name}: {first_indices(bad)} have frames that boost by factors up to "
            f"{largest:.3g}: their rows are nearly lightlike as a whole (e.g. nearly "
            f"collinear massless momenta), so their canonical inputs carry relative "
            f"rounding errors up to about {eps * largest ** 2:.1g}, and row choices that "
            "close to a tie can differ between a sample and its transformed copy: "
            "symmetry holds only to that accuracy. See frame_diagnostics()['boost'].",
            FrameDegeneracyWarning, stacklevel=3)

    # ------------------------------------------------------------- elements
    def random_element(self, size, random_state=None, *, beta_max=0.99,
                       translation_scale=None):
        """Random Lorentz transformations, acting on the right.

        A boost of velocity ``beta`` drawn uniformly in the ball ``|beta| < beta_max``
        composed with a Haar rotation ``R`` of O(d-1) (SO(d-1) for SO(1,d-1)), then a
        random parity ``diag(1, -1, 1, ...)`` and a random time reversal
        ``diag(-1, 1, ...)`` (for SO(1,d-1) only both together).

        Parameters
        ----------
        size, random_state
            As for :meth:`Group.random_element`.
        beta_max : float, default=0.99
            Largest speed, in ``[0, 1)``: 0.99 gives ``gamma <= 7.1``, 0.9999
            ``gamma <= 70.7``.
        translation_scale : ignored
            Accepted for a common signature with the groups that translate.

        Returns
        -------
        GroupElement
            numpy float64 ``T`` of shape (size, d, d) with ``T eta T^T = eta``; ``b`` None.
        """
        beta_max = float(beta_max)
        if not 0.0 <= beta_max < 1.0:
            raise ValueError(f"beta_max must be in [0, 1); got {beta_max!r}")
        rng = np.random.default_rng(random_state)
        d, k = self.d, self.d - 1
        direction = rng.standard_normal((size, k))
        length = np.linalg.norm(direction, axis=1, keepdims=True)
        direction = direction / np.where(length > 0, length, 1.0)
        speed = beta_max * rng.uniform(size=(size, 1)) ** (1.0 / k)
        gamma = 1.0 / np.sqrt(1.0 - speed ** 2)
        boost = np.empty((size, d, d))
        boost[:, 0, 0] = gamma[:, 0]
        boost[:, 0, 1:] = boost[:, 1:, 0] = gamma * speed * direction
        # I + (gamma - 1) beta beta^T / beta^2, with beta / |beta| = direction
        boost[:, 1:, 1:] = (np.eye(k) + (gamma - 1.0)[:, :, None]
                            * direction[:, :, None] * direction[:, None, :])
        R = haar_orthogonal(size, k, rng)
        if self.special:
            R[np.linalg.det(R) < 0, :, 0] *= -1.0
        Lam = boost.copy()
        Lam[:, :, 1:] = boost[:, :, 1:] @ R
        if self.special:
            both = rng.integers(0, 2, size).astype(bool)
            parity = time_reversal = both
        else:
            parity = rng.integers(0, 2, size).astype(bool)
            time_reversal = rng.integers(0, 2, size).astype(bool)
        Lam[parity, :, 1] *= -1.0           # Lambda R_1: negate column 1
        Lam[time_reversal, :, 0] *= -1.0    # Lambda T_0: negate column 0
        return GroupElement(np.ascontiguousarray(np.swapaxes(Lam, 1, 2)))


def _eta(xp, d, device, dtype):
    """The metric's diagonal ``(1, -1, ..., -1)``."""
    return xp.asarray(np.array([1.0] + [-1.0] * (d - 1)), dtype=dtype, device=device)


def _slot_layout(xp, W, signs, found):
    """Rows of H from the selected vectors: the timelike one (if any) in slot 0, the
    spacelike ones in slots 1, 2, ... in selection order, zero rows elsewhere.

    Returns the rows (d lists of d (B,) arrays) and whether a timelike vector exists.
    """
    d = len(W)
    zero = xp.zeros_like(W[0][0])
    rows = [[zero] * d for _ in range(d)]
    timelike = xp.zeros(zero.shape, dtype=xp.bool, device=zero.device)
    n_spacelike = xp.zeros(zero.shape, dtype=xp.int64, device=zero.device)
    for w, sign, ok in zip(W, signs, found):
        is_time = ok & (sign > 0)
        is_space = ok & (sign < 0)
        n_spacelike = n_spacelike + xp.astype(is_space, xp.int64)
        rows[0] = [xp.where(is_time, wk, rk) for wk, rk in zip(w, rows[0])]
        for slot in range(1, d):
            here = is_space & (n_spacelike == slot)
            rows[slot] = [xp.where(here, wk, rk) for wk, rk in zip(w, rows[slot])]
        timelike = timelike | is_time
    return rows, timelike


def _numerical_rank(xp, arrays, tol):
    """Euclidean numerical rank of the frame-defining rows: singular values above
    ``tol`` times the largest, as the rank guard of GL (a diagnostic only; it is not
    Lorentz-invariant).

    From the singular values of the stacked rows (B, m, d), not the eigenvalues of
    their Gram matrix: those carry rounding errors of ``eps`` times the largest, the
    size of the threshold ``tol^2`` on them, so exactly dependent rows would count.
    """
    rows = [work_float(xp, a) for a in arrays]
    stacked = xp.concat(rows, axis=1) if len(rows) > 1 else rows[0]
    values = xp.linalg.svdvals(stacked)
    largest = values[..., :1]
    above = (values > tol * largest) & (largest > 0)
    return xp.sum(xp.astype(above, xp.int64), axis=-1)
