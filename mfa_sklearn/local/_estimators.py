"""LocalFrameRegressor and LocalFrameFeaturizer: any estimator on canonical atomic
neighbourhoods."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    RegressorMixin,
    TransformerMixin,
    clone,
)
from sklearn.kernel_ridge import KernelRidge
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    has_fit_parameter,
    validate_data,
)

from .._engine import COMMON_CONSTRAINTS, N_JOBS_CONSTRAINT, store_init_arguments
from .._scoring import PresentRowsScoreMixin
from ..exceptions import NonFiniteInputError, first_indices
from ..groups._selection import ROW_RULES
from ._environments import LocalFrames
from ._sum_kernel import indicator, kernel_parameters, system_kernel

_REFERENCES = """
    References
    ----------
    .. [1] Lin, Helwig, Gui, Ji. Equivariance via Minimal Frame Averaging for More
       Symmetries and Efficiency. ICML 2024, arXiv:2406.07598.
    .. [2] Behler, Parrinello. Generalized neural-network representation of
       high-dimensional potential-energy surfaces. Phys. Rev. Lett. 98, 2007 (the
       smooth cutoff and the decomposition into atomic terms).
"""


class _LocalFrameBase(BaseEstimator):
    """Neighbourhoods, frames and validation shared by the local-frame estimators."""

    _parameter_constraints = {
        "fields": COMMON_CONSTRAINTS["fields"],
        "group": [str],
        "cutoff": [Interval(Real, 0, None, closed="neither")],
        "n_neighbors": [Interval(Integral, 2, None, closed="left"), None],
        "first_vector": [StrOptions({"nearest", "weighted"})],
        "row_rule": [StrOptions(set(ROW_RULES))],
        "cutoff_weight": [StrOptions({"cosine"}), None],
        "encoding": [StrOptions({"rows", "density"})],
        "n_radial": [Interval(Integral, 1, None, closed="left")],
        "radial_basis": [StrOptions({"scales", "shells", "exponentials"})],
        "angular_weight": [Interval(Real, 0, None, closed="left")],
        "standardize": ["boolean"],
        "tol": COMMON_CONSTRAINTS["tol"],
        "n_jobs": N_JOBS_CONSTRAINT,
    }

    def _fit_layout(self, X):
        """Validate X and resolve the layout of its systems (called in ``fit``)."""
        X = self._check_X(X, reset=True)
        self.local_frames_ = LocalFrames.resolve(
            self.group, self.fields, X.shape[1:], cutoff=float(self.cutoff),
            n_neighbors=self.n_neighbors, first_vector=self.first_vector,
            row_rule=self.row_rule, cutoff_weight=self.cutoff_weight)
        self.layout_ = self.local_frames_.layout
        self.input_shape_ = tuple(X.shape[1:])
        return X

    def _check_X(self, X, reset=False):
        shape = tuple(getattr(X, "shape", ()))
        if not reset and len(shape) == 3 and shape[1:] != self.input_shape_:
            # before sklearn's feature count, which would call the atom rows features
            self._refuse_system_shape(shape[1:])
        try:
            X = validate_data(self, X, reset=reset, allow_nd=True,
                              dtype=[np.float64, np.float32], ensure_all_finite=False)
        except (TypeError, ValueError) as error:
            if "float" not in str(error) and "number" not in str(error):
                raise
            raise _non_numeric(X, error) from error
        if X.ndim > 3:
            raise ValueError(f"X must be 2-D (n_systems, n_columns) or 3-D (n_systems, "
                             f"n_atoms, width); got a {X.ndim}-D array of shape {X.shape}")
        if not reset and tuple(X.shape[1:]) != self.input_shape_:
            self._refuse_system_shape(tuple(X.shape[1:]))
        return X

    def _refuse_system_shape(self, shape):
        raise ValueError(
            f"X has systems of shape {shape}, but {type(self).__name__} was fitted on "
            f"systems of shape {self.input_shape_}: pad (or cut) the systems to the "
            "fitted number of atom rows with all-NaN rows for absent atoms, e.g. "
            "atoms_to_X(..., n_max=...), and give the same fields")

    def _environments(self, X, fit=False, sample_weight=None):
        """The canonical neighbourhoods of X's atoms, and their invariant features
        (standardized with the training atoms' mean and spread, weighted by their
        systems' ``sample_weight``, where asked)."""
        envs = self.local_frames_.environments(X, tol=self.tol, n_jobs=self.n_jobs)
        if not fit and self.feature_mean_ is not None:
            # standardized while each chunk of atoms is in cache
            features = envs.features(self.encoding, self.n_radial,
                                     (self.feature_mean_, self.feature_scale_),
                                     self.radial_basis)
        else:
            features = envs.features(self.encoding, self.n_radial,
                                     radial_basis=self.radial_basis)
            if fit:
                self._fit_statistics(features, envs, sample_weight)
            if self.feature_mean_ is not None:
                if features.dtype == np.result_type(features, self.feature_mean_):
                    # in place: the same values, without two more arrays of the
                    # features' size (10^6 atoms x 161 features is 1.3 GB each)
                    features -= self.feature_mean_
                    features /= self.feature_scale_
                else:
                    features = (features - self.feature_mean_) / self.feature_scale_
        if self.encoding == "density" and self.angular_weight != 1:
            # features are a new array on every path: scaled in place
            features[:, self.local_frames_.angular_columns(self.n_radial)] *= (
                self.angular_weight)
        return envs, features

    def _fitted_environments(self, X):
        """X validated against the fitted estimator, its environments and features."""
        check_is_fitted(self)
        X = self._check_X(X)
        envs, features = self._environments(X)
        return X, envs, features

    def _fit_statistics(self, features, envs, sample_weight):
        """``feature_mean_`` and ``feature_scale_`` of the training atoms (None without
        ``standardize``), weighted by their systems' ``sample_weight``."""
        self.feature_mean_ = self.feature_scale_ = None
        weight = None if sample_weight is None else sample_weight[envs.system]
        if self.standardize and len(features) and (weight is None or weight.sum() > 0):
            # weights count as repeated systems: the same statistics either way
            self.feature_mean_ = np.average(features, axis=0, weights=weight)
            spread = np.sqrt(np.average((features - self.feature_mean_) ** 2, axis=0,
                                        weights=weight))
            # columns constant up to rounding (flat or linear environments) keep their
            # scale: dividing by noise would make noise count
            noise = 1e-6 * max(float(spread.max()), np.finfo(np.float64).tiny)
            self.feature_scale_ = np.where(spread > noise, spread, 1.0)

    def atom_features(self, X):
        """The invariant features of every present atom, as the inner estimator (or the
        atom transformer) sees them.

        Parameters
        ----------
        X : array-like of shape (n_systems, n_columns) or (n_systems, n_atoms, width)
            Systems whose present atoms to describe, in the layout seen in ``fit``.

        Returns
        -------
        features : ndarray of shape (n_present_atoms, n_atom_features)
            One row per present atom, systems in order, atoms in row order.
        system, atom : ndarray of shape (n_present_atoms,)
            The system and the row of each.
        """
        _, envs, features = self._fitted_environments(X)
        return features, envs.system, envs.atom

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = True        # all-NaN rows: absent atoms
        return tags


def _non_numeric(X, error):
    """``error`` (X did not convert to floats) with the first non-numeric entry named
    by system and column, where one is found."""
    flat = np.asarray(X, dtype=object)
    flat = flat.reshape(len(flat), -1) if flat.ndim > 1 else flat[:, None]
    for (system, column), value in np.ndenumerate(flat):
        try:
            float(value)
        except (TypeError, ValueError):
            return type(error)(
                f"{error}. X must be numeric: system {system}, column {column} holds "
                f"{value!r}; give species as atomic numbers (e.g. ase.Atoms.numbers), not "
                "symbols")
    return error


class LocalFrameRegressor(MetaEstimatorMixin, PresentRowsScoreMixin, RegressorMixin,
                          _LocalFrameBase):
    # an assignment, not a bare string: a docstring built from parts is an expression
    __doc__ = """Any regressor on canonical atomic neighbourhoods: exactly invariant or
    equivariant per-atom outputs, and additive invariant targets by sum kernels.

    Each present atom of each system gets a neighbourhood: its neighbours within
    ``cutoff`` (the ``n_neighbors`` nearest), as positions relative to the atom, with
    their scalar and vector fields, and the atom's own fields as context. The
    neighbourhood's minimal frame under ``S_k x O(3)`` (``S_k x SO(3)`` for
    ``group="SE(3)"``) puts it in canonical form, symmetric neighbourhoods averaged over
    their stabilizer, and the inner estimator sees one row of invariant features per
    atom. The model is exactly symmetric under rotations, reflections (E(3)),
    translations and relabellings of the atoms, whatever the inner estimator:

    * ``target="vector"``: a vector per atom (forces, dipoles), predicted in the atom's
      frame and mapped back: equivariant;
    * ``target="scalar"``: scalars per atom (charges): invariant;
    * ``target="sum"``: one invariant value per system that is a sum of atomic terms
      (energies), fitted by a kernel method on the exact sum kernel
      ``K(A, B) = sum_{a in A, b in B} k(f_a, f_b)``, the inner estimator's own kernel
      (``kernel``, ``gamma``, ...) summed over the atoms of both systems.

    Parameters
    ----------
    estimator : estimator, default=None
        Regressor on per-atom features (``target="vector"`` / ``"scalar"``), or a
        kernel method with a ``kernel`` parameter (``target="sum"``: ``KernelRidge``,
        ``SVR``), refitted on the precomputed system kernel. None:
        ``KernelRidge(kernel="rbf")``, whose per-atom kernel takes ``A^2`` memory for A
        training atoms; give a scalable regressor for large per-atom fits.
    target : {"sum", "vector", "scalar"}, default="sum"
        What y holds: one value per system (additive), one vector per atom
        ``(n_systems, n_atoms * d)`` or ``(n_systems, n_atoms, d)``, or scalars per
        atom ``(n_systems, n_atoms)`` / ``(n_systems, n_atoms * w)``; NaN at absent
        atoms.
    fields : dict, str, tuple or None, default=None
        Layout of each system's atom rows, e.g. ``{"pos": "point", "Z": "scalar"}``:
        one point field (positions), any scalar fields (species, charges: neighbour
        colours and centre context) and vector fields (velocities: carried along).
        None: every column a position coordinate.
    group : {"E(3)", "SE(3)"} or "E(d)", "SE(d)", default="E(3)"
        Symmetry of whole systems; S_n over the atoms is always part of it.
    cutoff : float, default=5.0
        Neighbours are the atoms closer than this, by more than the rounding band
        ``sqrt(eps)`` (relative): an atom at the cutoff distance (a lattice constant) is
        left out whatever the rounding of its distance (its cutoff weight is zero).
    n_neighbors : int or None, default=12
        Keep at most this many nearest neighbours (None: all within the cutoff).
        Neighbours tied with the first one left out are left out too, so that the
        neighbourhood does not depend on the atoms' labels. Cover the range of the
        interactions: on 19-atom clusters, 12 neighbours kept 12 of 18 other atoms
        within the cutoff, and the sum kernel's energies came out 15 times worse than
        with all of them.
    first_vector : {"nearest", "weighted"}, default="nearest"
        The first frame vector: the nearest neighbour, or the neighbours' mean
        direction weighted by the smooth cutoff where it is at least half the largest
        neighbour distance long (else the nearest neighbour, as in symmetric
        environments), which moves less when neighbours swap order but doubles the
        frames' cost.
    row_rule : {"first_above", "pivoted", "first"}, default="first_above"
        How frame vectors are picked among the rows in canonical order (nearest first):
        the first with a residual at least a tenth of the largest, the largest, or the
        first independent one.
    cutoff_weight : {"cosine"} or None, default="cosine"
        Per-neighbour feature ``0.5 (cos(pi r / cutoff) + 1)``, which vanishes at the
        cutoff, so that atoms crossing it enter with a vanishing weight.
    encoding : {"density", "rows"}, default="density"
        How an atom's neighbours become features: their canonical rows in canonical
        order (relative positions, fields, cutoff weights), or the neighbour density
        in the canonical frame: ``sum_b w_b g_i(|r_b|) Y_l(r_b / |r_b|) c_b`` over
        ``n_radial`` radial functions ``g_i``, the monomials ``Y_l`` of degree at
        most 2 of the direction and the channels ``c_b`` (1 and each neighbour
        field), smooth where neighbours swap order.
    n_radial : int, default=8
        Radial functions of ``encoding="density"``.
    radial_basis : {"scales", "shells", "exponentials"}, default="scales"
        The radial functions of ``encoding="density"``: ``exp(-(r / s_i)^2)``
        centred on the atom, with widths ``s_i`` spaced geometrically from
        ``0.15 cutoff`` to ``1.5 cutoff`` (Behler's radial symmetry functions at
        several scales: smooth, monotone in each distance); Gaussians of one width
        centred evenly over ``[0, cutoff]`` (shells that resolve distances, but fit
        smooth energies worse: on EMT Cu13 clusters 6x the energy error); or
        exponentials ``exp(-r / l_i)`` with decay lengths ``l_i`` spaced
        geometrically from ``0.05 cutoff`` to ``cutoff``, the shape of the atomic
        densities summed by embedded-atom and effective-medium potentials: on EMT
        clusters 0.6-0.7x the energy error of ``"scales"`` with the sum kernel, and
        about 2% more force error.
    angular_weight : float, default=1.0
        Factor on the angular channels of ``encoding="density"`` (after
        standardization), against the radial ones: how much the inner estimator's
        kernel or penalty reads directions in the canonical frame. Tune it like a
        kernel width: potentials that depend on distances alone (EMT) prefer small
        values, vector targets (forces) need the directions.
    standardize : bool, default=True
        Centre and scale every per-atom feature by its mean and standard deviation over
        the training atoms, so that coordinates, species and weights count alike in
        the inner estimator's kernel or penalty.
    tol : float, optional
        Relative rank tolerance of the frames (default ``sqrt(eps)``).
    n_jobs : int, optional
        Joblib threads over chunks of neighbourhoods and blocks of the sum kernel.

    Attributes
    ----------
    estimator_ : estimator
        The fitted inner estimator (on per-atom features, or the system kernel).
    layout_ : Layout
    local_frames_ : LocalFrames
    feature_mean_, feature_scale_ : ndarray of shape (n_atom_features,) or None
        The training atoms' feature statistics (``standardize``).
    n_features_in_ : int

    See Also
    --------
    LocalFrameFeaturizer : pooled per-atom features for any regressor.
    FrameAveragingRegressor : one global frame per system.
    """ + _REFERENCES + """
    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.kernel_ridge import KernelRidge
    >>> from mfa_sklearn import LocalFrameRegressor, get_group
    >>> X = np.random.default_rng(0).normal(scale=1.5, size=(40, 6, 3))  # 6 atoms each
    >>> distances = np.linalg.norm(X[:, :, None] - X[:, None], axis=-1)
    >>> y = np.exp(-distances).sum(axis=(1, 2))                        # pair energies
    >>> model = LocalFrameRegressor(KernelRidge(kernel="rbf", alpha=1e-3),
    ...                             cutoff=4.0, n_neighbors=5).fit(X, y)
    >>> E3 = get_group("E(3)")
    >>> moved = E3.act(E3.random_element(40, random_state=1), X)[:, ::-1]  # atoms reversed
    >>> bool(np.allclose(model.predict(moved), model.predict(X)))     # invariant
    True
    """

    _parameter_constraints = {
        **_LocalFrameBase._parameter_constraints,
        "estimator": [HasMethods(["fit", "predict"]), None],
        "target": [StrOptions({"sum", "vector", "scalar"})],
    }

    def __init__(self, estimator=None, *, target="sum", fields=None, group="E(3)",
                 cutoff=5.0, n_neighbors=12, first_vector="nearest", row_rule="first_above",
                 cutoff_weight="cosine", encoding="density", n_radial=8,
                 radial_basis="scales", angular_weight=1.0, standardize=True, tol=None,
                 n_jobs=None):
        store_init_arguments(self, locals())

    def _get_estimator(self):
        return KernelRidge(kernel="rbf") if self.estimator is None else self.estimator

    def fit(self, X, y, sample_weight=None):
        """Fit the inner estimator on the canonical neighbourhoods of X's atoms.

        Parameters
        ----------
        X : array-like of shape (n_systems, n_columns) or (n_systems, n_atoms, width)
            Systems in the layout of ``fields``; absent atoms (smaller systems) are
            all-NaN rows of the positions.
        y : array-like
            See ``target``.
        sample_weight : array-like of shape (n_systems,), optional
            Per-system weights (per-atom targets: every atom of a system gets its
            system's weight); the inner estimator must take ``sample_weight``.

        Returns
        -------
        self
        """
        self._validate_params()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the "
                             "target y is None")
        X = self._fit_layout(X)
        estimator = clone(self._get_estimator())
        params = {}
        if sample_weight is not None:
            if not has_fit_parameter(estimator, "sample_weight"):
                raise ValueError(f"{type(estimator).__name__} does not take sample_weight")
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        envs, features = self._environments(X, fit=True, sample_weight=sample_weight)
        if self.target == "sum":
            y = self._system_targets(y, len(X))
            kernel, kparams = kernel_parameters(estimator)
            self.kernel_ = (kernel, kparams)
            self.train_features_, self.train_systems_ = features, envs.system
            self.n_train_systems_ = len(X)
            K = system_kernel(features, envs.system, len(X), features, envs.system, len(X),
                              kernel, kparams, self.n_jobs)
            if sample_weight is not None:
                params["sample_weight"] = sample_weight
            self.estimator_ = estimator.set_params(kernel="precomputed").fit(K, y, **params)
            return self
        atom_y = self._atom_targets(y, envs)
        if self.target == "vector":
            atom_y = envs.to_local(atom_y)
        elif atom_y.shape[1] == 1:
            atom_y = atom_y[:, 0]
        if sample_weight is not None:
            params["sample_weight"] = sample_weight[envs.system]
        self.estimator_ = estimator.fit(features, atom_y, **params)
        return self

    def _system_targets(self, y, n_systems):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.shape != (n_systems,):
            raise ValueError(f"target='sum' takes one value per system, y of shape "
                             f"({n_systems},); got {y.shape}. Per-atom targets: "
                             "target='vector' or 'scalar'")
        if not np.all(np.isfinite(y)):
            raise NonFiniteInputError(f"y holds NaN or inf in "
                                      f"{first_indices(~np.isfinite(y))}")
        return y

    def _atom_targets(self, y, envs):
        """Per-atom targets of the present atoms, (A, w); clear errors for missing
        values at present atoms."""
        y = np.asarray(y, dtype=np.float64)
        S, n = envs.present.shape
        d = self.local_frames_.d
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim not in (2, 3) or y.shape[0] != S:
            raise ValueError(f"per-atom targets must have shape (n_systems, n_atoms * w) or "
                             f"(n_systems, n_atoms, w) with n_systems={S}, n_atoms={n}; got "
                             f"{y.shape}")
        size = int(np.prod(y.shape[1:]))
        width = d if self.target == "vector" else size // n
        if size != n * width or width == 0:
            expected = (f"{n * d} columns ({n} atoms x {d})" if self.target == "vector"
                        else f"a multiple of {n} columns ({n} atoms)")
            raise ValueError(f"target={self.target!r} needs y with {expected} per system; "
                             f"got {size}")
        self.target_width_ = width
        self.target_shape_ = tuple(y.shape[1:])
        atom_y = envs.per_atom(y, width)
        bad = ~np.all(np.isfinite(atom_y), axis=1)
        if np.any(bad):
            system, atom = envs.system[bad][0], envs.atom[bad][0]
            where = first_indices(np.unique(envs.system[bad]))
            raise NonFiniteInputError(
                f"y holds NaN or inf at present atoms in {where}: system {system}, atom "
                f"{atom}. Per-atom targets may be NaN only at absent atoms (all-NaN "
                "position rows)")
        return atom_y

    def predict(self, X):
        """Predict: per-atom outputs mapped back with each atom's frame, or system sums.

        Parameters
        ----------
        X : array-like of shape (n_systems, n_columns) or (n_systems, n_atoms, width)
            Systems to predict, in the layout seen in ``fit``; absent atoms are all-NaN
            position rows.

        Returns
        -------
        ndarray
            ``target="sum"``: (n_systems,). Per-atom targets: the shape of y in ``fit``
            for these systems, NaN at absent atoms.
        """
        X, envs, features = self._fitted_environments(X)
        if self.target == "sum":
            kernel, kparams = self.kernel_
            K = system_kernel(features, envs.system, len(X), self.train_features_,
                              self.train_systems_, self.n_train_systems_, kernel, kparams,
                              self.n_jobs)
            return self.estimator_.predict(K)
        if len(features):
            out = np.asarray(self.estimator_.predict(features), dtype=np.float64)
        else:       # no atom in any system: nothing to predict, NaN everywhere
            out = np.empty((0, self.target_width_))
        out = out.reshape(len(features), self.target_width_)
        if self.target == "vector":
            out = envs.from_local(out)
        return envs.per_system(out).reshape((len(X),) + self.target_shape_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        tags.target_tags.multi_output = self.target != "sum"
        return tags


class LocalFrameFeaturizer(TransformerMixin, _LocalFrameBase):
    # an assignment, not a bare string: a docstring built from parts is an expression
    __doc__ = """Invariant system features: per-atom canonical neighbourhoods, mapped by any
    transformer and pooled over the atoms of each system.

    The neighbourhoods and frames are those of :class:`LocalFrameRegressor`. Each
    atom's invariant features go through ``atom_transformer`` (e.g. ``Nystroem``,
    ``RBFSampler``, ``SplineTransformer``; fitted on the training atoms), and are summed
    (``pooling="sum"``: size-extensive, for energies) or averaged over the atoms of
    each system. Any regressor then fits additive invariant targets on the pooled
    features; the result is exactly invariant under rotations, reflections,
    translations and relabellings.

    Parameters
    ----------
    atom_transformer : transformer, default=None
        Feature map of single atoms; None: the canonical neighbourhood itself.
    pooling : {"sum", "mean"}, default="sum"
        How atoms are pooled; a system without atoms gets zeros.
    fields, group, cutoff, n_neighbors, first_vector, row_rule, cutoff_weight, encoding
        As for :class:`LocalFrameRegressor`.
    n_radial, radial_basis, angular_weight, standardize
        As for :class:`LocalFrameRegressor`.
    tol, n_jobs
        As for :class:`LocalFrameRegressor`.

    Attributes
    ----------
    atom_transformer_ : transformer or None
        The fitted atom transformer.
    n_features_out_ : int
    layout_ : Layout
    local_frames_ : LocalFrames
    n_features_in_ : int

    See Also
    --------
    LocalFrameRegressor : per-atom outputs and exact sum kernels.
    """ + _REFERENCES + """
    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.kernel_approximation import Nystroem
    >>> from mfa_sklearn import LocalFrameFeaturizer
    >>> X = np.random.default_rng(0).normal(scale=1.5, size=(20, 5, 3))
    >>> features = LocalFrameFeaturizer(atom_transformer=Nystroem(n_components=30,
    ...                                 random_state=0), cutoff=4.0, n_neighbors=4)
    >>> features.fit_transform(X).shape
    (20, 30)
    """

    _parameter_constraints = {
        **_LocalFrameBase._parameter_constraints,
        "atom_transformer": [HasMethods(["fit", "transform"]), None],
        "pooling": [StrOptions({"sum", "mean"})],
    }

    def __init__(self, atom_transformer=None, *, pooling="sum", fields=None, group="E(3)",
                 cutoff=5.0, n_neighbors=12, first_vector="nearest", row_rule="first_above",
                 cutoff_weight="cosine", encoding="density", n_radial=8,
                 radial_basis="scales", angular_weight=1.0, standardize=True, tol=None,
                 n_jobs=None):
        store_init_arguments(self, locals())

    def fit(self, X, y=None):
        """Fit the atom transformer on the canonical neighbourhoods of X's atoms.

        Parameters
        ----------
        X : array-like of shape (n_systems, n_columns) or (n_systems, n_atoms, width)
            Systems in the layout of ``fields``; absent atoms (smaller systems) are
            all-NaN rows of the positions.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self
        """
        self._validate_params()
        X = self._fit_layout(X)
        _, features = self._environments(X, fit=True)
        self.atom_transformer_ = None
        if self.atom_transformer is not None:
            self.atom_transformer_ = clone(self.atom_transformer).fit(features)
            features = self.atom_transformer_.transform(features[:1])
        self.n_features_out_ = features.shape[1]
        return self

    def transform(self, X):
        """Pooled invariant features of each system.

        Parameters
        ----------
        X : array-like of shape (n_systems, n_columns) or (n_systems, n_atoms, width)
            Systems to pool the features of, in the layout seen in ``fit``; absent
            atoms are all-NaN position rows.

        Returns
        -------
        ndarray of shape (n_systems, n_features_out_)
        """
        X, envs, features = self._fitted_environments(X)
        if not len(features):       # no atom in any system: every pooled sum is 0
            features = np.zeros((0, self.n_features_out_), dtype=features.dtype)
        elif self.atom_transformer_ is not None:
            features = self.atom_transformer_.transform(features)
        pooled = np.asarray(indicator(envs.system, len(X)) @ features)
        if self.pooling == "mean":
            count = np.bincount(envs.system, minlength=len(X))
            pooled /= np.maximum(count, 1)[:, None]
        return pooled.astype(X.dtype, copy=False)

    def get_feature_names_out(self, input_features=None):
        """``pooled0``, ``pooled1``, ..."""
        check_is_fitted(self)
        return np.asarray([f"pooled{i}" for i in range(self.n_features_out_)], dtype=object)
