"""skorch nets as inner estimators: the casts at their boundary.

skorch never casts (skorch#758): its torch modules need float32 X, and
``NeuralNetRegressor`` needs a float32 y of shape (n, 1) for one target (a 1-D y
broadcasts wrongly against the (n, 1) output in ``MSELoss``, skorch#972). These helpers
cast what a skorch net receives, so ``FrameAveragingRegressor(NeuralNetRegressor(...))``
takes the float64 X and 1-D y that any sklearn estimator takes, and hand its float32
outputs back in X's dtype (mapping back by the frames then runs in that dtype too).
Every other estimator passes through unchanged. skorch is never imported here: a user
who built a net has imported it already.
"""

import sys

import numpy as np


def is_skorch_net(estimator):
    """Whether ``estimator`` is a skorch net."""
    skorch = sys.modules.get("skorch")
    return skorch is not None and isinstance(estimator, skorch.NeuralNet)


def inner_inputs(estimator, X, y=None):
    """X (and y) as ``estimator`` needs them: cast for skorch nets, else unchanged."""
    if not is_skorch_net(estimator):
        return X, y
    X = X.astype(np.float32, copy=False)
    if y is not None and isinstance(estimator, sys.modules["skorch"].NeuralNetRegressor):
        y = y.astype(np.float32, copy=False)
        y = y[:, None] if y.ndim == 1 else y
    return X, y


def inner_outputs(estimator, out, dtype):
    """Floating outputs of a skorch net (float32) cast back to ``dtype``."""
    if is_skorch_net(estimator) and np.issubdtype(out.dtype, np.floating):
        return out.astype(dtype, copy=False)
    return out
