"""Hostile input at every entry point: library, CLI, export, demo (corpus in tests/hostile.py).

For every bad input the library raises a :class:`~stylekit.errors.StyleKitError` subclass with a clear
message; the CLI exits non-zero with that one line and no traceback, writing nothing; the demo answers
with ``gr.Error`` and serves the next request. Good-but-odd images load correctly.

The CLI is run in-process through :func:`stylekit.cli.main` for the whole corpus (same code path as the
``stylekit`` entry point, minus interpreter start-up) and as real subprocesses for a sample.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stylekit.errors import ImageError, ParameterError, StyleKitError, WeightsError

from .hostile import PICKLE_MARKER, good_jpeg, image_cases, onnx_cases, weights_cases

REPO = Path(__file__).resolve().parent.parent
CASES = image_cases()
BAD = [c for c in CASES if not c.ok]
GOOD = [c for c in CASES if c.ok]
NAN, INF = float("nan"), float("inf")


def test_corpus_is_large_enough():
    assert len(CASES) >= 25 and len(BAD) >= 15 and len(GOOD) >= 10


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("corpus")
    return {c.name: c.write(d) for c in CASES}


@pytest.fixture(scope="module")
def good_image(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("good") / "good.jpg"
    p.write_bytes(good_jpeg(64, 48))
    return p


# ---- library: images ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_library_loads_or_refuses_each_image(case, corpus):
    from stylekit.images import load_image

    p = corpus[case.name]
    if case.ok:
        x = load_image(p)
        if case.check:
            case.check(x)
        # the same bytes in memory give the same tensor
        assert torch.equal(load_image(p.read_bytes()), x)
        return
    with pytest.raises(ImageError) as ei:
        load_image(p)
    msg = str(ei.value)
    assert case.needle in msg.lower(), msg
    assert "\n" not in msg and len(msg) < 400 and "Traceback" not in msg
    if p.is_file() and p.stat().st_size < 5_000_000:  # the same refusal for raw bytes (uploads)
        with pytest.raises(ImageError):
            load_image(p.read_bytes())


def test_library_refuses_a_missing_file(tmp_path):
    from stylekit.images import load_image

    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")


# ---- library: parameters ------------------------------------------------------------------------------------------
BAD_SIZES = [NAN, INF, -INF, -1, 0, 8, 10**9, 1.5, "abc", None, "", [512]]


@pytest.mark.parametrize("size", BAD_SIZES, ids=[repr(s) for s in BAD_SIZES])
def test_bad_sizes_are_parameter_errors(size, good_image):
    from stylekit.images import check_size, load_image

    with pytest.raises(ParameterError):
        check_size(size)
    if size is not None:
        with pytest.raises(ParameterError):
            load_image(good_image, size=size)


@pytest.mark.parametrize("kw", [dict(steps=-1), dict(steps=0), dict(steps=NAN), dict(steps=10**9),
                                dict(style_weight=NAN), dict(style_weight=-1.0), dict(content_weight=INF),
                                dict(tv_weight=-0.5), dict(lr=0.0), dict(lr=NAN), dict(style_scale=100.0),
                                dict(noise_ratio=2.0), dict(init="bogus"), dict(optimizer="sgd"),
                                dict(style_layers={"relu9_9": 1.0}), dict(style_layers={"relu1_1": NAN})],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_bad_gatys_settings(kw):
    from stylekit.gatys import get_preset

    with pytest.raises(ParameterError):
        get_preset("default", **kw)


def test_bad_gatys_call_arguments():
    from stylekit.gatys import get_preset, stylize_gatys

    c, s = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    cfg = get_preset("default", steps=1, multiscale=False)
    for kw in (dict(size=NAN), dict(size=-5), dict(size=10**6), dict(style_weights=[1.0, 2.0]),
               dict(style_weights=[NAN]), dict(style_weights=[-1.0])):
        with pytest.raises(ParameterError):
            stylize_gatys(c, [s], cfg, **{"size": 32, **kw})
    for bad in (torch.full((1, 3, 32, 32), NAN), torch.rand(1, 4, 32, 32), torch.rand(3, 32), "x", None):
        with pytest.raises(StyleKitError):
            stylize_gatys(bad, [s], cfg, size=32)
    with pytest.raises(StyleKitError):
        stylize_gatys(c, [], cfg, size=32)


@pytest.fixture(scope="module")
def tiny_fast_net():
    from stylekit.feedforward import TransformerNet

    return TransformerNet(num_styles=3, width=(4, 8, 8), blocks=1).eval()


@pytest.mark.parametrize("weights", [[1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [NAN, 0, 1], [-1.0, 1.0, 1.0], [0, 0, 0],
                                     [INF, 0, 0], 7, -1])
def test_bad_style_blend_vectors(tiny_fast_net, weights):
    from stylekit.feedforward import stylize_fast

    with pytest.raises(ParameterError):
        stylize_fast(tiny_fast_net, torch.rand(1, 3, 32, 32), weights)


@pytest.mark.parametrize("strength", [NAN, INF, -0.1, 1.5, "x"])
def test_bad_strength(tiny_fast_net, strength):
    from stylekit.feedforward import stylize_fast

    with pytest.raises(ParameterError):
        stylize_fast(tiny_fast_net, torch.rand(1, 3, 32, 32), 0, strength=strength)


@pytest.mark.parametrize("spec", [{"starry_night": NAN}, {"starry_night": -1}, {"starry_night": INF},
                                  {"starry_night": 0}, {"no_such_style": 1}, {}, "", "no_such_style",
                                  {"starry_night": "heavy"}, 42])
def test_bad_catalogue_blends(spec):
    from stylekit.weights import list_styles, style_vector

    assert list_styles(), "the shipped gallery must list its styles"
    with pytest.raises(ParameterError):
        style_vector(spec)


@pytest.mark.parametrize("alpha", [NAN, INF, -0.01, 1.01, "x", None])
def test_bad_adain_alpha(alpha):
    from stylekit.adain import check_alpha

    with pytest.raises(ParameterError):
        check_alpha(alpha)


@pytest.mark.parametrize("mask", [torch.zeros(10, 10), torch.zeros(48, 63), torch.zeros(2, 48, 64),
                                  torch.full((48, 64), 5), torch.full((48, 64), -1), torch.full((48, 64), 0.5),
                                  torch.full((48, 64), NAN), torch.zeros(0, 0)],
                         ids=["small", "one_off", "two_channels", "label_too_big", "negative", "fraction", "nan",
                              "empty"])
def test_masks_of_the_wrong_size_or_labels(mask):
    from stylekit.adain import check_mask

    with pytest.raises(ParameterError):
        check_mask(mask, 2, 48, 64)


# ---- library: weights files ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    return d, weights_cases(d)


def _loaders():
    from stylekit import adain, encoder, training, weights

    return {"fast_model_from_file": weights.fast_model_from_file, "read_checkpoint": training.read_checkpoint,
            "load_decoder": adain.load_decoder, "read_state_dict": encoder.read_state_dict}


@pytest.mark.parametrize("loader", ["fast_model_from_file", "read_checkpoint", "load_decoder", "read_state_dict"])
def test_bad_weight_files_are_weights_errors(bad_weights, loader):
    d, files = bad_weights
    fn = _loaders()[loader]
    for name, path in files.items():
        if loader == "read_state_dict" and name == "foreign.safetensors":
            continue  # a generic reader: any valid safetensors file is fine for it
        with pytest.raises(WeightsError) as ei:
            fn(path)
        assert str(path.name) in str(ei.value), (name, str(ei.value))
    assert not (d / PICKLE_MARKER).exists(), "a pickle was executed on the load path"


def test_weights_of_another_architecture(tmp_path):
    """A fast net's file given to the AdaIN loader and vice versa."""
    from stylekit.adain import Decoder, load_decoder, save_decoder
    from stylekit.weights import MODELS_DIR, fast_model_from_file, get_record

    dec = save_decoder(Decoder(width=0.125), tmp_path / "decoder.safetensors")
    with pytest.raises(WeightsError, match="not a stylekit feed-forward"):
        fast_model_from_file(dec)
    fast = get_record(None, "fast").path
    assert MODELS_DIR in fast.parents
    with pytest.raises(WeightsError):
        load_decoder(fast)


