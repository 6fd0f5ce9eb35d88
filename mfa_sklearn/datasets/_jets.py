"""Toy collider jets (:func:`make_toy_jets`), Lorentz-covariant."""

import numpy as np

from ._checks import check_float, check_int, check_rng

__all__ = ["JETS_FIELDS", "make_toy_jets"]

#: Field description of the columns of ``X`` returned by :func:`make_toy_jets`: one
#: "vector" field of 4-momenta ``(E, px, py, pz)`` per constituent, for the Lorentz
#: groups ``"O(1,3)"`` / ``"SO(1,3)"`` (time first, metric ``diag(+1, -1, -1, -1)``).
JETS_FIELDS = {"p": "vector"}

_TOP_MASS = 173.0          # GeV, mean mass of the 3-prong ("top-like") jets
_TOP_WIDTH = 5.0           # GeV, standard deviation of that mass
_JET_ENERGY = (400.0, 800.0)   # GeV, jet energy range before the random boost
_PRONG_SPREAD = 0.15       # rad, constituent angles around a top prong (rest frame)
_QCD_SPREAD = (0.03, 0.25)     # rad, range of the per-jet angular spread of QCD jets


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _isotropic(rng, shape):
    """Unit vectors uniform on the sphere, shape ``shape + (3,)``."""
    return _unit(rng.standard_normal(shape + (3,)))


