"""Action heads on a problem with a known answer.

Toy data: one fixed condition, and every chunk (H=4, A=2) is constant at +C or -C with equal
probability. The conditional mean is 0, a chunk that is never demonstrated; a distribution
learner must put its samples at +-C. With a prefix frozen at one mode, the rest of the chunk
must follow that mode: that is what makes inpainting (real-time chunking) useful.

Each head is trained once per module (small nets, a few hundred Adam steps, fixed seeds).
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from robolearn.errors import ConfigError
from robolearn.heads import build_head
from robolearn.nets.denoiser import masked_mse, rtc_weight

H, A, D, C = 4, 2, 8, 0.6
N_SAMPLES = 400
MARGIN = 0.3  # samples may overshoot the data range [-C, C] by this much
MID = C / 2  # a chunk whose mean is within MID of 0 is "between the modes"
PREFIX_TOL = 1e-5  # frozen prefix steps must come back (numerically) exactly

TINY_UNET = dict(down_dims=[16, 32])
TINY_TF = dict(denoiser="transformer", d_model=32, n_layers=2, n_heads=2)

# name -> (head, options, training steps); generative ones must find both modes
HEADS = {
    "regression": ("regression", dict(loss="mse", hidden=[64, 64]), 300),
    "mdn": ("mdn", dict(hidden=[64, 64], num_components=3), 300),
    "autoregressive": ("autoregressive", dict(num_bins=32, d_model=32, n_layers=2, n_heads=2, dropout=0.0), 500),
    "diffusion_unet": ("diffusion", dict(TINY_UNET, prediction_type="sample"), 500),
    "diffusion_tf": ("diffusion", dict(TINY_TF, n_layers=3, scheduler="dpmsolver"), 800),
    "flow_unet": ("flow", dict(TINY_UNET), 500),
    "flow_tf": ("flow", dict(TINY_TF, time_sampling="beta"), 800),
    "mip_tf": ("mip", dict(TINY_TF), 400),
    "shortcut_1step": ("shortcut", dict(TINY_UNET, num_steps=1, max_steps=8), 800),
    # training-time prefix conditioning: up to 2 leading steps given clean (loss masked), a mask channel
    "flow_prefix": ("flow", dict(TINY_UNET, prefix_conditioning=2, inpaint="given"), 500),
    "diffusion_prefix": (
        "diffusion",
        dict(TINY_UNET, prediction_type="sample", prefix_conditioning=2, inpaint="given"),
        500,
    ),
}
MULTIMODAL = [
    "mdn",
    "autoregressive",
    "diffusion_unet",
    "diffusion_tf",
    "flow_unet",
    "flow_tf",
    "shortcut_1step",
    "flow_prefix",
    "diffusion_prefix",
]


def toy_chunks(n: int, g: torch.Generator) -> torch.Tensor:
    sign = torch.randint(0, 2, (n, 1, 1), generator=g) * 2 - 1
    return (sign * C).float().expand(n, H, A).contiguous()


COND = torch.randn(D, generator=torch.Generator().manual_seed(0))


def train_head(kind: str, options: dict, steps: int, batch: int = 128):
    torch.manual_seed(0)
    head = build_head(kind, D, H, A, **options)
    g = torch.Generator().manual_seed(1)
    head.fit_data(toy_chunks(1000, g))
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = head.loss(COND.expand(batch, D), toy_chunks(batch, g))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval()


@pytest.fixture(scope="module")
def trained():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: threads only add overhead on a shared 2-core machine
    try:
        yield {name: train_head(*spec) for name, spec in HEADS.items()}
    finally:
        torch.set_num_threads(threads)


def draw(head, n=N_SAMPLES, seed=0, **kw):
    return head.sample(COND.expand(n, D), generator=torch.Generator().manual_seed(seed), **kw)


def mode_fractions(x: torch.Tensor) -> tuple[float, float, float]:
    m = x.mean(dim=(1, 2))
    return (m > MID).float().mean().item(), (m < -MID).float().mean().item(), (m.abs() <= MID).float().mean().item()


def in_range_fraction(x: torch.Tensor) -> float:
    ok = (x.abs() <= C + MARGIN).flatten(1).all(dim=1)
    return ok.float().mean().item()


# ---- learning ------------------------------------------------------------------------------


def test_regression_averages_the_modes(trained):
    x = draw(trained["regression"])
    assert x.abs().max() < MID, "an MSE regressor must land near the mean (0) of a symmetric bimodal target"


@pytest.mark.parametrize("name", MULTIMODAL)
def test_generative_heads_find_both_modes(trained, name):
    x = draw(trained[name])
    plus, minus, mid = mode_fractions(x)
    assert plus >= 0.2 and minus >= 0.2, f"{name}: mode fractions +{plus:.2f} -{minus:.2f}"
    assert mid < 0.1, f"{name}: {mid:.2f} of samples between the modes"
    assert in_range_fraction(x) >= 0.9, f"{name}: too many samples outside [-C, C] +- {MARGIN}"


def test_mdn_mode_eval_returns_a_mode(trained):
    head = trained["mdn"]
    head.eval_mode = "mode"
    try:
        x = draw(head, n=8)
    finally:
        head.eval_mode = "sample"
    assert torch.allclose(x, x[:1].expand_as(x)), "mode evaluation must be deterministic"
    assert (x.abs() - C).abs().max() < 0.1, "the most likely component's mean must sit on a mode"


# ---- inpainting ----------------------------------------------------------------------------

# The one-pass shortcut head generates the whole chunk in a single jump from noise: replacement
# inpainting keeps its frozen steps exactly but cannot steer the free ones (there is no
# intermediate step at which the prefix could act); a prefix-conditioned head is the way there.
INPAINT = [*[m for m in MULTIMODAL if m != "shortcut_1step"], "regression"]


@pytest.mark.parametrize("name", INPAINT)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_inpainting_follows_the_prefix(trained, name, sign):
    head = trained[name]
    prefix = torch.full((N_SAMPLES, H, A), sign * C)
    w = torch.tensor([1.0, 1.0, 0.0, 0.0])  # first d=2 steps frozen, the rest free
    variants = {"diffusion": ["guided", "replace"], "flow": ["guided"]}.get(HEADS[name][0], [None])
    if getattr(head, "prefix_max", 0):
        variants = [*variants, "given"]  # one set of weights, guided or given the prefix
    own = getattr(head, "inpaint", None)
    for inpaint in variants:
        if inpaint:
            head.inpaint = inpaint
        x = draw(head, prefix=prefix, prefix_weights=w)
        assert (x[:, :2] - prefix[:, :2]).abs().max() < PREFIX_TOL, (
            f"{name}/{inpaint}: frozen steps differ from the prefix"
        )
        rest = x[:, 2:]
        assert in_range_fraction(rest) >= 0.9, f"{name}/{inpaint}: free steps leave the data range"
        if name == "regression":
            continue  # a deterministic regressor can only blend; it has no way to follow the prefix's mode
        plus, minus, _ = mode_fractions(rest)
        follow = plus if sign > 0 else minus
        assert follow >= 0.8, f"{name}/{inpaint}: only {follow:.2f} of free steps follow the prefix's mode"
    if own is not None:
        head.inpaint = own


@pytest.mark.parametrize("name", ["flow_prefix", "diffusion_prefix"])
def test_prefix_conditioning_costs_a_plain_chunk(trained, name):
    """A given prefix is an input, not a guidance target: sampling with it makes exactly the network
    calls of a plain sample and no backward pass; more frozen steps than trained is one clear line."""
    head = trained[name]
    calls = []
    hook = head.net.register_forward_hook(lambda m, i, o: calls.append(torch.is_grad_enabled()))
    try:
        draw(head, n=8)
        plain = len(calls)
        calls.clear()
        draw(head, n=8, prefix=torch.full((8, H, A), C), prefix_weights=torch.tensor([1.0, 1.0, 0.5, 0.0]))
        assert len(calls) == plain and not any(calls)
    finally:
        hook.remove()
    with pytest.raises(ConfigError, match="prefix_conditioning"):
        draw(head, n=2, prefix=torch.zeros(2, H, A), prefix_weights=torch.tensor([1.0, 1.0, 1.0, 0.0]))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_mip_refinement_pulls_free_steps_to_the_prefix_mode(trained, sign):
    """MIP is deterministic: blending the prefix in makes each refinement pass a fixed-point step
    toward the data manifold, so the free steps approach the prefix's mode as passes are added."""
    head = trained["mip_tf"]
    prefix = torch.full((4, H, A), sign * C)
    w = torch.tensor([1.0, 1.0, 0.0, 0.0])
    free = {}
    try:
        for k in (1, 2, 5):
            head.num_steps = k
            x = draw(head, n=4, prefix=prefix, prefix_weights=w)
            assert (x[:, :2] - prefix[:, :2]).abs().max() < PREFIX_TOL
            free[k] = sign * x[:, 2:].mean().item()
    finally:
        head.num_steps = HEADS["mip_tf"][1].get("num_steps", 2)
    assert abs(free[1]) < MID, "one pass is plain regression: it sits between the modes"
    assert free[1] < free[2] < free[5], f"free steps do not move toward the prefix's mode: {free}"
    assert abs(free[5] - C) < 0.1, f"five passes should reach the prefix's mode: {free}"


