import math
import os

# sklearn's common checks skip their array-API input check unless this is set before
# scipy is imported; with it, every common check runs.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402  (after SCIPY_ARRAY_API, which scipy reads on import)

from mfa_sklearn.groups._base import as_list  # noqa: E402


# Largest equivariance error per named case, gathered by the group test modules through
# `record_error`; `MFA_PRINT_ERRORS=1 pytest -s` prints them as a table at the end.
_ERRORS = {}


def record_error(case, value):
    """Remember the largest error seen for ``case``."""
    _ERRORS[case] = max(_ERRORS.get(case, 0.0), float(value))


def pytest_terminal_summary(terminalreporter):
    if os.environ.get("MFA_PRINT_ERRORS") and _ERRORS:
        width = max(len(case) for case in _ERRORS)
        terminalreporter.write_line("largest e_max per case".ljust(width) + "   e_max")
        for case in sorted(_ERRORS):
            terminalreporter.write_line(f"{case.ljust(width)}   {_ERRORS[case]:.2e}")


# ------------------------------------------------ backbones and errors of the group tests

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


def precise(a):
    """``a`` in float64, or complex128 if it is complex."""
    a = np.asarray(a)
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def rel_error(expected, actual):
    """``max |expected - actual| / max |actual|`` (the absolute error if actual is 0)."""
    expected, actual = precise(expected), precise(actual)
    scale = np.max(np.abs(actual))
    diff = np.max(np.abs(expected - actual))
    return diff / scale if scale > 0 else diff


def point_vector_fields(points, vectors):
    """``[(array, kind)]`` of the point fields, then the vector fields."""
    return [(p, "point") for p in as_list(points)] + [(v, "vector") for v in as_list(vectors)]


def frame_averaged(G, backbone, points, vectors=None, **frame_kwargs):
    """F(x) for a backbone with "vector", "point" and "invariant" outputs: one frame
    from all frame-defining fields, applied to every field. Returns (outputs, frame)."""
    points, vectors = as_list(points), as_list(vectors)
    f = G.frame(points or None, vectors or None, **frame_kwargs)
    canon = np.concatenate([f.to_canonical(a, kind)
                            for a, kind in point_vector_fields(points, vectors)], axis=-1)
    y = backbone(canon)
    return {"vector": f.from_canonical(y["vector"], "vector"),
            "point": f.from_canonical(y["point"], "point"),
            "invariant": f.average(y["invariant"])}, f


def bare(backbone, points, vectors=None):
    """The backbone on the raw fields (no frame): the control."""
    arrays = [a for a, _ in point_vector_fields(points, vectors)]
    y = backbone(np.concatenate(arrays, axis=-1)[:, None])
    return {key: value[:, 0] for key, value in y.items()}


def equivariance_errors(G, g, out_x, out_gx):
    """Per output kind: the relative error of g.F(x) against F(g.x)."""
    errors = {kind: rel_error(G.act(g, precise(out_x[kind]), kind), out_gx[kind])
              for kind in ("vector", "point") if kind in out_x}
    errors["invariant"] = rel_error(out_x["invariant"], out_gx["invariant"])
    return errors
