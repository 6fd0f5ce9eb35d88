"""FrameAveragingRegressor and FrameAveragingClassifier: any estimator, made symmetric."""

import contextlib

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, process_routing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)

from ._engine import (
    COMMON_CONSTRAINTS,
    DEFAULT_ROW_RULE,
    FRAME_CONSTRAINT,
    N_FRAMES_CONSTRAINT,
    N_JOBS_CONSTRAINT,
    ROUND_BITS_CONSTRAINT,
    TARGET_CONSTRAINT,
    TIE_BAND_CONSTRAINT,
    FrameEstimatorMixin,
    is_invariant,
    mark_absent,
    restore,
    store_init_arguments,
    to_canonical,
)
from ._scoring import PresentRowsScoreMixin
from ._skorch import inner_inputs, inner_outputs
from .exceptions import AbsentRowsError, NonFiniteInputError, first_indices
from .groups._base import weighted_mean
from .groups._ensemble import check_ensemble
from .layout import Layout

__all__ = ["FrameAveragingClassifier", "FrameAveragingRegressor"]


def _inner_has(attr):
    """For ``available_if``: the (fitted, else unfitted) inner estimator has ``attr``."""
    def check(self):
        inner = self.estimator_ if hasattr(self, "estimator_") else self._get_estimator()
        getattr(inner, attr)
        return True
    return check


