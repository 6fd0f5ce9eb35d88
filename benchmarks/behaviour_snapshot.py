"""Snapshot of mfa_sklearn's observable behaviour, to prove that a refactor changes nothing.

``save`` computes many outputs of the checked-out package through its public API only
(canonical forms, frame diagnostics, regressor and classifier predictions, torch
outputs and input gradients, datasets) on seeded inputs: generic, tied (repeated rows,
equal norms) and symmetric or degenerate ones (cube, regular polygons, collinear,
all-equal and rank-deficient clouds, cycle and complete graphs), in float64 and float32,
for every group family. Every output is stored under a key naming its case; an output
that raises is stored as the string ``"ErrorType: message"``, and the warnings a
computation emits under ``KEY#warnings``, so error and warning behaviour is compared too.
``compare`` checks two snapshots bit for bit::

    python benchmarks/behaviour_snapshot.py save OUT.npz
    python benchmarks/behaviour_snapshot.py compare A.npz B.npz

The package snapshotted is the checkout in the current directory if it holds one (else
the checkout of this script): its root goes first on ``sys.path`` and ``PYTHONPATH``,
ahead of any installed copy, also for joblib's workers; ``save`` prints which one it
imported. So ``cd CHECKOUT && python PATH/TO/behaviour_snapshot.py save OUT.npz``
snapshots CHECKOUT. BLAS, OpenMP and torch run on one thread, so that reductions are
summed in the same order on every run, and the script re-runs itself with
``PYTHONHASHSEED=0``, so that messages listing a set (e.g. scikit-learn's parameter
errors) list it in the same order.
"""

import os
import sys
from pathlib import Path

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

ROOT = str(Path.cwd() if (Path.cwd() / "mfa_sklearn").is_dir()
           else Path(__file__).resolve().parents[1])
sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import itertools  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor  # noqa: E402
from sklearn.neural_network import MLPRegressor  # noqa: E402
from torch import nn  # noqa: E402

import mfa_sklearn  # noqa: E402
from mfa_sklearn import (  # noqa: E402
    FrameAveragingClassifier,
    FrameAveragingRegressor,
    MinimalFrameCanonicalizer,
    check_equivariance,
    get_group,
)
from mfa_sklearn.datasets import load_charged_nbody_splits, make_charged_nbody, make_toy_jets  # noqa: E402
from mfa_sklearn.local import LocalFrameRegressor  # noqa: E402
from mfa_sklearn.testing import apply_group, random_group_element  # noqa: E402
from mfa_sklearn.torch import AtomMLP, FrameAveraged, LocalFrameAveraged  # noqa: E402

torch.set_num_threads(1)

N_TRAIN = 60
INNER = {
    "ridge": lambda: Ridge(alpha=1.0),
    "knn": lambda: KNeighborsRegressor(n_neighbors=3),
    "mlp": lambda: MLPRegressor(hidden_layer_sizes=(16,), max_iter=40, random_state=0),
}


