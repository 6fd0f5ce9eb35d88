"""LocalFrameAveraged: exact invariance of energies, equivariance and exactness of forces,
symmetric clusters, layouts, dtypes, devices, skorch and the loss."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from mfa_sklearn.exceptions import NonFiniteInputError  # noqa: E402
from mfa_sklearn.layout import Layout  # noqa: E402
from mfa_sklearn.local._environments import LocalFrames, local_group  # noqa: E402
from mfa_sklearn.testing import check_equivariance  # noqa: E402
from mfa_sklearn.torch import (  # noqa: E402
    EnergyForceLoss,
    LocalFrameAveraged,
    pack_targets,
)

from ._helpers import CONTROL, fcc_ball, record_error  # noqa: E402

FIELDS = {"pos": "point", "Z": "scalar"}
BOUND = 1e-10


class AtomMLP(nn.Module):
    """A two-layer tanh MLP per atom: nothing about it is symmetric."""

    def __init__(self, n_features_in, hidden=32, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(n_features_in, hidden), nn.Tanh(),
                                 nn.Linear(hidden, 1))

    def forward(self, features):
        return self.net(features)


def model(group="E(3)", dtype=torch.float64, **kwargs):
    m = LocalFrameAveraged(AtomMLP, fields=FIELDS, group=group, cutoff=4.0,
                           n_neighbors=kwargs.pop("n_neighbors", 8), **kwargs)
    return m.to(dtype).eval()


def clusters(B=6, n=9, seed=0, absent=True):
    """Random clusters with two species; with ``absent``, systems of 4..n atoms
    (absent atoms anywhere, all NaN)."""
    rng = np.random.default_rng(seed)
    pos = rng.normal(scale=1.3, size=(B, n, 3)) + rng.normal(scale=3.0, size=(B, 1, 3))
    Z = rng.integers(1, 3, size=(B, n, 1)).astype(float)
    X = np.concatenate([pos, Z], axis=2)
    if absent:
        for b in range(B):
            X[b, rng.permutation(n)[:rng.integers(0, n - 3)]] = np.nan
    return X


def icosahedron_with_centre(scale=2.5):
    phi = (1 + 5 ** 0.5) / 2
    v = [(0, s1, s2 * phi) for s1 in (-1, 1) for s2 in (-1, 1)]
    v = [p for c in v for p in (c, c[1:] + c[:1], c[2:] + c[:2])]
    pos = np.array([(0.0, 0.0, 0.0)] + v) * scale / np.sqrt(1 + phi ** 2)
    return np.concatenate([pos, np.ones((13, 1))], axis=1)


def numpy_of(m, kind):
    """The model as a numpy callable for check_equivariance."""
    def call(X):
        Xt = torch.as_tensor(X)
        if kind == "energy":
            return m.energy(Xt).detach().numpy()
        return m.forces(Xt).numpy()
    return call


@pytest.mark.parametrize("group", ["E(3)", "SE(3)"])
@pytest.mark.parametrize("rule", ["first_above", "pivoted"])
@pytest.mark.parametrize("first_vector", ["nearest", "weighted"])
def test_energy_invariant_forces_equivariant(group, rule, first_vector):
    m = model(group, row_rule=rule, first_vector=first_vector)
    X = clusters()
    whole = f"S_n x {group}"
    energy = check_equivariance(numpy_of(m, "energy"), whole, X, fields=FIELDS,
                                target="invariant", random_state=1)
    forces = check_equivariance(numpy_of(m, "forces"), whole, X, fields=FIELDS,
                                target={"F": "vector"}, random_state=2)
    case = f"torch local {group} {rule} {first_vector}"
    record_error(f"{case} energy", energy["max_error"])
    record_error(f"{case} forces", forces["max_error"])
    assert energy["max_error"] <= BOUND, energy
    assert forces["max_error"] <= BOUND, forces


@pytest.mark.parametrize("first_vector", ["nearest", "weighted"])
def test_radial_features_alone(first_vector):
    """angular=False: the full features less the angular columns, and the energies and
    forces of a model on them still exactly invariant and equivariant."""
    m = model(first_vector=first_vector, angular=False)
    X = clusters()
    full = model(first_vector=first_vector).atom_features(torch.tensor(X)).numpy()
    own = 1 + (3 if first_vector == "weighted" else 0)
    # 8 radial functions x (1 + 3 + 6) monomials x (1 + Z) channels after the own fields
    body = full[:, own:].reshape(len(full), 8, 10, 2)
    expected = np.concatenate([full[:, :own], body[:, :, 0].reshape(len(full), -1)], 1)
    assert m.n_features_in == own + 16
    np.testing.assert_array_equal(m.atom_features(torch.tensor(X)).numpy(), expected)
    whole = "S_n x E(3)"
    energy = check_equivariance(numpy_of(m, "energy"), whole, X, fields=FIELDS,
                                target="invariant", random_state=1)
    forces = check_equivariance(numpy_of(m, "forces"), whole, X, fields=FIELDS,
                                target={"F": "vector"}, random_state=2)
    record_error(f"torch local radial {first_vector} energy", energy["max_error"])
    record_error(f"torch local radial {first_vector} forces", forces["max_error"])
    assert energy["max_error"] <= BOUND, energy
    assert forces["max_error"] <= BOUND, forces


def test_control_bare_mlp_is_not_symmetric():
    """The protocol's control: the same kind of MLP on raw coordinates is O(1) off."""
    mlp = AtomMLP(9 * 4).double()

    def bare(X):
        return mlp(torch.as_tensor(np.nan_to_num(X)).reshape(len(X), -1)).detach().numpy()

    report = check_equivariance(bare, "S_n x E(3)", clusters(absent=False), fields=FIELDS,
                                target="invariant", random_state=1)
    assert report["max_error"] >= CONTROL


