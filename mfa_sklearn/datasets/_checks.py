"""Parameter checks shared by the data set generators."""

import numbers

import numpy as np
from sklearn.utils import check_random_state


def check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def check_float(name, value, *, positive=False, nonnegative=False, allow_inf=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    if np.isnan(value) or (np.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value}.")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}.")
    if nonnegative and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}.")
    return value


def check_rng(random_state):
    # check_random_state does not accept the newer np.random.Generator; both kinds
    # provide the two methods used below (uniform, standard_normal).
    if isinstance(random_state, np.random.Generator):
        return random_state
    return check_random_state(random_state)