def test_soft_prefix_weights_do_what_each_head_family_declares(trained):
    """Step 0 frozen at the +C mode; steps 1.. ask for a value off the data (C + 0.4) with soft
    weights 0.6 / 0.3 / 0 (what RTC's decaying mask gives), against the same draw with weight 0
    there. Guided / blended / conditioned heads pull step 1 toward that value; the autoregressive
    head freezes steps with weight >= 0.5 and ignores the rest (its docstring); a given prefix and
    a one-step shortcut have no soft form and must ignore weights below 1 exactly. Catches a head
    that drops or binarizes soft weights where it should not, or reads them at the wrong step."""
    n, off = 64, C + 0.4
    prefix = torch.full((n, H, A), off)
    prefix[:, 0] = C
    soft, hard = torch.tensor([1.0, 0.6, 0.3, 0.0]), torch.tensor([1.0, 0.0, 0.0, 0.0])
    follows = {"regression", "mdn", "diffusion_unet", "diffusion_tf", "flow_unet", "flow_tf", "mip_tf"}
    ignores = {"shortcut_1step", "flow_prefix", "diffusion_prefix"}
    assert follows | ignores | {"autoregressive"} == set(trained)  # a new head states its behaviour here
    for name, head in trained.items():
        x = draw(head, n=n, prefix=prefix, prefix_weights=soft)
        y = draw(head, n=n, prefix=prefix, prefix_weights=hard)
        assert x.shape == (n, H, A) and torch.isfinite(x).all(), name
        assert (x[:, 0] - C).abs().max() < PREFIX_TOL, name
        gap_soft, gap_hard = ((x[:, 1] - off).abs().mean().item(), (y[:, 1] - off).abs().mean().item())
        if name in follows:
            assert gap_soft < gap_hard - 0.02, f"{name}: step 1 at {gap_soft:.3f} with w=0.6, {gap_hard:.3f} with 0"
        elif name in ignores:
            assert torch.allclose(x, y, atol=1e-6), f"{name}: weights below 1 changed the sample"
        else:  # autoregressive: 0.6 >= 0.5 is teacher-forced exactly, 0.3 is ignored
            assert (x[:, 1] - off).abs().max() < PREFIX_TOL, name
            z = draw(head, n=n, prefix=prefix, prefix_weights=torch.tensor([1.0, 0.6, 0.0, 0.0]))
            assert torch.equal(x, z), name


