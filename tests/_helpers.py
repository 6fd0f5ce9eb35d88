"""Backbones, data and checks shared by the test modules.

A plain module, imported as ``tests._helpers`` (``tests`` is a package, so pytest's
default import mode puts the repository root on ``sys.path``, from any folder of the
suite), rather than names taken from ``conftest.py``: a conftest is pytest's plugin,
registered under a name that depends on the import mode, so importing it by name can
fail or load a second copy (with its own error table). conftest.py keeps only what
pytest itself calls: hooks and fixtures.
"""

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone

from mfa_sklearn.groups._base import as_list

#: the repository root (examples/, benchmarks/, README.md)
ROOT = Path(__file__).resolve().parents[1]

#: the protocol's control: a backbone that ignores the group must be O(1) off, so that the
#: equivariance assertions paired with it can fail
CONTROL = 1e-2

#: the optional nauty extra (canonical labeling of symmetric clouds and graphs)
HAS_NAUTY = importlib.util.find_spec("pynauty") is not None
needs_nauty = pytest.mark.skipif(not HAS_NAUTY,
                                 reason="needs pynauty (pip install 'mfa_sklearn[nauty]')")


# ------------------------------------------------------------ errors and precision
# Largest equivariance error per named case, gathered through `record_error`;
# `MFA_PRINT_ERRORS=1 pytest -s` prints them as a table at the end (see conftest.py).
ERRORS = {}


def record_error(case, value):
    """Remember the largest error seen for ``case``."""
    ERRORS[case] = max(ERRORS.get(case, 0.0), float(value))


def precise(a):
    """``a`` in float64, or complex128 if it is complex."""
    a = np.asarray(a)
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def in_precision_of(a, like):
    """``a`` (computed in float64 / complex128) back in ``like``'s precision: single
    precision input gives single precision, of a's kind (real or complex)."""
    if np.asarray(like).dtype in (np.float32, np.complex64):
        return a.astype(np.complex64 if np.iscomplexobj(a) else np.float32)
    return a


def rel_error(expected, actual):
    """``max |expected - actual| / max |actual|`` (the absolute error if actual is 0)."""
    expected, actual = precise(expected), precise(actual)
    scale = np.max(np.abs(actual))
    diff = np.max(np.abs(expected - actual))
    return diff / scale if scale > 0 else diff


# ------------------------------------------------------------------------ backbones
class HomogeneousMLP:
    """A fixed-seed two-layer tanh MLP with biases, ``(m, size_in) -> (m, size_out)``:
    the deliberately non-equivariant backbone of the group tests.

    The input is divided by a per-row scale (default: its max-abs value, an invariant
    of a canonical input) and the output multiplied by it, so the map is homogeneous of
    degree 1 and never saturates at any data scale; that does not make it equivariant.
    It computes in the input's floating dtype.
    """

    def __init__(self, size_in, size_out, *, hidden=32, seed=0):
        rng = np.random.default_rng(seed)
        self.W1 = 2.0 * rng.standard_normal((size_in, hidden)) / math.sqrt(size_in)
        self.b1 = rng.standard_normal(hidden)
        self.W2 = rng.standard_normal((hidden, size_out)) / math.sqrt(hidden)
        self.b2 = rng.standard_normal(size_out)

    def __call__(self, flat, scale=None):
        dtype = flat.dtype
        s = np.max(np.abs(flat), axis=1, keepdims=True) if scale is None else scale
        s = np.where(s > 0, s, np.ones_like(s))
        h = np.tanh((flat / s) @ self.W1.astype(dtype) + self.b1.astype(dtype))
        return (h @ self.W2.astype(dtype) + self.b2.astype(dtype)) * s


