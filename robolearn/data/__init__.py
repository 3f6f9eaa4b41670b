"""Demonstration data: zarr ReplayBuffer -> index-table WindowSampler -> Normalizer."""

from robolearn.data.dataset import describe, load_dataset, parse_obs_key, resolve_obs_keys, train_val_split
from robolearn.data.normalizer import Normalizer
from robolearn.data.replay_buffer import ReplayBuffer
from robolearn.data.sampler import WindowSampler

__all__ = [
    "ReplayBuffer",
    "WindowSampler",
    "Normalizer",
    "load_dataset",
    "resolve_obs_keys",
    "parse_obs_key",
    "train_val_split",
    "describe",
]
