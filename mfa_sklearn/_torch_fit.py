"""Fast training of local-frame energy models: cached features and their Jacobians.

While a :class:`~mfa_sklearn.torch.LocalFrameAveraged` model trains, the positions of
the training systems do not move, so neither do the per-atom features the atom module
sees, nor their derivatives with respect to the positions. :func:`fit_energy_forces`
computes both once (the Jacobian by forward-mode autograd through the frames, one
pass per position coordinate) and then trains the atom module alone: energies are
sums of its outputs, forces the cached Jacobians contracted with its input gradients,
exactly the energies and forces of the full model. Every optimizer step then costs an
MLP and a few tensor products instead of neighbourhoods and frames, which makes a
full-batch quasi-Newton method (L-BFGS) affordable.

:class:`AtomMLP` is an atom module made for it: standardized features, an energy
offset linear in the centre's own scalar fields (per-species reference energies) and
an output scale, all buffers set from the training data by :func:`fit_energy_forces`.
With the activations it knows, it gives its input gradients in its forward pass
(:meth:`AtomMLP.energies_and_gradients`), so that a loss on the forces costs one
backward pass instead of a double backward; any other atom module is differentiated
by autograd.
"""

import copy
import math
import time
from numbers import Integral, Real

import numpy as np
import torch
import torch.autograd.forward_ad as forward_ad
from torch import nn
from torch.autograd.function import once_differentiable

from ._torch_local import EnergyForceLoss, LocalFrameAveraged

__all__ = ["AtomMLP", "fit_energy_forces"]


