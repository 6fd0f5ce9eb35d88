"""Small metal clusters sampled by Langevin dynamics under ASE's EMT potential.

The potential is ASE's effective medium theory (``ase.calculators.emt.EMT``: Jacobsen,
Stoltze and Nørskov 1996, with ASE's parameter table and its default cutoff), evaluated
here for many padded clusters at once so that hundreds of trajectories advance together
in a few numpy operations per step. Its energies and forces agree with
``ase.calculators.emt.EMT`` to rounding (the tests compare them).
"""

import math
import numbers
import re
import textwrap
import warnings

import numpy as np
from sklearn.utils import Bunch

from ..atoms import padded_to_X
from ..exceptions import MissingDependencyError
from ._checks import check_float, check_int, check_rng

__all__ = ["EMT_FIELDS", "EMT_FORCE_FIELDS", "make_emt_clusters"]

#: Fields of ``X`` returned by :func:`make_emt_clusters` (``"v": "vector"`` follows
#: ``"pos"`` when velocities are returned).
EMT_FIELDS = {"pos": "point", "Z": "scalar"}

#: Field of the ``forces`` returned by :func:`make_emt_clusters`: one 3-vector per atom.
EMT_FORCE_FIELDS = {"forces": "vector"}

#: The metals of the EMT parameter table (its H, C, N, O entries are not for use).
METALS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")

_ATOMS_HINT = 'pip install "mfa_sklearn[atoms]"'


def _import_ase():
    try:
        import ase  # noqa: F401
        from ase.calculators import emt
    except ImportError:
        raise MissingDependencyError(
            "make_emt_clusters needs ASE (the EMT parameters, units and masses); install "
            f"it with: {_ATOMS_HINT}") from None
    return emt


