"""A corpus of malformed datasets, checkpoints, resume states and option sets, each run through
the command a user would run (`inspect`, `train`, `eval`): every case must end with exactly one
line on stderr, a non-zero exit, no traceback, and no file changed or created.

    python -m pytest -q tests/test_fault_corpus.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from robolearn.cli import main
from tests.test_data_errors import build

STATE, ACT = 13, 4  # fetch_reach: observation ++ goal, 4-D actions


def _good(n: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "state": rng.normal(size=(n, STATE)).astype(np.float32),
        "action": rng.uniform(-1, 1, (n, ACT)).astype(np.float32),
    }


def datasets(root: Path) -> dict[str, Path]:
    """Malformed stores (and one good one, ``good``), each a directory under ``root``."""
    d: dict[str, Path] = {}

    def mk(name, ends=(5, 12), arrays=None, **kw):
        d[name] = build(root / f"{name}.zarr", list(ends), _good() if arrays is None else arrays, **kw)
        return d[name]

    mk("good")
    plain = root / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not a dataset")
    d["not_a_store"] = plain
    d["no_such_path"] = root / "nothing_here.zarr"
    g = _good()
    mk("missing_action", arrays={"state": g["state"]})
    mk("missing_state", arrays={"action": g["action"]})
    mk("short_array", arrays={"state": g["state"][:7], "action": g["action"]})
    mk("ends_not_increasing", ends=(7, 5, 12))
    mk("ends_negative", ends=(-3, 12))
    mk("empty", ends=np.zeros(0, np.int64), arrays={"action": np.zeros((0, ACT), np.float32)})
    mk("no_data_group", with_data=False)
    mk("no_episode_ends", with_ends=False)
    nan = _good()
    nan["action"][4, 1] = np.nan
    mk("nan_action", arrays=nan)
    inf = _good()
    inf["state"][9, 0] = np.inf
    mk("inf_state", arrays=inf)
    huge = _good()
    huge["state"][3, 2] = 1e29
    mk("huge_state", arrays=huge)
    f64 = {"state": _good()["state"].astype(np.float64), "action": _good()["action"]}
    f64["state"][6, 0] = 1e300
    mk("float64_beyond_float32", arrays=f64)
    mk("action_1d", arrays={"state": g["state"], "action": g["action"][:, 0]})
    mk("action_too_wide", arrays={"state": g["state"], "action": np.zeros((12, 7), np.float32)})
    mk("state_too_narrow", arrays={"state": g["state"][:, :5], "action": g["action"]})
    mk("state_3d", arrays={"state": g["state"].reshape(12, 13, 1), "action": g["action"]})
    mk("strings", arrays={"state": np.array(["x"] * 12), "action": g["action"]})
    mk("gray_image_as_state", arrays={"state": np.zeros((12, 96, 96), np.uint8), "action": g["action"]})
    mk("rgb_image_as_state", arrays={"state": np.zeros((12, 8, 8, 3), np.uint8), "action": g["action"]})
    p = mk("missing_chunk")
    next((p / "data" / "state" / "c").rglob("*")).is_file() or None
    for f in sorted((p / "data" / "state" / "c").rglob("*")):
        if f.is_file():
            f.unlink()
            break
    p = mk("corrupt_chunk")
    for f in sorted((p / "data" / "action" / "c").rglob("*")):
        if f.is_file():
            f.write_bytes(b"\x00garbage" * 3)
            break
    p = mk("truncated_chunk")
    for f in sorted((p / "data" / "action" / "c").rglob("*")):
        if f.is_file():
            f.write_bytes(f.read_bytes()[:9])
            break
    p = mk("ends_truncated")
    for f in sorted((p / "meta" / "episode_ends" / "c").rglob("*")):
        if f.is_file():
            f.write_bytes(f.read_bytes()[:5])
            break
    p = mk("corrupt_array_metadata")
    (p / "data" / "state" / "zarr.json").write_text("{not json")
    p = mk("corrupt_group_metadata")
    (p / "zarr.json").write_text("[1, 2")
    p = build(root / "v2_bad_zarray.zarr", [5, 12], _good(), zarr_format=2)
    (p / "data" / "state" / ".zarray").write_text("{broken")
    d["v2_corrupt_zarray"] = p
    p = build(root / "v2_unknown_dtype.zarr", [5, 12], _good(), zarr_format=2)
    meta = json.loads((p / "data" / "state" / ".zarray").read_text())
    (p / "data" / "state" / ".zarray").write_text(json.dumps({**meta, "dtype": "<x9"}))
    d["v2_unknown_dtype"] = p
    return d


DATASET_CASES = [
    "not_a_store",
    "no_such_path",
    "missing_action",
    "missing_state",
    "short_array",
    "ends_not_increasing",
    "ends_negative",
    "empty",
    "no_data_group",
    "no_episode_ends",
    "nan_action",
    "inf_state",
    "huge_state",
    "float64_beyond_float32",
    "action_1d",
    "action_too_wide",
    "state_too_narrow",
    "state_3d",
    "strings",
    "gray_image_as_state",
    "rgb_image_as_state",
    "missing_chunk",
    "corrupt_chunk",
    "truncated_chunk",
    "ends_truncated",
    "corrupt_array_metadata",
    "corrupt_group_metadata",
    "v2_corrupt_zarray",
    "v2_unknown_dtype",
]
# The words each case's one line must hold: the key (or option) at fault and what was found, so a
# wrong message (about another key, or a generic one) fails the case, not only a second line.
WORDS = {
    "not_a_store": ["plain", "zarr group"],
    "no_such_path": ["nothing_here.zarr", "at this path"],
    "missing_action": ["'data/action'", "found only ['state']"],
    "missing_state": ["'data/state'", "found only ['action']"],
    "short_array": ["'data/state'", "at least 12 rows", "found 7 rows"],
    "ends_not_increasing": ["'meta/episode_ends'", "strictly increasing", "5 after 7"],
    "ends_negative": ["'meta/episode_ends'", "non-negative", "-3"],
    "empty": ["'meta/episode_ends'", "integer", "float64"],
    "no_data_group": ["key 'data'", "found nothing"],
    "no_episode_ends": ["'meta/episode_ends'", "found nothing"],
    "nan_action": ["'data/action'", "finite", "row 4"],
    "inf_state": ["'data/state'", "finite", "row 9"],
    "huge_state": ["'data/state'", "1e+06", "1e+29", "row 3"],
    "float64_beyond_float32": ["'data/state'", "1e+300", "row 6"],
    "action_1d": ["'action'", "(N, 4)", "(N, )"],
    "action_too_wide": ["'action'", "(N, 4)", "(N, 7)"],
    "state_too_narrow": ["'state'", "(13,)", "(5,)"],
    "state_3d": ["'state'", "(13,)", "(13, 1)"],
    "strings": ["'data/state'", "numeric", "<U1"],
    "gray_image_as_state": ["'state'", "(13,)", "(96, 96)"],
    "rgb_image_as_state": ["'state'", "(13,)", "image", "(8, 8, 3)"],
    "missing_chunk": ["'data/state'", "data/state/c/0/0", "missing"],
    "corrupt_chunk": ["'data/action'", "data/action/c/0/0", "corrupt"],
    "truncated_chunk": ["'data/action'", "data/action/c/0/0", "corrupt"],
    "ends_truncated": ["'meta/episode_ends'", "corrupt chunk"],
    "corrupt_array_metadata": ["key 'data'", "metadata", "JSONDecodeError"],
    "corrupt_group_metadata": ["zarr group", "JSONDecodeError"],
    "v2_corrupt_zarray": ["key 'data'", "metadata", "JSONDecodeError"],
    "v2_unknown_dtype": ["key 'data'", "metadata", "<x9"],
}

INSPECT_CASES = [
    c
    for c in DATASET_CASES
    if c
    not in (
        # well-formed stores whose values or widths only the task can judge: inspect describes them
        "huge_state",
        "float64_beyond_float32",
        "action_1d",
        "action_too_wide",
        "state_too_narrow",
        "state_3d",
        "gray_image_as_state",
        "rgb_image_as_state",
        "missing_action",
        "missing_state",
    )
]

OPTION_CASES = {  # options -> the words of their one line
    "algo.stepz=5": ["'algo.stepz'", "did you mean 'algo.steps'"],
    "foo=1": ["'foo'", "unknown key"],
    "algo.steps=20.7": ["algo.steps", "positive int", "20.7"],
    "algo.steps=true": ["algo.steps", "positive int", "True"],
    "algo.ema_decay=2": ["algo.ema_decay", "[0, 1)", "int 2"],
    "algo.steps=0": ["algo.steps", "positive int", "int 0"],
    "algo.steps=-5": ["algo.steps", "positive int", "-5"],
    "algo.batch_size=0": ["algo.batch_size", "int 0"],
    "algo.ckpt_every=0": ["algo.ckpt_every", "int 0"],
    "algo.log_every=0": ["algo.log_every", "int 0"],
    "algo.lr=-1": ["algo.lr", "> 0", "-1"],
    "algo.steps=abc": ["algo.steps", "'abc'"],
    "device=tpu": ["device", "cuda", "'tpu'"],
    "policy.n_action_steps=0": ["policy.n_action_steps", "int 0"],
    "policy.horizn=3": ["'policy.horizn'", "did you mean 'policy.horizon'"],
    "algo=dagger": ["algo=dagger", "robolearn dagger"],
    "policy.head.name=nope": ["'nope'", "known heads", "flow"],
    "policy=nope": ["policy=nope", "choose one of", "flow"],
    "task=nope": ["task=nope", "choose one of", "fetch_reach"],
    "algo.eval_every=0": ["algo.eval_every", "int 0"],
    "eval.episodes=0": ["eval.episodes", "int 0"],
    "recipe=nope": ["recipe=nope", "pusht_image_cpu"],
    "policy.head.hidden=abc": ["policy.head", "'regression'"],
    "--eval-episodes -3": ["--eval-episodes", "-3"],
    "algo.lr=${nope}": ["'algo.lr'", "'nope'", "interpolation"],
    "policy.aux_key=nope": ["policy.aux_key", "'data/nope'", "found only keys"],
}

CKPT_CASES = {  # broken checkpoint -> (file at fault, words)
    "no_checkpoint": ("", ["not a robolearn checkpoint", "config.json"]),
    "weights_empty": ("model.safetensors", ["safetensors weights", "unreadable"]),
    "weights_truncated": ("model.safetensors", ["safetensors weights", "unreadable"]),
    "weights_not_safetensors": ("model.safetensors", ["safetensors weights", "unreadable"]),
    "weights_missing": ("model.safetensors", ["safetensors weights", "found nothing"]),
    "config_invalid_json": ("config.json", ["expected JSON", "invalid"]),
    "config_list": ("config.json", ["JSON object", "found list"]),
    "config_no_obs_spec": ("config.json", ["'obs_spec'", "missing"]),
    "config_action_dim_str": ("config.json", ["'action_dim'", "expected int", "found str"]),
    "config_bad_obs_shape": ("config.json", ["'obs_spec.state'", "'13'"]),
    "config_no_head": ("config.json", ["'policy.head'", "None"]),
    "config_no_task": ("config.json", ["'task.name'", "no task"]),
    "config_n_action_steps_0": ("config.json", ["policy.n_action_steps", "got 0"]),
    "weights_wrong_shape": ("model.safetensors", ["do not match", "(512,)", "(520,)"]),
    "normalizer_missing": ("normalizer.safetensors", ["normalizer", "found nothing"]),
    "normalizer_garbage": ("normalizer.safetensors", ["normalizer", "unreadable"]),
}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors exit 2 with a usage line
        rc = int(e.code or 0)
    err = capsys.readouterr().err
    return rc, err


def assert_clean_failure(rc: int, err: str, before: dict, after: dict, case: str, words: list[str]) -> None:
    """Non-zero exit, no traceback, exactly one line holding every one of ``words`` (the key at fault
    and what was found), and no file created or changed."""
    assert rc != 0, f"{case}: accepted silently"
    assert "Traceback" not in err, f"{case}: traceback\n{err}"
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("usage:")]
    assert len(lines) == 1, f"{case}: expected one line, found {len(lines)}:\n{err}"
    missing = [w for w in words if w not in lines[0]]
    assert words and not missing, f"{case}: the line lacks {missing}: {lines[0]}"
    assert before == after, f"{case}: files changed: {set(after) ^ set(before) or 'contents'}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, datasets(root)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus):
    """A good checkpoint and a finished run directory (trained in-process, 5 steps)."""
    from robolearn.config import compose
    from robolearn.train.trainer import train

    _, d = corpus
    run_dir = tmp_path_factory.mktemp("good") / "run"
    cfg = compose(["task=fetch_reach", f"data={d['good']}", f"run_dir={run_dir}", "algo.steps=5", "algo.batch_size=4"])
    train(cfg, run_dir, progress=False)
    return run_dir


@pytest.mark.parametrize("case", DATASET_CASES)
def test_train_on_malformed_data(corpus, case, capsys, tmp_path):
    root, d = corpus
    before = snapshot(root) | snapshot(tmp_path)
    rc, err = run(
        ["train", "task=fetch_reach", f"data={d[case]}", f"run_dir={tmp_path / 'run'}", "algo.steps=2"], capsys
    )
    assert_clean_failure(rc, err, before, snapshot(root) | snapshot(tmp_path), case, [str(d[case]), *WORDS[case]])


@pytest.mark.parametrize("case", INSPECT_CASES)
def test_inspect_malformed_data(corpus, case, capsys):
    root, d = corpus
    before = snapshot(root)
    rc, err = run(["inspect", "--verify", str(d[case])], capsys)
    assert rc != 0 and "Traceback" not in err, f"{case}: rc {rc}\n{err}"
    assert snapshot(root) == before
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and all(str(d[case]) in ln for ln in lines), f"{case}:\n{err}"
    if case not in ("missing_chunk",):  # --verify lists every missing chunk in its own words
        assert all(w in lines[0] for w in WORDS[case]), f"{case}: {lines[0]}"


DAMAGED = ["missing_chunk", "corrupt_chunk", "truncated_chunk", "ends_truncated"]


@pytest.mark.parametrize("case", DAMAGED)
def test_plain_inspect_of_damaged_data_is_one_line_not_fill_values(corpus, case, capsys):
    """Without --verify too: a deleted chunk is not described as statistics of zeros, an
    undecodable one is not a codec traceback."""
    root, d = corpus
    before = snapshot(root)
    rc, err = run(["inspect", str(d[case])], capsys)
    assert_clean_failure(rc, err, before, snapshot(root), case, [str(d[case]), *WORDS[case]])


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_train_with_bad_options(corpus, case, capsys, tmp_path):
    root, d = corpus
    before = snapshot(tmp_path)
    rc, err = run(
        ["train", "task=fetch_reach", f"data={d['good']}", f"run_dir={tmp_path / 'run'}", *case.split()], capsys
    )
    assert_clean_failure(rc, err, before, snapshot(tmp_path), case, OPTION_CASES[case])


def test_run_dir_that_is_a_file(corpus, capsys, tmp_path):
    _, d = corpus
    (tmp_path / "run").write_text("mine")
    before = snapshot(tmp_path)
    rc, err = run(
        ["train", "task=fetch_reach", f"data={d['good']}", f"run_dir={tmp_path / 'run'}", "algo.steps=2"], capsys
    )
    assert_clean_failure(rc, err, before, snapshot(tmp_path), "run_dir file", [str(tmp_path / "run"), "found a file"])


def test_run_dir_where_nothing_can_be_written(corpus, capsys, tmp_path):
    """/proc takes no new files (not even root's): the lock file cannot be made."""
    _, d = corpus
    rc, err = run(
        ["train", "task=fetch_reach", f"data={d['good']}", "run_dir=/proc/robolearn_x", "algo.steps=2"], capsys
    )
    assert_clean_failure(rc, err, {}, {}, "run_dir /proc", ["/proc/robolearn_x", "lock file", "no such file"])


def broken_checkpoint(src: Path, dst: Path, case: str) -> Path:
    if case == "no_checkpoint":
        dst.mkdir()
        return dst
    shutil.copytree(src, dst)
    cfg = dst / "config.json"
    meta = json.loads(cfg.read_text())
    w = dst / "model.safetensors"
    if case == "weights_empty":
        w.write_bytes(b"")
    elif case == "weights_truncated":
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    elif case == "weights_not_safetensors":
        w.write_text("hello, not weights")
    elif case == "weights_missing":
        w.unlink()
    elif case == "config_invalid_json":
        cfg.write_text("{oops")
    elif case == "config_list":
        cfg.write_text("[1, 2, 3]")
    elif case == "config_no_obs_spec":
        cfg.write_text(json.dumps({k: v for k, v in meta.items() if k != "obs_spec"}))
    elif case == "config_action_dim_str":
        cfg.write_text(json.dumps({**meta, "action_dim": "4"}))
    elif case == "config_bad_obs_shape":
        cfg.write_text(
            json.dumps({**meta, "obs_spec": {"state": {"shape": "13", "dtype": "float32", "kind": "lowdim"}}})
        )
    elif case == "config_no_task":
        cfg.write_text(json.dumps({k: v for k, v in meta.items() if k != "task"}))
    elif case == "config_n_action_steps_0":
        cfg.write_text(json.dumps({**meta, "policy": {**meta["policy"], "n_action_steps": 0}}))
    elif case == "config_no_head":
        cfg.write_text(json.dumps({**meta, "policy": {k: v for k, v in meta["policy"].items() if k != "head"}}))
    elif case == "weights_wrong_shape":
        hidden = meta["policy"]["head"]["hidden"]
        meta["policy"]["head"]["hidden"] = [h + 8 for h in hidden]
        cfg.write_text(json.dumps(meta))
    elif case == "normalizer_missing":
        (dst / "normalizer.safetensors").unlink()
    elif case == "normalizer_garbage":
        (dst / "normalizer.safetensors").write_bytes(b"\x01" * 40)
    return dst


@pytest.mark.parametrize("case", CKPT_CASES)
def test_eval_of_a_broken_checkpoint(trained, case, capsys, tmp_path):
    ckpt = broken_checkpoint(trained / "checkpoints" / "last", tmp_path / "ckpt", case)
    before = snapshot(tmp_path)
    rc, err = run(["eval", str(ckpt), "--episodes", "1", "--videos", "0", "--out", str(tmp_path / "out")], capsys)
    where, words = CKPT_CASES[case]
    assert_clean_failure(rc, err, before, snapshot(tmp_path), case, [str(ckpt / where), *words])


@pytest.mark.parametrize("case", ["empty", "truncated", "foreign"])
def test_resume_from_a_broken_state(trained, corpus, case, capsys, tmp_path):
    _, d = corpus
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    (run_dir / "train_summary.json").unlink()  # unfinished: the next start resumes
    st = run_dir / "resume" / "state.pt"
    if case == "empty":
        st.write_bytes(b"")
    elif case == "truncated":
        st.write_bytes(st.read_bytes()[:100])
    else:
        import torch

        torch.save({"hello": 1}, st)
    before = snapshot(tmp_path)
    rc, err = run(
        ["train", "task=fetch_reach", f"data={d['good']}", f"run_dir={run_dir}", "algo.steps=5", "algo.batch_size=4"],
        capsys,
    )
    assert_clean_failure(
        rc, err, before, snapshot(tmp_path), case, [str(st), "resume state" if case != "foreign" else "keys"]
    )


EVAL_OPTION_CASES = {
    "--episodes 0": ["--episodes", ">= 1", "0"],
    "--episodes -2": ["--episodes", "-2"],
    "--n-envs 0": ["--n-envs", ">= 1"],
    "--exec nope": ["exec=nope", "receding"],
    "--exec rtc s=-1": ["exec.s", "-1"],
    "--delays a,b": ["--delays", "'a,b'"],
    "head.num_stepz=3": ["head.num_stepz", "'regression'", "hidden"],
    "head.loss=huber": ["head.loss", "'huber'"],
    "--max-steps 0": ["--max-steps", "0"],
}


@pytest.mark.parametrize("case", list(EVAL_OPTION_CASES))
def test_eval_with_bad_options(trained, case, capsys, tmp_path):
    before = snapshot(tmp_path)
    rc, err = run(["eval", str(trained), *case.split(), "--out", str(tmp_path / "out")], capsys)
    assert_clean_failure(rc, err, before, snapshot(tmp_path), case, EVAL_OPTION_CASES[case])


def test_eval_out_that_is_a_file(trained, capsys, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    before = snapshot(tmp_path)
    rc, err = run(["eval", str(trained), "--episodes", "1", "--out", str(tmp_path / "mine.txt")], capsys)
    assert_clean_failure(rc, err, before, snapshot(tmp_path), "--out file", ["--out", "mine.txt", "found a file"])
    assert (tmp_path / "mine.txt").read_text() == "keep me"
