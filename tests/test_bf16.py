"""bf16 inference (stylekit.precision.bf16_copy) and the runners' choice of it: the shipped networks as
bf16 copies stay within 40 dB of float32 on a real photo, take and return float32, keep odd sizes and
leave the float32 model alone; ``variant="auto"`` picks PyTorch bf16 exactly when bf16 is on (the
``STYLEKIT_BF16`` override), a copy that fails the quality check is not used, and the bf16 AdaIN runner
takes masks."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from export import runtime
from export.verify import psnr
from stylekit.adain import AdaINModel, Decoder, transfer
from stylekit.errors import ParameterError
from stylekit.feedforward import TransformerNet, stylize_fast
from stylekit.images import load_image
from stylekit.precision import bf16_copy

EXAMPLES = Path(__file__).resolve().parent.parent / "demo" / "examples"


def _photo(size: int = 256) -> torch.Tensor:
    return load_image(EXAMPLES / "content" / "skimage_chelsea_cat.jpg", size)


def _painting(size: int = 192) -> torch.Tensor:
    return load_image(EXAMPLES / "style" / "munch_the_scream.jpg", size)


@pytest.fixture(autouse=True)
def _fresh_runners():
    runtime.clear_runners()
    yield
    runtime.clear_runners()


def _tiny_fast(seed: int = 0) -> TransformerNet:
    torch.manual_seed(seed)
    net = TransformerNet(3, width=(8, 8, 16), blocks=1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("gamma", "beta")):
                p.add_(0.5 * torch.randn_like(p))
    return net.eval()


def test_shipped_networks_in_bf16_match_float32():
    from stylekit.weights import load_adain_model, load_fast_model

    x = _photo(256)
    style = _painting(192)
    fast = load_fast_model()
    before = {k: v.clone() for k, v in fast.state_dict().items()}
    low = bf16_copy(fast)
    assert next(low.parameters()).dtype == torch.bfloat16 and next(fast.parameters()).dtype == torch.float32
    for i in range(fast.num_styles):
        a, b = stylize_fast(fast, x, i), stylize_fast(low, x, i)
        assert b.dtype == torch.float32 and b.shape == x.shape
        assert psnr(a, b) >= 40, fast.style_names[i] if hasattr(fast, "style_names") else i
    assert all(torch.equal(v, fast.state_dict()[k]) for k, v in before.items())  # the float32 model is untouched

    model = load_adain_model()
    lowa = model.bf16_copy()
    assert model.encoder.features[0].weight.dtype == torch.float32  # the shared encoder is untouched
    assert lowa.encoder is not model.encoder
    for alpha in (1.0, 0.5):
        a, b = transfer(model, x, style, alpha=alpha), transfer(lowa, x, style, alpha=alpha)
        assert b.dtype == torch.float32 and psnr(a, b) >= 40


def test_bf16_copies_keep_odd_sizes_and_float32_io():
    net = bf16_copy(_tiny_fast())
    adain = AdaINModel(Decoder(width=0.0625)).bf16_copy()
    g = torch.Generator().manual_seed(1)
    for h, w in ((97, 131), (5, 7), (33, 16)):
        x = torch.rand(1, 3, h, w, generator=g)
        with torch.no_grad():
            y = net(x, [1.0, 0.0, 0.0])
        assert y.dtype == torch.float32 and y.shape == x.shape
        out = transfer(adain, x, torch.rand(1, 3, 40, 40, generator=g))
        assert out.dtype == torch.float32 and out.shape == x.shape
    feats = adain.encoder(torch.rand(1, 3, 32, 32), ("relu1_1", "relu4_1"))
    assert all(f.dtype == torch.float32 for f in feats.values())


def test_auto_variant_follows_the_bf16_switch(monkeypatch, tmp_path):
    net = _tiny_fast()
    x = _photo(96)
    monkeypatch.setenv("STYLEKIT_BF16", "on")
    r = runtime.get_fast_runner(net=net, style_names=["a", "b", "c"], onnx_dir=tmp_path)
    assert (r.backend, r.variant) == ("torch", "bf16") and "bf16" in repr(r)
    assert torch.allclose(r.stylize(x, 1), stylize_fast(bf16_copy(net), x, 1), atol=1e-6)
    assert not list(tmp_path.iterdir())  # nothing exported
    a = runtime.get_adain_runner(model=AdaINModel(Decoder(width=0.0625)), onnx_dir=tmp_path)
    assert (a.backend, a.variant) == ("torch", "bf16")

    runtime.clear_runners()
    monkeypatch.setenv("STYLEKIT_BF16", "off")
    r = runtime.get_fast_runner(net=net, style_names=["a", "b", "c"], onnx_dir=tmp_path)
    assert r.backend == "onnx" and r.variant in ("fp32", "int8")  # the CPU auto variant of the ONNX files
    r = runtime.get_fast_runner(net=net, style_names=["a", "b", "c"], onnx_dir=tmp_path, backend="torch")
    assert (r.backend, r.variant) == ("torch", "fp32")
    # asked for explicitly, bf16 runs whatever the switch says
    r = runtime.get_fast_runner(net=net, style_names=["a", "b", "c"], onnx_dir=tmp_path, variant="bf16")
    assert (r.backend, r.variant) == ("torch", "bf16")


def test_onnx_backend_and_explicit_files_keep_onnxruntime(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEKIT_BF16", "on")
    net = _tiny_fast()
    r = runtime.get_fast_runner(net=net, style_names=["a", "b", "c"], onnx_dir=tmp_path, backend="onnx")
    assert r.backend == "onnx" and r.variant in ("fp32", "int8")  # the CPU auto variant of the ONNX files
    r2 = runtime.get_fast_runner(net=net, style_names=["a", "b", "c"], onnx_dir=tmp_path, file=r.path)
    assert r2.backend == "onnx"
    with pytest.raises(ParameterError, match="bf16 variant runs on the PyTorch backend"):
        runtime.get_fast_runner(net=net, style_names=["a", "b", "c"], onnx_dir=tmp_path, backend="onnx",
                                variant="bf16")
    with pytest.raises(ParameterError, match="does not take ONNX files"):
        runtime.get_fast_runner(net=net, style_names=["a", "b", "c"], onnx_dir=tmp_path, file=r.path, variant="bf16")
    with pytest.raises(ParameterError, match="variant must be one of"):
        runtime.get_adain_runner(model=AdaINModel(Decoder(width=0.0625)), onnx_dir=tmp_path, variant="bf32")


def test_a_bf16_copy_below_the_quality_bar_is_not_used(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEKIT_BF16", "on")
    monkeypatch.setattr(runtime, "BF16_MIN_PSNR", 200.0)  # no copy can pass
    monkeypatch.setattr(runtime, "_WARNED", set())
    monkeypatch.setattr(runtime, "_check_images", lambda: [_photo(256)])
    net = _tiny_fast()
    with pytest.warns(RuntimeWarning, match="running float32 instead"):
        r = runtime.get_fast_runner(net=net, style_names=["a", "b", "c"], onnx_dir=tmp_path)
    assert r.backend == "onnx" and r.variant in ("fp32", "int8")  # the CPU auto variant of the ONNX files
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = runtime.get_fast_runner(net=net, style_names=["a", "b", "c"], onnx_dir=tmp_path, backend="torch")
        a = runtime.get_adain_runner(model=AdaINModel(Decoder(width=0.0625)), onnx_dir=tmp_path, backend="torch")
    assert (r.backend, r.variant) == ("torch", "fp32") and (a.backend, a.variant) == ("torch", "fp32")


def test_bf16_adain_runner_takes_masks(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEKIT_BF16", "on")
    model = AdaINModel(Decoder(width=0.0625))
    a = runtime.get_adain_runner(model=model, onnx_dir=tmp_path)
    assert a.variant == "bf16"
    g = torch.Generator().manual_seed(3)
    c = torch.rand(1, 3, 40, 52, generator=g)
    s1, s2 = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    mask = torch.zeros(40, 52, dtype=torch.long)
    mask[:, 26:] = 1
    out = a.transfer(c, [s1, s2], mask=mask)
    assert out.shape == c.shape
    assert psnr(out, transfer(model, c, [s1, s2], mask=mask)) >= 35
