"""VGG-19 encoder: bundled Caffe weights, named layers, pooling, torchvision-format state dicts."""
from __future__ import annotations

import pickle

import pytest
import torch

from stylekit.encoder import (LAYER_NAMES, VGG19Encoder, channels, load_encoder, read_state_dict)
from stylekit.errors import ParameterError, WeightsError

from .conftest import synthetic_image

STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# (mean, std) of each layer's output on synthetic_image(32, 40, 0, "content"), computed once with the
# bundled weights. Max and avg pooling agree up to relu1_1 and differ from relu2_1 on.
FINGERPRINT = {
    "max": {"relu1_1": (27.5596, 50.1893), "relu2_1": (148.4008, 262.3509), "relu3_1": (277.186, 480.4592),
            "relu4_1": (1034.9221, 1594.9888), "relu5_1": (115.8159, 262.5241)},
    "avg": {"relu1_1": (27.5596, 50.1893), "relu2_1": (126.1661, 230.5322), "relu3_1": (166.0237, 301.8996),
            "relu4_1": (363.6104, 594.9515), "relu5_1": (21.5781, 50.2189)},
}


def test_layer_names_follow_torchvision_layout():
    assert len(LAYER_NAMES) == 37
    assert LAYER_NAMES[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert LAYER_NAMES.index("conv5_1") == 28 and LAYER_NAMES.index("relu4_2") == 22
    assert LAYER_NAMES[-1] == "pool5"
    assert [channels(l) for l in STYLE] == [64, 128, 256, 512, 512]


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_bundled_weights_fingerprint(pooling):
    enc = load_encoder(pooling=pooling)
    assert enc is load_encoder(pooling=pooling)  # cached
    x = synthetic_image(32, 40, 0, "content")
    feats = enc(x, STYLE)
    assert list(feats) == list(STYLE)
    shapes = [tuple(feats[l].shape) for l in STYLE]
    assert shapes == [(1, 64, 32, 40), (1, 128, 16, 20), (1, 256, 8, 10), (1, 512, 4, 5), (1, 512, 2, 2)]
    for l, (mean, std) in FINGERPRINT[pooling].items():
        assert feats[l].mean().item() == pytest.approx(mean, rel=2e-3), l
        assert feats[l].std().item() == pytest.approx(std, rel=2e-3), l
    assert (feats["relu3_1"] >= 0).all()


def test_encoder_is_frozen_eval_and_stops_early():
    enc = load_encoder()
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training
    ran = []
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: ran.append(k)) for k, m in enumerate(enc.features)]
    try:
        out = enc(synthetic_image(16, 16), ["relu2_1", "conv1_2"])
    finally:
        for h in hooks:
            h.remove()
    assert set(out) == {"relu2_1", "conv1_2"}
    assert ran == list(range(LAYER_NAMES.index("relu2_1") + 1))


def test_caffe_preprocessing_is_bgr_minus_mean():
    enc = load_encoder()
    x = torch.zeros(1, 3, 2, 2)
    x[:, 0] = 1.0  # pure red
    p = enc.preprocess(x)
    assert torch.allclose(p[0, :, 0, 0], torch.tensor([-103.939, -116.779, 255 - 123.68]))


def test_gradients_flow_to_the_input():
    enc = load_encoder()
    x = synthetic_image(16, 16).requires_grad_(True)
    enc(x, ["relu2_1"])["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_unknown_layer_and_options():
    with pytest.raises(ParameterError, match="unknown VGG-19 layer"):
        load_encoder()(synthetic_image(16, 16), ["relu9_9"])
    with pytest.raises(ParameterError):
        VGG19Encoder(pooling="median")


def _synthetic_torchvision_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    ref = VGG19Encoder(preprocessing="torchvision")
    state = {k: (v * 0.5).contiguous() for k, v in ref.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # extra keys of a full vgg19 state dict are ignored
    return state


@pytest.fixture(scope="module")
def tv_state():
    return _synthetic_torchvision_state()


def _reference_output(state, x):
    ref = VGG19Encoder(preprocessing="torchvision")
    ref.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")})
    return ref(x, ["relu3_1"])["relu3_1"]


def test_torchvision_state_dict_safetensors_and_pth(tmp_path, tv_state):
    from safetensors.torch import save_file

    x = synthetic_image(24, 24)
    expected = _reference_output(tv_state, x)
    st = tmp_path / "vgg.safetensors"
    save_file(tv_state, str(st))
    pth = tmp_path / "vgg.pth"
    torch.save(tv_state, pth)
    wrapped = tmp_path / "vgg_wrapped.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in tv_state.items()}}, wrapped)
    for path in (st, pth, wrapped):
        enc = load_encoder(path)
        assert enc.preprocessing == "torchvision"
        assert torch.allclose(enc(x, ["relu3_1"])["relu3_1"], expected, rtol=1e-5, atol=1e-5), path.name
    # ImageNet normalization inside
    p = load_encoder(st).preprocess(torch.full((1, 3, 1, 1), 0.485))
    assert p[0, 0, 0, 0].item() == pytest.approx(0.0, abs=1e-6)


def test_bad_weight_files_raise_weights_error(tmp_path, tv_state):
    from safetensors.torch import save_file

    with pytest.raises(WeightsError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError):
        load_encoder(junk)
    # a pickle with an arbitrary object is refused (weights_only)
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"features.0.weight": object()}, f)
    with pytest.raises(WeightsError):
        read_state_dict(evil)
    partial = {k: v for k, v in tv_state.items() if not k.startswith("features.34")}
    p = tmp_path / "partial.safetensors"
    save_file(partial, str(p))
    with pytest.raises(WeightsError, match="missing"):
        load_encoder(p)
    wrong = dict(tv_state)
    wrong["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    q = tmp_path / "wrong.safetensors"
    save_file(wrong, str(q))
    with pytest.raises(WeightsError, match="shape"):
        load_encoder(q)
