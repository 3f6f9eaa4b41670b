"""HG-DAgger (Kelly et al. 2019): the learner drives, the expert takes over when they disagree.

Round 0 is BC on expert demonstrations. In each later round the learner drives until its next
action is more than ``threshold`` (L2, raw action units) from the expert's; the expert then
drives until the learner's fresh prediction agrees within ``release * threshold`` again (after at
least ``min_takeover`` steps). Only the takeover stretches are labelled and added, each as its
own episode. The round machinery is ``robolearn.algos.rounds``.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from robolearn.algos.acting import ExpertActs, Gated
from robolearn.algos.rounds import run_rounds
from robolearn.errors import ConfigError


def hg_dagger_plan(r: int, history: list[dict], algo) -> ExpertActs | Gated:
    if r == 0:
        return ExpertActs()
    return Gated(threshold=float(algo.threshold), release=float(algo.release), min_takeover=int(algo.min_takeover))


def run_hg_dagger(cfg: DictConfig, run_dir: str | Path, progress: bool = True, dist=None) -> dict:
    """HG-DAgger rounds (``algo=hg_dagger``); returns the progress record."""
    if str(cfg.algo.name) != "hg_dagger":
        raise ConfigError(f"run_hg_dagger: expected algo.name=hg_dagger, found {cfg.algo.name!r}")
    return run_rounds(cfg, run_dir, hg_dagger_plan, progress, dist)
