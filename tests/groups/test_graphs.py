"""Graphs: S_n acting on adjacency matrices by ``A -> P A P^T``.

The protocol, and the graphs every test uses, are in tests/groups/__init__.py.

Every equivariance test wraps a deliberately non-equivariant inner regressor (a
fixed-seed tanh MLP on the flattened canonical input), applies an independent random
permutation per sample, and asserts that the error is exactly 0 (bitwise): graph inputs
are only permuted, never computed on. Node-level (per-vertex), edge-level and
graph-level targets are covered, on symmetric graphs (nauty search path, orbit and
orbital averaging) and generic ones (fast path).
"""

import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from mfa_sklearn import FrameAveragingRegressor, check_equivariance
from mfa_sklearn.exceptions import LayoutError, MissingDependencyError, NonFiniteInputError
from mfa_sklearn.groups import GraphGroup, PermutationGroup, get_group
from mfa_sklearn.layout import Layout
from mfa_sklearn.testing import assert_equivariant
from tests._helpers import CountingRegressor, needs_nauty, run_script


# --------------------------------------------------------------------------- graphs
def _sym(edges, n):
    A = np.zeros((n, n))
    for i, j in edges:
        A[i, j] = A[j, i] = 1.0
    return A


def cycle(n):
    return _sym([(i, (i + 1) % n) for i in range(n)], n)


def complete(n):
    return np.ones((n, n)) - np.eye(n)


def star(leaves):
    return _sym([(0, i) for i in range(1, leaves + 1)], leaves + 1)


def petersen():
    outer = [(i, (i + 1) % 5) for i in range(5)]
    spokes = [(i, i + 5) for i in range(5)]
    inner = [(5 + i, 5 + (i + 2) % 5) for i in range(5)]
    return _sym(outer + spokes + inner, 10)


def cube():
    return _sym([(i, i ^ (1 << b)) for i in range(8) for b in range(3)], 8)


def random_graph(n, p, rng):
    A = np.triu(rng.random((n, n)) < p, 1).astype(np.float64)
    return A + A.T


def weighted_dense(n, rng):
    z = rng.normal(size=(n, 1))
    return np.round(z @ z.T, 3)


NAMED = {"C8": (cycle(8), 16), "C10": (cycle(10), 20), "Petersen": (petersen(), 120),
         "K5": (complete(5), 120), "empty6": (np.zeros((6, 6)), 720),
         "K1,5": (star(5), 120), "Q3": (cube(), 48)}


def relabel(A, rng):
    sigma = rng.permutation(len(A))
    return A[sigma][:, sigma]


# ------------------------------------------------------------------------ backbone
class MLPRegressor(RegressorMixin, BaseEstimator):
    """Fixed-seed tanh MLP (weights drawn in ``fit``, least squares on the last layer is
    skipped on purpose): neither permutation-invariant nor -equivariant."""

    def __init__(self, hidden=16, seed=0):
        self.hidden = hidden
        self.seed = seed

    def fit(self, X, y):
        rng = np.random.default_rng(self.seed)
        y = np.asarray(y)
        self.n_out_ = 1 if y.ndim == 1 else y.shape[1]
        self.W1_ = 2.0 * rng.standard_normal((X.shape[1], self.hidden)) / np.sqrt(X.shape[1])
        self.b1_ = rng.standard_normal(self.hidden)
        self.W2_ = rng.standard_normal((self.hidden, self.n_out_))
        self.ndim_ = y.ndim
        return self

    def predict(self, X):
        out = np.tanh(X @ self.W1_ + self.b1_) @ self.W2_
        return out[:, 0] if self.ndim_ == 1 else out


def _batch(graphs, rng, relabelled=True):
    """Flattened adjacency matrices of randomly relabelled copies of the graphs."""
    return np.stack([(relabel(A, rng) if relabelled else A).ravel() for A in graphs])


# --------------------------------------------------------------------- aut sizes
@needs_nauty
@pytest.mark.parametrize("name", list(NAMED))
def test_automorphism_group_sizes(name):
    A, size = NAMED[name]
    rng = np.random.default_rng(0)
    X = np.stack([relabel(A, rng) for _ in range(3)])[..., None]
    frame = get_group("graph").frame(edges=X)
    assert list(frame.size) == [size] * 3
    assert list(frame.labeling_path) == ["search"] * 3
    # the canonical form is the same for every relabelling
    canon = frame.to_canonical(X, "edge")[:, 0, ..., 0]
    assert np.array_equal(canon[0], canon[1]) and np.array_equal(canon[0], canon[2])


