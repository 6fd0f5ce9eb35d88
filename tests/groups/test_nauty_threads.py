"""Concurrent use of the nauty path: fitted estimators called from many threads at once,
and ``n_jobs=2`` over several chunks, give the serial result bit for bit.

pynauty 2.8.8.1 keeps the graph being labelled in a C static global that a concurrent
call can repoint when the interpreter switches threads inside the call (see "Threads" in
``mfa_sklearn/groups/permutation/_nauty.py``). Left to chance, such a switch is rare (8
threads calling ``autgrp`` in a loop: about one wrong result in 10^4 calls at Python's
default 5 ms switch interval), so the tests force one at the vulnerable point of every
call. Without the module's lock both tests then die of a segfault (or report wrong
frames) every time; with it they pass.
"""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from mfa_sklearn import FrameAveragingRegressor, MinimalFrameCanonicalizer, _engine
from mfa_sklearn._engine import chunk_slices
from mfa_sklearn.testing import apply_group, random_group_element
from tests._helpers import cube_vertices, needs_nauty

pytestmark = needs_nauty

THREADS = 8
EDGES = {"A": "edge"}


@pytest.fixture
def switching_inside_pynauty(monkeypatch):
    """Let other threads run where pynauty's C call reads ``Graph.vertex_coloring``
    (between pointing its static global at the new graph and running nauty), as a
    thread switch there would, and switch threads as often as the interpreter can."""
    import pynauty

    coloring = pynauty.Graph.__dict__.get("vertex_coloring")
    if isinstance(coloring, property):
        def yielding(graph):
            time.sleep(0)  # releases the GIL
            return coloring.fget(graph)

        monkeypatch.setattr(pynauty.Graph, "vertex_coloring", property(yielding))
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


@pytest.fixture
def autgrp_calls(monkeypatch):
    """Counts pynauty.autgrp calls (the premise: these inputs take the nauty path)."""
    import pynauty

    calls = []
    autgrp = pynauty.autgrp

    def counting(g):
        calls.append(1)
        return autgrp(g)

    monkeypatch.setattr(pynauty, "autgrp", counting)
    return calls


def symmetric_clouds(B, rng):
    """B clouds of 8 points that colour refinement cannot split (cubes, octahedra with
    their centre twice, regular tetrahedra with every vertex twice), each scaled and
    moved by a random element of S_n x O(3)."""
    octahedron = np.concatenate([np.eye(3), -np.eye(3), np.zeros((2, 3))])
    tetrahedron = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1.0]])
    shapes = np.stack([cube_vertices(), octahedron, np.repeat(tetrahedron, 2, axis=0)])
    X = shapes[np.arange(B) % 3].reshape(B, 24) * rng.uniform(0.5, 2.0, size=(B, 1))
    g = random_group_element("S_n x O(3)", B, random_state=int(rng.integers(2 ** 31)))
    return apply_group("S_n x O(3)", g, X)


def symmetric_graphs(B, n, rng):
    """B edge-labelled graphs on n vertices (n divisible by 4) with large automorphism
    groups: cycles, two disjoint n/2-cycles, and cycles with every fourth edge weighted
    2 (two edge labels: the layered encoding), each with its vertices permuted at
    random."""
    i = np.arange(n)
    A = np.zeros((B, n, n))
    kind = np.arange(B) % 3
    half = n // 2
    two_cycles = np.where(i < half, (i + 1) % half, half + (i - half + 1) % half)
    nxt = np.where(kind[:, None] == 1, two_cycles, (i + 1) % n)
    weight = np.where((kind[:, None] == 2) & (i % 4 == 0), 2.0, 1.0)
    b = np.arange(B)[:, None]
    A[b, i, nxt] = A[b, nxt, i] = weight
    perm = rng.permuted(np.tile(i, (B, 1)), axis=1)
    return A[b[:, :, None], perm[:, :, None], perm[:, None, :]].reshape(B, n * n)


