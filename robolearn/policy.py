"""ChunkPolicy = normalizer + observation encoder + action head.

Everything inside is normalized; the policy converts at the edges: raw observations in,
raw action chunks out. A checkpoint is a folder with ``model.safetensors`` (weights),
``config.json`` (the policy config, observation spec and action dim) and
``normalizer.safetensors`` — no pickle, so a checkpoint is safe to share.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from robolearn.data.normalizer import Normalizer
from robolearn.encoders import build_encoder
from robolearn.errors import ConfigError, DataError, RobolearnError
from robolearn.heads import build_head, head_class
from robolearn.spec import ObsSpec

CKPT_FORMAT = 1


def obs_name(entry: str) -> str:
    """``"agent_pos=state[0:2]"`` -> ``"agent_pos"`` (derived keys are resolved by the data layer)."""
    return entry.split("=", 1)[0].strip()


def spec_from_array(arr: np.ndarray) -> ObsSpec:
    shape = tuple(int(s) for s in arr.shape[1:])
    kind = "rgb" if len(shape) == 3 and shape[-1] == 3 else "lowdim"
    return ObsSpec(shape=shape, dtype="uint8" if kind == "rgb" else "float32", kind=kind)


class ChunkPolicy(nn.Module):
    """``aux_dim`` (training only): the width of an auxiliary target (``policy.aux_key``, e.g. the
    block keypoints the Push-T data carries beside the image) that a small head predicts from the
    observation features at every observed frame. It shapes the encoder with a dense supervised
    signal; it is not part of a checkpoint, inference never runs it."""

    def __init__(
        self,
        cfg: dict[str, Any],
        obs_spec: dict[str, ObsSpec],
        action_dim: int,
        normalizer: Normalizer,
        aux_dim: int | None = None,
    ):
        super().__init__()
        self.cfg = dict(cfg)
        self.obs_spec = dict(obs_spec)
        self.action_dim = int(action_dim)
        self.obs_horizon = int(cfg["obs_horizon"])
        self.horizon = int(cfg["horizon"])
        n = cfg.get("n_action_steps")
        self.n_action_steps = self.horizon if n is None else int(n)  # null = the whole chunk; 0 is an error
        if not 1 <= self.n_action_steps <= self.horizon:
            raise ConfigError(f"policy.n_action_steps: expected 1..horizon={self.horizon}, got {self.n_action_steps}")
        if self.obs_horizon < 1:
            raise ConfigError(f"policy.obs_horizon: expected >= 1, got {self.obs_horizon}")
        self.lowdim_keys = [k for k, s in obs_spec.items() if s.kind == "lowdim"]
        self.normalizer = normalizer
        self.encoder = build_encoder(cfg.get("encoder", {}), obs_spec, self.obs_horizon)
        head_cfg = dict(cfg["head"])
        name = head_cfg.pop("name")
        wants_tokens = head_class(name).wants_tokens
        cond_dim = self.encoder.token_dim if wants_tokens else self.encoder.out_dim
        self.head = build_head(name, cond_dim, self.horizon, self.action_dim, **head_cfg)
        self.aux_key = cfg.get("aux_key") if aux_dim else None
        self.aux_weight = float(cfg.get("aux_weight", 1.0))
        self.aux_head = None
        if self.aux_key:
            # per frame: that frame's features of every key -> that frame's target (normalized)
            per_frame = sum(self.encoder.feature_dims.values())
            self.aux_head = nn.Sequential(nn.Linear(per_frame, 256), nn.Mish(), nn.Linear(256, int(aux_dim)))

    # ---- edges -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _prep_obs(self, obs: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = {}
        for k, spec in self.obs_spec.items():
            if k not in obs:
                raise DataError(
                    f"observation key {k!r} missing: the policy needs {sorted(self.obs_spec)}, got {sorted(obs)}"
                )
            x = torch.as_tensor(obs[k], device=self.device)
            if spec.kind == "lowdim":
                x = self.normalizer.normalize(k, x.float())
            out[k] = x
        return out

    def encode(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        enc = self._prep_obs(obs)
        return self.encoder.tokens(enc) if self.head.wants_tokens else self.encoder(enc)

    # ---- training ----------------------------------------------------------------------
    def compute_loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        actions = self.normalizer.normalize("action", torch.as_tensor(batch["action"], device=self.device).float())
        mask = batch.get("action_mask")
        if mask is not None:
            mask = torch.as_tensor(mask, device=self.device)
        if self.aux_head is None or "aux" not in batch:
            return self.head.loss(self.encode(batch["obs"]), actions, mask)
        feats = self.encoder.features(self._prep_obs(batch["obs"]))  # one pass: (B, To, d_k) per key
        cond = self.encoder.tokens_from(feats) if self.head.wants_tokens else torch.cat(feats, dim=-1).flatten(1)
        out = dict(self.head.loss(cond, actions, mask))
        target = self.normalizer.normalize(self.aux_key, torch.as_tensor(batch["aux"], device=self.device).float())
        aux = (self.aux_head(torch.cat(feats, dim=-1)) - target.flatten(2)).pow(2).mean()
        out["head_loss"] = out["loss"]
        out["aux_loss"] = aux
        out["loss"] = out["loss"] + self.aux_weight * aux
        return out

    # ---- inference ---------------------------------------------------------------------
    @torch.no_grad()
    def predict_chunk(
        self,
        obs: dict[str, Any],
        prefix: np.ndarray | torch.Tensor | None = None,
        prefix_weights: np.ndarray | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> np.ndarray:
        """obs[k]: (B, To, *shape) raw; prefix: (B, H, A) raw actions. Returns (B, H, A) raw."""
        cond = self.encode(obs)
        p = w = None
        if prefix is not None:
            p = self.normalizer.normalize("action", torch.as_tensor(prefix, device=self.device).float())
            w = torch.as_tensor(prefix_weights, device=self.device).float()
        a = self.head.sample(cond, prefix=p, prefix_weights=w, generator=generator)
        return self.normalizer.unnormalize("action", a.float()).cpu().numpy()

    # ---- checkpoints -------------------------------------------------------------------
    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint folder atomically (a temp folder renamed into place)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        state = {
            k: v.detach().cpu().contiguous()
            for k, v in self.state_dict().items()
            if not k.startswith(("normalizer.", "aux_head."))  # training-only parts stay out of a checkpoint
        }
        save_file(state, str(tmp / "model.safetensors"))
        self.normalizer.save(tmp / "normalizer.safetensors")
        meta = {
            "format": CKPT_FORMAT,
            "policy": self.cfg,
            "obs_spec": {
                k: {"shape": list(s.shape), "dtype": s.dtype, "kind": s.kind} for k, s in self.obs_spec.items()
            },
            "action_dim": self.action_dim,
            **(extra or {}),
        }
        (tmp / "config.json").write_text(json.dumps(meta, indent=2))
        if path.exists():
            old = path.with_name(path.name + ".old")
            if old.exists():
                _rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            _rmtree(old)
        else:
            os.replace(tmp, path)
        return path

    @classmethod
    def load(
        cls, path: str | Path, device: str | torch.device = "cpu", head_overrides: dict | None = None
    ) -> ChunkPolicy:
        """Rebuild a saved policy. ``head_overrides`` changes inference-only head options of the
        trained weights (``{"num_steps": 1}``, ``{"init_noise": "zero"}``, ``{"eval_mode": "mode"}``);
        an option that changes the parameters fails with a clear error."""
        path = Path(path)
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise DataError(
                f"{path}: not a robolearn checkpoint (expected config.json, model.safetensors, normalizer.safetensors)"
            )
        meta = _read_meta(cfg_file)
        spec = {
            k: ObsSpec(shape=tuple(v["shape"]), dtype=v["dtype"], kind=v["kind"]) for k, v in meta["obs_spec"].items()
        }
        normalizer = Normalizer.load(path / "normalizer.safetensors")
        if head_overrides:
            name = meta["policy"]["head"]["name"]
            options = head_class(name).option_names()
            for k in head_overrides:
                if k not in options:
                    raise ConfigError(
                        f"head.{k}: expected an option of the checkpoint's {name!r} head "
                        f"({', '.join(sorted(options))}), found {k!r}"
                    )
            meta["policy"] = {**meta["policy"], "head": {**meta["policy"]["head"], **dict(head_overrides)}}
        try:
            policy = cls(meta["policy"], spec, meta["action_dim"], normalizer)
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, RobolearnError):  # a value the policy refuses: say which file holds it
                if head_overrides and str(e).startswith("head."):
                    raise  # the value came from the command line (head.KEY=VALUE), not from the file
                raise DataError(f"{cfg_file}: {e}") from None
            raise DataError(
                f"{cfg_file}: key 'policy': expected a buildable policy config, found one that fails "
                f"({type(e).__name__}: {e})"
            ) from None
        weights = path / "model.safetensors"
        try:
            state = load_file(str(weights))
        except Exception as e:  # missing, empty, truncated or not safetensors at all
            what = "nothing" if not weights.exists() else f"an unreadable file ({type(e).__name__})"
            raise DataError(f"{weights}: expected the policy's safetensors weights, found {what}") from None
        own = policy.state_dict()
        shapes = [
            f"{k} {tuple(v.shape)} vs config {tuple(own[k].shape)}"
            for k, v in state.items()
            if k in own and tuple(v.shape) != tuple(own[k].shape)
        ]
        if shapes:
            raise DataError(
                f"{weights}: weights do not match the config: expected the config's shapes, found "
                f"{shapes[0]}" + (f" (and {len(shapes) - 1} more)" if len(shapes) > 1 else "")
            )
        missing, unexpected = policy.load_state_dict(state, strict=False)
        missing = [m for m in missing if not m.startswith("normalizer.")]
        if missing or unexpected:
            raise DataError(
                f"{weights}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        policy.meta, policy.path = meta, path
        return policy.to(device).eval()


def _read_meta(cfg_file: Path) -> dict[str, Any]:
    """A checkpoint's config.json, checked for the fields and types ``load`` needs."""
    try:
        meta = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{cfg_file}: expected JSON, found invalid text ({type(e).__name__})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{cfg_file}: expected a JSON object at the top level, found {type(meta).__name__}")
    need = {"policy": dict, "obs_spec": dict, "action_dim": int}
    for key, typ in need.items():
        if key not in meta:
            raise DataError(f"{cfg_file}: key {key!r}: expected it in a robolearn checkpoint, found it missing")
        if not isinstance(meta[key], typ) or isinstance(meta[key], bool):
            raise DataError(f"{cfg_file}: key {key!r}: expected {typ.__name__}, found {type(meta[key]).__name__}")
    if meta["action_dim"] < 1:
        raise DataError(f"{cfg_file}: key 'action_dim': expected >= 1, found {meta['action_dim']}")
    for k, v in meta["obs_spec"].items():
        ok = (
            isinstance(v, dict)
            and isinstance(v.get("shape"), list)
            and all(isinstance(d, int) and d > 0 for d in v["shape"])
            and v.get("kind") in ("lowdim", "rgb")
            and isinstance(v.get("dtype"), str)
        )
        if not ok:
            raise DataError(
                f"{cfg_file}: key 'obs_spec.{k}': expected {{shape: [ints], dtype, kind: lowdim|rgb}}, found {v!r}"
            )
    if not isinstance(meta["policy"].get("head"), dict) or "name" not in meta["policy"]["head"]:
        raise DataError(
            f"{cfg_file}: key 'policy.head': expected a mapping with a name, found {meta['policy'].get('head')!r}"
        )
    return meta


def _rmtree(p: Path) -> None:
    import shutil

    shutil.rmtree(p, ignore_errors=True)