@pytest.fixture
def tampered_record(tmp_path):
    """A catalogue record whose file differs from its sha256 (a flipped byte in a copy of the shipped file)."""
    from stylekit import weights

    rec = weights.get_record(None, "fast")
    p = tmp_path / "tampered.safetensors"
    data = bytearray(rec.path.read_bytes())
    data[-100] ^= 0x01  # a weight bit: the file still parses
    p.write_bytes(bytes(data))
    r = weights.ModelRecord("test_tampered", p, rec.sha256, "fast", dict(rec.metadata))
    weights.register_model(r)
    yield r
    with weights._LOCK:
        weights._EXTRA.pop("test_tampered", None)


def test_sha256_mismatch_is_refused(tampered_record):
    from stylekit.weights import load_fast_model, verify

    with pytest.raises(WeightsError, match="sha256"):
        verify(tampered_record)
    with pytest.raises(WeightsError, match="corrupt or was replaced"):
        load_fast_model("test_tampered")


# ---- library: ONNX files ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_onnx(tmp_path_factory):
    return onnx_cases(tmp_path_factory.mktemp("onnx"))


def test_bad_onnx_files_are_weights_errors(bad_onnx):
    from export.onnx_files import load_checked

    for name, path in bad_onnx.items():
        with pytest.raises(WeightsError) as ei:
            load_checked(path, kind="fast")
        assert path.name in str(ei.value), name