class RowBackbone(HomogeneousMLP):
    """The non-equivariant backbone of the frame-level tests, on canonical rows.

    Maps the flattened canonical input (B, K, n, w) of n rows to a dict: per row an
    output of each kind in ``outputs``, (B, K, n, width), and an "invariant" output
    (B, K, n_inv). Counts its calls in ``calls``.

    Parameters
    ----------
    n : int
        Number of rows.
    width_in : int
        Width of the input rows (all fields side by side).
    outputs : dict
        Row outputs, kind -> width, e.g. ``{"vector": d, "point": d}``.
    n_inv : int, default=3
        Width of the invariant output.
    complex : bool, default=False
        Read the input as real blocks [Re | Im], scaled by its max modulus (invariant
        under U(d)), and make every row output complex (a real and an imaginary
        block); computes in single precision for complex64 or float32 input.
    hidden : int, default=32
    seed : int, default=0
    """

    def __init__(self, n, width_in, outputs, *, n_inv=3, complex=False, hidden=32,
                 seed=0):
        blocks = 2 if complex else 1
        self.n, self.outputs, self.n_inv, self.complex = n, dict(outputs), n_inv, complex
        super().__init__(blocks * n * width_in,
                         blocks * n * sum(self.outputs.values()) + n_inv,
                         hidden=hidden, seed=seed)
        self.calls = 0

    def __call__(self, c):
        self.calls += 1
        B, K = c.shape[:2]
        flat = np.reshape(c, (B * K, -1))
        if self.complex:
            single = flat.dtype in (np.complex64, np.float32)
            flat = flat.astype(np.complex64 if single else np.complex128)
            scale = np.max(np.abs(flat), axis=1, keepdims=True)
            out = super().__call__(np.concatenate([flat.real, flat.imag], axis=1),
                                   scale=scale.astype(np.float32 if single else np.float64))
        else:
            out = super().__call__(flat)
        y, start = {}, 0
        for kind, width in self.outputs.items():
            size = self.n * width
            block = out[:, start:start + size]
            if self.complex:
                block = block + 1j * out[:, start + size:start + 2 * size]
                size *= 2
            y[kind] = block.reshape(B, K, self.n, width)
            start += size
        y["invariant"] = out[:, start:].reshape(B, K, self.n_inv)
        return y


def point_vector_backbone(n, d, width_in=None, *, complex=False, seed=0):
    """A :class:`RowBackbone` with a "vector" and a "point" output of width ``d`` per
    row (input rows of width ``d`` unless ``width_in`` says otherwise)."""
    return RowBackbone(n, d if width_in is None else width_in, {"vector": d, "point": d},
                       complex=complex, seed=seed)


class CountingRegressor(RegressorMixin, BaseEstimator):
    """A regressor that records how often, and on how many rows, it is called.

    Frame averaging clones its inner estimator, so the records live on the fitted
    clone (``estimator_`` of the wrapper).

    Parameters
    ----------
    estimator : regressor
        Fitted as a clone, and called for the predictions.

    Attributes
    ----------
    fit_rows_ : list of int
        Rows of the fit.
    predict_rows_ : list of int
        Rows of every predict call since the fit.
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X, y):
        self.model_ = clone(self.estimator).fit(X, y)
        self.fit_rows_, self.predict_rows_ = [len(X)], []
        return self

    def predict(self, X):
        self.predict_rows_.append(len(X))
        return self.model_.predict(X)


# ------------------------------------------------------- frame-level equivariance
def point_vector_fields(points, vectors, scalars=None):
    """``[(array, kind)]`` of the point fields, then the vector and scalar fields."""
    return ([(p, "point") for p in as_list(points)]
            + [(v, "vector") for v in as_list(vectors)]
            + [(s, "scalar") for s in as_list(scalars)])


def frame_averaged(G, backbone, points=None, vectors=None, *, scalars=None,
                   **frame_kwargs):
    """F(x) = from_canonical(backbone(to_canonical(x))).

    One frame from all the fields, applied to every field; each row output of the
    backbone is mapped back by its kind, and the invariant output averaged.

    Parameters
    ----------
    G : Group
    backbone : callable
        Canonical rows (B, K, n, w) -> dict of outputs, as :class:`RowBackbone`.
    points, vectors, scalars : array of shape (B, n, w), a sequence of them, or None
    **frame_kwargs
        Passed to ``G.frame``.

    Returns
    -------
    outputs : dict
        F(x) per output kind.
    frame : Frame
    """
    points, vectors, scalars = as_list(points), as_list(vectors), as_list(scalars)
    f = G.frame(points or None, vectors or None, scalars=scalars or None, **frame_kwargs)
    canon = np.concatenate([f.to_canonical(a, kind)
                            for a, kind in point_vector_fields(points, vectors, scalars)],
                           axis=-1)
    y = backbone(canon)
    outputs = {kind: f.from_canonical(value, kind) for kind, value in y.items()
               if kind != "invariant"}
    outputs["invariant"] = f.average(y["invariant"])
    return outputs, f


def bare(backbone, points=None, vectors=None, *, scalars=None):
    """The backbone on the raw fields (no frame): the control."""
    arrays = [a for a, _ in point_vector_fields(points, vectors, scalars)]
    y = backbone(np.concatenate(arrays, axis=-1)[:, None])
    return {key: value[:, 0] for key, value in y.items()}


def moved(G, g, arrays, kind):
    """g.x for each array of one kind, computed in float64 / complex128 and returned in
    the array's precision."""
    return [in_precision_of(G.act(g, precise(a), kind), a) for a in as_list(arrays)]


