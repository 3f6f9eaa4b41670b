"""The command line as a newcomer meets it: options anywhere on the line, every choice findable
from --help and `robolearn list`, budgets for `ablate` from the command line, a changed re-run
refused with what differs, user config folders, and a wheel that works outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from robolearn.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robolearn", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


@pytest.fixture(scope="module")
def reach(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("d") / "reach.zarr"
    r = cli("collect", "fetch_reach", "--episodes", "8", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "Adroit" not in r.stderr  # gymnasium-robotics' notice about tasks robolearn does not use
    return out


@pytest.fixture(scope="module")
def run(reach, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("r") / "run"
    r = cli("train", "task=fetch_reach", f"data={reach}", f"run_dir={d}", "algo.steps=20", "algo.batch_size=16")
    assert r.returncode == 0, r.stderr
    return d


def test_executor_options_anywhere_on_the_line(run, tmp_path):
    """The README's `robolearn eval RUN --exec rtc s=4 delay=2` (options before and after)."""
    r = cli(
        "eval",
        str(run),
        "--exec",
        "rtc",
        "s=4",
        "delay=2",
        "--episodes",
        "2",
        "--videos",
        "0",
        "--out",
        str(tmp_path / "e"),
    )
    assert r.returncode == 0, r.stderr
    import json

    m = json.loads((tmp_path / "e" / "metrics.json").read_text())["summary"]
    assert m["exec"]["s"] == 4 and m["exec"]["delay"] == 2 and m["episodes"] == 2


def test_head_sampling_options_and_step_limit_on_eval(reach, tmp_path):
    """`robolearn eval RUN head.num_steps=2` samples the trained flow head with 2 Euler steps
    (Diffusion Policy's num_inference_steps at evaluation); `--max-steps` changes the episode
    limit; without --exec the run's own executor config is used; the metrics record what was used."""
    import json

    d = tmp_path / "flow"
    r = cli(
        "train",
        "task=fetch_reach",
        "policy=flow",
        f"data={reach}",
        f"run_dir={d}",
        "algo.steps=10",
        "algo.batch_size=8",
        "exec.stride=2",
    )
    assert r.returncode == 0, r.stderr
    r = cli(
        "eval",
        str(d),
        "head.num_steps=2",
        "head.init_noise=zero",
        "--episodes",
        "1",
        "--max-steps",
        "7",
        "--videos",
        "0",
        "--out",
        str(tmp_path / "e"),
    )
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["summary"]["max_steps"] == 7 and all(e["length"] <= 7 for e in m["episodes"])
    assert m["summary"]["exec"]["stride"] == 2  # no --exec: the run's own executor, as trained
    head = m["summary"]["head"]
    assert head["name"] == "flow" and head["num_steps"] == 2 and head["init_noise"] == "zero"
    trained = json.loads((d / "checkpoints" / "last" / "config.json").read_text())["policy"]["head"]
    assert trained["num_steps"] == 10  # the checkpoint itself is untouched
    # the options take effect in the policy eval builds (ChunkPolicy.load with head overrides), not
    # only in the echo: 2 network passes per chunk instead of 10, and z = 0 makes sampling seed-free
    import numpy as np
    import torch

    from robolearn.policy import ChunkPolicy

    obs = {"state": np.random.default_rng(0).normal(size=(3, 2, 13)).astype(np.float32)}
    for overrides, passes in (({}, 10), ({"num_steps": 2, "init_noise": "zero"}, 2)):
        p = ChunkPolicy.load(d / "checkpoints" / "last", head_overrides=overrides)
        calls = []
        p.head.net.register_forward_hook(lambda *a: calls.append(1))
        a = p.predict_chunk(obs, generator=torch.Generator().manual_seed(1))
        b = p.predict_chunk(obs, generator=torch.Generator().manual_seed(2))
        assert len(calls) == 2 * passes, overrides
        assert np.array_equal(a, b) == (overrides.get("init_noise") == "zero"), overrides


def test_every_choice_is_findable():
    top = cli("--help").stdout
    for cmd in ("collect", "train", "eval", "dagger", "dart", "ablate", "convert", "inspect", "list", "quickstart"):
        assert cmd in top, cmd
    train = cli("train", "--help").stdout
    for name in ("pusht_keypoints", "flow", "diffusion", "rtc", "dagger", "pusht_keypoints_cpu"):
        assert name in train, name
    listing = cli("list")
    assert listing.returncode == 0
    for name in ("fetch_push", "mip", "ensemble", "image_small", "much_ado", "hg_dagger"):
        assert name in listing.stdout, name
    q = cli("quickstart", "--help").stdout
    assert "expert demonstrations" in q and "training steps" in q


