"""ONNX export (export/): graphs, parity with PyTorch at odd sizes, metadata, variants, runners,
fallbacks and the errors for corrupt or mismatched files. Tiny randomly initialized networks keep it
fast; one test exports a shipped model and checks parity on a real photo."""
from __future__ import annotations

import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import onnx
import onnxruntime as ort

from export import runtime  # noqa: E402
from export.exporter import OPSET, export_adain, export_fast, quantize_int8, to_fp16  # noqa: E402
from export.onnx_files import GRAPHS, load_checked, read_info  # noqa: E402
from export.verify import psnr, verify_file  # noqa: E402
from stylekit import __version__  # noqa: E402
from stylekit.adain import AdaINModel, Decoder, StyleStats, style_statistics, transfer  # noqa: E402
from stylekit.errors import ParameterError, WeightsError  # noqa: E402
from stylekit.feedforward import stylize_fast  # noqa: E402

ODD_SIZES = [(5, 7), (13, 40), (61, 77), (33, 16), (50, 9)]


def _img(h: int, w: int, seed: int, n: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, max(2, h // 6), max(2, w // 6), generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return (0.8 * x + 0.2 * torch.rand(n, 3, h, w, generator=g)).clamp(0, 1)


# ---- fixtures -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def adain_model() -> AdaINModel:
    torch.manual_seed(0)
    return AdaINModel(Decoder(width=0.0625))


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def adain_runner(adain_model, onnx_dir):
    return runtime.get_adain_runner(model=adain_model, variant="fp32", device="cpu", onnx_dir=onnx_dir)


def _tiny_fast_net(n_styles: int = 3, seed: int = 0):
    from stylekit.feedforward import TransformerNet

    torch.manual_seed(seed)
    net = TransformerNet(n_styles, width=(8, 8, 16), blocks=1)
    with torch.no_grad():  # random CIN affine parameters: the styles must differ
        for name, p in net.named_parameters():
            if name.endswith(("gamma", "beta")):
                p.add_(0.5 * torch.randn_like(p))
    return net.eval()


@pytest.fixture(scope="module")
def fast_net():
    return _tiny_fast_net(3)


@pytest.fixture(scope="module")
def fast_runner(fast_net, onnx_dir):
    return runtime.get_fast_runner(net=fast_net, style_names=["a", "b", "c"], variant="fp32", device="cpu",
                                   onnx_dir=onnx_dir)


# ---- AdaIN --------------------------------------------------------------------------------------------------
def test_adain_files_are_self_contained_checked_and_labelled(adain_runner, onnx_dir):
    for g, kind in ((adain_runner.style_graph, "adain-style"), (adain_runner.stylizer, "adain-stylizer")):
        assert g is not None and g.path.parent == onnx_dir
        model = onnx.load(str(g.path))
        onnx.checker.check_model(model, full_check=True)
        assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
        props = {p.key: p.value for p in model.metadata_props}
        assert props["stylekit.kind"] == kind
        assert props["stylekit.model"] == "custom"
        assert props["stylekit.version"] == __version__
        assert props["stylekit.input_range"] == "[0, 1]" and props["stylekit.layout"].startswith("NCHW")
        assert len(props["stylekit.source_sha256"]) == 64
        assert int(props["stylekit.opset"]) == OPSET == model.opset_import[0].version
        assert [i.name for i in model.graph.input] == list(GRAPHS[kind][0])
    assert sorted(p.suffix for p in onnx_dir.glob("custom-*adain*")) == [".onnx", ".onnx"]  # no side files


@pytest.mark.parametrize("h,w", ODD_SIZES)
def test_adain_parity_any_size(adain_model, adain_runner, h, w):
    c = _img(h, w, 1)
    s1, s2 = _img(37, 29, 2), _img(24, 70, 3)
    st1, st2 = adain_runner.style_stats(s1), adain_runner.style_stats(s2)
    ref1 = style_statistics(adain_model, s1)
    assert torch.allclose(st1.mean, ref1.mean, rtol=1e-4, atol=1e-3)
    assert torch.allclose(st1.std, ref1.std, rtol=1e-4, atol=1e-3)
    mix = StyleStats.mix([st1, st2], [0.3, 0.7])  # multi-style: exact by mixing statistics outside the graph
    out = adain_runner.stylize(c, mix, alpha=0.7)
    ref = transfer(adain_model, c, [s1, s2], weights=[0.3, 0.7], alpha=0.7)
    assert out.shape == c.shape
    assert (out - ref).abs().max().item() <= 1e-3


def test_adain_runner_transfer_batch_and_mask(adain_model, adain_runner):
    c = _img(40, 52, 4, n=2)
    s = _img(32, 32, 5)
    out = adain_runner.transfer(c, [s], alpha=1.0)
    ref = transfer(adain_model, c, [s])
    assert out.shape == (2, 3, 40, 52) and (out - ref).abs().max().item() <= 1e-3
    with pytest.raises(NotImplementedError, match="PyTorch"):
        adain_runner.transfer(c[:1], [s, s], mask=torch.zeros(40, 52, dtype=torch.long))
    with pytest.raises(ParameterError):
        adain_runner.stylize(c, adain_runner.style_stats(s), alpha=1.5)


def test_runner_is_cached_and_thread_safe(adain_model, adain_runner, onnx_dir):
    assert runtime.get_adain_runner(model=adain_model, variant="fp32", device="cpu", onnx_dir=onnx_dir) is adain_runner
    st = adain_runner.style_stats(_img(30, 30, 6))
    xs = [_img(33 + 8 * i, 47, 10 + i) for i in range(4)]
    expected = [adain_runner.stylize(x, st) for x in xs]
    results: dict[int, torch.Tensor] = {}

    def work(i: int) -> None:
        results[i] = adain_runner.stylize(xs[i], st)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert torch.equal(results[i], expected[i])


# ---- feed-forward -----------------------------------------------------------------------------------------------------
def test_fast_file_checked_and_labelled(fast_runner):
    assert fast_runner.backend == "onnx"
    model = onnx.load(str(fast_runner.path))
    onnx.checker.check_model(model, full_check=True)
    info = read_info(fast_runner.path)
    assert info.kind == "fast" and info.styles == ["a", "b", "c"] and info.variant == "fp32"
    assert info.version == __version__ and info.opset == OPSET and len(info.source_sha256) == 64
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] and dims[2] and dims[3]  # dynamic batch, height, width


@pytest.mark.parametrize("h,w", ODD_SIZES)
def test_fast_parity_any_size(fast_net, fast_runner, h, w):
    x = _img(h, w, 7)
    for weights in ([1, 0, 0], [0.2, 0.5, 0.3], None, 2):
        out = fast_runner.stylize(x, weights)
        ref = stylize_fast(fast_net, x, weights)
        assert out.shape == x.shape
        assert (out - ref).abs().max().item() <= 1e-3
    out = fast_runner.stylize(x, 1, stroke_scale=0.8)   # the resizes around the graph are the library's
    assert out.shape == x.shape
    assert (out - stylize_fast(fast_net, x, 1, stroke_scale=0.8)).abs().max().item() <= 1e-3


def test_fast_down_only_net_exports_with_parity(onnx_dir, tmp_path):
    """A ``norm="down-only"`` net (per-style affines after the downsampling layers) exports and matches too."""
    from stylekit.feedforward import to_down_only

    net = to_down_only(_tiny_fast_net(2, seed=4), _img(40, 44, 3))
    runner = runtime.get_fast_runner(net=net, style_names=["a", "b"], variant="fp32", device="cpu",
                                     onnx_dir=tmp_path)
    assert runner.backend == "onnx"
    x = _img(37, 53, 5)
    for weights in ([1, 0], [0.4, 0.6]):
        assert (runner.stylize(x, weights) - stylize_fast(net, x, weights)).abs().max().item() <= 1e-3


def test_fast_leaky_net_exports_with_parity(tmp_path):
    """A net with leaky ReLUs (``negative_slope``) exports and matches too."""
    from stylekit.feedforward import TransformerNet

    base = _tiny_fast_net(2, seed=6)
    net = TransformerNet.from_config({**base.config, "negative_slope": 0.05})
    net.load_state_dict(base.state_dict())
    x = _img(37, 53, 8)
    for model in (base.eval(), net.eval()):  # the same weights: two graphs in one cache folder
        runner = runtime.get_fast_runner(net=model, style_names=["a", "b"], variant="fp32", device="cpu",
                                         onnx_dir=tmp_path)
        assert runner.backend == "onnx"
        for weights in ([1, 0], [0.4, 0.6]):
            assert (runner.stylize(x, weights) - stylize_fast(model, x, weights)).abs().max().item() <= 1e-3
    assert len(list(tmp_path.glob("*.fast.fp32.onnx"))) == 2


def test_fast_context_net_exports_with_parity_at_every_size(tmp_path):
    """A net with a context branch (``context=8``, session 35) exports once and matches PyTorch at odd,
    tiny and large sizes: its padding is traced, not baked in at the export's size."""
    from stylekit.feedforward import TransformerNet

    torch.manual_seed(9)
    net = TransformerNet(2, width=(8, 8, 16), blocks=1, norm="down-only", negative_slope=0.05, context=8).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    runner = runtime.get_fast_runner(net=net, style_names=["a", "b"], variant="fp32", device="cpu", onnx_dir=tmp_path)
    assert runner.backend == "onnx"
    for i, (h, w) in enumerate(ODD_SIZES + [(97, 131), (300, 517)]):
        x = _img(h, w, 20 + i)
        got, want = runner.stylize(x, [0.3, 0.7]), stylize_fast(net, x, [0.3, 0.7])
        assert got.shape == x.shape and (got - want).abs().max().item() <= 1e-3, (h, w)


def test_fast_runner_matches_stylize_fast_controls(fast_net, fast_runner):
    x = _img(37, 41, 11)
    for kw in ({"strength": 0.4}, {"preserve_color": True}, {"strength": 0.7, "preserve_color": "luminance"}):
        out = fast_runner(x, [0.0, 1.0, 1.0], **kw)  # callable like stylize_fast, for the CLI
        ref = stylize_fast(fast_net, x, [0.0, 1.0, 1.0], **kw)
        assert (out - ref).abs().max().item() <= 1e-3, kw
    with pytest.raises(ParameterError):
        fast_runner(x, 0, strength=1.5)


def test_fast_batch_with_per_image_weights(fast_net, fast_runner):
    x = _img(24, 31, 8, n=2)
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    out = fast_runner.stylize(x, w)
    for i in range(2):
        assert torch.allclose(out[i:i + 1], fast_runner.stylize(x[i:i + 1], w[i]), atol=1e-5)
    assert not torch.allclose(out[0], fast_runner.stylize(x[:1], "c")[0], atol=1e-3)  # the styles differ
    with pytest.raises(ParameterError):
        fast_runner.stylize(x, [1.0, 0.0])  # wrong number of weights
    with pytest.raises(ParameterError):
        fast_runner.stylize(x, [0.0, 0.0, 0.0])


def test_fp16_and_int8_variants(fast_runner, tmp_path):
    fp16 = to_fp16(fast_runner.path, tmp_path / "f.fp16.onnx")
    calib = [{"image": _img(40, 48, 20 + i).numpy(), "style_weights": np.eye(3, dtype=np.float32)[i % 3][None]}
             for i in range(3)]
    int8 = quantize_int8(fast_runner.path, tmp_path / "f.int8.onnx", calib)
    x = _img(45, 61, 9)
    ref = fast_runner.stylize(x, [0, 1, 0]).numpy()
    for path, variant in ((fp16, "fp16"), (int8, "int8")):
        model, info = load_checked(path, kind="fast", sha256=read_info(fast_runner.path).source_sha256)
        assert info.variant == variant
        ops = {n.op_type for n in model.graph.node}
        assert ("QuantizeLinear" in ops) == (variant == "int8")
        r = runtime.get_fast_runner(net=fast_runner.source.modules(), style_names=["a", "b", "c"], file=path,
                                    device="cpu")
        y = r.stylize(x, [0, 1, 0]).numpy()
        assert y.shape == ref.shape and np.isfinite(y).all()
        if variant == "fp16":
            assert psnr(y, ref) >= 40


# ---- fallbacks and errors -------------------------------------------------------------------------------------------
def test_falls_back_to_pytorch_without_onnxruntime(adain_model, monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEKIT_BF16", "off")  # auto would run PyTorch bf16 on a bf16 CPU, onnxruntime or not
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    monkeypatch.setattr(runtime, "_WARNED", set())
    assert not runtime.onnx_available()
    with pytest.warns(RuntimeWarning, match="onnxruntime is not installed"):
        r = runtime.get_adain_runner(model=adain_model, onnx_dir=tmp_path)
    assert r.backend == "torch" and not list(tmp_path.iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning, not one per call
        r2 = runtime.get_adain_runner(model=adain_model, onnx_dir=tmp_path, variant="fp32")
    c, s = _img(21, 30, 1), _img(20, 20, 2)
    assert torch.allclose(r2.transfer(c, [s], alpha=0.5), transfer(adain_model, c, [s], alpha=0.5))
    with pytest.raises(ParameterError, match="onnxruntime"):
        runtime.get_adain_runner(model=adain_model, onnx_dir=tmp_path, backend="onnx")


def test_missing_file_falls_back_once_or_errors(adain_model, tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "_WARNED", set())
    missing = tmp_path / "nope.onnx"
    with pytest.warns(RuntimeWarning, match="does not exist"):
        r = runtime.get_adain_runner(model=adain_model, stylizer_file=missing, onnx_dir=tmp_path)
    assert r.backend == "torch"
    with pytest.raises(WeightsError, match="does not exist"):
        runtime.get_adain_runner(model=adain_model, stylizer_file=missing, onnx_dir=tmp_path, backend="onnx")


def test_corrupt_files_give_clear_errors(adain_model, adain_runner, tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07this is not a protobuf" * 50)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(adain_runner.stylizer.path.read_bytes()[:200_000])
    for f in (garbage, truncated):
        with pytest.raises(WeightsError, match=f.name):
            runtime.get_adain_runner(model=adain_model, stylizer_file=f, onnx_dir=tmp_path, backend="onnx")


def test_mismatched_files_give_clear_errors(adain_model, adain_runner, fast_runner, tmp_path):
    style_file, stylizer_file = adain_runner.style_graph.path, adain_runner.stylizer.path
    with pytest.raises(WeightsError, match="'adain-style' graph, expected 'adain-stylizer'"):
        runtime.get_adain_runner(model=adain_model, stylizer_file=style_file, onnx_dir=tmp_path)
    with pytest.raises(WeightsError, match="'fast' graph"):
        runtime.get_adain_runner(model=adain_model, stylizer_file=fast_runner.path, onnx_dir=tmp_path)
    torch.manual_seed(123)
    other = AdaINModel(Decoder(width=0.0625))  # same architecture, other weights
    with pytest.raises(WeightsError, match="other weights"):
        runtime.get_adain_runner(model=other, style_file=style_file, stylizer_file=stylizer_file, onnx_dir=tmp_path)
    # an ONNX file that is not a stylekit export (no metadata)
    m = onnx.load(str(stylizer_file))
    del m.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(m, str(plain))
    with pytest.raises(WeightsError, match="not a stylekit ONNX export"):
        runtime.get_adain_runner(model=adain_model, stylizer_file=plain, onnx_dir=tmp_path)
    # right metadata, wrong inputs
    m = onnx.load(str(stylizer_file))
    m.graph.input[3].name = "beta"
    for n in m.graph.node:
        for k, i in enumerate(n.input):
            if i == "alpha":
                n.input[k] = "beta"
    renamed = tmp_path / "renamed.onnx"
    onnx.save(m, str(renamed))
    with pytest.raises(WeightsError, match="inputs"):
        runtime.get_adain_runner(model=adain_model, stylizer_file=renamed, onnx_dir=tmp_path)


def test_stale_cache_file_is_exported_again(adain_model, tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "_WARNED", set())
    r = runtime.get_adain_runner(model=adain_model, variant="fp32", onnx_dir=tmp_path)
    path = r.stylizer.path
    path.write_bytes(b"broken")
    runtime.clear_runners()
    with pytest.warns(RuntimeWarning, match="re-exporting"):
        r2 = runtime.get_adain_runner(model=adain_model, variant="fp32", onnx_dir=tmp_path)
    assert r2.stylizer.path == path and load_checked(path)[1].kind == "adain-stylizer"


def test_verify_reports_pass_for_fresh_exports(adain_runner, fast_runner):
    photos = [_img(90, 120, 30), _img(80, 60, 31)]
    sizes = ((31, 45), (70, 53))
    for path, src in ((adain_runner.stylizer.path, adain_runner.source), (adain_runner.style_graph.path, adain_runner.source),
                      (fast_runner.path, fast_runner.source)):
        checks = verify_file(path, source=src, photos=photos, sizes=sizes)
        assert len(checks) == 2 and all(c.ok for c in checks), checks


def test_cli_errors_are_one_line(tmp_path, capsys):
    from export.cli import main

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"nope")
    assert main(["verify", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.onnx" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# ---- the shipped models -----------------------------------------------------------------------------------------------
def _demo_photo() -> torch.Tensor:
    from export.data import demo_photos
    from stylekit.images import load_image

    photos = demo_photos()
    assert photos, "demo/examples/ must hold the example photos"
    return load_image(photos[0], 160)


def test_shipped_models_export_with_parity_on_a_real_photo(tmp_path):
    from export.catalogue import adain_source, fast_source

    photo = _demo_photo()
    h, w = photo.shape[-2:]
    photo = photo[..., : h - (1 - h % 2), : w - (1 - w % 2)]  # odd sizes
    src = fast_source(None)  # the shipped models: both must be in the catalogue
    path = export_fast(src.modules(), tmp_path / "fast.onnx", model_name=src.name, style_names=src.styles,
                       source_sha256=src.sha256, architecture=src.architecture)
    checks = verify_file(path, source=src, photos=[photo], sizes=[tuple(photo.shape[-2:])])
    assert all(c.max_abs <= 1e-3 for c in checks), checks
    asrc = adain_source(None)
    m = asrc.modules()
    _, zp = export_adain(m.encoder, m.decoder, tmp_path / "s.onnx", tmp_path / "z.onnx", model_name=asrc.name,
                         source_sha256=asrc.sha256, architecture=asrc.architecture)
    checks = verify_file(zp, source=asrc, photos=[photo], sizes=[tuple(photo.shape[-2:])])
    assert all(c.max_abs <= 1e-3 for c in checks), checks


def test_stylekit_cli_reaches_the_export_commands(tmp_path, capsys):
    from stylekit.cli import main

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00" * 10)
    assert main(["export", "verify", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.onnx" in err and "Traceback" not in err


def test_bench_table_rows_on_cpu(tmp_path):
    """The bench's own code path (tiny size, one run): one row per backend, eager is the 1.00 reference."""
    from export.bench import bench_fast, format_rows

    rows, _ = bench_fast([48], 1, ["fp32"], tmp_path, log=lambda m: None, measure_memory=False,
                         emit=lambda m: None)
    assert [r.backend for r in rows] == ["torch eager fp32", "torch bf16", "onnxruntime fp32"]
    assert rows[0].ratio == pytest.approx(1.0) and rows[1].median_s > 0 and rows[2].median_s > 0
    assert "| fast | 48² | onnxruntime fp32 |" in format_rows(rows)
    from export.bench import bench_adain

    rows = bench_adain([48], 1, ["fp32"], tmp_path, log=lambda m: None, measure_memory=False, emit=lambda m: None)
    assert [(r.mode, r.backend) for r in rows] == [("adain (cached stats)", "torch eager fp32"),
                                                    ("adain (cached stats)", "torch bf16"),
                                                    ("adain (cached stats)", "onnxruntime fp32")]


def test_bench_on_cuda_without_a_gpu_says_so(capsys, monkeypatch):
    from export.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a GPU machine
    assert main(["bench", "--quick", "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_a_first_export_does_not_hold_up_other_runners():
    """Runner creation (a first export: seconds) waits only for the same runner, made exactly once."""
    started, release, made = threading.Event(), threading.Event(), []

    def slow():
        made.append("slow")
        started.set()
        release.wait(30)
        return "runner-a"

    key_a, key_b = ("test", "a", object()), ("test", "b", object())
    runtime._cached_runner(key_b, lambda: "runner-b")
    results = []
    threads = [threading.Thread(target=lambda: results.append(runtime._cached_runner(key_a, slow))) for _ in range(3)]
    for t in threads:
        t.start()
    assert started.wait(30)
    assert runtime._cached_runner(key_b, lambda: "not again") == "runner-b"  # not blocked by the export of a
    release.set()
    for t in threads:
        t.join(30)
    assert results == ["runner-a"] * 3 and made == ["slow"]


def test_adain_runner_detail_matches_pytorch(adain_model, adain_runner):
    """detail > 0 on onnxruntime: the stylizer graph a second time at alpha 0, combined like transfer()."""
    c, s = _img(45, 61, 70), _img(40, 40, 71)
    stats = adain_runner.style_stats(s)
    for alpha, detail in ((1.0, 0.5), (0.6, 1.0)):
        ref = transfer(adain_model, c, [stats], alpha=alpha, detail=detail)
        assert (adain_runner.stylize(c, stats, alpha, detail) - ref).abs().max() < 1e-3
    assert (adain_runner.transfer(c, [s], detail=0.5) - transfer(adain_model, c, [s], detail=0.5)).abs().max() < 1e-3
    with pytest.raises(ParameterError, match="detail must be"):
        adain_runner.stylize(c, stats, 1.0, 1.5)
    # a cached reconstruction gives the same result, on both backends
    torch_runner = runtime.get_adain_runner(model=adain_model, backend="torch", variant="fp32")
    for r in (adain_runner, torch_runner):
        rec = r.reconstruction(c)
        assert rec.shape == c.shape
        assert torch.allclose(r.stylize(c, stats, 0.8, 0.5, reconstruction=rec), r.stylize(c, stats, 0.8, 0.5),
                              atol=1e-5)
        with pytest.raises(ParameterError, match="make it from this content"):
            r.stylize(c, stats, 1.0, 0.5, reconstruction=rec[..., :-1])
