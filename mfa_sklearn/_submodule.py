"""What the torch wrappers share: their parameters checked against sklearn-style
constraints, the module they hold, skorch style (an instance as it is, or a class built
from ``<name>__<argument>`` keyword arguments), and the check of the masks they take."""

import inspect

import torch
from sklearn.utils._param_validation import validate_parameter_constraints
from torch import nn


def check_params(wrapper, constraints):
    """Validate the attributes of ``wrapper`` named in ``constraints`` (sklearn's
    constraint types), with errors that name the wrapper's class."""
    validate_parameter_constraints(
        constraints, {name: getattr(wrapper, name) for name in constraints},
        caller_name=type(wrapper).__name__)


def check_mask(mask, X, n_rows, names=("n_samples", "n_rows")):
    """``mask``, the present rows (B, n_rows) of X, on X's device; clear errors.

    ``names`` name the two axes in the messages (``("n_systems", "n_atoms")``)."""
    shape = (X.shape[0], n_rows)
    axes = f"({names[0]}, {names[1]}) = {shape}"
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        of = f" of {mask.dtype}" if hasattr(mask, "dtype") else ""
        raise TypeError(f"mask must be a boolean torch.Tensor of shape {axes}; got "
                        f"{type(mask).__name__}{of}")
    if tuple(mask.shape) != shape:
        raise ValueError(f"mask must have shape {axes}; got {tuple(mask.shape)}")
    return mask.to(X.device)


def build_submodule(module, kwargs, *, owner, name, fill=None):
    """The submodule ``name`` of ``owner``: ``module`` itself, or the class ``module``
    built from the ``<name>__*`` arguments in ``kwargs``.

    Parameters
    ----------
    module : torch.nn.Module or a subclass
    kwargs : dict
        Every other keyword argument the owner got; each must be ``<name>__<argument>``.
    owner : str
        The wrapper's class name, for the messages.
    name : str
        The submodule's parameter name ("module", "atom_module").
    fill : dict of str to callable, optional
        Arguments computed on demand for a class that takes them and was not given them
        (e.g. ``n_features_in``).

    Returns
    -------
    torch.nn.Module
    """
    prefix = f"{name}__"
    unknown = sorted(k for k in kwargs if not k.startswith(prefix))
    if unknown:
        raise TypeError(
            f"{owner} got unexpected keyword argument(s) {unknown}; arguments of "
            f"{name} go as {prefix}<name>, e.g. {prefix}hidden=64")
    sub = {k[len(prefix):]: v for k, v in kwargs.items()}
    if isinstance(module, nn.Module):
        if sub:
            raise TypeError(
                f"{prefix}* arguments {sorted(kwargs)} need a class, but {name} is an "
                f"instance of {type(module).__name__}; pass the class, or build the "
                "instance yourself")
        return module
    if isinstance(module, type) and issubclass(module, nn.Module):
        parameters = inspect.signature(module).parameters
        for key, compute in (fill or {}).items():
            if key in parameters and key not in sub:
                sub[key] = compute()
        return module(**sub)
    raise TypeError(f"{name} must be a torch.nn.Module instance or subclass; got "
                    f"{module!r}")
