"""Data-parallel training and sharded work under real ``torchrun`` (gloo, 2 CPU processes):
a 2-rank run writes its run directory from rank 0 alone, reloads in a fresh process and resumes
bit-exactly after SIGKILL; sharded evaluation equals the single-process one episode by episode;
a 2-rank ablation trains every model once; bad launches stop with one line."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TRAIN = [
    "task=fetch_reach",
    "algo.batch_size=32",
    "algo.log_every=10",
    "algo.ckpt_every=20",
    "algo.val_every=20",
    "algo.warmup_steps=5",
    "device=cpu",
]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl", "PYTHONPATH": str(Path(__file__).parents[1])}


def torchrun(*args: str, n: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={n}",
        "-m",
        "robolearn",
        *args,
    ]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)


def plain(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robolearn", *args], env=_env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def reach(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "reach.zarr"
    r = plain("collect", "fetch_reach", "--episodes", "12", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def ddp_run(reach, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ddp") / "run"
    r = torchrun("train", *TRAIN, f"data={reach}", f"run_dir={run}", "algo.steps=60")
    assert r.returncode == 0, r.stderr[-2000:]
    return run


def _weights(ckpt: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(ckpt / "model.safetensors"))


def test_two_rank_run_writes_once_and_reloads_in_a_fresh_process(ddp_run):
    assert sorted(p.name for p in ddp_run.iterdir()) == sorted(
        ["checkpoints", "config.yaml", "loss.png", "resume", "tb", "train_history.json", "train_summary.json"]
    )
    assert len(list((ddp_run / "tb").iterdir())) == 1  # one TensorBoard writer: rank 0's
    assert not list(ddp_run.rglob("*.tmp"))
    summary = json.loads((ddp_run / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 60
    hist = json.loads((ddp_run / "train_history.json").read_text())
    assert [h["step"] for h in hist] == [10, 20, 30, 40, 50, 60]
    code = (
        "import sys, numpy as np; from robolearn.policy import ChunkPolicy; p = ChunkPolicy.load(sys.argv[1]);"
        "print(p.predict_chunk({'state': np.zeros((1, p.obs_horizon, 13), np.float32)}).shape)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ddp_run / "checkpoints" / "last")],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().startswith("(1, ")


def test_killed_two_rank_run_resumes_bit_exactly(reach, ddp_run, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "robolearn",
        "train",
        *TRAIN,
        f"data={reach}",
        f"run_dir={run}",
        "algo.steps=60",
    ]
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and not (run / "resume" / "state.pt").exists():
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks, no cleanup
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (run / "train_summary.json").exists()
    r = torchrun("train", *TRAIN, f"data={reach}", f"run_dir={run}", "algo.steps=60")
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = _weights(run / "checkpoints" / "last"), _weights(ddp_run / "checkpoints" / "last")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_sharded_evaluation_equals_single_process(ddp_run, tmp_path):
    r2 = torchrun(
        "eval", str(ddp_run), "--episodes", "5", "--n-envs", "2", "--videos", "0", "--out", str(tmp_path / "two")
    )
    r1 = plain(
        "eval", str(ddp_run), "--episodes", "5", "--n-envs", "2", "--videos", "0", "--out", str(tmp_path / "one")
    )
    assert r1.returncode == 0 and r2.returncode == 0, (r1.stderr[-1000:], r2.stderr[-1000:])
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert [e["seed"] for e in two["episodes"]] == list(range(100_000, 100_005))
    assert one["episodes"] == two["episodes"]


TINY = """
name: tiny_ddp
seeds: [0]
train: [algo.steps=20, algo.batch_size=32, algo.warmup_steps=5, algo.log_every=10, algo.val_every=20,
        algo.ckpt_every=10, device=cpu]
eval: {episodes: 2, n_envs: 2}
tasks:
  reach: {overrides: [task=fetch_reach], collect: {episodes: 4}}
