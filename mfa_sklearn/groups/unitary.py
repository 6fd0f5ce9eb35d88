"""U(d) and SU(d): minimal frames of complex rows.

**Conventions.** Rows are complex; real input is promoted (float32 to complex64,
anything else to complex128). A group element acts on the right, ``g.x = x T`` with
``T`` unitary (``det T = 1`` for SU); there are no translations. A frame element is a
``d x d`` matrix ``H`` whose rows are orthonormal under the Hermitian product
``<u, w> = u w^H``, so ``H^{-1} = H^H``: the canonical input is ``x H^H`` and an
equivariant output ``y`` is restored as ``y H``. The frame is equivariant,
``H(x T) = H(x) T``, so the canonical input is invariant. scikit-learn estimators hold
real numbers, so complex fields travel as real blocks ``[Re | Im]`` (see
:class:`UnitaryGroup`).

**Frame.** The frame-defining rows are stacked into ``Z`` and up to ``d`` of them are
turned into frame vectors by the invariant Gram-Schmidt of
:func:`~mfa_sklearn.groups._selection.select_rows` with the Hermitian product, by the
same rules as for O(d): ``"pivoted"`` (default) takes the row with the largest residual
next, ``"first"`` the lowest-index row not in the span of those already chosen,
``"first_above"`` the lowest-index row whose residual norm is at least a tenth of the
largest.
Each
frame vector is its row's residual divided by the residual's norm, so the generating
row's coordinate along it, ``z_k w_j^H = |v|``, is real and positive. This fixes the
phase of every frame vector from the data; no library QR phase convention is relied on.
With ``r`` frame vectors found, rows ``r .. d-1`` of ``H`` are zero.

**SU.** At full rank ``r = d``, the last frame vector is multiplied by the phase
``conj(det H) / |det H|``, which makes ``det H = 1``. At ``r = d - 1`` the missing row
is ``conj(C)``, the conjugated cofactor vector of the chosen rows ``W``
(``C_k = (-1)^(d-1+k) det(W without column k)``): it is a unit vector
Hermitian-orthogonal to ``W``, and expanding the determinant along it gives
``det H = sum_k conj(C_k) C_k = |C|^2 = 1``. At ``r <= d - 2`` the frame projects (see
'Stabilizers'). SU(1) is trivial, so its frame is ``H = [1]``. This last-row phase has
no branch cut. Dividing ``H`` by a principal ``d``-th root of ``det H`` would be
equivariant too, but its canonical form jumps where ``arg det H`` crosses ``+-pi``, and
near there rounding picks the branch.

**Tolerances.** As for O(d): a residual ``v`` is eligible iff
``|v|^2 > tol^2 max_i |z_i|^2``, with ``tol = sqrt(eps)`` by default (``eps`` of the
least precise of the input and the working precision); ``"pivoted"`` breaks ties by
index within the relative band ``delta = eps^(1/3)`` of the largest squared residual.
Two kinds of canonical coordinates vanish in exact arithmetic but come out as rounding
noise: those of the chosen rows along later frame vectors, and the imaginary parts of
their coordinates along their own frame vectors. Real and imaginary parts at or below
``8 d eps sqrt(max_i |z_i|^2)`` are set to exactly 0 (``Frame.snap``). Before any
product, each sample's rows are multiplied by the real power of two that brings their
largest real or imaginary part into ``[1/2, 1)``, so that no squared modulus overflows
or underflows; a real power of two scales both parts exactly, whatever the phase, so
the frame is that of the unscaled rows bit for bit and the snapping level is scaled
back exactly.

**Stabilizers.** A sample whose rows span ``C^d`` has a trivial stabilizer: its frame
has one element. A sample spanning ``r < d`` dimensions is fixed by ``U(d - r)``
(``SU(d - r)`` for SU) acting on the orthogonal complement of its span. Its Haar mean is
the zero matrix (for ``U(k)``, ``k >= 1``; for ``SU(k)``, ``k >= 2``), so the exact
average of an output over it is the output's component in the span, which is what the
zero rows ``r .. d-1`` of ``H`` produce: one backbone call, exact average, and
``projection_is_average`` is always True. The *unused* rows must be the zero ones:
zeroing the used rows instead would make the canonical input identically 0 and the map
not equivariant. For SU at ``r = d - 1`` the stabilizer SU(1) is trivial, hence the
completion instead of a projection.

**Cost.** As for O(d), in complex arithmetic: ``d`` selection steps over the ``m`` rows,
``O(m d^2)`` per sample, vectorized over the batch. SU adds the cofactor vector, ``d``
determinants of size ``d - 1``, computed with the array's own library on its device.

References
----------
* G. Lin, J. Helwig, S. Gui, S. Ji. Equivariance via Minimal Frame Averaging for More
  Symmetries and Efficiency. ICML 2024, arXiv:2406.07598.
* F. Mezzadri. How to generate random matrices from the classical compact groups.
  Notices of the AMS 54(5), 2007 (the Haar-random elements of ``random_element``).
"""

