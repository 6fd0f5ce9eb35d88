"""mfa_sklearn: exact symmetry for any scikit-learn estimator by Minimal Frame Averaging.

Public API: :class:`MinimalFrameCanonicalizer`, :class:`FrameAveragingRegressor`,
:class:`FrameAveragingClassifier`, :class:`LocalFrameRegressor`,
:class:`LocalFrameFeaturizer`, :func:`check_equivariance`, :func:`assert_equivariant`
and :func:`get_group`.
"""

from .averaging import FrameAveragingClassifier, FrameAveragingRegressor
from .canonicalizer import MinimalFrameCanonicalizer
from .groups import get_group
from .local import LocalFrameFeaturizer, LocalFrameRegressor
from .testing import assert_equivariant, check_equivariance

__version__ = "0.1.0"
__all__ = [
    "FrameAveragingClassifier",
    "FrameAveragingRegressor",
    "LocalFrameFeaturizer",
    "LocalFrameRegressor",
    "MinimalFrameCanonicalizer",
    "__version__",
    "assert_equivariant",
    "check_equivariance",
    "get_group",
]
