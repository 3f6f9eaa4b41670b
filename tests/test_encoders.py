"""Observation encoders: shapes for every modality mix, train/eval augmentation, gradients,
a small learning problem with a known answer, checkpoint round trip and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from robolearn.encoders import build_encoder
from robolearn.encoders.augment import ImageAugment, center_crop, color_jitter, random_crop
from robolearn.encoders.image import count_params
from robolearn.errors import ConfigError, DataError
from robolearn.spec import ObsSpec

B = 3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convs on a shared 2-core box: one thread is faster than two fighting for cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = {"width": 4, "num_keypoints": 4, "feature_dim": 8, "crop": 40}  # fast trunks for shape tests
PROPRIO = {"agent_pos": ObsSpec((2,)), "keypoint": ObsSpec((9, 2))}
CAM = ObsSpec((48, 48, 3), "uint8", "rgb")


def make_obs(spec: dict[str, ObsSpec], To: int, b: int = B, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, s in spec.items():
        if s.kind == "rgb":
            out[k] = torch.randint(0, 256, (b, To, *s.shape), dtype=torch.uint8, generator=g)
        else:
            out[k] = torch.randn(b, To, *s.shape, generator=g)
    return out


COMBOS = {
    "lowdim": PROPRIO,
    "one_camera": {"img": CAM},
    "camera_proprio": {"img": CAM, "agent_pos": ObsSpec((2,))},
    "two_cameras_proprio": {"front": CAM, "wrist": ObsSpec((40, 48, 3), "uint8", "rgb"), "agent_pos": ObsSpec((2,))},
}


@pytest.mark.parametrize("combo", list(COMBOS))
@pytest.mark.parametrize("To", [1, 2])
@pytest.mark.parametrize("share", [False, True])
def test_output_shapes(combo, To, share):
    spec = COMBOS[combo]
    rgb = {**TINY, "crop": 0.875, "share_backbone": share}
    enc = build_encoder({"lowdim": {"hidden": [16], "out_dim": 5}, "rgb": rgb, "token_dim": 12}, spec, To)
    obs = make_obs(spec, To)
    per_step = sum(5 if s.kind == "lowdim" else 8 for s in spec.values())
    assert enc.out_dim == To * per_step
    assert enc(obs).shape == (B, To * per_step)
    assert enc.token_dim == 12
    assert enc.tokens(obs).shape == (B, To * len(spec), 12)
    n_trunks = sum(1 for m in enc.modules() if m.__class__.__name__ == "ResNetTrunk")
    n_cams = sum(s.kind == "rgb" for s in spec.values())
    assert n_trunks == (min(1, n_cams) if share else n_cams)


def test_lowdim_identity_keeps_time_major_layout():
    """The low-dim-only encoder is exactly the flattened history: [t0: keys sorted, t1: ...]."""
    enc = build_encoder({"output": "vector"}, PROPRIO, 2)
    assert list(enc.parameters()) == []
    obs = make_obs(PROPRIO, 2)
    expect = torch.cat([obs["agent_pos"], obs["keypoint"].flatten(2)], -1).flatten(1)
    assert torch.equal(enc(obs), expect)
    assert enc.out_dim == 2 * (2 + 18)


def test_shared_backbone_saves_exactly_one_trunk():
    spec = COMBOS["two_cameras_proprio"]
    sep = build_encoder({"rgb": {**TINY, "crop": None}}, spec, 2)
    shared = build_encoder({"rgb": {**TINY, "crop": None, "share_backbone": True}}, spec, 2)
    trunk = count_params(shared.cameras["shared"].trunk)
    assert count_params(sep) - count_params(shared) == trunk
    # Each camera keeps its own readout: the same frames through both give different features.
    spec2 = {"front": CAM, "wrist": CAM}
    two = build_encoder({"rgb": {**TINY, "crop": None, "share_backbone": True}}, spec2, 2).eval()
    obs = make_obs({"front": CAM}, 2)
    front, wrist = two.features({"front": obs["front"], "wrist": obs["front"]})
    assert front.shape == wrist.shape == (B, 2, 8) and not torch.allclose(front, wrist)


def test_tokens_carry_time_and_key_identity():
    """Identical features at two time steps must still give different tokens (time embedding)."""
    spec = {"agent_pos": ObsSpec((2,))}
    enc = build_encoder({"token_dim": 6}, spec, 2)
    x = torch.randn(B, 1, 2).repeat(1, 2, 1)
    tok = enc.tokens({"agent_pos": x})
    assert not torch.allclose(tok[:, 0], tok[:, 1])


def test_eval_is_deterministic_and_train_crop_is_random():
    spec = {"img": CAM, "agent_pos": ObsSpec((2,))}
    enc = build_encoder({"rgb": {**TINY, "crop": 40, "color_jitter": 0.3}}, spec, 2)
    obs = make_obs(spec, 2, b=8)
    enc.eval()
    with torch.no_grad():
        a, b = enc(obs), enc(obs)
    assert torch.equal(a, b)
    enc.train()
    with torch.no_grad():
        c, d = enc(obs), enc(obs)
    assert not torch.equal(c, d)
    assert not torch.equal(a, c)


def test_no_crop_no_jitter_train_equals_eval():
    spec = {"img": CAM}
    enc = build_encoder({"rgb": {**TINY, "crop": None, "color_jitter": 0.0}}, spec, 2)
    obs = make_obs(spec, 2)
    with torch.no_grad():
        train = enc.train()(obs)
        ev = enc.eval()(obs)
    assert torch.equal(train, ev)


def test_random_crop_is_a_window_shared_over_time():
    Bc, T, H, W = 200, 2, 12, 10
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    img = torch.stack([ys, xs, torch.zeros_like(ys)], -1).to(torch.uint8)  # pixel = its own (y, x)
    x = img.expand(Bc, T, H, W, 3).clone()
    x[:, 1, ..., 2] = 7  # the second frame differs, so frames cannot be mixed up
    out = random_crop(x, (8, 6), torch.Generator().manual_seed(0))
    assert out.shape == (Bc, T, 8, 6, 3)
    oy, ox = out[:, 0, 0, 0, 0].long(), out[:, 0, 0, 0, 1].long()
    for i in range(Bc):
        assert torch.equal(out[i, :, ..., :2], x[i, :, oy[i] : oy[i] + 8, ox[i] : ox[i] + 6, :2])
    assert torch.equal(out[:, 1, ..., 2], torch.full((Bc, 8, 6), 7, dtype=torch.uint8))
    assert set(oy.tolist()) == set(range(H - 8 + 1)) and set(ox.tolist()) == set(range(W - 6 + 1))
    assert torch.equal(center_crop(x, (8, 6)), x[:, :, 2:10, 2:8])


def test_color_jitter_stays_in_range_and_keeps_gray_gray():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 2, 3, 5, 5, generator=g)
    y = color_jitter(x, {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4}, g)
    assert y.min() >= 0 and y.max() <= 1 and not torch.equal(x, y)
    gray = torch.rand(16, 2, 1, 5, 5, generator=g).expand(16, 2, 3, 5, 5) * 0.5
    z = color_jitter(gray, {"brightness": 0.0, "contrast": 0.0, "saturation": 0.9}, g)
    assert torch.allclose(z, gray, atol=1e-6)  # saturation changes colour, never gray levels


def test_augment_scales_uint8_to_unit_range():
    aug = ImageAugment((4, 4), crop=None).eval()
    x = torch.tensor([0, 255], dtype=torch.uint8).repeat(8 * 3 // 2).view(1, 1, 4, 2, 3).repeat(1, 1, 1, 2, 1)
    y = aug(x)
    assert y.shape == (1, 1, 3, 4, 4) and y.dtype == torch.float32
    assert set(y.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("output", ["vector", "tokens"])
def test_gradients_reach_every_parameter(output):
    spec = {"front": CAM, "wrist": CAM, "agent_pos": ObsSpec((2,)), "keypoint": ObsSpec((9, 2))}
    cfg = {
        "lowdim": {"hidden": [8]},
        "rgb": {**TINY, "color_jitter": 0.1},
        "keys": {"wrist": {"pool": "avg"}},
        "output": output,
        "token_dim": 8,
    }
    enc = build_encoder(cfg, spec, 2)
    obs = make_obs(spec, 2, b=4)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-2)

    def loss():
        out = enc(obs) if output == "vector" else enc.tokens(obs)
        return (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()

    # One step first: residual blocks start as the identity (zero-init GroupNorm gain), so the
    # second conv of each block only sees a gradient once that gain has moved.
    opt.zero_grad()
    loss().backward()
    opt.step()
    opt.zero_grad()
    loss().backward()
    dead = [n for n, p in enc.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead
    groups = {n.split(".")[0] + "." + n.split(".")[1] for n, _ in enc.named_parameters() if "." in n}
    expect = {"lowdim.agent_pos", "lowdim.keypoint", "cameras.front", "cameras.wrist"}
    if output == "tokens":
        expect |= {"to_token.front", "to_token.wrist", "to_token.agent_pos", "to_token.keypoint"}
    assert groups == expect


def test_state_dict_round_trips_through_safetensors(tmp_path):
    """ChunkPolicy saves with safetensors, which refuses tensors that share memory: a shared
    trunk must appear once in the state dict."""
    spec = COMBOS["two_cameras_proprio"]
    cfg = {"rgb": {**TINY, "crop": None, "share_backbone": True}}
    a = build_encoder(cfg, spec, 2).eval()
    save_file(a.state_dict(), str(tmp_path / "enc.safetensors"))
    torch.manual_seed(123)
    b = build_encoder(cfg, spec, 2).eval()
    b.load_state_dict(load_file(str(tmp_path / "enc.safetensors")))
    obs = make_obs(spec, 2)
    with torch.no_grad():
        assert torch.equal(a(obs), b(obs)) and torch.equal(a.tokens(obs), b.tokens(obs))


def test_presets_and_omegaconf_configs():
    from omegaconf import OmegaConf

    spec = {"img": ObsSpec((96, 96, 3), "uint8", "rgb"), "agent_pos": ObsSpec((2,))}
    enc = build_encoder(OmegaConf.create({"preset": "image_small", "rgb": {"feature_dim": 16}}), spec, 2)
    cam = enc.cameras["img"]
    assert cam.augment["img"].crop == (84, 84) and cam.out_dims["img"] == 16
    full = build_encoder({"preset": "resnet18_full"}, spec, 2)
    assert count_params(full.cameras["img"].trunk) > 3 * count_params(cam.trunk)
    from robolearn.config import config_root

    for path in sorted((config_root() / "policy" / "encoder").glob("*.yaml")):  # every preset builds
        assert build_encoder({"preset": path.stem}, spec, 2).out_dim > 0
    with pytest.raises(ConfigError, match="preset=nope"):
        build_encoder({"preset": "nope"}, spec, 2)


# ---- a small learning problem with a known answer ------------------------------------------


def render_squares(n: int, rng: np.random.Generator, size: int = 48, sq: int = 8):
    """A square of random colour at a random place on a plain random-colour background.
    Returns uint8 (n, 1, size, size, 3) and the square's centre in units of the image size."""
    bg = rng.integers(0, 256, (n, 1, 1, 3))
    fg = rng.integers(0, 256, (n, 1, 1, 3))
    img = np.broadcast_to(bg, (n, size, size, 3)).copy()
    xy = rng.integers(0, size - sq + 1, (n, 2))
    for i, (x, y) in enumerate(xy):
        img[i, y : y + sq, x : x + sq] = fg[i]
    return torch.from_numpy(img.astype(np.uint8))[:, None], torch.from_numpy((xy + sq / 2) / size).float()