@needs_nauty
def test_empty_graph_on_many_vertices_reports_a_float_size():
    frame = get_group("graph").frame(edges=np.zeros((1, 100, 100, 1)))
    assert frame.size[0] == pytest.approx(9.33262154439441e157, rel=1e-12)


@needs_nauty
@pytest.mark.parametrize("n", [12, 32])
def test_random_graphs_have_trivial_aut(n):
    rng = np.random.default_rng(n)
    X = np.stack([random_graph(n, 0.5, rng) for _ in range(20)])[..., None]
    frame = get_group("S_n").frame(edges=X)
    assert np.all(frame.size == 1)
    if n == 32:
        assert np.all(frame.labeling_path == "fast")


@needs_nauty
def test_weighted_dense_graph_trivial_aut():
    rng = np.random.default_rng(1)
    X = np.stack([weighted_dense(10, rng) for _ in range(5)])[..., None]
    frame = get_group("graph").frame(edges=X)
    assert np.all(frame.size == 1)


@needs_nauty
def test_registry_and_s_n_with_edges_agree():
    assert isinstance(get_group("graph"), GraphGroup)
    assert get_group("graph") != GraphGroup(symmetrize=True)
    assert isinstance(get_group("S_n"), PermutationGroup)
    rng = np.random.default_rng(2)
    X = np.stack([petersen(), cycle(10), random_graph(10, 0.5, rng)])
    a = get_group("graph").frame(edges=X[..., None])
    b = get_group("S_n").frame(edges=X[..., None])
    assert np.array_equal(a.perm, b.perm) and np.array_equal(a.size, b.size)


@needs_nauty
def test_brute_force_oracle_small_graphs():
    """n = 6, labelled edges and coloured vertices with many ties: the canonical inputs
    of random relabellings agree bitwise, and |Aut| matches all 720 permutations."""
    import itertools

    rng = np.random.default_rng(13)
    n = 6
    perms = np.array(list(itertools.permutations(range(n))))
    G = get_group("graph")
    for _ in range(25):
        W = np.triu(rng.integers(0, 3, size=(n, n)), 1).astype(np.float64)
        A = W + W.T + np.diag(rng.integers(0, 2, size=n))
        h = rng.integers(0, 2, size=(n, 1)).astype(np.float64)
        fixes = [np.array_equal(A[p][:, p], A) and np.array_equal(h[p], h) for p in perms]
        sigmas = [rng.permutation(n) for _ in range(6)]
        edges = np.stack([A[s][:, s] for s in sigmas])[..., None]
        nodes = np.stack([h[s] for s in sigmas])
        frame = G.frame(nodes, edges=edges)
        assert np.all(frame.size == sum(fixes))
        canon = frame.to_canonical(edges, "edge")[:, 0]
        canon_h = frame.to_canonical(nodes, "scalar")[:, 0]
        assert all(np.array_equal(canon[0], c) for c in canon)
        assert all(np.array_equal(canon_h[0], c) for c in canon_h)


# ------------------------------------------------------------- exact equivariance
GRAPHS = [A for A, _ in NAMED.values() if len(A) == 8] + [
    random_graph(8, 0.5, np.random.default_rng(s)) for s in range(6)]


def _fit(X, y, target, fields=None):
    fields = fields or {"A": "edge"}
    return FrameAveragingRegressor(MLPRegressor(), group="graph", fields=fields,
                                   target=target).fit(X, y)


@needs_nauty
@pytest.mark.parametrize("target", ["invariant", "node", "edge"])
def test_exact_equivariance(target):
    rng = np.random.default_rng(3)
    X = _batch(GRAPHS * 3, rng)
    n = 8
    if target == "invariant":
        y, spec = X.sum(axis=1), "invariant"
    elif target == "node":
        y, spec = X.reshape(-1, n, n).sum(axis=2), "scalar"
    else:
        y, spec = X ** 2, "edge"
    model = _fit(X, y, spec)
    for seed in range(3):
        assert_equivariant(model, "graph", X, random_state=seed, rtol=0)
    # control: the bare backbone is far from symmetric
    bare = MLPRegressor().fit(X, y)
    assert check_equivariance(bare, "graph", X, fields={"A": "edge"}, target=spec,
                              random_state=0)["max_error"] > 1e-3


