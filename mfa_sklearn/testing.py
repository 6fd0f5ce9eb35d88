"""Check symmetry numerically: random group elements, their action, equivariance errors."""

import numpy as np

from .groups import get_group
from .layout import Layout

__all__ = [
    "apply_group",
    "assert_equivariant",
    "check_equivariance",
    "random_group_element",
]

#: default ``rtol`` of :func:`assert_equivariant`, by the precision of X. Exact frame
#: averaging leaves errors of 1e-16..1e-13 in float64 and up to ~1e-5 with float32 input
#: (the largest seen across this package's tests); a model that ignores the group is off
#: by 1e-2 or more.
DEFAULT_RTOL = {"double": 1e-9, "single": 1e-4}


def random_group_element(group, size, random_state=None):
    """Draw ``size`` random elements of ``group`` (Haar for O/SO/U/SU; plus N(0, 10^2)
    translations for E/SE, see ``Group.random_element``).

    Parameters
    ----------
    group : str or Group
    size : int
    random_state : int, numpy Generator or None

    Returns
    -------
    GroupElement
        ``T`` of shape (size, d, d) acting on the right and ``b`` of shape (size, d) or
        None: ``g . x = x T + b``.
    """
    return get_group(group).random_element(size, random_state)


def apply_group(group, g, X, fields=None, rows=None):
    """Apply one group element per sample to X, every field by its kind.

    Parameters
    ----------
    group : str or Group
    g : GroupElement
        With ``len(X)`` elements.
    X : ndarray of shape (n_samples, n_columns) or (n_samples, n_rows, width)
    fields : dict, str, tuple or None
        Layout of X, as for the estimators (default: one "point" field). Complex
        groups (U, SU) take their point/vector fields as real blocks (real parts, then
        imaginary parts; see :mod:`mfa_sklearn.layout`).
    rows : int, optional
        The number of rows the group permutes (those of the inputs). Fields with
        another number of rows (outputs on other rows: a centroid, a dipole) are
        moved by :meth:`~mfa_sklearn.groups.Group.act_on_other_rows` instead.

    Returns
    -------
    ndarray like X (computed in float64, returned in X's floating dtype)
    """
    group = get_group(group)
    X = np.asarray(X)
    layout = Layout.infer(fields, group, X.shape[1:])
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    parts = layout.split(X.astype(np.float64))
    act = (group.act if rows is None or layout.n_rows == rows
           else group.act_on_other_rows)
    # complex groups: real blocks -> complex rows -> act -> real blocks
    moved = {f.name: group.to_real(act(g, group.from_real(parts[f.name], f.kind), f.kind),
                                   f.kind)
             for f in layout.fields}
    # absent rows (NaN) stay NaN, and nothing else becomes NaN: a row is moved as a
    # whole, so a row with a NaN entry is NaN after the move (matrix products need
    # not propagate NaN)
    # (the indicator of NaN rows moves as a scalar field: permutations reorder it)
    moved = {f.name: np.where(act(g, np.isnan(parts[f.name]).any(
        axis=-1, keepdims=True).astype(np.float64), "scalar") > 0, np.nan, moved[f.name])
        if f.kind != "edge" else moved[f.name] for f in layout.fields}
    return layout.join(moved).astype(dtype, copy=False)


def _call(model, X):
    if callable(model) and not hasattr(model, "predict") and not hasattr(model, "transform"):
        return np.asarray(model(X))
    if hasattr(model, "predict"):
        return np.asarray(model.predict(X))
    return np.asarray(model.transform(X))


