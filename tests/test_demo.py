"""The Gradio app, launched for real in this process and called through gradio_client.

Sizes are tiny (64-128 px, a few Gatys steps) so the module stays fast on 2 cores. The feed-forward
and AdaIN columns run the shipped models through the onnxruntime runners, on every endpoint.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gradio as gr
import gradio_client
from gradio_client import Client, handle_file  # noqa: E402
from PIL import Image  # noqa: E402

from demo.procs import free_port, stop_process  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "demo" / "examples"
CONTENT = EXAMPLES / "content" / "skimage_chelsea_cat.jpg"
STYLE = EXAMPLES / "style" / "vangogh_starry_night.jpg"
STYLE2 = EXAMPLES / "style" / "hokusai_great_wave_off_kanagawa.jpg"


def launch(settings):
    from demo.app import create_demo, launch_kwargs

    app = create_demo(settings)
    port = free_port()
    kw = launch_kwargs(settings)
    kw.update(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    app.launch(**kw)
    return app, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def shipped_models():
    """The shipped feed-forward and AdaIN models behind the onnxruntime runners: both must be ready."""
    from demo import engine

    status = engine.model_status()
    assert status["fast"].startswith("ready") and status["adain"].startswith("ready"), status
    return engine.fast_style_names()


@pytest.fixture(scope="module")
def app_url(shipped_models):
    from demo.app import Settings

    app, url = launch(Settings(max_queue=8, heavy_concurrency=1, fast_concurrency=2, gatys_size=64,
                               gatys_steps=10, fast_size=96, preview_every=2, warm_up=False))
    yield url
    app.close()


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def size_of(path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def test_api_lists_named_endpoints(client):
    api = client.view_api(print_info=False, return_format="dict")
    names = set(api["named_endpoints"])
    assert {"/gatys", "/fast", "/adain", "/compare", "/stop"} <= names


def test_fast_endpoint(client, shipped_models):
    style = shipped_models[0]
    img, slider, info = client.predict(handle_file(str(CONTENT)), handle_file(str(STYLE)), style, "(none)", 0.5,
                                       1.0, False, 96, api_name="/fast")
    assert size_of(img) == (96, 64)  # the cat is 451x300
    before, after = slider
    assert size_of(before) == size_of(after) == (96, 64)
    assert Path(img).suffix == ".png"
    assert " s**" in info and "style:" in info


def test_fast_stroke_scale(client, shipped_models):
    style = shipped_models[0]
    img, _, info = client.predict(handle_file(str(CONTENT)), None, style, "(none)", 0.5, 1.0, False, 96, 0.8,
                                  api_name="/fast")
    assert size_of(img) == (96, 64)                       # the output keeps the asked size ...
    assert "stroke scale 0.8 (network at 120x80)" in info  # ... the network ran at 1/0.8 of it
    with pytest.raises(Exception, match="less than minimum value 0.75"):   # gradio checks the slider's range
        client.predict(handle_file(str(CONTENT)), None, style, "(none)", 0.5, 1.0, False, 96, 0.0, api_name="/fast")


def test_picking_a_style_sets_the_stroke_slider_to_its_own(client, shipped_models, monkeypatch):
    """Each gallery style runs at its own stroke scale (the catalogue's stroke_scales): picking it in the
    dropdown sets the slider (the same server's handler, called as the page calls it), and the comparison,
    which has no slider, runs the style at it."""
    import dataclasses

    from demo import engine
    from stylekit import weights as W

    first, second = [s for s in shipped_models if s not in engine.own_networks()][:2]  # the gallery's scales
    rec = W.get_record(None, "fast")
    monkeypatch.setitem(W._EXTRA, rec.id, dataclasses.replace(
        rec, metadata={**rec.metadata, "stroke_scales": {first: 0.8, second: 1.2}}))
    assert client.predict(first, "(none)", 0.5, api_name="/stroke_default") == 0.8
    assert client.predict(second, "(none)", 0.5, api_name="/stroke_default") == 1.2
    assert client.predict(first, second, 0.25, api_name="/stroke_default_blend") == pytest.approx(0.9)
    from stylekit.images import load_image

    c = engine.prepare(load_image(CONTENT), "content")
    res = engine.run_fast(c, first, size=96)                    # no stroke scale given: the style's own
    assert "stroke scale 0.8 (network at 120x80)" in ", ".join(res.notes)


def test_captions_name_the_runner_and_onnxruntime_serves_too(client, shipped_models):
    """The default runners (PyTorch bf16 on a bf16 CPU, else onnxruntime) and the onnxruntime ones both
    serve /fast and /adain; the caption says which ran."""
    from demo import engine
    from export.runtime import get_adain_runner, get_fast_runner
    from stylekit.precision import use_bf16

    want = "torch bf16" if use_bf16("auto", torch.device("cpu")) else "onnx"
    _, _, info = client.predict(handle_file(str(CONTENT)), None, shipped_models[0], "(none)", 0.5, 1.0, False, 96,
                                api_name="/fast")
    assert want in info
    try:
        engine.use_runner("fast", get_fast_runner(backend="onnx"))
        engine.use_runner("adain", get_adain_runner(backend="onnx"))
        img, _, info = client.predict(handle_file(str(CONTENT)), None, shipped_models[1], "(none)", 0.5, 1.0, False,
                                      96, api_name="/fast")
        assert size_of(img) == (96, 64) and "onnx fp32" in info
        img, _, info = client.predict(handle_file(str(CONTENT)), handle_file(str(STYLE)), None, 0.5, 1.0, False, 96,
                                      api_name="/adain")
        assert size_of(img) == (96, 64) and "onnx fp32" in info and "detail 0.5" in info
        _, _, info = client.predict(handle_file(str(CONTENT)), handle_file(str(STYLE2)), None, 0.5, 1.0, False, 96,
                                    api_name="/adain")
        assert "cached reconstruction" in info  # the second style on the photo reuses its reconstruction
    finally:
        engine.use_runner("fast", None)
        engine.use_runner("adain", None)


def test_fast_blend_and_colour(client, shipped_models):
    a, b = shipped_models[0], shipped_models[-1]
    img, _, info = client.predict(handle_file(str(CONTENT)), None, a, b, 0.3, 0.5, True, 128, api_name="/fast")
    assert size_of(img) == (128, 85)
    assert "%" in info  # the blend is named with its shares


def test_fast_rejects_unknown_style(client):
    with pytest.raises(Exception, match="not in the list of choices"):
        client.predict(handle_file(str(CONTENT)), None, "no-such-style", "(none)", 0.5, 1.0, False, 96,
                       api_name="/fast")


def test_adain_endpoint_with_interpolation(client):
    img, slider, info = client.predict(handle_file(str(CONTENT)), handle_file(str(STYLE)), handle_file(str(STYLE2)),
                                       0.5, 0.8, False, 96, api_name="/adain")
    assert size_of(img) == (96, 64)
    assert size_of(slider[1]) == (96, 64)
    assert "alpha 0.8" in info and "style mix 50%" in info
    # the same style again: its statistics come from the cache
    img2, _, info2 = client.predict(handle_file(str(CONTENT)), handle_file(str(STYLE)), None, 0.5, 1.0, True, 64,
                                    api_name="/adain")
    assert size_of(img2) == (64, 43)
    assert "cached style statistics" in info2
    assert "detail 0.5" in info2  # the default detail (the slider's) ...
    _, _, info4 = client.predict(handle_file(str(CONTENT)), handle_file(str(STYLE2)), None, 0.5, 1.0, True, 64,
                                 api_name="/adain")
    # onnxruntime makes the reconstruction in a second pass: another style on the same photo reuses it
    assert ("cached reconstruction" in info4) == ("onnx" in info4)
    _, _, info3 = client.predict(handle_file(str(CONTENT)), handle_file(str(STYLE)), None, 0.5, 1.0, False, 64, 0.0,
                                 api_name="/adain")
    assert "detail" not in info3  # ... and the paper's plain output
    with pytest.raises(Exception, match="greater than maximum value 1"):  # gradio checks the slider's range
        client.predict(handle_file(str(CONTENT)), handle_file(str(STYLE)), None, 0.5, 1.0, False, 64, 1.5,
                       api_name="/adain")


def test_gatys_streams_previews_and_finishes(client):
    job = client.submit(handle_file(str(CONTENT)), handle_file(str(STYLE)), "default", 64, 12, 1.0, False,
                        api_name="/gatys")
    img, slider, info = job.result(timeout=300)
    outs = job.outputs()
    previews = [o for o in outs[:-1] if o[0] is not None]
    assert len(previews) >= 3, f"expected several previews, got {len(outs)} outputs"
    assert size_of(img) == (64, 43)
    assert size_of(slider[0]) == size_of(slider[1]) == (64, 43)
    assert "12 steps" in info or "early stop" in info
    import torch

    from stylekit.precision import use_bf16   # the server runs on this machine: bf16 where its CPU has it

    assert ("bf16" in info) == use_bf16("auto", torch.device("cpu"))


def test_gatys_can_be_stopped(app_url):
    c = Client(app_url, verbose=False)
    job = c.submit(handle_file(str(CONTENT)), handle_file(str(STYLE)), "default", 64, 300, 1.0, False,
                   api_name="/gatys")
    deadline = time.time() + 120
    while len(job.outputs()) < 2 and time.time() < deadline and not job.done():
        time.sleep(0.1)
    assert len(job.outputs()) >= 2, "no previews arrived"
    assert c.predict(api_name="/stop") == "Stopping…"
    img, _, info = job.result(timeout=60)
    assert "stopped after" in info
    steps = int(info.split("stopped after ")[1].split(" ")[0])
    assert steps < 300
    assert size_of(img)[0] == 64
    assert c.predict(api_name="/stop") == "Nothing is running."


def test_compare_builds_a_figure(client, shipped_models):
    out = client.predict(handle_file(str(CONTENT)), handle_file(str(STYLE)), "default", 64, 5, 1.0, False,
                         shipped_models[0], 1.0, 64, api_name="/compare")
    fig, fig_file = out[0], out[1]
    assert Path(fig_file).suffix == ".png"
    w, h = size_of(fig_file)
    assert w > 5 * 64 and h > 64  # content, style, three results in a row, captions below
    g, f, a = out[2], out[5], out[8]
    for img in (g, f, a):
        assert size_of(img) == (64, 43)
    for info in (out[4], out[7], out[10]):
        assert "style" in info and "content" in info  # distances in every caption


def test_bad_upload_gets_a_readable_error(client, tmp_path):
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(Exception, match="not an image stylekit can read"):
        client.predict(handle_file(str(bad)), handle_file(str(STYLE)), None, 0.5, 1.0, False, 96, api_name="/adain")


def test_missing_input_gets_a_readable_error(client):
    with pytest.raises(Exception, match="Please give a style image"):
        client.predict(handle_file(str(CONTENT)), None, None, 0.5, 1.0, False, 96, api_name="/adain")


def test_large_input_is_downscaled_with_a_note(client, tmp_path):
    big = tmp_path / "big.png"
    Image.open(CONTENT).resize((1600, 1064)).save(big)
    img, _, info = client.predict(handle_file(str(big)), handle_file(str(STYLE)), None, 0.5, 1.0, False, 96,
                                  api_name="/adain")
    assert "downscaled" in info and "megapixel" in info
    assert size_of(img) == (96, 64)


def test_full_queue_answers_busy(shipped_models):
    import httpx

    from demo.app import Settings

    app, url = launch(Settings(max_queue=1, heavy_concurrency=1, gatys_size=64, warm_up=False))
    try:
        clients = [Client(url, verbose=False) for _ in range(4)]
        jobs = [c.submit(handle_file(str(CONTENT)), handle_file(str(STYLE)), "default", 64, 300, 1.0, False,
                         api_name="/gatys") for c in clients]
        errors = []
        for c, j in zip(clients, jobs):
            try:
                j.result(timeout=5)
            except Exception as e:  # noqa: BLE001 - what the client raises for a full queue
                errors.append(e)
        busy = [e for e in errors if "try again" in str(e).lower()]
        assert busy, f"no busy answer among {errors!r}"
        # Stop is outside the queue (queue=False): it still answers when the queue is full, by a direct POST
        # (what the browser does; gradio_client always joins the queue). Jobs that got in end within a step.
        deadline = time.time() + 120
        while not all(j.done() for j in jobs) and time.time() < deadline:
            for c in clients:
                r = httpx.post(url + "gradio_api/run/stop", json={"data": [], "session_hash": c.session_hash},
                               timeout=30)
                assert r.status_code == 200, r.text
            time.sleep(0.5)
        assert all(j.done() for j in jobs)
    finally:
        app.close()


def test_work_gate_takes_turns_and_answers_busy_beyond_its_budget():
    import threading

    from demo.engine import Busy, WorkGate

    gate = WorkGate()
    release, running, order = threading.Event(), threading.Event(), []

    def slow():
        running.set()
        release.wait(30)
        order.append("first")
        return 1

    # an empty gate admits even a request far over the budget
    t = threading.Thread(target=lambda: gate.run("fast", 10**8, slow, max_wait=0.5))
    t.start()
    assert running.wait(30)
    assert gate.ahead() > 100  # 1e8 pixels at the start rate: minutes of estimated work
    with pytest.raises(Busy, match="try again"):
        gate.run("fast", 512 * 512, lambda: order.append("refused"), max_wait=2.0)
    # without a budget (the compare figure) a request waits its turn instead
    second = threading.Thread(target=lambda: gate.run("adain", 64 * 64, lambda: order.append("second")))
    second.start()
    time.sleep(0.2)
    assert order == []
    release.set()
    t.join(30)
    second.join(30)
    assert order == ["first", "second"]
    assert gate.ahead() == 0
    # what the slow request took taught the gate its rate: a short job is admitted again at once
    assert gate.run("fast", 64 * 64, lambda: "ok", max_wait=2.0) == "ok"


def test_busy_server_answers_try_again_and_keeps_serving(shipped_models):
    from demo.app import Settings

    # a zero wait budget: while one feed-forward request runs, every other one is answered "busy"
    app, url = launch(Settings(max_queue=16, fast_concurrency=8, max_wait=0.0, warm_up=False))
    try:
        clients = [Client(url, verbose=False) for _ in range(4)]
        jobs = [c.submit(handle_file(str(CONTENT)), None, shipped_models[0], "(none)", 0.5, 1.0, False, 1024,
                         api_name="/fast") for c in clients]
        answers = []
        for j in jobs:
            try:
                answers.append(("ok", j.result(timeout=120)))
            except Exception as e:  # noqa: BLE001 - the busy answer is a gr.Error
                answers.append(("error", str(e)))
        ok = [a for a in answers if a[0] == "ok"]
        busy = [a for a in answers if a[0] == "error"]
        assert ok and busy, answers
        assert all("busy" in m and "try again" in m for _, m in busy), busy
        # the server keeps serving: the next request (alone) is accepted
        out = clients[0].predict(handle_file(str(CONTENT)), None, shipped_models[0], "(none)", 0.5, 1.0, False, 128,
                                 api_name="/fast")
        assert size_of(out[0])[0] == 128
    finally:
        app.close()


def test_only_app_files_are_served(client, app_url):
    import httpx

    r = httpx.get(app_url + "gradio_api/file=" + str(REPO / "pyproject.toml"))
    assert r.status_code in (403, 404)
    r = httpx.get(app_url + "gradio_api/file=/etc/passwd")
    assert r.status_code in (403, 404)


# ---- the Space folder ---------------------------------------------------------------------------------------------------
def test_space_folder_is_complete_and_its_app_answers(tmp_path):
    out = tmp_path / "space"
    subprocess.run([sys.executable, "-m", "demo.space", "build", str(out), "--no-onnx"], cwd=REPO, check=True,
                   capture_output=True, text=True, timeout=300)
    from demo.space import check_space

    assert check_space(out) == []
    readme = (out / "README.md").read_text()
    assert readme.startswith("---\n") and "sdk: gradio" in readme and "app_file: app.py" in readme
    req = (out / "requirements.txt").read_text()
    assert "torch==2.13.0" in req and "gradio==" in req

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), STYLEKIT_DEMO_WARM_UP="0")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=out, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 180
        client = None
        while time.time() < deadline and proc.poll() is None:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.5)
        assert client is not None, proc.stdout.read() if proc.poll() is not None else "the Space app did not start"
        # a request the Space answers whatever models it ships: a bad input gets the readable error
        with pytest.raises(Exception, match="Please give a content image"):
            client.predict(None, handle_file(str(STYLE)), None, 0.5, 1.0, False, 64, api_name="/adain")
        # the Space's own code is what runs (not this checkout's)
        assert client.predict(api_name="/stop") == "Nothing is running."
    finally:
        stop_process(proc)


def test_space_build_exports_onnx_files_even_where_bf16_runs_pytorch(tmp_path, monkeypatch):
    """The Space's CPU may lack bf16: the builder ships onnxruntime files whatever the building machine runs."""
    from demo.space import export_onnx
    from export import runtime

    monkeypatch.setenv("STYLEKIT_BF16", "on")  # as on a bf16 CPU, where the runners would be PyTorch
    runtime.clear_runners()
    try:
        made = export_onnx(tmp_path / "onnx")
    finally:
        runtime.clear_runners()
    names = sorted(p.name for p in (tmp_path / "onnx").glob("*.onnx"))
    assert any(".fast.fp32.onnx" in n for n in names), made
    assert any(".adain-stylizer.fp32.onnx" in n for n in names) and any(".adain-style.fp32.onnx" in n for n in names)
    assert all("onnx:" in line for line in made), made


# ---- the comparison figure and `stylekit compare` ----------------------------------------------------------------------
def test_comparison_figure_layout():
    import torch

    from stylekit.compare import ModeResult, comparison_figure
    from stylekit.metrics import Distances

    content = torch.rand(1, 3, 60, 90)
    style = torch.rand(1, 3, 80, 80)
    results = [ModeResult("gatys", torch.rand(1, 3, 60, 90), 41.5, Distances(0.31, 0.52), "default preset"),
               ModeResult("fast", torch.rand(1, 3, 60, 90), 0.12, Distances(0.4, 0.6)),
               ModeResult("adain", None, note="not available: no model")]
    fig = comparison_figure(content, style, results, panel_height=120, title="test")
    # five panels in a row, each at least 2/3 of the panel height wide, captions below the images
    assert fig.width >= 3 * 180 + 80 + 2 * 80 and fig.height > 120 + 40
    # the missing mode is a grey placeholder, not a blank
    assert fig.mode == "RGB"
    with pytest.raises(Exception, match="panel height"):
        comparison_figure(content, style, results, panel_height=10)


def test_cli_compare_writes_a_figure(tmp_path, shipped_models, capsys):
    from stylekit.cli import main

    out = tmp_path / "figure.png"
    rc = main(["compare", str(CONTENT), str(STYLE), "-o", str(out), "--size", "64", "--gatys-steps", "3",
               "--panel-height", "96", "--no-metrics"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Gatys" in text and "Feed-forward" in text and "AdaIN" in text and "wrote" in text
    w, h = size_of(out)
    assert w > 5 * 64 and h > 96


def test_upload_size_limit(client, tmp_path):
    from demo.app import Settings

    big = tmp_path / "huge.png"
    big.write_bytes(os.urandom(11 * 1024 * 1024))  # above the 10 MB default limit
    assert Settings().max_file_size == "10mb"
    with pytest.raises(Exception, match="(?i)(too large|maximum|size)") as e:
        client.predict(handle_file(str(big)), handle_file(str(STYLE)), None, 0.5, 1.0, False, 96, api_name="/adain")
    assert "not an image" not in str(e.value)  # refused at upload, before the image is even opened


def test_load_script_runs_end_to_end():
    """demo/loadtest.py (reduced): its own server process, users, Gatys Stop under load, the report.
    Timing goals are the benchmark's business; here: it runs, every answer is ok or busy, Stop frees
    the worker (the figure is printed), and the RSS line comes from the server process."""
    out = subprocess.run([sys.executable, str(REPO / "demo" / "loadtest.py"), "--users", "3", "--requests", "2",
                          "--size", "128", "--quick-gatys", "--gatys-jobs", "1", "--timeout", "240"],
                         capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    rows = {ln.split()[0]: ln.split() for ln in out.stdout.splitlines()
            if ln.split() and ln.split()[0] in ("fast", "adain", "gatys")}
    assert int(rows["fast"][2]) == 3 and int(rows["adain"][2]) == 3 and int(rows["gatys"][2]) == 2, out.stdout
    assert all(int(r[4]) == 0 for r in rows.values()), out.stdout  # errors column
    assert "PASS  no errors other than queue-full answers" in out.stdout
    assert "next queued Gatys job started" in out.stdout and "server peak RSS" in out.stdout