class _BaseFrameAveraging(MetaEstimatorMixin, FrameEstimatorMixin, BaseEstimator):
    """Fit an inner estimator on canonical inputs; predict by frame averaging."""

    #: the class of the inner estimator used when ``estimator`` is None
    _default_estimator_class = None
    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "estimator": [HasMethods(["fit", "predict"]), None],
        "frame": FRAME_CONSTRAINT,
        "n_jobs": N_JOBS_CONSTRAINT,
        "round_bits": ROUND_BITS_CONSTRAINT,
        "predict_frames": N_FRAMES_CONSTRAINT + [None],
        "tie_band": TIE_BAND_CONSTRAINT,
    }

    def __init__(self, estimator=None, *, group=None, fields=None, frame_fields=None,
                 frame="minimal", row_rule=DEFAULT_ROW_RULE, n_frames=1,
                 predict_frames=None, tie_band=0.0, tol=None, n_jobs=None,
                 round_bits=40):
        store_init_arguments(self, locals())

    @property
    def _frame_method(self):
        return self.frame

    @property
    def _tie_band(self):
        return self.tie_band

    @property
    def _n_predict_frames(self):
        """Frames per sample in predictions: ``predict_frames``, else ``n_frames``."""
        return self.n_frames if self.predict_frames is None else self.predict_frames

    def _fit_frames(self, X):
        """Resolve the frames (see :class:`FrameEstimatorMixin`) and check that the
        prediction frames exist too."""
        super()._fit_frames(X)
        if self.group_ is not None:
            check_ensemble(self.group_, self._n_predict_frames, self.layout_.n_rows,
                           self.row_rule, self.frame, self.tie_band)

    @property
    def _one_call(self):
        """Whether the inner estimator is called once per sample (a fitted property)."""
        return self.group_ is None or (self.frame == "minimal" and not self.tie_band
                                       and self._n_predict_frames == 1)

    def _get_estimator(self):
        """The inner estimator as given (unfitted), or a new default one."""
        if self.estimator is None:
            return self._default_estimator_class()
        return self.estimator

    def _inner_fit_params(self, sample_weight, fit_params, n_samples):
        """Fit params for the inner estimator, and per-sample repeat counts.

        ``sample_weight`` and other fit params are routed to the inner estimator. An
        inner estimator without ``sample_weight`` gets integer weights as repeated
        samples, which is what a weight means: that is how ``BaggingRegressor`` passes
        its bootstrap counts, and how sklearn's checks test weighting.

        Returns
        -------
        params : dict
        counts : ndarray of shape (n_samples,) of int, or None
            How often each sample is repeated (None: once each).
        """
        if get_config()["enable_metadata_routing"]:
            if sample_weight is not None:
                fit_params["sample_weight"] = sample_weight
            return dict(process_routing(self, "fit", **fit_params).estimator.fit), None
        if fit_params:
            raise ValueError(
                f"fit parameters {sorted(fit_params)} can only reach the inner "
                "estimator with sklearn.set_config(enable_metadata_routing=True)")
        if sample_weight is None:
            return {}, None
        weight = np.asarray(sample_weight, dtype=np.float64)
        if weight.shape != (n_samples,):
            raise ValueError(f"sample_weight must have shape ({n_samples},), one weight "
                             f"per sample; got shape {weight.shape}")
        if has_fit_parameter(self._get_estimator(), "sample_weight"):
            return {"sample_weight": sample_weight}, None
        name = type(self._get_estimator()).__name__
        if not (np.all(np.isfinite(weight)) and np.all(weight >= 0)
                and np.array_equal(weight, np.round(weight))):
            raise ValueError(
                f"{name} does not support sample_weight, so weights are applied as "
                "repeated samples and must be non-negative integers; got other values. "
                "Use an inner estimator that takes sample_weight for fractional weights")
        if not weight.any():
            raise ValueError("sample_weight is zero for every sample; nothing to fit")
        return {}, weight.astype(np.intp)

    def _fit_inner(self, Xc, targets, params, counts, frame=None):
        """Fit a clone of the inner estimator on the canonical inputs (B, K, ...) and
        their targets (B * K rows, frame elements of a sample consecutive); with a
        ``frame`` that has weights, on the elements of nonzero weight, weighted."""
        B, K = Xc.shape[:2]
        rows = Xc.reshape(B * K, -1)
        if params.get("sample_weight") is not None and K > 1:
            # each frame element is a copy of its sample: it inherits the sample's weight
            params["sample_weight"] = np.repeat(np.asarray(params["sample_weight"]), K,
                                                axis=0)
        weights = None if frame is None else frame.element_weights
        self.n_band_samples_ = 0
        if weights is not None:
            self.n_band_samples_ = int(np.count_nonzero((weights > 0).sum(axis=1)
                                                        > self.n_frames))
            keep = np.asarray(weights).reshape(-1) > 0
            rows, targets = rows[keep], targets[keep]
            if counts is not None:
                counts = np.repeat(counts, K)[keep]
            if has_fit_parameter(self._get_estimator(), "sample_weight"):
                # a member's copies weigh as much as one copy of the unweighted ensemble
                element = np.asarray(weights).reshape(-1)[keep] * self.n_frames
                given = params.get("sample_weight")
                params["sample_weight"] = element if given is None else (
                    np.asarray(given, dtype=np.float64)[keep] * element)
            elif params.get("sample_weight") is not None:
                params["sample_weight"] = np.asarray(params["sample_weight"])[keep]
            if counts is not None:
                take = np.repeat(np.arange(len(rows)), counts)
                rows, targets = rows[take], targets[take]
        elif counts is not None:
            take = np.repeat(np.arange(B * K), np.repeat(counts, K))
            rows, targets = rows[take], targets[take]
        inner = clone(self._get_estimator())
        self.estimator_ = inner.fit(*inner_inputs(inner, rows, targets), **params)

    def _inner_predict(self, method, X, **params):
        """Call ``estimator_.method`` on canonical inputs; return its output (B, K, ...)
        and the frames."""
        check_is_fitted(self)
        X = self._validate_X(X)
        Xc, frame, present = self._canonical(X, n_frames=self._n_predict_frames)
        B, K = Xc.shape[:2]
        if params and not get_config()["enable_metadata_routing"]:
            raise ValueError(f"{method} parameters {sorted(params)} need "
                             "sklearn.set_config(enable_metadata_routing=True)")
        if params:
            params = dict(process_routing(self, method, **params).estimator[method])
        rows = Xc.reshape(B * K, -1)
        weights = None if frame is None else frame.element_weights
        # weighted frames: elements of weight 0 (outside the band) are not evaluated
        keep = None if weights is None else np.asarray(weights).reshape(-1) > 0
        Xi, _ = inner_inputs(self.estimator_, rows if keep is None else rows[keep])
        out = np.asarray(getattr(self.estimator_, method)(Xi, **params))
        out = inner_outputs(self.estimator_, out, X.dtype)
        if keep is not None:
            full = np.zeros((B * K,) + out.shape[1:], dtype=out.dtype)
            full[keep] = out
            out = full
        return out.reshape((B, K) + out.shape[1:]), frame, present

    def get_metadata_routing(self):
        """Metadata routing: fit, predict and friends go to the inner estimator."""
        mapping = MethodMapping().add(caller="fit", callee="fit")
        for method in ("predict", "predict_proba", "predict_log_proba",
                       "decision_function"):
            mapping = mapping.add(caller=method, callee=method)
        return MetadataRouter(owner=self).add(estimator=self._get_estimator(),
                                              method_mapping=mapping)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.sparse = False
        # with a group, all-NaN rows are absent rows (NaN elsewhere is an error)
        tags.input_tags.allow_nan = self.group is not None
        try:
            inner = get_tags(self._get_estimator())
            tags.target_tags.multi_output = inner.target_tags.multi_output
            # without a group X reaches the inner estimator as it is
            if self.group is None:
                tags.input_tags.allow_nan = inner.input_tags.allow_nan
        except (AttributeError, TypeError, ValueError):
            pass
        return tags