def check_equivariance(model, group, X, *, fields=None, target=None, random_state=None,
                       translation_scale=None):
    """Measure how far a model is from invariance or equivariance under ``group``.

    Draws one random group element ``g`` per sample and compares ``F(g . X)`` with
    ``g . F(X)`` (or with ``F(X)`` for invariant outputs), where ``F`` is the model.

    Parameters
    ----------
    model : fitted estimator or callable
        Uses ``predict`` if present, else ``transform`` (whose output is treated as
        invariant), else calls ``model(X)``.
    group : str or Group
        The group to test.
    X : ndarray of shape (n_samples, n_columns) or (n_samples, n_rows, width)
        May hold absent rows (all-NaN rows, see the estimators): ``g`` moves the
        present rows only, absent rows stay NaN. Outputs NaN on both sides are skipped
        at absent rows (of per-row targets: give per-row outputs their kind, e.g.
        ``target="scalar"``, not "invariant") and for samples without present rows;
        NaN anywhere else is an infinite error.
    fields : dict, str, tuple or None
        Layout of X; default: the model's ``fields`` parameter if it has one.
    target : "invariant", kind, (kind, width) or dict, optional
        How the output transforms; default: the model's ``target`` parameter if it has
        one ("sum", additive invariant targets, counts as "invariant"), else
        "invariant".
    random_state : int, numpy Generator or None
    translation_scale : float, optional
        Standard deviation of the random translations (E/SE). Default: 10 times the
        root-mean-square of X's point fields (the positions the translations move; of
        all of X if there are none), larger than the data but on its scale, so that
        adding the translation does not by itself lose the data's precision.

    Returns
    -------
    dict
        ``max_error``: ``max |F(gX) - g F(X)| / max |F(gX)|`` (relative, all entries);
        ``mean_error``: mean over samples and output rows of the per-row L1 error (the
        published protocol); ``max_abs_error``; ``output_scale``: ``max |F(gX)|``.
        Non-numeric outputs (class labels) must be invariant; a label that changes
        counts as an error of 1.

    See Also
    --------
    assert_equivariant : The same measurement, asserted against a tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from mfa_sklearn import FrameAveragingRegressor, check_equivariance
    >>> X = np.random.default_rng(0).normal(size=(40, 5, 3))
    >>> y = np.abs(X).sum(axis=(1, 2))                   # not invariant under O(3)
    >>> plain = LinearRegression().fit(X.reshape(40, -1), y)
    >>> model = FrameAveragingRegressor(LinearRegression(), group="O(3)").fit(X, y)
    >>> check_equivariance(plain.predict, "O(3)", X.reshape(40, -1),
    ...                    random_state=0)["max_error"] > 0.01
    True
    >>> check_equivariance(model, "O(3)", X, random_state=0)["max_error"] < 1e-9
    True
    """
    report, _ = _measure(model, group, X, fields, target, random_state, translation_scale)
    return report