def run_in_threads(tasks):
    """Call every zero-argument task from a pool of THREADS threads at once."""
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda task: task(), tasks))


def test_threads_predicting_symmetric_inputs_match_serial(switching_inside_pynauty,
                                                          autgrp_calls):
    rng = np.random.default_rng(0)
    X = symmetric_clouds(THREADS * 16, rng)
    A = symmetric_graphs(THREADS * 32, 8, rng)
    clouds = [np.ascontiguousarray(part) for part in np.split(X, THREADS)]
    graphs = [np.ascontiguousarray(part) for part in np.split(A, THREADS)]
    y = rng.standard_normal(len(X))
    estimators = [
        FrameAveragingRegressor(LinearRegression(), group="S_n x O(3)").fit(X, y),
        MinimalFrameCanonicalizer(group="S_n x O(3)").fit(X),
        FrameAveragingRegressor(LinearRegression(), group="graph", fields=EDGES,
                                target="edge").fit(A, A),
        MinimalFrameCanonicalizer(group="graph", fields=EDGES).fit(A),
    ]
    methods = [est.predict if hasattr(est, "predict") else est.transform
               for est in estimators]
    calls = ([(method, batch) for method in methods[:2] for batch in clouds]
             + [(method, batch) for method in methods[2:] for batch in graphs])
    autgrp_calls.clear()
    serial = [method(batch) for method, batch in calls]
    assert len(autgrp_calls) >= 2 * (len(X) + len(A))  # every sample took nauty

    # the calls of one estimator run side by side, on different batches
    threaded = run_in_threads([partial(method, batch) for method, batch in calls])
    for k, (got, want) in enumerate(zip(threaded, serial)):
        np.testing.assert_array_equal(got, want, err_msg=f"call {k}")


def test_n_jobs_over_chunks_with_symmetric_samples_matches_serial(switching_inside_pynauty,
                                                                   autgrp_calls, monkeypatch):
    """Two equal chunks with their symmetric samples in the same places, so that both
    workers run nauty searches at the same time."""
    monkeypatch.setattr(_engine, "_CHUNK_SAMPLES", 8192)
    rng = np.random.default_rng(1)
    # clouds of 8 points: chunks of 8192 samples
    X = rng.standard_normal((2 * 8192, 24))
    X[::64] = symmetric_clouds(len(X[::64]), rng)
    # graphs on 32 vertices: 1024 columns, chunks of 512 samples; random graphs are
    # split by colour refinement
    A = (rng.random((2 * 512, 32, 32)) < 0.5).astype(float)
    A = np.triu(A, 1)
    A = (A + A.transpose(0, 2, 1)).reshape(len(A), 32 * 32)
    A[::8] = symmetric_graphs(len(A[::8]), 32, rng)
    assert [len(range(len(X))[s]) for s in chunk_slices(X, X.shape[1])] == [8192] * 2
    assert [len(range(len(A))[s]) for s in chunk_slices(A, A.shape[1])] == [512] * 2

    can = MinimalFrameCanonicalizer(group="S_n x O(3)").fit(X)
    reg = FrameAveragingRegressor(LinearRegression(), group="graph", fields=EDGES,
                                  target="edge").fit(A[:64], A[:64])
    autgrp_calls.clear()
    serial = [can.transform(X), reg.predict(A)]
    assert len(autgrp_calls) >= len(X[::64]) + len(A[::8])  # they took nauty

    can.set_params(n_jobs=2)
    reg.set_params(n_jobs=2)
    np.testing.assert_array_equal(can.transform(X), serial[0])
    np.testing.assert_array_equal(reg.predict(A), serial[1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_an_unlocked_nauty_lock():
    """A fork while a thread holds the lock must not leave the child's copy locked (its
    next nauty call would wait forever)."""
    from mfa_sklearn.groups.permutation import _nauty

    with _nauty._NAUTY_LOCK:
        pid = os.fork()
        if pid == 0:  # the child: report and leave without running pytest's teardown
            os._exit(1 if _nauty._NAUTY_LOCK.locked() else 0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
