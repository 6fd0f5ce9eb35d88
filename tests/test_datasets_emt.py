"""mfa_sklearn.datasets.make_emt_clusters: metal clusters from Langevin dynamics under
ASE's EMT, checked against ASE's own EMT calculator and against the physics (forces
are minus the energy gradient, the thermostat holds its temperature, clusters stay
bound)."""

import sys

import numpy as np
import pytest

from mfa_sklearn.atoms import X_to_atoms, unpad_per_atom
from mfa_sklearn.datasets import EMT_FIELDS, make_emt_clusters
from mfa_sklearn.exceptions import MissingDependencyError
from mfa_sklearn.layout import Layout

pytest.importorskip("ase")

KINDS = {
    "Cu13": dict(),
    "CuAu": dict(elements=("Cu", "Au")),
    "Cu6-13": dict(n_atoms=(6, 13)),
}


@pytest.fixture(scope="module", params=list(KINDS))
def data(request):
    return make_emt_clusters(36, random_state=0, **KINDS[request.param])


def _present(data):
    pos = Layout.infer(data.fields, 3, data.X.shape[1:]).split(data.X)["pos"]
    return ~np.isnan(pos).all(axis=-1)


def test_shapes_keys_and_padding(data):
    n_max = 13
    assert data.X.shape == (36, 4 * n_max) and data.X.dtype == np.float64
    assert data.energy.shape == (36,) and data.forces.shape == (36, 3 * n_max)
    assert data.fields == EMT_FIELDS and data.force_fields == {"forces": "vector"}
    for key in ("n_atoms", "temperature", "trajectory", "symbols"):
        assert data[key].shape == (36,)
    assert "EMT" in data.DESCR
    present = _present(data)
    # every field of an atom is absent together, forces too; absent atoms come last
    parts = Layout.infer(data.fields, 3, data.X.shape[1:]).split(data.X)
    assert np.array_equal(~np.isnan(parts["pos"]), np.repeat(present[..., None], 3, -1))
    assert np.array_equal(~np.isnan(parts["Z"][..., 0]), present)
    assert np.array_equal(~np.isnan(data.forces.reshape(36, n_max, 3)),
                          np.repeat(present[..., None], 3, -1))
    assert np.array_equal(present.sum(axis=1), data.n_atoms)
    assert np.array_equal(present, np.arange(n_max) < data.n_atoms[:, None])
    assert np.all(np.isfinite(data.energy))
    assert set(np.unique(data.temperature)) == {300.0, 600.0, 900.0}


def test_energies_and_forces_match_ase_emt(data):
    from ase.calculators.emt import EMT

    atoms = X_to_atoms(data.X, data.fields)
    forces = unpad_per_atom(data.forces, data.n_atoms)
    for i in range(0, 36, 7):
        atoms[i].calc = EMT()
        assert atoms[i].get_potential_energy() == pytest.approx(data.energy[i], abs=1e-9)
        np.testing.assert_allclose(atoms[i].get_forces(), forces[i], atol=1e-9)
        assert atoms[i].get_chemical_formula(mode="metal") == _hill_free(data.symbols[i])


def _hill_free(formula):
    """'Cu5Au8' -> ASE's 'metal' formula order (alphabetical): 'Au8Cu5'."""
    from ase.formula import Formula

    return Formula(formula).format("metal")


def test_forces_are_minus_the_energy_gradient():
    from mfa_sklearn.datasets._emt import _BatchEMT

    data = make_emt_clusters(3, elements=("Cu", "Au"), n_atoms=(8, 10), random_state=3)
    i = int(np.argmin(data.n_atoms))               # a padded cluster
    n = int(data.n_atoms[i])
    pos = data.X[i, :30].reshape(10, 3)[:n]
    species = (data.X[i, 30:][:n] == 79).astype(int)[None]
    h = 1e-5
    shifts = h * np.eye(3 * n).reshape(3 * n, n, 3)
    batch = np.concatenate([pos + shifts, pos - shifts])
    emt = _BatchEMT(np.repeat(species, len(batch), axis=0), ("Cu", "Au"))
    energy, _, _ = emt(batch)
    gradient = (energy[:3 * n] - energy[3 * n:]) / (2 * h)
    np.testing.assert_allclose(-gradient, data.forces[i, :3 * n], atol=1e-6)


def test_deterministic_given_random_state():
    a = make_emt_clusters(12, n_atoms=(5, 9), random_state=7)
    b = make_emt_clusters(12, n_atoms=(5, 9), random_state=np.random.RandomState(7))
    c = make_emt_clusters(12, n_atoms=(5, 9), random_state=8)
    again = make_emt_clusters(12, n_atoms=(5, 9), random_state=7)
    for key in ("X", "energy", "forces", "n_atoms", "temperature", "trajectory", "symbols"):
        np.testing.assert_array_equal(a[key], again[key])
        np.testing.assert_array_equal(a[key], b[key])    # an int seeds a RandomState
    assert not np.array_equal(a.X, c.X, equal_nan=True)