def assert_equivariant(model, group, X, *, fields=None, target=None, random_state=None,
                       translation_scale=None, rtol=None, atol=0.0):
    """Assert that a model is invariant or equivariant under ``group``, to rounding.

    Measures what :func:`check_equivariance` measures and fails unless
    ``max |F(g.X) - g.F(X)| <= atol + rtol * max |F(g.X)|`` over all samples and
    output entries, i.e. unless ``max_error <= rtol`` when ``atol`` is 0.

    Parameters
    ----------
    model, group, X, fields, target, random_state, translation_scale
        As for :func:`check_equivariance`; pass a bound method such as
        ``clf.predict_proba`` as the model to check another output.
    rtol : float, optional
        Largest error allowed relative to the largest output entry. Default: 1e-9 for
        float64 X and 1e-4 for float32 (or complex64) X (``DEFAULT_RTOL``): exact
        frame averaging stays at rounding level, many orders of magnitude below,
        and a model that ignores the group is off by 1e-2 or more.
    atol : float, default=0.0
        Largest absolute error allowed on top of ``rtol`` (for outputs that are
        exactly zero, say).

    Returns
    -------
    dict
        The report of :func:`check_equivariance`, for recording or further checks.

    Raises
    ------
    AssertionError
        Naming what was checked (the model's method, the group, the output's
        transformation), the largest error, the sample and output entry where it
        occurs, and the tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import KNeighborsRegressor
    >>> from mfa_sklearn import FrameAveragingRegressor
    >>> from mfa_sklearn.testing import assert_equivariant
    >>> X = np.random.default_rng(0).normal(size=(40, 15))   # 5 points in 3-D per row
    >>> reg = FrameAveragingRegressor(KNeighborsRegressor(), group="E(3)", target="point")
    >>> report = assert_equivariant(reg.fit(X, X), "E(3)", X, random_state=0)
    >>> bare = KNeighborsRegressor().fit(X, X)
    >>> assert_equivariant(bare, "E(3)", X, target="point")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: KNeighborsRegressor.predict is not equivariant under E(3): ...
    """
    __tracebackhide__ = True
    X = np.asarray(X)
    if rtol is None:
        single = X.dtype in (np.float32, np.complex64)
        rtol = DEFAULT_RTOL["single" if single else "double"]
    report, worst = _measure(model, group, X, fields, target, random_state,
                             translation_scale)
    if report["max_abs_error"] <= atol + rtol * report["output_scale"]:
        return report
    target = worst["target"]
    invariant = isinstance(target, str) and target == "invariant"
    what = _describe(model)
    compared = "F(X)" if invariant else "g.F(X)"
    tolerance = f"rtol={rtol:g}" + (f" + atol={atol:g}" if atol else "")
    raise AssertionError(
        f"{what} is not {'invariant' if invariant else 'equivariant'} under "
        f"{get_group(group).name}: max relative error {report['max_error']:.3g} "
        f"exceeds {tolerance}\n"
        f"  checked: F(g.X) against {compared} for F = {what}, "
        f"{_describe_target(target)}, {len(X)} samples\n"
        f"  largest error: |F(g.X) - {compared}| = {report['max_abs_error']:.3g} at "
        f"sample {worst['sample']}, output entry {worst['entry']} (output scale "
        f"{report['output_scale']:.3g})\n"
        f"  mean per-row L1 error: {report['mean_error']:.3g}")