@needs_nauty
def test_symmetric_graph_outputs_are_orbit_and_orbital_averages():
    X = _batch([cycle(8), cube()], np.random.default_rng(4))
    node = _fit(X, X.reshape(-1, 8, 8).sum(axis=2), "scalar").predict(X)
    edge = _fit(X, X, "edge").predict(X).reshape(-1, 8, 8)
    # C8 and Q3 are vertex-transitive: one orbit, equal node outputs
    assert np.ptp(node, axis=1).max() < 1e-12
    # edge outputs: constant on edges, on the diagonal (orbitals of Aut)
    for b in range(2):
        A = X[b].reshape(8, 8)
        on = edge[b][A == 1]
        assert np.ptp(on) < 1e-12
        assert np.ptp(np.diag(edge[b])) < 1e-12


@needs_nauty
def test_node_fields_and_weighted_graphs_exact():
    rng = np.random.default_rng(5)
    graphs = [weighted_dense(10, rng) for _ in range(4)] + [petersen()] * 3
    n = 10
    X, H = [], []
    for A in graphs:
        sigma = rng.permutation(n)
        X.append(A[sigma][:, sigma].ravel())
        H.append(np.where(np.arange(n) < 2, 1.0, 0.0)[sigma])   # colour two vertices
    X = np.concatenate([np.stack(X), np.stack(H)], axis=1)
    fields = {"A": "edge", "h": "scalar"}
    y = X[:, :n * n].reshape(-1, n, n).sum(axis=2)
    model = _fit(X, y, "scalar", fields)
    for seed in range(3):
        assert_equivariant(model, "graph", X, random_state=seed, rtol=0)
    diag = model.frame_diagnostics(X)
    assert np.all(diag["frame_size"][:4] == 1)
    # the Petersen graph with two coloured vertices keeps only part of Aut (120)
    assert np.all(diag["frame_size"][4:] < 120)


@needs_nauty
def test_one_inner_call_per_sample():
    rng = np.random.default_rng(6)
    X = _batch(GRAPHS, rng)
    model = FrameAveragingRegressor(CountingRegressor(MLPRegressor()), group="graph",
                                    fields={"A": "edge"}, target="edge").fit(X, X)
    model.estimator_.predict_rows_.clear()
    model.predict(X)
    assert model.estimator_.predict_rows_ == [len(X)]


@needs_nauty
def test_ties_and_near_ties_are_exact():
    rng = np.random.default_rng(7)
    A = cycle(8)
    near = A.copy()
    near[0, 1] = near[1, 0] = 1.0 + 1e-12        # a different label, not a tie
    neg = A.copy() * 0.0
    neg[0, 1] = neg[1, 0] = -0.0                 # -0.0 == 0.0
    frame = get_group("graph").frame(edges=np.stack([A, near, -neg])[..., None])
    assert frame.size[0] == 16 and frame.size[1] == 2 and frame.size[2] == 40320
    X = _batch([A, near, neg] * 2, rng)
    model = _fit(X, X, "edge")
    for seed in range(3):
        assert_equivariant(model, "graph", X, random_state=seed, rtol=0)


@needs_nauty
def test_symmetrize_option():
    rng = np.random.default_rng(8)
    M = rng.normal(size=(6, 7, 7))
    X = M.reshape(6, -1)
    with pytest.raises(ValueError, match=r"needs symmetric adjacency matrices.*sample 0 "
                                         r"has max abs\(A - A\^T\) = .*symmetrize=True"):
        _fit(X, X.sum(axis=1), "invariant")
    group = GraphGroup(symmetrize=True)
    model = FrameAveragingRegressor(MLPRegressor(), group=group, fields={"A": "edge"}).fit(
        X, X.sum(axis=1))
    assert_equivariant(model, group, X, random_state=0, rtol=0)


def test_edge_targets_under_plain_s_n_with_ties():
    # sets of rows (no edge input) with an edge-level target: tie classes act on pairs
    rng = np.random.default_rng(11)
    X = rng.integers(0, 3, size=(30, 6)).astype(np.float64)     # many exact ties
    Y = np.abs(X[:, :, None] - X[:, None, :]).reshape(30, -1) + X[:, :, None].repeat(
        6, 2).reshape(30, -1)
    model = FrameAveragingRegressor(MLPRegressor(), group="S_n", fields={"x": "scalar"},
                                    target={"E": "edge"}).fit(X, Y)
    for seed in range(3):
        assert_equivariant(model, "S_n", X, random_state=seed, rtol=0)