import math

import numpy as np

from ._base import Frame, Group, GroupElement, check_dimension, check_kind, identity_where_empty
from ._namespace import get_namespace, isdtype, work_eps, work_float
from ._selection import cofactor_vector, dot_rows, frame_rows, select_rows
from .orthogonal import residual_conditioning


def _as_complex(x):
    """``x`` as a complex array: complex stays, float32 -> complex64, else complex128."""
    xp = get_namespace(x)
    if isdtype(xp, x.dtype, "complex floating"):
        return x
    return xp.astype(x, xp.complex64 if x.dtype == xp.float32 else xp.complex128)


def _complex_of(xp, x):
    """``x`` as a complex array in the working precision (complex128 by default)."""
    return work_float(xp, x if isdtype(xp, x.dtype, "complex floating") else x + 0j)


class UnitaryFrame(Frame):
    """Frames of U(d) and SU(d): ``H`` has unitary rows (zero rows project), so
    ``H^{-1} = H^H`` and the canonical input is ``x H^H``; outputs map back as ``y H``.

    Real fields passed to :meth:`to_canonical` and :meth:`from_canonical` are promoted to
    complex (complex64 for float32, complex128 otherwise); the results are complex.
    """

    is_complex = True

    def to_canonical(self, x, kind="point"):
        """Canonical field ``x H^H`` of shape (B, K, n, d), complex (see Frame).

        Parameters
        ----------
        x : array of shape (B, n, w)
        kind : {"point", "vector", "scalar"}

        Returns
        -------
        array of shape (B, K, n, w)
        """
        check_kind(kind)
        return super().to_canonical(x if kind == "scalar" else _as_complex(x), kind)

    def from_canonical(self, y, kind="point"):
        """Outputs mapped back, ``y H``, and averaged over the frame elements.

        Parameters
        ----------
        y : array of shape (B, K, n, w)
        kind : {"point", "vector", "scalar"}

        Returns
        -------
        array of shape (B, n, w)
        """
        check_kind(kind)
        return super().from_canonical(y if kind == "scalar" else _as_complex(y), kind)

    def _apply_inverse(self, x):
        """``x H^H`` for x of shape (B, 1, n, d) against H (B, K, d, d)."""
        xp = get_namespace(x, self.H)
        return x @ xp.conj(self.H).mT