class AtomMLP(nn.Module):
    """Atomic energies from local-frame features: a standardized MLP plus an offset.

    ``e = b + w . f + s * (mlp(z) + c . a(R z + r))`` for the per-atom features ``f``
    and ``z = (f - mean) / scale``: ``mean`` and ``scale`` standardize the features,
    ``b + w . f`` is a fixed energy offset (``w`` nonzero only on the centre's own
    scalar fields, such as the species), and ``s`` puts the MLP's output, of order 1
    at initialization, on the scale of the energies. All four are buffers (saved with
    the model, not trained), identity and zero until :meth:`adapt` or
    :func:`fit_energy_forces` sets them from training data.

    ``c . a(R z + r)`` is an optional head of ``n_random_features`` random features:
    the activation ``a`` of fixed random projections ``R`` and shifts ``r`` (drawn
    once, at construction, from torch's global generator), weighted by ``c``. All
    three are buffers: ``c`` is zero (and the head costs nothing) until
    :func:`fit_energy_forces` solves it with the output layer, energies and forces
    being affine in both (``refit_output``). It gives that exact solve many more
    columns than the last hidden layer, which gradient training need not carry.

    Parameters
    ----------
    n_features_in : int
        Width p of the features (filled in by :class:`LocalFrameAveraged` when this
        class is its ``atom_module``).
    hidden : tuple of int, default=(64, 64)
        Widths of the hidden layers.
    activation : torch.nn.Module subclass, default=torch.nn.SiLU
        Activation after each hidden layer and of the random features; smooth ones
        give smooth forces.
    n_random_features : int, default=0
        Width m of the random-feature head (0: none). EMT Cu6..Cu13, 32 x 32 GELU
        MLP, 240 CPU s of :func:`fit_energy_forces` (the solve's 26 s included): 400
        features took the validation energy MAE from 0.0088 to 0.0030 meV/atom, the
        force MAE from 0.00019 to 0.000062 eV/A. The solve's cost grows as ``m^2``.
    random_scale : float, default=1.0
        Standard deviation of the shifts ``r`` and of the projections of the
        standardized features, ``R z`` (the entries of ``R`` have standard deviation
        ``random_scale / sqrt(p)``).

    Attributes
    ----------
    net : torch.nn.Sequential
        The MLP (its parameters are the trained ones).
    feature_mean, feature_scale, offset_weight : torch.Tensor of shape (p,)
    offset_bias, energy_scale : torch.Tensor of shape ()
    random_weight : torch.Tensor of shape (m, p)
        The projections ``R``.
    random_bias, random_output : torch.Tensor of shape (m,)
        The shifts ``r`` and the weights ``c`` of the random features.
    random_activation : torch.nn.Module
        Their activation ``a``.

    Examples
    --------
    >>> import torch
    >>> from mfa_sklearn.torch import AtomMLP
    >>> AtomMLP(5, hidden=(8,))(torch.zeros(3, 5)).shape
    torch.Size([3])
    """

    def __init__(self, n_features_in, hidden=(64, 64), activation=nn.SiLU,
                 n_random_features=0, random_scale=1.0):
        super().__init__()
        if not isinstance(n_features_in, Integral) or n_features_in < 1:
            raise ValueError(f"n_features_in must be an int >= 1; got {n_features_in!r}")
        hidden = tuple(hidden)
        if not all(isinstance(h, Integral) and h >= 1 for h in hidden):
            raise ValueError(f"hidden must be a tuple of ints >= 1; got {hidden!r}")
        if not isinstance(n_random_features, Integral) or n_random_features < 0:
            raise ValueError(f"n_random_features must be an int >= 0; got "
                             f"{n_random_features!r}")
        if (not isinstance(random_scale, Real) or not math.isfinite(random_scale)
                or random_scale <= 0):
            raise ValueError(f"random_scale must be a number > 0; got {random_scale!r}")
        layers, width = [], int(n_features_in)
        for h in hidden:
            layers += [nn.Linear(width, int(h)), activation()]
            width = int(h)
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))
        p = int(n_features_in)
        self.register_buffer("feature_mean", torch.zeros(p))
        self.register_buffer("feature_scale", torch.ones(p))
        self.register_buffer("offset_weight", torch.zeros(p))
        self.register_buffer("offset_bias", torch.zeros(()))
        self.register_buffer("energy_scale", torch.ones(()))
        # drawn after the MLP's layers: without the head, the same MLP as before it
        m = int(n_random_features)
        self.random_activation = activation()
        self.register_buffer("random_weight", torch.randn(m, p) * (random_scale / p ** 0.5))
        self.register_buffer("random_bias", torch.randn(m) * random_scale)
        self.register_buffer("random_output", torch.zeros(m))

    @property
    def random_head_active(self):
        """Whether the random-feature head is evaluated: on the host, where some weight
        ``c`` is nonzero; on accelerators, wherever it has features (asking the device
        whether ``c`` is zero would stall it on every call)."""
        c = self.random_output
        if c.device.type != "cpu":
            return c.numel() > 0
        return bool(c.any())

    def standardize(self, features):
        """The standardized features ``z = (f - mean) / scale`` ``(A, p)``."""
        return (features - self.feature_mean) / self.feature_scale

    def random_projection(self, z, columns=slice(None)):
        """The random features before their activation, ``R z + r`` ``(A, m)``, of
        standardized features ``z`` ``(A, p)``; with ``columns``, that slice of them."""
        return z @ self.random_weight[columns].T + self.random_bias[columns]

    def random_features(self, z, columns=slice(None)):
        """The random features ``a(R z + r)`` ``(A, m)`` of standardized features
        ``z`` ``(A, p)``; with ``columns``, those of that slice of them alone."""
        return self.random_activation(self.random_projection(z, columns))

    def forward(self, features):
        """Atomic energies ``(A,)`` of features ``(A, p)``."""
        z = self.standardize(features)
        out = self.net(z)[:, 0]
        if self.random_head_active:
            out = out + self.random_features(z) @ self.random_output
        return self.offset_bias + features @ self.offset_weight + self.energy_scale * out

    @property
    def explicit_gradient(self):
        """Whether :meth:`energies_and_gradients` can serve this MLP: every activation
        (the random features' too) is one whose first two derivatives it knows (GELU
        with ``approximate="none"``, SiLU, Softplus, Tanh)."""
        return all(_derivatives_known(layer)
                   for layer in (*self.net[1::2], self.random_activation))

    def energies_and_gradients(self, features):
        """Atomic energies ``(A,)`` and their gradients ``(A, p)`` with respect to the
        features, both in one pass.

        The gradient is the chain rule written out,
        ``w + s / scale * (W1^T (a1' * W2^T (a2' * ... w_out)) + R^T (a' * c))`` with
        ``a'`` the activations' slopes at the forward pass (the last term only with
        an active random-feature head), so a loss on it needs one backward
        pass where ``torch.autograd.grad(..., create_graph=True)`` needs the
        activations' double backward (EMT Cu6..Cu13, 14370 atoms, hidden (32, 32),
        GELU: 28 ms for both passes, against 38). Both equal :meth:`forward` and its
        autograd gradient to rounding.

        Parameters
        ----------
        features : torch.Tensor of shape (A, p)

        Returns
        -------
        energy : torch.Tensor of shape (A,)
        gradient : torch.Tensor of shape (A, p)
        """
        if not self.explicit_gradient:
            raise ValueError("energies_and_gradients knows the derivatives of GELU "
                             "(approximate='none'), SiLU, Softplus and Tanh only; got "
                             + ", ".join(repr(layer) for layer in self.net[1::2]))
        z = standardized = self.standardize(features)
        slopes = []
        for linear, activation in zip(self.net[:-1:2], self.net[1::2]):
            z, slope = _Activated.apply(linear(z), activation)
            slopes.append((linear.weight, slope))
        last = self.net[-1]
        out = last(z)[:, 0]
        gradient = last.weight
        for weight, slope in reversed(slopes):
            gradient = (gradient * slope) @ weight
        if self.random_head_active:
            value, slope = _Activated.apply(self.random_projection(standardized),
                                            self.random_activation)
            out = out + value @ self.random_output
            gradient = gradient + (slope * self.random_output) @ self.random_weight
        energy = self.offset_bias + features @ self.offset_weight + self.energy_scale * out
        gradient = self.offset_weight + gradient * (self.energy_scale / self.feature_scale)
        return energy, gradient.expand_as(features)

    @torch.no_grad()
    def adapt(self, features, system, energy, offset_columns=()):
        """Set the buffers from the training atoms.

        Parameters
        ----------
        features : torch.Tensor of shape (A, p)
            Features of every atom of the training systems.
        system : torch.Tensor of shape (A,)
            The system of each atom, in ``range(len(energy))``.
        energy : torch.Tensor of shape (B,)
            Energies of the training systems.
        offset_columns : sequence of int, default=()
            Feature columns the offset may depend on linearly (the centre's own
            scalar fields); the offset is the least-squares fit of the energies by
            ``sum_atoms (b + w . f[offset_columns])``, exact per-species reference
            energies for one or two species coded by one number.

        Returns
        -------
        self

        Notes
        -----
        The random-feature weights ``c`` go back to zero: they were solved for the
        former standardization.
        """
        features, energy = features.to(self.feature_mean), energy.to(self.feature_mean)
        mean, scale = features.mean(0), features.std(0, correction=0)
        self.feature_mean.copy_(mean)
        self.feature_scale.copy_(torch.where(scale > 1e-12 * scale.max(), scale,
                                             torch.ones_like(scale)))
        columns = torch.as_tensor(list(offset_columns), dtype=torch.long,
                                  device=features.device)
        design = torch.cat([torch.ones_like(features[:, :1]), features[:, columns]], 1)
        pooled = torch.zeros((len(energy), design.shape[1]), dtype=design.dtype,
                             device=design.device).index_add(0, system, design)
        solution = torch.linalg.lstsq(pooled.cpu(), energy.cpu()[:, None],
                                      driver="gelsd").solution[:, 0].to(design)
        self.offset_bias.copy_(solution[0])
        self.offset_weight.zero_()
        self.offset_weight[columns] = solution[1:]
        counts = torch.bincount(system, minlength=len(energy)).clamp(min=1)
        spread = ((energy - pooled @ solution) / counts).std(correction=0)
        # residuals at the rounding level of the energies: nothing left to scale to
        tiny = 1e-12 * (energy.abs() / counts).max()
        self.energy_scale.copy_(spread if spread > tiny else torch.ones_like(spread))
        self.random_output.zero_()
        return self