def equivariance_errors(G, g, out_x, out_gx):
    """Per output kind: the relative error of g.F(x) against F(g.x)."""
    errors = {kind: rel_error(G.act(g, precise(out_x[kind]), kind), out_gx[kind])
              for kind in out_x if kind != "invariant"}
    errors["invariant"] = rel_error(out_x["invariant"], out_gx["invariant"])
    return errors


class FrameCheck(NamedTuple):
    """What :func:`assert_frame_equivariant` found: the frame of x, F(x) per output
    kind, and the relative error per output kind."""

    frame: object
    outputs: dict
    errors: dict


def assert_frame_equivariant(G, points=None, vectors=None, *, scalars=None, bound,
                             outputs=None, complex=False, seed=0, element=None, draw=None,
                             case=None, control=True, **frame_kwargs):
    """The test protocol of tests/groups/__init__.py on one batch.

    Wraps a fixed-seed :class:`RowBackbone` as F(x) = from_canonical(backbone(
    to_canonical(x))), draws one group element per sample and asserts
    ``e_max = max |g.F(x) - F(g.x)| / max |F(g.x)| <= bound`` for every output kind, and
    (with ``control``) that the bare backbone is at least :data:`CONTROL` off for every
    output kind, so that the assertion can fail.

    Parameters
    ----------
    G : Group
    points, vectors, scalars : array of shape (B, n, w), a sequence of them, or None
        The fields; the frame comes from all of them.
    bound : float or callable
        The largest e_max allowed, or a function of the frame of x that returns it.
    outputs : dict, optional
        The backbone's row outputs, kind -> width; default a "vector" and a "point"
        output of width ``G.d`` (:func:`point_vector_backbone`).
    complex : bool, default=False
        Complex rows (U, SU): see :class:`RowBackbone`.
    seed : int, default=0
        Seed of the backbone; the group elements are drawn with ``seed + 1``.
    element : GroupElement, optional
        The group elements, instead of drawing them.
    draw : dict, optional
        Keyword arguments of ``G.random_element`` (``kappa``, ``beta_max``, ...).
    case : str, optional
        Name under which :func:`record_error` keeps the largest error.
    control : bool, default=True
    **frame_kwargs
        Passed to ``G.frame`` (``method``, ``rule``, the rank tolerance ``tol``).

    Returns
    -------
    FrameCheck
    """
    __tracebackhide__ = True
    fields = point_vector_fields(points, vectors, scalars)
    arrays = [a for a, _ in fields]
    width = sum(a.shape[2] for a in arrays)
    backbone = RowBackbone(arrays[0].shape[1], width,
                           {"vector": G.d, "point": G.d} if outputs is None else outputs,
                           complex=complex, seed=seed)
    g = element if element is not None else G.random_element(len(arrays[0]), seed + 1,
                                                             **(draw or {}))
    moved_fields = {"points": moved(G, g, points, "point"),
                    "vectors": moved(G, g, vectors, "vector"),
                    "scalars": moved(G, g, scalars, "scalar")}
    out_x, f = frame_averaged(G, backbone, points, vectors, scalars=scalars, **frame_kwargs)
    out_gx, _ = frame_averaged(G, backbone, **moved_fields, **frame_kwargs)
    errors = equivariance_errors(G, g, out_x, out_gx)
    if case is not None:
        record_error(case, max(errors.values()))
    if callable(bound):
        bound = bound(f)
    assert max(errors.values()) <= bound, (errors, bound)
    if control:
        ctrl = equivariance_errors(G, g, bare(backbone, points, vectors, scalars=scalars),
                                   bare(backbone, **moved_fields))
        assert min(ctrl.values()) >= CONTROL, ctrl
    return FrameCheck(f, out_x, errors)


