"""Synthetic data sets with exact symmetry.

Toy collider jets (:func:`make_toy_jets`) are Lorentz-covariant. The other data set is
the charged-particle N-body system of the equivariance literature (Kipf et al. 2018,
"Neural Relational Inference", charged particles; used in 3-D as "nbody_small" by
Satorras et al. 2021, "E(n) Equivariant Graph Neural Networks"), re-implemented so
that the simulator itself is exactly E(3)-equivariant.
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

__all__ = [
    "JETS_FIELDS",
    "NBODY_FIELDS",
    "NBODY_TARGET_FIELDS",
    "load_charged_nbody_splits",
    "make_charged_nbody",
    "make_toy_jets",
]

#: Field description of the columns of ``X`` returned by :func:`make_charged_nbody`,
#: in column order. Columns are field-major: first the ``3 * n_particles`` positions
#: (``p0x, p0y, p0z, p1x, ...``), then the ``3 * n_particles`` velocities in the same
#: order, then the ``n_particles`` charges. Positions are points (they rotate and
#: translate), velocities are vectors (they rotate only), charges are invariant scalars.
NBODY_FIELDS = {"pos": "point", "vel": "vector", "charge": "scalar"}

#: Field description of ``y`` returned by :func:`make_charged_nbody`: the future
#: positions, ``3 * n_particles`` columns in the same order as the positions in ``X``.
NBODY_TARGET_FIELDS = {"pos": "point"}


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def _check_float(name, value, *, positive=False, nonnegative=False, allow_inf=False):
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


def _check_rng(random_state):
    # check_random_state does not accept the newer np.random.Generator; both kinds
    # provide the two methods used below (uniform, standard_normal).
    if isinstance(random_state, np.random.Generator):
        return random_state
    return check_random_state(random_state)


def _pair_matrix(n_particles):
    """Return the (n_pairs, n_particles) matrix mapping positions to pair differences.

    Row ``p`` for the pair ``i < j`` holds +1 at ``i`` and -1 at ``j``, so ``D @ x``
    gives ``x_i - x_j`` and ``D.T @ f`` adds ``+f`` to particle ``i`` and ``-f`` to
    particle ``j`` (Newton's third law).
    """
    i, j = np.triu_indices(n_particles, k=1)
    rows = np.arange(i.size)
    D = np.zeros((i.size, n_particles))
    D[rows, i] = 1.0
    D[rows, j] = -1.0
    return D, i, j


def _simulate(
    pos, vel, charges, n_steps, dt, *, interaction_strength=1.0, max_force=np.inf
):
    """Integrate a batch of charged-particle systems.

    Parameters
    ----------
    pos, vel : ndarray of shape (n_systems, n_particles, 3)
        Initial positions and velocities (not modified).
    charges : ndarray of shape (n_systems, n_particles)
        Particle charges.
    n_steps : int
        Number of integration steps.
    dt : float
        Time step.
    interaction_strength : float, default=1.0
        Coulomb constant ``k`` in ``F_i = k sum_j q_i q_j (x_i - x_j) / |x_i - x_j|^3``.
    max_force : float, default=np.inf
        Largest allowed force norm per particle; a larger force vector is rescaled to
        this norm. ``np.inf`` disables clipping.

    Returns
    -------
    pos, vel : ndarray of shape (n_systems, n_particles, 3)
        State after ``n_steps`` steps. Each step is
        ``vel += dt * F(pos); pos += dt * vel`` (semi-implicit Euler, the order of the
        NRI generator: its initial kick followed by drift/kick pairs).
    """
    n_systems, n_particles, _ = pos.shape
    D, i, j = _pair_matrix(n_particles)
    DT = np.ascontiguousarray(D.T)
    n_pairs = D.shape[0]

    # Internal layout puts the systems last, (n_particles, 3, n_systems), so that every
    # operation is a few long contiguous vectorised passes and both pair differences
    # and force accumulation are single small-by-wide matrix products.
    P = np.ascontiguousarray(np.transpose(pos, (1, 2, 0)), dtype=np.float64)
    V = np.ascontiguousarray(np.transpose(vel, (1, 2, 0)), dtype=np.float64)
    q = np.asarray(charges, dtype=np.float64).T
    qq = interaction_strength * q[i] * q[j]  # (n_pairs, n_systems)

    # Preallocated work buffers, reused every step.
    d = np.empty((n_pairs, 3, n_systems))
    d_sq = np.empty_like(d)
    r2 = np.empty((n_pairs, n_systems))
    coef = np.empty_like(r2)
    F = np.empty((n_particles, 3, n_systems))
    work = np.empty_like(F)
    scale = np.empty((n_particles, n_systems))
    P2 = P.reshape(n_particles, 3 * n_systems)
    d2 = d.reshape(n_pairs, 3 * n_systems)
    F2 = F.reshape(n_particles, 3 * n_systems)
    clip = np.isfinite(max_force)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(n_steps):
            np.matmul(D, P2, out=d2)  # x_i - x_j for every pair i < j
            np.multiply(d, d, out=d_sq)
            np.add(d_sq[:, 0], d_sq[:, 1], out=r2)
            np.add(r2, d_sq[:, 2], out=r2)
            np.sqrt(r2, out=coef)
            np.multiply(coef, r2, out=coef)
            np.divide(qq, coef, out=coef)  # k q_i q_j / r^3
            np.multiply(d, coef[:, None, :], out=d)
            np.matmul(DT, d2, out=F2)  # F_i = sum_j f_ij, with f_ji = -f_ij
            if clip:
                # Clip the force *norm* (per-component clipping, as in NRI, would
                # break rotation equivariance). scale is exactly 1 when unclipped.
                np.multiply(F, F, out=work)
                np.add(work[:, 0], work[:, 1], out=scale)
                np.add(scale, work[:, 2], out=scale)
                np.sqrt(scale, out=scale)
                np.maximum(scale, max_force, out=scale)
                np.divide(max_force, scale, out=scale)
                np.multiply(scale, dt, out=scale)
                np.multiply(F, scale[:, None, :], out=F)
            else:
                np.multiply(F, dt, out=F)
            np.add(V, F, out=V)
            np.multiply(V, dt, out=work)
            np.add(P, work, out=P)

    return np.transpose(P, (2, 0, 1)).copy(), np.transpose(V, (2, 0, 1)).copy()


def _energy(pos, vel, charges, interaction_strength=1.0):
    """Total energy (unit masses) of each system, shape (n_systems,).

    ``E = 1/2 sum_i |v_i|^2 + k sum_{i<j} q_i q_j / |x_i - x_j|``, whose negative
    gradient is the (unclipped) force used by :func:`_simulate`.
    """
    i, j = np.triu_indices(pos.shape[1], k=1)
    r = np.linalg.norm(pos[:, i] - pos[:, j], axis=-1)
    potential = interaction_strength * np.sum(charges[:, i] * charges[:, j] / r, axis=1)
    kinetic = 0.5 * np.sum(vel**2, axis=(1, 2))
    return kinetic + potential


def make_charged_nbody(
    n_samples=3000,
    *,
    n_particles=5,
    n_steps=3000,
    horizon=1000,
    dt=1e-3,
    loc_std=1.0,
    vel_norm=0.5,
    interaction_strength=1.0,
    max_force=None,
    return_fields=False,
    random_state=None,
):
    """Simulate charged particles in 3-D and return a state -> future-positions task.

    Each sample is an independent system of ``n_particles`` unit-mass point charges.
    Charges are drawn uniformly from {+1, -1}, initial positions from
    ``N(0, loc_std^2)`` per coordinate, initial velocities from a standard Gaussian
    rescaled to norm ``vel_norm`` per particle. The force on particle ``i`` is
    ``F_i = interaction_strength * sum_j q_i q_j (x_i - x_j) / |x_i - x_j|^3`` (like
    charges repel), clipped in norm to ``max_force``. All systems are integrated
    together, vectorised over samples, in float64.

    The input is the state after ``n_steps`` integration steps; the target is the
    positions ``horizon`` steps later.

    Parameters
    ----------
    n_samples : int, default=3000
        Number of independent systems (rows).
    n_particles : int, default=5
        Number of particles per system, at least 2.
    n_steps : int, default=3000
        Steps simulated before the input state is taken (0 gives the initial state).
    horizon : int, default=1000
        Steps between the input state and the target positions (0 gives ``y`` equal
        to the input positions).
    dt : float, default=1e-3
        Integration time step.
    loc_std : float, default=1.0
        Standard deviation of each initial position coordinate.
    vel_norm : float, default=0.5
        Norm of every particle's initial velocity.
    interaction_strength : float, default=1.0
        Coulomb constant of the pairwise force.
    max_force : float or None, default=None
        Largest force norm per particle; larger force vectors are rescaled to this
        norm. ``None`` means ``0.1 / dt`` (the threshold of the original generator);
        ``np.inf`` disables clipping.
    return_fields : bool, default=False
        If True, also return a copy of :data:`NBODY_FIELDS`.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Seed or generator for the initial conditions; the same seed gives identical
        output.

    Returns
    -------
    X : ndarray of shape (n_samples, 7 * n_particles)
        Field-major column blocks: positions ``p0x, p0y, p0z, p1x, ...``
        (``3 * n_particles`` columns), then velocities in the same order
        (``3 * n_particles``), then charges (``n_particles``). See
        :data:`NBODY_FIELDS`.
    y : ndarray of shape (n_samples, 3 * n_particles)
        Positions ``horizon`` steps after the input state, in the same column order
        as the positions in ``X``. See :data:`NBODY_TARGET_FIELDS`.
    fields : dict
        Only if ``return_fields`` is True: ``{"pos": "point", "vel": "vector",
        "charge": "scalar"}``, the description of the columns of ``X``.

    Raises
    ------
    ValueError
        If an argument has the wrong type or is out of range.

    See Also
    --------
    load_charged_nbody_splits : Train/validation/test splits of one simulation.

    Notes
    -----
    Differences from the original generator (``ChargedParticlesSim`` of NRI, and its
    3-D variant used by EGNN):

    * Forces are clipped by **norm** (a force vector whose norm exceeds
      ``max_force`` is rescaled to norm ``max_force``) instead of per component to
      ``[-max_force, max_force]``; per-component clipping depends on the axes and is
      not rotation-equivariant.
    * There is no box: particles move in free space. (NRI reflects particles off the
      walls of a box, ``box_size=5``, which breaks both rotation and translation
      equivariance.)
    * Pair distances are computed from the coordinate differences ``x_i - x_j``
      rather than from the expansion ``|x_i|^2 + |x_j|^2 - 2 x_i . x_j``, which
      depends on the origin in floating point (and loses precision far from it).
    * Charges are drawn from {+1, -1} directly (the original draws from
      {-1, 0, +1} with probabilities (1/2, 0, 1/2), which is the same distribution);
      no observation noise is added; random numbers are drawn for all systems at
      once, so individual systems do not match the original for the same seed.
    * Only two time points are returned. The original records every
      ``sample_freq``-th step and overwrites its first recorded frame, so its frame
      ``k`` is step ``(k + 1) * sample_freq``; EGNN's frames 30 and 40 (with
      ``sample_freq=100``) are thus steps 3100 and 4100, whereas the defaults here
      take steps 3000 and 4000.

    The integration order is the original one. The original applies one velocity
    kick ``v += dt F(x)`` before its loop and then, every step, a drift
    ``x += dt v`` followed by a kick; its recorded state at step ``t`` has had ``t``
    kicks and ``t`` drifts. Here one step is ``v += dt F(x); x += dt v``, so the
    state after ``n_steps`` steps is that same state.

    The simulator is exactly E(3)-equivariant: simulating the initial state
    ``(x Q + b, v Q)`` for an orthogonal ``Q`` and a translation ``b`` gives the
    trajectory ``(x(t) Q + b, v(t) Q)``, up to floating-point rounding (which chaotic
    close encounters can amplify over long runs). Hence ``y`` is an E(3)-equivariant
    function of ``X`` under the action described by :data:`NBODY_FIELDS`.

    Examples
    --------
    >>> X, y = make_charged_nbody(10, n_steps=100, horizon=50, random_state=0)
    >>> X.shape, y.shape
    ((10, 35), (10, 15))
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    n_particles = _check_int("n_particles", n_particles, 2)
    n_steps = _check_int("n_steps", n_steps, 0)
    horizon = _check_int("horizon", horizon, 0)
    dt = _check_float("dt", dt, positive=True)
    loc_std = _check_float("loc_std", loc_std, positive=True)
    vel_norm = _check_float("vel_norm", vel_norm, nonnegative=True)
    interaction_strength = _check_float("interaction_strength", interaction_strength)
    if max_force is None:
        max_force = 0.1 / dt
    max_force = _check_float("max_force", max_force, positive=True, allow_inf=True)
    rng = _check_rng(random_state)

    charges = np.where(rng.uniform(size=(n_samples, n_particles)) < 0.5, -1.0, 1.0)
    pos = loc_std * rng.standard_normal(size=(n_samples, n_particles, 3))
    vel = rng.standard_normal(size=(n_samples, n_particles, 3))
    vel *= vel_norm / np.linalg.norm(vel, axis=-1, keepdims=True)

    kwargs = dict(interaction_strength=interaction_strength, max_force=max_force)
    pos, vel = _simulate(pos, vel, charges, n_steps, dt, **kwargs)
    future, _ = _simulate(pos, vel, charges, horizon, dt, **kwargs)

    X = np.concatenate(
        [pos.reshape(n_samples, -1), vel.reshape(n_samples, -1), charges], axis=1
    )
    y = future.reshape(n_samples, -1)
    if return_fields:
        return X, y, dict(NBODY_FIELDS)
    return X, y