def test_prefix_shape_is_checked(trained):
    with pytest.raises(ValueError):
        draw(trained["flow_tf"], n=2, prefix=torch.zeros(2, H + 1, A), prefix_weights=torch.ones(H + 1))


# ---- determinism and checkpoints -----------------------------------------------------------


@pytest.mark.parametrize("name", list(HEADS))
def test_same_seed_same_samples_and_safetensors_roundtrip(trained, name, tmp_path):
    head = trained[name]
    a = draw(head, n=6, seed=3)
    torch.manual_seed(123)  # the global RNG must not matter
    b = draw(head, n=6, seed=3)
    assert torch.equal(a, b)
    if name not in ("regression", "mip_tf") and HEADS[name][1].get("eval_mode") != "mode":
        assert not torch.equal(a, draw(head, n=6, seed=4)), f"{name}: the generator is not used"
    kind, options, _ = HEADS[name]
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(tmp_path / "head.safetensors"))
    fresh = build_head(kind, D, H, A, **options)
    fresh.load_state_dict(load_file(str(tmp_path / "head.safetensors")))
    fresh.eval()
    assert torch.equal(a, draw(fresh, n=6, seed=3))
    prefix, w = torch.full((6, H, A), C), torch.tensor([1.0, 0.5, 0.0, 0.0])
    assert torch.equal(
        draw(head, n=6, seed=5, prefix=prefix, prefix_weights=w),
        draw(fresh, n=6, seed=5, prefix=prefix, prefix_weights=w),
    )


