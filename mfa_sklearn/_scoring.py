"""The R^2 score of regressors whose per-row targets are NaN at absent rows."""

import numpy as np
from sklearn.metrics import r2_score


def r2_of_present(y, y_pred, sample_weight=None):
    """R^2 of ``y_pred`` against ``y``, as a scikit-learn regressor's ``score``.

    Per-row targets of padded systems may be NaN at their absent rows (``fit`` ignores
    whatever they hold there), where predictions are NaN. Each output column is then
    scored on the samples where neither is NaN (``r2_score`` of that column, with
    their weights) and the columns' scores are averaged, as ``r2_score``'s default
    ``multioutput="uniform_average"`` averages them; columns present in fewer than two
    samples are left out. Without NaN this is
    ``r2_score(y, y_pred, sample_weight=sample_weight)``.

    Parameters
    ----------
    y, y_pred : array-like of shape (n_samples,) or (n_samples, ...)
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    float
    """
    y = np.asarray(y, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y.shape)
    missing = np.isnan(y) | np.isnan(y_pred)
    if not missing.any():
        return r2_score(y, y_pred, sample_weight=sample_weight)
    y, y_pred = y.reshape(len(y), -1), y_pred.reshape(len(y), -1)
    present = ~missing.reshape(len(y), -1)
    weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    scores = [r2_score(y[rows, j], y_pred[rows, j],
                       sample_weight=None if weight is None else weight[rows])
              for j in range(y.shape[1])
              for rows in [np.flatnonzero(present[:, j])] if len(rows) >= 2]
    if not scores:
        raise ValueError("no output is present (not NaN in y and in the predictions) "
                         "in two or more samples: nothing to score")
    return float(np.mean(scores))


class PresentRowsScoreMixin:
    """``score`` for regressors of padded systems: :func:`r2_of_present` of ``predict``.

    Put it before :class:`~sklearn.base.RegressorMixin` among the bases."""

    def score(self, X, y, sample_weight=None):
        """R^2 of ``predict(X)`` against y; per-row targets score their present rows.

        As :meth:`sklearn.base.RegressorMixin.score` (the uniform average over the
        outputs), except that per-row (per-atom) targets score each output column on
        the samples where it is present: not NaN in y (absent rows, as ``fit`` takes
        them) nor in the predictions (absent rows of X).

        Parameters
        ----------
        X : array-like
            Samples to predict, as ``predict`` takes them.
        y : array-like of shape (n_samples,) or (n_samples, ...)
            True targets, as ``fit`` takes them.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        return r2_of_present(y, self.predict(X), sample_weight)