# ------------------------------------------------------------------------ recording
class Snapshot:
    """Named output arrays; computations that raise are recorded as their error."""

    def __init__(self):
        self.arrays = {}

    def record(self, key, compute, store=True):
        """Run ``compute()`` and store its result under ``key``.

        Parameters
        ----------
        key : str
            Name of the case.
        compute : callable
            Called here, once, without arguments (so a lambda may use loop variables);
            returns an array, a tensor, a string, None, or a dict of them (stored under
            ``key/name``).
        store : bool, default=True
            Whether to store the result (False for fitted estimators: only an error
            is stored).

        Returns
        -------
        object or None
            The result, or None if ``compute`` raised.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = compute()
            except Exception as exc:
                self._put(key, f"{type(exc).__name__}: {exc}")
                value, store = None, False
        if store:
            self._put(key, value)
        messages = list(dict.fromkeys(f"{w.category.__name__}: {w.message}"
                                      for w in caught))
        if messages:
            self._put(key + "#warnings", messages)
        return value

    def _put(self, key, value):
        if isinstance(value, dict):
            for name, item in value.items():
                self._put(f"{key}/{name}", item)
            return
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        value = np.asarray("None" if value is None else value)
        if value.dtype == object:
            value = np.asarray(repr(value.tolist()))
        if key in self.arrays:
            raise KeyError(f"duplicate snapshot key {key!r}")
        self.arrays[key] = value


# ------------------------------------------------------------------------ input shapes
def cube():
    """The 8 vertices of the cube [-1, 1]^3."""
    return np.array(list(itertools.product([-1.0, 1.0], repeat=3)))


def polygon(k, d):
    """A regular k-gon in the first two coordinates of R^d."""
    angle = 2 * np.pi * np.arange(k) / k
    P = np.zeros((k, d))
    P[:, 0], P[:, 1] = np.cos(angle), np.sin(angle)
    return P


def real_clouds(rng, n, d):
    """Clouds of n points in R^d, shape (k, n, d) each: generic, tied and degenerate."""
    g = rng.normal(size=(3, n, d))
    dup = g.copy()
    dup[:, 1], dup[:, 3] = dup[:, 0], dup[:, 2]
    near = g.copy()
    near[:, 1] = near[:, 0] + 1e-10 * rng.normal(size=(3, d))
    clouds = {
        "generic": g,
        "dup_rows": dup,
        "near_tie": near,
        "equal_norms": g / np.linalg.norm(g, axis=2, keepdims=True),
        "collinear": rng.normal(size=(3, n, 1)) * rng.normal(size=(3, 1, d)),
        "all_equal": np.repeat(g[:, :1], n, axis=1),
        "zeros": np.zeros((1, n, d)),
        "scaled_1e4": 1e4 * g,
        "scaled_1e-4": 1e-4 * g,
    }
    if d == 2:
        clouds["polygon"] = polygon(n, 2)[None]
        clouds["polygon_centre"] = np.vstack([polygon(n - 1, 2), np.zeros((1, 2))])[None]
    else:
        clouds["cube"] = cube()[None]
        clouds["octahedron_centre"] = np.vstack([np.eye(3), -np.eye(3),
                                                 np.zeros((n - 6, 3))])[None]
        clouds["polygon"] = polygon(n, 3)[None]
        clouds["rank2"] = rng.normal(size=(3, n, 2)) @ rng.normal(size=(3, 2, d))
    return clouds


def lorentz_clouds(rng, n):
    """Clouds of n 4-momenta (E, px, py, pz): timelike, lightlike, tied, degenerate."""
    p = rng.normal(size=(3, n, 3))
    norm = np.linalg.norm(p, axis=2, keepdims=True)
    timelike = np.concatenate([np.sqrt(norm ** 2 + rng.uniform(0.5, 2, (3, n, 1)) ** 2),
                               p], axis=2)
    dup = timelike.copy()
    dup[:, 1] = dup[:, 0]
    plane = timelike.copy()
    plane[:, :, 1:3] = 0.0
    rest = np.hstack([np.full((6, 1), 2.0), np.vstack([np.eye(3), -np.eye(3)])])
    jets = make_toy_jets(4, n_constituents=n, random_state=3)[0].reshape(4, n, 4)
    return {
        "timelike": timelike,
        "lightlike": np.concatenate([norm, p], axis=2),
        "spacelike": np.concatenate([0.5 * norm, p], axis=2),
        "mixed": rng.normal(size=(3, n, 4)),
        "dup_rows": dup,
        "all_equal": np.repeat(timelike[:, :1], n, axis=1),
        "zeros": np.zeros((1, n, 4)),
        "rank2": plane,
        "rest_octahedron": rest[None, :n],
        "jets": jets,
    }


def complex_clouds(rng, n, d):
    """Clouds of n complex rows in C^d, as real blocks (k, 2 n d): real parts first."""
    z = rng.normal(size=(3, n, d)) + 1j * rng.normal(size=(3, n, d))
    dup = z.copy()
    dup[:, 1] = dup[:, 0]
    phase = z.copy()
    phase[:, 1] = np.exp(0.7j) * phase[:, 0]
    c = rng.normal(size=(3, n, 1)) + 1j * rng.normal(size=(3, n, 1))
    clouds = {
        "generic": z,
        "dup_rows": dup,
        "phase_tie": phase,
        "equal_norms": z / np.linalg.norm(z, axis=2, keepdims=True),
        "rank1": c * z[:, :1],
        "real_rows": z.real + 0j,
        "all_equal": np.repeat(z[:, :1], n, axis=1),
        "zeros": np.zeros((1, n, d), dtype=complex),
    }
    return {name: np.concatenate([v.real.reshape(len(v), -1), v.imag.reshape(len(v), -1)],
                                 axis=1) for name, v in clouds.items()}


def flat(clouds):
    """(k, n, w) clouds as 2-D X (k, n w)."""
    return {name: c.reshape(len(c), -1) for name, c in clouds.items()}


def with_charges(rng, clouds, n_values=2):
    """Append one integer scalar per row (ties for the permutation groups)."""
    return {name: np.hstack([c.reshape(len(c), -1),
                             rng.integers(0, n_values, (len(c), c.shape[1])).astype(float)])
            for name, c in clouds.items()}


def graphs(rng, n):
    """Adjacency matrices (k, n n): random, weighted, and graphs with automorphisms."""
    i = np.arange(n)

    def sym(A):
        A = np.triu(A, 1)
        return A + np.swapaxes(A, -1, -2)

    cycle = np.zeros((n, n))
    cycle[i, (i + 1) % n] = cycle[(i + 1) % n, i] = 1.0
    path = cycle.copy()
    path[0, n - 1] = path[n - 1, 0] = 0.0
    two_cycles = np.zeros((n, n))
    h = n // 2
    for start in (0, h):
        j = start + np.arange(h)
        two_cycles[j, start + (j + 1 - start) % h] = 1.0
    star = np.zeros((n, n))
    star[0, 1:] = star[1:, 0] = 1.0
    hypercube = np.array([[float((a ^ b).bit_count() == 1) for b in range(8)]
                          for a in range(8)])
    out = {
        "random": sym((rng.random((4, n, n)) < 0.4).astype(float)),
        "weighted": sym(rng.integers(0, 3, (3, n, n)).astype(float)),
        "cycle": cycle[None],
        "path": path[None],
        "two_cycles": sym(two_cycles + two_cycles.T)[None],
        "star": star[None],
        "complete": (1.0 - np.eye(n))[None],
        "empty": np.zeros((1, n, n)),
        "cube_graph": hypercube[None],
    }
    return {name: A.reshape(len(A), -1) for name, A in out.items()}


def bonded(rng, n, k):
    """``[bonds (n n) | positions (n 3)]`` of k toy molecules: random trees of bonds."""
    bonds = np.zeros((k, n, n))
    for i in range(1, n):
        j = rng.integers(0, i, size=k)
        bonds[np.arange(k), i, j] = bonds[np.arange(k), j, i] = 1.0
    return np.hstack([bonds.reshape(k, -1), rng.normal(size=(k, n * 3))])


def bonded_variants(rng, n):
    """Bonded clouds: generic, a symmetric ring, and degenerate positions."""
    ring = np.zeros((n, n))
    i = np.arange(n)
    ring[i, (i + 1) % n] = ring[(i + 1) % n, i] = 1.0
    generic = bonded(rng, n, 3)
    same_pos = generic.copy()
    same_pos[:, n * n:] = np.tile(generic[:, n * n:n * n + 3], n)
    return {
        "generic": generic,
        "ring": np.hstack([ring.ravel(), polygon(n, 3).ravel()])[None],
        "ring_no_bonds": np.hstack([np.zeros(n * n), polygon(n, 3).ravel()])[None],
        "chain_on_ring": np.hstack([(ring * (np.abs(i[:, None] - i) == 1)).ravel(),
                                    polygon(n, 3).ravel()])[None],
        "all_equal_pos": same_pos,
    }


def nbody_variants(rng, n):
    """Positions, velocities and charges (``[pos | vel | q]``), generic and degenerate."""
    X = make_charged_nbody(3, n_particles=n, n_steps=20, horizon=5, random_state=11)[0]
    pos, vel, q = X[:, :3 * n], X[:, 3 * n:6 * n], X[:, 6 * n:]
    line = (rng.normal(size=(3, n, 1)) * rng.normal(size=(3, 1, 3))).reshape(3, -1)
    dup = X.copy()
    dup[:, 3:6], dup[:, 3 * n + 3:3 * n + 6], dup[:, 6 * n + 1] = (
        X[:, 0:3], X[:, 3 * n:3 * n + 3], X[:, 6 * n])
    return {
        "generic": X,
        "collinear_pos": np.hstack([line, vel, q]),
        "collinear_pos_vel": np.hstack([line, 2 * line, q]),
        "all_equal_pos": np.hstack([np.tile(pos[:, :3], n), vel, q]),
        "zero_vel": np.hstack([pos, 0 * vel, q]),
        "dup_particles": dup,
    }


# ------------------------------------------------------------------------ cases
@dataclass
class Spec:
    """One group with a column layout, training data, test inputs and targets."""

    name: str
    group: str
    fields: object
    train: np.ndarray
    variants: dict
    targets: list                      # (label, target, y columns); first: invariant
    frame_fields: object = None
    pca: bool = False


def _seed(name):
    return zlib.crc32(name.encode())


def _moved(group, fields, X, seed):
    """X followed by a randomly moved copy of it (one group element per sample); X
    alone where the layout is invalid (the estimators then record the error)."""
    g = random_group_element(group, len(X), random_state=seed)
    try:
        return np.vstack([X, apply_group(group, g, X, fields)])
    except ValueError:
        return X


def specs():
    """Every case family: the 17 groups, multi-field layouts, bonds and graphs."""
    out = []

    def add(name, group, fields, train, variants, targets, **kw):
        rng_seed = _seed(name)
        variants = {v: _moved(group, fields, X, rng_seed + i)
                    for i, (v, X) in enumerate(variants.items())}
        out.append(Spec(name, group, fields, train, variants,
                        [("invariant", "invariant", 1)] + targets, **kw))

    for group, n, d, pca in [("O(2)", 6, 2, True), ("O(3)", 8, 3, True),
                             ("SO(3)", 8, 3, True), ("E(3)", 8, 3, True),
                             ("SE(3)", 8, 3, True), ("GL(3)", 8, 3, False),
                             ("SL(3)", 8, 3, False), ("Aff(3)", 8, 3, False)]:
        rng = np.random.default_rng(_seed(group))
        variants = flat(real_clouds(rng, n, d))
        if group.startswith(("GL", "SL", "Aff")):   # rank-deficient: a few error cases
            for name in ("zeros", "all_equal", "polygon", "octahedron_centre"):
                variants.pop(name)
        add(group, group, None, rng.normal(size=(N_TRAIN, n * d)), variants,
            [("point", "point", n * d), ("vector", "vector", n * d),
             ("scalar1", ("scalar", 1), 4)], pca=pca)

    for group in ("U(2)", "SU(2)"):
        rng = np.random.default_rng(_seed(group))
        train = rng.normal(size=(N_TRAIN, 5 * 4))
        add(group, group, None, train, complex_clouds(rng, 5, 2),
            [("point", "point", 20), ("vector", "vector", 20)])

    for group in ("O(1,3)", "SO(1,3)"):
        rng = np.random.default_rng(_seed(group))
        train = rng.normal(size=(N_TRAIN, 24))
        train[:, ::4] = np.abs(train[:, ::4]) + 3.0       # mostly timelike rows
        add(group, group, None, train, flat(lorentz_clouds(rng, 6)),
            [("vector", "vector", 24), ("point", "point", 24)])

    rng = np.random.default_rng(_seed("S_n"))
    sn_fields = {"pos": ("point", 3), "q": "scalar"}
    clouds = {k: v for k, v in real_clouds(rng, 6, 3).items()
              if k not in ("cube", "polygon")}
    add("S_n", "S_n", sn_fields, rng.normal(size=(N_TRAIN, 24)),
        with_charges(rng, clouds),
        [("scalar1", ("scalar", 1), 6), ("point3", ("point", 3), 18),
         ("point", "point", 18)])
    add("S_n+rows", "S_n", {"x": ("scalar", 3)}, rng.normal(size=(N_TRAIN, 18)),
        flat(clouds), [("scalar1", ("scalar", 1), 6)])
    add("S_n+default_fields", "S_n", None, rng.normal(size=(N_TRAIN, 18)),
        {"generic": rng.normal(size=(3, 18))}, [])

    for group in ("S_n x O(3)", "S_n x E(3)"):
        rng = np.random.default_rng(_seed(group))
        clouds = real_clouds(rng, 8, 3)
        variants = with_charges(rng, clouds)
        variants.update({f"{k}_uncharged": np.hstack([c.reshape(len(c), -1),
                                                      np.ones((len(c), 8))])
                         for k, c in clouds.items()
                         if k in ("cube", "octahedron_centre", "polygon", "dup_rows")})
        add(group, group, {"pos": "point", "q": "scalar"},
            rng.normal(size=(N_TRAIN, 32)), variants,
            [("point", "point", 24), ("vector", "vector", 24),
             ("scalar1", ("scalar", 1), 8)])

    rng = np.random.default_rng(_seed("S_n x SO(1,3)"))
    clouds = lorentz_clouds(rng, 6)
    train = np.abs(rng.normal(size=(N_TRAIN, 30)))
    train[:, :24:4] += 3.0
    add("S_n x SO(1,3)", "S_n x SO(1,3)", {"p": "vector", "q": "scalar"}, train,
        with_charges(rng, clouds), [("vector", "vector", 24), ("scalar1", ("scalar", 1), 6)])

    rng = np.random.default_rng(_seed("bonds"))
    add("S_n x E(3)+bonds", "S_n x E(3)", {"bonds": "edge", "pos": "point"},
        bonded(rng, 6, N_TRAIN), bonded_variants(rng, 6),
        [("pos", {"pos": "point"}, 18), ("scalar1", ("scalar", 1), 6)])

    rng = np.random.default_rng(_seed("graph"))
    variants = graphs(rng, 8)
    train = np.vstack([graphs(np.random.default_rng(s), 8)["random"] for s in range(15)])
    add("graph", "graph", {"A": "edge"}, train, variants,
        [("scalar1", ("scalar", 1), 8), ("edge", "edge", 64)])
    h = {k: np.hstack([A, (A.reshape(len(A), 8, 8).sum(2) % 3)]) for k, A in variants.items()}
    add("graph+h", "graph", {"A": "edge", "h": ("scalar", 1)},
        np.hstack([train, rng.integers(0, 2, (len(train), 8)).astype(float)]), h,
        [("scalar1", ("scalar", 1), 8)])
    add("S_n+edge", "S_n", {"A": "edge"}, train, variants, [("edge", "edge", 64)])

    nbody = {"pos": "point", "vel": "vector", "q": "scalar"}
    X_nb = make_charged_nbody(N_TRAIN, n_steps=20, horizon=5, random_state=5)[0]
    for group, frame_fields in [("E(3)", ["pos", "vel"]), ("E(3)", None),
                                ("O(3)", ["pos", "vel"]), ("SE(3)", ["vel", "pos"]),
                                ("S_n x E(3)", None)]:
        name = f"{group}+fields" + ("" if frame_fields is None else "+" + "_".join(frame_fields))
        rng = np.random.default_rng(_seed(name))
        add(name, group, nbody, X_nb, nbody_variants(rng, 5),
            [("pos", {"pos": "point"}, 15), ("vector", "vector", 15)],
            frame_fields=frame_fields, pca=group == "E(3)")
    return out


def targets_for(spec, rng, n):
    """Random training targets of every target layout of ``spec``."""
    return {label: rng.normal(size=n if label == "invariant" else (n, width))
            for label, _, width in spec.targets}


def as3d(X, n):
    """2-D field-major ``[pos | vel | q]`` (n particles) as 3-D ``(B, n, 7)``."""
    B = len(X)
    return np.concatenate([X[:, :3 * n].reshape(B, n, 3), X[:, 3 * n:6 * n].reshape(B, n, 3),
                           X[:, 6 * n:].reshape(B, n, 1)], axis=2)


def run_spec(snap, spec):
    """Canonical forms, diagnostics, predictions and torch outputs of one Spec."""
    rng = np.random.default_rng(_seed(spec.name) + 1)
    key = spec.name
    kw = dict(group=spec.group, fields=spec.fields, frame_fields=spec.frame_fields)
    ys = targets_for(spec, rng, len(spec.train))
    labels = rng.integers(0, 3, len(spec.train))
    dtypes = {"f64": np.float64, "f32": np.float32}

    can = snap.record(f"{key}/canonicalizer/fit",
                      lambda: MinimalFrameCanonicalizer(**kw).fit(spec.train), store=False)
    if can is not None:
        snap.record(f"{key}/canonicalizer/attrs", lambda: {
            "frame_fields_": np.asarray(can.frame_fields_, dtype=str),
            "labeling_backend_": str(can.labeling_backend_),
            "input_shape_": np.asarray(can.input_shape_),
            "n_features_in_": can.n_features_in_,
            "feature_names_out": can.get_feature_names_out()[:5].astype(str)})
    models = {}
    frames = ["minimal", "pca"] if spec.pca else ["minimal"]
    for frame in frames:
        for label, target, _ in spec.targets:
            inners = INNER if label in [t[0] for t in spec.targets[:2]] else ["ridge"]
            if frame == "pca":
                inners = ["ridge", "knn"] if label == "invariant" else ["ridge"]
            for inner in inners:
                name = f"reg/{frame}/{label}/{inner}"
                models[name] = snap.record(f"{key}/{name}/fit", lambda: (
                    FrameAveragingRegressor(INNER[inner](), target=target, frame=frame, **kw)
                    .fit(spec.train, ys[label])), store=False)
        for inner in ("logistic", "knn") if frame == "minimal" else ("logistic",):
            name = f"clf/{frame}/{inner}"
            est = None if inner == "logistic" else KNeighborsClassifier(n_neighbors=3)
            models[name] = snap.record(f"{key}/{name}/fit", lambda: (
                FrameAveragingClassifier(est, frame=frame, **kw)
                .fit(spec.train, labels)), store=False)
    models = {name: model for name, model in models.items() if model is not None}

    for variant, X64 in spec.variants.items():
        for dname, dtype in dtypes.items():
            X = X64.astype(dtype)
            base = f"{key}/{variant}/{dname}"
            snap.record(f"{base}/input", lambda: X)
            if can is not None:
                snap.record(f"{base}/transform", lambda: can.transform(X))
                snap.record(f"{base}/diagnostics", lambda: can.frame_diagnostics(X))
            for name, model in models.items():
                if dname == "f32" and "/ridge" not in name and "logistic" not in name:
                    continue
                snap.record(f"{base}/{name}/predict", lambda: model.predict(X))
                if name.startswith("clf"):
                    snap.record(f"{base}/{name}/predict_proba", lambda: model.predict_proba(X))
                    if "logistic" in name:
                        snap.record(f"{base}/{name}/decision_function",
                                    lambda: model.decision_function(X))
    X = next(iter(spec.variants.values()))
    for name, model in models.items():
        if "/ridge" in name and name.startswith("reg/minimal"):
            snap.record(f"{key}/check_equivariance/{name}", lambda: check_equivariance(
                model, spec.group, X, random_state=7))
    run_torch(snap, spec)


def backbone(n_in, n_out, dtype):
    """A fixed-seed MLP on the flattened sample: neither invariant nor equivariant."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 16), nn.Tanh(),
                         nn.Linear(16, n_out)).to(dtype)