def test_runner_refuses_bad_onnx_files(bad_onnx, tiny_fast_net):
    from export.runtime import get_fast_runner

    for name, path in bad_onnx.items():
        with pytest.raises(WeightsError):
            get_fast_runner(net=tiny_fast_net, style_names=["a", "b", "c"], file=path, backend="onnx")


@pytest.mark.parametrize("weights", [[1.0], [1.0, 0.0, 0.0, 0.0], [NAN, 1.0, 0.0], [-1.0, 1.0, 1.0], [0, 0, 0]])
def test_runner_refuses_bad_blend_vectors(tiny_fast_net, weights):
    from export.runtime import get_fast_runner

    runner = get_fast_runner(net=tiny_fast_net, style_names=["a", "b", "c"], backend="torch")
    with pytest.raises(ParameterError):
        runner.stylize(torch.rand(1, 3, 32, 32), weights)
    for strength in (NAN, -1.0, 3.0):
        with pytest.raises(ParameterError):
            runner.stylize(torch.rand(1, 3, 32, 32), [1.0, 0.0, 0.0], strength=strength)
    for bad in (torch.full((1, 3, 32, 32), NAN), torch.rand(1, 1, 32, 32), torch.rand(32, 32)):
        with pytest.raises(StyleKitError):
            runner.stylize(bad, [1.0, 0.0, 0.0])


# ---- CLI (in-process) ---------------------------------------------------------------------------------------------
def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``stylekit ARGV`` in this process: (exit status, stdout, stderr). Exceptions escaping main() fail."""
    from stylekit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse errors
            rc = e.code if isinstance(e.code, int) else 2
    return rc, out.getvalue(), err.getvalue()


def assert_clean_failure(rc: int, err: str, output: Path | None, needle: str = "") -> str:
    """Non-zero exit, the error's one line last on stderr, no traceback, nothing written."""
    assert rc != 0, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines, "no error message"
    last = lines[-1]
    assert "error" in last.lower(), err
    assert needle.lower() in last.lower(), (needle, err)
    if output is not None:
        assert not output.exists(), f"{output} written after a failure"
        leftovers = [p.name for p in output.parent.iterdir() if p.name.startswith(f".{output.name}.")]
        assert not leftovers, f"temporary files left behind: {leftovers}"
    return last


@pytest.fixture(scope="module")
def tiny_decoder(tmp_path_factory) -> Path:
    from stylekit.adain import Decoder, save_decoder

    torch.manual_seed(0)
    return save_decoder(Decoder(width=0.125), tmp_path_factory.mktemp("dec") / "decoder.safetensors")


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_cli_refuses_each_bad_image(case, corpus, good_image, tiny_decoder, tmp_path):
    p = str(corpus[case.name])
    commands = [["gatys", p, str(good_image), "--steps", "1", "--quiet"],
                ["adain", p, str(good_image), "--weights-file", str(tiny_decoder), "--backend", "torch"],
                ["adain", str(good_image), p, "--weights-file", str(tiny_decoder), "--backend", "torch"]]
    commands.append(["fast", p, "--backend", "torch"])
    commands.append(["compare", p, str(good_image), "--gatys-steps", "1", "--no-metrics"])
    for i, cmd in enumerate(commands):
        out = tmp_path / f"out{i}.png"
        rc, _, err = run_cli(cmd + ["-o", str(out), "--size", "64"])
        assert_clean_failure(rc, err, out, case.needle)


