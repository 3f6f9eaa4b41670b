"""torch's thread count when the user has not set one: the cores other processes leave free."""

import os

import pytest
import torch

from robolearn import threads
from robolearn.errors import ConfigError


@pytest.fixture(autouse=True)
def keep_threads(monkeypatch):
    n = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("ROBOLEARN_THREADS", raising=False)
    yield
    torch.set_num_threads(n)


def test_busy_cores_are_not_taken(monkeypatch):
    ncpu = len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert threads.choose_threads() == ncpu and torch.get_num_threads() == ncpu
    monkeypatch.setattr(os, "getloadavg", lambda: (ncpu + 3.0, 0.0, 0.0))
    assert threads.choose_threads() == 1 and torch.get_num_threads() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})  # a 2-core machine
    for load, free in ((0.4, 2), (1.4, 1), (1.6, 1), (0.6, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert threads.free_cores() == free, (load, free)


def test_the_user_decides_when_they_said(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 0.0, 0.0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose_threads() is None  # the environment's setting stands
    monkeypatch.setenv("ROBOLEARN_THREADS", "3")
    assert threads.choose_threads() == 3 and torch.get_num_threads() == 3
    monkeypatch.setenv("ROBOLEARN_THREADS", "many")
    with pytest.raises(ConfigError, match="ROBOLEARN_THREADS.*'many'"):
        threads.choose_threads()