def _spray(rng, axis, energy, spread):
    """Massless momenta (..., 4) of the given energies around unit ``axis`` (..., 3).

    Each direction is the axis tilted by an angle ``|N(0, spread^2)|`` (``spread``
    broadcasts against ``energy``) in a uniformly random azimuth.
    """
    helper = np.where(np.abs(axis[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    e1 = _unit(np.cross(axis, helper))
    e2 = np.cross(axis, e1)
    theta = np.abs(spread * rng.standard_normal(energy.shape))
    phi = 2.0 * np.pi * rng.uniform(size=energy.shape)
    direction = (np.cos(theta)[..., None] * axis
                 + (np.sin(theta) * np.cos(phi))[..., None] * e1
                 + (np.sin(theta) * np.sin(phi))[..., None] * e2)
    return np.concatenate([energy[..., None], energy[..., None] * direction], axis=-1)


def _boost(p, velocity):
    """Boost momenta ``p`` (B, n, 4) by per-sample velocities (B, 3), ``|v| < 1``: a
    particle at rest ends up moving with ``velocity``."""
    speed = np.linalg.norm(velocity, axis=-1, keepdims=True)          # (B, 1)
    n = velocity / np.where(speed > 0, speed, 1.0)                    # (B, 3)
    gamma = 1.0 / np.sqrt(1.0 - speed ** 2)                           # (B, 1)
    E, q = p[..., 0], p[..., 1:]
    along = np.einsum("bnk,bk->bn", q, n)
    E_new = gamma * (E + speed * along)
    q_new = q + ((gamma - 1.0) * along + gamma * speed * E)[..., None] * n[:, None, :]
    return np.concatenate([E_new[..., None], q_new], axis=-1)


def _three_body(rng, mass):
    """Three massless momenta (B, 3, 4) of total 4-momentum ``(mass, 0, 0, 0)``, uniform
    in phase space (RAMBO, Kleiss, Stirling and Ellis 1986)."""
    B = mass.shape[0]
    q0 = -np.log(rng.uniform(size=(B, 3)) * rng.uniform(size=(B, 3)))
    q = np.concatenate([q0[..., None], q0[..., None] * _isotropic(rng, (B, 3))], axis=-1)
    Q = q.sum(axis=1)                                                 # (B, 4)
    M = np.sqrt(Q[:, 0] ** 2 - np.sum(Q[:, 1:] ** 2, axis=1))
    b = -Q[:, 1:] / M[:, None]
    x = mass / M
    gamma = Q[:, 0] / M
    a = 1.0 / (1.0 + gamma)
    bq = np.einsum("bnk,bk->bn", q[..., 1:], b)
    E = x[:, None] * (gamma[:, None] * q[..., 0] + bq)
    vec = x[:, None, None] * (q[..., 1:] + b[:, None, :] * q[..., :1]
                              + (a[:, None] * bq)[..., None] * b[:, None, :])
    return np.concatenate([E[..., None], vec], axis=-1)


def _top_jets(rng, B, n):
    """3-prong jets at rest: a mass ~ N(173, 5^2) decays to 3 massless prongs (uniform
    phase space); each prong sprays into massless constituents."""
    mass = _TOP_MASS + _TOP_WIDTH * rng.standard_normal(B)
    prongs = _three_body(rng, mass)                                   # (B, 3, 4)
    # constituents 0, 1, 2 seed the prongs; the others join a random prong
    label = np.concatenate([np.broadcast_to(np.arange(3), (B, 3)),
                            rng.integers(0, 3, (B, n - 3))], axis=1)
    share = rng.gamma(1.0, size=(B, n))
    one_hot = label[..., None] == np.arange(3)                        # (B, n, 3)
    total = np.einsum("bn,bnk->bk", share, one_hot)
    fraction = share / np.take_along_axis(total, label, axis=1)
    prong = np.take_along_axis(prongs, label[..., None], axis=1)      # (B, n, 4)
    return _spray(rng, _unit(prong[..., 1:]), fraction * prong[..., 0], _PRONG_SPREAD)


def _qcd_jets(rng, B, n):
    """1-prong jets along +z of unit energy: one spray of massless constituents with a
    per-jet angular spread."""
    share = rng.gamma(1.0, size=(B, n))
    fraction = share / share.sum(axis=1, keepdims=True)
    spread = rng.uniform(*_QCD_SPREAD, size=(B, 1))
    axis = np.broadcast_to([0.0, 0.0, 1.0], (B, n, 3))
    return _spray(rng, axis, fraction, spread)


def make_toy_jets(n_samples=1000, *, n_constituents=16, boost_gamma_max=2.0,
                  random_state=None):
    """Toy collider jets: 3-prong "top-like" against 1-prong "QCD-like" jets.

    Every jet is a set of ``n_constituents`` massless particles (``E = |p|``), given by
    their 4-momenta ``(E, px, py, pz)`` in GeV. Each jet is generated along the +z axis
    with an energy uniform in [400, 800] GeV (both classes alike), then rotated by a
    Haar-random rotation of SO(3) and boosted by a random Lorentz boost: a direction
    uniform on the sphere and a Lorentz factor ``gamma`` uniform in
    ``[1, boost_gamma_max]``. The task (the label) is Lorentz-invariant, while raw
    energies and directions depend on the boost: a model that is not invariant has to
    learn the symmetry from data, and fails on boosts it did not see.

    * **Label 1, top-like**: a particle of mass ~ N(173, 5^2) GeV decays at rest into
      three massless prongs, uniformly in 3-body phase space (RAMBO); every constituent
      joins one prong (each prong gets at least one), takes a Gamma(1)-distributed
      share of its energy and a direction tilted from the prong's by an angle
      ``|N(0, 0.15^2)|`` rad. The system is then boosted along +z to the jet energy.
    * **Label 0, QCD-like**: one spray along +z: Gamma(1) energy shares and angles
      ``|N(0, s^2)|`` from the axis with a per-jet spread ``s`` uniform in
      [0.03, 0.25] rad, scaled to the jet energy.

    Constituents are ordered by decreasing ``<p_i, P>`` (Minkowski product with the
    jet's total momentum ``P``: the constituent's energy in the jet rest frame times
    the jet mass), an order that Lorentz transformations do not change.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of jets; ``n_samples // 2`` are top-like, the rest QCD-like, in random
        order.
    n_constituents : int, default=16
        Particles per jet, at least 3.
    boost_gamma_max : float, default=2.0
        Largest Lorentz factor of the random boost (>= 1; 1 means rotations only).
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Seed or generator; the same seed gives identical output.

    Returns
    -------
    X : ndarray of shape (n_samples, 4 * n_constituents)
        Field-major columns ``E_0, px_0, py_0, pz_0, E_1, ...``: one "vector" field
        (:data:`JETS_FIELDS`), e.g. ``FrameAveragingClassifier(..., group="SO(1,3)",
        fields={"p": "vector"})``.
    y : ndarray of shape (n_samples,) of int64
        1 for top-like jets, 0 for QCD-like jets.

    Raises
    ------
    ValueError
        If an argument has the wrong type or is out of range.

    Notes
    -----
    The physics is deliberately simplified, to give a small, fast and exactly
    Lorentz-covariant benchmark, not a realistic one: no parton shower,
    hadronisation, underlying event, pile-up or detector (no smearing, no
    pseudorapidity/azimuth cuts, no jet clustering); all constituents are exactly
    massless (up to rounding) and every jet has the same number of them; the top decay
    has no W resonance and no spin correlations; QCD jets have no Sudakov mass
    spectrum, only a random angular width. The jet mass separates the classes well but
    not perfectly (top-like jets peak near 173 GeV; QCD-like ones spread over about
    20-160 GeV), the prong structure gives further invariant information, and raw
    energies do not (both classes share the energy and boost distributions).

    Examples
    --------
    >>> X, y = make_toy_jets(10, random_state=0)
    >>> X.shape, y.shape
    ((10, 64), (10,))
    """
    n_samples = check_int("n_samples", n_samples, 1)
    n = check_int("n_constituents", n_constituents, 3)
    gamma_max = check_float("boost_gamma_max", boost_gamma_max)
    if gamma_max < 1.0:
        raise ValueError(f"boost_gamma_max must be >= 1, got {gamma_max}.")
    rng = check_rng(random_state)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng.randint(2 ** 31))

    y = np.zeros(n_samples, dtype=np.int64)
    y[: n_samples // 2] = 1
    y = rng.permutation(y)
    top = y == 1
    p = np.empty((n_samples, n, 4))
    p[top] = _top_jets(rng, int(top.sum()), n)
    p[~top] = _qcd_jets(rng, int((~top).sum()), n)

    # along +z with energy E_jet: top-like jets are boosted from their exact rest frame
    # (the sprays moved it a little), QCD-like ones scaled
    energy = rng.uniform(*_JET_ENERGY, size=n_samples)
    P = p[top].sum(axis=1)
    at_rest = _boost(p[top], -P[:, 1:] / P[:, :1])
    mass = at_rest[..., 0].sum(axis=1)
    speed = np.sqrt(1.0 - (mass / np.maximum(energy[top], mass)) ** 2)
    p[top] = _boost(at_rest, speed[:, None] * np.array([0.0, 0.0, 1.0]))
    p[~top] *= energy[~top, None, None]

    # random rotation, then random boost
    Q, R = np.linalg.qr(rng.standard_normal((n_samples, 3, 3)))
    Q = Q * np.sign(np.diagonal(R, axis1=1, axis2=2))[:, None, :]
    Q[np.linalg.det(Q) < 0, :, 0] *= -1.0
    p[..., 1:] = p[..., 1:] @ Q
    gamma = rng.uniform(1.0, gamma_max, size=(n_samples, 1))
    velocity = np.sqrt(1.0 - 1.0 / gamma ** 2) * _isotropic(rng, (n_samples,))
    p = _boost(p, velocity)
    # massless to rounding: E = |p| exactly where the boost rounded it off
    p[..., 0] = np.linalg.norm(p[..., 1:], axis=-1)

    # Lorentz-invariant order: decreasing <p_i, P>
    P = p.sum(axis=1, keepdims=True)
    key = p[..., 0] * P[..., 0] - np.sum(p[..., 1:] * P[..., 1:], axis=-1)
    order = np.argsort(-key, axis=1, kind="stable")
    p = np.take_along_axis(p, order[..., None], axis=1)
    return p.reshape(n_samples, 4 * n), y
