"""Strict configs: every override names a known key (the closest one is suggested), has the
shipped value's type and a value in range, before any work starts; shared settings come from one
file through `base:`; saved configs keep environment-variable interpolations unresolved."""

import pytest

from robolearn.config import compose, group_options, load_group
from robolearn.errors import ConfigError

BAD = [
    (["algo.stepz=5"], "did you mean 'algo.steps'"),
    (["policy.horizn=3"], "did you mean 'policy.horizon'"),
    (["foo=1"], "unknown key 'foo'"),
    (["algo.steps=20.7"], "algo.steps: expected a positive int, found float 20.7"),
    (["algo.steps=true"], "found bool True"),
    (["algo.steps=abc"], "found str 'abc'"),
    (["algo.steps=0"], "algo.steps: expected a positive int"),
    (["algo.steps=-5"], "algo.steps: expected a positive int"),
    (["algo.ema_decay=2"], "algo.ema_decay: expected a number in [0, 1)"),
    (["algo.batch_size=0"], "algo.batch_size"),
    (["algo.ckpt_every=0"], "algo.ckpt_every"),
    (["algo.log_every=0"], "algo.log_every"),
    (["algo.lr=-1"], "algo.lr: expected a number > 0"),
    (["device=tpu"], "device: expected auto | cpu | cuda | cuda:N"),
    (["policy.n_action_steps=0"], "policy.n_action_steps"),
    (["policy.n_action_steps=40"], "expected 1..horizon=8"),  # fetch_push: H = 8
    (["eval.episodes=-3"], "eval.episodes"),
    (["eval.episodes=0"], "eval.episodes"),
    (["algo=dagger", "algo.rounds=-1"], "algo.rounds: expected an int >= 0"),
    (["algo=dagger", "algo.beta_schedule=cubic"], "one of constant | linear | exponential"),
    (["algo=dart", "algo.noise_kind=pink"], "algo.noise_kind"),
    (["algo.betas=[0.9]"], "algo.betas: expected two numbers"),
    (["seed=-1"], "seed"),
    (["eval.workers=-1"], "eval.workers: expected auto or an int >= 0, found int -1"),
    (["eval.action_noise=20"], "eval.action_noise: expected a number >= 0"),
    (["policy.normalizer=zscore"], "policy.normalizer: expected one of minmax | gaussian"),
    (["algo=gail", "algo.rounds=0"], "algo.rounds: expected a positive int"),
]


@pytest.mark.parametrize("overrides, match", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_option_is_one_line_naming_the_key(overrides, match):
    with pytest.raises(ConfigError) as e:
        compose(overrides)
    assert match in str(e.value) and "\n" not in str(e.value)


def test_options_of_builders_stay_open_and_good_values_pass():
    cfg = compose(
        [
            "policy=flow",
            "policy.head.num_steps=3",
            "task=pusht",
            "task.kwargs.angle=cos_sin",
            "algo.lr=1e-3",
            "algo.steps=10",
            "exec=rtc",
            "exec.delay=2",
            "algo.max_episodes=5",
        ]
    )
    assert cfg.policy.head.num_steps == 3 and cfg.algo.lr == 1e-3 and cfg.exec.delay == 2


def test_shared_settings_come_from_one_file():
    dagger, bc = compose(["algo=dagger"]).algo, load_group("algo", "bc")
    assert list(dagger.betas) == list(bc.betas) and dagger.ema_decay == bc.ema_decay  # from bc.yaml
    assert dagger.lr == 1e-3 and dagger.rounds == 4  # from _interactive.yaml
    for name in group_options("policy"):
        assert compose([f"policy={name}"]).policy.obs_horizon == 2  # from _lowdim.yaml
    assert not any(n.startswith("_") for n in group_options("policy") + group_options("algo"))


def test_saved_config_keeps_env_interpolations_unresolved(tmp_path, monkeypatch):
    from robolearn.config import save_config

    monkeypatch.setenv("MY_SECRET_PATH", "/secret/place")
    cfg = compose(["data=${oc.env:MY_SECRET_PATH}"])
    assert cfg.data == "/secret/place"
    save_config(cfg, tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    assert "/secret/place" not in text and "${oc.env:MY_SECRET_PATH}" in text


@pytest.mark.parametrize(
    "group, text, words",
    [
        ("algo", "base: bc\nstesp: 10\n", ["algo.stesp", "algo.steps"]),
        ("policy", "base: flow\nhorzion: 8\n", ["policy.horzion", "policy.horizon"]),
        ("task", "name: catch\nkwargs: {obs: state}\ndata: d.zarr\nobs_key: [state]\n", ["task.obs_key", "obs_keys"]),
    ],
)
def test_a_typo_in_a_users_config_file_is_one_line(tmp_path, monkeypatch, group, text, words):
    """Keys in a user's group file are checked like overrides: a key no robolearn config of the group
    has (nothing would read it) stops composition, naming the closest known key."""
    from robolearn.config import add_config_dir, compose
    from robolearn.config_files import _EXTRA_DIRS

    (tmp_path / group).mkdir()
    (tmp_path / group / "mine.yaml").write_text(text)
    monkeypatch.setattr("robolearn.config_files._EXTRA_DIRS", list(_EXTRA_DIRS))
    add_config_dir(tmp_path)
    with pytest.raises(ConfigError) as e:
        compose([f"{group}=mine"])
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)
    # open option maps stay open: new keys under task.kwargs are the task's to check
    (tmp_path / "task").mkdir(exist_ok=True)
    (tmp_path / "task" / "ok.yaml").write_text("name: catch\nkwargs: {obs: state, wander: 0.0}\ndata: d.zarr\n")
    assert compose(["task=ok"]).task.kwargs.wander == 0.0
