"""``robolearn delay``: a tiny rtc_delay-style experiment end to end on the catch task (real
MuJoCo, real training, a fresh process), resumable; bad sweeps are one line before any work."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXPERIMENT = """
name: tiny_delay
seeds: [0]
train: [algo.steps=40, algo.batch_size=32, algo.ckpt_every=40, algo.val_every=40, algo.warmup_steps=5]
eval: {{episodes: 4, n_envs: 2, seed_start: 100000}}
tasks:
  catch:
    overrides: [task=catch]
    collect: {{episodes: 12}}
variants:
  flow:
    train: [policy=flow, "policy.head.down_dims=[16,32]", policy.head.prefix_conditioning=2, policy.head.num_steps=2]
  flow_given: {{from: flow, sample: {{inpaint: given}}, executors: [rtc]}}
sweep:
  delays: {delays}
  noise: [0.0, 0.1]
  executors:
    naive_async: {{name: naive_async}}
    rtc: {{name: rtc}}
    bid: {{name: bid, n_samples: 2}}
"""


def _run(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    return subprocess.run(
        [sys.executable, "-m", "robolearn", "delay", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_delay_experiment_end_to_end_and_resume(tmp_path):
    exp = tmp_path / "tiny.yaml"
    exp.write_text(EXPERIMENT.format(delays="[0, 2]"))
    out = tmp_path / "out"
    r = _run([str(exp), "--out", str(out), "--variants", "flow_given"], tmp_path)  # part of the grid first
    assert r.returncode == 0, r.stderr[-2000:]
    with open(out / "results.csv") as f:
        assert {row["variant"] for row in csv.DictReader(f)} == {"flow_given"}
    assert (out / "train/flow/catch/s0").is_dir() and not (out / "cells/catch/flow").exists()  # weights, no cells
    r = _run([str(exp), "--out", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    # flow: 2 noise x 3 executors x 2 delays; flow_given: rtc only
    assert len(rows) == 12 + 4
    assert {(r["variant"], r["executor"]) for r in rows} == {
        ("flow", "naive_async"),
        ("flow", "rtc"),
        ("flow", "bid"),
        ("flow_given", "rtc"),
    }
    for row in rows:
        assert int(row["episodes"]) == 4 and row["s"] == str(max(int(row["delay"]), 1))
    cell = json.loads((out / "cells/catch/flow/s0/rtc_n0.1_d2.json").read_text())
    assert cell["exec"]["delay"] == 2 and cell["exec"]["s"] == 2 and cell["noise"] == 0.1
    assert (out / "delay.png").stat().st_size > 5000 and "| catch |" in (out / "results.md").read_text()
    # the multimodality diagnostic ran on each loaded model before its sweep, and is in the results
    diag = json.loads((out / "diagnostic/catch/flow/s0.json").read_text())
    assert diag["states"] == 64 and 0 <= diag["bimodal_share"] <= 1 and diag["sample_gap"] > 0
    assert (out / "diagnostic/catch/flow_given/s0.json").exists()
    md = (out / "results.md").read_text()
    assert "Can these models show RTC's effect" in md and "paired against naive_async" in md
    paired = json.loads((out / "paired.json").read_text())
    na = [r for r in paired if r["executor"] == "naive_async"]
    assert na and all(r["diff"] == 0 and r["units"] == 4 for r in na)  # paired with itself: exactly 0
    # a second run finds every cell and trains nothing
    stamp = (out / "cells/catch/flow/s0/bid_n0_d0.json").stat().st_mtime_ns
    again = _run([str(exp), "--out", str(out)], tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / "cells/catch/flow/s0/bid_n0_d0.json").stat().st_mtime_ns == stamp
    # with fewer evaluation episodes asked, every seed's cell contributes its first ones (by seed)
    from robolearn.experiments import load_experiment
    from robolearn.experiments.delay import check_sweep, results

    fewer = load_experiment(exp, ["eval.episodes=3"])
    rows3 = results(fewer, check_sweep(fewer), out)
    assert len(rows3) == len(rows) and all(r["episodes"] == 3 for r in rows3)
    eps = sorted(cell["episodes"], key=lambda e: e["seed"])[:3]
    mine = next(r for r in rows3 if (r["variant"], r["executor"], r["noise"], r["delay"]) == ("flow", "rtc", 0.1, 2))
    assert mine["successes"] == sum(e["success"] for e in eps)


@pytest.mark.parametrize(
    "delays,words", [("[-1]", ["sweep.delays", "-1"]), ("[0, 5]", ["sweep.executors.", "delay 5"])]
)
def test_a_bad_sweep_is_one_line_before_any_work(tmp_path, delays, words):
    exp = tmp_path / "bad.yaml"
    exp.write_text(EXPERIMENT.format(delays=delays))
    r = _run([str(exp), "--out", str(tmp_path / "out")], tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert all(w in r.stderr for w in words), r.stderr
    assert not (tmp_path / "out" / "data").exists()  # nothing collected
    if delays == "[-1]":
        exp.write_text(EXPERIMENT.format(delays="[0]"))
        r = _run([str(exp), "--out", str(tmp_path / "out"), "--variants", "nope"], tmp_path)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "--variants ['nope']: not in the experiment's variants ['flow', 'flow_given']" in r.stderr
        assert not (tmp_path / "out").exists()


def test_horizons_all_runs_every_execution_horizon_and_keeps_the_default_cells(tmp_path):
    """``sweep.horizons: all`` runs s = max(d, 1) .. H - d (the RTC paper's sweep); the cell at the
    default s keeps the name it has without the sweep, so a finished delay experiment is reused."""
    from robolearn.experiments.delay import _cell_file, horizons_at

    assert horizons_at({"name": "naive_async"}, 0, 4, "all") == [1, 2, 3, 4]
    assert horizons_at({"name": "rtc"}, 1, 4, "all") == [1, 2, 3]
    assert horizons_at({"name": "rtc"}, 2, 4, "min") == [2]
    assert horizons_at({"name": "ensemble"}, 2, 4, "all") == [None]
    assert _cell_file(tmp_path, "v", "t", 0, 0.0, "rtc", 2, 2).name == "rtc_n0_d2.json"
    assert _cell_file(tmp_path, "v", "t", 0, 0.0, "rtc", 2, 3).name == "rtc_n0_d2_s3.json"

    text = (
        EXPERIMENT.format(delays="[1]")
        .replace("noise: [0.0, 0.1]", "noise: [0.0]\n  horizons: all")
        .replace("policy.head.num_steps=2]", "policy.head.num_steps=2, policy.horizon=4, policy.n_action_steps=2]")
        .replace("    bid: {name: bid, n_samples: 2}\n", "    ensemble: {name: ensemble}\n")
    )
    exp = tmp_path / "horizons.yaml"
    exp.write_text(text)
    out = tmp_path / "out"
    r = _run([str(exp), "--out", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    got = {(r["variant"], r["executor"], r["s"]) for r in rows}
    # H = 4, d = 1: s in 1..3 for naive async and RTC; ensembling has no s; flow_given runs RTC only
    assert got == {
        *{("flow", "naive_async", str(s)) for s in (1, 2, 3)},
        *{("flow", "rtc", str(s)) for s in (1, 2, 3)},
        ("flow", "ensemble", ""),
        *{("flow_given", "rtc", str(s)) for s in (1, 2, 3)},
    }
    cells = out / "cells/catch/flow/s0"
    assert {p.name for p in cells.glob("rtc_*")} == {"rtc_n0_d1.json", "rtc_n0_d1_s2.json", "rtc_n0_d1_s3.json"}
    assert json.loads((cells / "rtc_n0_d1_s3.json").read_text())["exec"]["s"] == 3
    md = (out / "results.md").read_text()
    assert "Success against the execution horizon s" in md and "| s = 3 |" in md
    assert (out / "horizons.png").stat().st_size > 5000
    # a bad value is one line before any work
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("horizons: all", "horizons: some"))
    r = _run([str(bad), "--out", str(tmp_path / "out2")], tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "sweep.horizons" in r.stderr and "'some'" in r.stderr


def test_paired_statistics_pair_by_unit_and_average_over_s(tmp_path):
    """The RTC paper's headline with common random numbers: each executor's solve rate averaged over
    its execution horizons s, and the difference to naive async paired by (training seed, evaluation
    seed). Known answers: an executor identical to the baseline on every episode differs by exactly
    0 with a zero-width interval (an unpaired bootstrap would give a wide one); one that adds 10
    successes on 40 units differs by 0.25 with an interval above 0; a unit's value is its mean over s."""
    import numpy as np

    from robolearn.experiments import load_experiment
    from robolearn.experiments.delay import _cell_file, check_sweep, paired_rows
    from robolearn.experiments.report import paired_markdown

    text = (
        EXPERIMENT.format(delays="[1]")
        .replace("seeds: [0]", "seeds: [0, 1]")
        .replace("episodes: 4, n_envs: 2", "episodes: 20, n_envs: 10")
        .replace("noise: [0.0, 0.1]", "noise: [0.0]\n  horizons: all")
        .replace("policy.head.num_steps=2]", "policy.head.num_steps=2, policy.horizon=4, policy.n_action_steps=2]")
    )
    exp_file = tmp_path / "paired.yaml"
    exp_file.write_text(text)
    exp = load_experiment(exp_file)
    sweep = check_sweep(exp)
    out = tmp_path / "out"
    rng = np.random.default_rng(0)
    base = {sd: rng.random((3, 20)) < 0.5 for sd in (0, 1)}  # naive async: success per (s, episode)

    def write(label, sd, s, success):
        eps = [{"seed": 100000 + i, "success": bool(x)} for i, x in enumerate(success)]
        f = _cell_file(out, "flow", "catch", sd, 0.0, label, 1, s)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps({"episodes": eps}))

    for sd in (0, 1):
        for i, s in enumerate((1, 2, 3)):
            write("naive_async", sd, s, base[sd][i])
            write("rtc", sd, s, base[sd][i])  # the same episodes: identical to the baseline
            write("bid", sd, s, np.ones(20) if i == 0 else np.zeros(20))  # mean over s: 1/3 per unit
    rows = {r["executor"]: r for r in paired_rows(exp, sweep, out) if r["variant"] == "flow"}
    assert rows["naive_async"]["units"] == 40
    assert np.isclose(rows["naive_async"]["solve_rate"], np.mean([base[0], base[1]]))
    assert rows["rtc"]["diff"] == 0 and rows["rtc"]["diff_lo"] == 0 and rows["rtc"]["diff_hi"] == 0
    assert np.isclose(rows["bid"]["solve_rate"], 1 / 3)

    # 10 units where every s of the baseline failed now succeed at every s: +10/40 = 0.25
    units_mean = {sd: base[sd].mean(0) for sd in (0, 1)}
    lifted = [(sd, i) for sd in (0, 1) for i in range(20) if units_mean[sd][i] < 1][:10]
    better = {sd: base[sd].copy() for sd in (0, 1)}
    gain = 0.0
    for sd, i in lifted:
        gain += 1 - units_mean[sd][i]
        better[sd][:, i] = True
    for sd in (0, 1):
        for i, s in enumerate((1, 2, 3)):
            write("rtc", sd, s, better[sd][i])
    rtc = next(r for r in paired_rows(exp, sweep, out) if (r["variant"], r["executor"]) == ("flow", "rtc"))
    assert np.isclose(rtc["diff"], gain / 40) and rtc["diff_lo"] > 0
    # the re-sampled variant (rtc only) is paired with its model's naive async cells
    for sd in (0, 1):
        for s in (1, 2, 3):
            f = _cell_file(out, "flow_given", "catch", sd, 0.0, "rtc", 1, s)
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(_cell_file(out, "flow", "catch", sd, 0.0, "naive_async", 1, s).read_text())
    given = next(r for r in paired_rows(exp, sweep, out) if r["variant"] == "flow_given")
    assert given["units"] == 40 and given["diff"] == 0
    assert "| catch | 0 | flow | rtc |" in paired_markdown(paired_rows(exp, sweep, out))
