"""Image encoder: a ResNet-18-style trunk (written here, no torchvision), GroupNorm, then
spatial-softmax keypoints or global average pooling, then a linear map to ``feature_dim``.

Why GroupNorm: BatchNorm's running statistics are buffers that an EMA copy of the weights
does not average, and they drift with the batch composition; GroupNorm has none, so the EMA
weights we evaluate are always a consistent model (the Diffusion Policy finding).

Why spatial softmax: for manipulation, *where* things are matters more than *what* is in the
image; each keypoint channel becomes an expected (x, y) image position.

``width`` is the first stage's channel count (stages use width * [1, 2, 4, 8]); 64 is the
full ResNet-18 (11.2 M trunk parameters, for GPUs); the default 16 (0.70 M) is ~16x cheaper in
compute and trains on a CPU for 84x84 crops (tools/bench_encoders.py); 32 (2.8 M) is between.
One :class:`ImageEncoder` holds one trunk; several cameras can share it (``share_backbone``),
each keeping its own augmentation, keypoints and projection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robolearn.encoders.augment import ImageAugment
from robolearn.errors import ConfigError

# Image trunks by name (``encoder.rgb.backbone``): a factory (in_channels, width) -> a module mapping
# (N, C, H, W) to a feature map (N, out_channels, h, w) with an ``out_channels`` attribute. A new trunk
# is one function with ``@register_trunk("name")`` in a module imported before the policy is built.
TRUNKS: dict[str, Callable[[int, int], nn.Module]] = {}


def register_trunk(name: str):
    def deco(factory):
        if name in TRUNKS and TRUNKS[name] is not factory:
            raise RuntimeError(f"image trunk name {name!r} registered twice")
        TRUNKS[name] = factory
        return factory

    return deco


POOLS = ("spatial_softmax", "avg")
VIEW_OPTIONS = ("pool", "num_keypoints", "feature_dim", "crop", "color_jitter")


def group_norm(channels: int) -> nn.GroupNorm:
    """16 channels per group (as in Diffusion Policy's ResNet), at least one group."""
    return nn.GroupNorm(max(1, channels // 16), channels)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = group_norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = group_norm(cout)
        nn.init.zeros_(self.norm2.weight)  # each block starts as the identity: stable from scratch
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), group_norm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNetTrunk(nn.Module):
    """(N, C, H, W) -> (N, 8*width, H/32, W/32): the ResNet-18 layout without pooling or fc."""

    def __init__(self, in_channels: int = 3, width: int = 16, blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
            group_norm(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        layers, cin = [], width
        for i, n in enumerate(blocks):
            cout = width * 2**i
            for j in range(n):
                layers.append(BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


@register_trunk("resnet18")
def resnet18_trunk(in_channels: int, width: int) -> ResNetTrunk:
    return ResNetTrunk(in_channels, width, (2, 2, 2, 2))


@register_trunk("resnet10")
def resnet10_trunk(in_channels: int, width: int) -> ResNetTrunk:
    return ResNetTrunk(in_channels, width, (1, 1, 1, 1))


class SpatialSoftmax(nn.Module):
    """(N, C, h, w) -> (N, 2K): K learned keypoint maps, each reduced to its expected (x, y) in [-1, 1]."""

    def __init__(self, in_channels: int, num_keypoints: int):
        super().__init__()
        self.kp = nn.Conv2d(in_channels, num_keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        att = self.kp(x).flatten(2).float().softmax(-1)  # (N, K, h*w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx.flatten(), gy.flatten()], -1)  # (h*w, 2)
        return (att @ grid).flatten(1)  # (N, 2K)


class ImageReadout(nn.Module):
    """Trunk feature map -> (N, feature_dim): pooling, then one linear projection."""

    def __init__(self, in_channels: int, pool: str, num_keypoints: int, feature_dim: int):
        super().__init__()
        if pool == "spatial_softmax":
            self.pool: nn.Module = SpatialSoftmax(in_channels, num_keypoints)
            d = 2 * num_keypoints
        else:
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            d = in_channels
        self.proj = nn.Linear(d, feature_dim)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pool(fmap))


class ImageEncoder(nn.Module):
    """One conv trunk for one or more cameras: {key: (B, To, H, W, C)} -> {key: (B, To, feature_dim)}.

    Images arrive as uint8 (channels last, like the zarr data and the gym envs) and are moved,
    cropped, jittered and scaled to [-1, 1] here. ``views`` overrides the per-camera options
    (pool, num_keypoints, feature_dim, crop, color_jitter) for single keys.
    """

    def __init__(
        self,
        shapes: dict[str, tuple[int, ...]],
        backbone: str = "resnet18",
        width: int = 16,
        pool: str = "spatial_softmax",
        num_keypoints: int = 32,
        feature_dim: int = 64,
        crop: Any = None,
        color_jitter: Any = 0.0,
        views: dict[str, dict[str, Any]] | None = None,
        where: str = "encoder.rgb",
    ):
        super().__init__()
        if backbone not in TRUNKS:
            raise ConfigError(f"{where}.backbone: expected one of {list(TRUNKS)}, got {backbone!r}")
        if not isinstance(width, int) or width < 1:
            raise ConfigError(f"{where}.width: expected a positive int, got {width!r}")
        if not shapes:
            raise ConfigError(f"{where}: no image keys to encode")
        chans = {k: s[-1] for k, s in shapes.items()}
        if len(set(chans.values())) > 1:
            raise ConfigError(
                f"{where}.share_backbone: cameras sharing a trunk need the same channel count, found {chans}"
            )
        self.keys = list(shapes)
        self.trunk = TRUNKS[backbone](next(iter(chans.values())), width)
        self.augment = nn.ModuleDict()
        self.readout = nn.ModuleDict()
        self.out_dims: dict[str, int] = {}
        views = views or {}
        for k, shape in shapes.items():
            if len(shape) != 3:
                raise ConfigError(f"observation {k!r}: an rgb key needs shape (H, W, C), found {tuple(shape)}")
            o = dict(
                pool=pool, num_keypoints=num_keypoints, feature_dim=feature_dim, crop=crop, color_jitter=color_jitter
            )
            o.update(views.get(k, {}))
            if o["pool"] not in POOLS:
                raise ConfigError(f"{where}.pool ({k}): expected one of {list(POOLS)}, got {o['pool']!r}")
            for opt in ("num_keypoints", "feature_dim"):
                if not isinstance(o[opt], int) or o[opt] < 1:
                    raise ConfigError(f"{where}.{opt} ({k}): expected a positive int, got {o[opt]!r}")
            self.augment[k] = ImageAugment(
                tuple(shape[:2]), shape[2], o["crop"], o["color_jitter"], where=f"{where} ({k})"
            )
            fh, fw = self._feature_hw(shape[2], self.augment[k].out_hw)
            if o["pool"] == "spatial_softmax" and fh * fw == 1:
                raise ConfigError(
                    f"{where}.pool ({k}): spatial_softmax needs a feature map of at least 2 pixels, "
                    f"found 1x1 for {list(self.augment[k].out_hw)} inputs (trunk {backbone}); "
                    "use larger images or pool: avg"
                )
            self.readout[k] = ImageReadout(self.trunk.out_channels, o["pool"], o["num_keypoints"], o["feature_dim"])
            self.out_dims[k] = o["feature_dim"]

    def _feature_hw(self, channels: int, hw: tuple[int, int]) -> tuple[int, int]:
        """The trunk's feature-map size for an input of ``hw``: one forward pass of zeros."""
        was = self.trunk.training
        self.trunk.eval()  # a trunk with batch norm keeps its running statistics
        try:
            with torch.no_grad():
                return tuple(self.trunk(torch.zeros(1, channels, *hw)).shape[-2:])
        finally:
            self.trunk.train(was)

    def forward(self, images: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        dev = next(self.trunk.parameters()).device
        x = {k: self.augment[k](images[k].to(dev, non_blocking=True)) * 2.0 - 1.0 for k in self.keys}
        B, T = next(iter(x.values())).shape[:2]
        flat = [x[k].flatten(0, 1) for k in self.keys]  # (B*To, C, h, w)
        if len({f.shape[-2:] for f in flat}) == 1:  # same view size: one trunk call for all cameras
            fmaps = self.trunk(torch.cat(flat)).split(B * T)
        else:
            fmaps = [self.trunk(f) for f in flat]
        return {k: self.readout[k](f).unflatten(0, (B, T)) for k, f in zip(self.keys, fmaps)}


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
