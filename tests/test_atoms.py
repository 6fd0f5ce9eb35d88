"""mfa_sklearn.atoms: ase.Atoms <-> padded (X, fields), per-atom arrays <-> NaN rows."""

import sys
import warnings

import numpy as np
import pytest

from mfa_sklearn.atoms import X_to_atoms, atoms_to_X, pad_per_atom, unpad_per_atom
from mfa_sklearn.exceptions import LayoutError, MissingDependencyError
from mfa_sklearn.layout import Layout


class _Plain:
    """Not an ase.Atoms: only the methods atoms_to_X reads."""

    def __init__(self, positions, numbers, velocities=None):
        self._p, self._z, self._v = positions, numbers, velocities

    def get_positions(self):
        return self._p

    def get_atomic_numbers(self):
        return self._z

    def get_velocities(self):
        return self._v


def _systems(rng, sizes=(3, 5, 1, 4)):
    return [(rng.normal(size=(n, 3)), rng.integers(1, 80, n), rng.normal(size=(n, 3)))
            for n in sizes]


def test_atoms_to_X_layout_without_ase():
    systems = _systems(np.random.default_rng(0))
    X, fields = atoms_to_X([_Plain(*s) for s in systems], velocities=True)
    assert fields == {"pos": "point", "v": "vector", "Z": "scalar"}
    assert X.shape == (4, 5 * 7) and X.dtype == np.float64
    # field-major columns: positions atom-major, then velocities, then numbers
    for i, (p, z, v) in enumerate(systems):
        n = len(z)
        np.testing.assert_array_equal(X[i, :3 * n], p.ravel())
        np.testing.assert_array_equal(X[i, 15:15 + 3 * n], v.ravel())
        np.testing.assert_array_equal(X[i, 30:30 + n], z)
        assert np.isnan(X[i, 3 * n:15]).all() and np.isnan(X[i, 30 + n:]).all()
    X3, _ = atoms_to_X([_Plain(*s) for s in systems], velocities=True, three_d=True, n_max=6)
    assert X3.shape == (4, 6, 7)
    parts = Layout.infer(fields, 3, X.shape[1:]).split(X)
    np.testing.assert_array_equal(X3[:, :5, 0:3], parts["pos"])
    np.testing.assert_array_equal(X3[:, :5, 6], parts["Z"][..., 0])
    assert np.isnan(X3[:, 5]).all()


@pytest.mark.parametrize("three_d", [False, True])
@pytest.mark.parametrize("velocities", [False, True])
def test_round_trip_through_ase(three_d, velocities):
    ase = pytest.importorskip("ase")
    rng = np.random.default_rng(1)
    atoms = []
    for p, z, v in _systems(rng):
        a = ase.Atoms(numbers=z, positions=p)
        a.set_velocities(v)
        atoms.append(a)
    X, fields = atoms_to_X(atoms, velocities=velocities, three_d=three_d)
    back = X_to_atoms(X, fields)
    assert len(back) == len(atoms)
    for a, b in zip(atoms, back):
        np.testing.assert_array_equal(a.get_atomic_numbers(), b.get_atomic_numbers())
        np.testing.assert_array_equal(a.get_positions(), b.get_positions())
        if velocities:
            np.testing.assert_allclose(a.get_velocities(), b.get_velocities(), rtol=1e-14)
    again, _ = atoms_to_X(back, velocities=velocities, three_d=three_d)
    np.testing.assert_array_equal(again, X)


def test_X_to_atoms_drops_absent_rows_anywhere_and_reads_other_names():
    pytest.importorskip("ase")
    X = np.full((2, 3, 4), np.nan)
    X[0, 0] = [0, 0, 0, 29]
    X[0, 2] = [0, 0, 2.5, 79]
    X[1, 1] = [1, 1, 1, 1]
    atoms = X_to_atoms(X, {"r": "point", "charge": "scalar"})
    assert [len(a) for a in atoms] == [2, 1]
    assert atoms[0].get_chemical_symbols() == ["Cu", "Au"]
    np.testing.assert_array_equal(atoms[0].positions[1], [0, 0, 2.5])
    assert atoms[1].get_chemical_symbols() == ["H"]


def test_X_to_atoms_errors():
    pytest.importorskip("ase")
    X, fields = atoms_to_X([_Plain(np.zeros((2, 3)) + [[0, 0, 0], [0, 0, 2]], [29, 29])])
    bad = X.copy()
    bad[0, 1] = np.nan                                  # half an atom
    with pytest.raises(ValueError, match="some but not all"):
        X_to_atoms(bad, fields)
    bad = X.copy()
    bad[0, -1] = 2.5
    with pytest.raises(ValueError, match="integer atomic numbers"):
        X_to_atoms(bad, fields)
    with pytest.raises(LayoutError):
        X_to_atoms(X[:, :-1], fields)
    with pytest.raises(LayoutError, match="scalar"):
        X_to_atoms(np.zeros((1, 10)), {"pos": "point", "a": "scalar", "b": "scalar"})
    with pytest.raises(LayoutError, match="2-D or 3-D"):
        X_to_atoms(np.zeros(8), fields)


