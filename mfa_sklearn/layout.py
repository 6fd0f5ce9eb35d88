"""Flat scikit-learn columns <-> named fields of shape (n_samples, n_rows, width).

A *layout* describes how the columns of X (or y) hold per-row fields. In 2-D form the
column blocks are field-major: field after field, each field's ``n * width`` columns
contiguous, row after row inside the block. In 3-D form ``(n_samples, n, W)`` the last
axis holds the fields side by side. Example, 5 particles in 3-D::

    fields = {"pos": "point", "vel": "vector", "charge": "scalar"}
    # 2-D: 15 position columns (p0x, p0y, p0z, p1x, ...), 15 velocity columns, 5 charges
    # 3-D: X[:, i, 0:3] position of particle i, X[:, i, 3:6] velocity, X[:, i, 6] charge

Complex groups (U(d), SU(d)) act on complex rows, which scikit-learn holds as real
numbers: a "point" or "vector" field of ``n`` complex rows of width ``d`` takes ``2 d``
real columns per row. In 2-D form its block of ``2 n d`` columns holds all real parts
first (``n d`` columns, row-major), then all imaginary parts in the same order; in 3-D
form the field takes ``2 d`` entries of the last axis, ``[Re | Im]``. Either way
:meth:`Layout.split` returns the field as real blocks of shape ``(..., n, 2 d)``,
``[Re | Im]`` along the last axis, which ``group.from_real`` turns into complex rows.
Scalar fields keep their width. Example, 4 complex points in C^2 plus a real weight::

    fields = {"z": "point", "w": "scalar"}     # group "U(2)"
    # 2-D: 8 real parts (Re z00, Re z01, Re z10, ...), 8 imaginary parts, 4 weights
    # 3-D: X[:, i, 0:2] = Re z_i, X[:, i, 2:4] = Im z_i, X[:, i, 4] = w_i
"""

from dataclasses import dataclass

import numpy as np

from .exceptions import LayoutError
from .groups import KINDS, Group
from .groups._namespace import get_namespace

__all__ = ["Field", "Layout", "parse_fields"]


@dataclass(frozen=True)
class Field:
    """One field: a name, a kind ("point", "vector" or "scalar") and a width per row.

    ``width`` counts real columns. ``is_complex`` marks the point/vector fields of a
    complex group: complex rows of width ``width // 2`` held as real blocks (see the
    module docstring for their column order).
    """

    name: str
    kind: str
    width: int
    is_complex: bool = False


def _dimension(d):
    """``(d, is_complex)`` of a Group, or of a plain integer dimension (real)."""
    if isinstance(d, Group):
        return d.d, bool(d.is_complex)
    return d, False


def parse_fields(spec, d, *, what="fields"):
    """Turn a user's field description into a tuple of :class:`Field`.

    Parameters
    ----------
    spec : None, str, tuple or dict
        ``None`` (one "point" field named "x"), a kind, a ``(kind, width)`` pair, or a
        dict ``name -> kind`` / ``name -> (kind, width)``.
    d : int or Group
        The group's dimension: the default width of "point" and "vector" fields. A
        complex group (U, SU) makes it ``2 d`` real columns (real and imaginary parts).
    what : str
        The parameter's name, for error messages.
    """
    d, is_complex = _dimension(d)
    geometric = 2 * d if is_complex else d
    if spec is None:
        spec = {"x": "point"}
    elif isinstance(spec, (str, tuple)):
        spec = {"y" if what == "target" else "x": spec}
    if not isinstance(spec, dict) or not spec:
        raise LayoutError(
            f"{what} must be a non-empty dict name -> kind or name -> (kind, width), a "
            f"kind or a (kind, width) pair; got {spec!r}")
    fields = []
    for name, value in spec.items():
        kind, width = (value, None) if isinstance(value, str) else (tuple(value) + (None,))[:2]
        if kind not in KINDS:
            raise LayoutError(f"{what}: field {name!r} has unknown kind {kind!r}; "
                              f"expected one of {list(KINDS)}")
        default = 1 if kind == "scalar" else geometric
        if width is None and default is None:
            raise LayoutError(
                f"{what}: field {name!r} of kind {kind!r} needs an explicit width: the "
                f"group has no dimension d (S_n permutes rows of any width); write e.g. "
                f"{{{str(name)!r}: ({kind!r}, 3)}}")
        width = default if width is None else width
        if kind in ("point", "vector") and geometric is not None and width != geometric:
            parts = f" (real and imaginary parts of d = {d})" if is_complex else ""
            raise LayoutError(f"{what}: field {name!r} of kind {kind!r} must have the "
                              f"group's width {geometric}{parts}; got {width!r}")
        if not isinstance(width, (int, np.integer)) or isinstance(width, bool) or width < 1:
            raise LayoutError(f"{what}: field {name!r} needs a positive integer width; "
                              f"got {width!r}")
        fields.append(Field(str(name), kind, int(width), is_complex and kind != "scalar"))
    return tuple(fields)