@pytest.mark.parametrize("pool", ["spatial_softmax", "avg"])
def test_learns_square_position(pool):
    """Encoder + linear readout regress where the square is; held-out error well below chance.

    Predicting the mean position gives a mean abs error of ~0.21 of the image size; we require
    < 0.06 after 300 steps (observed ~0.02-0.035 over seeds), with random crop and colour jitter on.
    """
    mae, chance = _train_square_regressor(pool)
    assert chance > 0.18
    assert mae < 0.06, f"held-out mean abs error {mae:.3f} of image size (chance {chance:.3f})"


def _train_square_regressor(pool: str) -> tuple[float, float]:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = {"img": ObsSpec((48, 48, 3), "uint8", "rgb")}
    rgb = {"width": 8, "pool": pool, "num_keypoints": 16, "feature_dim": 32, "crop": 44, "color_jitter": 0.2}
    enc = build_encoder({"rgb": rgb, "output": "vector"}, spec, 1)
    readout = torch.nn.Linear(enc.out_dim, 2)
    opt = torch.optim.Adam([*enc.parameters(), *readout.parameters()], lr=3e-3)
    x_test, y_test = render_squares(512, np.random.default_rng(1))
    for _ in range(300):
        x, y = render_squares(64, rng)
        loss = F.mse_loss(readout(enc({"img": x})), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    enc.eval()
    with torch.no_grad():
        mae = (readout(enc({"img": x_test})) - y_test).abs().mean().item()
    return mae, (y_test - y_test.mean(0)).abs().mean().item()


# ---- errors a user can cause -----------------------------------------------------------------


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


SPEC = {"img": CAM, "agent_pos": ObsSpec((2,))}


@pytest.mark.parametrize(
    "bad, words",
    [
        (lambda o: {**o, "img": o["img"][:, :, :30]}, ["'img'", "48, 48, 3", "30, 48, 3"]),
        (lambda o: {**o, "img": o["img"].permute(0, 1, 4, 2, 3)}, ["'img'", "(B, 2, 48, 48, 3)", "3, 48, 48"]),
        (lambda o: {**o, "img": o["img"].float() / 255}, ["'img'", "uint8", "float32"]),
        (lambda o: {k: v for k, v in o.items() if k != "img"}, ["'img'", "missing", "agent_pos"]),
        (lambda o: {**o, "agent_pos": o["agent_pos"][:, :1]}, ["'agent_pos'", "(B, 2, 2)", "(3, 1, 2)"]),
    ],
)
def test_bad_inputs_raise_one_line_data_errors(bad, words):
    enc = build_encoder({"rgb": TINY}, SPEC, 2)
    with pytest.raises(DataError) as e:
        enc(bad(make_obs(SPEC, 2)))
    msg = one_line(e)
    for w in words:
        assert w in msg, msg
    with pytest.raises(DataError):
        enc.tokens(bad(make_obs(SPEC, 2)))


@pytest.mark.parametrize(
    "cfg, spec, words",
    [
        ({"rgb": {"widht": 8}}, SPEC, ["encoder.rgb", "widht"]),
        ({"rgb": {"pool": "max"}}, SPEC, ["pool", "max", "spatial_softmax"]),
        ({"rgb": {"crop": 50}}, SPEC, ["crop", "50", "48"]),
        ({"rgb": {"crop": None}}, {"img": ObsSpec((32, 32, 3), "uint8", "rgb")}, ["'img'"[1:-1], "1x1", "pool: avg"]),
        ({"rgb": {"crop": 1.5}}, SPEC, ["crop", "1.5"]),
        ({"rgb": {"backbone": "vit"}}, SPEC, ["backbone", "vit", "resnet18"]),
        ({"rgb": {"color_jitter": {"hue": 0.1}}}, SPEC, ["color_jitter", "hue"]),
        ({"keys": {"camera": {"crop": 8}}}, SPEC, ["encoder.keys", "camera"]),
        ({"keys": {"agent_pos": {"crop": 8}}}, SPEC, ["encoder.keys.agent_pos", "crop"]),
        ({"output": "both", "token_dim": 0}, SPEC, ["token_dim", "0"]),
        ({"output": "list"}, SPEC, ["output", "list"]),
        ({"decoder": {}}, SPEC, ["decoder"]),
        ({}, {"img": ObsSpec((32, 32), "uint8", "rgb")}, ["'img'", "(H, W, C)", "(32, 32)"]),
        ({}, {"depth": ObsSpec((32, 32, 1), "float32", "depth")}, ["'depth'", "'depth'", "rgb"]),
    ],
)
def test_bad_configs_raise_one_line_config_errors(cfg, spec, words):
    with pytest.raises(ConfigError) as e:
        build_encoder(cfg, spec, 2)
    msg = one_line(e)
    for w in words:
        assert w in msg, msg


def test_vector_only_encoder_refuses_tokens():
    enc = build_encoder({"output": "vector"}, {"agent_pos": ObsSpec((2,))}, 2)
    with pytest.raises(ConfigError, match="output"):
        enc.tokens({"agent_pos": torch.zeros(1, 2, 2)})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_host_uint8_frames_are_moved_and_augmented_on_device():
    spec = {"img": CAM, "agent_pos": ObsSpec((2,))}
    enc = build_encoder({"rgb": {**TINY, "color_jitter": 0.2}}, spec, 2).cuda()
    obs = make_obs(spec, 2)  # on the host, as the sampler gives them
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = enc(obs)
        tok = enc.tokens(obs)
    assert out.is_cuda and out.shape == (B, enc.out_dim) and tok.shape == (B, 4, enc.token_dim)
    out.float().sum().backward()
    assert all(p.grad is not None for p in enc.cameras["img"].parameters())


def test_a_registered_trunk_is_built_by_name():
    """A new image trunk is one function with @register_trunk: the encoder builds it by name, reads
    its feature-map size from it, and lists it with the others when a name is wrong."""
    from torch import nn

    from robolearn.encoders.image import TRUNKS, register_trunk

    class Tiny(nn.Module):
        def __init__(self, c, width):
            super().__init__()
            self.conv = nn.Conv2d(c, width, 3, stride=4, padding=1)
            self.out_channels = width

        def forward(self, x):
            return self.conv(x)

    register_trunk("tiny_for_test")(Tiny)
    try:
        spec = {"img": ObsSpec((32, 32, 3), "uint8", "rgb")}
        enc = build_encoder({"rgb": {"backbone": "tiny_for_test", "width": 5, "crop": None}}, spec, 1)
        trunk = enc.cameras["img"].trunk
        assert isinstance(trunk, Tiny) and count_params(trunk) == 5 * 3 * 9 + 5
        out = enc(
            {"img": torch.zeros(2, 1, 32, 32, 3, dtype=torch.uint8)}
        )  # 8x8 feature map: spatial softmax is allowed
        assert out.shape == (2, enc.out_dim)
        with pytest.raises(ConfigError, match="tiny_for_test"):
            build_encoder({"rgb": {"backbone": "nope"}}, spec, 1)
    finally:
        TRUNKS.pop("tiny_for_test")