class _BatchEMT:
    """EMT energies and forces of a batch of padded clusters.

    Parameters
    ----------
    species : ndarray of int of shape (n_systems, n_max)
        Index into ``symbols`` per atom, -1 for absent atoms.
    symbols : sequence of str
        Element symbols of the EMT parameter table.
    """

    def __init__(self, species, symbols):
        emt = _import_ase()
        from ase.units import Bohr

        table = emt.parameters
        beta = emt.beta
        # ASE's default cutoff (asap_cutoff=False): one logistic cutoff from the largest
        # atom of the whole table, midway between the 3rd and 4th fcc neighbour shells,
        # 1e-4 at the 4th; pairs farther than rc + 0.5 Å are left out.
        r1 = beta * max(p[1] for p in table.values()) * Bohr
        self.rc = 0.5 * (math.sqrt(3.0) + 2.0) * r1
        self.acut = math.log(1e4 - 1.0) / (2.0 * r1 - self.rc)
        self.r_list = self.rc + 0.5
        self.beta = beta

        p = np.array([table[s] for s in symbols], dtype=np.float64)
        E0, s0, V0 = p[:, 0], p[:, 1] * Bohr, p[:, 2]
        eta2, kappa, lam, n0 = p[:, 3] / Bohr, p[:, 4] / Bohr, p[:, 5] / Bohr, p[:, 6]
        # gamma1, gamma2: the sums over the first three fcc shells (12, 6, 24 sites at
        # beta s0 sqrt(1, 2, 3)) that normalise sigma1 and sigma2 in the perfect crystal
        shell_r = beta * s0[:, None] * np.sqrt([1.0, 2.0, 3.0])
        weight = np.array([12.0, 6.0, 24.0]) / 12.0 * self._cutoff(shell_r)
        gamma1 = np.sum(weight * np.exp(-eta2[:, None] * (shell_r - beta * s0[:, None])), 1)
        gamma2 = np.sum(weight * np.exp(-kappa[:, None] / beta
                                        * (shell_r - beta * s0[:, None])), 1)

        present = species >= 0
        k = np.where(present, species, 0)
        self.present = present
        self.pairs = present[:, :, None] & present[:, None, :]
        self.pairs &= ~np.eye(species.shape[1], dtype=bool)
        # per atom i (self) ...
        self.E0, self.V0, self.lam = E0[k], V0[k], lam[k]
        self.eta2, self.kappa = eta2[k], kappa[k]
        self.inv12g1 = 1.0 / (12.0 * gamma1[k])
        self.c2 = np.where(present, -0.5 * V0[k] / gamma2[k], 0.0)
        # ... and per neighbour j, broadcast over i: chi_ij = n0_j / n0_i folded into the
        # prefactors of exp(-eta2_j r) and exp(-kappa_j r / beta)
        chi = n0[k][:, None, :] / n0[k][:, :, None]
        self.eta2_j = self.eta2[:, None, :]
        self.kb_j = self.kappa[:, None, :] / beta
        self.pre1 = chi * np.exp(self.eta2_j * beta * s0[k][:, None, :])
        self.pre2 = chi * np.exp(self.kb_j * beta * s0[k][:, None, :])

    def _cutoff(self, r):
        return 1.0 / (1.0 + np.exp(self.acut * (r - self.rc)))

    def __call__(self, pos):
        """Energies (n_systems,), forces (n_systems, n_max, 3) and a mask of the present
        atoms without any neighbour within the cutoff (n_systems, n_max).

        ``pos`` holds finite coordinates everywhere (absent atoms: any value).
        """
        d = pos[:, None, :, :] - pos[:, :, None, :]             # d[b, i, j] = x_j - x_i
        r2 = np.einsum("bijk,bijk->bij", d, d)
        mask = self.pairs & (r2 < self.r_list ** 2)
        r = np.sqrt(np.where(mask, r2, 1.0))
        w = np.where(mask, self._cutoff(r), 0.0)
        dlogw = self.acut * (w - 1.0)                             # w'(r) / w(r)
        g = self.pre1 * np.exp(-self.eta2_j * r) * w              # neighbour j -> sigma1_i
        h = self.pre2 * np.exp(-self.kb_j * r) * w                # neighbour j -> sigma2_i
        sigma1 = g.sum(axis=2)
        sigma2 = h.sum(axis=2)

        bonded = sigma1 > 0.0
        s = -np.log(np.where(bonded, sigma1, 1.0) * self.inv12g1) / (self.beta * self.eta2)
        e_lam = np.exp(-self.lam * s)
        e_kap = 6.0 * self.V0 * np.exp(-self.kappa * s)
        # cohesive function plus the atomic-sphere correction, relative to the free atom
        e_atom = self.E0 * (1.0 + self.lam * s) * e_lam + e_kap - self.E0 + self.c2 * sigma2
        e_atom = np.where(bonded, e_atom, np.where(self.present, -self.E0, 0.0))
        de_ds = -self.E0 * self.lam ** 2 * s * e_lam - self.kappa * e_kap
        de_dsigma1 = np.where(bonded, de_ds / (-self.beta * self.eta2
                                              * np.where(bonded, sigma1, 1.0)), 0.0)

        # dE/dr of the directed pair (i, j); the pair's total is a_ij + a_ji
        a = (de_dsigma1[:, :, None] * g * (dlogw - self.eta2_j)
             + self.c2[:, :, None] * h * (dlogw - self.kb_j))
        a += np.swapaxes(a, 1, 2)
        a /= r
        forces = np.einsum("bij,bijk->bik", a, d)
        return e_atom.sum(axis=1), forces, self.present & ~bonded


# ------------------------------------------------------------------- geometry
def _icosahedron_sites(n):
    """Mackay icosahedron sites (nearest-neighbour distance 1) of enough shells for n
    atoms, ordered by distance from the centre."""
    from ase.cluster import Icosahedron

    shells = 1
    while (10 * shells ** 3 - 15 * shells ** 2 + 11 * shells - 3) // 3 < n:
        shells += 1
    sites = Icosahedron("Cu", shells).positions
    sites = sites - sites.mean(axis=0)
    return sites / _nearest_distance(sites)


def _fcc_sites(n):
    """fcc lattice sites (nearest-neighbour distance 1) around an atom at the origin,
    enough for n atoms."""
    half = 1
    while True:
        grid = np.arange(-half, half + 1)
        ijk = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
        ijk = ijk[ijk.sum(axis=1) % 2 == 0]
        # sites within the inscribed sphere are complete shells
        inside = np.sum(ijk ** 2, axis=1) <= half ** 2
        if inside.sum() >= n:
            return ijk[inside] / math.sqrt(2.0)
        half += 1