TORCH_CONFIGS = {
    "f64": dict(dtype=torch.float64),
    "f32": dict(dtype=torch.float32),
    "f32_frames32": dict(dtype=torch.float32, frame_dtype="float32"),
    "f64_frames32": dict(dtype=torch.float64, frame_dtype="float32"),
    "f64_detach": dict(dtype=torch.float64, detach_frame=True),
    "f64_pca": dict(dtype=torch.float64, frame="pca"),
}


def forward_and_grad(fa, X, dtype):
    """Output of ``fa`` on X and the gradient of its squared sum with respect to X."""
    x = torch.tensor(X, dtype=dtype, requires_grad=True)
    out = fa(x)
    out.square().sum().backward()
    return {"out": out, "grad": x.grad}


def run_torch(snap, spec):
    """FrameAveraged forward outputs, input gradients and from_canonical of one Spec."""
    n_in = spec.train.shape[1]
    for i, (label, target, width) in enumerate(spec.targets[:2] + spec.targets[3:4]):
        for cname, config in TORCH_CONFIGS.items():
            if cname != "f64" and i != 1:   # other precisions: the first equivariant target
                continue
            config = dict(config)
            dtype = config.pop("dtype")
            if config.get("frame") == "pca" and not spec.pca:
                continue
            key = f"{spec.name}/torch/{label}/{cname}"
            fa = snap.record(f"{key}/init", lambda: FrameAveraged(
                backbone(n_in, width, dtype), group=spec.group, fields=spec.fields,
                frame_fields=spec.frame_fields, target=target, **config), store=False)
            if fa is None:
                continue
            for variant, X in spec.variants.items():
                snap.record(f"{key}/{variant}", lambda: forward_and_grad(fa, X, dtype))
            if cname == "f64":
                run_from_canonical(snap, key, fa, spec)