variants:
  regression: {train: [policy=regression]}
  mdn: {train: [policy=mdn]}
  mdn_mode: {from: mdn, sample: {eval_mode: mode}}
  mlp_wide: {train: [policy=regression, "policy.head.hidden=[64,64]"]}
"""


def test_two_rank_ablation_trains_each_model_once(tmp_path):
    exp = tmp_path / "tiny.yaml"
    exp.write_text(TINY)
    out = tmp_path / "out"
    r = torchrun("ablate", str(exp), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    trained = sorted(p.parents[2].name for p in out.glob("train/*/reach/s0/tb"))
    assert trained == ["mdn", "mlp_wide", "regression"]
    for tb in out.glob("train/*/reach/s0/tb"):
        assert len(list(tb.iterdir())) == 1, f"{tb}: trained more than once"
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["variant"] for r in rows) == ["mdn", "mdn_mode", "mlp_wide", "regression"]


DELAY = """
name: tiny_delay_ddp
seeds: [0, 1]
train: [algo.steps=20, algo.batch_size=32, algo.ckpt_every=20, algo.val_every=20, algo.warmup_steps=5, device=cpu]
eval: {episodes: 2, n_envs: 2, seed_start: 100000}
tasks:
  catch: {overrides: [task=catch], collect: {episodes: 6}}
variants:
  flow:
    train: [policy=flow, "policy.head.down_dims=[16,32]", policy.head.prefix_conditioning=2, policy.head.num_steps=2]
  flow_given: {from: flow, sample: {inpaint: given}, executors: [rtc]}
sweep:
  delays: [0, 1]
  noise: [0.1]
  executors:
    naive_async: {name: naive_async}
    rtc: {name: rtc}