class Layout:
    """Fields laid out over the trailing dimensions of an array.

    Parameters
    ----------
    fields : tuple of Field
    n_rows : int
        Rows per sample (points, particles).
    three_d : bool
        True for samples of shape ``(n_rows, W)``, False for flat ``n_rows * W`` columns.
    """

    def __init__(self, fields, n_rows, three_d=False):
        self.fields = tuple(fields)
        self.n_rows = int(n_rows)
        self.three_d = bool(three_d)

    @classmethod
    def infer(cls, spec, d, sample_shape, *, what="fields", name="X"):
        """Build the layout of arrays whose samples have shape ``sample_shape``.

        ``d`` is the group (or its dimension, for a real group): see :func:`parse_fields`.
        """
        if len(sample_shape) not in (1, 2):
            raise LayoutError(
                f"{name} must be 2-D (n_samples, n_columns) or 3-D (n_samples, n_rows, "
                f"width); got samples of shape {tuple(sample_shape)}, i.e. "
                f"{len(sample_shape) + 1}-D {name}")
        if spec is None and _dimension(d)[0] is None and len(sample_shape) == 2:
            # no dimension (S_n) and 3-D samples: each whole row is one field
            spec = {"x": ("scalar", int(sample_shape[1]))}
        fields = parse_fields(spec, d, what=what)
        width = sum(f.width for f in fields)
        described = ", ".join(f"{f.name}: {f.kind} x {f.width}" for f in fields)
        if len(sample_shape) == 2:
            if sample_shape[1] != width:
                raise LayoutError(
                    f"{name} has rows of width {sample_shape[1]}, but the {what} "
                    f"({described}) need rows of width {width}")
            return cls(fields, sample_shape[0], three_d=True)
        n_columns = sample_shape[0]
        if n_columns % width:
            raise LayoutError(
                f"{name} has {n_columns} columns, which the {what} ({described}; {width} "
                f"column(s) per row) cannot divide into rows; check {what} and the group's "
                "dimension")
        return cls(fields, n_columns // width, three_d=False)

    @property
    def row_width(self):
        return sum(f.width for f in self.fields)

    @property
    def n_columns(self):
        return self.n_rows * self.row_width

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def split(self, X):
        """Each field, shape ``(*lead, n_rows, width)``, keyed by name.

        Views, except for complex fields of 2-D layouts (gathered into ``[Re | Im]``).
        """
        parts, offset = {}, 0
        for f in self.fields:
            if self.three_d:
                parts[f.name] = X[..., offset:offset + f.width]
                offset += f.width
                continue
            block = X[..., offset:offset + self.n_rows * f.width]
            lead = tuple(block.shape[:-1])
            if f.is_complex:  # all real parts, then all imaginary parts
                half = f.width // 2
                planes = block.reshape(lead + (2, self.n_rows, half))
                xp = get_namespace(X)
                parts[f.name] = xp.concat([planes[..., 0, :, :], planes[..., 1, :, :]],
                                          axis=-1)
            else:
                parts[f.name] = block.reshape(lead + (self.n_rows, f.width))
            offset += self.n_rows * f.width
        return parts

    def join(self, parts):
        """Inverse of :meth:`split`: a new array, or for a single field its flattened
        block (a view where the block's memory allows)."""
        blocks = [parts[f.name] for f in self.fields]
        xp = get_namespace(*blocks)
        if not self.three_d:
            blocks = [_flatten(xp, b, f.is_complex) for f, b in zip(self.fields, blocks)]
        if len(blocks) == 1:
            return blocks[0]
        if xp is not np:
            # broadcast views (scalar fields under several frame elements) need a shape
            # of their own before torch concatenates them
            lead = tuple(max(b.shape[i] for b in blocks) for i in range(blocks[0].ndim - 1))
            blocks = [xp.broadcast_to(b, lead + (b.shape[-1],)) for b in blocks]
        return xp.concat(blocks, axis=-1)

    def __repr__(self):
        fields = ", ".join(f"{f.name}={f.kind}x{f.width}" for f in self.fields)
        return f"Layout({fields}; n_rows={self.n_rows}, three_d={self.three_d})"


def _flatten(xp, block, is_complex):
    """(..., n, w) -> (..., n w) columns; complex fields: all Re, then all Im."""
    lead = tuple(block.shape[:-2])
    if not is_complex:
        return xp.reshape(block, lead + (-1,))
    half = block.shape[-1] // 2
    return xp.concat([xp.reshape(block[..., :half], lead + (-1,)),
                      xp.reshape(block[..., half:], lead + (-1,))], axis=-1)