def _nearest_distance(sites):
    d = np.linalg.norm(sites[:, None] - sites[None], axis=-1)
    return d[np.triu_indices(len(sites), 1)].min()


def _random_rotations(rng, n):
    Q, R = np.linalg.qr(rng.standard_normal((n, 3, 3)))
    Q = Q * np.sign(np.diagonal(R, axis1=1, axis2=2))[:, None, :]
    Q[np.linalg.det(Q) < 0, :, 0] *= -1.0
    return Q


def _start_positions(rng, start, present, nn):
    """Initial positions (n_traj, n_max, 3): the template sites nearest a random point
    close to its centre, scaled to nearest-neighbour distance ``nn`` (n_traj,), in a
    random orientation, rattled by 0.02 Å; absent atoms at the origin."""
    n_traj, n_max = present.shape
    sites = _icosahedron_sites(n_max) if start == "icosahedron" else _fcc_sites(n_max)
    centre = 0.25 * rng.standard_normal((n_traj, 1, 3))
    chosen = np.argsort(np.linalg.norm(sites[None] - centre, axis=-1), axis=1)[:, :n_max]
    pos = sites[chosen] * nn[:, None, None]
    pos = pos @ _random_rotations(rng, n_traj)
    pos += 0.02 * rng.standard_normal(pos.shape)
    return np.where(present[..., None], pos, 0.0)


def _relax(emt, pos, n_steps=50, rate=0.01, max_step=0.05):
    """Steepest descent in place: ``n_steps`` moves by ``rate`` (Å^2/eV) times the
    force, at most ``max_step`` Å per atom and move."""
    for _ in range(n_steps):
        _, F, _ = emt(pos)
        step = rate * F
        norm = np.linalg.norm(step, axis=-1, keepdims=True)
        pos += step * np.minimum(1.0, max_step / np.maximum(norm, 1e-300))


def _langevin(rng, emt, pos, mass, present, *, n_eq, per_traj, interval, dt, kT, c1,
              velocities):
    """Langevin dynamics (BAOAB) of all trajectories from Maxwell-Boltzmann velocities.

    ``dt`` is in ASE time units, ``kT`` (n_traj,) in eV, ``c1 = exp(-friction dt)``.
    Returns the energies (per_traj, n_traj), positions, forces and velocities (None
    unless ``velocities``) of shape (per_traj, n_traj, n_max, 3) of the snapshots taken
    after ``n_eq`` steps and every ``interval`` steps after that, and which
    trajectories had an atom without neighbours at a snapshot.
    """
    on = present[..., None]
    kT = kT[:, None, None]
    noise = np.where(on, np.sqrt((1.0 - c1 ** 2) * kT / mass), 0.0)
    vel = np.where(on, np.sqrt(kT / mass), 0.0) * rng.standard_normal(pos.shape)
    energy = np.empty((per_traj,) + pos.shape[:1])
    snap_pos = np.empty((per_traj,) + pos.shape)
    snap_F = np.empty_like(snap_pos)
    snap_vel = np.empty_like(snap_pos) if velocities else None
    lost = np.zeros(pos.shape[0], dtype=bool)
    half = 0.5 * dt
    E, F, isolated = emt(pos)
    for step in range(n_eq + (per_traj - 1) * interval + 1):
        if step:
            vel += half * F / mass                # B
            pos += half * vel                     # A
            vel *= c1                             # O
            vel += noise * rng.standard_normal(pos.shape)
            pos += half * vel                     # A
            E, F, isolated = emt(pos)
            vel += half * F / mass                # B
        snap, due = divmod(step - n_eq, interval)
        if step >= n_eq and due == 0:
            energy[snap], snap_pos[snap], snap_F[snap] = E, pos, F
            if velocities:
                snap_vel[snap] = vel
            lost |= isolated.any(axis=1)
    return energy, snap_pos, snap_F, snap_vel, lost