def run_from_canonical(snap, key, fa, spec):
    """canonicalize once, from_canonical on the whole batch and on selections (on the
    first two variants: generic and tied inputs)."""
    X = np.vstack(list(spec.variants.values())[:2])

    def compute():
        with torch.no_grad():
            Xc, frame = fa.canonicalize(torch.from_numpy(X))
            idx = torch.arange(0, len(X), 2)
            mask = torch.arange(len(X)) % 3 == 0
            return {"Xc": Xc, "all": fa.from_canonical(Xc, frame),
                    "even": fa.from_canonical(Xc[idx], frame[idx]),
                    "mask": fa.from_canonical(Xc[mask], frame[mask]),
                    "forward": fa(torch.from_numpy(X))}

    snap.record(f"{key}/from_canonical", compute)


# ------------------------------------------------------------------------ special cases
def run_three_d(snap):
    """3-D X ``(B, n, W)``: a multi-field layout under E(3), complex rows under U(2)."""
    fields = {"pos": "point", "vel": "vector", "q": "scalar"}
    X, y = make_charged_nbody(N_TRAIN, n_steps=20, horizon=5, random_state=6)
    test = as3d(np.vstack(list(nbody_variants(np.random.default_rng(8), 5).values())), 5)
    X3 = as3d(X, 5)
    for ff in (None, ["pos", "vel"]):
        key = f"3d/E(3)/{ff}"
        kw = dict(group="E(3)", fields=fields, frame_fields=ff)
        for dname, dtype in (("f64", np.float64), ("f32", np.float32)):
            snap.record(f"{key}/{dname}/transform", lambda: MinimalFrameCanonicalizer(**kw)
                        .fit(X3.astype(dtype)).transform(test.astype(dtype)))
            snap.record(f"{key}/{dname}/diagnostics", lambda: MinimalFrameCanonicalizer(**kw)
                        .fit(X3).frame_diagnostics(test.astype(dtype)))
        for inner in INNER:
            snap.record(f"{key}/{inner}/point", lambda: FrameAveragingRegressor(
                INNER[inner](), target={"pos": "point"}, **kw).fit(X3, y).predict(test))
        fa = FrameAveraged(backbone(35, 15, torch.float64), target="vector", **kw)
        snap.record(f"{key}/torch", lambda: forward_and_grad(fa, test, torch.float64))
    rng = np.random.default_rng(9)
    Z = rng.normal(size=(20, 5, 4))
    snap.record("3d/U(2)/transform", lambda: MinimalFrameCanonicalizer("U(2)").fit(Z)
                .transform(Z))
    snap.record("3d/U(2)/point", lambda: FrameAveragingRegressor(
        Ridge(), group="U(2)", target="point").fit(Z, rng.normal(size=(20, 20))).predict(Z))
    A = graphs(rng, 8)["random"].reshape(-1, 8, 8)
    snap.record("3d/graph/transform", lambda: MinimalFrameCanonicalizer("graph").fit(A)
                .transform(A))


