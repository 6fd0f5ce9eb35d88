"""fit_energy_forces and AtomMLP: the cached energies and forces are the model's own,
training lowers the loss and keeps the best validated parameters, per-species offsets."""

from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mfa_sklearn._torch_fit import (  # noqa: E402
    _REFIT_FORCE_WEIGHTS,
    _REFIT_RIDGES,
    _Cache,
    _output_affine,
    _output_solutions,
    _refit_output,
    _targets,
)
from mfa_sklearn.testing import check_equivariance  # noqa: E402
from mfa_sklearn.torch import (  # noqa: E402
    AtomMLP,
    EnergyForceLoss,
    LocalFrameAveraged,
    fit_energy_forces,
)

from .test_torch_local import FIELDS, clusters, numpy_of  # noqa: E402
from .test_torch_local import model as plain_model  # noqa: E402


def model(first_vector="nearest", hidden=(16,), angular=True, activation=torch.nn.SiLU,
          random=0):
    torch.manual_seed(0)
    return LocalFrameAveraged(AtomMLP, fields=FIELDS, cutoff=4.0, n_neighbors=6,
                              first_vector=first_vector, radial_basis="scales",
                              angular=angular, atom_module__hidden=hidden,
                              atom_module__activation=activation,
                              atom_module__n_random_features=random).double()