@needs_nauty
def test_classifier_and_canonicalizer_are_invariant():
    from sklearn.tree import DecisionTreeClassifier

    from mfa_sklearn import FrameAveragingClassifier, MinimalFrameCanonicalizer

    rng = np.random.default_rng(14)
    X = _batch(GRAPHS * 4, rng)
    y = (X.reshape(len(X), 8, 8).sum(axis=(1, 2)) > 24).astype(int)
    clf = FrameAveragingClassifier(DecisionTreeClassifier(random_state=0), group="graph",
                                   fields={"A": "edge"}).fit(X, y)
    moved = _batch([x.reshape(8, 8) for x in X], rng)
    assert np.array_equal(clf.predict_proba(X), clf.predict_proba(moved))
    canon = MinimalFrameCanonicalizer(group="graph", fields={"A": "edge"}).fit(X)
    assert np.array_equal(canon.transform(X), canon.transform(moved))


# ----------------------------------------------------------------------- bad input
def test_bad_input_errors():
    X = _batch([cycle(6)] * 4, np.random.default_rng(9))
    bad = X.copy()
    bad[2, 3] = np.nan
    with pytest.raises(NonFiniteInputError, match="field 'A'"):
        _fit(bad, np.ones(len(bad)), "invariant")
    with pytest.raises(NonFiniteInputError):
        get_group("graph").frame(edges=bad.reshape(4, 6, 6, 1))
    with pytest.raises(LayoutError, match="cannot hold"):
        _fit(X[:, :35], X.sum(axis=1), "invariant")
    with pytest.raises(LayoutError, match="does not act on edge fields"):
        FrameAveragingRegressor(group="O(3)", fields={"A": "edge"}).fit(X, X.sum(axis=1))
    # S_n x G takes edge fields, symmetric ones
    asymmetric = X.reshape(4, 6, 6).copy()
    asymmetric[:, 0, 1] = 2.0
    XA = np.hstack([asymmetric.reshape(4, 36), np.ones((4, 18))])
    with pytest.raises(ValueError, match=r"needs symmetric adjacency.*Symmetrize them"):
        FrameAveragingRegressor(group="S_n x O(3)",
                                fields={"A": "edge", "x": "point"}).fit(XA, np.ones(4))
    with pytest.raises(LayoutError, match="3-D samples are not supported"):
        Layout.infer({"A": "edge"}, get_group("graph"), (6, 6))
    with pytest.raises(ValueError, match="needs an 'edge' field"):
        get_group("graph").frame(np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="shape"):
        get_group("graph").frame(edges=np.zeros((2, 3, 4, 1)))


def test_layout_edge_fields_round_trip():
    layout = Layout.infer({"A": "edge", "h": ("scalar", 2), "E": ("edge", 3)},
                          get_group("S_n"), (5 * 2 + 25 * 4,))
    assert layout.n_rows == 5 and layout.n_columns == 110
    X = np.arange(2 * 110.0).reshape(2, 110)
    parts = layout.split(X)
    assert parts["A"].shape == (2, 5, 5, 1) and parts["E"].shape == (2, 5, 5, 3)
    assert parts["A"][1, 2, 3, 0] == X[1, 2 * 5 + 3]
    assert np.array_equal(layout.join(parts), X)


@needs_nauty
def test_default_fields_of_graph_group():
    X = _batch([cycle(6)] * 3, np.random.default_rng(10))
    model = FrameAveragingRegressor(MLPRegressor(), group="graph").fit(X, X.sum(axis=1))
    assert model.layout_.fields[0].kind == "edge"


def test_missing_pynauty_is_named(monkeypatch):
    """Without pynauty, symmetric graphs raise MissingDependencyError naming the extra;
    graphs that colour refinement separates do not need it."""
    monkeypatch.setitem(sys.modules, "pynauty", None)
    G = get_group("graph")
    rng = np.random.default_rng(12)
    G.frame(edges=np.stack([random_graph(32, 0.5, rng) for _ in range(3)])[..., None])
    with pytest.raises(MissingDependencyError, match=r"pip install 'mfa_sklearn\[nauty\]'"):
        G.frame(edges=cycle(8)[None, ..., None])


# ------------------------------------------------------------------------ example
@needs_nauty
def test_graph_regression_example_smoke():
    # one OpenMP thread: spin-waiting threads of HistGradientBoosting are slow on a
    # loaded machine (the suite may run beside other processes)
    out = run_script("examples/graph_regression.py", env={"OMP_NUM_THREADS": "1"},
                     timeout=900)
    assert "invariance error" in out


# ------------------------------------------- bonded clouds: S_n x G with edge fields
MOLECULE_FIELDS = {"A": "edge", "pos": "point"}


def molecules(B, n, rng, p=0.4):
    """Random clouds of n points with random symmetric bond matrices, flattened as
    ``[A (n * n) | pos (n * 3)]``."""
    bonds = np.stack([random_graph(n, p, rng) for _ in range(B)])
    return np.hstack([bonds.reshape(B, n * n), rng.normal(size=(B, n * 3))])