@pytest.mark.parametrize("case", BAD[:6] + BAD[12:16], ids=[c.name for c in BAD[:6] + BAD[12:16]])
def test_cli_metrics_refuses_bad_images(case, corpus, good_image):
    p = str(corpus[case.name])
    for argv in (["metrics", p, str(good_image), str(good_image)], ["metrics", str(good_image), str(good_image), p]):
        rc, out, err = run_cli(argv)
        assert_clean_failure(rc, err, None, case.needle)
        assert out == ""


@pytest.mark.parametrize("name", ["cmyk.jpg", "exif_rotated.jpg", "palette_transparent.png", "grey16.png",
                                  "animated.gif"])
def test_cli_accepts_odd_good_images(name, corpus, good_image, tiny_decoder, tmp_path):
    from PIL import Image

    out = tmp_path / "out.png"
    rc, _, err = run_cli(["adain", str(corpus[name]), str(good_image), "--weights-file", str(tiny_decoder),
                          "--backend", "torch", "-o", str(out), "--size", "64"])
    assert rc == 0, err
    with Image.open(out) as im:
        w, h = im.size
    assert max(w, h) == 64
    if name == "exif_rotated.jpg":
        assert h > w  # portrait after applying the orientation


CLI_BAD_PARAMS = [
    (["gatys", "{c}", "{s}", "--size", "nan"], "size"),
    (["gatys", "{c}", "{s}", "--size", "-5"], "size"),
    (["gatys", "{c}", "{s}", "--size", "100000"], "size"),
    (["gatys", "{c}", "{s}", "--steps", "-1"], "steps"),
    (["gatys", "{c}", "{s}", "--steps", "1e99"], "steps"),
    (["gatys", "{c}", "{s}", "--style-weight", "nan"], "style-weight"),
    (["gatys", "{c}", "{s}", "--style-weight", "-inf"], "style-weight"),
    (["gatys", "{c}", "{s}", "--content-weight", "inf"], "content-weight"),
    (["gatys", "{c}", "{s}", "--style-weights", "1,2"], "weight"),
    (["gatys", "{c}", "{s}", "--style-weights", "nan"], "weight"),
    (["gatys", "{c}", "{s}", "--lr", "0"], "lr"),
    (["adain", "{c}", "{s}", "--alpha", "nan", "--weights-file", "{d}"], "alpha"),
    (["adain", "{c}", "{s}", "--alpha", "1.5", "--weights-file", "{d}"], "alpha"),
    (["adain", "{c}", "{s}", "--alpha", "-0.1", "--weights-file", "{d}"], "alpha"),
    (["adain", "{c}", "{s}", "--weights", "1,2,3", "--weights-file", "{d}", "--backend", "torch"], "weight"),
    (["adain", "{c}", "{s}", "{s}", "--weights", "nan,1", "--weights-file", "{d}", "--backend", "torch"], "weight"),
    (["adain", "{c}", "{s}", "{s}", "--weights", "-1,2", "--weights-file", "{d}", "--backend", "torch"], "weight"),
    (["adain", "{c}", "{s}", "{s}", "--mask", "{m}", "--weights-file", "{d}", "--backend", "torch"], "mask"),
    (["adain", "{c}", "{s}", "--weights-file", "{w}", "--backend", "torch"], "safetensors"),
    (["fast", "{c}", "--blend", "starry_night=nan", "--backend", "torch"], "finite"),
    (["fast", "{c}", "--blend", "starry_night=-1", "--backend", "torch"], ">= 0"),
    (["fast", "{c}", "--blend", "starry_night=0", "--backend", "torch"], "zero"),
    (["fast", "{c}", "--blend", "garbage", "--backend", "torch"], "blend"),
    (["fast", "{c}", "--style", "no_such_style", "--backend", "torch"], "unknown style"),
    (["fast", "{c}", "--strength", "nan", "--backend", "torch"], "strength"),
    (["fast", "{c}", "--strength", "2", "--backend", "torch"], "strength"),
    (["fast", "{c}", "--stroke-scale", "0", "--backend", "torch"], "stroke-scale"),
    (["fast", "{c}", "--stroke-scale", "nan", "--backend", "torch"], "stroke-scale"),
    (["fast", "{c}", "--stroke-scale", "0.25", "--size", "2048", "--backend", "torch"], "limit is 4096"),
]


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, good_image, tiny_decoder):
    from PIL import Image

    d = tmp_path_factory.mktemp("cli")
    m = d / "mask_wrong_size.png"
    Image.new("L", (13, 7), 255).save(m)
    w = d / "corrupt.safetensors"
    w.write_bytes(b"\x00" * 64)
    return {"c": str(good_image), "s": str(good_image), "d": str(tiny_decoder), "m": str(m), "w": str(w)}