def test_ablate_budget_from_the_command_line(tmp_path):
    from robolearn.experiments import load_experiment

    exp = load_experiment("much_ado", ["algo.steps=50", "eval.episodes=4"])
    assert exp.train_cli == ["algo.steps=50"] and exp.eval.episodes == 4  # after the variants' own settings
    # the seeds and the collected demonstrations are knobs too (ablate and delay alike)
    exp = load_experiment("rtc_delay", ["seeds=0", "collect.episodes=7"])
    assert list(exp.seeds) == [0]
    assert all(t.collect.episodes == 7 for t in exp.tasks.values() if t.get("collect"))
    assert list(load_experiment("much_ado", ["seeds=[1,2]"]).seeds) == [1, 2]
    for bad, words in (("seeds=x", "'seeds'"), ("collect.episodes=0", "collect.episodes")):
        with pytest.raises(ConfigError, match=words):
            load_experiment("rtc_delay", [bad])
    r = cli("ablate", "much_ado", "eval.videos=1", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "eval.episodes, eval.n_envs or eval.seed_start" in r.stderr


def test_every_shipped_experiment_composes_every_cell():
    from pathlib import Path

    import robolearn
    from robolearn.experiments import cell_cfg, load_experiment
    from robolearn.experiments.delay import check_sweep, check_windows

    files = sorted((Path(robolearn.__file__).parent / "configs" / "experiment").glob("*.yaml"))
    assert {"much_ado", "heads_pusht", "rtc_delay", "rtc_heads", "rtc_horizons"} <= {f.stem for f in files}
    for f in files:
        exp = load_experiment(f.stem)
        for task in exp.tasks:
            for variant in exp.variants:
                cfg = cell_cfg(exp, variant, task, int(exp.seeds[0]), None)
                trains = cfg.algo.name != "expert"  # an expert cell evaluates the scripted expert
                assert cfg.policy.head.name and (not trains or cfg.algo.steps > 0), (f.stem, variant, task)
        if "sweep" in exp:
            check_windows(exp, check_sweep(exp), list(exp.tasks))


def test_continue_with_a_policy_that_does_not_fit_leaves_the_run_as_it_was(run, reach):
    """--continue-with-new-settings with another architecture fails on the resume state, and the
    run's config.yaml still describes the run: the original command resumes it."""
    before = (run / "config.yaml").read_text()
    (run / "train_summary.json").rename(run / "summary.bak")  # unfinished: the next start resumes
    try:
        r = cli(
            "train",
            "task=fetch_reach",
            f"data={reach}",
            f"run_dir={run}",
            "algo.steps=20",
            "algo.batch_size=16",
            "policy=flow",
            "--continue-with-new-settings",
        )
        assert r.returncode == 2 and "resume/state.pt" in r.stderr and "does not fit" in r.stderr, r.stderr
        assert (run / "config.yaml").read_text() == before
    finally:
        (run / "summary.bak").rename(run / "train_summary.json")


def test_rerun_with_changed_settings_is_refused_with_the_difference(run, reach):
    before = (run / "config.yaml").read_text()
    r = cli("train", "task=fetch_reach", f"data={reach}", f"run_dir={run}", "algo.steps=40", "algo.batch_size=16")
    assert r.returncode == 2
    assert "algo.steps: 20 -> 40" in r.stderr and "--continue-with-new-settings" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert (run / "config.yaml").read_text() == before  # nothing overwritten
    same = cli("train", "task=fetch_reach", f"data={reach}", f"run_dir={run}", "algo.steps=20", "algo.batch_size=16")
    assert same.returncode == 0, same.stderr  # the same command resumes (here: finds it finished)


def test_user_config_folder_adds_and_overrides(tmp_path, reach):
    (tmp_path / "configs" / "policy").mkdir(parents=True)
    (tmp_path / "configs" / "policy" / "tiny_mlp.yaml").write_text(
        "obs_horizon: 1\nhorizon: 4\nn_action_steps: 2\nnormalizer: minmax\nencoder: {lowdim: {hidden: []}}\n"
        "head: {name: regression, hidden: [8], loss: l1}\n"
    )
    r = cli(
        "train",
        "task=fetch_reach",
        "policy=tiny_mlp",
        f"data={reach}",
        "run_dir=run",
        "algo.steps=5",
        "algo.batch_size=8",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "hidden:\n    - 8" in (tmp_path / "run" / "config.yaml").read_text()
    other = tmp_path / "elsewhere"
    other.mkdir()
    r = cli("--config-dir", str(tmp_path / "configs"), "list", cwd=other)
    assert "tiny_mlp" in r.stdout


@pytest.mark.slow
def test_wheel_carries_the_configs_and_runs_outside_the_repository(tmp_path, reach):
    """Build the wheel, install it (no editable link) into a venv that borrows this one's
    dependencies, and train from another directory."""
    wheels = tmp_path / "wheels"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    whl = next(wheels.glob("robolearn-*.whl"))
    names = zipfile.ZipFile(whl).namelist()
    assert "robolearn/configs/task/pusht_keypoints.yaml" in names and "robolearn/envs/pusht.py" in names
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"robolearn"}, top  # no generic top-level name (such as envs) lands in a user's site-packages
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "torch").is_dir())
    (site / "borrowed_deps.pth").write_text(
        str(deps) + "\n"
    )  # dependencies only: the editable robolearn link is not read
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(whl)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    work = tmp_path / "work"
    work.mkdir()
    py = str(venv / "bin" / "python")
    where = subprocess.run(
        [py, "-c", "import robolearn; print(robolearn.__file__)"],
        capture_output=True,
        text=True,
        cwd=work,
        env={**os.environ, "PYTHONPATH": ""},
    ).stdout
    assert str(site) in where, where
    r = subprocess.run(
        [
            py,
            "-m",
            "robolearn",
            "train",
            "task=fetch_reach",
            f"data={reach}",
            "run_dir=run",
            "algo.steps=10",
            "algo.batch_size=8",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        env={**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert (work / "run" / "checkpoints" / "last" / "model.safetensors").is_file()


def test_evaluate_from_python_is_what_the_command_does(run, tmp_path):
    """robolearn.evaluate(run_dir, ...) = `robolearn eval run_dir ...`: same seeds, same numbers."""
    import json

    import robolearn

    m = robolearn.evaluate(run, episodes=3, n_envs=3, videos=0, out=tmp_path / "py", overrides=["n_action_steps=2"])
    r = cli("eval", str(run), "--episodes", "3", "--n-envs", "3", "--videos", "0", "n_action_steps=2",
            "--out", str(tmp_path / "cli"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    by_cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    by_py = json.loads((tmp_path / "py" / "metrics.json").read_text())
    assert m["episodes"] == 3 and m["exec"]["n_action_steps"] == 2
    assert by_py["episodes"] == by_cli["episodes"]