@pytest.mark.parametrize("first_vector", ["nearest", "weighted"])
def test_forces_are_the_energy_gradient(first_vector):
    """gradcheck of the energy (float64, generic clusters) and forces = -dE/dx."""
    m = model(n_neighbors=4, first_vector=first_vector)
    X = torch.tensor(clusters(B=2, n=6, absent=False))
    pos = X[..., :3].clone().requires_grad_(True)

    def energy(p):
        return m.energy(torch.cat([p, X[..., 3:]], dim=2))

    assert torch.autograd.gradcheck(energy, (pos,), eps=1e-6, atol=1e-6, rtol=1e-5)
    grad = torch.autograd.grad(energy(pos).sum(), pos)[0]
    torch.testing.assert_close(m.forces(X), -grad, rtol=1e-12, atol=1e-14)


def test_force_training_second_derivatives():
    """gradgradcheck: the force loss trains through d(forces)/d(weights) and
    d(forces)/dx, which run through the matmul gradients of the frames' row products."""
    m = model(n_neighbors=4)
    X = torch.tensor(clusters(B=2, n=5, absent=False))
    pos = X[..., :3].clone().requires_grad_(True)

    def energy(p):
        return m.energy(torch.cat([p, X[..., 3:]], dim=2))

    assert torch.autograd.gradgradcheck(energy, (pos,), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_row_products_keep_their_bits_and_have_exact_gradients():
    from mfa_sklearn.groups._namespace import get_namespace
    from mfa_sklearn.groups.permutation._row_products import row_products
    rng = np.random.default_rng(7)
    for K, S in [(1, 1), (1, 3), (3, 1)]:
        x = torch.tensor(rng.normal(size=(4, K, 5, 3)), requires_grad=True)
        M = torch.tensor(rng.normal(size=(4, S, 3, 3)), requires_grad=True)
        xp = get_namespace(x)
        expected = row_products(np, x.detach().numpy(), M.detach().numpy())
        assert np.array_equal(row_products(xp, x, M).detach().numpy(), expected)
        assert torch.autograd.gradcheck(lambda a, b: row_products(xp, a, b), (x, M))
        assert torch.autograd.gradgradcheck(lambda a, b: row_products(xp, a, b), (x, M))


def test_float32_input_is_decided_with_float32_tolerances():
    """float32 X: the neighbourhoods stay float32, so that the decisions (ties at the
    k-th neighbour, frame tolerances) allow for float32 rounding as the estimators'
    do; the features (float64 by default) are within float32 rounding of float64 X's."""
    X = torch.tensor(clusters())
    m = model()
    envs = m.environments(X.float())
    assert envs.canonical.dtype == torch.float32
    f32 = m.features_of(envs)
    f64 = m.features_of(m.environments(X))
    assert f32.dtype == torch.float64
    scale = f64.abs().amax(dim=0).clamp(min=1.0)
    assert ((f32 - f64).abs() / scale).max() <= 1e-5
    assert ((f32 - f64).abs() / scale).max() > 0     # really float32


def test_float32_symmetric_clusters_are_exact_to_float32():
    """An icosahedron whose surface atoms' 4th and 5th neighbours tie (n_neighbors=4)
    and a linear molecule, in float32: float64 tolerances split their float32-rounded
    ties (energies off by 0.5, forces by 1.1)."""
    ico = icosahedron_with_centre()
    X = np.full((2, 13, 4), np.nan)
    X[0] = ico
    X[1, :5, :3], X[1, :5, 3] = np.outer(np.arange(5) * 2.0, [0.3, 0.5, 0.8]), 1.0
    X = X.astype(np.float32)
    m = model(dtype=torch.float32, n_neighbors=4)
    for kind, target in (("energy", "invariant"), ("forces", "vector")):
        worst = max(check_equivariance(numpy_of(m, kind), "S_n x E(3)", X, fields=FIELDS,
                                       target=target, random_state=seed)["max_error"]
                    for seed in range(3))
        assert worst <= 1e-4, (kind, worst)


@pytest.mark.parametrize("first_vector", ["nearest", "weighted"])
def test_symmetric_clusters_finite_invariant_and_equivariant(first_vector):
    """At a perfect icosahedron the energy is not differentiable, but its gradient is
    that of the mean canonical input over the stabilizer's elements: symmetric, so the
    forces are equivariant there too. (The weighted direction's length scale, the
    largest neighbour distance, shares its gradient among tied neighbours.)"""
    ico = icosahedron_with_centre()
    rng = np.random.default_rng(3)
    rotations = np.linalg.qr(rng.normal(size=(3, 3, 3)))[0]
    X = np.stack([np.concatenate([ico[:, :3] @ R + rng.normal(size=3), ico[:, 3:]], axis=1)
                  for R in rotations])
    m = model(n_neighbors=12, first_vector=first_vector)
    energy, forces = m.energy_and_forces(torch.tensor(X))
    assert torch.isfinite(energy).all() and torch.isfinite(forces).all()
    report = check_equivariance(numpy_of(m, "energy"), "S_n x E(3)", X, fields=FIELDS,
                                target="invariant", random_state=4)
    assert report["max_error"] <= BOUND, report
    forces_report = check_equivariance(numpy_of(m, "forces"), "S_n x E(3)", X,
                                       fields=FIELDS, target="vector", random_state=5)
    assert forces_report["max_error"] <= BOUND, forces_report
    nearby = X + np.concatenate([1e-3 * rng.normal(size=X[..., :3].shape),
                                 np.zeros(X[..., 3:].shape)], axis=2)
    assert torch.isfinite(m.forces(torch.tensor(nearby))).all()


def test_atoms_exactly_at_the_cutoff_keep_forces_equivariant():
    """fcc neighbours at exactly the cutoff (the lattice constant) are left out
    whatever the rounding of the rotated coordinates: energies and forces exact."""
    ball = fcc_ball(3.6)                                                  # 19 atoms
    X = np.concatenate([ball, np.ones((len(ball), 1))], axis=1)[None]
    m = LocalFrameAveraged(AtomMLP, fields=FIELDS, cutoff=3.6, n_neighbors=18).double()
    X = np.repeat(X, 8, axis=0)                       # eight rotations of it
    for kind, target in (("energy", "invariant"), ("forces", "vector")):
        report = check_equivariance(numpy_of(m.eval(), kind), "S_n x E(3)", X,
                                    fields=FIELDS, target=target, random_state=1)
        assert report["max_error"] <= BOUND, (kind, report)


def test_forces_at_rounding_distance_from_a_lattice_are_equivariant():
    """Lattice sites built in floating point sit within rounding of a symmetric cluster:
    which canonical coordinates are snapped to exact zeros depends on the orientation,
    so snapping must keep their gradient (it cut it: forces off by 4e-3 here)."""
    ball = fcc_ball(3.6)                                                  # 19 atoms
    rng = np.random.default_rng(102)
    X = np.full((3, 19, 4), 1.0)
    for i, level in enumerate((0.0, 1e-14, 1e-13)):
        X[i, :, :3] = ball + level * 3.6 * rng.normal(size=ball.shape)
    m = LocalFrameAveraged(AtomMLP, fields=FIELDS, cutoff=6.0, n_neighbors=None).double()
    for seed in range(3):
        report = check_equivariance(numpy_of(m.eval(), "forces"), "S_n x E(3)", X,
                                    fields=FIELDS, target="vector", random_state=seed)
        assert report["max_error"] <= BOUND, report


@pytest.mark.parametrize("encoding,radial_basis", [
    ("density", "shells"), ("density", "scales"), ("density", "exponentials"),
    ("rows", "shells")])
@pytest.mark.parametrize("first_vector", ["nearest", "weighted"])
def test_torch_features_equal_the_numpy_path(first_vector, encoding, radial_basis):
    X = clusters()
    m = model(first_vector=first_vector, encoding=encoding, radial_basis=radial_basis)
    torch_features = m.atom_features(torch.tensor(X)).numpy()
    system, group = local_group("E(3)")
    spec = LocalFrames(Layout.infer(FIELDS, system, X.shape[1:]), group, 4.0, 8,
                       first_vector)
    numpy_features = spec.environments(X).features(encoding, radial_basis=radial_basis)
    np.testing.assert_allclose(torch_features, numpy_features, rtol=0, atol=1e-12)


def test_mask_flat_layout_and_dtypes():
    X = clusters()
    m = model()
    energy, forces = m.energy_and_forces(torch.tensor(X))
    # a mask instead of NaN rows: absent atoms may hold anything
    mask = torch.tensor(~np.isnan(X[..., 0]))
    filled = torch.tensor(np.nan_to_num(X, nan=123.0))
    e_mask, f_mask = m.energy_and_forces(filled, mask)
    torch.testing.assert_close(e_mask, energy, rtol=1e-14, atol=0)
    torch.testing.assert_close(f_mask, forces, rtol=1e-14, atol=0, equal_nan=True)
    # flat field-major columns: all positions, then all species
    flat = np.concatenate([X[..., :3].reshape(len(X), -1), X[..., 3]], axis=1)
    e_flat, f_flat = m.energy_and_forces(torch.tensor(flat))
    torch.testing.assert_close(e_flat, energy, rtol=1e-14, atol=0)
    torch.testing.assert_close(f_flat, forces.reshape(len(X), -1), rtol=1e-14, atol=0,
                               equal_nan=True)
    assert torch.isnan(forces[~mask]).all() and torch.isfinite(forces[mask]).all()
    # float32 in, float32 out (frames in float64)
    m32 = model(dtype=torch.float32)
    e32, f32 = m32.energy_and_forces(torch.tensor(X, dtype=torch.float32))
    assert e32.dtype == f32.dtype == torch.float32
    torch.testing.assert_close(e32.double(), m32.double().energy(torch.tensor(X)),
                               rtol=1e-4, atol=1e-5)


def test_empty_system_and_lone_atoms():
    X = clusters(B=3, n=5, absent=False)
    X[1] = np.nan                     # no atoms: NaN energy
    X[2, 1:] = np.nan                 # one atom: no neighbours, zero force
    energy, forces = model().energy_and_forces(torch.tensor(X))
    assert torch.isnan(energy[1]) and torch.isfinite(energy[[0, 2]]).all()
    assert torch.isnan(forces[1]).all()
    torch.testing.assert_close(forces[2, 0], torch.zeros(3, dtype=torch.float64))
    # batches without atoms, and empty batches
    for empty in (torch.full((2, 5, 4), np.nan, dtype=torch.float64),
                  torch.zeros((0, 5, 4), dtype=torch.float64)):
        energy, forces = model().energy_and_forces(empty)
        assert energy.shape == empty.shape[:1] and torch.isnan(energy).all()
        assert forces.shape == empty.shape[:2] + (3,) and torch.isnan(forces).all()


@pytest.mark.parametrize("first_vector", ["nearest", "weighted"])
def test_systems_of_one_atom_without_a_neighbour_limit(first_vector):
    # n_neighbors=None sizes the neighbour slots by the batch: none for lone atoms
    # (the atom module's width is measured on one, so the class could not be built)
    m = model(n_neighbors=None, first_vector=first_vector)
    lone = torch.tensor(clusters(B=3, n=1, absent=False))
    energy, forces = m.energy_and_forces(lone)
    assert torch.isfinite(energy).all() and torch.all(forces == 0)


def test_training_mode_keeps_the_force_graph():
    m = model().train()
    X = torch.tensor(clusters())
    y = torch.tensor(pack_targets(np.ones(len(X)), np.zeros((len(X), 9, 3))))
    y[:, 1:] = torch.where(torch.isnan(X[..., :1]).expand(-1, -1, 3).reshape(len(X), -1),
                           np.nan, 0.0)
    m.return_forces = True
    loss = EnergyForceLoss(force_weight=5.0)(m(X), y)
    loss.backward()
    grads = [p.grad for p in m.atom_module.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # the force term alone reaches the weights through create_graph
    m.zero_grad()
    only_forces = EnergyForceLoss(force_weight=1.0)(m(X), torch.cat(
        [m.energy(X).detach()[:, None], y[:, 1:]], dim=1))
    only_forces.backward()
    assert any(p.grad.abs().sum() > 0 for p in m.atom_module.parameters())


def test_skorch_energy_and_forces():
    skorch = pytest.importorskip("skorch")
    X = clusters(B=40, seed=5).astype(np.float32)
    energy = np.nansum(np.nan_to_num(X[..., 0]) ** 2, axis=1)
    forces = np.where(np.isnan(X[..., :3]), np.nan, -2 * np.nan_to_num(X[..., :3]))
    forces[..., 1:] = np.where(np.isnan(forces[..., 1:]), np.nan, 0.0)
    y = pack_targets(energy, forces)
    net = skorch.NeuralNetRegressor(
        LocalFrameAveraged, module__atom_module=AtomMLP, module__fields=FIELDS,
        module__cutoff=4.0, module__n_neighbors=8, module__return_forces=True,
        criterion=EnergyForceLoss, criterion__force_weight=1.0,
        optimizer=torch.optim.Adam, lr=1e-2, max_epochs=4, batch_size=20,
        train_split=None, verbose=0)
    net.fit(X, y)
    losses = net.history[:, "train_loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    predicted = net.predict(X)           # skorch keeps the first output: energies
    assert predicted.shape == (len(X),) and np.isfinite(predicted).all()
    _, f = net.module_.energy_and_forces(torch.tensor(X))
    assert np.array_equal(np.isnan(f.numpy()), np.isnan(forces))


def test_every_neighbour_within_the_cutoff():
    """n_neighbors=None keeps every atom within the cutoff: the same neighbourhoods,
    features, energies and forces as an n_neighbors that no atom reaches, and still
    exactly symmetric."""
    X = torch.tensor(clusters(n=9))
    every, many = model(n_neighbors=None), model(n_neighbors=8)
    many.load_state_dict(every.state_dict())
    np.testing.assert_array_equal(every.atom_features(X).numpy(),
                                  many.atom_features(X).numpy())
    for a, b in zip(every.energy_and_forces(X), many.energy_and_forces(X)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    energy = check_equivariance(numpy_of(every, "energy"), "S_n x E(3)", X.numpy(),
                                fields=FIELDS, target="invariant", random_state=3)
    assert energy["max_error"] <= BOUND, energy
    fewer = model(n_neighbors=3)
    assert not np.array_equal(fewer.atom_features(X).numpy(), every.atom_features(X).numpy())


def test_errors():
    with pytest.raises(ValueError, match="E\\(d\\)"):
        LocalFrameAveraged(AtomMLP, fields=FIELDS, group="GL(3)")
    with pytest.raises(TypeError, match="atom_module__"):
        LocalFrameAveraged(AtomMLP, fields=FIELDS, hidden=3)
    with pytest.raises(ValueError, match="radial_basis"):
        LocalFrameAveraged(AtomMLP, fields=FIELDS, radial_basis="gaussians")
    with pytest.raises(ValueError, match="angular"):
        LocalFrameAveraged(AtomMLP, fields=FIELDS, encoding="rows", angular=False)
    with pytest.raises(ValueError, match="needs an int n_neighbors"):
        LocalFrameAveraged(AtomMLP, fields=FIELDS, encoding="rows", n_neighbors=None)
    with pytest.raises(ValueError, match="n_neighbors"):
        LocalFrameAveraged(AtomMLP, fields=FIELDS, n_neighbors=0)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        LocalFrameAveraged(lambda f: f, fields=FIELDS)
    m = model()
    with pytest.raises(Exception, match="point"):
        LocalFrameAveraged(AtomMLP, fields={"a": "point", "b": "point"}).energy(
            torch.zeros(2, 4, 6, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        m.energy(np.zeros((2, 9, 4)))
    with pytest.raises(ValueError, match=r"shape \(n_systems, n_atoms\) = \(2, 9\); got \(2, 8\)"):
        m.energy(torch.zeros(2, 9, 4, dtype=torch.float64), torch.ones(2, 8, dtype=bool))
    with pytest.raises(TypeError, match=r"boolean torch\.Tensor .* got Tensor of torch\.int64"):
        m.energy(torch.zeros(2, 9, 4, dtype=torch.float64), torch.ones(2, 9, dtype=int))
    X = torch.tensor(clusters())
    with pytest.raises(NonFiniteInputError, match="mask marks atoms present"):
        m.energy(X, torch.ones(X.shape[:2], dtype=bool))
    X[0, 0, 1] = np.nan
    with pytest.raises(NonFiniteInputError, match="partly NaN"):
        m.energy(X)
    wrong = LocalFrameAveraged(nn.Linear(m.n_features_in, 2).double(), fields=FIELDS,
                               cutoff=4.0, n_neighbors=8)
    with pytest.raises(ValueError, match="atomic energies"):
        wrong.energy(torch.tensor(clusters()))
    with pytest.raises(ValueError, match="force_weight"):
        EnergyForceLoss(force_weight=-1)
    with pytest.raises(ValueError, match="pack_targets"):
        EnergyForceLoss()((torch.zeros(2), torch.zeros(2, 6)), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="same systems: energy 3 values, forces of shape"):
        pack_targets(np.zeros(3), np.zeros((2, 5, 3)))


def mixed_batch(seed=0):
    """Generic clusters with absent atoms, perfect icosahedra (tied neighbourhoods) and
    one nearly perfect one (ties within the colours' quantisation) in one batch."""
    generic = clusters(B=8, n=13, seed=seed)
    ico = icosahedron_with_centre()
    rng = np.random.default_rng(seed)
    nearly = ico.copy()
    nearly[:, :3] += 1e-9 * rng.normal(size=(13, 3))
    return np.concatenate([generic, ico[None], nearly[None], ico[None]])


def on_device(m, X, monkeypatch):
    """The model's environments decided where X lives, as on an accelerator (on CPU
    tensors the host decides by default)."""
    with monkeypatch.context() as patch:
        patch.setattr(LocalFrames, "decides_on_device", lambda self, X: True)
        return m.environments(X)


@pytest.mark.parametrize("group", ["E(3)", "SE(3)"])
@pytest.mark.parametrize("first_vector", ["nearest", "weighted"])
def test_device_path_takes_the_host_decisions(group, first_vector, monkeypatch):
    """Neighbourhoods canonicalized on the tensors' device (colours, orders and frames
    there, tied ones redone on the host) are those of the host's decisions: the same
    atom orders, canonical rows equal to rounding, the same energies and forces."""
    m = model(group, first_vector=first_vector, n_neighbors=12)
    X = torch.tensor(mixed_batch())
    device = on_device(m, X, monkeypatch)
    host = m.environments(X)
    assert device.frame is None and host.frame is not None
    assert torch.equal(torch.as_tensor(device.centre), torch.as_tensor(host.centre))
    assert torch.equal(torch.as_tensor(device.n_present), torch.as_tensor(host.n_present))
    torch.testing.assert_close(device.canonical, host.canonical, rtol=0, atol=1e-13)
    scale = float(torch.nan_to_num(X).abs().max())
    for name in ("energy", "forces"):
        expected = getattr(m, name)(X)
        with monkeypatch.context() as patch:
            patch.setattr(LocalFrames, "decides_on_device", lambda self, X: True)
            got = getattr(m, name)(X)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12 * scale,
                                   equal_nan=True)


@pytest.mark.parametrize("first_vector", ["nearest", "weighted"])
def test_device_path_is_exactly_symmetric(first_vector, monkeypatch):
    """The protocol on the device path itself: energies invariant and forces
    equivariant under random E(3) x S_n, with a backbone that is not."""
    m = model(first_vector=first_vector, n_neighbors=12)
    generic = clusters(B=6, n=13, seed=5)
    # energies also of a perfect icosahedron, whose tied neighbourhoods go to the host
    # (its forces carry no symmetry: the energy is not differentiable there)
    X = np.concatenate([generic, icosahedron_with_centre()[None]])
    with monkeypatch.context() as patch:
        patch.setattr(LocalFrames, "decides_on_device", lambda self, X: True)
        energy = check_equivariance(numpy_of(m, "energy"), "S_n x E(3)", X, fields=FIELDS,
                                    target="invariant", random_state=3)
        forces = check_equivariance(numpy_of(m, "forces"), "S_n x E(3)", generic,
                                    fields=FIELDS, target={"F": "vector"}, random_state=4)
    record_error(f"torch local device path {first_vector} energy", energy["max_error"])
    record_error(f"torch local device path {first_vector} forces", forces["max_error"])
    assert energy["max_error"] <= BOUND, energy
    assert forces["max_error"] <= BOUND, forces


def test_device_path_errors_and_float32(monkeypatch):
    X = clusters(B=4, n=9, absent=False)
    X[2, 5, :3] = X[2, 1, :3]
    with pytest.raises(ValueError, match=r"atoms coincide in 1 sample.*system 2, atom 1"):
        on_device(model(), torch.tensor(X), monkeypatch)
    X32 = torch.tensor(mixed_batch(seed=1), dtype=torch.float32)
    m = model(dtype=torch.float32, n_neighbors=12)
    device, host = on_device(m, X32, monkeypatch), m.environments(X32)
    assert torch.equal(torch.as_tensor(device.centre), torch.as_tensor(host.centre))
    torch.testing.assert_close(device.canonical, host.canonical, rtol=0, atol=1e-13)
    # a lone atom, a pair and an empty system; a batch without atoms at all
    X = clusters(B=3, n=5, absent=False)
    X[0, 1:] = np.nan
    X[1, 2:] = np.nan
    X[2] = np.nan
    m = model()
    with monkeypatch.context() as patch:
        patch.setattr(LocalFrames, "decides_on_device", lambda self, X: True)
        energy, forces = m.energy_and_forces(torch.tensor(X))
        nothing = m.energy(torch.tensor(X[2:]))
        none = m.local_frames(X.shape[1:]).environments(torch.tensor(X[2:]))
    assert len(none.system) == 0 and m.features_of(none).shape == (0, m.n_features_in)
    for batch in (torch.tensor(X[2:]), X[2:]):   # the host's decisions, torch and numpy
        none = m.local_frames(X.shape[1:]).environments(batch)
        assert len(none.system) == 0
        assert tuple(m.features_of(none).shape) == (0, m.n_features_in)
    expected = m.energy_and_forces(torch.tensor(X))
    torch.testing.assert_close(energy, expected[0], rtol=1e-12, atol=1e-12, equal_nan=True)
    torch.testing.assert_close(forces, expected[1], rtol=1e-12, atol=1e-12, equal_nan=True)
    assert torch.isnan(energy[2]) and torch.isfinite(energy[:2]).all()
    assert torch.isnan(nothing).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_mixed_batch_equals_cpu():
    X = mixed_batch()
    m = model(n_neighbors=12)
    e_cpu, f_cpu = m.energy_and_forces(torch.tensor(X))
    e_gpu, f_gpu = m.to("cuda").energy_and_forces(torch.tensor(X, device="cuda"))
    torch.testing.assert_close(e_gpu.cpu(), e_cpu, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(f_gpu.cpu(), f_cpu, rtol=1e-10, atol=1e-11, equal_nan=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    X = clusters()
    m = model()
    e_cpu, f_cpu = m.energy_and_forces(torch.tensor(X))
    e_gpu, f_gpu = m.to("cuda").energy_and_forces(torch.tensor(X, device="cuda"))
    assert e_gpu.device.type == "cuda"
    torch.testing.assert_close(e_gpu.cpu(), e_cpu, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(f_gpu.cpu(), f_cpu, rtol=1e-10, atol=1e-12, equal_nan=True)


def test_example_runs():
    pytest.importorskip("skorch")
    from ._helpers import run_script
    out = run_script("examples/atoms_torch.py")
    assert "plain torch loop" in out and "skorch NeuralNetRegressor" in out
    errors = out.strip().splitlines()[-1].split()
    assert float(errors[-1]) <= BOUND and float(errors[-3].rstrip(",")) <= BOUND, out


def test_pickle_and_deepcopy():
    import copy
    import pickle
    m = model()
    X = torch.tensor(clusters())
    energy = m.energy(X)                       # fills the layout cache
    for other in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        torch.testing.assert_close(other.energy(X), energy, rtol=0, atol=0)