def cube_molecule(marked_bond=None):
    """The cube's vertices bonded along its 12 edges; one bond may get label 2."""
    A = cube()
    if marked_bond is not None:
        i, j = marked_bond
        A[i, j] = A[j, i] = 2.0
    pos = np.array([[(i >> b) & 1 for b in range(3)] for i in range(8)]) * 2.0 - 1.0
    return np.concatenate([A.ravel(), pos.ravel()])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("group", ["S_n x O(3)", "S_n x SO(3)", "S_n x E(3)"])
@pytest.mark.parametrize("target, width", [("invariant", 1), ("vector", 18), ("edge", 36)])
def test_bonded_clouds_are_exactly_symmetric(group, target, width):
    """Bonds take part in the canonical order; the matrix group moves only the points.
    A non-equivariant MLP becomes exactly invariant or equivariant, edge outputs too."""
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(21)
    X = molecules(80, 6, rng)
    y = rng.normal(size=(80, width))[:, 0] if width == 1 else rng.normal(size=(80, width))
    inner = MLPRegressor(hidden_layer_sizes=(32,), max_iter=60, random_state=0)
    model = FrameAveragingRegressor(inner, group=group, fields=MOLECULE_FIELDS,
                                    target=target).fit(X, y)
    assert np.all(model.frame_diagnostics(X)["frame_size"] == 1)
    for seed in range(2):
        assert_equivariant(model, group, X, random_state=seed, rtol=1e-10)
    control = check_equivariance(clone_fit(inner, X, y), group, X, fields=MOLECULE_FIELDS,
                                 target=target, random_state=0)["max_error"]
    assert control > 1e-3, control


def clone_fit(est, X, y):
    from sklearn.base import clone

    return clone(est).fit(X, y)


@needs_nauty
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("target", ["vector", "edge"])
def test_bonds_break_the_symmetry_of_a_cloud(target):
    """The bonded cube keeps all 48 symmetries of the cube; marking one bond leaves the
    4 that fix that edge (48 / 12 edges), and the outputs stay exactly equivariant."""
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(22)
    X = np.stack([cube_molecule(), cube_molecule((0, 1))])
    group = get_group("S_n x O(3)")
    moved = np.vstack([X] * 3)
    g = group.random_element(len(moved), rng)
    layout = Layout.infer(MOLECULE_FIELDS, group, moved.shape[1:])
    parts = layout.split(moved)
    moved = layout.join({"A": group.act(g, parts["A"], "edge"),
                         "pos": group.act(g, parts["pos"], "point")})
    width = 24 if target == "vector" else 64
    model = FrameAveragingRegressor(
        MLPRegressor(hidden_layer_sizes=(16,), max_iter=20, random_state=0),
        group=group, fields=MOLECULE_FIELDS, target=target)
    model.fit(moved, rng.normal(size=(len(moved), width)))
    np.testing.assert_array_equal(model.frame_diagnostics(moved)["frame_size"],
                                  [48, 4] * 3)
    for seed in range(2):
        assert_equivariant(model, group, moved, random_state=seed, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e8])
@pytest.mark.parametrize("dtype, bound", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_bonded_clouds_at_tiny_and_huge_scales(scale, dtype, bound):
    """Positions scaled by 1e-8 .. 1e8 (bonds unchanged), float64 and float32."""
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(23)
    X = molecules(60, 5, rng)
    X[:, 25:] *= scale
    X = X.astype(dtype)
    y = (rng.normal(size=(60, 15)) * scale).astype(dtype)
    model = FrameAveragingRegressor(
        MLPRegressor(hidden_layer_sizes=(16,), max_iter=30, random_state=0),
        group="S_n x E(3)", fields=MOLECULE_FIELDS, target="vector").fit(X, y)
    assert model.predict(X).dtype == dtype
    assert_equivariant(model, "S_n x E(3)", X, random_state=1, rtol=bound)


def test_bonded_molecules_example_smoke():
    """Bonds as an edge field under S_n x E(3): exactly invariant energies (relabelling
    error 0), and far closer than the plain model."""
    out = run_script("examples/bonded_molecules.py", env={"OMP_NUM_THREADS": "1"},
                     timeout=900)
    rows = {line[:28].strip(): line.split() for line in out.splitlines()}
    bonded = rows["S_n x E(3) frames + bonds"]
    assert float(bonded[-1]) == 0.0 and float(bonded[-2]) <= 1e-9
    assert float(bonded[-3]) < float(rows["plain"][-3])