def test_quantile_bins_are_fitted_saved_and_exact_on_discrete_data(tmp_path):
    opts = dict(num_bins=8, binning="quantile", d_model=16, n_layers=1, n_heads=2)
    head = build_head("autoregressive", D, H, A, **opts)
    with pytest.raises(ConfigError):  # training with unfitted quantile bins is a user error
        head.loss(COND.expand(4, D), toy_chunks(4, torch.Generator().manual_seed(0)))
    data = toy_chunks(500, torch.Generator().manual_seed(0))
    head.fit_data(data)
    dims = torch.arange(A).expand(500, H, A)
    decoded = head.centers[dims, head.tokenize(data)]
    assert (decoded - data).abs().max() < 1e-5, "quantile bin values must reproduce the two data values exactly"
    uniform = build_head("autoregressive", D, H, A, **{**opts, "binning": "uniform"})
    assert (uniform.centers[dims, uniform.tokenize(data)] - data).abs().max() > 1e-3  # uniform bins quantise
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(tmp_path / "ar.safetensors"))
    fresh = build_head("autoregressive", D, H, A, **opts)
    fresh.load_state_dict(load_file(str(tmp_path / "ar.safetensors")))
    assert torch.equal(fresh.edges, head.edges) and bool(fresh.fitted)


# ---- masks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,options",
    [("mdn", dict(hidden=[32])), ("autoregressive", dict(num_bins=8, d_model=16, n_layers=1, n_heads=2, dropout=0.0))],
)
def test_padded_steps_do_not_count(kind, options):
    """Padding sits at the end of a chunk; heads whose loss factorises over steps (MDN's diagonal
    Gaussians, the causal AR model) must give the same loss whatever the padded values are."""
    torch.manual_seed(0)
    head = build_head(kind, D, H, A, **options)
    g = torch.Generator().manual_seed(0)
    acts = toy_chunks(16, g)
    mask = torch.ones(16, H, dtype=torch.bool)
    mask[:, 2:] = False
    other = acts.clone()
    other[:, 2:] = torch.rand(16, H - 2, A, generator=g) * 2 - 1
    cond = COND.expand(16, D)
    l1, l2 = head.loss(cond, acts, mask)["loss"], head.loss(cond, other, mask)["loss"]
    assert torch.allclose(l1, l2)
    assert not torch.allclose(l1, head.loss(cond, other)["loss"])


def test_masked_mse_ignores_padded_steps():
    pred, target = torch.zeros(2, 3, 2), torch.zeros(2, 3, 2)
    target[:, 2] = 5.0
    mask = torch.tensor([[True, True, False], [True, True, False]])
    assert masked_mse(pred, target, mask) == 0.0 and masked_mse(pred, target, None) > 0.0


def test_rtc_weight_matches_the_formula():
    # t = 0.5: r^2 = 0.25 / 0.5 = 0.5, (1 - t) / (t r^2) = 0.5 / 0.25 = 2
    assert rtc_weight(0.5, 5.0) == pytest.approx(2.0)
    assert rtc_weight(0.0, 5.0) == 5.0 and rtc_weight(0.999, 5.0) == 5.0
    assert rtc_weight(0.5, 1.0) == 1.0


def test_rtc_guidance_is_the_vector_jacobian_product_of_a_linear_estimate():
    """For a linear clean estimate est(x) = x M + b (per step, over action dims), RTC's guidance is
    (prefix - est) * w pulled back through M: g = ((prefix - est) * w) M^T, in closed form."""
    from robolearn.nets.denoiser import rtc_guidance

    g0 = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 3, generator=g0)
    M, b = torch.randn(3, 3, generator=g0), torch.randn(3, generator=g0)
    prefix = torch.randn(2, 6, 3, generator=g0)
    w = torch.tensor([[1.0, 1.0, 0.6, 0.2, 0.0, 0.0], [1.0, 0.5, 0.0, 0.0, 0.0, 0.0]])
    out, est, g = rtc_guidance(lambda z: (2 * z, z @ M + b), x, prefix, w)
    want_est = x @ M + b
    want = ((prefix - want_est) * w[..., None]) @ M.T
    torch.testing.assert_close(est, want_est)
    torch.testing.assert_close(out, 2 * x)
    torch.testing.assert_close(g, want)
    assert torch.all(g[w == 0] == 0) and torch.all(g[w > 0] != 0)  # weight-0 steps pull nothing (M mixes dims)


# ---- options -------------------------------------------------------------------------------

