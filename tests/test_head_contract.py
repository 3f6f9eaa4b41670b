"""What every registered head must do, run over the registry: a head registered tomorrow is
tested here without editing this file. Each head is built from its shipped policy YAML."""

import pytest
import torch

from robolearn.config import compose, group_options
from robolearn.heads import build_head, head_class, head_names

H, A, D, B = 8, 2, 12, 6


def yaml_options(name: str) -> dict:
    for policy in group_options("policy"):
        head = dict(compose([f"policy={policy}"]).policy.head)
        if head.pop("name") == name:
            return head
    pytest.fail(f"head {name!r} is registered but no configs/policy/*.yaml uses it")


@pytest.fixture(scope="module", params=head_names())
def head(request):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    h = build_head(request.param, D, H, A, **yaml_options(request.param))
    h.fit_data(torch.rand(256, H, A) * 2 - 1)
    return h


def test_loss_is_finite_and_trains_every_step(head):
    cond, acts = torch.randn(B, D), torch.rand(B, H, A) * 2 - 1
    mask = torch.ones(B, H, dtype=torch.bool)
    mask[:, -2:] = False
    out = head.loss(cond, acts, mask)
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    grads = [p.grad for p in head.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    head.zero_grad(set_to_none=True)
    head.on_train_step(1, 10)


def test_samples_have_the_chunk_shape_and_follow_the_generator(head):
    head.eval()
    cond = torch.randn(B, D)
    a = head.sample(cond, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(99)
    b = head.sample(cond, generator=torch.Generator().manual_seed(1))
    assert a.shape == (B, H, A) and torch.isfinite(a).all()
    assert torch.equal(a, b)


def test_frozen_prefix_steps_come_back_exactly(head):
    head.eval()
    prefix = torch.rand(B, H, A) * 2 - 1
    w = torch.zeros(H)
    w[:3] = 1.0
    w[3:5] = torch.tensor([0.6, 0.2])
    x = head.sample(torch.randn(B, D), prefix=prefix, prefix_weights=w, generator=torch.Generator().manual_seed(0))
    assert (x[:, :3] - prefix[:, :3]).abs().max() < 1e-5
    # the free steps (weight 0) are the head's own: a head that copies the prefix everywhere fails here
    assert (x[:, 5:] - prefix[:, 5:]).abs().mean() > 1e-2


def test_network_evaluations_is_what_sampling_costs(head):
    """The declared passes per chunk (the cost tables' NFE column) equal the calls that sampling
    one chunk makes to the head's network, counted with a forward hook."""
    n = type(head).network_evaluations(yaml_options(head.head_name))
    assert head_class(head.head_name) is type(head)
    if n is None:  # it depends on more than the options (autoregressive: one pass per token)
        assert head.head_name == "autoregressive"
        return
    calls = []
    hook = head.net.register_forward_hook(lambda *a: calls.append(1))
    try:
        head.eval()
        head.sample(torch.randn(B, D), generator=torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    assert len(calls) == n, f"{head.head_name}: declares {n} passes, sampling made {len(calls)}"


def test_state_dict_round_trip_samples_the_same(head):
    head.eval()
    fresh = build_head(head.head_name, D, H, A, **yaml_options(head.head_name))
    fresh.load_state_dict(head.state_dict())
    fresh.eval()
    cond = torch.randn(B, D)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(head.sample(cond, generator=g()), fresh.sample(cond, generator=g()))