def H0(f):
    """The (single) frame element per sample, (B, d, d)."""
    assert f.n_calls == 1
    return f.H[:, 0]


# ----------------------------------------------------------------------------- data
def generic(rng, B, n, d, offset=3.0):
    """Gaussian rows plus a per-sample offset (so translations matter)."""
    return rng.standard_normal((B, n, d)) + offset * rng.standard_normal((B, 1, d))


def low_rank(rng, B, n, d, r, offset=3.0):
    """Random (n x r) times (r x d), shifted by a per-sample offset (rank r after
    centring)."""
    x = rng.standard_normal((B, n, r)) @ rng.standard_normal((B, r, d))
    return x + offset * rng.standard_normal((B, 1, d))


def span_complement(x, r, centred=False):
    """Orthonormal basis (B, d, d - r) of the complement of the rows' span: columns N
    with x N = 0 (by SVD; real or complex rows)."""
    z = x - x.mean(axis=1, keepdims=True) if centred else x
    _, _, Vh = np.linalg.svd(z)
    return np.conj(np.swapaxes(Vh[:, r:], 1, 2))


def minkowski(u, v):
    """<u, v> = u eta v^T over the last axis, eta = diag(1, -1, ..., -1)."""
    return u[..., 0] * v[..., 0] - np.sum(u[..., 1:] * v[..., 1:], axis=-1)


def cube_vertices():
    """The 8 vertices (+-1, +-1, +-1); vertices i and j share an edge iff their indices
    differ in one bit."""
    return np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float)


def fcc_ball(radius, lattice=3.6):
    """The sites of an fcc lattice (cubic cell ``lattice``, an atom at the origin)
    within ``radius`` of the origin: 19 atoms for ``radius == lattice``."""
    grid = np.arange(-4, 5)
    cubic = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    points = (cubic[:, None] + basis[None]).reshape(-1, 3) * lattice
    return points[np.linalg.norm(points, axis=1) <= radius]


def rotated(shape, B, rng, *, shift=True):
    """B copies of a shape (n, 3), each rotated (or reflected) by a random orthogonal
    matrix and, with ``shift``, moved by a standard normal offset; the rows keep their
    order."""
    x = shape[None] @ np.linalg.qr(rng.standard_normal((B, 3, 3)))[0]
    return x + rng.standard_normal((B, 1, 3)) if shift else x


# -------------------------------------------------------------------------- scripts
def run_script(path, *args, smoke=True, env=None, timeout=900):
    """Run a script of the repository with this interpreter and assert it succeeds.

    The script imports this checkout's package (the repository root goes first on
    PYTHONPATH), not whatever copy is installed, and runs in the repository root.

    Parameters
    ----------
    path : str
        The script, relative to the repository root.
    *args : str
        Its command-line arguments.
    smoke : bool, default=True
        Set MFA_SMOKE=1 (the examples' quick mode).
    env : dict, optional
        More environment variables.
    timeout : float, default=900
        Seconds: a guard against a hung script, far above its time on a loaded
        machine (a smoke run that takes a minute alone took over two at load 13).

    Returns
    -------
    str
        The script's stdout.
    """
    __tracebackhide__ = True
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    variables = dict(os.environ, PYTHONPATH=pythonpath, **(env or {}))
    if smoke:
        variables["MFA_SMOKE"] = "1"
    result = subprocess.run([sys.executable, str(ROOT / path), *args], check=False,
                            capture_output=True, text=True, env=variables, timeout=timeout,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout
