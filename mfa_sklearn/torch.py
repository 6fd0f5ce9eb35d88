"""Minimal frame averaging inside torch: make any ``nn.Module`` exactly symmetric.

:class:`FrameAveraged` wraps a backbone module (one global frame per sample);
:class:`LocalFrameAveraged` is an atomic energy model on local frames (one frame per
atom, from its neighbourhood), with conservative forces, trained on energies and forces
by :class:`EnergyForceLoss`.

Each forward pass of ``FrameAveraged`` computes the frames of the batch on the batch's
device (in float64), maps the inputs to their canonical form,
calls the backbone once on all canonical inputs and maps its outputs back, so that the
wrapped model is exactly invariant or equivariant, to rounding. Every step is an
out-of-place tensor operation, so gradients flow to the input: the forces
``-dE/dx`` of a frame-averaged energy are themselves exactly equivariant.

The same frame math serves numpy and torch (:mod:`mfa_sklearn.groups`); this module adds
no second copy of it. ``FrameAveraged`` is also a ready ``module`` for skorch's
``NeuralNetRegressor`` and ``NeuralNetClassifier``.

Needs torch and array-api-compat: ``pip install 'mfa_sklearn[torch]'``.
"""

try:
    import array_api_compat  # noqa: F401  (the group math reaches torch through it)
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised by faking a missing torch
    raise ImportError(
        "mfa_sklearn.torch needs torch and array-api-compat, which are not installed; "
        "install them with: pip install 'mfa_sklearn[torch]'") from exc

from sklearn.utils._param_validation import StrOptions

from ._engine import (
    COMMON_CONSTRAINTS,
    DEFAULT_ROW_RULE,
    FRAME_CONSTRAINT,
    TARGET_CONSTRAINT,
    TIE_BAND_CONSTRAINT,
    FramePlan,
    fill_absent,
    find_absent,
    is_invariant,
    mark_absent,
    restore,
    store_init_arguments,
    with_presence,
)
from ._submodule import build_submodule, check_mask, check_params
from ._torch_fit import AtomMLP, fit_energy_forces
from ._torch_local import EnergyForceLoss, LocalFrameAveraged, pack_targets
from .exceptions import NonFiniteInputError
from .groups import get_group
from .groups._ensemble import check_ensemble
from .groups._namespace import PRECISIONS, frame_precision, on_host
from .layout import Layout, parse_fields

__all__ = ["AtomMLP", "EnergyForceLoss", "FrameAveraged", "LocalFrameAveraged",
           "fit_energy_forces", "pack_targets"]

_PARAMETER_CONSTRAINTS = {
    **COMMON_CONSTRAINTS,
    "target": TARGET_CONSTRAINT,
    "frame": FRAME_CONSTRAINT,
    "frame_dtype": [StrOptions(set(PRECISIONS))],
    "detach_frame": ["boolean"],
    "presence_column": ["boolean"],
    "tie_band": TIE_BAND_CONSTRAINT,
}