def test_mixed_sizes_are_mixed_and_trajectories_keep_their_size():
    data = make_emt_clusters(60, n_atoms=(6, 13), samples_per_trajectory=2, random_state=1)
    assert data.X.shape == (60, 52)
    assert len(np.unique(data.n_atoms)) >= 5
    assert data.n_atoms.min() >= 6 and data.n_atoms.max() <= 13
    for t in np.unique(data.trajectory):
        assert len(np.unique(data.n_atoms[data.trajectory == t])) == 1


def test_two_species_really_two():
    data = make_emt_clusters(40, elements=("Cu", "Au"), samples_per_trajectory=4,
                             random_state=2)
    Z = data.X[:, 39:]
    n_cu = (Z == 29).sum(axis=1)
    assert np.all(n_cu >= 1) and np.all((Z == 79).sum(axis=1) >= 1)
    assert np.all(n_cu + (Z == 79).sum(axis=1) == 13)
    assert len(np.unique(n_cu)) >= 3                      # compositions vary
    # species sit on random sites, not sorted
    assert not np.all(np.diff(Z, axis=1) >= 0)
    fixed = make_emt_clusters(6, elements="Cu3Au10", random_state=0)
    assert np.all((fixed.X[:, 39:] == 29).sum(axis=1) == 3)
    assert set(fixed.symbols) == {"Cu3Au10"}
    same = make_emt_clusters(6, elements={"Cu": 3, "Au": 10}, random_state=0)
    np.testing.assert_array_equal(same.X, fixed.X)


def test_thermostat_temperature_and_bound_clusters():
    from ase.units import kB

    data = make_emt_clusters(90, temperatures=(300.0, 900.0), return_velocities=True,
                             random_state=4)
    assert data.fields == {"pos": "point", "v": "vector", "Z": "scalar"}
    assert data.X.shape == (90, 7 * 13)
    atoms = X_to_atoms(data.X, data.fields)
    kinetic = np.array([a.get_kinetic_energy() for a in atoms])
    for T in (300.0, 900.0):
        at_T = data.temperature == T
        measured = 2 * kinetic[at_T].mean() / (3 * 13 * kB)
        assert measured == pytest.approx(T, rel=0.12)
    assert data.energy[data.temperature == 900].mean() > \
        data.energy[data.temperature == 300].mean()
    pos = data.X[:, :39].reshape(90, 13, 3)
    dist = np.linalg.norm(pos[:, :, None] - pos[:, None], axis=-1) + 1e3 * np.eye(13)
    assert dist.min(axis=2).max() < 3.5                   # every atom has a neighbour
    assert dist.min() > 1.8                               # and none overlap
    np.testing.assert_allclose(pos.mean(axis=1), 0.0, atol=1e-12)   # centred


def test_fcc_start_and_single_temperature():
    data = make_emt_clusters(8, start="fcc", temperatures=500, n_equilibration=0,
                             shuffle=False, random_state=0)
    assert np.all(data.temperature == 500.0)
    assert np.all(data.trajectory == 0) and np.all(data.n_atoms == 13)


def test_atom_leaving_the_cluster_warns():
    with pytest.warns(RuntimeWarning, match="left its cluster"):
        make_emt_clusters(6, n_atoms=2, temperatures=30000, random_state=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_samples=0), "n_samples"),
    (dict(n_samples=2.5), "n_samples"),
    (dict(elements="Xx"), "not available"),
    (dict(elements="H"), "not available"),
    (dict(elements="cu"), "formula"),
    (dict(elements=("Cu", "Cu")), "distinct"),
    (dict(elements=3), "elements"),
    (dict(elements={"Cu": 0}), "elements"),
    (dict(elements="Cu3Au10", n_atoms=12), "contradicts"),
    (dict(n_atoms=1), "n_atoms"),
    (dict(n_atoms=(9, 6)), "n_atoms"),
    (dict(n_atoms=(6, 9, 12)), "pair"),
    (dict(n_atoms=400), "309"),
    (dict(elements=("Cu", "Au", "Ag"), n_atoms=(2, 5)), "every one"),
    (dict(temperatures=()), "temperatures"),
    (dict(temperatures=(300, -1)), "temperatures"),
    (dict(start="cube"), "start"),
    (dict(samples_per_trajectory=0), "samples_per_trajectory"),
    (dict(sample_interval=0), "sample_interval"),
    (dict(n_equilibration=-1), "n_equilibration"),
    (dict(timestep=0), "timestep"),
    (dict(friction=-0.1), "friction"),
])
def test_parameter_errors(kwargs, match):
    kwargs = dict(dict(n_samples=3), **kwargs)
    with pytest.raises(ValueError, match=match):
        make_emt_clusters(**kwargs)


def test_missing_ase_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "ase" or m.startswith("ase.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "ase", None)
    with pytest.raises(MissingDependencyError, match=r"mfa_sklearn\[atoms\]"):
        make_emt_clusters(3, random_state=0)