class UnitaryGroup(Group):
    """The unitary group U(d), or the special unitary group SU(d), acting on complex rows.

    An element ``T`` (a ``d x d`` unitary matrix, det 1 for SU) acts on the right on
    every row: ``g.x = x T``. Minimal frames [1]_ are built by one invariant
    Gram-Schmidt pass with the Hermitian product ``<u, w> = u w^H``; each frame vector
    is a positive multiple of its residual, so all phases are fixed invariantly.
    Rank-deficient samples (rank ``r < d``) are averaged over their stabilizer
    ``U(d - r)`` by zero frame rows ``r..d-1``. SU(d) fixes the determinant by the
    last-row phase at ``r = d``, completes ``r = d - 1`` with the conjugate cofactor
    vector, and projects for ``r <= d - 2``. The module docstring of
    ``mfa_sklearn.groups.unitary`` details the frame, tolerances and stabilizers.

    **Real columns for scikit-learn.** Estimators take real ``X``, so a complex "point"
    or "vector" field of ``n`` rows occupies ``2 * n * d`` real columns per sample:

    * 2-D ``X``: the field's column block holds all real parts first (``n * d``
      columns, row-major: ``Re z_00, Re z_01, ..., Re z_(n-1)(d-1)``), then all
      imaginary parts in the same order (``n * d`` columns);
    * 3-D ``X`` of shape ``(B, n, W)``: the field takes ``2 * d`` entries of the last
      axis, ``[Re | Im]`` (``d`` real parts, then ``d`` imaginary parts).

    Scalar fields keep their real width. Canonical inputs and outputs of the estimators
    come back in the same real layout, in X's dtype. :meth:`from_real` and
    :meth:`to_real` convert one field between ``[Re | Im]`` blocks of shape
    ``(..., n, 2d)`` and complex arrays ``(..., n, d)``.

    Parameters
    ----------
    d : int
        Dimension of the rows the group acts on (``d >= 1``).
    special : bool, default=False
        Restrict to determinant 1 (SU).

    References
    ----------
    .. [1] G. Lin, J. Helwig, S. Gui, S. Ji. "Equivariance via Minimal Frame Averaging
       for More Symmetries and Efficiency." ICML 2024, arXiv:2406.07598.

    Examples
    --------
    >>> import numpy as np
    >>> from mfa_sklearn.groups import get_group
    >>> G = get_group("SU(2)")
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4, 3, 2)) + 1j * rng.normal(size=(4, 3, 2))
    >>> g = G.random_element(4, random_state=1)
    >>> c, c_moved = G.frame(x).to_canonical(x), G.frame(G.act(g, x)).to_canonical(G.act(g, x))
    >>> bool(np.allclose(c, c_moved))
    True
    """

    is_complex = True
    row_breaks = True

    def __init__(self, d, *, special=False):
        self.d = check_dimension(d)
        self.special = bool(special)

    @property
    def name(self):
        return f"{'SU' if self.special else 'U'}({self.d})"

    # ------------------------------------------------------------------ frames
    def _frame(self, points, vectors, present, method, tol, rule):
        """:meth:`Group.frame` of U(d) and SU(d): the frame-defining rows are complex
        (real input is promoted); points and vectors are treated alike and stacked for
        the row selection. Absent rows are left out of every decision. The default
        ``tol`` is ``sqrt(eps)`` of the input dtype (float32 for complex64 or float32
        input).

        Returns
        -------
        UnitaryFrame
            ``H`` complex128 of shape (B, 1, d, d), with diagnostics.
        """
        xp, points, vectors, eps, tol = self._frame_inputs(points, vectors, method, tol)
        arrays = points + vectors
        present = self._present(xp, present, arrays)
        # complex rows, absent ones zero (never selected), the largest real or imaginary
        # part near 1 (see the module docstring, 'Tolerances')
        Z, _, inverse = frame_rows(xp, arrays, present, convert=_complex_of)
        selection = select_rows(Z, tol=tol, delta=eps ** (1.0 / 3.0), rule=rule)
        W, rank, norms = selection.W, selection.rank, selection.norms
        if self.special:
            W = self._fix_determinant(xp, W, rank)
        # H[b, j, k] = coordinate k of frame vector j; unused rows stay zero
        H = xp.stack([xp.stack(w, axis=-1) for w in W], axis=-2)[:, None]
        full = rank >= (self.d - 1 if self.special else self.d)
        frame = UnitaryFrame(H, None, rank=rank,
                             conditioning=residual_conditioning(xp, norms, rank),
                             projected=~full, projection_is_average=xp.ones_like(full))
        # rounding level of the canonical coordinates (see Frame.snap): the frame rows'
        # coordinates along later frame vectors, and the imaginary parts of those along
        # their own, vanish in exact arithmetic
        frame.snap_level = ((8.0 * self.d * work_eps(xp)) * xp.sqrt(selection.scale)
                            * inverse)
        frame.row_breaks = selection.breaks
        return identity_where_empty(xp, frame, present)

    def _fix_determinant(self, xp, W, rank):
        """SU: det H = 1 by the last-row phase (r = d) or the conjugate cofactor
        completion (r = d - 1); projection below (see the module docstring, 'SU')."""
        d = self.d
        if d == 1:  # SU(1) is trivial: H = [1] exactly, whatever the data
            return [[xp.ones_like(W[0][0])]]
        C = cofactor_vector(W[: d - 1], d, like=W[0][0])
        last = W[d - 1]
        det = dot_rows(last, C)  # det H = last row . cofactor vector of the others
        size = xp.abs(det)
        phase = xp.where(rank == d, xp.conj(det) / xp.where(size > 0, size, 1.0), 1.0 + 0j)
        complete = rank == d - 1
        W[d - 1] = [xp.where(complete, xp.conj(Ck), lk * phase) for Ck, lk in zip(C, last)]
        return W

    # ------------------------------------------------------------- elements
    def random_element(self, size, random_state=None, *, translation_scale=None):
        """Haar-random elements of U(d) (or SU(d)).

        U: QR of ``(N + iN) / sqrt(2)`` with the phase fix ``Q diag(R_jj / |R_jj|)``;
        SU: ``Q det(Q)^(-1/d)`` (principal root; the pushforward of Haar is Haar).

        Parameters
        ----------
        size, random_state
            As for :meth:`Group.random_element`.
        translation_scale : ignored
            Accepted for a uniform interface (these groups have no translations).

        Returns
        -------
        GroupElement
            numpy complex128 ``T`` of shape (size, d, d) and ``b = None``.
        """
        rng = np.random.default_rng(random_state)
        d = self.d
        N = (rng.standard_normal((size, d, d)) + 1j * rng.standard_normal((size, d, d)))
        Q, R = np.linalg.qr(N / math.sqrt(2.0))
        diag = np.diagonal(R, axis1=1, axis2=2)
        modulus = np.abs(diag)
        phase = np.where(modulus > 0, diag / np.where(modulus > 0, modulus, 1.0), 1.0)
        Q = Q * phase[:, None, :]
        if self.special:
            Q = Q * (np.linalg.det(Q) ** (-1.0 / d))[:, None, None]
        return GroupElement(Q, None)

    def act(self, g, x, kind="point"):
        """Apply ``g`` (one element per sample) to a field of shape (B, n, w): ``x T``.

        Real point/vector rows are promoted to complex; scalar fields are unchanged.
        """
        check_kind(kind)
        if kind == "scalar":
            return x
        return _as_complex(x) @ g.T