def run_n_jobs(snap):
    """Batches large enough to be chunked (over 8192 samples), with n_jobs=2 and serially."""
    rng = np.random.default_rng(10)
    X = rng.normal(size=(20000, 15))
    y = rng.normal(size=(20000, 15))
    X[::7, 3:6] = X[::7, 0:3]                       # some tied clouds among them
    Xs = X[:9000].copy()                            # S_n x E(3): ties take the search
    Xs[::7, 3:6] = rng.normal(size=(1286, 3))
    Xs[::500, 3:6] = Xs[::500, 0:3]
    for group, X_ in (("E(3)", X), ("S_n x E(3)", Xs)):
        y_ = y[:len(X_)]
        for n_jobs in (None, 2):
            key = f"n_jobs/{group}/{n_jobs}"
            can = MinimalFrameCanonicalizer(group, n_jobs=n_jobs).fit(X_)
            snap.record(f"{key}/transform", lambda: can.transform(X_))
            snap.record(f"{key}/diagnostics", lambda: can.frame_diagnostics(X_))
            snap.record(f"{key}/ridge_point", lambda: FrameAveragingRegressor(
                Ridge(), group=group, target="point", n_jobs=n_jobs).fit(X_, y_).predict(X_))
    snap.record("n_jobs/E(3)/pca", lambda: FrameAveragingRegressor(
        Ridge(), group="E(3)", target="vector", frame="pca", n_jobs=2)
        .fit(X[:9000], y[:9000]).predict(X[:9000]))
    Xt = np.vstack([X, X])                          # over one CPU chunk of torch
    fa = FrameAveraged(backbone(15, 15, torch.float64), group="E(3)", target="point")
    with torch.no_grad():
        snap.record("n_jobs/torch/E(3)", lambda: fa(torch.from_numpy(Xt)))


