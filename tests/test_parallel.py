"""The engine's joblib wrapper: the caller's scikit-learn configuration in every task,
and warning filters that concurrent tasks leave as they were."""

import sys
import warnings

import numpy as np
import pytest
from joblib import parallel_config
from sklearn import config_context, get_config

from mfa_sklearn import MinimalFrameCanonicalizer, _engine
from mfa_sklearn._parallel import Parallel, delayed, map_chunks, shares_memory


def _assume_finite():
    return get_config()["assume_finite"]


def _filters():
    return [(action, category.__name__) for action, _, category, *_ in warnings.filters]


@pytest.fixture
def frequent_thread_switches():
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def test_threads_leave_the_warning_filters_alone(frequent_thread_switches, monkeypatch):
    # scikit-learn's Parallel resets the filters inside each task: two tasks at once
    # left the process without any filter after almost every call, and warned that
    # its `delayed` was used without its Parallel
    monkeypatch.setattr(_engine, "_CHUNK_SAMPLES", 256)
    X = np.random.default_rng(0).standard_normal((256 * 40, 15))
    model = MinimalFrameCanonicalizer(group="E(3)", n_jobs=2).fit(X[:10])
    serial = MinimalFrameCanonicalizer(group="E(3)").fit(X[:10]).transform(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=FutureWarning)
        before = list(warnings.filters)
        for _ in range(10):
            np.testing.assert_array_equal(model.transform(X), serial)
            assert warnings.filters == before
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_tasks_run_under_the_callers_config(backend):
    with parallel_config(backend=backend, n_jobs=2), config_context(assume_finite=True):
        seen = Parallel()(delayed(_assume_finite)() for _ in range(4))
    assert seen == [True] * 4
    with parallel_config(backend=backend, n_jobs=2):
        assert Parallel()(delayed(_assume_finite)() for _ in range(2)) == [False] * 2


def test_process_workers_get_the_callers_filters_threads_share_them():
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=ResourceWarning)
        mine = _filters()
        with parallel_config(backend="loky", n_jobs=2):
            assert not shares_memory(None)
            assert Parallel()(delayed(_filters)() for _ in range(2)) == [mine] * 2
        with parallel_config(backend="threading", n_jobs=2):
            assert shares_memory(None)
            assert Parallel()(delayed(_filters)() for _ in range(2)) == [mine] * 2
    assert shares_memory(1)


def _slice_and_thread(s):
    import threading

    return (s.start, s.stop), threading.get_ident()


def test_map_chunks_keeps_order_and_gives_each_worker_one_run():
    slices = [slice(i, i + 3) for i in range(0, 30, 3)]
    assert map_chunks(_slice_and_thread, slices, 1) == [
        ((s.start, s.stop), _slice_and_thread(s)[1]) for s in slices]
    for backend in ("threading", "loky"):
        with parallel_config(backend=backend):
            results = map_chunks(_slice_and_thread, slices, 2)
        assert [bounds for bounds, _ in results] == [(s.start, s.stop) for s in slices]
        workers = [worker for _, worker in results]
        # two contiguous runs of five slices, each computed by one worker in order
        assert workers[:5] == [workers[0]] * 5 and workers[5:] == [workers[5]] * 5
    assert map_chunks(_slice_and_thread, slices[:1], 4) == [_slice_and_thread(slices[0])]
    assert map_chunks(_slice_and_thread, [], 2) == []


def _config_or_error(s):
    if s.start == 6:
        raise ValueError("chunk 6 failed")
    return s.start, get_config()["assume_finite"]


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_map_chunks_runs_chunks_under_the_callers_config_and_raises_their_errors(backend):
    slices = [slice(i, i + 1) for i in range(4)]
    with parallel_config(backend=backend, n_jobs=2), config_context(assume_finite=True):
        assert map_chunks(_config_or_error, slices, None) == [(i, True) for i in range(4)]
        # a chunk of the second worker's run, and one of the first's (the caller's,
        # where the workers are threads)
        for failing in (slices + [slice(6, 7)], [slice(6, 7)] + slices):
            with pytest.raises(ValueError, match="chunk 6 failed"):
                map_chunks(_config_or_error, failing, None)
