"""DAgger (Ross et al. 2011) with action-chunk labels.

Round 0 is BC on expert demonstrations. Each later round rolls the current policy out mixed
with the expert (with probability beta the expert's action is executed), asks the expert what it
would do at every state the rollout reached (its chunk from that state), appends those labelled
episodes to the dataset and retrains. The round machinery (resumable collection, training,
evaluation, ledger) is ``robolearn.algos.rounds``; this file is the algorithm's decision.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from robolearn.algos.acting import ExpertActs, Mixture
from robolearn.algos.rounds import run_rounds
from robolearn.errors import ConfigError


def beta_at(r: int, algo) -> float:
    """Probability that the expert acts in round r >= 1: constant, linear (to 0 at the last
    round) or exponential (beta * decay^(r-1), Ross et al.)."""
    b, kind = float(algo.beta), str(algo.beta_schedule)
    if kind == "constant":
        return b
    if kind == "linear":
        n = int(algo.rounds)
        return b * (1.0 - (r - 1) / max(1, n - 1)) if n > 1 else b
    if kind == "exponential":
        return b * float(algo.beta_decay) ** (r - 1)
    raise ConfigError(f"algo.beta_schedule: expected constant | linear | exponential, found {kind!r}")


def dagger_plan(r: int, history: list[dict], algo) -> ExpertActs | Mixture:
    """Round 0: clean expert demonstrations; round r: the beta-mixture of expert and learner."""
    if r == 0:
        return ExpertActs()
    b = beta_at(r, algo)
    return Mixture(beta=b, record={"beta": b})


def run_dagger(cfg: DictConfig, run_dir: str | Path, progress: bool = True, dist=None) -> dict:
    """DAgger rounds (``algo=dagger``); returns the progress record (history rows, checkpoints)."""
    if str(cfg.algo.name) != "dagger":
        raise ConfigError(f"run_dagger: expected algo.name=dagger, found {cfg.algo.name!r}")
    return run_rounds(cfg, run_dir, dagger_plan, progress, dist)