# Values, slopes and curvatures (s, s', s'') of activation modules at h, the value from
# the slope's terms where it saves a pass (GELU's erf)
def _gelu(activation, h):
    # in place where a temporary is free: allocating one costs about as much as a product
    squared = h * h
    density = squared.mul(-0.5).exp_().mul_((2 * torch.pi) ** -0.5)
    cdf = torch.special.ndtr(h)
    slope = torch.addcmul(cdf, h, density)
    return h * cdf, slope, density.mul_(squared.neg_().add_(2))


def _silu(activation, h):
    sigmoid = torch.sigmoid(h)
    rest = 1 - sigmoid
    return (h * sigmoid, sigmoid * (1 + h * rest),
            sigmoid * rest * (2 + h * (rest - sigmoid)))


def _softplus(activation, h):
    # torch's softplus is the identity where beta h > threshold
    linear = activation.beta * h > activation.threshold
    sigmoid = torch.sigmoid(activation.beta * h)
    return (activation(h), torch.where(linear, torch.ones_like(h), sigmoid),
            torch.where(linear, torch.zeros_like(h),
                        activation.beta * sigmoid * (1 - sigmoid)))


def _tanh(activation, h):
    value = torch.tanh(h)
    slope = 1 - value * value
    return value, slope, -2 * value * slope


_DERIVATIVES = {nn.GELU: _gelu, nn.SiLU: _silu, nn.Softplus: _softplus, nn.Tanh: _tanh}


def _derivatives_known(activation):
    return (type(activation) in _DERIVATIVES
            and getattr(activation, "approximate", "none") == "none")


class _Activated(torch.autograd.Function):
    """``(s(h), s'(h))`` of an activation module s; the backward pass uses ``s'`` and
    ``s''``, saved by the forward one."""

    @staticmethod
    def forward(ctx, h, activation):
        value, slope, curvature = _DERIVATIVES[type(activation)](activation, h)
        ctx.save_for_backward(slope, curvature)
        return value, slope

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_value, grad_slope):
        slope, curvature = ctx.saved_tensors
        return grad_value * slope + grad_slope * curvature, None


