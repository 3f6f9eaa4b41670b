"""The ActionHead contract and the head registry.

A head maps a conditioning vector (or token sequence) to a distribution over *normalized*
action chunks (B, H, A), values roughly in [-1, 1]. It never sees the environment, the
normalizer or the observation encoder; that is what lets any head be driven by any executor.

Adding a head = one file in this package that decorates its class with ``@register_head``,
plus one YAML in ``configs/policy/``. Modules here are imported automatically, and the tests
that every head must pass (``tests/test_head_contract.py``) run over the registry, so a new
head is tested the moment it is registered. Optional hooks, each with a default that does
nothing special: ``fit_data`` (fit on the training actions once, before training),
``on_train_step`` (called after every optimizer step) and ``network_evaluations`` (network
passes per sampled chunk, for cost tables).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import torch
from torch import nn

from robolearn.errors import ConfigError

_REGISTRY: dict[str, type[ActionHead]] = {}


def register_head(name: str):
    def deco(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise RuntimeError(f"head name {name!r} registered twice")
        _REGISTRY[name] = cls
        cls.head_name = name
        return cls

    return deco


class ActionHead(nn.Module):
    """Base class for every action head.

    Constructor signature for all heads: ``Head(cond_dim, horizon, action_dim, **options)``.
    Options are validated in ``__init__`` and raise :class:`ConfigError` with a message
    naming the option, what was expected and what was found.

    ``cond`` is (B, D) for vector conditioning; heads that set ``wants_tokens = True`` receive
    (B, N, D) tokens instead (``cond_dim`` is then D).
    """

    head_name: str = "?"
    wants_tokens: bool = False

    def __init__(self, cond_dim: int, horizon: int, action_dim: int):
        super().__init__()
        if horizon < 1:
            raise ConfigError(f"horizon must be >= 1, got {horizon}")
        self.cond_dim = int(cond_dim)
        self.horizon = int(horizon)
        self.action_dim = int(action_dim)

    def loss(
        self, cond: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Training loss. ``actions`` (B, H, A) normalized; ``mask`` (B, H) bool, True where the
        step is real (False where the window ran past the episode end and was edge-padded).
        Returns a dict with at least ``"loss"`` (a scalar); other entries are logged."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self,
        cond: torch.Tensor,
        prefix: torch.Tensor | None = None,
        prefix_weights: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw one chunk per batch element, (B, H, A), normalized.

        ``prefix`` (B, H, A): the previous chunk's pending actions aligned to this chunk's
        steps (entries where ``prefix_weights`` is 0 are ignored). ``prefix_weights`` (H,) or
        (B, H) in [0, 1]: 1 = the step must equal the prefix, 0 = free."""
        raise NotImplementedError

    # ---- optional hooks ---------------------------------------------------------------------
    def fit_data(self, actions: torch.Tensor) -> None:
        """Fit data-dependent parts on normalized training actions (N, H, A), once before
        training from scratch (e.g. the autoregressive head's quantile bins). Default: nothing."""

    def on_train_step(self, step: int, total_steps: int) -> None:
        """Called after every optimizer step (1-based ``step``), for schedules that live inside a
        head (e.g. a curriculum over step sizes). Default: nothing."""

    nfe_option: str | None = None  # the option that counts network passes (e.g. "num_steps"), if any

    @classmethod
    def network_evaluations(cls, options: dict[str, Any]) -> int | None:
        """Network passes to sample one chunk with these options (None if it depends on more
        than the options). Default: the ``nfe_option`` option's value, else one pass."""
        return int(cls.option(options, cls.nfe_option)) if cls.nfe_option else 1

    @classmethod
    def option_names(cls) -> set[str]:
        """The head's named options (its constructor's, less the shape arguments)."""
        params = inspect.signature(cls.__init__).parameters.values()
        named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        return named - {"self", "cond_dim", "horizon", "action_dim"}

    @classmethod
    def option(cls, options: dict[str, Any], name: str) -> Any:
        """An option's value: as given, else the constructor's default."""
        if name in options:
            return options[name]
        return inspect.signature(cls.__init__).parameters[name].default


def check_prefix(head: ActionHead, prefix, prefix_weights):
    """Validate and broadcast prefix arguments. Returns (prefix, weights (B, H)) or (None, None)."""
    if prefix is None:
        return None, None
    B, H, A = prefix.shape
    if head.horizon != H or head.action_dim != A:
        raise ValueError(f"prefix has shape {tuple(prefix.shape)}, expected (B, {head.horizon}, {head.action_dim})")
    if prefix_weights is None:
        raise ValueError("prefix given without prefix_weights")
    w = torch.as_tensor(prefix_weights, dtype=prefix.dtype, device=prefix.device)
    if w.shape[-1] != H:
        raise ValueError(f"prefix_weights has {w.shape[-1]} steps, the chunk has {H}")
    w = w.expand(B, H) if w.dim() == 1 else w
    return prefix, w.clamp(0.0, 1.0)


def head_names() -> list[str]:
    _import_all()
    return sorted(_REGISTRY)


def head_class(name: str) -> type[ActionHead]:
    _import_all()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown head {name!r}; known heads: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def build_head(name: str, cond_dim: int, horizon: int, action_dim: int, **options: Any) -> ActionHead:
    cls = head_class(name)
    try:
        inspect.signature(cls.__init__).bind(None, cond_dim, horizon, action_dim, **options)
    except TypeError as e:
        raise ConfigError(f"head {name!r}: {e} (check the policy.head options)") from None
    try:
        return cls(cond_dim, horizon, action_dim, **options)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(
            f"head {name!r}: its options do not build ({type(e).__name__}: {e}); check policy.head"
        ) from None


def _import_all() -> None:
    pkg = importlib.import_module("robolearn.heads")
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name != "base":
            importlib.import_module(f"robolearn.heads.{mod.name}")