def run_misc(snap):
    """Group lookup, group actions, tolerances, parameter errors and the datasets."""
    for name in ("O(2)", "O(3)", "SO(3)", "E(3)", "SE(3)", "U(2)", "SU(2)", "O(1,3)",
                 "SO(1,3)", "GL(3)", "SL(3)", "Aff(3)", "S_n", "S_n x O(3)", "S_n x E(3)",
                 "S_n x SO(1,3)", "graph", "s_n*O(3)", "e(3)", "X(3)", "S_n x GL(3)",
                 "O(1,0)", "U(0)", 3):
        snap.record(f"get_group/{name}", lambda: repr(get_group(name)))
    rng = np.random.default_rng(12)
    X = rng.normal(size=(6, 24))
    for name in ("O(3)", "E(3)", "SE(3)", "U(2)", "SU(2)", "O(1,3)", "SO(1,3)", "GL(3)",
                 "Aff(3)", "S_n x E(3)", "S_n x SO(1,3)"):
        width = 4 if name.startswith(("U", "SU")) or "(1," in name else 3
        Xg = X[:, :6 * width]
        snap.record(f"apply_group/{name}", lambda: apply_group(
            name, random_group_element(name, 6, random_state=13), Xg))
    snap.record("apply_group/S_n", lambda: apply_group(
        "S_n", random_group_element("S_n", 6, random_state=13), X, {"x": ("scalar", 4)}))
    A = graphs(rng, 8)["random"]
    snap.record("apply_group/graph", lambda: apply_group(
        "graph", random_group_element("graph", len(A), random_state=13), A, {"A": "edge"}))
    g = rng.normal(size=(5, 24))
    near = g.copy()
    near[:, 3:6] = near[:, 0:3] + 1e-5
    for tol in (None, 1e-3, 1e-8, 2.0, "x"):
        for group in ("E(3)", "S_n x E(3)"):
            snap.record(f"tol/{group}/{tol}", lambda: MinimalFrameCanonicalizer(
                group, tol=tol).fit(near).transform(near))
    bad = {
        "nan": lambda: MinimalFrameCanonicalizer("E(3)").fit(np.full((2, 9), np.nan)),
        "bad_frame": lambda: FrameAveragingRegressor(group="E(3)", frame="x").fit(g, g[:, 0]),
        "pca_lorentz": lambda: FrameAveragingRegressor(group="O(1,3)", frame="pca").fit(
            g, g[:, 0]),
        "bad_width": lambda: MinimalFrameCanonicalizer("E(3)").fit(g[:, :7]),
        "bad_ff": lambda: MinimalFrameCanonicalizer("E(3)", frame_fields="v").fit(g),
        "shape_change": lambda: MinimalFrameCanonicalizer("E(3)").fit(g).transform(g[:, :12]),
        "rows_target": lambda: FrameAveragingRegressor(group="S_n x E(3)", target="point")
        .fit(g, g[:, :9]),
        "torch_bad_kind": lambda: FrameAveraged(nn.Identity(), group="E(3)",
                                                fields={"x": "spin"}),
        "torch_numpy_input": lambda: FrameAveraged(nn.Identity()).canonicalize(g),
        "no_group": lambda: MinimalFrameCanonicalizer().fit(g).transform(g),
        "no_group_reg": lambda: FrameAveragingRegressor(Ridge()).fit(g, g[:, 0]).predict(g),
    }
    for name, compute in bad.items():
        snap.record(f"errors/{name}", compute)
    snap.record("datasets/charged_nbody", lambda: dict(zip(("X", "y"), make_charged_nbody(
        20, n_steps=50, horizon=10, random_state=0))))
    snap.record("datasets/splits", lambda: dict(zip(
        ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"),
        load_charged_nbody_splits(1, 10, 5, 5, n_steps=30, horizon=10))))
    snap.record("datasets/jets", lambda: dict(zip(("X", "y"), make_toy_jets(
        20, n_constituents=5, boost_gamma_max=3.0, random_state=0))))


