"""Local minimal frames inside torch: atomic energy models with conservative forces.

:class:`LocalFrameAveraged` is the torch counterpart of
:class:`~mfa_sklearn.LocalFrameRegressor` with ``target="sum"``: every present atom of
every system gets its canonical neighbourhood (the same
:class:`~mfa_sklearn.local._environments.LocalFrames` code as the sklearn estimators,
run on tensors), an atom module maps each atom's invariant features to an atomic
energy, and the energies of a system's atoms add up to its energy. The forces
``-dE/dx`` come from autograd through the relative positions and the frames.

:class:`EnergyForceLoss` trains such a model on energies and forces together, as the
criterion of a skorch ``NeuralNetRegressor`` or in a plain loop; :func:`pack_targets`
puts both targets in one array, as skorch wants y.

Import these from :mod:`mfa_sklearn.torch`.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ._engine import fill_absent, find_absent, store_init_arguments
from ._submodule import build_submodule, check_mask, check_params
from .exceptions import NonFiniteInputError
from .groups._namespace import get_namespace, on_host
from .groups._selection import ROW_RULES
from .layout import parse_fields
from .local._environments import LocalFrames, local_group

__all__ = ["EnergyForceLoss", "LocalFrameAveraged", "pack_targets"]

_PARAMETER_CONSTRAINTS = {
    "fields": [dict, str, tuple, None],
    "group": [str],
    "cutoff": [Interval(Real, 0, None, closed="neither")],
    "n_neighbors": [Interval(Integral, 1, None, closed="left"), None],
    "first_vector": [StrOptions({"nearest", "weighted"})],
    "row_rule": [StrOptions(set(ROW_RULES))],
    "encoding": [StrOptions({"density", "rows"})],
    "n_radial": [Interval(Integral, 1, None, closed="left")],
    "radial_basis": [StrOptions({"scales", "shells", "exponentials"})],
    "angular": ["boolean"],
    "cutoff_weight": [StrOptions({"cosine"}), None],
    "tol": [Interval(Real, 0, 1, closed="neither"), None],
    "return_forces": ["boolean"],
}


class LocalFrameAveraged(nn.Module):
    """An atomic energy model on canonical local neighbourhoods, with forces.

    For every present atom ``a`` of every system, the neighbourhood (the atoms closer
    than ``cutoff``, at most ``n_neighbors`` nearest) is put in canonical form by its
    minimal frame under ``S_k x O(3)`` (``S_k x SO(3)`` for ``group="SE(3)"``), exactly
    as :class:`~mfa_sklearn.LocalFrameRegressor` does; ``atom_module`` maps the atom's
    invariant features to an atomic energy ``e_a``, and ``E = sum_a e_a`` per system.
    ``E`` is invariant under rotations, reflections, translations and relabellings of
    the atoms, to rounding, whatever the atom module; the forces ``F = -dE/dx`` are
    computed by autograd through the relative positions and the frames, so they are
    conservative and exactly equivariant.

    Parameters
    ----------
    atom_module : torch.nn.Module instance or subclass
        Maps per-atom features ``(A, p)`` to atomic energies ``(A,)`` or ``(A, 1)``. A
        class is built with the ``atom_module__*`` arguments, and gets
        ``n_features_in=p`` if its constructor takes that argument and it is not given
        (so skorch's ``module__atom_module=MyMLP`` needs no feature count).
    fields : dict, str, tuple or None, default=None
        Layout of each system's atom rows, e.g. ``{"pos": "point", "Z": "scalar"}``: one
        point field (positions), any scalar fields (species) and vector fields. None:
        every column a position coordinate.
    group : {"E(3)", "SE(3)"} or "E(d)", "SE(d)", default="E(3)"
        Symmetry of whole systems; S_n over the atoms is always part of it.
    cutoff : float, default=5.0
        Neighbours are the atoms closer than this. Atoms within ``sqrt(eps)`` (relative)
        below it are left out, so that one at the cutoff distance (a lattice constant)
        is out whatever the rounding of its distance; its cutoff weight is zero anyway.
    n_neighbors : int or None, default=12
        At most this many nearest neighbours per atom (None: every atom within the
        cutoff, up to one fewer than the atoms of a system). With ``encoding="rows"`` it
        fixes the feature width p. Cover the range of the interactions: on 19-atom
        clusters, 12 neighbours kept 12 of 18 other atoms within the cutoff, and this
        model's energies came out 4.7 times worse than with all of them.
    first_vector : {"nearest", "weighted"}, default="nearest"
        The first frame vector: always the nearest neighbour, or the neighbours' mean
        direction weighted by the smooth cutoff (where it is at least half the largest
        neighbour distance long; else the nearest neighbour, as in symmetric
        environments). The weighted direction moves less when neighbours swap order
        (smoother energies and forces), but it is a second frame-defining field, which
        about doubles the cost of the frames; on EMT Cu13 clusters both gave the same
        errors.
    row_rule : {"first_above", "pivoted", "first"}, default="first_above"
        Row selection rule of the frames.
    encoding : {"density", "rows"}, default="density"
        Per-atom features: the neighbour density in the canonical frame, or the
        canonical rows in order (see :class:`~mfa_sklearn.LocalFrameRegressor`).
    n_radial : int, default=8
        Radial functions of ``encoding="density"``.
    radial_basis : {"shells", "scales", "exponentials"}, default="shells"
        The radial functions (see :class:`~mfa_sklearn.LocalFrameRegressor`):
        Gaussians of one width centred over ``[0, cutoff]``, Gaussians centred on
        the atom with widths from 0.15 to 1.5 cutoffs, or exponentials with decay
        lengths from 0.05 to 1 cutoff. The atom module sees the features
        unstandardized, where the shells' values of order 1 train better than the
        scales' (from about 0 to the number of neighbours): on EMT Cu13
        (``examples/atoms_torch.py``, 25 epochs) 0.75 against 1.2 meV/atom and 0.017
        against 0.022 eV/A. The scikit-learn estimators standardize their features
        and default to "scales".
    angular : bool, default=True
        Whether the features of ``encoding="density"`` include its angular channels
        (the monomials of degree 1 and 2 of the neighbour directions in the canonical
        frame). False keeps the centre's own fields and the radial channels alone,
        radial symmetry functions per neighbour field: a model of distances, for
        potentials that depend on distances alone (the counterpart of
        :class:`~mfa_sklearn.LocalFrameRegressor`'s ``angular_weight=0``). An
        :class:`~mfa_sklearn.torch.AtomMLP` on EMT Cu13 clusters, trained by
        :func:`~mfa_sklearn.torch.fit_energy_forces` for 60 CPU s: 0.037 against
        0.137 meV/atom (validation), its 17 inputs against 161 also making every
        iteration cheaper. ``encoding="rows"`` has no angular channels to leave out.
    cutoff_weight : {"cosine"} or None, default="cosine"
        Per-neighbour feature ``0.5 (cos(pi r / cutoff) + 1)``.
    tol : float, optional
        Relative rank tolerance of the frames (default ``sqrt(eps)`` of X's dtype).
    return_forces : bool, default=False
        Whether ``forward`` returns ``(energy, forces)`` instead of the energy (for
        training on both, e.g. with :class:`EnergyForceLoss`).
    **kwargs
        ``atom_module__<name>=value`` arguments of the atom module class.

    Attributes
    ----------
    atom_module : torch.nn.Module
        The atom module (a registered submodule, so its parameters are trained).
    n_features_in : int
        Width p of the per-atom features.

    See Also
    --------
    mfa_sklearn.LocalFrameRegressor : the same neighbourhoods for sklearn estimators.
    EnergyForceLoss : a loss on energies and forces together.
    fit_energy_forces : full-batch L-BFGS training on cached features and their
        Jacobians (the fast route for systems of up to a few dozen atoms).

    Notes
    -----
    **Input.** X is a float tensor of systems in the layout of the sklearn estimators:
    flat ``(B, C)`` (field-major column blocks) or ``(B, n, W)``; an atom is absent
    where its positions are all NaN, or where ``mask`` (B, n) is False. The energy of a
    system without atoms is NaN; forces are NaN at absent atoms. Neighbour lists and
    frames are computed in float64; the neighbourhoods, and so every decision on them
    (ties at the k-th neighbour and at the cutoff, the frames' tolerances), are in X's
    dtype and allow for its rounding, as the estimators' do. The features are computed
    in X's dtype (float32 X: float32 features, energies and forces, invariant and
    equivariant to float32 rounding).

    **Where it runs.** On an accelerator everything runs on X's device, where
    gradients flow through it: the neighbour lists, the neighbourhoods' colours,
    canonical row orders and frames, the features, the atom module and the sums. The
    host decides only the neighbourhoods whose colours tie (symmetric environments;
    168 of the 260,000 atoms of ``benchmarks/bench_torch_local.py``'s jittered 13-atom
    clusters), as the scikit-learn path does, and systems of more than 96 atoms, whose
    neighbours a k-d tree finds. A forward pass waits for the device twice, for the
    number of present atoms and for whether any neighbourhood needs the host; it copies
    no data back unless one does. On a CPU the host's code decides (it is as fast
    there), and the frames are recomputed from the chosen rows with gradients.

    **Smoothness.** Where a neighbour enters the cutoff or two neighbours swap order,
    the energy jumps slightly (entering neighbours count little through the cosine
    cutoff weight, and the weighted first frame vector moves little). At symmetric
    environments (an atom inside a perfect icosahedron) the energy is continuous but
    not differentiable: the forces there are the gradient of the mean canonical input
    of the stabilizer's elements, the mean of the branches' gradients, so they keep the
    symmetry (equivariant) but are not the limit of nearby forces.

    **Training.** Frames depend on the positions only; a training loop calls the model
    on every batch (forces need the graph through the frames anyway)::

        model = LocalFrameAveraged(mlp, fields=fields, cutoff=5.0, n_neighbors=12,
                                   return_forces=True)
        loss_fn = EnergyForceLoss(force_weight=10.0)
        for X, y in batches:                     # y = pack_targets(energy, forces)
            loss = loss_fn(model(X), y)
            optimizer.zero_grad(); loss.backward(); optimizer.step()

    In training mode the forces keep their graph (``create_graph``), so the force
    loss trains the atom module; in eval mode they are detached. For small systems,
    :func:`~mfa_sklearn.torch.fit_energy_forces` with an
    :class:`~mfa_sklearn.torch.AtomMLP` trains much further per CPU second: the
    features and their derivatives are computed once, then full-batch L-BFGS.

    References
    ----------
    .. [1] Lin, Helwig, Gui and Ji, "Equivariance via Minimal Frame Averaging for More
       Symmetries and Efficiency", ICML 2024, arXiv:2406.07598.
    .. [2] Behler, Parrinello. Generalized neural-network representation of
       high-dimensional potential-energy surfaces. Phys. Rev. Lett. 98, 2007.

    Examples
    --------
    >>> import torch
    >>> from mfa_sklearn.torch import AtomMLP, LocalFrameAveraged
    >>> _ = torch.manual_seed(0)
    >>> model = LocalFrameAveraged(AtomMLP, atom_module__hidden=(32,), cutoff=4.0)
    >>> model.n_features_in                      # 8 radial x 10 angular functions
    80
    >>> X = 2.0 * torch.randn(5, 13, 3)                 # 5 systems of 13 atoms, float32
    >>> model(X).shape, model.forces(X).shape
    (torch.Size([5]), torch.Size([5, 13, 3]))
    >>> Q = torch.linalg.qr(torch.randn(3, 3)).Q         # a rotation or a reflection
    >>> torch.allclose(model.forces(X @ Q.T), model.forces(X) @ Q.T, atol=1e-5)
    True
    """

    def __init__(self, atom_module, *, fields=None, group="E(3)", cutoff=5.0,
                 n_neighbors=12, first_vector="nearest", row_rule="first_above",
                 cutoff_weight="cosine", encoding="density", n_radial=8,
                 radial_basis="shells", angular=True, tol=None, return_forces=False,
                 **kwargs):
        super().__init__()
        store_init_arguments(self, locals(), leave=("atom_module", "kwargs"))
        check_params(self, _PARAMETER_CONSTRAINTS)
        if not angular and encoding != "density":
            raise ValueError(f"angular=False leaves out the angular channels of "
                             f"encoding='density'; encoding={encoding!r} has none")
        if n_neighbors is None and encoding == "rows":
            raise ValueError("encoding='rows' gives the atom module one row per neighbour, "
                             "so it needs an int n_neighbors (the feature width); "
                             "n_neighbors=None suits encoding='density'")
        self._system_group = local_group(group)[0]
        self._specs = {}
        self.atom_module = build_submodule(
            atom_module, kwargs, owner="LocalFrameAveraged", name="atom_module",
            fill={"n_features_in": lambda: self.n_features_in})

    # ---------------------------------------------------------------- neighbourhoods
    def local_frames(self, sample_shape):
        """The :class:`~mfa_sklearn.local._environments.LocalFrames` of systems of
        shape ``sample_shape`` (``X.shape[1:]``); clear errors for bad layouts."""
        sample_shape = tuple(int(s) for s in sample_shape)
        if sample_shape not in self._specs:
            self._specs[sample_shape] = LocalFrames.resolve(
                self.group, self.fields, sample_shape, cutoff=float(self.cutoff),
                n_neighbors=None if self.n_neighbors is None else int(self.n_neighbors),
                first_vector=self.first_vector,
                row_rule=self.row_rule, cutoff_weight=self.cutoff_weight)
        return self._specs[sample_shape]

    @property
    def n_features_in(self):
        """Width p of the per-atom features (from the features of a lone atom)."""
        width = sum(f.width for f in parse_fields(self.fields, self._system_group))
        lone = np.zeros((1, 1, width))
        return int(self.features_of(self.local_frames((1, width)).environments(lone))
                   .shape[1])

    def environments(self, X, mask=None):
        """The canonical neighbourhoods of the present atoms of X, on X's device.

        Parameters
        ----------
        X : torch.Tensor of shape (B, C) or (B, n, W)
        mask : bool torch.Tensor of shape (B, n), optional
            True for present atoms (default: atoms whose positions are not all NaN).

        Returns
        -------
        Environments or None
            In X's dtype (float32 or float64; others as float64), whose rounding the
            decisions (neighbour ties, frame tolerances) allow for, as the estimators'
            do; its ``features(encoding, n_radial)`` are the per-atom features
            (A, p) (see :meth:`atom_features`), ``system`` the system of each atom. None
            where X has no present atom at all.
        """
        if not isinstance(X, torch.Tensor) or not torch.is_floating_point(X):
            dtype = f" of {X.dtype}" if hasattr(X, "dtype") else ""
            raise TypeError(f"X must be a floating torch.Tensor; got "
                            f"{type(X).__name__}{dtype}")
        if X.ndim not in (2, 3):
            raise ValueError(f"X must be 2-D (n_systems, n_columns) or 3-D (n_systems, "
                             f"n_atoms, width); got shape {tuple(X.shape)}")
        spec = self.local_frames(X.shape[1:])
        if X.dtype not in (torch.float32, torch.float64):
            X = X.to(torch.float64)
        if mask is None:
            # on an accelerator, the present atoms as computed: the neighbourhoods
            # count them anyway (no wait here for whether any is absent)
            present = find_absent(X, spec.layout, spec.positions, sync=False)
        else:
            present = check_mask(mask, X, spec.layout.n_rows, ("n_systems", "n_atoms"))
            X = fill_absent(X, spec.layout, present)
            # NaN left in present atoms: a clear error (partly NaN rows raise inside);
            # on the host only, so that an accelerator does not wait for the scan
            if on_host(X) and find_absent(X, spec.layout, spec.positions) is not None:
                raise NonFiniteInputError(
                    f"mask marks atoms present whose field {spec.positions!r} is all NaN; "
                    "mark them absent (False) or give their positions")
        if len(X) == 0 or (on_host(X) and present is not None
                           and not bool(torch.any(present))):
            return None
        envs = spec.environments(X, tol=self.tol, present=present)
        return None if len(envs.system) == 0 else envs

    def atom_features(self, X, mask=None):
        """The per-atom features the atom module sees, (A, p) in float64 (None for a
        batch without atoms), atoms in system-major order."""
        envs = self.environments(X, mask)
        return None if envs is None else self.features_of(envs)

    def features_of(self, envs, dtype=None):
        """The per-atom features (A, p) of :meth:`environments`, in ``dtype`` (default
        float64), without the angular channels where ``angular`` is False."""
        return envs.features(self.encoding, self.n_radial, radial_basis=self.radial_basis,
                             dtype=get_namespace(envs.canonical).float64 if dtype is None
                             else dtype,
                             angular=self.angular)

    def atomic_energies(self, features):
        """The atom module's energies ``(A,)`` of features ``(A, p)``, with a clear
        error for any other output shape than ``(A,)`` or ``(A, 1)``."""
        out = self.atom_module(features)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim != 1 or out.shape[0] != features.shape[0]:
            raise ValueError(f"atom_module must map features ({features.shape[0]}, "
                             f"{features.shape[1]}) to atomic energies of shape "
                             f"({features.shape[0]},) or ({features.shape[0]}, 1); got "
                             f"{tuple(out.shape)}")
        return out

    # ------------------------------------------------------------------- energies
    def energy(self, X, mask=None):
        """Energies of the systems, ``(B,)`` in X's dtype (NaN without atoms)."""
        envs = self.environments(X, mask)
        B = X.shape[0]
        if envs is None:
            return torch.full((B,), float("nan"), dtype=X.dtype, device=X.device)
        out = self.atomic_energies(self.features_of(envs, X.dtype))
        system = torch.as_tensor(envs.system, device=X.device)
        energy = torch.zeros(B, dtype=out.dtype, device=X.device).index_add(0, system, out)
        # index_add, not bincount, which waits for the device to size its output
        empty = torch.zeros(B, dtype=torch.int64, device=X.device).index_add(
            0, system, torch.ones_like(system)) == 0
        energy = torch.where(empty, torch.full_like(energy, float("nan")), energy)
        return energy.to(X.dtype)

    def energy_and_forces(self, X, mask=None, *, create_graph=None):
        """Energies ``(B,)`` and forces ``-dE/dx`` in the positions' layout.

        Parameters
        ----------
        X : torch.Tensor of shape (B, C) or (B, n, W)
        mask : bool torch.Tensor of shape (B, n), optional
        create_graph : bool, optional
            Keep the graph of the forces (to train on them). Default: in training
            mode, where gradients are enabled.

        Returns
        -------
        energy : torch.Tensor of shape (B,)
        forces : torch.Tensor of shape (B, n * d) for 2-D X, (B, n, d) for 3-D X
            NaN at absent atoms; detached unless ``create_graph``.
        """
        if create_graph is None:
            create_graph = self.training and torch.is_grad_enabled()
        spec = self.local_frames(X.shape[1:])
        with torch.enable_grad():
            leaf = X if X.requires_grad else X.detach().requires_grad_(True)
            energy = self.energy(leaf, mask)
            if energy.requires_grad:
                (grad,) = torch.autograd.grad(energy, leaf, torch.ones_like(energy),
                                              create_graph=create_graph)
            else:   # no atoms anywhere: nothing depends on X
                grad = torch.zeros_like(leaf)
        forces = -spec.layout.split(grad)[spec.positions]          # (B, n, d)
        if mask is None:
            present = ~torch.all(torch.isnan(spec.layout.split(X)[spec.positions]), dim=-1)
        else:
            present = mask.to(X.device)
        forces = torch.where(present[..., None], forces, torch.full_like(forces, np.nan))
        if X.ndim == 2:
            forces = forces.reshape(X.shape[0], -1)
        if not create_graph:
            energy, forces = energy.detach(), forces.detach()
        return energy, forces

    def forces(self, X, mask=None):
        """Forces ``-dE/dx`` (B, n * d) or (B, n, d), NaN at absent atoms."""
        return self.energy_and_forces(X, mask)[1]

    def forward(self, X, mask=None):
        """Energies ``(B,)``, or ``(energy, forces)`` with ``return_forces``."""
        if self.return_forces:
            return self.energy_and_forces(X, mask)
        return self.energy(X, mask)

    def extra_repr(self):
        return (f"fields={self.fields!r}, group={self.group!r}, cutoff={self.cutoff!r}, "
                f"n_neighbors={self.n_neighbors!r}, return_forces={self.return_forces!r}")


def pack_targets(energy, forces):
    """Energies and forces in one float32 array ``(B, 1 + n d)``, as skorch takes y.

    Parameters
    ----------
    energy : array-like of shape (B,)
    forces : array-like of shape (B, n * d) or (B, n, d)
        NaN at absent atoms.

    Returns
    -------
    ndarray of shape (B, 1 + n * d), float32
        Column 0 the energy, then the forces flattened atom-major.

    Examples
    --------
    >>> import numpy as np
    >>> from mfa_sklearn.torch import pack_targets
    >>> y = pack_targets(np.array([-1.5, -2.0]), np.zeros((2, 3, 3)))  # 2 systems, 3 atoms
    >>> y.shape, y.dtype
    ((2, 10), dtype('float32'))
    """
    energy = np.asarray(energy, dtype=np.float32).reshape(-1, 1)
    forces = np.asarray(forces, dtype=np.float32)
    if forces.ndim not in (2, 3) or len(forces) != len(energy):
        raise ValueError(f"energy and forces must describe the same systems: energy "
                         f"{len(energy)} values, forces of shape {forces.shape} (expected "
                         f"({len(energy)}, n * d) or ({len(energy)}, n, d))")
    return np.concatenate([energy, forces.reshape(len(energy), -1)], axis=1)


class EnergyForceLoss(nn.Module):
    """Mean squared error on energies plus ``force_weight`` times that on forces.

    ``loss = mean_B (E - E_ref)^2 + force_weight * mean (F - F_ref)^2``, the force mean
    over the components of present atoms (NaN in the reference marks absent atoms).
    Use it as a skorch criterion (``criterion=EnergyForceLoss,
    criterion__force_weight=10.0``) with a :class:`LocalFrameAveraged` module that has
    ``return_forces=True`` and ``y = pack_targets(energy, forces)``, or in a plain loop.

    Parameters
    ----------
    force_weight : float, default=1.0
        Weight of the force term (0: energies only).

    Examples
    --------
    >>> import torch
    >>> from mfa_sklearn.torch import EnergyForceLoss
    >>> loss = EnergyForceLoss(force_weight=10.0)
    >>> y_true = torch.tensor([[1.0, 0.5, float("nan")]])  # energy, then forces (NaN: absent)
    >>> loss((torch.tensor([2.0]), torch.tensor([[0.0, 0.0]])), y_true)  # 1 + 10 * 0.25
    tensor(3.5000)
    """

    def __init__(self, force_weight=1.0):
        super().__init__()
        if not isinstance(force_weight, Real) or not force_weight >= 0:
            raise ValueError(f"force_weight must be a number >= 0; got {force_weight!r}")
        self.force_weight = float(force_weight)

    def forward(self, y_pred, y_true):
        """The loss of predictions against packed targets.

        Parameters
        ----------
        y_pred : torch.Tensor of shape (B,), or tuple (energy, forces)
            A :class:`LocalFrameAveraged` output.
        y_true : torch.Tensor of shape (B, 1 + n d), or (B,) / (B, 1) for energies
            only.

        Returns
        -------
        torch.Tensor
            The scalar loss.
        """
        energy, forces = y_pred if isinstance(y_pred, tuple) else (y_pred, None)
        y_true = y_true.reshape(len(y_true), -1).to(energy.dtype)
        reference = y_true[:, 0]
        if forces is not None and y_true.shape[1] > 1:
            target = y_true[:, 1:]
            forces = forces.reshape(len(forces), -1)
            if target.shape != forces.shape:
                raise ValueError(f"y holds {target.shape[1]} force columns per system, but "
                                 f"the model gives {forces.shape[1]}; pack them with "
                                 "pack_targets(energy, forces)")
            there = ~torch.isnan(target)
            diff = torch.where(there, forces - torch.nan_to_num(target),
                               torch.zeros_like(forces))
            force_loss = (diff ** 2).sum() / there.sum().clamp(min=1)
        else:
            force_loss = energy.new_zeros(())
        if forces is None and y_true.shape[1] > 1:
            raise ValueError("y holds forces, but the model returns energies only; build "
                             "it with return_forces=True")
        return ((energy - reference) ** 2).mean() + self.force_weight * force_loss