"""


def test_two_rank_delay_sweep_splits_the_models_and_pools_the_tables(tmp_path):
    """torchrun over `robolearn delay`: each rank takes whole trained models (a model and the
    variants re-sampled from it stay together), each model is trained once, and the tables that
    rank 0 writes at the end cover every cell of both ranks."""
    exp = tmp_path / "tiny.yaml"
    exp.write_text(DELAY)
    out = tmp_path / "out"
    r = torchrun("delay", str(exp), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    for sd in (0, 1):
        tb = out / f"train/flow/catch/s{sd}/tb"
        assert len(list(tb.iterdir())) == 1, f"{tb}: trained more than once"
    assert not (out / "train/flow_given").exists()
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    # flow: 2 executors x 2 delays, flow_given: rtc x 2 delays; both seeds pooled in every row
    assert len(rows) == 6 and all(int(row["seeds"]) == 2 and int(row["episodes"]) == 4 for row in rows)


def test_batch_not_divisible_by_world_size_is_one_line(reach, tmp_path):
    r = torchrun("train", *TRAIN, f"data={reach}", f"run_dir={tmp_path / 'run'}", "algo.steps=5", "algo.batch_size=33")
    assert r.returncode != 0
    mine = [ln for ln in r.stderr.splitlines() if ln.startswith("robolearn train")]
    assert mine and all("algo.batch_size" in ln and "33" in ln for ln in mine), r.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_resume_with_another_world_size_is_one_line(ddp_run, reach):
    r = plain("train", *TRAIN, f"data={reach}", f"run_dir={ddp_run}", "algo.steps=80", "--continue-with-new-settings")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "2 process(es)" in r.stderr and "this one has 1" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_dying_rank_stops_the_others(reach, tmp_path):
    """Rank 1 is killed mid-run: the launch ends (non-zero) within a bounded time, not a hang."""
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "robolearn",
        "train",
        *TRAIN,
        f"data={reach}",
        f"run_dir={run}",
        "algo.steps=100000",
        "algo.ckpt_every=50",
        "dist_timeout_s=60",
    ]
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not (run / "resume" / "state.pt").exists():
            time.sleep(0.05)
        ranks = subprocess.run(["pgrep", "-f", f"run_dir={run}"], capture_output=True, text=True).stdout.split()
        workers = [int(p) for p in ranks if int(p) != proc.pid]
        assert len(workers) == 2, ranks
        os.kill(max(workers), signal.SIGKILL)  # the later-started rank
        out, _ = proc.communicate(timeout=300)  # a hang fails here (TimeoutExpired); no speed is asserted
        assert proc.returncode != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_dagger_rounds_train_with_ddp(tmp_path):
    """Under torchrun rank 0 collects and evaluates; every round's training is data-parallel."""
    run = tmp_path / "dagger"
    r = torchrun(
        "dagger",
        "task=fetch_reach",
        f"run_dir={run}",
        "algo.rounds=1",
        "algo.demo_episodes=4",
        "algo.episodes_per_round=3",
        "algo.steps=20",
        "algo.batch_size=16",
        "algo.heldout_episodes=2",
        "algo.eval_episodes=2",
        "eval.n_envs=2",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    prog = json.loads((run / "progress.json").read_text())
    assert prog["completed_round"] == 1
    for rnd in ("round_00", "round_01"):
        summary = json.loads((run / rnd / "train" / "train_summary.json").read_text())
        assert summary["world_size"] == 2


def test_one_ddp_step_is_the_average_of_the_ranks_gradients_on_their_own_windows(reach, tmp_path):
    """One optimizer step under torchrun (2 ranks, global batch 8), replayed by hand in this
    process: the same initial weights (seed), rank r's 4 windows drawn from its own stream
    default_rng([seed, r]), the two ranks' gradients averaged, clipped, one AdamW step at the
    warm-up learning rate. The raw weights the launch saved equal the replay; replaying with
    only rank 0's gradient, or with rank 0's windows on both ranks, does not. Catches gradients
    that are not all-reduced and ranks that draw the same windows."""
    import torch

    from robolearn.config import compose, to_dict
    from robolearn.policy import ChunkPolicy
    from robolearn.train.trainer import DataBundle, lr_lambda, make_optimizer, seed_everything, to_torch

    args = ["task=fetch_reach", f"data={reach}", "algo.batch_size=8", "algo.steps=1", "algo.warmup_steps=1",
            "algo.log_every=1", "algo.ckpt_every=1", "policy.head.dropout=0.0", "device=cpu", "seed=5"]  # fmt: skip
    run = tmp_path / "run"
    r = torchrun("train", *args, f"run_dir={run}")
    assert r.returncode == 0, r.stderr[-2000:]
    saved = torch.load(run / "resume" / "state.pt", weights_only=True)["model"]

    cfg = compose(args)
    data = DataBundle(cfg, reach)

    def replay(windows_of_rank, ranks_counted):
        seed_everything(5)
        policy = ChunkPolicy(to_dict(cfg.policy), data.obs_spec, data.action_dim, data.normalizer)
        opt = make_optimizer(policy, cfg.algo)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(1, 1))
        grads = []
        for rank in ranks_counted:
            policy.zero_grad(set_to_none=True)
            batch = data.batch(data.train, 4, np.random.default_rng([5, windows_of_rank(rank)]))
            policy.compute_loss(to_torch(batch, torch.device("cpu")))["loss"].backward()
            grads.append([None if p.grad is None else p.grad.clone() for p in policy.parameters()])
        for p, *gs in zip(policy.parameters(), *grads):
            p.grad = None if gs[0] is None else sum(gs) / len(gs)  # unused parameters (token maps) get none
        torch.nn.utils.clip_grad_norm_(policy.parameters(), float(cfg.algo.grad_clip))
        opt.step()
        sched.step()
        return policy.state_dict()

    def max_diff(state):
        return max(float((state[k] - v).abs().max()) for k, v in saved.items() if not k.startswith("normalizer."))

    assert max_diff(replay(lambda rank: rank, [0, 1])) < 1e-6
    assert max_diff(replay(lambda rank: rank, [0])) > 1e-5  # no all-reduce: rank 0's own step
    assert max_diff(replay(lambda rank: 0, [0, 1])) > 1e-5  # both ranks on the same windows