_SIMULATION_PARAMETERS = {"n_particles", "n_steps", "horizon", "dt", "loc_std", "vel_norm",
                          "interaction_strength", "max_force"}


def load_charged_nbody_splits(random_state=0, n_train=3000, n_val=2000, n_test=2000,
                              **simulation):
    """Train, validation and test sets from one seeded charged N-body simulation.

    Calls :func:`make_charged_nbody` once with ``n_train + n_val + n_test`` samples
    and splits the rows in order. The defaults match the sizes of EGNN's
    "nbody_small" (3000 / 2000 / 2000 systems of 5 particles).

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator, \
default=0
        Seed or generator for the simulation.
    n_train : int, default=3000
        Number of training samples, at least 1.
    n_val : int, default=2000
        Number of validation samples, at least 0.
    n_test : int, default=2000
        Number of test samples, at least 0.
    **simulation
        Keyword arguments of :func:`make_charged_nbody` (``n_particles``, ``n_steps``,
        ``horizon``, ``dt``, ``loc_std``, ``vel_norm``, ``interaction_strength``,
        ``max_force``), with its defaults.

    Returns
    -------
    X_train, y_train, X_val, y_val, X_test, y_test : ndarray
        Consecutive row blocks of the ``X`` and ``y`` of :func:`make_charged_nbody`
        (first ``n_train`` rows, next ``n_val``, last ``n_test``), with its column
        layout (:data:`NBODY_FIELDS`, :data:`NBODY_TARGET_FIELDS`).

    Raises
    ------
    ValueError
        If an argument has the wrong type or is out of range.
    """
    n_train = _check_int("n_train", n_train, 1)
    n_val = _check_int("n_val", n_val, 0)
    n_test = _check_int("n_test", n_test, 0)
    unknown = sorted(set(simulation) - _SIMULATION_PARAMETERS)
    if unknown:
        raise TypeError(f"load_charged_nbody_splits got unexpected keyword argument(s) "
                        f"{unknown}; the simulation takes {sorted(_SIMULATION_PARAMETERS)}")
    X, y = make_charged_nbody(n_train + n_val + n_test, random_state=random_state,
                              **simulation)
    a, b = n_train, n_train + n_val
    return X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:]


# ----------------------------------------------------------------------- toy jets
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
    n_samples = _check_int("n_samples", n_samples, 1)
    n = _check_int("n_constituents", n_constituents, 3)
    gamma_max = _check_float("boost_gamma_max", boost_gamma_max)
    if gamma_max < 1.0:
        raise ValueError(f"boost_gamma_max must be >= 1, got {gamma_max}.")
    rng = _check_rng(random_state)
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
