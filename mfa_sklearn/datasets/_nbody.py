"""The charged-particle N-body system of the equivariance literature (Kipf et al. 2018,
"Neural Relational Inference", charged particles; used in 3-D as "nbody_small" by
Satorras et al. 2021, "E(n) Equivariant Graph Neural Networks"), re-implemented so
that the simulator itself is exactly E(3)-equivariant.
"""

import numpy as np

from ._checks import check_float, check_int, check_rng

__all__ = [
    "NBODY_FIELDS",
    "NBODY_TARGET_FIELDS",
    "load_charged_nbody_splits",
    "make_charged_nbody",
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
    n_samples = check_int("n_samples", n_samples, 1)
    n_particles = check_int("n_particles", n_particles, 2)
    n_steps = check_int("n_steps", n_steps, 0)
    horizon = check_int("horizon", horizon, 0)
    dt = check_float("dt", dt, positive=True)
    loc_std = check_float("loc_std", loc_std, positive=True)
    vel_norm = check_float("vel_norm", vel_norm, nonnegative=True)
    interaction_strength = check_float("interaction_strength", interaction_strength)
    if max_force is None:
        max_force = 0.1 / dt
    max_force = check_float("max_force", max_force, positive=True, allow_inf=True)
    rng = check_rng(random_state)

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
    n_train = check_int("n_train", n_train, 1)
    n_val = check_int("n_val", n_val, 0)
    n_test = check_int("n_test", n_test, 0)
    unknown = sorted(set(simulation) - _SIMULATION_PARAMETERS)
    if unknown:
        raise TypeError(f"load_charged_nbody_splits got unexpected keyword argument(s) "
                        f"{unknown}; the simulation takes {sorted(_SIMULATION_PARAMETERS)}")
    X, y = make_charged_nbody(n_train + n_val + n_test, random_state=random_state,
                              **simulation)
    a, b = n_train, n_train + n_val
    return X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:]