def clusters(rng, B, n):
    """Atomic clusters (B, n, 4): x, y, z and a species in {1, 2}; some generic, a
    regular icosahedron with its centre (symmetric environments), and systems with
    absent atoms (NaN rows) and a lone atom."""
    X = np.concatenate([rng.normal(scale=1.5, size=(B, n, 3)),
                        rng.integers(1, 3, size=(B, n, 1))], axis=2)
    phi = (1 + 5 ** 0.5) / 2
    shell = [p for a in (-1, 1) for b in (-phi, phi)
             for p in ((0, a, b), (a, b, 0), (b, 0, a))]
    X[0, :13, :3] = np.concatenate([np.zeros((1, 3)), shell], axis=0)[:n]
    X[0, 13:, :3] = np.nan
    X[1, 3:] = np.nan
    X[2, 1:] = np.nan
    return X


def run_local(snap):
    """Local frames: per-atom features of the estimators (encodings, radial bases,
    first vectors, angular channels) and the torch model's energies and forces, in
    float64 and float32."""
    rng = np.random.default_rng(14)
    X = clusters(rng, 12, 14)
    y = rng.normal(size=12)
    for encoding, basis, first in itertools.product(
            ("density", "rows"), ("scales", "shells", "exponentials"),
            ("nearest", "weighted")):
        if encoding == "rows" and basis != "scales":
            continue
        key = f"local/{encoding}/{basis}/{first}"
        kw = dict(fields={"pos": "point", "Z": "scalar"}, cutoff=3.0, n_neighbors=8,
                  encoding=encoding, radial_basis=basis, first_vector=first)
        for dname, dtype in (("f64", np.float64), ("f32", np.float32)):
            snap.record(f"{key}/{dname}/features", lambda: dict(zip(
                ("features", "system", "atom"), LocalFrameRegressor(**kw).fit(
                    X.astype(dtype), y).atom_features(X.astype(dtype)))))
        snap.record(f"{key}/forces", lambda: LocalFrameRegressor(
            Ridge(), target="vector", **kw).fit(X, X[..., :3]).predict(X))
    for angular, basis, dtype in itertools.product(
            (True, False), ("shells", "exponentials"), (torch.float64, torch.float32)):
        torch.manual_seed(15)
        model = LocalFrameAveraged(
            AtomMLP, atom_module__hidden=(8,), atom_module__activation=nn.Tanh,
            fields={"pos": "point", "Z": "scalar"}, cutoff=3.0, n_neighbors=8,
            radial_basis=basis, angular=angular).to(dtype)
        Xt = torch.tensor(X, dtype=dtype)
        key = f"local/torch/{angular}/{basis}/{str(dtype)[6:]}"
        snap.record(f"{key}/features", lambda: model.atom_features(Xt).detach())
        snap.record(f"{key}/energy_forces", lambda: dict(zip(
            ("energy", "forces"), model.energy_and_forces(Xt))))


