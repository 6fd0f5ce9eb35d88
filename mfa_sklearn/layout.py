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

Groups that permute rows (S_n, "graph", S_n x G) also take ``edge`` fields: an ``n x n`` matrix
per sample (e.g. an adjacency matrix) times its width, ``n * n * width`` columns of 2-D
X, row-major (entry ``(i, j, c)`` at offset ``(i * n + j) * width + c`` of the block).
:meth:`Layout.split` returns them with shape ``(..., n, n, width)``. Edge fields exist
in 2-D layouts only. Example, 6-vertex graphs with a node feature::

    fields = {"A": "edge", "h": "scalar"}      # group "graph" (or "S_n")
    # 2-D: 36 adjacency entries (A00, A01, ..., A55), then 6 node features
"""

import math
from dataclasses import dataclass

import numpy as np

from .exceptions import LayoutError
from .groups import FIELD_KINDS, Group
from .groups._namespace import get_namespace

__all__ = ["Field", "Layout", "parse_fields"]


@dataclass(frozen=True)
class Field:
    """One field: a name, a kind ("point", "vector", "scalar" or "edge") and a width
    per row (per vertex pair for "edge").

    ``width`` counts real columns. ``is_complex`` marks the point/vector fields of a
    complex group: complex rows of width ``width // 2`` held as real blocks (see the
    module docstring for their column order).
    """

    name: str
    kind: str
    width: int
    is_complex: bool = False


@dataclass(frozen=True)
class _Traits:
    """What a layout needs to know of the group: its dimension, whether its rows are
    complex, whether it acts on edge fields, and its default fields."""

    d: int = None
    is_complex: bool = False
    supports_edges: bool = False
    default_fields: dict = None
    name: str = None


def _traits(group):
    """The :class:`_Traits` of a Group, or of a plain integer dimension (a real group
    of that dimension)."""
    if isinstance(group, Group):
        return _Traits(group.d, bool(group.is_complex), group.supports_edges,
                       group.default_fields, group.name)
    return _Traits(d=group, name=f"of dimension {group}")


def parse_fields(spec, d, *, what="fields"):
    """Turn a user's field description into a tuple of :class:`Field`.

    Parameters
    ----------
    spec : None, str, tuple or dict
        ``None`` (one "point" field named "x"), a kind, a ``(kind, width)`` pair, or a
        dict ``name -> kind`` / ``name -> (kind, width)``. Kind "edge" (an ``n x n``
        matrix per sample) needs a group with ``supports_edges`` (S_n, "graph", S_n x G).
    d : int or Group
        The group's dimension: the default width of "point" and "vector" fields. A
        complex group (U, SU) makes it ``2 d`` real columns (real and imaginary parts).
    what : str
        The parameter's name, for error messages.
    """
    traits = _traits(d)
    d, is_complex = traits.d, traits.is_complex
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
        if kind not in FIELD_KINDS:
            expected = list(FIELD_KINDS) + (["'invariant' (for y as a whole)"]
                                            if what == "target" else [])
            raise LayoutError(f"{what}: field {name!r} has unknown kind {kind!r}; "
                              f"expected one of {expected}")
        if kind == "edge" and not traits.supports_edges:
            raise LayoutError(
                f"{what}: field {name!r} has kind 'edge', but group {traits.name} does not "
                "act on edge fields: edges (n x n matrices per sample) are only permuted, "
                "A[pi][:, pi]; use group 'graph' or 'S_n' for graphs, or 'S_n x E(3)' "
                "and the like for clouds with bonds")
        default = 1 if kind in ("scalar", "edge") else geometric
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
        traits = _traits(d)
        if spec is None and what == "fields" and traits.default_fields:
            spec = traits.default_fields     # e.g. the graph group: {"A": "edge"}
        if spec is None and traits.d is None and len(sample_shape) == 2:
            # no dimension (S_n) and 3-D samples: each whole row is one field
            spec = {"x": ("scalar", int(sample_shape[1]))}
        fields = parse_fields(spec, d, what=what)
        described = ", ".join(f"{f.name}: {f.kind} x {f.width}" for f in fields)
        edge_width = sum(f.width for f in fields if f.kind == "edge")
        width = sum(f.width for f in fields if f.kind != "edge")
        if edge_width:
            if len(sample_shape) == 2:
                raise LayoutError(
                    f"{name}: edge fields ({described}) need 2-D {name} with n * n * "
                    "width columns per edge field; 3-D samples are not supported for them")
            return cls(fields, _solve_rows(sample_shape[0], width, edge_width, described,
                                           what, name), three_d=False)
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
        """Columns per row of the per-row fields (edge fields excluded)."""
        return sum(f.width for f in self.fields if f.kind != "edge")

    @property
    def n_columns(self):
        edge_width = sum(f.width for f in self.fields if f.kind == "edge")
        return self.n_rows * self.row_width + self.n_rows ** 2 * edge_width

    def _size(self, f):
        """Columns of field f in a 2-D layout."""
        return self.n_rows * f.width * (self.n_rows if f.kind == "edge" else 1)

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
            block = X[..., offset:offset + self._size(f)]
            lead = tuple(block.shape[:-1])
            if f.kind == "edge":
                parts[f.name] = block.reshape(lead + (self.n_rows, self.n_rows, f.width))
            elif f.is_complex:  # all real parts, then all imaginary parts
                half = f.width // 2
                planes = block.reshape(lead + (2, self.n_rows, half))
                xp = get_namespace(X)
                parts[f.name] = xp.concat([planes[..., 0, :, :], planes[..., 1, :, :]],
                                          axis=-1)
            else:
                parts[f.name] = block.reshape(lead + (self.n_rows, f.width))
            offset += self._size(f)
        return parts

    def join(self, parts, out=None):
        """Inverse of :meth:`split`: a new array, or for a single field its flattened
        block (a view where the block's memory allows). Numpy blocks of several fields
        go into ``out`` where it is given."""
        blocks = [parts[f.name] for f in self.fields]
        xp = get_namespace(*blocks)
        if not self.three_d:
            blocks = [_flatten(xp, b, f.is_complex, f.kind == "edge")
                      for f, b in zip(self.fields, blocks)]
        if len(blocks) == 1:
            return blocks[0]
        if xp is np and out is not None:
            return np.concatenate(blocks, axis=-1, out=out)
        if xp is not np:
            # broadcast views (scalar fields under several frame elements) need a shape
            # of their own before torch concatenates them
            lead = tuple(max(b.shape[i] for b in blocks) for i in range(blocks[0].ndim - 1))
            blocks = [xp.broadcast_to(b, lead + (b.shape[-1],)) for b in blocks]
        return xp.concat(blocks, axis=-1)

    def __repr__(self):
        fields = ", ".join(f"{f.name}={f.kind}x{f.width}" for f in self.fields)
        return f"Layout({fields}; n_rows={self.n_rows}, three_d={self.three_d})"


def _solve_rows(n_columns, width, edge_width, described, what, name):
    """The number of rows n with ``n * width + n * n * edge_width == n_columns``."""
    disc = width * width + 4 * edge_width * n_columns
    n = int((math.isqrt(disc) - width) // (2 * edge_width))
    if n < 1 or n * width + n * n * edge_width != n_columns:
        raise LayoutError(
            f"{name} has {n_columns} columns, which the {what} ({described}) cannot hold: "
            f"they need n * {width} + n * n * {edge_width} columns for n rows (vertices); "
            f"check {what}")
    return n


def _flatten(xp, block, is_complex, is_edge=False):
    """(..., n, w) -> (..., n w) columns (edge fields: (..., n, n, w) -> (..., n n w));
    complex fields: all Re, then all Im."""
    lead = tuple(block.shape[:-3] if is_edge else block.shape[:-2])
    # explicit widths: no -1 to infer in an empty batch
    rows = math.prod(block.shape[len(lead):-1])
    if not is_complex:
        return xp.reshape(block, lead + (rows * block.shape[-1],))
    half = block.shape[-1] // 2
    return xp.concat([xp.reshape(block[..., :half], lead + (rows * half,)),
                      xp.reshape(block[..., half:], lead + (rows * half,))], axis=-1)
