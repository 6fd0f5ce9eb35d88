"""The group interface: ``Group``, ``Frame`` and ``GroupElement``.

Conventions (see groups.md, section 1): a batch of rows has shape ``(B, n, d)``; matrix
groups act on the right, ``g.x = x T + b``; a frame element is stored as a matrix ``H``
whose rows are the frame vectors, so the canonical input is ``(x - t) H^{-1}`` and
outputs are restored as ``y H + t``.
"""

from dataclasses import dataclass
from typing import Any

from ._namespace import float64_of, get_namespace

KINDS = ("point", "vector", "scalar")


def check_kind(kind, allowed=KINDS):
    if kind not in allowed:
        raise ValueError(f"unknown field kind {kind!r}; expected one of {list(allowed)}")


def _result_dtype(xp, x):
    """Canonical arrays keep a floating or complex input dtype; integers become float64."""
    return x.dtype if xp.isdtype(x.dtype, ("real floating", "complex floating")) else xp.float64


@dataclass
class GroupElement:
    """A batch of group elements acting on the right: ``g.x = x T + b``.

    Attributes
    ----------
    T : array of shape (B, d, d)
        Linear parts.
    b : array of shape (B, d) or None
        Translations (only for groups with translations).
    """

    T: Any
    b: Any = None


class Frame:
    """Frames of a batch: one or more group elements per sample, with diagnostics.

    A minimal frame has one element per sample (``n_calls == 1``); continuous
    stabilizers are averaged in closed form by zero rows of ``H``. PCA frames
    (Puny et al.) have ``2^d`` (or ``2^(d-1)``) elements, each needing its own backbone
    call.

    Parameters
    ----------
    H : array of shape (B, K, d, d)
        Frame elements; rows are the frame vectors (zero rows project).
    t : array of shape (B, d) or None
        Translation (centroid) for groups with translations.
    rank : array of shape (B,), optional
        Number of frame vectors chosen from the data.
    conditioning : array of shape (B,), optional
        Largest over smallest chosen residual norm (1 for a perfectly conditioned frame).
    projected : array of shape (B,) of bool, optional
        True where the output is projected onto the span of the frame vectors.
    projection_is_average : array of shape (B,) of bool, optional
        True where that projection is the exact stabilizer average.
    """

    def __init__(self, H, t=None, *, rank=None, conditioning=None, projected=None,
                 projection_is_average=None):
        self.H = H
        self.t = t
        self.rank = rank
        self.conditioning = conditioning
        self.projected = projected
        self.projection_is_average = projection_is_average

    @property
    def n_samples(self):
        return self.H.shape[0]

    @property
    def n_calls(self):
        """Backbone calls needed per sample: 1 for minimal frames, ``2^d`` for PCA frames."""
        return self.H.shape[1]

    @property
    def size(self):
        """Number of frame elements per sample (the finite part; 1 for generic input)."""
        xp = get_namespace(self.H)
        return xp.full((self.n_samples,), float(self.n_calls), dtype=xp.float64)

    @property
    def diagnostics(self):
        """Per-sample diagnostics: rank, frame size, projection flags and conditioning."""
        return {
            "rank": self.rank,
            "frame_size": self.size,
            "projected": self.projected,
            "projection_is_average": self.projection_is_average,
            "conditioning": self.conditioning,
        }

    def to_canonical(self, x, kind="point"):
        """Map a field into each sample's canonical frame.

        Parameters
        ----------
        x : array of shape (B, n, w)
            The field; ``w == d`` for kinds "point" and "vector".
        kind : {"point", "vector", "scalar"}

        Returns
        -------
        array of shape (B, K, n, w)
            Canonical field for each of the K frame elements, in x's floating dtype.
        """
        check_kind(kind)
        xp = get_namespace(x, self.H)
        B, K = self.H.shape[:2]
        if kind == "scalar":
            return xp.broadcast_to(x[:, None], (B, K) + tuple(x.shape[1:]))
        self._check_width(x, kind)
        x64 = float64_of(xp, x)
        if kind == "point" and self.t is not None:
            x64 = x64 - self.t[:, None, :]
        canon = self._apply_inverse(x64[:, None])
        return xp.astype(canon, _result_dtype(xp, x), copy=False)

    def _apply_inverse(self, x):
        """``x H^{-1}`` for x of shape (B, 1, n, d) against H (B, K, d, d).

        Orthonormal frames have ``H^{-1} = H^T``; frames of other groups override this
        (unitary ``H^H``, Lorentz ``eta H^T eta``, linear groups a solve)."""
        return x @ self.H.mT

    def from_canonical(self, y, kind="point"):
        """Map canonical outputs back and average over the frame elements.

        Parameters
        ----------
        y : array of shape (B, K, n, w)
            Outputs of the backbone on the canonical inputs.
        kind : {"point", "vector", "scalar"}

        Returns
        -------
        array of shape (B, n, w)
        """
        check_kind(kind)
        xp = get_namespace(y, self.H)
        if kind == "scalar":
            return self.average(y)
        self._check_width(y, kind, axis=-1)
        out = float64_of(xp, y) @ self.H
        out = out[:, 0] if out.shape[1] == 1 else xp.mean(out, axis=1)
        if kind == "point" and self.t is not None:
            out = out + self.t[:, None, :]
        return xp.astype(out, _result_dtype(xp, y), copy=False)

    def average(self, y):
        """Average invariant outputs of shape (B, K, ...) over the frame elements."""
        xp = get_namespace(y, self.H)
        if y.shape[1] == 1:
            return y[:, 0]
        mean = xp.mean(float64_of(xp, y), axis=1)
        return xp.astype(mean, _result_dtype(xp, y), copy=False)

    def _check_width(self, x, kind, axis=-1):
        d = self.H.shape[-1]
        if x.shape[axis] != d:
            raise ValueError(
                f"a {kind!r} field must have width {d} (the group's dimension); "
                f"got width {x.shape[axis]}")

    @classmethod
    def concat(cls, frames):
        """Concatenate frames of consecutive batches along the sample axis."""
        frames = list(frames)
        if len(frames) == 1:
            return frames[0]
        xp = get_namespace(frames[0].H)
        names = ("rank", "conditioning", "projected", "projection_is_average")

        def cat(values):
            return None if values[0] is None else xp.concat(values, axis=0)

        return cls(cat([f.H for f in frames]), cat([f.t for f in frames]),
                   **{name: cat([getattr(f, name) for f in frames]) for name in names})

    def __getitem__(self, index):
        """The frames of a slice of samples."""
        def take(a):
            return None if a is None else a[index]

        return type(self)(take(self.H), take(self.t), rank=take(self.rank),
                          conditioning=take(self.conditioning),
                          projected=take(self.projected),
                          projection_is_average=take(self.projection_is_average))


class Group:
    """Base class of the groups: a name, a dimension, frames and random elements.

    Subclasses implement :meth:`frame`, :meth:`random_element` and :meth:`act`.
    Groups compare equal when their names do, so they can stand in parameter grids.
    """

    #: dimension ``d`` of the rows the group acts on (None for the trivial group)
    d = None
    #: whether the group includes translations (E, SE, Aff)
    has_translations = False
    #: frame methods this group offers
    frame_methods = ("minimal",)

    @property
    def name(self):
        raise NotImplementedError

    def __repr__(self):
        return f"get_group({self.name!r})"

    def __str__(self):
        return self.name

    def __eq__(self, other):
        return isinstance(other, Group) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def act(self, g, x, kind="point"):
        """Apply group elements ``g`` (one per sample) to a field of shape (B, n, w)."""
        check_kind(kind)
        if kind == "scalar":
            return x
        out = x @ g.T
        if kind == "point" and g.b is not None:
            out = out + g.b[:, None, :]
        return out