def save(path):
    """Compute every case and write the snapshot to ``path``."""
    start = time.perf_counter()
    print(f"snapshot of {mfa_sklearn.__file__}")
    snap = Snapshot()
    snap.record("meta/versions", lambda: {
        "mfa_sklearn": mfa_sklearn.__version__, "numpy": np.__version__,
        "sklearn": sklearn.__version__, "torch": torch.__version__})
    for spec in specs():
        run_spec(snap, spec)
    run_three_d(snap)
    run_n_jobs(snap)
    run_misc(snap)
    run_local(snap)
    np.savez_compressed(path, **snap.arrays)
    errors = sum(a.dtype.kind == "U" and a.ndim == 0 and str(a).partition(":")[0]
                 .endswith(("Error", "Exception")) for a in snap.arrays.values())
    print(f"{len(snap.arrays)} arrays saved to {path} ({errors} errors) in "
          f"{time.perf_counter() - start:.1f} s")


# ------------------------------------------------------------------------ compare
def _differ(a, b):
    """How arrays a and b differ, or None if they are identical (values, dtype, shape)."""
    if a.dtype.kind == b.dtype.kind == "U" and a.shape == b.shape:   # strings: the text
        return None if np.array_equal(a, b) else f"{str(a)[:300]!r} vs {str(b)[:300]!r}"
    if a.dtype != b.dtype or a.shape != b.shape:
        return f"dtype/shape {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    nan = a.dtype.kind in "fc"
    if np.array_equal(a, b, equal_nan=nan):
        return None
    same = (a == b) | (np.isnan(a) & np.isnan(b)) if nan else (a == b)
    diff = np.abs(a.astype(np.complex128) - b.astype(np.complex128))
    return (f"{int(np.sum(~same))} of {a.size} entries differ, max |a - b| = "
            f"{np.nanmax(diff):.3g}")


def compare(path_a, path_b):
    """Print the keys missing on either side, the arrays that differ and a summary.

    Returns
    -------
    int
        1 if a key is missing or an array differs, else 0.
    """
    with np.load(path_a) as A, np.load(path_b) as B:
        keys_a, keys_b = set(A.files), set(B.files)
        for key in sorted(keys_a - keys_b):
            print(f"missing in {path_b}: {key}")
        for key in sorted(keys_b - keys_a):
            print(f"missing in {path_a}: {key}")
        common = sorted(keys_a & keys_b)
        n_differ = 0
        for key in common:
            why = _differ(A[key], B[key])
            if why is not None:
                n_differ += 1
                print(f"differs: {key}: {why}")
    n_missing = len(keys_a ^ keys_b)
    if n_missing:
        print(f"{n_missing} keys missing on one side")
    print(f"{len(common)} arrays compared, {n_differ} differ")
    return 1 if n_differ or n_missing else 0


def main(argv=None):
    """Command line: ``save OUT.npz`` or ``compare A.npz B.npz``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("save").add_argument("out")
    cmp = sub.add_parser("compare")
    cmp.add_argument("a")
    cmp.add_argument("b")
    args = parser.parse_args(argv)
    if args.command == "save":
        save(args.out)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