class _Cache:
    """Features ``(A, p)`` of the present atoms of X, the system of each atom, and the
    Jacobians of the features with respect to the positions, by number k of present
    atoms: ``(systems, k p, k d)`` for the systems of k atoms, their atoms' features
    (in system-major order) by their present atoms' coordinates. Forces are then one
    batched product per k; as ``(A, p, n d)``, one product per atom over all ``n d``
    coordinates, absent atoms' zeros included, the forces and their backward pass
    took 12.6 ms against 9.4 (EMT Cu6..Cu13, 14370 atoms, 17 features)."""

    def __init__(self, model, X, dtype, jacobian_dtype):
        spec = model.local_frames(X.shape[1:])
        X = X.detach().to(torch.float64)
        envs = model.environments(X)
        if envs is None:
            raise ValueError("X holds no present atom")
        self.n_systems = X.shape[0]
        self.system = torch.as_tensor(envs.system, device=X.device)
        self.features = model.features_of(envs).to(dtype)
        positions = spec.layout.split(X)[spec.positions]
        n, d = positions.shape[1:]
        self.n_coordinates = n * d
        present = torch.as_tensor(envs.present, device=X.device)
        jacobian = torch.zeros(self.features.shape + (n * d,), dtype=jacobian_dtype,
                               device=X.device)
        for j in range(n * d):
            if not bool(present[:, j // d].any()):
                continue        # absent everywhere: zero derivative
            tangent = {f.name: torch.zeros_like(part)
                       for f, part in zip(spec.layout.fields,
                                          spec.layout.split(X).values())}
            tangent[spec.positions][:, j // d, j % d] = 1.0
            with forward_ad.dual_level():
                dual = forward_ad.make_dual(X, spec.layout.join(tangent))
                derivative = forward_ad.unpack_dual(model.atom_features(dual)).tangent
            if derivative is not None:
                jacobian[..., j] = derivative
        self._group(jacobian, present, torch.as_tensor(envs.atom, device=X.device), d)

    def _group(self, jacobian, present, slot, d):
        """Split the Jacobians ``(A, p, n d)`` by the number of present atoms of their
        systems (see the class); ``slot`` is each atom's row in its system."""
        counts = present.sum(1)
        first = torch.cumsum(counts, 0) - counts
        p, device = jacobian.shape[1], jacobian.device
        self.groups, force_index = [], []
        for k in counts.unique().tolist():
            if k == 0:
                continue
            systems = torch.nonzero(counts == k)[:, 0]
            atoms = first[systems, None] + torch.arange(k, device=device)
            columns = (slot[atoms, None] * d + torch.arange(d, device=device)).flatten(1)
            block = jacobian[atoms[:, :, None, None], torch.arange(p, device=device)[:, None],
                             columns[:, None, None, :]]
            self.groups.append((atoms.flatten(), block.reshape(len(systems), k * p, k * d)))
            force_index.append((systems[:, None] * self.n_coordinates + columns).flatten())
        # where the groups' forces go in the flattened (B, n d) forces
        self.force_index = torch.cat(force_index)

    def energy_and_forces(self, model, create_graph):
        """Energies ``(B,)`` and forces ``(B, n d)`` of the cached systems, by the
        atom module of ``model``, differentiable with respect to its parameters if
        ``create_graph`` (else detached)."""
        module = model.atom_module
        if isinstance(module, AtomMLP) and module.explicit_gradient:
            with torch.set_grad_enabled(create_graph):
                atomic, grad = module.energies_and_gradients(self.features)
        else:
            features = self.features.detach().requires_grad_(True)
            with torch.enable_grad():
                atomic = model.atomic_energies(features)
                (grad,) = torch.autograd.grad(atomic.sum(), features,
                                              create_graph=create_graph)
            atomic = atomic if create_graph else atomic.detach()
        energy = atomic.new_zeros(self.n_systems).index_add(0, self.system, atomic)
        return energy, -self.pull_back(grad).to(atomic.dtype)

    def pull_back(self, grad):
        """``sum_a J_a^T g_a`` per system, (B, n d, ...), of per-atom feature covectors
        ``g`` (A, ..., p), in the Jacobians' dtype (the energy's feature gradients
        pull back to minus the forces): one batched product per number of present
        atoms."""
        extra, p = grad.shape[1:-1], grad.shape[-1]
        count = math.prod(extra)
        grad = grad.to(self.groups[0][1].dtype).reshape(len(grad), count, p)
        parts = []
        for atoms, block in self.groups:
            systems = len(block)
            # (systems, count, k p) @ (systems, k p, k d), then coordinates first
            rows = grad[atoms].reshape(systems, -1, count, p).transpose(1, 2)
            parts.append(torch.bmm(rows.reshape(systems, count, -1), block)
                         .transpose(1, 2).reshape(-1, count))
        out = grad.new_zeros((self.n_systems * self.n_coordinates, count)).index_copy(
            0, self.force_index, torch.cat(parts))
        return out.reshape((self.n_systems, self.n_coordinates) + extra)


def _centre_scalar_columns(model, sample_shape):
    """Feature columns of the centre's own scalar fields (they come first, in the
    layout's order of the scalar and vector fields)."""
    columns, offset = [], 0
    for field in model.local_frames(sample_shape).layout.fields:
        if field.kind in ("scalar", "vector"):
            if field.kind == "scalar":
                columns += range(offset, offset + field.width)
            offset += field.width
    return columns


def _targets(energy, forces, B, device, dtype):
    energy = _float64(energy, device)
    if energy.shape != (B,):
        raise ValueError(f"energy must have shape ({B},), one per system; got "
                         f"{tuple(energy.shape)}")
    if forces is None:
        return energy.to(dtype)[:, None]
    forces = _float64(forces, device)
    return torch.cat([energy[:, None], forces.reshape(B, -1)], 1).to(dtype)


def _float64(values, device):
    """Targets as a float64 tensor on ``device``, from numpy, lists or tensors (detached:
    targets carry no gradient; tensors that require one could not become numpy)."""
    if isinstance(values, torch.Tensor):
        return values.detach().to(device=device, dtype=torch.float64)
    return torch.as_tensor(np.asarray(values, dtype=np.float64), device=device)


def fit_energy_forces(model, X, energy, forces=None, *, force_weight=1.0,
                      cpu_seconds=60.0, max_iter=10_000, validation=None, adapt=True,
                      jacobian_dtype=torch.float32, refit_output=None, verbose=False):
    """Train the atom module of a local-frame model on energies and forces, fast.

    Computes the per-atom features of the training systems and their Jacobians with
    respect to the positions once, then minimizes :class:`EnergyForceLoss` by
    full-batch L-BFGS (strong Wolfe line search) over the atom module's parameters,
    with the energies and forces of the cached features (those of the full model).
    Stops after ``cpu_seconds`` of CPU time of this process (``time.process_time``:
    a loaded machine trains as far as an idle one) or ``max_iter`` iterations.

    Parameters
    ----------
    model : LocalFrameAveraged
        Trained in place (its atom module's parameters).
    X : torch.Tensor or ndarray of shape (B, C) or (B, n, W)
        Training systems, absent atoms as all-NaN positions.
    energy : array-like of shape (B,)
    forces : array-like of shape (B, n d) or (B, n, d), optional
        NaN at absent atoms; None trains on energies only.
    force_weight : float or sequence of float, default=1.0
        Weight of the force term of :class:`EnergyForceLoss` (energies in their units
        squared, forces per component). A sequence trains in phases, one per weight
        in order, each from the parameters the previous one kept, with a fresh L-BFGS
        memory and its share of ``cpu_seconds`` (and of what is left of
        ``max_iter``, shared evenly); a phase keeps its starting parameters unless it
        improves on them by its own loss (the first ends with its best block, as
        one weight does). A large weight and then a smaller one fits
        the forces first, then the energies: forces outnumber energies ``3 n`` to 1,
        and a weight that lets them shape the model leaves the energies underfitted
        (EMT Cu6..Cu13, 32 x 32 MLP: validation energy MAE 0.0134 meV/atom after 180
        CPU s at weight 10, the same after 60 s more at 10, 0.0099 after 60 s more at
        0.1, the force error 9% larger).
    cpu_seconds : float or sequence of float, default=60.0
        CPU time budget of the optimization (the cache not included): one number
        shared evenly by the phases of ``force_weight``, or one per phase (a phase
        that stops early leaves its unused time to the next). Summed over threads:
        torch's intra-op threads spend much of it waiting on small models
        (about 5x fewer iterations per CPU second with two threads than with one on
        EMT clusters), so ``torch.set_num_threads(1)`` makes the budget go furthest.
    max_iter : int, default=10000
        At most this many L-BFGS iterations.
    validation : tuple (X_val, energy_val, forces_val), optional
        Systems scored by the same loss (``forces_val`` None: energies only) after
        every block of iterations; the model ends with the parameters of the best
        score (early stopping; the best of the last phase). Without them the training
        loss decides.
    adapt : bool, default=True
        With an :class:`AtomMLP` atom module, first set its standardization, energy
        offset (per species, linear in the centre's scalar fields) and output scale
        from the training systems.
    jacobian_dtype : torch.dtype, default=torch.float32
        Storage and arithmetic of the cached Jacobians, ``p d`` times the sum of the
        squared numbers of present atoms of the systems (float32: forces exact to
        about 1e-7 relative). Once the force errors come near that rounding, the loss
        is too noisy for the line search and L-BFGS stalls: a float64 model that is
        to fit forces to about 1e-3 of their spread wants float64 here (EMT Cu13, 17
        radial features, hidden (32, 32), 240 CPU s: float32 stalled after about 2500
        iterations at a validation loss of 3.1e-6, float64 went on to 3700
        iterations and 2.0e-6).
    refit_output : bool, optional
        End with the output layer of the :class:`AtomMLP` atom module, with the
        weights of its random features if it has any (``n_random_features``), solved
        exactly (default: with an AtomMLP). Energies and forces are affine in them, so
        for any weighting of the two the best layer is a linear least-squares
        problem, solved (by SVD, in float64) for each of a grid of energy weightings
        (per system or per atom), force weights and ridges (towards the trained
        layer) and picked by the validation systems' energy MAE per atom (without
        them, by the training loss of the last phase); the trained layer stays if no
        solution beats it. Its CPU time, measured by a trial solve on the initial
        network, comes out of the budget, but no phase gets less than half its own:
        where the solve costs more than that (large atom modules on short budgets),
        the fit takes longer than ``cpu_seconds`` rather than train too little (the
        EMT Cu13 example, 64 x 64 MLP on 161 features, 20 CPU s: the solve left the
        MLP untrained, 5.3 meV/atom against 0.26 without the solve). The phases fit
        the output layer to the energies short of its optimum (EMT, 32 x 32 MLP,
        240 CPU s, force weights 10 then 0.1: validation energy MAE 0.0106 to 0.0091
        meV/atom on Cu6..Cu13, forces 2% worse, 0.0059 to 0.0056 on Cu13, forces 3%
        better, in about 1.5 CPU s; from another torch seed, Cu6..Cu13 0.0116 to
        0.0114).
        With 400 random features the solve has the columns to fit what the phases
        left (Cu6..Cu13: 0.0088 to 0.0030, forces 0.00019 to 0.000062, the solve in
        26 CPU s by SVDs of all rows, 5 CPU s since the force rows enter by their QR
        factors).
    verbose : bool, default=False
        Print the losses after every block of iterations.

    Returns
    -------
    dict
        ``"iterations"``, ``"cpu_seconds"`` (optimization), ``"cache_cpu_seconds"``,
        ``"loss"`` (training, per block of up to 20 iterations, by the loss of the
        block's phase), ``"validation_loss"`` (per block, if any), ``"best_block"``
        (index of the block whose parameters the model ends with),
        ``"phase_start"`` (index of the first block of each phase); with
        ``refit_output``, ``"refit"``: the chosen ``"force_weight"``, ``"ridge"``,
        ``"per_atom"`` (None where the trained layer stayed), ``"score"`` and
        ``"trained_score"`` (the criterion after and before the solve),
        ``"cpu_seconds"`` (of the final solve) and ``"candidates"``, one
        ``(per_atom, force_weight, ridge, score)`` per solution tried.

    Notes
    -----
    The Jacobians cost one forward-mode pass of the neighbourhoods and features per
    position coordinate, and memory quadratic in the atoms of each system (see
    ``jacobian_dtype``), which suits systems of up to a few dozen atoms. Frames are
    piecewise smooth: the cached derivatives are those autograd gives the full model
    at the training positions.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from mfa_sklearn.torch import AtomMLP, LocalFrameAveraged, fit_energy_forces
    >>> X = torch.tensor(np.random.default_rng(0).normal(scale=1.2, size=(40, 5, 3)),
    ...                  requires_grad=True)                     # 40 clusters of 5 atoms
    >>> energy = torch.exp(-torch.cdist(X, X)).sum(dim=(1, 2))  # pair terms
    >>> forces = -torch.autograd.grad(energy.sum(), X)[0]
    >>> model = LocalFrameAveraged(AtomMLP, cutoff=4.0, n_neighbors=4,
    ...                            atom_module__hidden=(16,)).double()
    >>> info = fit_energy_forces(model, X.detach(), energy.detach(), forces,
    ...                          max_iter=50)         # or a budget: cpu_seconds=...
    >>> info["loss"][-1] < 0.01 * info["loss"][0]
    True
    """
    if not isinstance(model, LocalFrameAveraged):
        raise TypeError(f"model must be a LocalFrameAveraged; got {type(model).__name__}")
    if not isinstance(max_iter, Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1; got {max_iter!r}")
    weights = (force_weight,) if isinstance(force_weight, Real) else tuple(force_weight)
    if not weights:
        raise ValueError("force_weight must be a number or a non-empty sequence of them")
    losses = [EnergyForceLoss(w) for w in weights]     # checks each weight
    if isinstance(cpu_seconds, Real):
        budgets = (cpu_seconds / len(losses),) * len(losses)
    else:
        budgets = tuple(cpu_seconds)
        if len(budgets) != len(losses):
            raise ValueError(f"cpu_seconds must be a number or one per force weight "
                             f"({len(losses)}); got {len(budgets)}")
    if not all(isinstance(b, Real) and b > 0 for b in budgets):
        raise ValueError(f"cpu_seconds must be numbers > 0; got {cpu_seconds!r}")
    module = model.atom_module
    if refit_output is None:
        refit_output = isinstance(module, AtomMLP)
    elif not isinstance(refit_output, bool):
        raise TypeError(f"refit_output must be a bool or None; got {refit_output!r}")
    elif refit_output and not isinstance(module, AtomMLP):
        raise TypeError(f"refit_output needs an AtomMLP atom module (energies affine in "
                        f"its output layer); got {type(module).__name__}")
    parameter = next(module.parameters(), None)
    if parameter is None:
        raise ValueError("the atom module has no parameters to train")
    dtype, device = parameter.dtype, parameter.device
    start = time.process_time()

    def prepare(X, energy, forces):
        X = torch.as_tensor(X, device=device)
        cache = _Cache(model, X, dtype, jacobian_dtype)
        return cache, _targets(energy, forces, len(X), device, dtype)

    if validation is not None and (not isinstance(validation, (tuple, list))
                                   or len(validation) != 3):
        raise ValueError("validation must be a tuple (X_val, energy_val, forces_val); "
                         "forces_val may be None")
    train, y = prepare(X, energy, forces)
    held_out = prepare(*validation) if validation is not None else None
    history = {"iterations": 0, "cache_cpu_seconds": time.process_time() - start,
               "loss": [], "validation_loss": [], "best_block": None, "phase_start": []}
    if adapt and isinstance(module, AtomMLP):
        module.adapt(train.features, train.system, y[:, 0],
                     _centre_scalar_columns(model, X.shape[1:]))
    start = time.process_time()
    reserve = 0.0
    if refit_output:
        # the solve costs the same on any parameters: a trial on the initial ones
        # (not applied) tells how much of the budget to leave it
        state = copy.deepcopy(module.state_dict())
        _refit_output(model, train, y, held_out, losses[-1])
        module.load_state_dict(state)
        reserve = time.process_time() - start
    for phase, loss_fn in enumerate(losses):
        left = len(losses) - phase
        # what earlier phases left unused goes to this one
        seconds = sum(budgets[:phase + 1]) - (time.process_time() - start)
        if phase == len(losses) - 1:
            seconds -= reserve
        seconds = max(seconds, budgets[phase] / 2)
        iterations = -(-(max_iter - history["iterations"]) // left)
        history["phase_start"].append(len(history["loss"]))
        _lbfgs_phase(model, loss_fn, train, y, held_out, seconds, iterations, history,
                     verbose, keep_start=phase > 0)
    if refit_output:
        solve_start = time.process_time()
        history["refit"] = _refit_output(model, train, y, held_out, losses[-1])
        history["refit"]["cpu_seconds"] = time.process_time() - solve_start
        if verbose:
            print(f"output layer solved: {history['refit']}")
    history["cpu_seconds"] = time.process_time() - start
    return history


def _lbfgs_phase(model, loss_fn, train, y, held_out, cpu_seconds, max_iter, history,
                 verbose, keep_start):
    """Minimize ``loss_fn`` by L-BFGS from the present parameters, for ``cpu_seconds``
    or ``max_iter`` iterations, appending to ``history``; the model ends with the
    parameters of the best validation (else training) score of its blocks, or of
    those it started with if ``keep_start`` and none beats them."""
    module = model.atom_module
    parameter = next(module.parameters())
    # no tolerances: the budget and the progress of each block decide when to stop
    optimizer = torch.optim.LBFGS(module.parameters(), lr=1.0, max_iter=20,
                                  history_size=50, tolerance_grad=0.0,
                                  tolerance_change=0.0, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(train.energy_and_forces(model, True), y)
        loss.backward()
        return loss

    def score():
        cache, targets = held_out if held_out is not None else (train, y)
        return float(loss_fn(cache.energy_and_forces(model, False), targets).detach())

    # a later phase weighs the terms anew: it keeps its starting point unless it
    # improves on it by its own loss
    best, state = np.inf, None
    if keep_start:
        best, state = score(), copy.deepcopy(module.state_dict())
    first, done = len(history["loss"]), 0
    start = time.process_time()
    while time.process_time() - start < cpu_seconds and done < max_iter:
        before = optimizer.state[parameter].get("n_iter", 0)
        loss = float(optimizer.step(closure).detach())
        done += optimizer.state[parameter].get("n_iter", 0) - before
        history["loss"].append(loss)
        value = loss
        if held_out is not None:
            value = score()
            history["validation_loss"].append(value)
        if value < best:
            best, history["best_block"] = value, len(history["loss"]) - 1
            state = copy.deepcopy(module.state_dict())
        if verbose:
            print(f"{time.process_time() - start:8.1f} s  iteration "
                  f"{history['iterations'] + done:5d}  loss {loss:.4e}"
                  + (f"  validation {value:.4e}" if held_out is not None else ""))
        if not np.isfinite(loss) or loss >= min(history["loss"][first:-1], default=np.inf):
            break       # a block without progress: converged, or the line search fails
    history["iterations"] += done
    if state is not None:
        module.load_state_dict(state)


#: the output layer's solve: force weights (units of :class:`EnergyForceLoss`) and
#: ridges (relative to the largest squared singular value) tried
_REFIT_FORCE_WEIGHTS = (0.0, 1e-3, 1e-2, 0.1, 1.0, 10.0)
_REFIT_RIDGES = (1e-15, 1e-13, 1e-12, 1e-9, 1e-6, 1e-3)


#: random features of the output solve pulled back to forces this many at a time (their
#: feature gradients take ``A p`` numbers each)
_RANDOM_CHUNK = 64


def _output_affine(model, cache, forces=True):
    """The cached systems' energies and forces as an affine function of the output
    layer and random-feature weights ``theta = (w, b, c)`` of an :class:`AtomMLP`
    atom module, in float64: ``[energy, forces] = constant + design @ theta``,
    ``constant`` of shape ``(B, 1 + m)`` and ``design`` ``(B, 1 + m, k + 1 + r)``
    for a last hidden layer of width ``k`` and ``r`` random features; without
    ``forces``, the energies alone (``m = 0``)."""
    module = model.atom_module
    hidden = module.net[:-1]
    features = cache.features.detach()
    # theta = 0 leaves the offset b + w . f of every atom, whose feature gradient is w
    offset = module.offset_bias + features @ module.offset_weight
    constant = offset.new_zeros(cache.n_systems).index_add(
        0, cache.system, offset).to(torch.float64)[:, None]

    def last_hidden(features):
        return hidden(module.standardize(features))

    def random_features(start):
        columns = slice(start, start + _RANDOM_CHUNK)
        return lambda features: module.random_features(module.standardize(features),
                                                       columns)

    h = last_hidden(features).detach().to(torch.float64)
    random = module.random_features(module.standardize(features)).detach().to(
        torch.float64)
    rows = torch.cat([h, torch.ones_like(h[:, :1]), random], 1)
    design = rows.new_zeros((cache.n_systems, rows.shape[1])).index_add(
        0, cache.system, rows)[:, None]
    if forces:
        pulled = cache.pull_back(module.offset_weight.expand_as(features))
        constant = torch.cat([constant, -pulled.to(features.dtype).to(torch.float64)], 1)
        # d h / d features per atom, (A, k, p), then through the cached Jacobians: the
        # force rows of w, -J^T (dh/df)^T; the bias moves no atom; the random
        # features the same way, a chunk of them at a time
        def force_rows(columns):
            jacobian = torch.func.vmap(torch.func.jacfwd(columns))(features).detach()
            return -cache.pull_back(jacobian).to(torch.float64)        # (B, m, columns)

        blocks = [force_rows(last_hidden)]
        blocks.append(blocks[0].new_zeros(blocks[0].shape[:2] + (1,)))
        blocks += [force_rows(random_features(start))
                   for start in range(0, len(module.random_output), _RANDOM_CHUNK)]
        design = torch.cat([design, torch.cat(blocks, 2)], 1)
    return constant, design * module.energy_scale.to(torch.float64)


def _output_solutions(design, constant, y, n_atoms, theta, force_weights, ridges):
    """Weighted ridge least-squares output layers, one per energy weighting (per
    system, per atom), force weight and ridge (towards ``theta``): yields
    ``(per_atom, force_weight, ridge, solution)``."""
    y = y.to(torch.float64)
    columns = y.shape[1]
    design, residual = design[:, :columns], y - constant[:, :columns]
    present = ~torch.isnan(residual)
    residual = torch.where(present, residual - design @ theta, torch.zeros_like(residual))
    there = present[:, 1:]
    n_forces = there.sum().clamp(min=1).to(torch.float64)
    if columns == 1:
        force_weights = (0.0,)  # nothing to weigh
    # The force rows of every weighting are the same rows times one weight, so they
    # enter through their QR factors alone: for rows Q R, |R t - Q^T r|^2 differs from
    # their |Q R t - r|^2 by a constant. Each weighting's SVD is then of B + k rows
    # instead of B (1 + n d) (EMT Cu6..Cu13, 433 columns: the solve in 5 CPU s, not 26).
    Q, R = torch.linalg.qr(design[:, 1:][there])
    force_residual = Q.T @ residual[:, 1:][there]
    for per_atom in (False, True):
        # the mean of squared errors of EnergyForceLoss, energies per atom or not
        energy_root = ((n_atoms.to(torch.float64) ** -2 if per_atom
                        else torch.ones_like(residual[:, 0])) / len(y)).sqrt()
        for force_weight in force_weights:
            force_root = (force_weight / n_forces).sqrt()
            U, S, Vh = torch.linalg.svd(torch.cat([design[:, 0] * energy_root[:, None],
                                                   R * force_root]), full_matrices=False)
            projected = U.T @ torch.cat([residual[:, 0] * energy_root,
                                         force_residual * force_root])
            for ridge in ridges:
                # ridge regression of the residual on the (weighted) design
                step = Vh.T @ (S / (S ** 2 + ridge * S[0] ** 2) * projected)
                yield per_atom, force_weight, ridge, theta + step


def _refit_output(model, train, y, held_out, last_loss):
    """Solve the output layer of the AtomMLP of ``model`` (see
    :func:`fit_energy_forces`, ``refit_output``): set the best solution by the
    validation energy MAE per atom (or the training loss ``last_loss``) if it beats
    the trained layer, and return the ``"refit"`` record."""
    module = model.atom_module
    last = module.net[-1]
    theta = torch.cat([last.weight[0], last.bias,
                       module.random_output]).detach().to(torch.float64)
    k = last.weight.shape[1]
    constant, design = _output_affine(model, train, forces=y.shape[1] > 1)
    # an empty system (no atom) weighs and scores as one atom: its energy is exact
    n_atoms = torch.bincount(train.system, minlength=train.n_systems).clamp(min=1)
    if held_out is not None:
        cache, targets = held_out
        val_constant, val_design = _output_affine(model, cache, forces=False)
        val_atoms = torch.bincount(cache.system, minlength=cache.n_systems).clamp(
            min=1).to(torch.float64)
        reference = targets[:, 0].to(torch.float64)

        def score(solution):
            energy = val_constant[:, 0] + val_design[:, 0] @ solution
            return float(torch.mean(torch.abs(energy - reference) / val_atoms))
    else:
        def score(solution):
            prediction = constant + design @ solution
            return float(last_loss((prediction[:, 0], prediction[:, 1:]),
                                   y.to(torch.float64)))

    record = {"force_weight": None, "ridge": None, "per_atom": None,
              "trained_score": score(theta), "candidates": []}
    best, chosen = record["trained_score"], None
    for per_atom, force_weight, ridge, solution in _output_solutions(
            design, constant, y, n_atoms, theta, _REFIT_FORCE_WEIGHTS, _REFIT_RIDGES):
        value = score(solution)
        record["candidates"].append((per_atom, force_weight, ridge, value))
        if value < best:
            best, chosen = value, solution
            record.update(force_weight=force_weight, ridge=ridge, per_atom=per_atom)
    record["score"] = best
    if chosen is not None:
        with torch.no_grad():
            last.weight.copy_(chosen[:k][None].to(last.weight))
            last.bias.copy_(chosen[k:k + 1].to(last.bias))
            module.random_output.copy_(chosen[k + 1:].to(module.random_output))
    return record