BAD = [
    ("mdn", dict(num_components=0)),
    ("mdn", dict(min_std=-0.1)),
    ("mdn", dict(eval_mode="mean")),
    ("autoregressive", dict(num_bins=1)),
    ("autoregressive", dict(binning="kmeans")),
    ("autoregressive", dict(temperature=0.0)),
    ("autoregressive", dict(eval_mode="beam")),
    ("autoregressive", dict(d_model=30, n_heads=4)),
    ("diffusion", dict(num_inference_steps=0)),
    ("diffusion", dict(num_inference_steps=200)),
    ("diffusion", dict(scheduler="euler")),
    ("diffusion", dict(prediction_type="v_prediction")),
    ("diffusion", dict(inpaint="blend")),
    ("diffusion", dict(denoiser="mlp")),
    ("diffusion", dict(beta_schedule="cosine")),
    ("diffusion", dict(down_dims=[12, 24])),
    ("diffusion", dict(kernel_size=4)),
    ("diffusion", dict(guidance_beta=-1.0)),
    ("flow", dict(num_steps=0)),
    ("flow", dict(time_sampling="logit_normal")),
    ("flow", dict(init_noise="uniform")),
    ("flow", dict(guidance_beta=-1.0)),
    ("flow", dict(guidance_beta=0.0)),  # beta <= 0: no guidance at all, not RTC
    ("flow", dict(prefix_conditioning=-1)),
    ("flow", dict(prefix_conditioning=H)),
    ("flow", dict(inpaint="given")),  # given needs prefix_conditioning
    ("diffusion", dict(inpaint="sideways")),
    ("diffusion", dict(prefix_conditioning=1.5)),
    ("flow", dict(beta_a=0.0, time_sampling="beta")),
    ("flow", dict(denoiser="transformer", d_model=30, n_heads=4)),
    ("mip", dict(num_steps=0)),
    ("mip", dict(t_star=1.0)),
    ("mip", dict(refine_noise=-0.5)),
    ("mip", dict(refine_from="noise")),
    # misspelled options are caught too, not silently ignored
    ("mdn", dict(n_components=3)),
    ("autoregressive", dict(bins=64)),
    ("diffusion", dict(num_inference_step=5)),
    ("flow", dict(steps=5)),
    ("mip", dict(tstar=0.5)),
]


@pytest.mark.parametrize("kind,options", BAD)
def test_bad_options_raise_config_error(kind, options):
    with pytest.raises(ConfigError):
        build_head(kind, D, H, A, **options)


@pytest.mark.parametrize(
    "kind,options",
    [
        ("flow", dict(TINY_UNET, init_noise="zero", num_steps=1)),  # straight one-step flow from zero
        ("mip", dict(TINY_UNET, refine_from="prediction", refine_noise=0.0, num_steps=3)),  # residual regression
        ("mip", dict(TINY_TF, scale_input=True, num_steps=9)),
        ("diffusion", dict(TINY_TF, scheduler="dpmsolver", num_inference_steps=1)),
        ("diffusion", dict(TINY_UNET, num_inference_steps=1, inpaint="replace")),
    ],
)
def test_ablation_variants_run(kind, options):
    head = build_head(kind, D, H, A, **options)
    acts = toy_chunks(8, torch.Generator().manual_seed(0))
    head.loss(COND.expand(8, D), acts)["loss"].backward()
    x = head.eval().sample(COND.expand(8, D), generator=torch.Generator().manual_seed(0))
    assert x.shape == (8, H, A) and torch.isfinite(x).all()
    x = head.sample(
        COND.expand(8, D),
        prefix=acts,
        prefix_weights=torch.tensor([1.0, 0.0, 0.0, 0.0]),
        generator=torch.Generator().manual_seed(0),
    )
    assert (x[:, 0] - acts[:, 0]).abs().max() < PREFIX_TOL


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(HEADS))
def test_heads_run_on_cuda(name):
    kind, options, _ = HEADS[name]
    head = build_head(kind, D, H, A, **options).cuda()
    cond = COND.cuda().expand(8, D)
    acts = toy_chunks(8, torch.Generator().manual_seed(0)).cuda()
    if hasattr(head, "fit_data"):
        head.fit_data(acts)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        head.loss(cond, acts, torch.ones(8, H, dtype=torch.bool, device="cuda"))["loss"].backward()
    g = torch.Generator(device="cuda").manual_seed(0)
    x = head.eval().sample(
        cond, prefix=acts, prefix_weights=torch.tensor([1.0, 0.5, 0.0, 0.0], device="cuda"), generator=g
    )
    assert x.shape == (8, H, A) and x.device.type == "cuda" and torch.isfinite(x).all()