def _measure(model, group, X, fields, target, random_state, translation_scale):
    """The report of :func:`check_equivariance`, and where its largest error is and
    which target layout it used (for the messages of :func:`assert_equivariant`)."""
    group = get_group(group)
    if fields is None:
        fields = getattr(model, "fields", None)
    if target is None:
        target = getattr(model, "target", "invariant")
        if isinstance(target, str) and target == "sum":   # additive invariant targets
            target = "invariant"
    X = np.asarray(X)
    if translation_scale is None:
        points = X
        if group.has_translations:
            layout = Layout.infer(fields, group, X.shape[1:])
            parts = layout.split(X)
            point_parts = [parts[f.name] for f in layout.fields if f.kind == "point"]
            points = point_parts[0] if point_parts else X
        points = np.asarray(points)
        # absent rows (NaN) are not there
        translation_scale = 10.0 * _root_mean_square(points[~np.isnan(points)])
    g = group.random_element(len(X), random_state, translation_scale=translation_scale)
    out = _call(model, X)
    X_moved = apply_group(group, g, X, fields)
    out_moved = _call(model, X_moved)
    invariant = isinstance(target, str) and target == "invariant"
    if not np.issubdtype(out.dtype, np.number):
        # class labels (strings, booleans): a changed label is an error of 1
        if not invariant:
            raise ValueError(f"outputs of dtype {out.dtype} (class labels) can only be "
                             "invariant; got target={target!r}")
        out_moved, out = (out_moved != out).astype(np.float64), np.zeros(out.shape)
    out_moved = out_moved.astype(np.float64)
    if invariant:
        expected = out.astype(np.float64)
    else:
        flat = out.reshape(len(X), -1)
        layout = Layout.infer(target, group, flat.shape[1:], what="target", name="y")
        expected = apply_group(group, g, flat.astype(np.float64), target,
                               rows=_rows_of_inputs(group, X, fields)).reshape(out.shape)
    # outputs NaN on both sides agree where the rows of g.X are absent (per-row
    # outputs; permutations move them; edge outputs: pairs with an absent row) or the
    # sample has no present row; NaN anywhere else stays NaN in the error
    difference = out_moved - expected
    absent = _absent_rows(group, X_moved, fields)
    if absent is not None:
        allowed = np.broadcast_to(absent.all(axis=1).reshape(
            (-1,) + (1,) * (out.ndim - 1)), out.shape)
        if not invariant and layout.n_rows == absent.shape[1]:
            def skipped(f):   # edge outputs: the pairs with an absent row
                mask = (absent[:, :, None] | absent[:, None, :]) if f.kind == "edge" else absent
                return np.broadcast_to(mask[..., None], mask.shape + (f.width,))

            rows = layout.join({f.name: skipped(f) for f in layout.fields})
            allowed = allowed | rows.reshape(out.shape)
        both = np.isnan(out_moved) & np.isnan(expected) & allowed
        difference = np.where(both, 0.0, difference)
    if invariant:
        diff_rows = difference.reshape(len(X), 1, -1)
    else:
        diff_rows = _rows(layout, difference.reshape(len(X), -1))
    diff = np.abs(difference)
    scale = float(np.max(np.abs(out_moved))) if out_moved.size else 0.0
    if absent is not None:   # NaN where rows are absent is no output
        finite = np.abs(out_moved[~np.isnan(out_moved)])
        scale = float(np.max(finite)) if finite.size else 0.0
    max_abs = float(diff.max()) if diff.size else 0.0
    sample, entry = (np.unravel_index(int(np.argmax(diff.reshape(len(X), -1))),
                                      (len(X), diff.size // len(X)))
                     if diff.size else (0, 0))
    report = {
        "max_error": max_abs / scale if scale > 0 else max_abs,
        "mean_error": float(np.abs(diff_rows).sum(axis=-1).mean()) if diff.size else 0.0,
        "max_abs_error": max_abs,
        "output_scale": scale,
    }
    return report, {"sample": int(sample), "entry": int(entry), "target": target}


def _rows_of_inputs(group, X, fields):
    """The number of rows of X's layout (the rows a row-permuting group permutes)."""
    return Layout.infer(fields, group, X.shape[1:]).n_rows


def _absent_rows(group, X, fields):
    """Absent rows (B, n) of X (all NaN in the first point field, else the first
    field), or None where there are none."""
    if not np.isnan(X).any():
        return None
    layout = Layout.infer(fields, group, X.shape[1:])
    kinds = [f for f in layout.fields if f.kind == "point"] or [
        f for f in layout.fields if f.kind != "edge"]
    if not kinds:
        return None
    absent = np.isnan(layout.split(X)[kinds[0].name]).all(axis=-1)
    return absent if absent.any() else None


def _describe(model):
    """What :func:`check_equivariance` calls: ``Class.method``, or the callable's name."""
    owner = getattr(model, "__self__", None)
    if owner is not None and hasattr(model, "__name__"):
        return f"{type(owner).__name__}.{model.__name__}"
    if hasattr(model, "predict"):
        return f"{type(model).__name__}.predict"
    if hasattr(model, "transform"):
        return f"{type(model).__name__}.transform"
    return getattr(model, "__qualname__", None) or repr(model)


def _describe_target(target):
    if isinstance(target, str) and target == "invariant":
        return "invariant output"
    return f"output transforming as {target!r}"


def _root_mean_square(a):
    """Root-mean-square of the entries of ``a`` in float64, without overflow or
    underflow of the squares (entries near 1e154 or 1e-154): computed relative to the
    largest absolute entry."""
    a = np.asarray(a, dtype=np.float64)
    if not a.size:   # every row absent: nothing to move
        return 0.0
    largest = float(np.max(np.abs(a)))
    if 1e-100 <= largest <= 1e100 or largest == 0.0 or not np.isfinite(largest):
        return float(np.sqrt(np.mean(np.square(a))))
    return largest * float(np.sqrt(np.mean(np.square(a / largest))))


def _rows(layout, Y):
    """(B, C) -> (B, n_rows, row_width): all fields of each row side by side."""
    parts = layout.split(Y)
    n = layout.n_rows
    return np.concatenate([parts[f.name].reshape(len(Y), n, -1) for f in layout.fields],
                          axis=-1)
