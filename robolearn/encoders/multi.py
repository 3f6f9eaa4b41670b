"""Compose per-key encoders into one conditioning vector or a token sequence.

The observation spec decides the modality of each key ('lowdim' -> LowDimEncoder, 'rgb' ->
ImageEncoder); the config only says how each modality is encoded, with optional per-key
overrides. Every key, whatever its modality, becomes one feature vector per time step, so the
observation history To is handled the same way for proprioception and for cameras:

* ``forward``: per-(time, key) features concatenated, time-major, keys sorted -> (B, To * sum_d).
* ``tokens``: one token per (time, key), each projected to ``token_dim`` plus a learned time
  embedding and a learned key embedding -> (B, To * n_keys, token_dim).

Config (a dict, e.g. ``policy.encoder`` from YAML; every entry optional)::

    lowdim: {hidden: [], out_dim: null}          # identity, or an MLP per key
    rgb: {backbone: resnet18, width: 16, pool: spatial_softmax, num_keypoints: 32,
          feature_dim: 64, crop: 0.875, color_jitter: 0.0, share_backbone: false}
                                                 # crop: random 84/96 window in training, centre in eval; null = off
    keys: {wrist_img: {crop: 76}, agent_pos: {hidden: [64]}}   # per-key overrides
    token_dim: 128
    output: both                                 # vector | tokens | both (which maps to build)
    preset: image_small                          # start from configs/policy/encoder/<name>.yaml
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from robolearn.encoders.base import ObsEncoder
from robolearn.encoders.image import VIEW_OPTIONS, ImageEncoder
from robolearn.encoders.lowdim import LowDimEncoder
from robolearn.errors import ConfigError, DataError
from robolearn.spec import ObsSpec

LOWDIM_OPTIONS = ("hidden", "out_dim")
RGB_DEFAULTS: dict[str, Any] = dict(
    backbone="resnet18",
    width=16,
    pool="spatial_softmax",
    num_keypoints=32,
    feature_dim=64,
    crop=0.875,
    color_jitter=0.0,
    share_backbone=False,
)
TOP_OPTIONS = ("lowdim", "rgb", "keys", "token_dim", "output", "preset")
OUTPUTS = ("vector", "tokens", "both")


def _check_options(given: Mapping[str, Any], allowed: tuple[str, ...] | list[str], where: str) -> None:
    bad = sorted(set(given) - set(allowed))
    if bad:
        raise ConfigError(f"{where}: unknown option(s) {bad}; expected some of {sorted(allowed)}")


class MultiKeyEncoder(ObsEncoder):
    def __init__(
        self,
        obs_spec: dict[str, ObsSpec],
        obs_horizon: int,
        lowdim_hidden=(),
        lowdim_out: int | None = None,
        rgb: dict[str, Any] | None = None,
        keys: dict[str, dict[str, Any]] | None = None,
        token_dim: int = 128,
        output: str = "both",
    ):
        super().__init__()
        if not obs_spec:
            raise ConfigError("encoder: the observation spec is empty; list at least one key in task.obs_keys")
        if output not in OUTPUTS:
            raise ConfigError(f"encoder.output: expected one of {list(OUTPUTS)}, got {output!r}")
        if not isinstance(token_dim, int) or token_dim < 1:
            raise ConfigError(f"encoder.token_dim: expected a positive int, got {token_dim!r}")
        keys = dict(keys or {})
        _check_options(keys, list(obs_spec), "encoder.keys")
        rgb_cfg = {**RGB_DEFAULTS, **(rgb or {})}
        _check_options(rgb_cfg, list(RGB_DEFAULTS), "encoder.rgb")
        self.keys = sorted(obs_spec)
        self.spec = dict(obs_spec)
        self.obs_horizon = int(obs_horizon)
        self.output = output
        for k in self.keys:
            if "." in k:
                raise ConfigError(f"observation {k!r}: key names may not contain '.'")

        self.lowdim = nn.ModuleDict()
        dims: dict[str, int] = {}
        rgb_shapes: dict[str, tuple[int, ...]] = {}
        for k in self.keys:
            s = obs_spec[k]
            if s.kind == "lowdim":
                o = {"hidden": lowdim_hidden, "out_dim": lowdim_out, **keys.get(k, {})}
                _check_options(o, LOWDIM_OPTIONS, f"encoder.keys.{k}")
                self.lowdim[k] = LowDimEncoder(math.prod(s.shape), list(o["hidden"] or []), o["out_dim"])
                dims[k] = self.lowdim[k].out_dim
            elif s.kind == "rgb":
                _check_options(keys.get(k, {}), VIEW_OPTIONS, f"encoder.keys.{k}")
                rgb_shapes[k] = tuple(s.shape)
            else:
                raise ConfigError(f"observation {k!r}: kind {s.kind!r} has no encoder; expected 'lowdim' or 'rgb'")

        # Cameras: one trunk for all (share_backbone) or one per camera.
        share = bool(rgb_cfg.pop("share_backbone"))
        groups = {"shared": list(rgb_shapes)} if share else {k: [k] for k in rgb_shapes}
        self.cameras = nn.ModuleDict()
        for name, ks in groups.items():
            if ks:
                enc = ImageEncoder(
                    {k: rgb_shapes[k] for k in ks}, **rgb_cfg, views={k: keys[k] for k in ks if k in keys}
                )
                self.cameras[name] = enc
                dims.update(enc.out_dims)
        self.feature_dims = {k: dims[k] for k in self.keys}
        self.out_dim = self.obs_horizon * sum(self.feature_dims.values())

        self.token_dim = int(token_dim)
        if output in ("tokens", "both"):
            self.to_token = nn.ModuleDict({k: nn.Linear(d, self.token_dim) for k, d in self.feature_dims.items()})
            self.time_emb = nn.Parameter(0.02 * torch.randn(self.obs_horizon, self.token_dim))
            self.key_emb = nn.Parameter(0.02 * torch.randn(len(self.keys), self.token_dim))

    @property
    def n_tokens(self) -> int:
        return self.obs_horizon * len(self.keys)

    def check(self, obs: Mapping[str, torch.Tensor]) -> None:
        """Bad batches fail here with the key's name, not deep inside a conv."""
        To = self.obs_horizon
        for k in self.keys:
            if k not in obs:
                raise DataError(
                    f"observation {k!r}: missing from the batch (expected keys {self.keys}, found {sorted(obs)})"
                )
            x, s = obs[k], self.spec[k]
            if tuple(x.shape[1:]) != (To, *s.shape):
                raise DataError(
                    f"observation {k!r}: expected shape (B, {', '.join(map(str, (To, *s.shape)))}), "
                    f"found {tuple(x.shape)}"
                )
            if s.kind == "rgb":
                want_u8 = s.dtype == "uint8"
                if want_u8 and x.dtype != torch.uint8:
                    raise DataError(
                        f"observation {k!r}: expected uint8 images (0..255) as declared, found {x.dtype}; "
                        "pass raw frames, the encoder scales them"
                    )
                if not want_u8 and not x.is_floating_point():
                    raise DataError(
                        f"observation {k!r}: expected float images in [0, 1] ({s.dtype}) as declared, found {x.dtype}"
                    )

    def features(self, obs: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """One (B, To, d_k) feature tensor per key, in ``self.keys`` order."""
        self.check(obs)
        feats: dict[str, torch.Tensor] = {}
        dev = self._device()
        for k, enc in self.lowdim.items():
            x = obs[k] if dev is None else obs[k].to(dev, non_blocking=True)
            x = x.flatten(2)
            feats[k] = enc(x if x.is_floating_point() else x.float())
        for cams in self.cameras.values():
            feats.update(cams({k: obs[k] for k in cams.keys}))
        return [feats[k] for k in self.keys]

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat(self.features(obs), dim=-1).flatten(1)

    def tokens(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.tokens_from(self.features(obs))

    def tokens_from(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Tokens of per-key features already computed (``features``): one encoder pass serves a
        head that wants tokens and an auxiliary head that reads the features."""
        if self.output == "vector":
            raise ConfigError("encoder.output is 'vector': set it to 'tokens' or 'both' for a head that wants tokens")
        toks = [self.to_token[k](f) + self.key_emb[i] for i, (k, f) in enumerate(zip(self.keys, feats))]
        x = torch.stack(toks, dim=2) + self.time_emb[:, None]  # (B, To, K, D)
        return x.flatten(1, 2)

    def _device(self) -> torch.device | None:
        """The parameters' device; None for a parameter-free encoder (inputs stay where they are)."""
        p = next(self.parameters(), None)
        return None if p is None else p.device


def _as_dict(cfg: Any) -> dict[str, Any]:
    if cfg is None:
        return {}
    if not isinstance(cfg, Mapping):
        try:  # an OmegaConf DictConfig
            from omegaconf import OmegaConf

            cfg = OmegaConf.to_container(cfg, resolve=True)
        except Exception:
            raise ConfigError(f"encoder: expected a mapping, got {type(cfg).__name__}") from None
    return {k: (_as_dict(v) if isinstance(v, Mapping) else v) for k, v in dict(cfg).items()}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_preset(name: str) -> dict[str, Any]:
    """A preset named in the encoder config itself: composed configs have it resolved already
    (``robolearn.config``); this serves checkpoints written before, and direct ``build_encoder`` calls."""
    from robolearn.config_files import find_config, group_options, load_yaml

    path = find_config("policy/encoder", name)
    if path is None:
        have = group_options("policy/encoder")
        raise ConfigError(
            f"encoder.preset={name}: no file policy/encoder/{name}.yaml; choose one of: {', '.join(have) or '(none)'}"
        )
    return _as_dict(load_yaml(path))


def build_encoder(cfg: Mapping[str, Any] | None, obs_spec: dict[str, ObsSpec], obs_horizon: int) -> ObsEncoder:
    cfg = _as_dict(cfg)
    if cfg.get("preset"):
        cfg = _merge(load_preset(str(cfg.pop("preset"))), cfg)
    cfg.pop("preset", None)
    cfg.pop("_name", None)
    _check_options(cfg, TOP_OPTIONS, "encoder")
    low = dict(cfg.get("lowdim") or {})
    _check_options(low, LOWDIM_OPTIONS, "encoder.lowdim")
    return MultiKeyEncoder(
        obs_spec,
        obs_horizon,
        lowdim_hidden=low.get("hidden") or (),
        lowdim_out=low.get("out_dim"),
        rgb=cfg.get("rgb"),
        keys=cfg.get("keys"),
        token_dim=cfg.get("token_dim", 128),
        output=cfg.get("output", "both"),
    )