class FrameAveragingRegressor(PresentRowsScoreMixin, RegressorMixin, _BaseFrameAveraging):
    """Make any regressor exactly invariant or equivariant by minimal frame averaging.

    In ``fit``, every sample (and, for equivariant targets, its target) is mapped to
    its canonical frame and the inner estimator is fitted there. In ``predict`` the
    inner estimator runs once on each canonical input and its output is mapped back
    with the frame and averaged over the stabilizer, so
    ``predict(g . X) == predict(X)`` (invariant target) or ``g . predict(X)``
    (equivariant target) for every group element ``g``, to rounding.

    Parameters
    ----------
    estimator : regressor, default=None
        The inner estimator (cloned in ``fit``). Default ``LinearRegression()``.
        A skorch ``NeuralNetRegressor`` works as is: it receives float32 canonical
        inputs and a float32 y (1-D y as shape ``(n, 1)``), and its predictions come
        back in X's dtype with y's shape. Its module sees ``n_features`` columns.
    group : str, Group or None, default=None
        ``"O(d)"``, ``"SO(d)"``, ``"E(d)"``, ``"SE(d)"``, a Group, or ``None`` for no
        symmetry (the inner estimator sees X as is), so that a grid search can compare.
    fields : dict, str, tuple or None, default=None
        Column layout of X: ``name -> kind`` or ``name -> (kind, width)``, kinds "point",
        "vector", "scalar", column blocks field-major. Default: one "point" field.
    frame_fields : str or list of str, default=None
        Fields that define the frame (default: the first point field, else the first
        vector field; for S_n every point and vector field).
    target : "invariant", kind, (kind, width) or dict, default="invariant"
        How y transforms. "invariant": y is unchanged by the group. Otherwise the
        layout of y's columns, e.g. ``"point"`` for future positions (moves like
        positions: rotated and translated) or ``"vector"`` for forces (rotated only).
        Under row-permuting groups (``"S_n x E(3)"``...) a target on X's rows moves
        with them; one on other rows (a centroid, a dipole: 3 columns) feels the
        geometric factor only. Per-row targets of samples with absent rows (all-NaN
        rows of X, see :class:`MinimalFrameCanonicalizer`) may be NaN on those rows in
        ``fit`` (the inner estimator sees zeros there); ``predict`` returns NaN there,
        and NaN for every output of a sample without present rows.
    frame : {"minimal", "pca"}, default="minimal"
        Minimal frames (one inner call per sample) or the ``2^d`` sign-flip PCA frames
        of Puny et al. (``2^d`` calls per sample), a baseline for comparisons.
    row_rule : {"first_above", "first", "pivoted"}, default="first_above"
        Which rows define the frame vectors of groups whose frames read the rows in
        order; see :class:`MinimalFrameCanonicalizer`.
    n_frames : int, default=1
        Minimal frames per sample (a frame ensemble): frame ``i`` is the frame of the
        rows re-ordered to start at row ``i`` (cyclic orders, then reversed ones, so at
        most ``2 n`` for ``n >= 3`` rows). The inner estimator is fitted on all
        ``n_frames`` canonical copies of every sample (each with the sample's weight)
        and its ``n_frames`` predictions are mapped back and averaged: exact for every
        ``n_frames``, ``n_frames`` inner calls per sample, and ``1`` is the plain
        minimal frame. Needs ``frame="minimal"``, a group that keeps rows in place (not
        S_n and its products) and ``row_rule`` "first" or "first_above" (pivoting
        ignores the row order). Ignored without a group.
    predict_frames : int or None, default=None
        Frames per sample in predictions (None: ``n_frames``). ``predict_frames=1``
        after ``n_frames=k`` fits on ``k`` canonical copies (training augmentation)
        and predicts with one inner call per sample, on the first frame: exact too.
    tie_band : float in [0, 1), default=0.0
        Weighted frames near ties of ``row_rule="first_above"`` (O, SO, E, SE, U,
        SU, Lorentz): a sample whose frame would change if the row fraction (0.1)
        moved by at most ``tie_band`` times itself gets the frames of both ends of
        that band, with
        invariant weights that go smoothly to 0 at the band's edges, so the averaged
        model is continuous across the threshold (where one decision lies in the band)
        and still exact. Only those samples cost a second frame and inner call
        (``frame_diagnostics(X)["frame_size"]``, :attr:`n_band_samples_`). In ``fit``
        their two canonical copies carry the weights as sample weights where the inner
        estimator takes ``sample_weight`` (else both count fully). For S_n x G (G in
        O, SO, E, SE) the band also weights the canonical ranking: rows whose keys
        (squared norms over the largest) lie within ``tie_band / 10`` of each other
        are taken in every order, with weights that are smooth, symmetric functions
        of the keys (1/2 each at a tie of two rows, 0 at the band's edge), each order
        with its weighted G-frames, so the model is continuous where near-tied rows
        swap, also for three or more. 0: off, today's frames bit for bit.
    tol : float, default=None
        Relative rank tolerance; default ``sqrt(eps)`` of the input dtype.
    n_jobs : int, default=None
        Joblib workers for canonicalization over chunks of samples.
    round_bits : int or None, default=40
        Significant bits the canonical coordinates are rounded to, so that tree
        models are exact on their training data too; see
        :class:`MinimalFrameCanonicalizer`.

    Attributes
    ----------
    estimator_ : regressor
        The inner estimator fitted on canonical inputs.
    group_, layout_, frame_fields_, input_shape_, labeling_backend_, absent_rows_ :
        As for :class:`MinimalFrameCanonicalizer`.
    target_layout_ : Layout or None
        Layout of equivariant targets (None for invariant targets).
    n_band_samples_ : int
        Training samples inside the band of ``tie_band`` (two frames each, per
        ensemble member); 0 without ``tie_band``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    References
    ----------
    .. [1] Y. Lin, J. Helwig, S. Gui, S. Ji. "Equivariance via Minimal Frame Averaging
       for More Symmetries and Efficiency." ICML 2024. arXiv:2406.07598.
    .. [2] O. Puny, M. Atzmon, H. Ben-Hamu, I. Misra, A. Grover, E. J. Smith, Y. Lipman.
       "Frame Averaging for Invariant and Equivariant Network Design." ICLR 2022.
       arXiv:2110.03336 (the ``frame="pca"`` baseline).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import KNeighborsRegressor
    >>> from mfa_sklearn import FrameAveragingRegressor, get_group
    >>> X = np.random.default_rng(0).normal(size=(50, 4, 3))   # 50 clouds of 4 points
    >>> y = np.linalg.norm(X, axis=2).sum(axis=1)
    >>> reg = FrameAveragingRegressor(KNeighborsRegressor(), group="O(3)").fit(X, y)
    >>> O3 = get_group("O(3)")
    >>> rotated = O3.act(O3.random_element(50, random_state=1), X)
    >>> bool(np.allclose(reg.predict(rotated), reg.predict(X)))     # invariant
    True
    """

    _default_estimator_class = LinearRegression
    _parameter_constraints = {**_BaseFrameAveraging._parameter_constraints,
                              "target": TARGET_CONSTRAINT}

    def __init__(self, estimator=None, *, group=None, fields=None, frame_fields=None,
                 target="invariant", frame="minimal", row_rule=DEFAULT_ROW_RULE,
                 n_frames=1, predict_frames=None, tie_band=0.0, tol=None, n_jobs=None,
                 round_bits=40):
        store_init_arguments(self, locals())

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit the inner estimator on canonical inputs (and canonical targets).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, n_rows, width)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the inner estimator's ``fit``; for an inner estimator without
            ``sample_weight``, non-negative integer weights repeat samples.
        **fit_params : dict
            Other fit parameters, routed with metadata routing enabled.

        Returns
        -------
        self
        """
        self._validate_params()
        # NaN in y marks the absent rows of per-row targets: checked against X below
        y_nan = np.zeros(0, dtype=bool)
        # a y that fails here fails in validate_data below, with sklearn's message
        with contextlib.suppress(TypeError, ValueError):
            if y is not None:
                y_nan = np.isnan(check_array(y, ensure_all_finite="allow-nan",
                                             ensure_2d=False, dtype="numeric",
                                             input_name="y"))
        if y_nan.any():
            y = np.where(y_nan, 0.0, np.asarray(y, dtype=np.float64))
        X, y = validate_data(self, X, y, allow_nd=True, dtype=[np.float64, np.float32],
                             ensure_all_finite=False, multi_output=True, y_numeric=True)
        self._fit_frames(X)
        self._y_ndim = y.ndim
        self.target_layout_ = None
        if self.group_ is not None and not is_invariant(self.target):
            y = y.reshape(len(y), -1)
            self.target_layout_ = Layout.infer(self.target, self.group_, y.shape[1:],
                                               what="target", name="y")
        Xc, frame, present = self._canonical(X)
        self._check_target_nan(y_nan, present)
        B, K = Xc.shape[:2]
        if self.target_layout_ is not None:
            yc = to_canonical(frame, self.target_layout_, y, present).reshape(B * K, -1)
        else:
            yc = np.repeat(y, K, axis=0) if K > 1 else y
        self._fit_inner(Xc, yc, *self._inner_fit_params(sample_weight, fit_params, B),
                        frame=frame)
        return self

    def _check_target_nan(self, y_nan, present):
        """NaN in y is accepted only on the absent rows of per-row targets."""
        if not y_nan.any():
            return
        allowed = np.zeros(y_nan.shape, dtype=bool)
        layout = self.target_layout_
        if (present is not None and layout is not None
                and layout.n_rows == present.shape[1]):
            absent, n = ~present, layout.n_rows
            edge = (absent[:, :, None] | absent[:, None, :])[..., None]
            allowed = layout.join({
                f.name: np.broadcast_to(edge, (len(absent), n, n, f.width))
                if f.kind == "edge" else
                np.broadcast_to(absent[..., None], (len(absent), n, f.width))
                for f in layout.fields}).reshape(y_nan.shape)
        bad = y_nan & ~allowed
        if bad.any():
            sample = int(np.argwhere(bad)[0][0])
            raise NonFiniteInputError(
                f"y contains NaN in {first_indices(bad.reshape(len(bad), -1).any(axis=1))}"
                f", e.g. sample {sample}, outside absent rows: NaN in y marks the absent "
                "rows (all-NaN rows of X) of per-row equivariant targets only")

    def predict(self, X, **predict_params):
        """Frame-averaged predictions: invariant or equivariant as ``target`` says.

        Per-row targets are NaN at the absent rows of X, and every output of a sample
        without present rows is NaN.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, n_rows, width)
        **predict_params : dict
            Routed to the inner ``predict`` with metadata routing enabled.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        pred, frame, present = self._inner_predict("predict", X, **predict_params)
        if self.target_layout_ is None:
            out = _element_mean(pred, frame)
        else:
            out = restore(frame, self.target_layout_, pred.reshape(pred.shape[:2] + (-1,)))
        if present is not None:
            out = mark_absent(out, self.target_layout_, present)
        if self._y_ndim == 1 and out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.group is not None:
            # invariant models cannot fit the common checks' non-invariant data well
            tags.regressor_tags.poor_score = True
            if not is_invariant(self.target):
                tags.target_tags.multi_output = True
        return tags