@pytest.mark.parametrize("argv,needle", CLI_BAD_PARAMS, ids=[" ".join(a[:1] + a[3:5]) for a, _ in CLI_BAD_PARAMS])
def test_cli_refuses_bad_parameters(argv, needle, cli_files, tmp_path):
    out = tmp_path / "out.png"
    rc, _, err = run_cli([a.format(**cli_files) for a in argv] + ["-o", str(out)])
    assert_clean_failure(rc, err, out, needle)


def test_cli_refuses_a_bad_output_name(cli_files, tmp_path):
    out = tmp_path / "out.gif"
    rc, _, err = run_cli(["adain", cli_files["c"], cli_files["s"], "--weights-file", cli_files["d"], "--backend",
                          "torch", "--size", "32", "-o", str(out)])
    assert_clean_failure(rc, err, out, "png")


def test_cli_refuses_bad_onnx_files(bad_onnx):
    for name, path in bad_onnx.items():
        rc, _, err = run_cli(["export", "verify", str(path)])
        assert_clean_failure(rc, err, None, path.name)


def test_cli_refuses_a_corrupt_training_checkpoint(tmp_path, good_image):
    """``train-fast --resume`` on a corrupt checkpoint: a one-line WeightsError before any training."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        shutil.copy(good_image, data / f"{i}.jpg")
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.safetensors").write_bytes(b"\x01" * 100)
    rc, _, err = run_cli(["train-fast", "--style", str(good_image), "--data", str(data), "--out", str(out),
                          "--steps", "2", "--batch-size", "1", "--crop", "32", "--width", "4", "8", "8",
                          "--blocks", "0", "--style-size", "32", "--style-layers", "relu1_1",
                          "--content-layer", "relu1_1", "--preview-every", "0", "--resume"])
    assert_clean_failure(rc, err, None, "checkpoint")
    assert (out / "checkpoint.safetensors").read_bytes() == b"\x01" * 100  # left as it was


# ---- CLI (real subprocesses) --------------------------------------------------------------------------------------
def _subprocess(args: list[str], entry_point: bool = False) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "stylekit"
    cmd = [str(exe)] if entry_point and exe.exists() else [sys.executable, "-m", "stylekit.cli"]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd + args, capture_output=True, text=True, timeout=120, cwd=REPO, env=env)


@pytest.mark.parametrize("name,entry", [("bomb_30000x30000.png", False), ("truncated.jpg", True),
                                        ("vector_named.png", False)])
def test_cli_subprocess_one_line_error(name, entry, corpus, good_image, tmp_path):
    out = tmp_path / "out.png"
    r = _subprocess(["gatys", str(corpus[name]), str(good_image), "-o", str(out), "--size", "64", "--steps", "1"],
                    entry_point=entry)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("stylekit gatys: error: "), r.stderr
    assert not out.exists()


def test_cli_subprocess_bad_parameter(good_image, tmp_path):
    out = tmp_path / "out.png"
    r = _subprocess(["gatys", str(good_image), str(good_image), "-o", str(out), "--size", "nan"])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("stylekit gatys: error: argument --size")
    assert not out.exists()


# ---- demo ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_client(tmp_path_factory):
    from gradio_client import Client

    from .hostile import launch_demo

    app, url, styles, restore = launch_demo(tmp_path_factory.mktemp("onnx-demo"))
    client = Client(url, verbose=False)
    client._stylekit_styles = styles  # type: ignore[attr-defined]
    yield client, url
    app.close()
    restore()


def _fast_call(client, path, **kw):
    from gradio_client import handle_file

    a = dict(style=None, style2="(none)", blend=0.5, strength=1.0, preserve=False, size=96)
    a.update(kw)
    style = a["style"] or client._stylekit_styles[0]
    return client.predict(handle_file(str(path)), None, style, a["style2"], a["blend"], a["strength"],
                          a["preserve"], a["size"], api_name="/fast")


def _expect_app_error(fn, needle: str = "") -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as ei:
        fn()
    msg = str(ei.value)
    assert "Traceback" not in msg
    assert needle.lower() in msg.lower(), (needle, msg)
    return msg


def test_demo_answers_each_bad_upload_and_keeps_serving(demo_client, corpus, good_image):
    client, _ = demo_client
    good_out = _fast_call(client, good_image)[0]
    assert Path(good_out).is_file()
    for i, case in enumerate(c for c in BAD if c.demo):
        _expect_app_error(lambda: _fast_call(client, corpus[case.name]), case.needle)
        if i % 4 == 3:
            assert Path(_fast_call(client, good_image)[0]).is_file()
    assert Path(_fast_call(client, good_image)[0]).is_file()


def test_demo_accepts_odd_good_uploads(demo_client, corpus):
    client, _ = demo_client
    for case in GOOD:
        out = _fast_call(client, corpus[case.name])[0]
        assert Path(out).is_file(), case.name


@pytest.fixture(scope="module")
def uploaded_good(demo_client, good_image):
    from .hostile import rest_upload

    status, paths = rest_upload(demo_client[1], "good.jpg", good_image.read_bytes())
    assert status == 200, paths
    return paths[0]


DEMO_BAD_PARAMS = [dict(size=NAN), dict(size=INF), dict(size=10**7), dict(size=-1), dict(size="big"),
                   dict(blend=NAN), dict(blend=7.0), dict(blend=-INF), dict(strength=-3.0), dict(strength=INF),
                   dict(strength=NAN), dict(style="no_such_style"), dict(style2="no_such_style"), dict(style=[1, 2]),
                   dict(stroke=NAN), dict(stroke=0.1), dict(stroke="big")]


@pytest.mark.parametrize("kw", DEMO_BAD_PARAMS, ids=[str(k) for k in DEMO_BAD_PARAMS])
def test_demo_refuses_bad_parameters(demo_client, uploaded_good, kw):
    """Sent raw (NaN/Infinity literals, wrong types): an error answer, then the next request works."""
    from .hostile import file_data, rest_call

    client, url = demo_client
    a = dict(style=client._stylekit_styles[0], style2="(none)", blend=0.5, strength=1.0, preserve=False, size=96,
             stroke=1.0)
    a.update(kw)
    data = [file_data(uploaded_good), None, a["style"], a["style2"], a["blend"], a["strength"], a["preserve"],
            a["size"], a["stroke"]]
    event, payload = rest_call(url, "fast", data)
    assert event == "error" or event.startswith("http 4"), (event, payload)
    assert "Traceback" not in payload
    ok = data[:2] + [client._stylekit_styles[0], "(none)", 0.5, 1.0, False, 96, 1.0]
    event, payload = rest_call(url, "fast", ok)
    assert event == "complete", payload


def test_demo_adain_refuses_bad_style_and_alpha(demo_client, corpus, good_image):
    from gradio_client import handle_file

    client, _ = demo_client
    g = handle_file(str(good_image))

    def adain(content, style, alpha=1.0, mix=0.5, size=96):
        return client.predict(content, style, None, mix, alpha, False, size, api_name="/adain")

    _expect_app_error(lambda: adain(g, handle_file(str(corpus["truncated.png"]))), "")
    _expect_app_error(lambda: adain(g, None), "style")
    _expect_app_error(lambda: adain(g, g, alpha=5.0), "maximum")
    _expect_app_error(lambda: adain(g, g, mix=-2.0))
    assert Path(adain(g, g)[0]).is_file()


def test_demo_adain_refuses_nan_sent_raw(demo_client, uploaded_good):
    from .hostile import file_data, rest_call

    _, url = demo_client
    f = file_data(uploaded_good)
    for alpha, mix, detail in ((NAN, 0.5, 0.5), (0.5, INF, 0.5), (-INF, 0.0, 0.5), (1.0, 0.5, NAN), (1.0, 0.5, -1.0)):
        event, payload = rest_call(url, "adain", [f, f, None, mix, alpha, False, 96, detail])
        assert event == "error" or event.startswith("http 4"), (alpha, mix, detail, event, payload)
    event, payload = rest_call(url, "adain", [f, f, None, 0.5, 1.0, False, 96, 0.5])  # raw calls send all 8
    assert event == "complete", payload


def test_demo_gatys_and_compare_refuse_bad_input_raw(demo_client, uploaded_good, corpus):
    """Heavy endpoints: bad parameters and bad images are answered at once, the queue keeps moving."""
    from .hostile import file_data, rest_call, rest_upload

    client, url = demo_client
    g = file_data(uploaded_good)
    status, paths = rest_upload(url, "bomb.png", corpus["bomb_30000x30000.png"].read_bytes())
    assert status == 200
    bomb = file_data(paths[0])
    style = client._stylekit_styles[0]
    gatys = [(g, g, "default", NAN, 5, 1.0, False), (g, g, "default", 64, -5, 1.0, False),
             (g, g, "default", 64, 5, INF, False), (g, g, "no_such_preset", 64, 5, 1.0, False),
             (bomb, g, "default", 64, 5, 1.0, False), (g, None, "default", 64, 5, 1.0, False)]
    for args in gatys:
        event, payload = rest_call(url, "gatys", list(args))
        assert event == "error" or event.startswith("http 4"), (args[2:], event, payload[:300])
        assert "Traceback" not in payload
    compare = [g, g, "default", 64, 5, 1.0, False, style, NAN, 96, 0.5]
    event, payload = rest_call(url, "compare", compare)
    # compare shows a failing mode as a placeholder with its error: the AdaIN panel names α
    assert event == "error" or event.startswith("http 4") or (event == "complete" and "alpha" in payload), \
        (event, payload[:300])
    event, payload = rest_call(url, "compare", [bomb] + compare[1:])
    assert event == "error" and "too large" in payload.lower(), payload[:300]
    event, payload = rest_call(url, "gatys", [g, g, "default", 64, 5, 1.0, False])
    assert event == "complete", payload[:300]


def test_adain_refuses_non_finite_images():
    from stylekit.adain import AdaINModel, Decoder, transfer

    model = AdaINModel(Decoder(width=0.125))
    good = torch.rand(1, 3, 32, 32)
    for c, s in ((torch.full((1, 3, 32, 32), NAN), good), (good, torch.full((1, 3, 32, 32), INF))):
        with pytest.raises(ParameterError, match="NaN or infinite"):
            transfer(model, c, [s])


def test_training_data_folder_with_hostile_files(corpus, tmp_path):
    """Unreadable training photos are skipped with a warning; a folder of only bad files is a clear error."""
    from stylekit.training import IMAGE_EXTENSIONS, ImageFolder

    mixed, bad_only = tmp_path / "mixed", tmp_path / "bad"
    mixed.mkdir()
    bad_only.mkdir()
    n_good = n_bad = 0
    for c in CASES:
        p = corpus[c.name]
        if not p.is_file() or p.suffix.lower() not in IMAGE_EXTENSIONS or c.name == "huge_file.jpg":
            continue
        (mixed / c.name).write_bytes(p.read_bytes())
        if c.ok:
            n_good += 1
        else:
            n_bad += 1
            (bad_only / c.name).write_bytes(p.read_bytes())
    data = ImageFolder(mixed, load_size=32)
    assert len(data.train) + len(data.val) == n_good and len(data.skipped) == n_bad >= 10
    with pytest.raises(ParameterError, match="no readable training images"):
        ImageFolder(bad_only, load_size=32)