class Wrapped(torch.nn.Module):
    """An atom module that is no AtomMLP: the cache differentiates it by autograd."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, features):
        return self.inner(features)[:, None]


#: activations whose derivatives AtomMLP.energies_and_gradients knows; Softplus also
#: with atoms past its threshold, where it is the identity
KNOWN = [torch.nn.GELU, torch.nn.SiLU, torch.nn.Tanh, torch.nn.Softplus,
         partial(torch.nn.Softplus, beta=2.0, threshold=1.0)]


def mlp_with_buffers(activation, dtype, p=5, hidden=(7, 6), random=0):
    """An AtomMLP whose standardization, offset and scale (and the weights of its
    ``random`` random features) are all nontrivial."""
    torch.manual_seed(1)
    mlp = AtomMLP(p, hidden=hidden, activation=activation,
                  n_random_features=random).to(dtype)
    mlp.random_output.copy_(torch.linspace(-0.4, 0.6, random))
    mlp.feature_mean.copy_(torch.linspace(-0.5, 0.5, p))
    mlp.feature_scale.copy_(torch.linspace(0.5, 2.0, p))
    mlp.offset_weight.copy_(torch.linspace(-1.0, 1.0, p))
    mlp.offset_bias.fill_(0.3)
    mlp.energy_scale.fill_(1.7)
    return mlp


@pytest.mark.parametrize("random", [0, 4])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("activation", KNOWN)
def test_explicit_gradient_is_autograds(activation, dtype, random):
    mlp = mlp_with_buffers(activation, dtype, random=random)
    assert mlp.explicit_gradient and mlp.random_head_active == bool(random)
    features = 3 * torch.randn(40, 5, dtype=dtype, generator=torch.Generator().manual_seed(2))
    weights = torch.randn(40, 5, dtype=dtype, generator=torch.Generator().manual_seed(3))

    def loss_and_grads(energy, gradient):
        # a loss of both, as on energies and forces
        loss = (energy ** 2).sum() + ((gradient * weights).sum(1) ** 2).sum()
        return [energy, gradient, *torch.autograd.grad(loss, list(mlp.parameters()))]

    energy, gradient = mlp.energies_and_gradients(features)
    explicit = loss_and_grads(energy, gradient)
    inputs = features.clone().requires_grad_(True)
    energy = mlp(inputs)
    (gradient,) = torch.autograd.grad(energy.sum(), inputs, create_graph=True)
    reference = loss_and_grads(energy, gradient)
    tolerance = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else \
        dict(rtol=2e-5, atol=2e-5)
    for got, expected in zip(explicit, reference):
        assert got.dtype == dtype and got.shape == expected.shape
        torch.testing.assert_close(got, expected, **tolerance)
    if isinstance(activation, partial):
        # the threshold was crossed, on both sides
        h = mlp.net[0]((features - mlp.feature_mean) / mlp.feature_scale)
        assert bool((2 * h > 1).any()) and bool((2 * h <= 1).any())


def test_explicit_gradient_of_a_linear_atom_module():
    mlp = mlp_with_buffers(torch.nn.GELU, torch.float64, hidden=())
    features = torch.randn(4, 5, dtype=torch.float64)
    energy, gradient = mlp.energies_and_gradients(features)
    torch.testing.assert_close(energy, mlp(features))
    expected = mlp.offset_weight + (mlp.energy_scale * mlp.net[0].weight[0]
                                    / mlp.feature_scale)
    torch.testing.assert_close(gradient, expected.expand(4, 5))


def test_random_features():
    features = torch.randn(6, 5, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(4))
    torch.manual_seed(3)
    plain = AtomMLP(5, hidden=(4,)).double()
    torch.manual_seed(3)
    mlp = AtomMLP(5, hidden=(4,), n_random_features=3, random_scale=2.0).double()
    # drawn after the MLP: the same MLP as without them, the head silent until solved
    for a, b in zip(plain.parameters(), mlp.parameters()):
        assert torch.equal(a, b)
    assert mlp.random_weight.shape == (3, 5) and mlp.random_bias.shape == (3,)
    assert not mlp.random_head_active
    assert torch.equal(mlp(features), plain(features))
    mlp.random_output.fill_(0.5)
    z = (features - mlp.feature_mean) / mlp.feature_scale
    head = torch.nn.functional.silu(z @ mlp.random_weight.T + mlp.random_bias) @ (
        mlp.random_output)
    torch.testing.assert_close(mlp(features), plain(features) + head)
    # adapting to new data drops the weights solved for the old standardization
    mlp.adapt(features, torch.arange(6), torch.zeros(6))
    assert not mlp.random_head_active
    assert "random_output" in mlp.state_dict()
    # off the host the head is evaluated without reading c back (meta tensors hold no
    # values: reading one raises)
    assert mlp.to("meta").random_head_active
    assert not AtomMLP(5, hidden=(4,)).to("meta").random_head_active


@pytest.mark.parametrize("activation", [torch.nn.ELU, partial(torch.nn.GELU,
                                                              approximate="tanh")])
def test_other_activations_keep_autograd(activation):
    mlp = AtomMLP(5, hidden=(4,), activation=activation)
    assert not mlp.explicit_gradient
    with pytest.raises(ValueError, match="knows the derivatives of GELU"):
        mlp.energies_and_gradients(torch.zeros(3, 5))


def morse(X):
    """Energies and forces of a Morse pair potential; NaN forces at absent atoms."""
    pos = torch.tensor(X[..., :3], requires_grad=True)
    there = ~torch.isnan(pos[..., 0])
    safe = torch.where(there[..., None], pos, torch.zeros_like(pos))
    r = torch.linalg.norm(safe[:, :, None] - safe[:, None, :] + torch.eye(
        X.shape[1], dtype=pos.dtype)[..., None], dim=-1)
    pair = there[:, :, None] & there[:, None, :] & ~torch.eye(X.shape[1], dtype=bool)
    decay = torch.exp(-1.2 * (r - 1.8))
    energy = 0.5 * torch.where(pair, decay ** 2 - 2 * decay, torch.zeros_like(r)).sum((1, 2))
    (grad,) = torch.autograd.grad(energy.sum(), pos)
    forces = torch.where(there[..., None], -grad, torch.full_like(grad, np.nan))
    return energy.detach().numpy(), forces.reshape(len(X), -1).numpy()


@pytest.mark.parametrize("angular", [True, False])
@pytest.mark.parametrize("first_vector", ["nearest", "weighted"])
@pytest.mark.parametrize("activation", [torch.nn.GELU, torch.nn.ELU])
def test_cached_energies_and_forces_are_the_models(first_vector, angular, activation):
    # ELU: by autograd; absent atoms anywhere, systems of 4 to 8 atoms
    m = model(first_vector, angular=angular, activation=activation)
    X = clusters(B=7, n=8, seed=3)
    cache = _Cache(m, torch.tensor(X), torch.float64, torch.float64)
    energy, forces = cache.energy_and_forces(m, False)
    ref_energy, ref_forces = m.eval().energy_and_forces(torch.tensor(X))
    np.testing.assert_allclose(energy.detach().numpy(), ref_energy.numpy(), rtol=1e-12)
    ref = ref_forces.reshape(len(X), -1).numpy()
    there = ~np.isnan(ref)
    np.testing.assert_allclose(forces.detach().numpy()[there], ref[there], rtol=1e-9,
                               atol=1e-12)
    assert np.all(forces.detach().numpy()[~there] == 0)


def test_cache_of_a_system_without_atoms():
    m = model()
    X = clusters(B=4, n=6, seed=9)
    X[2] = np.nan
    energy, forces = _Cache(m, torch.tensor(X), torch.float64,
                            torch.float64).energy_and_forces(m, False)
    ref_energy, ref_forces = m.eval().energy_and_forces(torch.tensor(X[[0, 1, 3]]))
    torch.testing.assert_close(energy[[0, 1, 3]], ref_energy, rtol=1e-12, atol=0)
    ref = ref_forces.reshape(3, -1)
    there = ~torch.isnan(ref)
    torch.testing.assert_close(forces[[0, 1, 3]][there], ref[there], rtol=1e-9, atol=1e-12)
    assert float(energy[2]) == 0 and bool((forces[2] == 0).all())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cached_loss_gradients_are_autograds(dtype):
    # the explicit gradient of AtomMLP against the same module seen as any module
    m = model(activation=torch.nn.GELU).to(dtype)
    X = clusters(B=6, n=7, seed=10)
    energy, forces = morse(X)
    cache = _Cache(m, torch.tensor(X), dtype, torch.float64)
    y = torch.tensor(np.concatenate([energy[:, None], forces], 1))
    loss_fn = EnergyForceLoss(3.0)
    mlp = m.atom_module

    def loss_and_grads():
        predicted = cache.energy_and_forces(m, True)
        loss = loss_fn(predicted, y)
        return [*predicted, loss, *torch.autograd.grad(loss, list(mlp.parameters()))]

    explicit = loss_and_grads()
    m.atom_module = Wrapped(mlp)
    reference = loss_and_grads()
    tolerance = dict(rtol=1e-11, atol=1e-12) if dtype == torch.float64 else \
        dict(rtol=1e-4, atol=1e-5)
    for got, expected in zip(explicit, reference):
        assert got.dtype == dtype
        torch.testing.assert_close(got, expected, **tolerance)


def test_training_lowers_the_loss_and_keeps_the_best_validated_block():
    X = clusters(B=24, n=6, seed=1)
    energy, forces = morse(X)
    m = model()
    loss = EnergyForceLoss(1.0)

    def score(Xq, e, f):
        m.eval()
        y = torch.tensor(np.concatenate([e[:, None], f], 1))
        return float(loss(m.energy_and_forces(torch.tensor(Xq)), y))

    history = fit_energy_forces(m, X[:16], energy[:16], forces[:16], cpu_seconds=30.0,
                                max_iter=60, validation=(X[16:], energy[16:], forces[16:]),
                                refit_output=False)
    assert 0 < history["iterations"] <= 60 + 20
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    best = history["best_block"]
    assert history["validation_loss"][best] == min(history["validation_loss"])
    # the model ends with the kept parameters, scored by the full model
    np.testing.assert_allclose(score(X[16:], energy[16:], forces[16:]),
                               history["validation_loss"][best], rtol=1e-5)


def test_cpu_budget_stops_training():
    X = clusters(B=20, n=7, seed=2)
    energy, forces = morse(X)
    history = fit_energy_forces(model(), X, energy, forces, cpu_seconds=0.5)
    assert len(history["loss"]) >= 1 and history["cpu_seconds"] < 10
    # a budget that the output solve's trial alone exceeds still trains, for half of it
    history = fit_energy_forces(model(), X, energy, forces, cpu_seconds=1e-4)
    assert history["iterations"] >= 1 and history["refit"] is not None


def test_phases_of_force_weights_refit_the_energies():
    X = clusters(B=20, n=7, seed=8)
    energy, forces = morse(X)
    y = torch.tensor(np.concatenate([energy[:, None], forces], 1))

    def fitted(force_weight, max_iter):
        # float64 Jacobians: the kept model's loss is then the recorded one to rounding
        # (float32 ones round the forces to about 1e-7, the loss of a good fit to more)
        m = model()
        history = fit_energy_forces(m, X, energy, forces, force_weight=force_weight,
                                    cpu_seconds=60.0, max_iter=max_iter,
                                    validation=(X, energy, forces),
                                    jacobian_dtype=torch.float64, refit_output=False)
        return m.eval().energy_and_forces(torch.tensor(X)), history

    # the first phase of two, with half of max_iter, is the one-phase fit
    first, single = fitted(10.0, 40)
    both, history = fitted((10.0, 0.1), 80)
    assert history["phase_start"] == [0, len(single["loss"])]
    assert history["loss"][:len(single["loss"])] == single["loss"]
    assert 40 <= history["iterations"] <= 80 + 20
    # the second phase scores, and keeps, by its own weights
    energy_weighted = EnergyForceLoss(0.1)
    np.testing.assert_allclose(float(energy_weighted(both, y)),
                               history["validation_loss"][history["best_block"]],
                               rtol=1e-9)
    assert float(energy_weighted(both, y)) < float(energy_weighted(first, y))
    assert (float(torch.mean((both[0] - y[:, 0]) ** 2))
            < float(torch.mean((first[0] - y[:, 0]) ** 2)))


def test_cpu_seconds_per_phase():
    X = clusters(B=20, n=7, seed=2)
    energy, forces = morse(X)
    history = fit_energy_forces(model(), X, energy, forces, force_weight=(3.0, 1.0),
                                cpu_seconds=(0.3, 0.3))
    assert len(history["phase_start"]) == 2 and history["cpu_seconds"] < 10


def test_energy_only_training():
    X = clusters(B=20, n=7, seed=4)
    energy, _ = morse(X)
    history = fit_energy_forces(model(), X, energy, cpu_seconds=5.0, max_iter=40)
    assert history["loss"][-1] < history["loss"][0]


def test_adapt_sets_per_species_offsets():
    # energies that are sums of per-species constants: the offset alone is exact
    X = clusters(B=12, n=8, seed=5)
    present = ~np.isnan(X[..., 0])
    Z = np.where(present, X[..., 3], 0)
    energy = -3.5 * np.sum(present & (Z == 1), 1) - 1.25 * np.sum(present & (Z == 2), 1)
    m = model()
    features = m.atom_features(torch.tensor(X))
    envs = m.environments(torch.tensor(X))
    mlp = m.atom_module
    mlp.adapt(features, torch.as_tensor(envs.system), torch.tensor(energy), [0])
    offset = mlp.offset_bias + features @ mlp.offset_weight
    expected = np.where(Z[envs.system, envs.atom] == 1, -3.5, -1.25)
    np.testing.assert_allclose(offset.detach().numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(mlp.feature_mean.numpy(), features.mean(0).numpy())
    assert float(mlp.energy_scale) == 1.0        # nothing left to explain


def test_centre_species_is_the_offset_column():
    m = model()
    X = clusters(B=3, n=6, seed=6, absent=False)
    features = m.atom_features(torch.tensor(X)).numpy()
    np.testing.assert_array_equal(features[:, 0], X[..., 3].reshape(-1))


def test_errors():
    X = clusters(B=4, n=6, seed=7)
    energy, forces = morse(X)
    with pytest.raises(TypeError, match="LocalFrameAveraged"):
        fit_energy_forces(AtomMLP(4), X, energy, forces)
    with pytest.raises(ValueError, match="cpu_seconds"):
        fit_energy_forces(model(), X, energy, forces, cpu_seconds=0)
    with pytest.raises(ValueError, match="max_iter"):
        fit_energy_forces(model(), X, energy, forces, max_iter=0)
    with pytest.raises(ValueError, match="one per force weight"):
        fit_energy_forces(model(), X, energy, forces, force_weight=(1.0, 0.1),
                          cpu_seconds=(1.0,))
    with pytest.raises(ValueError, match="non-empty"):
        fit_energy_forces(model(), X, energy, forces, force_weight=())
    with pytest.raises(ValueError, match="force_weight must be a number >= 0"):
        fit_energy_forces(model(), X, energy, forces, force_weight=(1.0, -1.0))
    with pytest.raises(ValueError, match="energy must have shape"):
        fit_energy_forces(model(), X, energy[:3], forces)
    with pytest.raises(ValueError, match=r"validation must be a tuple \(X_val"):
        fit_energy_forces(model(), X, energy, forces, validation=(X, energy))
    # targets that are tensors requiring a gradient are taken as values
    graded = torch.tensor(np.asarray(energy), requires_grad=True)
    assert fit_energy_forces(model(), X, graded, torch.tensor(np.asarray(forces)),
                             cpu_seconds=0.2, max_iter=2)["iterations"] >= 1
    with pytest.raises(TypeError, match="refit_output needs an AtomMLP"):
        fit_energy_forces(plain_model(), X, energy, forces, refit_output=True)
    with pytest.raises(TypeError, match="refit_output must be a bool"):
        fit_energy_forces(model(), X, energy, forces, refit_output="yes")
    # the default solves no other atom module's output layer
    assert "refit" not in fit_energy_forces(plain_model(), X, energy, forces,
                                            cpu_seconds=0.2, max_iter=5)
    with pytest.raises(ValueError, match="hidden"):
        AtomMLP(4, hidden=(0,))
    with pytest.raises(ValueError, match="n_features_in"):
        AtomMLP(0)
    with pytest.raises(ValueError, match="n_random_features"):
        AtomMLP(4, n_random_features=-1)
    for scale in (0.0, float("nan"), "1"):
        with pytest.raises(ValueError, match="random_scale"):
            AtomMLP(4, random_scale=scale)


def adapted(X, hidden=(8, 8), random=0):
    """An AtomMLP model with its standardization, offset and scale set from Morse
    energies (none of them the identity)."""
    m = model(hidden=hidden, random=random)
    envs = m.environments(torch.tensor(X))
    m.atom_module.adapt(m.features_of(envs), torch.as_tensor(envs.system),
                        torch.tensor(morse(X)[0]), [0])
    return m


def set_output(m, theta):
    """The output layer (w, b) and random-feature weights c of ``m``, from theta."""
    last = m.atom_module.net[-1]
    k = last.weight.shape[1]
    with torch.no_grad():
        last.weight.copy_(theta[None, :k])
        last.bias.copy_(theta[k:k + 1])
        m.atom_module.random_output.copy_(theta[k + 1:])


def output_of(m):
    last = m.atom_module.net[-1]
    return torch.cat([last.weight[0], last.bias,
                      m.atom_module.random_output]).detach().clone()


# 70 random features: two chunks of _output_affine
@pytest.mark.parametrize("random", [0, 70])
def test_energies_and_forces_are_affine_in_the_output_layer(random):
    X = clusters(B=6, n=7, seed=9)
    m = adapted(X, random=random)
    cache = _Cache(m, torch.tensor(X), torch.float64, torch.float64)
    constant, design = _output_affine(m, cache)
    assert design.shape == (6, 1 + 7 * 3, 9 + random)
    # the energies alone: the first row, bit for bit
    energy_constant, energy_design = _output_affine(m, cache, forces=False)
    assert torch.equal(energy_constant, constant[:, :1])
    assert torch.equal(energy_design, design[:, :1])
    for seed in (0, 1):
        set_output(m, torch.randn(9 + random, dtype=torch.float64,
                                  generator=torch.Generator().manual_seed(seed)))
        energy, forces = m.eval().energy_and_forces(torch.tensor(X))
        predicted = (constant + design @ output_of(m)).numpy()
        np.testing.assert_allclose(predicted[:, 0], energy.numpy(), rtol=1e-12)
        forces = forces.reshape(len(X), -1).numpy()
        there = ~np.isnan(forces)
        np.testing.assert_allclose(predicted[:, 1:][there], forces[there], rtol=1e-9,
                                   atol=1e-12)


def test_output_solutions_are_the_weighted_least_squares():
    # the force rows enter by their QR factors: the same solutions as the weighted
    # least squares of all rows (absent atoms' rows, NaN targets, weigh nothing)
    rng = np.random.default_rng(5)
    B, m, k = 12, 9, 5
    design = torch.tensor(rng.normal(size=(B, 1 + m, k)))
    constant = torch.tensor(rng.normal(size=(B, 1 + m)))
    y = torch.tensor(rng.normal(size=(B, 1 + m)))
    y[:4, 7:] = np.nan
    n_atoms = torch.tensor(rng.integers(1, 4, size=B))
    theta = torch.tensor(rng.normal(size=k))
    for per_atom, force_weight, _, solution in _output_solutions(
            design, constant, y, n_atoms, theta, (0.1, 3.0), (1e-15,)):
        there = ~torch.isnan(y)
        energy = n_atoms.double() ** -2 if per_atom else torch.ones(B, dtype=torch.float64)
        force = torch.full((B, m), force_weight / float(there[:, 1:].sum()) * B,
                           dtype=torch.float64)
        weight = torch.cat([energy[:, None], force], 1)[there].sqrt()
        rows, target = design[there], (y - constant)[there]
        expected = np.linalg.lstsq((rows * weight[:, None]).numpy(),
                                   (target * weight).numpy(), rcond=None)[0]
        np.testing.assert_allclose(solution.numpy(), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("random", [0, 3])
@pytest.mark.parametrize("validated", [False, True])
def test_solve_recovers_the_output_layer_of_the_data(validated, random):
    # energies and forces of the model itself with a known output layer (and random
    # feature weights), fitted from another one: the solve finds the known layer
    X = clusters(B=30, n=7, seed=10)
    m = adapted(X, random=random)
    known = torch.randn(9 + random, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(2))
    set_output(m, known)
    energy, forces = m.eval().energy_and_forces(torch.tensor(X))
    set_output(m, torch.zeros(9 + random, dtype=torch.float64))

    def prepared(part):
        cache = _Cache(m, torch.tensor(X[part]), torch.float64, torch.float64)
        return cache, _targets(energy[part].numpy(), forces[part].numpy(), len(X[part]),
                               "cpu", torch.float64)

    train, y = prepared(slice(0, 20))
    held_out = prepared(slice(20, 30)) if validated else None
    record = _refit_output(m, train, y, held_out, EnergyForceLoss(0.1))
    np.testing.assert_allclose(output_of(m).numpy(), known.numpy(), rtol=1e-6)
    assert record["score"] < 1e-10 * record["trained_score"]
    assert len(record["candidates"]) == 2 * len(_REFIT_FORCE_WEIGHTS) * len(_REFIT_RIDGES)


@pytest.mark.parametrize("random", [0, 20])
def test_refit_output_scores_and_keeps_the_exact_symmetries(random):
    X = clusters(B=24, n=6, seed=11)
    energy, forces = morse(X)
    m = model(random=random)
    history = fit_energy_forces(m, X[:16], energy[:16], forces[:16], force_weight=10.0,
                                cpu_seconds=30.0, max_iter=40,
                                validation=(X[16:], energy[16:], forces[16:]))
    record = history["refit"]     # the default with an AtomMLP
    assert record["score"] <= record["trained_score"]
    if random:
        assert record["force_weight"] is not None and m.atom_module.random_head_active
    assert record["cpu_seconds"] < history["cpu_seconds"]
    # the score is the full model's validation energy MAE per atom
    predicted = m.eval().energy(torch.tensor(X[16:])).detach().numpy()
    atoms = np.sum(~np.isnan(X[16:, :, 0]), 1)
    np.testing.assert_allclose(np.mean(np.abs(predicted - energy[16:]) / atoms),
                               record["score"], rtol=1e-9)
    invariant = check_equivariance(numpy_of(m, "energy"), "S_n x E(3)", X, fields=FIELDS,
                                   target="invariant", random_state=1)
    equivariant = check_equivariance(numpy_of(m, "forces"), "S_n x E(3)", X,
                                     fields=FIELDS, target={"F": "vector"},
                                     random_state=2)
    assert invariant["max_error"] <= 1e-10 and equivariant["max_error"] <= 1e-10


def test_refit_output_with_empty_systems():
    X = clusters(B=12, n=6, seed=12)
    X[[3, 9]] = np.nan          # no atom: energy 0, weighed and scored as one atom
    energy, forces = morse(X)
    history = fit_energy_forces(model(), X[:8], energy[:8], forces[:8], cpu_seconds=5.0,
                                max_iter=20, validation=(X[8:], energy[8:], forces[8:]))
    assert np.isfinite(history["refit"]["trained_score"])
    assert all(np.isfinite(c[-1]) for c in history["refit"]["candidates"])