class FrameAveragingClassifier(ClassifierMixin, _BaseFrameAveraging):
    """Make any classifier exactly invariant by minimal frame averaging.

    The inner classifier is fitted on canonical inputs; predictions, probabilities and
    decision functions are computed on canonical inputs too (averaged over the frame
    elements for ``frame="pca"`` and ``n_frames > 1``), so they are exactly invariant.

    Parameters
    ----------
    estimator : classifier, default=None
        The inner classifier (cloned in ``fit``). Default ``LogisticRegression()``.
        A skorch ``NeuralNetClassifier`` works as is: it receives float32 canonical
        inputs and int64 labels 0..n_classes-1.
    group, fields, frame_fields, frame, row_rule, n_frames, predict_frames :
        As for :class:`FrameAveragingRegressor`.
    tol, n_jobs, round_bits :
        As for :class:`FrameAveragingRegressor`.

    Attributes
    ----------
    estimator_ : classifier
        Fitted on canonical inputs and labels encoded as 0..n_classes-1.
    classes_ : ndarray of shape (n_classes,)
    group_, layout_, frame_fields_, input_shape_, labeling_backend_, absent_rows_ :
        As for :class:`FrameAveragingRegressor`.
    n_band_samples_ : int
        As for :class:`FrameAveragingRegressor`.
    n_features_in_, feature_names_in_ :
        As for :class:`FrameAveragingRegressor`.

    References
    ----------
    .. [1] Lin et al., "Equivariance via Minimal Frame Averaging for More Symmetries and
       Efficiency", ICML 2024, arXiv:2406.07598; the ``frame="pca"`` baseline as in
       :class:`FrameAveragingRegressor`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import SVC
    >>> from mfa_sklearn import FrameAveragingClassifier
    >>> X = np.random.default_rng(0).normal(size=(60, 3, 2))   # 60 triangles in the plane
    >>> edges = np.linalg.norm(X - np.roll(X, 1, axis=1), axis=2)
    >>> y = edges.max(axis=1) > 2.5                          # an invariant label
    >>> clf = FrameAveragingClassifier(SVC(), group="E(2)").fit(X, y)
    >>> bool((clf.predict(X + 100.0) == clf.predict(X)).all())   # translated
    True
    """

    _default_estimator_class = LogisticRegression

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit the inner classifier on canonical inputs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, n_rows, width)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            As for :meth:`FrameAveragingRegressor.fit`.
        **fit_params : dict
            Routed to the inner ``fit`` with metadata routing enabled.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = validate_data(self, X, y, allow_nd=True, dtype=[np.float64, np.float32],
                             ensure_all_finite=False)
        check_classification_targets(y)
        self._fit_frames(X)
        params, counts = self._inner_fit_params(sample_weight, fit_params, len(X))
        # samples repeated zero times are not there: neither are classes only they have
        kept = np.ones(len(y), dtype=bool) if counts is None else counts > 0
        encoder = LabelEncoder().fit(y[kept])
        self.classes_ = encoder.classes_
        codes = np.zeros(len(y), dtype=np.intp)
        codes[kept] = encoder.transform(y[kept])
        Xc, frame, _ = self._canonical(X)
        K = Xc.shape[1]
        self._fit_inner(Xc, np.repeat(codes, K) if K > 1 else codes, params, counts,
                        frame=frame)
        return self

    def predict(self, X, **predict_params):
        """Invariant class labels.

        With one frame element per sample this is the inner prediction on the
        canonical input; with several (``frame="pca"``, ``n_frames > 1``) the class of the averaged
        probabilities (or decision function; else the most frequent vote).
        """
        check_is_fitted(self)
        if self._one_call:
            pred, _, present = self._inner_predict("predict", X, **predict_params)
            _no_label_for_empty(present)
            return self.classes_[pred[:, 0].astype(np.intp)]
        if hasattr(self.estimator_, "predict_proba"):
            return self.classes_[np.argmax(self.predict_proba(X, **predict_params), axis=1)]
        if hasattr(self.estimator_, "decision_function"):
            score = self.decision_function(X, **predict_params)
            codes = (score > 0).astype(np.intp) if score.ndim == 1 else np.argmax(score, 1)
            return self.classes_[codes]
        pred, frame, present = self._inner_predict("predict", X, **predict_params)
        _no_label_for_empty(present)
        votes = np.stack([_element_mean(pred == c, frame) for c in range(len(self.classes_))],
                         1)
        return self.classes_[np.argmax(votes, axis=1)]

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X, **predict_params):
        """Class probabilities of the inner classifier, averaged over frame elements."""
        proba, frame, present = self._inner_predict("predict_proba", X, **predict_params)
        return _nan_for_empty(_element_mean(proba, frame), present)

    @available_if(_inner_has("predict_log_proba"))
    def predict_log_proba(self, X, **predict_params):
        """Logarithm of :meth:`predict_proba`."""
        check_is_fitted(self)
        if self._one_call:
            log_proba, _, present = self._inner_predict("predict_log_proba", X,
                                                        **predict_params)
            return _nan_for_empty(log_proba[:, 0], present)
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X, **predict_params))

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X, **predict_params):
        """Decision function of the inner classifier, averaged over frame elements."""
        score, frame, present = self._inner_predict("decision_function", X,
                                                    **predict_params)
        return _nan_for_empty(_element_mean(score, frame), present)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.group is not None:
            tags.classifier_tags.poor_score = True
        return tags


def _element_mean(y, frame):
    """Mean of inner outputs (B, K, ...) over the frame elements, weighted where the
    frames have weights (None: no group)."""
    weights = None if frame is None else frame.element_weights
    if weights is None:
        return y[:, 0] if y.shape[1] == 1 else y.mean(axis=1)
    return weighted_mean(np, y, np.asarray(weights))


def _nan_for_empty(out, present):
    """Outputs (B, ...) with NaN for the samples without present rows."""
    return out if present is None else mark_absent(out, None, present)


def _no_label_for_empty(present):
    """Class labels cannot be NaN: a sample without present rows has none."""
    if present is None:
        return
    empty = ~present.any(axis=1)
    if empty.any():
        raise AbsentRowsError(
            f"{first_indices(empty)} have no present rows (every row absent), so they "
            "have no class label; predict_proba and decision_function give NaN for them")