# ------------------------------------------------------------------- parameters
def _parse_elements(elements):
    """``(symbols, counts)``: counts is None for a random composition per trajectory."""
    if isinstance(elements, str):
        parts = re.findall(r"([A-Z][a-z]?)(\d*)", elements)
        if "".join(s + c for s, c in parts) != elements or not parts:
            raise ValueError(f"elements={elements!r} is not an element symbol or a formula "
                             "such as 'Cu' or 'Cu3Au10'")
        if len(parts) == 1 and not parts[0][1]:
            elements = (parts[0][0],)             # one symbol: pure clusters of any size
        else:
            composition = {}
            for symbol, count in parts:
                composition[symbol] = composition.get(symbol, 0) + int(count or 1)
            elements = composition
    if isinstance(elements, dict):
        symbols = tuple(elements)
        counts = [check_int(f"elements[{s!r}]", c, 1) for s, c in elements.items()]
    else:
        try:
            symbols = tuple(elements)
        except TypeError:
            raise ValueError(f"elements must be a symbol, a formula, a dict symbol -> count "
                             f"or a sequence of symbols; got {elements!r}") from None
        counts = None
        if len(set(symbols)) != len(symbols) or not symbols:
            raise ValueError(f"elements as a sequence must list distinct symbols; got "
                             f"{elements!r}")
    unknown = [s for s in symbols if s not in METALS]
    if unknown:
        raise ValueError(f"elements: {unknown} not available; EMT describes {list(METALS)}")
    return symbols, counts


def _parse_sizes(n_atoms, symbols, counts):
    if counts is not None:
        total = sum(counts)
        if n_atoms is not None and n_atoms != total:
            raise ValueError(f"n_atoms={n_atoms!r} contradicts the fixed composition "
                             f"{dict(zip(symbols, counts))} of {total} atoms; pass n_atoms="
                             "None, or elements as a sequence of symbols for random "
                             "compositions of other sizes")
        return total, total
    if n_atoms is None:
        n_atoms = 13
    if isinstance(n_atoms, tuple | list):
        if len(n_atoms) != 2:
            raise ValueError(f"n_atoms must be an int or a (min, max) pair; got {n_atoms!r}")
        low = check_int("n_atoms[0]", n_atoms[0], 2)
        high = check_int("n_atoms[1]", n_atoms[1], low)
    else:
        low = high = check_int("n_atoms", n_atoms, 2)
    if low < len(symbols):
        raise ValueError(f"n_atoms must be >= {len(symbols)} so that every one of "
                         f"{list(symbols)} occurs in every cluster; got {n_atoms!r}")
    if high > 309:
        raise ValueError(f"n_atoms must be <= 309 (the EMT step is O(n_atoms^2) per "
                         f"cluster); got {n_atoms!r}")
    return low, high


def _compositions(rng, n, k):
    """Counts (len(n), k), each >= 1 and summing to n, uniform over such compositions
    (k - 1 distinct cut points among the n - 1 gaps between atoms)."""
    if k == 1:
        return n[:, None].copy()
    keys = rng.uniform(size=(n.size, int(n.max()) - 1))
    keys[np.arange(keys.shape[1]) >= (n - 1)[:, None]] = np.inf   # gaps that do not exist
    cuts = np.sort(np.argsort(keys, axis=1)[:, :k - 1] + 1, axis=1)
    bounds = np.concatenate([np.zeros((n.size, 1), int), cuts, n[:, None]], axis=1)
    return np.diff(bounds, axis=1)


_DESCR = (
    "EMT metal clusters\n------------------\n\n",
    "Configurations of free metal clusters ({what}) sampled by Langevin molecular "
    "dynamics at {temps} K under ASE's effective medium theory potential (EMT; "
    "Jacobsen, Stoltze and Nørskov 1996), with the total potential energy (eV) and the "
    "forces (eV/Å) of every configuration. {n_traj} independent trajectories ({per_t} "
    "per temperature) start from compact cuts of {start} in random orientations, "
    "relaxed, with Maxwell-Boltzmann velocities; after {n_eq} steps of equilibration "
    "they are sampled every {interval} steps ({stride:g} fs; time step {dt:g} fs, "
    "friction {friction:g} / fs).",
    "X: one cluster per row, atoms padded with all-NaN rows up to {n_max}; columns "
    "field by field: {layout}. forces: {n_max} x 3 columns, atom-major, NaN for absent "
    "atoms. Positions are centred on each cluster's centroid. Group: E(3) (invariant "
    "energy, equivariant forces), or S_n x E(3) to treat the atoms as a set.",
)


