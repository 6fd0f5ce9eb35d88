"""Tests of mfa_sklearn.groups, one module per group family, all on one protocol.

Error metric
    A batch ``x``, one random group element ``g`` per sample, and a deliberately
    NON-equivariant backbone ``f`` (a fixed-seed tanh MLP with biases on the flattened
    canonical input, which mixes rows; torch adds a BatchNorm variant). ``F`` is the
    frame-averaged model. The assertion metric is
    ``e_max = max |g.F(x) - F(g.x)| / max |F(g.x)|`` over all entries; the published
    per-row L1 error is reported too. Control: the bare backbone must be off by at
    least 1e-2, or the test proves nothing. ``g.x`` is computed in float64, every
    field by its kind (points, vectors, scalars, edges), and cast afterwards for
    float32 tests.

Random group elements
    Haar O(d) (QR with sign-fixed R), SO(d) (one column negated where det < 0),
    translations N(0, 10^2) for E/SE; Haar U(d) and SU(d) (scaled by det^(-1/d));
    Lorentz transformations as a boost of speed up to beta_max = 0.99 (gamma <= 7.1,
    stress 0.9999) times a Haar rotation, with random parity and time reversal;
    GL(d) as U diag(sigma) V^T lambda with log-uniform sigma in [1, kappa]; SL by
    det^(1/d); Aff with a translation; random permutations for S_n, graphs and products.

Tolerances (float64 data and frames; float32 input with float64 frames)
    O, SO, E, SE, U, SU and S_n x O/SO/E/SE (well conditioned): 1e-10; float32 1e-5.
    S_n and graphs: exactly 0. Lorentz, gamma <= 7.1: 1e-9; gamma <= 100: 1e-7;
    float32 1e-3. GL, SL, Aff with cond(T) = kappa: ``1e-15 kappa cond(data)``, at
    least 1e-12; float32 with kappa <= 1e3: 1e-3. Boosts make coordinates gamma times
    larger while Minkowski products stay |x|^2, and GL frames solve with phi T, whose
    condition number multiplies, hence the looser bounds.

Degenerate and symmetric inputs (every group)
    Repeated singular values (PCA frames fail there); rank r < d (projection, exact
    zeros off the span); rank d - 1 for SO/SU/SO(1,d-1) (det H = 1, no projection);
    rank-deficient GL/SL/Aff (RankDeficientError, the Aff check after centring);
    repeated rows, all-zero samples, one point; Lorentz null residuals and lightlike
    jets; purely spacelike spans; the octahedron, cube, tetrahedron and square (finite
    stabilizers of order 48/24, 48/24, 24/12, 8/8 under S_n x O(3)/SO(3), one backbone
    call); graphs C8, Petersen, K5, the empty graph, K1,5 and Q3 (|Aut| 16, 120, 120,
    720, 120, 48).

Scale, dtype and gradients
    ``x 2^(+-20)`` gives bitwise identical decisions and exactly scaled canonical inputs;
    float32 in, float32 out; torch backward for every group, gradcheck on generic
    inputs, and forces of an invariant energy equivariant.
"""