def test_periodic_systems_warn_that_the_cell_is_dropped():
    ase = pytest.importorskip("ase")
    cluster = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    crystal = ase.Atoms("Cu", positions=[[0, 0, 0]], cell=[2.5] * 3, pbc=True)
    with pytest.warns(UserWarning, match=r"1 sample\(s\) \(first: \[1\]\).*periodic"):
        X, _ = atoms_to_X([cluster, crystal])
    np.testing.assert_array_equal(X[1, :3], [0, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        atoms_to_X([cluster])


def test_atoms_to_X_errors():
    with pytest.raises(ValueError, match="empty"):
        atoms_to_X([])
    with pytest.raises(TypeError, match="get_positions"):
        atoms_to_X([object()])
    no_velocities = _Plain(np.zeros((1, 3)), [1])
    no_velocities.get_velocities = None
    with pytest.raises(TypeError, match="get_velocities"):
        atoms_to_X([no_velocities], velocities=True)
    with pytest.raises(ValueError, match="n_max"):
        atoms_to_X([_Plain(np.zeros((3, 3)), [1, 1, 1])], n_max=2)
    with pytest.raises(ValueError, match="n_max"):
        atoms_to_X([_Plain(np.zeros((3, 3)), [1, 1, 1])], n_max=0)


def test_pad_and_unpad_per_atom():
    rng = np.random.default_rng(2)
    arrays = [rng.normal(size=(n, 3)) for n in (4, 1, 3)]
    Y = pad_per_atom(arrays)
    assert Y.shape == (3, 12)
    assert np.isnan(Y[1, 3:]).all() and not np.isnan(Y[1, :3]).any()
    Y3 = pad_per_atom(arrays, n_max=5, three_d=True)
    assert Y3.shape == (3, 5, 3)
    for n_atoms in (None, [4, 1, 3], np.arange(4) < np.array([[4], [1], [3]])):
        for back in (unpad_per_atom(Y, n_atoms), unpad_per_atom(Y3[:, :4], n_atoms)):
            assert len(back) == 3
            for a, b in zip(arrays, back):
                np.testing.assert_array_equal(a, b)
    # absent rows in the middle, given as a mask
    mask = np.array([[True, False, True]])
    Y = np.array([[1.0, 2, 3, np.nan, np.nan, np.nan, 7, 8, 9]])
    np.testing.assert_array_equal(unpad_per_atom(Y, mask)[0], [[1, 2, 3], [7, 8, 9]])
    np.testing.assert_array_equal(unpad_per_atom(Y)[0], [[1, 2, 3], [7, 8, 9]])
    # scalar per-atom values
    assert pad_per_atom([np.ones(2), np.ones(1)]).shape == (2, 2)
    with pytest.raises(ValueError, match="same width"):
        pad_per_atom([np.ones((2, 3)), np.ones((2, 2))])
    with pytest.raises(ValueError, match="empty"):
        pad_per_atom([])
    with pytest.raises(ValueError, match="multiple of width"):
        unpad_per_atom(np.ones((2, 7)))
    with pytest.raises(ValueError, match="more than"):
        unpad_per_atom(np.ones((2, 6)), [3, 1])
    with pytest.raises(ValueError, match="shape"):
        unpad_per_atom(np.ones((2, 6)), [1, 1, 1])


def test_X_to_atoms_without_ase_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ase", None)
    X, fields = atoms_to_X([_Plain(np.zeros((1, 3)), [1])])
    with pytest.raises(MissingDependencyError, match=r"mfa_sklearn\[atoms\]"):
        X_to_atoms(X, fields)


def test_emt_clusters_round_trip():
    pytest.importorskip("ase")
    from mfa_sklearn.datasets import make_emt_clusters

    data = make_emt_clusters(12, n_atoms=(4, 8), return_velocities=True, random_state=0)
    atoms = X_to_atoms(data.X, data.fields)
    assert [len(a) for a in atoms] == list(data.n_atoms)
    X, fields = atoms_to_X(atoms, velocities=True, n_max=8)
    assert fields == data.fields
    np.testing.assert_allclose(X, data.X, rtol=1e-14, atol=1e-14)
    forces = unpad_per_atom(data.forces, data.n_atoms)
    np.testing.assert_array_equal(pad_per_atom(forces, n_max=8), data.forces)
