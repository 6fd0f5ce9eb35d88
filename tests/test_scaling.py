"""Scaling out: canonicalization and prediction through joblib, on a Dask cluster too."""

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.neighbors import KNeighborsRegressor

from mfa_sklearn import FrameAveragingRegressor, MinimalFrameCanonicalizer
from mfa_sklearn.datasets import NBODY_FIELDS, make_charged_nbody


def _data(n_samples):
    return make_charged_nbody(n_samples, random_state=0, n_steps=50, horizon=20)


def test_dask_backend_matches_serial():
    """``n_jobs`` spreads chunks of samples over joblib workers; with joblib's Dask
    backend those are the workers of a (here local) distributed cluster."""
    distributed = pytest.importorskip(
        "distributed", reason="the Dask backend needs the optional extra: "
                              "pip install 'mfa_sklearn[dask]'")
    X, y = _data(20000)                       # several chunks of 8192 clouds
    serial = MinimalFrameCanonicalizer("E(3)", fields=NBODY_FIELDS).fit(X).transform(X)
    model = FrameAveragingRegressor(KNeighborsRegressor(), group="E(3)",
                                    fields=NBODY_FIELDS, target="point").fit(X, y)
    expected = model.predict(X)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster), parallel_config(backend="dask"):
        canonicalizer = MinimalFrameCanonicalizer("E(3)", fields=NBODY_FIELDS, n_jobs=2)
        np.testing.assert_array_equal(canonicalizer.fit(X).transform(X), serial)
        np.testing.assert_array_equal(model.set_params(n_jobs=2).predict(X), expected)
