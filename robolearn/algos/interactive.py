"""The command behind ``robolearn dagger`` and ``robolearn dart``: compose the config, refuse a
changed re-run, run DAgger / HG-DAgger / DART rounds (resumable), print where the ledger is."""

from __future__ import annotations

import sys
from pathlib import Path

from robolearn.algos.dagger import dagger_plan
from robolearn.algos.dart import dart_plan
from robolearn.algos.hg_dagger import hg_dagger_plan
from robolearn.algos.rounds import demos_only, run_rounds
from robolearn.errors import ConfigError

# who drives each round, by algo.name (round 0 is always clean expert demonstrations)
PLANS = {"bc": demos_only, "dagger": dagger_plan, "hg_dagger": hg_dagger_plan, "dart": dart_plan}


def run_interactive(cfg, run_dir: str | Path, progress: bool = True, dist=None) -> dict:
    """The rounds of ``cfg.algo.name`` (bc in rounds | dagger | hg_dagger | dart); resumable."""
    name = str(cfg.algo.name)
    if name not in PLANS or "rounds" not in cfg.algo:
        raise ConfigError(
            f"algo={cfg.algo.get('_name', name)}: expected an interactive algo config with rounds ({' | '.join(PLANS)})"
        )
    return run_rounds(cfg, run_dir, PLANS[name], progress, dist)


def main(
    argv: list[str] | None = None,
    default_algo: str | None = None,
    prog_name: str = "robolearn interactive",
    allow_changed: bool = False,
) -> int:
    """``robolearn dagger task=fetch_push run_dir=runs/x [key=value ...]`` (also ``robolearn dart``,
    ``robolearn dagger algo=hg_dagger`` and ``python -m robolearn.algos.interactive algo=...``).
    Run the same command again to resume."""
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from robolearn.config import compose
    from robolearn.errors import RobolearnError

    overrides = list(sys.argv[1:] if argv is None else argv)
    if default_algo and not any(o.startswith("algo=") for o in overrides):
        overrides = [f"algo={default_algo}", *overrides]
    run_dir = None
    try:
        cfg = compose(overrides)
        if str(cfg.algo.name) not in PLANS or "rounds" not in cfg.algo:
            raise ConfigError(
                f"algo={cfg.algo._name}: expected an interactive algo config with rounds (dagger | hg_dagger | dart)"
            )
        run_dir = Path(cfg.run_dir or f"runs/{cfg.task._name}_{cfg.algo.name}_s{cfg.seed}")
        from robolearn.config import refuse_changed_settings

        refuse_changed_settings(cfg, run_dir, allow_changed, "--continue-with-new-settings")
        from robolearn.train.dist import init as init_dist
        from robolearn.train.trainer import pick_device

        dist = init_dist(pick_device(str(cfg.device)), cfg.dist_timeout_s)  # a world of one without torchrun
        if dist.world > 1 and not cfg.run_dir:
            raise ConfigError(
                "run_dir: expected an explicit run_dir under torchrun (ranks must agree on it), found none"
            )
        try:
            prog = run_interactive(cfg, run_dir, progress=dist.is_main, dist=dist if dist.world > 1 else None)
        finally:
            dist.close()
        if not dist.is_main:
            return 0
    except RobolearnError as e:
        print(f"{prog_name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        where = f" ({run_dir / 'progress.json'})" if run_dir else ""
        print(
            f"{prog_name}: interrupted: the dataset holds every finished rollout; run the same command "
            f"to resume{where}",
            file=sys.stderr,
        )
        return 130
    print(f"ledger: {run_dir / 'ledger.csv'}, plot: {run_dir / 'ledger.png'}  ({prog['completed_round'] + 1} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