class FrameAveraged(nn.Module):
    """Make a torch module exactly invariant or equivariant by minimal frame averaging.

    ``forward(X)`` maps every sample to its canonical form ``h^-1 . x`` (one frame
    element ``h`` per sample for minimal frames), calls the backbone **once** on the
    whole canonical batch, and maps its outputs back: invariant outputs are averaged
    over the frame elements, equivariant outputs are moved by the frames (``y H + t``
    for points) and averaged. So ``F(g . X) == F(X)`` or ``g . F(X)`` for every group
    element ``g``, to rounding, whatever the backbone.

    Frames are computed on X's device in float64 (or ``frame_dtype``); the backbone
    sees canonical inputs in X's dtype, and outputs come back in the backbone's output
    dtype (float32 in, float32 out). All operations are out of place, so gradients
    reach X (``X.requires_grad``).

    Parameters
    ----------
    module : torch.nn.Module instance or subclass
        The backbone. A class is instantiated with the ``module__*`` keyword arguments
        (prefix stripped), so skorch's ``module__module__hidden=64`` reaches it as
        ``hidden=64``. It receives canonical inputs of shape ``(B * K,) + X.shape[1:]``
        (K = ``n_frames`` for minimal frames, ``2^d`` or ``2^(d-1)`` for PCA frames).
    group : str, Group or None, default="E(3)"
        A group name of :func:`~mfa_sklearn.get_group` (``"O(d)"``, ``"SO(d)"``,
        ``"E(d)"``, ``"SE(d)"``, ``"U(d)"``, ``"SU(d)"``, ``"O(1,d-1)"``,
        ``"SO(1,d-1)"``, ``"GL(d)"``, ``"SL(d)"``, ``"Aff(d)"``, ``"S_n"``,
        ``"S_n x E(3)"`` and the other products, ``"graph"``), a Group, or ``None``:
        no symmetry, ``forward`` is the backbone itself (for comparisons in a grid
        search). Complex groups take their rows as real blocks ``[Re | Im]``, as the
        estimators do.
    fields : dict, str, tuple or None, default=None
        Layout of X, as in :class:`~mfa_sklearn.FrameAveragingRegressor`:
        ``name -> kind`` or ``name -> (kind, width)``, kinds "point", "vector",
        "scalar" and, for the permutation groups, "edge"; 2-D X holds field-major
        column blocks, 3-D X ``(B, n, W)`` the fields side by side. Default: one
        "point" field (one adjacency matrix for ``"graph"``).
    frame_fields : str or list of str, default=None
        Fields that define the frame (default: the first point field, else the first
        vector field; for S_n every point and vector field).
    target : "invariant", kind, (kind, width) or dict, default="invariant"
        How the backbone's output transforms. "invariant": it does not (energies,
        class scores). Otherwise the layout of its output columns (flat
        ``(B * K, C_out)`` or ``(B * K, n, W_out)``), e.g. ``"point"`` for positions
        or ``"vector"`` for forces and displacements.
    frame : {"minimal", "pca"}, default="minimal"
        Minimal frames (one backbone row per sample), or the sign-flip PCA frames of
        Puny et al. (``2^d`` rows per sample for O/E, ``2^(d-1)`` for SO/SE).
    row_rule : {"first_above", "first", "pivoted"}, default="first_above"
        Which rows define the frame vectors of groups whose frames read the rows in
        order; see :class:`~mfa_sklearn.MinimalFrameCanonicalizer`.
    n_frames : int, default=1
        Minimal frames per sample (a frame ensemble, ``n_frames`` backbone rows per
        sample, outputs averaged); see :class:`~mfa_sklearn.FrameAveragingRegressor`.
        A layout whose samples have too few rows for it fails at the first call.
    tie_band : float in [0, 1), default=0.0
        Weighted frames near ties of ``row_rule="first_above"`` (O, SO, E, SE, U, SU,
        Lorentz, and S_n x G for G in O, SO, E, SE, where near-tied rows of the canonical
        ranking are also taken in every order): frames with invariant, smoothly
        vanishing weights for the samples near a decision, so the model is continuous
        there and still exact; see :class:`~mfa_sklearn.FrameAveragingRegressor`.
        Canonical inputs then have ``K = 2 n_frames`` (``48 n_frames`` for S_n x G:
        room for 24 orders); elements of weight 0 (``frame.element_weights``) are not
        passed to the backbone. 0: off.
    tol : float, default=None
        Relative rank tolerance; default ``sqrt(eps)`` of X's dtype, or of the frame
        dtype if that is less precise.
    frame_dtype : {"float64", "float32"}, default="float64"
        Precision of the frame computations. "float32" halves their memory traffic on
        accelerators; the symmetry then holds to float32 rounding (errors about 1e-6
        relative, more for boosted Lorentz frames) instead of float64's. Its decisions
        allow for float32's rounding too: for S_n products rows whose ranking keys lie
        within float32's tie tolerance (``eps^(1/3)``, about 5e-3 relative) count as
        tied, so a few samples in a hundred get another frame than in float64 (exact
        too, but another function).
    detach_frame : bool, default=False
        Treat the frames as constants in backward. The model stays equivariant, but
        its input gradient is no longer the derivative of the composed function; keep
        the default for forces ``-dE/dx``.
    presence_column : bool, default=False
        Append a 0/1 presence column per row to the canonical inputs (2-D X: ``n``
        more columns; 3-D X: one more entry per row), so that the backbone can tell an
        absent row from a present row at the canonical origin. Only for groups that
        keep rows in place (not S_n and its products, which move absent rows last: a
        ValueError); the backbone then takes ``C + n`` columns (``W + 1`` per row).
    **kwargs
        ``module__<name>=value`` arguments of the backbone class.

    Attributes
    ----------
    module : torch.nn.Module
        The backbone (a registered submodule, so its parameters are trained).
    group_ : Group or None
        The resolved group.

    See Also
    --------
    mfa_sklearn.FrameAveragingRegressor : the same frames around any sklearn estimator
        (canonicalized in numpy; a skorch net can be its inner estimator).

    Notes
    -----
    **Systems of different sizes.** A row whose first point field (else first
    frame-defining field) is all NaN is *absent*, or ``forward(X, mask=mask)`` marks the
    present rows with a boolean ``mask`` of shape (B, n). Absent rows do not enter the
    frames, are zeros in the canonical inputs (any value, NaN included, is replaced
    by ``where`` before any arithmetic, so no NaN reaches a gradient), and per-row
    outputs are NaN there; a sample without present rows gives NaN outputs. Gradients
    with respect to X are zero at absent rows.

    The permutation groups decide row orders, ties and labelings on the host (one
    copy of the batch per forward pass); their gathers, G-frames and averages run on
    the batch's device, differentiably. Where a sample has a non-trivial stabilizer
    (a cube, repeated rows) the frame-averaged function is not differentiable. Where
    the stabilizer moves the geometry (a cube's point group) the backbone sees the mean
    of the stored elements' canonical inputs, so the input gradient there is the mean
    of the branches' gradients and equivariant; at repeated rows it is finite but
    carries no symmetry.

    On the CPU the batch is canonicalized in chunks of samples (as the numpy path does),
    which keeps the frame temporaries in cache; on other devices in one pass. Either
    way the backbone is called once on the whole canonical batch. The
    frames are piecewise constant in X (row selections and signs), so backward flows
    through the arithmetic of the chosen frame: residuals, norms and matrix products.
    Away from the measure-zero set where a selection changes, this is the derivative
    of the frame-averaged function, and it is equivariant itself.

    As a skorch module, pass the class: ``NeuralNetRegressor(FrameAveraged,
    module__module=MyNet, module__module__hidden=64, module__group="E(3)")``; then
    ``module__group`` and friends are ordinary hyper-parameters for ``GridSearchCV``.
    skorch never casts, so give it float32 X (and float32 y of shape ``(n, 1)`` for
    one regression target).

    References
    ----------
    .. [1] Lin, Helwig, Gui and Ji, "Equivariance via Minimal Frame Averaging for More
       Symmetries and Efficiency", ICML 2024, arXiv:2406.07598.
    .. [2] Puny et al., "Frame Averaging for Invariant and Equivariant Network
       Design", ICLR 2022, arXiv:2110.03336 (``frame="pca"``).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from mfa_sklearn.torch import FrameAveraged
    >>> _ = torch.manual_seed(0)
    >>> mlp = nn.Sequential(nn.Linear(15, 32), nn.Tanh(), nn.Linear(32, 1))
    >>> energy = FrameAveraged(mlp, group="E(3)")      # 5 points in 3-D per sample
    >>> x = torch.randn(8, 15, requires_grad=True)
    >>> forces = -torch.autograd.grad(energy(x).sum(), x)[0]
    >>> forces.shape
    torch.Size([8, 15])
    """

    def __init__(self, module, *, group="E(3)", fields=None, frame_fields=None,
                 target="invariant", frame="minimal", row_rule=DEFAULT_ROW_RULE,
                 n_frames=1, tie_band=0.0, tol=None, frame_dtype="float64",
                 detach_frame=False, presence_column=False, **kwargs):
        super().__init__()
        store_init_arguments(self, locals(), leave=("module", "kwargs"))
        self.module = build_submodule(module, kwargs, owner="FrameAveraged", name="module")
        check_params(self, _PARAMETER_CONSTRAINTS)
        self.group_ = None if group is None else get_group(group)
        if self.group_ is not None:
            if frame not in self.group_.frame_methods:
                raise ValueError(f"frame={frame!r} is not available for group "
                                 f"{self.group_.name}; use one of "
                                 f"{list(self.group_.frame_methods)}")
            # group, rule and method now; the row count is known at the first call
            check_ensemble(self.group_, n_frames, n_frames, row_rule, frame, tie_band)
            parse_fields(fields, self.group_)  # bad kinds and widths fail here
            if not is_invariant(target):
                parse_fields(target, self.group_, what="target")
            if presence_column and self.group_.permutes_rows:
                raise ValueError(
                    f"presence_column=True is for groups that keep rows in place; group "
                    f"{self.group_.name} moves the absent rows last instead (their "
                    "canonical rows are zeros), so its backbone takes C columns: drop "
                    "presence_column")

    def canonicalize(self, X, mask=None):
        """Canonical inputs and frames of a batch.

        Parameters
        ----------
        X : torch.Tensor of shape (B, C) or (B, n, W)
            All-NaN rows of the first point field are absent rows (see Notes).
        mask : bool torch.Tensor of shape (B, n), optional
            True for the present rows; absent rows may then hold any value. Without
            it, the all-NaN rows are the absent ones.

        Returns
        -------
        Xc : torch.Tensor of shape (B, K, C) or (B, K, n, W)
            Canonical inputs for each of the K frame elements, in X's dtype and on its
            device.
        frame : Frame
            Frames of the B samples (``frame.H`` in ``frame_dtype``, on X's device).
        """
        if self.group_ is None:
            raise ValueError("group=None has no frames; set a group to canonicalize")
        if not isinstance(X, torch.Tensor):
            raise TypeError(f"X must be a torch.Tensor; got {type(X).__name__}")
        if not (torch.is_floating_point(X) or torch.is_complex(X)):
            raise TypeError(f"X must be a floating torch.Tensor; got {X.dtype}: convert it "
                            "with X.float() or X.double(), as the backbone's weights are")
        plan = self._plan(X)
        if mask is None:
            X, present = plan.prepare(X)
        else:
            present = check_mask(mask, X, plan.layout.n_rows)
            X = fill_absent(X, plan.layout, present)
            # on the host only (no device synchronisation; NaN shows in the outputs)
            if on_host(X) and find_absent(X, plan.layout, plan.presence_field) is not None:
                raise NonFiniteInputError(
                    f"mask marks rows present whose field {plan.presence_field!r} is all "
                    "NaN; mark them absent (False) or give their values")
        with frame_precision(self.frame_dtype):
            Xc, frame = plan.canonicalize(X, tol=self.tol, detach=self.detach_frame,
                                          present=present)
        if self.presence_column:   # rows kept in place: checked in __init__
            Xc = with_presence(Xc, plan.layout, present)
        return Xc, frame

    def _plan(self, X):
        return FramePlan.resolve(self.group_, self.fields, self.frame_fields, X.shape[1:],
                                 self.frame, self.row_rule, self.n_frames, self.tie_band)

    def forward(self, X, mask=None):
        """Frame-averaged output of the backbone.

        Parameters
        ----------
        X : torch.Tensor
            A batch, as for :meth:`canonicalize`.
        mask : bool torch.Tensor of shape (B, n), optional
            Present rows, as for :meth:`canonicalize`.

        Returns
        -------
        torch.Tensor
            Invariant target: the backbone's output per sample, averaged over the
            frame elements, shape ``(B,) + out.shape[1:]``. Equivariant target: the
            output mapped back by the frames, of the backbone's per-sample shape. NaN
            at absent rows (per-row outputs) and for samples without present rows.
        """
        if self.group_ is None:
            return self.module(X)
        if len(X) == 0:   # no frames: the backbone gives the output's shape
            if self.presence_column:
                X = with_presence(X[:, None], self._plan(X).layout, None)[:, 0]
            return self.module(X)
        return self.from_canonical(*self.canonicalize(X, mask))

    def from_canonical(self, Xc, frame):
        """The backbone on canonical inputs, its outputs mapped back by their frames.

        ``forward(X)`` is ``from_canonical(*canonicalize(X))``. Frames depend on the
        inputs alone, not on the backbone's weights, so a training loop can
        canonicalize its data once and call this on mini-batches, which saves the frame
        computation of every step::

            with torch.no_grad():
                Xc, frame = model.canonicalize(X)
            for idx in batches:
                loss = loss_fn(model.from_canonical(Xc[idx], frame[idx]), y[idx])

        Parameters
        ----------
        Xc : torch.Tensor of shape (B, K, C) or (B, K, n, W)
            Canonical inputs, as returned by :meth:`canonicalize`.
        frame : Frame
            Their frames (``frame[idx]`` selects samples, like ``Xc[idx]``).

        Returns
        -------
        torch.Tensor
            As :meth:`forward`.
        """
        if self.group_ is None:
            raise ValueError("group=None has no frames; call the module itself")
        if Xc.ndim < 3 or Xc.shape[0] != frame.n_samples or \
                Xc.shape[1] != frame.n_calls:
            raise ValueError(
                f"Xc must have shape (B, K, ...) with B = {frame.n_samples} samples and "
                f"K = {frame.n_calls} frame elements, as canonicalize returns them; got "
                f"{tuple(Xc.shape)}. Select samples of both alike: Xc[idx], frame[idx]")
        B, K = Xc.shape[:2]
        rows = Xc.reshape((B * K,) + tuple(Xc.shape[2:]))
        if frame.element_weights is None:
            out = self.module(rows)
        else:   # weighted frames: elements of weight 0 are not evaluated
            keep = (frame.element_weights > 0).reshape(-1).to(rows.device)
            kept = self.module(rows[keep])
            out = kept.new_zeros((B * K,) + tuple(kept.shape[1:])).index_put((keep,), kept)
        out = out.reshape((B, K) + tuple(out.shape[1:]))
        present = frame.present
        if is_invariant(self.target):
            out = frame.average(out)
            return out if present is None else mark_absent(out, None, present)
        layout = Layout.infer(self.target, self.group_, tuple(out.shape[2:]),
                              what="target", name="the module's output")
        out = restore(frame, layout, out)
        return out if present is None else mark_absent(out, layout, present)

    def extra_repr(self):
        return (f"group={self.group!r}, fields={self.fields!r}, target={self.target!r}, "
                f"frame={self.frame!r}, row_rule={self.row_rule!r}, "
                f"n_frames={self.n_frames}, "
                + (f"tie_band={self.tie_band}, " if self.tie_band else "")
                + f"frame_dtype={self.frame_dtype!r}")
