"""The training loop's parts that decide what a run converges to, each against its closed form:
the learning-rate schedule (linear warm-up, cosine decay), the EMA update and its warm-up, that a
checkpoint holds the EMA weights, gradient clipping; and the helpers that keep files whole
(atomic writes) and one writer per folder (the lock's retry when its file was replaced)."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from robolearn.atomic import atomic_path, write_text
from robolearn.config import compose
from robolearn.locks import WriteLock
from robolearn.policy import ChunkPolicy
from robolearn.train.trainer import ema_update, lr_lambda, train


def test_learning_rate_warms_up_linearly_then_follows_a_cosine_to_zero():
    f = lr_lambda(warmup=10, total=110)
    assert [f(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])  # (step + 1) / warmup
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5)  # half way through the decay: cos(pi / 2)
    assert f(35) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))
    assert f(110) == pytest.approx(0.0, abs=1e-12) and f(500) == pytest.approx(0.0, abs=1e-12)


def test_ema_update_is_the_exponential_average():
    ema, model = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in ema.parameters()]
    ema_update(ema, model, decay=0.9)
    for b, pe, pm in zip(before, ema.parameters(), model.parameters()):
        torch.testing.assert_close(pe, 0.9 * b + 0.1 * pm)


@pytest.fixture(scope="module")
def reach(tmp_path_factory):
    from robolearn.algos.collect import collect
    from robolearn.envs import make_task

    out = tmp_path_factory.mktemp("d") / "reach.zarr"
    collect(make_task("fetch_reach"), 12, out, progress=False)
    return out


def test_checkpoint_holds_the_ema_with_its_warm_up(reach, tmp_path, monkeypatch):
    """The checkpoint equals the EMA recomputed by hand from the raw weights after every step
    with the warm-up decay min(ema_decay, (1 + step) / (10 + step)) (0.1, 0.18, 0.25 here, where
    a fixed 0.999 would leave the checkpoint at its initial weights). Catches a missing warm-up,
    a checkpoint of the raw weights, or an EMA never updated."""
    import robolearn.train.trainer as trainer

    seen = []  # (decay, raw weights after the step, EMA before the update)
    real = trainer.ema_update

    def spy(ema, model, decay):
        seen.append(
            (decay, [p.detach().clone() for p in model.parameters()], [p.detach().clone() for p in ema.parameters()])
        )
        real(ema, model, decay)

    monkeypatch.setattr(trainer, "ema_update", spy)
    cfg = compose(
        [
            "task=fetch_reach",
            f"data={reach}",
            "algo.steps=3",
            "algo.batch_size=8",
            "algo.warmup_steps=1",
            "algo.log_every=1",
            "algo.ckpt_every=3",
            "algo.lr=1e-2",
        ]
    )
    ckpt = train(cfg, tmp_path / "run", progress=False)
    assert [d for d, _, _ in seen] == pytest.approx([1 / 10, 2 / 11, 3 / 12])
    expected = seen[0][2]
    for decay, raw, _ in seen:
        expected = [decay * e + (1 - decay) * r for e, r in zip(expected, raw)]
    saved = ChunkPolicy.load(ckpt)
    for e, p in zip(expected, saved.parameters()):
        torch.testing.assert_close(p, e)
    assert any(not torch.allclose(p, r) for p, r in zip(saved.parameters(), seen[-1][1]))  # not the raw weights


def test_gradient_clipping_bounds_the_update_of_plain_sgd():
    """clip_grad_norm_ as the trainer calls it: the global norm is reported before clipping and
    the gradient after it has norm grad_clip."""
    m = torch.nn.Linear(4, 1)
    (m(torch.full((1, 4), 100.0)).sum() * 10).backward()
    before = torch.sqrt(sum((p.grad**2).sum() for p in m.parameters()))
    reported = torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    after = torch.sqrt(sum((p.grad**2).sum() for p in m.parameters()))
    assert float(reported) == pytest.approx(float(before)) and float(after) == pytest.approx(1.0, rel=1e-5)


def test_training_logs_the_unclipped_norm_and_clips(reach, tmp_path, monkeypatch):
    """The optimizer steps on gradients of norm at most algo.grad_clip (seen by wrapping AdamW.step);
    the log keeps the norm before clipping."""
    stepped = []
    adamw_step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        stepped.append(float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads))))
        return adamw_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    cfg = compose(
        [
            "task=fetch_reach",
            f"data={reach}",
            "algo.steps=2",
            "algo.batch_size=8",
            "algo.log_every=1",
            "algo.grad_clip=1e-6",
        ]
    )
    train(cfg, tmp_path / "run", progress=False)
    hist = json.loads((tmp_path / "run" / "train_history.json").read_text())
    assert all(h["grad_norm"] > 1e-3 for h in hist)  # the norm before clipping, far above the clip
    assert len(stepped) == 2 and all(n <= 1e-6 * 1.001 for n in stepped), stepped  # what AdamW was given


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed while writing")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]

    def no_rename(*a, **k):
        raise OSError("disk full at the rename")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError):
        write_text(target, "new")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_lock_retries_when_its_file_was_replaced_between_open_and_lock(tmp_path, monkeypatch):
    """The holder removes the lock file on release; a writer that opened the old file then
    locks a file no longer at the path, so it must open again (else two writers could each
    hold a lock on a different file)."""
    real_stat, calls = os.stat, {"n": 0}

    def stat_once_replaced(path, *a, **k):
        st = real_stat(path, *a, **k)
        if str(path).endswith(".lock") and calls["n"] == 0:
            calls["n"] += 1
            return os.stat_result((st.st_mode, st.st_ino + 1, *tuple(st)[2:]))  # another inode: replaced
        return st

    monkeypatch.setattr(os, "stat", stat_once_replaced)
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    lock = WriteLock(tmp_path / "data.zarr", "dataset").acquire()
    assert calls["n"] == 1 and len(opened) == 2  # opened, saw it replaced, opened again
    assert (tmp_path / ".data.zarr.lock").read_text().strip() == str(os.getpid())
    lock.release()
    assert not (tmp_path / ".data.zarr.lock").exists()