def make_emt_clusters(n_samples=3000, *, elements="Cu", n_atoms=None,
                      temperatures=(300.0, 600.0, 900.0), start="icosahedron",
                      samples_per_trajectory=10, sample_interval=40, n_equilibration=400,
                      timestep=5.0, friction=0.01, return_velocities=False, shuffle=True,
                      random_state=None):
    """Configurations of small metal clusters with EMT energies and forces.

    Clusters evolve by Langevin molecular dynamics (BAOAB splitting) under ASE's
    effective medium theory potential, many trajectories at once (vectorised over
    clusters). Every trajectory runs at one of ``temperatures`` (in turn), starts from
    a cut of an ideal cluster (``start``) in a random orientation, with a random
    assignment of its atoms' species, is relaxed by 50 capped steepest-descent steps,
    gets Maxwell-Boltzmann velocities, is equilibrated for ``n_equilibration`` steps
    and then sampled every ``sample_interval`` steps.

    Parameters
    ----------
    n_samples : int, default=3000
        Number of configurations (rows).
    elements : str, dict or sequence of str, default="Cu"
        The species, among Al, Cu, Ag, Au, Ni, Pd, Pt:

        * one symbol (``"Cu"``): pure clusters;
        * a formula (``"Cu3Au10"``) or a dict (``{"Cu": 3, "Au": 10}``): that fixed
          composition in every cluster (which fixes the size: leave ``n_atoms=None``);
        * a sequence of symbols (``("Cu", "Au")``): a random composition per
          trajectory, uniform over the compositions in which every listed element
          occurs at least once.

        Within a cluster the species are assigned to random sites.
    n_atoms : int, (int, int) or None, default=None
        Atoms per cluster, from 2 to 309; a ``(min, max)`` pair draws the size of each
        trajectory uniformly from that inclusive range (mixed sizes, padded to
        ``max``). None means 13, or the size of a fixed composition.
    temperatures : float or sequence of float, default=(300.0, 600.0, 900.0)
        Thermostat temperatures in K; trajectories are spread evenly over them.
    start : {"icosahedron", "fcc"}, default="icosahedron"
        Initial geometry: the sites of a Mackay icosahedron or an fcc lattice nearest
        a random point close to its central atom, scaled to the species' mean EMT
        nearest-neighbour distance.
    samples_per_trajectory : int, default=10
        Most configurations taken from one trajectory: ``ceil(n_samples /
        samples_per_trajectory)`` trajectories are run, at least one per temperature
        where ``n_samples`` allows, each giving the same number of configurations
        (the last ones one fewer where that does not divide ``n_samples``).
    sample_interval : int, default=40
        Time steps between consecutive configurations of a trajectory (200 fs by
        default, two friction times).
    n_equilibration : int, default=400
        Time steps before the first configuration (2 ps by default).
    timestep : float, default=5.0
        Time step in fs.
    friction : float, default=0.01
        Langevin friction coefficient in 1/fs.
    return_velocities : bool, default=False
        Also put the velocities in ``X``, as a ``"v": "vector"`` field after the
        positions (ASE units: Å per ASE time unit; multiply by ``ase.units.fs`` for
        Å/fs).
    shuffle : bool, default=True
        Return the rows in random order; otherwise by snapshot, then by trajectory.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Seed or generator; the same seed gives identical output.

    Returns
    -------
    data : sklearn.utils.Bunch
        With the keys

        X : ndarray of shape (n_samples, 4 * n_max), or 7 * n_max with velocities
            Positions (Å) ``x0, y0, z0, x1, ...`` (``3 * n_max`` columns), then the
            velocities if requested, then the atomic numbers (``n_max`` columns);
            absent atoms are NaN in every field. ``n_max`` is the largest size allowed.
        energy : ndarray of shape (n_samples,)
            Total potential energy in eV. EMT's zero is every atom in its bulk fcc
            crystal, so cluster energies are positive (a free Cu atom has 3.51 eV).
        forces : ndarray of shape (n_samples, 3 * n_max)
            Forces in eV/Å, ``fx0, fy0, fz0, fx1, ...``; NaN for absent atoms.
        fields : dict
            ``{"pos": "point", "Z": "scalar"}``, with ``"v": "vector"`` after
            ``"pos"`` if ``return_velocities``.
        force_fields : dict
            ``{"forces": "vector"}``.
        n_atoms : ndarray of int of shape (n_samples,)
        temperature : ndarray of shape (n_samples,)
            Thermostat temperature (K) of the configuration's trajectory.
        trajectory : ndarray of int of shape (n_samples,)
            Trajectory index; configurations of one trajectory are correlated, so
            split by it (e.g. ``GroupShuffleSplit``) for honest test scores.
        symbols : ndarray of str of shape (n_samples,)
            Chemical formula of each cluster, e.g. ``"Cu3Au10"``.
        elements : tuple of str
            The species of ``elements``.
        DESCR : str
            Description of the data.

    Raises
    ------
    ValueError
        If an argument has the wrong type or is out of range.
    MissingDependencyError
        If ASE is not installed (``pip install "mfa_sklearn[atoms]"``).

    Warns
    -----
    RuntimeWarning
        If an atom left its cluster (no neighbour within the EMT cutoff, about 5.9 Å)
        in a returned configuration; lower the temperatures.

    Notes
    -----
    The potential is ASE's ``EMT()`` (default parameters and cutoff), re-evaluated for
    all trajectories at once: the same energies and forces to rounding, but every
    cluster costs ``O(n_max^2)`` per step (all pairs are formed), which suits small
    clusters. The thermostat does not conserve momentum, so clusters diffuse and
    rotate; rows are centred afterwards.

    Examples
    --------
    >>> data = make_emt_clusters(30, random_state=0)
    >>> data.X.shape, data.energy.shape, data.forces.shape
    ((30, 52), (30,), (30, 39))
    """
    n_samples = check_int("n_samples", n_samples, 1)
    symbols, counts = _parse_elements(elements)
    low, high = _parse_sizes(n_atoms, symbols, counts)
    if isinstance(temperatures, numbers.Real):
        temperatures = (temperatures,)
    temps = np.array([check_float("temperatures", t, positive=True)
                      for t in np.ravel(np.asarray(temperatures, dtype=object))])
    if temps.size == 0:
        raise ValueError("temperatures is empty; pass at least one temperature in K")
    if start not in ("icosahedron", "fcc"):
        raise ValueError(f"start must be 'icosahedron' or 'fcc'; got {start!r}")
    per_traj = check_int("samples_per_trajectory", samples_per_trajectory, 1)
    interval = check_int("sample_interval", sample_interval, 1)
    n_eq = check_int("n_equilibration", n_equilibration, 0)
    dt_fs = check_float("timestep", timestep, positive=True)
    friction = check_float("friction", friction, nonnegative=True)
    rng = check_rng(random_state)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng.randint(2 ** 31))
    emt_module = _import_ase()
    from ase.data import atomic_masses, atomic_numbers
    from ase.units import Bohr, fs, kB

    # trajectories: temperature, size, composition, sites
    n_traj = max(-(-n_samples // per_traj), min(temps.size, n_samples))
    per_traj = -(-n_samples // n_traj)            # snapshots actually needed
    T = temps[np.arange(n_traj) % temps.size]
    sizes = rng.integers(low, high + 1, size=n_traj)
    if counts is None:
        comp = _compositions(rng, sizes, len(symbols))
    else:
        comp = np.tile(counts, (n_traj, 1))
    n_max = high
    slot = np.arange(n_max)
    present = slot < sizes[:, None]
    # species of the first n atoms in order, then a random permutation of the present ones
    species = np.full((n_traj, n_max), -1)
    bounds = np.cumsum(comp, axis=1)
    species[present] = np.sum(slot[None, :, None] >= bounds[:, None, :-1], axis=2)[present]
    order = np.argsort(np.where(present, rng.uniform(size=present.shape), np.inf), axis=1)
    species = np.take_along_axis(species, order, axis=1)

    z_table = np.array([atomic_numbers[s] for s in symbols])
    # EMT's fcc nearest-neighbour distance beta * s0 of each species
    nn_table = np.array([emt_module.beta * emt_module.parameters[s][1] * Bohr
                         for s in symbols])
    k = np.where(present, species, 0)
    Z = np.where(present, z_table[k], 0)
    mass = np.where(present, atomic_masses[Z], 1.0)[..., None]
    nn = np.sum(np.where(present, nn_table[k], 0.0), axis=1) / sizes

    pos = _start_positions(rng, start, present, nn)
    emt = _BatchEMT(species, symbols)
    _relax(emt, pos)
    energy, snap_pos, snap_F, snap_vel, lost = _langevin(
        rng, emt, pos, mass, present, n_eq=n_eq, per_traj=per_traj, interval=interval,
        dt=dt_fs * fs, kT=kB * T, c1=math.exp(-friction * dt_fs),
        velocities=return_velocities)

    # rows by snapshot, then trajectory; the last trajectories lose a late snapshot
    def rows(a):
        return a.reshape((per_traj * n_traj,) + a.shape[2:])[:n_samples]

    traj = rows(np.broadcast_to(np.arange(n_traj), (per_traj, n_traj)))
    P = rows(snap_pos)
    P = P - np.sum(np.where(present[traj][..., None], P, 0.0), axis=1,
                   keepdims=True) / sizes[traj][:, None, None]
    mask = present[traj][..., None]
    P = np.where(mask, P, np.nan)
    forces = np.where(mask, rows(snap_F), np.nan).reshape(len(traj), -1)
    V = None if snap_vel is None else np.where(mask, rows(snap_vel), np.nan)
    X, fields = padded_to_X(P, np.where(present, Z, np.nan)[traj].astype(np.float64), V)
    formulas = np.array(["".join(f"{s}{c if c > 1 else ''}" for s, c in zip(symbols, row)
                                 if c) for row in comp])
    data = Bunch(X=X, energy=rows(energy), forces=forces, fields=fields,
                 force_fields=dict(EMT_FORCE_FIELDS), n_atoms=sizes[traj],
                 temperature=T[traj], trajectory=traj, symbols=formulas[traj],
                 elements=symbols)
    if lost[traj].any():
        warnings.warn(f"an atom left its cluster in {int(lost.sum())} trajectory(ies) "
                      "(no neighbour within the EMT cutoff); lower the temperatures",
                      RuntimeWarning, stacklevel=2)
    if shuffle:
        perm = rng.permutation(n_samples)
        for key in ("X", "energy", "forces", "n_atoms", "temperature", "trajectory",
                    "symbols"):
            data[key] = data[key][perm]
    if counts is not None:
        what = "".join(f"{s}{c}" for s, c in zip(symbols, counts))
    else:
        sz = f"{low}" if low == high else f"{low} to {high}"
        what = f"{'-'.join(symbols)}, {sz} atoms" + (
            ", random composition per trajectory" if len(symbols) > 1 else "")
    per_t = n_traj // temps.size
    per_t = f"{per_t}-{per_t + 1}" if n_traj % temps.size else f"{per_t}"
    lattice = {"icosahedron": "a Mackay icosahedron", "fcc": "an fcc lattice"}[start]
    text = [part.format(
        what=what, temps=", ".join(f"{t:g}" for t in temps), n_traj=n_traj, per_t=per_t,
        start=lattice, n_eq=n_eq, interval=interval, stride=interval * dt_fs, dt=dt_fs,
        friction=friction, n_max=n_max,
        layout=", ".join(f"{name} ({kind})" for name, kind in fields.items()))
        for part in _DESCR[1:]]
    data["DESCR"] = _DESCR[0] + "\n\n".join(textwrap.fill(p, 79) for p in text) + "\n"
    return data
