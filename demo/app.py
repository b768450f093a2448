"""stylekit's Gradio demo: Gatys, feed-forward and AdaIN side by side.

    python demo/app.py                  # serves on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (127.0.0.1:7860)

``demo`` (module level) is the :class:`gradio.Blocks` app, queue configured; :func:`launch_kwargs`
gives the launch settings (upload size limit, no extra served paths). :func:`create_demo` builds a
fresh app with other :class:`Settings` (the tests use small limits).

API endpoints (see docs/demo.md): ``/gatys`` (streams previews), ``/fast``, ``/adain``, ``/compare``,
``/stop`` (ends this session's running Gatys/compare jobs within one step).
"""
from __future__ import annotations

import atexit
import os
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, "") and str(_REPO) not in sys.path:  # `python demo/app.py` from a checkout
    sys.path.insert(0, str(_REPO))

#: Everything the app writes (Gradio's uploads/results, cached examples, thumbnails, figures) lives here.
if os.environ.get("STYLEKIT_DEMO_DIR"):
    WORK_DIR = Path(os.environ["STYLEKIT_DEMO_DIR"])
    WORK_DIR.mkdir(parents=True, exist_ok=True)
else:  # a fresh private directory, removed at exit
    import shutil

    WORK_DIR = Path(tempfile.mkdtemp(prefix="stylekit-demo-"))
    atexit.register(shutil.rmtree, WORK_DIR, True)
os.environ.setdefault("GRADIO_TEMP_DIR", str(WORK_DIR / "gradio"))
os.environ.setdefault("GRADIO_EXAMPLES_CACHE", str(WORK_DIR / "examples-cache"))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from demo import engine  # noqa: E402
from stylekit.adain import DEFAULT_DETAIL  # noqa: E402
from stylekit.errors import Cancelled, StyleKitError  # noqa: E402
from stylekit.images import DEFAULT_MAX_PIXELS, open_image, tensor_to_pil  # noqa: E402

BUSY_MESSAGE = "This application is currently busy. Please try again."


@dataclass
class Settings:
    """Queue and size limits of one app instance."""

    #: events waiting in the queue before new ones are answered "busy, try again"
    max_queue: int = int(os.environ.get("STYLEKIT_DEMO_QUEUE", "16"))
    #: Gatys / compare jobs at a time (they use every core)
    heavy_concurrency: int = int(os.environ.get("STYLEKIT_DEMO_HEAVY", "1"))
    #: feed-forward / AdaIN requests let through to the work gate at a time (they take turns there;
    #: the gate, not Gradio's queue, decides who waits and who is answered "busy")
    fast_concurrency: int = int(os.environ.get("STYLEKIT_DEMO_FAST", "16"))
    #: one-pass requests are answered "busy, try again" when more than this many seconds of work are
    #: queued ahead of them (engine.WorkGate): accepted requests finish in about this time under load
    max_wait: float = engine.MAX_WAIT
    #: upload size limit (Gradio's max_file_size)
    max_file_size: str = os.environ.get("STYLEKIT_DEMO_MAX_UPLOAD", "10mb")
    #: inputs above this many pixels are downscaled (with a note)
    pixel_cap: int = engine.PIXEL_CAP
    gatys_size: int = engine.GATYS_SIZES[2]
    gatys_steps: int = engine.GATYS_STEPS[2]
    fast_size: int = engine.FAST_SIZES[2]
    #: preview every k Gatys steps
    preview_every: int = 5
    #: warm the encoder and runners up in a background thread at start-up
    warm_up: bool = os.environ.get("STYLEKIT_DEMO_WARM_UP", "1") != "0"


# ---- an image input whose bad uploads get a readable error ------------------------------------------------------
def ImageInput(**kwargs) -> gr.Image:  # noqa: N802 - used like a component class
    """A gr.Image whose uploads are validated by stylekit's loader: a bad file -> gr.Error a person
    understands. (The instance's preprocess is wrapped; a subclass would make Gradio write a .pyi
    file next to this module.)"""
    comp = gr.Image(**kwargs)
    plain = comp.preprocess

    def preprocess(payload):
        if payload is None:
            return None
        path = getattr(payload, "path", None)
        if path is None or (getattr(payload, "url", None) or "").startswith("data:"):
            return plain(payload)
        name = getattr(payload, "orig_name", None) or Path(path).name
        try:
            return open_image(path, max_pixels=DEFAULT_MAX_PIXELS)
        except StyleKitError as e:
            raise gr.Error(str(e).replace(f"'{path}'", f"'{name}'"), title="Unusable image") from None

    comp.preprocess = preprocess  # type: ignore[method-assign]
    return comp


def _error(e: BaseException) -> gr.Error:
    return gr.Error(str(e), title="Cannot run this")


def _pil(x: torch.Tensor | None) -> Image.Image | None:
    return None if x is None else tensor_to_pil(x)


def _info(res: engine.Result | None, notes: list[str], mode: str) -> str:
    parts = []
    if res is not None:
        parts.append(f"**{res.seconds:.2f} s**" if res.seconds < 10 else f"**{res.seconds:.1f} s**")
        parts += res.notes
    parts += [n for n in notes if n]
    return " · ".join(parts)


def _slider(content: engine.Input, out: torch.Tensor):
    before, after = engine.before_after(content.tensor, out)
    return (_pil(before), _pil(after))


def _placeholder(like: torch.Tensor, text: str) -> Image.Image:
    from PIL import ImageDraw

    h, w = like.shape[-2:]
    s = 256 / max(h, w)
    img = Image.new("RGB", (max(8, round(w * s)), max(8, round(h * s))), (225, 225, 225))
    ImageDraw.Draw(img).text((10, img.height // 2 - 6), text, fill=(90, 90, 90))
    return img


def _thumbnail(entry: engine.StyleEntry) -> str:
    """A small JPEG of a style image, written into the app's own directory."""
    d = WORK_DIR / "thumbs"
    d.mkdir(exist_ok=True)
    p = d / f"{entry.name}-{abs(hash(str(entry.path))) % 10**8}.jpg"
    if not p.exists():
        img = open_image(entry.path)
        img.thumbnail((192, 192), Image.Resampling.LANCZOS)
        from stylekit.images import save_image

        save_image(img, p, quality=88)  # atomic: a crash never leaves a broken thumbnail to be reused
    return str(p)


def _write_png(img: Image.Image, stem: str) -> str:
    d = WORK_DIR / "figures"
    d.mkdir(exist_ok=True)
    p = d / f"{stem}-{uuid.uuid4().hex[:8]}.png"
    img.save(p)
    return str(p)


# ---- the app ------------------------------------------------------------------------------------------------------------
def own_networks_info() -> str | None:
    """The "Trained style" dropdown's hint: which styles run alone on their own network."""
    own = engine.own_networks()
    if not own:
        return None
    names = ", ".join(n.replace("_", " ") for n in own)
    return f"{names}: {'its' if len(own) == 1 else 'each its'} own network when alone; blends use the shared gallery"


def create_demo(settings: Settings | None = None) -> gr.Blocks:
    s = settings or Settings()
    from stylekit.gatys import PRESETS

    catalogue = engine.style_catalogue()
    fast_names = engine.fast_style_names()
    contents = engine.example_files("content")
    example_styles = engine.example_files("style")

    def prep(img, what: str) -> engine.Input:
        try:
            return engine.prepare(img, what, s.pixel_cap)
        except StyleKitError as e:
            raise _error(e) from None

    # ---- handlers -------------------------------------------------------------------------------------------------
    def gatys(content_img, style_img, preset, size, steps, style_weight, preserve, request: gr.Request,
              progress=gr.Progress()):
        """Gatys optimization; yields previews while it runs (Stop ends it within a step)."""
        c, st = prep(content_img, "content"), prep(style_img, "style")
        notes = [c.note, st.note]
        try:
            cfg = engine.gatys_config(preset, steps, style_weight, bool(preserve), s.preview_every)
        except StyleKitError as e:
            raise _error(e) from None
        session = request.session_hash if request is not None else "api"
        cancel = engine.CANCELLERS.new(session or "api")
        try:
            progress(0, desc="starting")
            for u in engine.iter_gatys(c, st, int(size), cfg, cancel=cancel):
                progress((u.step, u.total), desc="stopped" if u.stopped else "optimizing", unit="steps")
                if not u.done:
                    yield _pil(u.preview), gr.skip(), f"step {u.step} / {u.total} …", gr.skip()
                else:
                    res = u.result
                    state = {"content": c, "style": st, "image": res.image, "notes": notes}
                    yield _pil(res.image), _slider(c, res.image), _info(res, notes, "gatys"), state
        except StyleKitError as e:
            raise _error(e) from None
        finally:
            engine.CANCELLERS.done(session or "api", cancel)

    def fast(content_img, style_img, style, style2, blend, strength, preserve, size, stroke=None):
        """Feed-forward network (onnxruntime): a trained style or a blend of two."""
        c = prep(content_img, "content")
        try:
            res = engine.run_fast(c, style or None, (style2 or None) if style2 != "(none)" else None, float(blend),
                                  float(strength), bool(preserve), int(size), max_wait=s.max_wait,
                                  stroke_scale=None if stroke is None else float(stroke))
        except StyleKitError as e:
            raise _error(e) from None
        st = res.style_for_metrics
        if st is None and style_img is not None:
            st = prep(style_img, "style")
        state = {"content": c, "style": st, "image": res.image, "notes": [c.note]}
        return _pil(res.image), _slider(c, res.image), _info(res, [c.note], "fast"), state

    def adain(content_img, style_img, style2_img, mix, alpha, preserve, size, detail=None):
        """AdaIN (its runner) with cached style statistics; optional second style to interpolate."""
        c, st = prep(content_img, "content"), prep(style_img, "style")
        st2 = prep(style2_img, "second style") if style2_img is not None else None
        try:
            res = engine.run_adain(c, st, st2, float(mix), float(alpha), bool(preserve), int(size),
                                   max_wait=s.max_wait, detail=None if detail is None else float(detail))
        except StyleKitError as e:
            raise _error(e) from None
        notes = [c.note, st.note, st2.note if st2 else ""]
        state = {"content": c, "style": st, "image": res.image, "notes": notes}
        return _pil(res.image), _slider(c, res.image), _info(res, notes, "adain"), state

    def measure(state, info):
        """Style/content distances of the last result (a second step, so the image shows at once)."""
        if not state or state.get("style") is None:
            return info
        try:  # under load the distances are skipped, not queued
            d = engine.measure(state["image"], state["content"], state["style"], s.max_wait)
        except engine.Busy:
            return f"{info} · distances skipped (server busy)"
        return f"{info} · style distance {d.style:.3f} · content distance {d.content:.3f}"

    def compare(content_img, style_img, preset, gsize, steps, style_weight, g_preserve, ff_style, alpha, fsize,
                detail=None, request: gr.Request = None, progress=gr.Progress()):
        """All three modes on the same pair, and a labelled comparison figure (PNG)."""
        from stylekit.compare import ModeResult, figure_for

        c, st = prep(content_img, "content"), prep(style_img, "style")
        session = request.session_hash if request is not None else "api"
        cancel = engine.CANCELLERS.new(session or "api")
        results: dict[str, ModeResult] = {}
        outs: dict[str, tuple] = {}
        try:
            cfg = engine.gatys_config(preset, steps, style_weight, bool(g_preserve), s.preview_every)
            progress(0, desc="Gatys")
            for u in engine.iter_gatys(c, st, int(gsize), cfg, cancel=cancel):
                progress((u.step, u.total), desc="Gatys", unit="steps")
                if u.done:
                    r = u.result
                    results["gatys"] = ModeResult("gatys", r.image, r.seconds, note=", ".join(r.notes))
                    if u.stopped:
                        raise Cancelled("stopped")
            for mode, run in (("fast", lambda: engine.run_fast(c, ff_style or None, size=int(fsize))),
                              ("adain", lambda: engine.run_adain(c, st, alpha=float(alpha), size=int(fsize),
                                                                 detail=None if detail is None else float(detail)))):
                progress(None, desc=mode)
                try:
                    r = run()
                    results[mode] = ModeResult(mode, r.image, r.seconds, note=", ".join(r.notes))
                    if mode == "fast":
                        outs["fast_style"] = (r.style_for_metrics,)
                except StyleKitError as e:
                    results[mode] = ModeResult(mode, None, note=str(e))
            for mode, r in results.items():
                if r.image is not None:
                    target = st
                    if mode == "fast" and outs.get("fast_style", (None,))[0] is not None:
                        target = outs["fast_style"][0]
                    r.distances = engine.measure(r.image, c, target)
        except Cancelled:
            raise gr.Error("Stopped.", title="Compare all") from None
        except StyleKitError as e:
            raise _error(e) from None
        finally:
            engine.CANCELLERS.done(session or "api", cancel)
        ordered = [results[m] for m in ("gatys", "fast", "adain")]
        fig = figure_for(c.tensor, st.tensor, ordered)
        path = _write_png(fig, "stylekit-comparison")
        per = []
        for r in ordered:
            text = " · ".join(r.caption())
            if r.image is None:
                per += [None, None, text]
            else:
                per += [_pil(r.image), _slider(c, r.image), text]
        return (fig, path, *per)

    def example_run(content_img, style_img, style):
        """Feed-forward and AdaIN on an example pair; a missing model gives a note instead of an error."""
        c, st = prep(content_img, "content"), prep(style_img, "style")
        out: list = []
        for run in (lambda: engine.run_fast(c, style or None, size=s.fast_size),
                    lambda: engine.run_adain(c, st, size=s.fast_size)):
            try:
                res = run()
                out += [_pil(res.image), _slider(c, res.image), _info(res, [c.note], "")]
            except StyleKitError as e:  # cached outputs cannot be empty: a grey placeholder says it
                ph = _placeholder(c.tensor, "not available")
                out += [ph, (ph, ph), str(e)]
        return tuple(out)

    def input_note(content_img, style_img):
        """Say at once when an input will be downscaled (above the pixel cap)."""
        notes = []
        for img, what in ((content_img, "content"), (style_img, "style")):
            if img is not None and img.width * img.height > s.pixel_cap:
                k = (s.pixel_cap / (img.width * img.height)) ** 0.5
                notes.append(f"The {what} image ({img.width}×{img.height}) is above the "
                             f"{s.pixel_cap / 1e6:.1f}-megapixel limit; it will be downscaled to about "
                             f"{int(img.width * k)}×{int(img.height * k)}.")
        return " ".join(notes)

    def stop(request: gr.Request):
        """Stop this session's running Gatys / compare jobs (within one optimizer step)."""
        n = engine.CANCELLERS.cancel(request.session_hash if request is not None else "api")
        return "Stopping…" if n else "Nothing is running."

    def stroke_default(style, style2=None, blend=0.0):
        """The stroke scale the picked style (or blend) runs at by default, for the slider."""
        return engine.style_stroke_scale(style, style2 if style2 != "(none)" else None, blend or 0.0)

    def pick_style(evt: gr.SelectData):
        e = catalogue[evt.index]
        img = open_image(e.path)
        return img, (gr.update(value=e.name) if e.name in fast_names else gr.update())

    def refresh():
        st = engine.model_status()
        names = engine.fast_style_names()
        lines = [f"**Feed-forward:** {st['fast']}", f"**AdaIN:** {st['adain']}"]
        upd = gr.update(choices=names, value=names[0] if names else None)
        upd2 = gr.update(choices=["(none)"] + names)
        return " · ".join(lines), upd, upd2

    # ---- layout --------------------------------------------------------------------------------------------------
    png = dict(format="png", type="pil")

    def result_block(label: str, key: str) -> tuple[gr.Button, gr.Image, gr.ImageSlider, gr.Markdown]:
        """A mode's run button, result image, before/after slider and info line (element ids for the tests)."""
        btn = gr.Button(f"Run {label}", elem_id=f"run-{key}")
        out = gr.Image(label=f"{label[0].upper()}{label[1:]} result", elem_id=f"{key}-result",
                       buttons=["download", "fullscreen"], interactive=False, **png)
        slider = gr.ImageSlider(label="Before / after", format="png", type="pil", interactive=False)
        return btn, out, slider, gr.Markdown("", elem_id=f"{key}-info")

    def one_pass_size() -> gr.Slider:
        return gr.Slider(engine.FAST_SIZES[0], engine.FAST_SIZES[1], value=s.fast_size, step=32,
                         label="Size (long side, px)")

    with gr.Blocks(title="stylekit: neural style transfer", analytics_enabled=False) as demo:
        gr.Markdown("# stylekit — neural style transfer, three ways\n"
                    "Pick a **content** photo and a **style**, then run each mode or **Compare all**. "
                    "Gatys optimizes the image itself (slow, best quality); the feed-forward network "
                    "stylizes in one pass with its trained styles; AdaIN takes any style in one pass.")
        status = gr.Markdown("Loading models…", elem_id="model-status")
        with gr.Row():
            with gr.Column():
                content_img = ImageInput(label="Content", sources=["upload", "webcam", "clipboard"], height=300,
                                         elem_id="content-image", **png)
                if contents:
                    gr.Examples([[str(p)] for p in contents], inputs=[content_img], label="Example photos",
                                examples_per_page=8)
            with gr.Column():
                style_img = ImageInput(label="Style", sources=["upload", "clipboard"], height=300,
                                       elem_id="style-image", **png)
                gallery = gr.Gallery([(_thumbnail(e), e.label) for e in catalogue], label="Style gallery (★ = "
                                     "trained feed-forward style; click to use)", columns=6, height=220,
                                     allow_preview=False, object_fit="cover", elem_id="style-gallery",
                                     interactive=False)
        with gr.Row():
            compare_btn = gr.Button("Compare all", variant="primary", elem_id="compare-all")
            stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
        input_md = gr.Markdown("", elem_id="input-note")
        stop_md = gr.Markdown("")
        with gr.Row(equal_height=False):
            with gr.Column():
                gr.Markdown("### Gatys (optimization)")
                g_preset = gr.Dropdown(list(PRESETS), value="default", label="Preset")
                g_size = gr.Slider(engine.GATYS_SIZES[0], engine.GATYS_SIZES[1], value=s.gatys_size, step=16,
                                   label="Size (long side, px)")
                g_steps = gr.Slider(engine.GATYS_STEPS[0], engine.GATYS_STEPS[1], value=s.gatys_steps, step=1,
                                    label="Steps (at the final scale)")
                g_sw = gr.Slider(0.1, 10, value=1.0, step=0.1, label="Style weight (× preset)")
                g_pc = gr.Checkbox(False, label="Preserve colours")
                g_btn, g_out, g_slider, g_info = result_block("Gatys", "gatys")
            with gr.Column():
                gr.Markdown("### Feed-forward")
                f_style = gr.Dropdown(fast_names, value=fast_names[0] if fast_names else None,
                                      label="Trained style", allow_custom_value=False, elem_id="fast-style",
                                      info=own_networks_info())
                f_style2 = gr.Dropdown(["(none)"] + fast_names, value="(none)", label="Blend with")
                f_blend = gr.Slider(0, 1, value=0.5, step=0.05, label="Blend (share of the second style)")
                f_strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength")
                f_pc = gr.Checkbox(False, label="Preserve colours")
                f_size = one_pass_size()
                f_stroke = gr.Slider(0.75, 2.0, value=stroke_default(fast_names[0] if fast_names else None),
                                     step=0.05, label="Stroke scale", elem_id="fast-stroke",
                                     info="set to the style's own when you pick one; below 1: finer strokes (the "
                                          "network runs larger, ~1.6x the time at 0.8); above 1: bigger strokes")
                f_btn, f_out, f_slider, f_info = result_block("feed-forward", "fast")
            with gr.Column():
                gr.Markdown("### AdaIN")
                a_alpha = gr.Slider(0, 1, value=1.0, step=0.05, label="α (content ↔ style)")
                a_detail = gr.Slider(0, 1, value=DEFAULT_DETAIL, step=0.05, label="Detail",
                                     info="give back the photo's fine detail that the decoder blurs "
                                          "(0 = the paper's AdaIN; one more decoder pass)")
                a_style2 = ImageInput(label="Second style (optional)", sources=["upload", "clipboard"], height=140,
                                      **png)
                a_mix = gr.Slider(0, 1, value=0.5, step=0.05, label="Interpolation (share of the second style)")
                a_pc = gr.Checkbox(False, label="Preserve colours")
                a_size = one_pass_size()
                a_btn, a_out, a_slider, a_info = result_block("AdaIN", "adain")
        with gr.Row():
            fig_out = gr.Image(label="Comparison figure", elem_id="comparison-figure", interactive=False, **png)
        fig_file = gr.File(label="Comparison figure (PNG download)", interactive=False, elem_id="comparison-file")
        if contents and example_styles:
            # clicking a pair fills the inputs and shows the two fast modes' results (cached lazily, on
            # first click; Gatys never runs for examples)
            pairs = []
            for i in range(min(len(contents), len(example_styles))):
                sp = example_styles[i % len(example_styles)]
                ff = sp.stem if sp.stem in fast_names else (fast_names[0] if fast_names else None)
                pairs.append([str(contents[i % len(contents)]), str(sp), ff])
            gr.Examples(pairs, inputs=[content_img, style_img, f_style], fn=example_run,
                        outputs=[f_out, f_slider, f_info, a_out, a_slider, a_info], cache_examples=True,
                        cache_mode="lazy", label="Example pairs (click: fast results at once)",
                        elem_id="example-pairs", visible_columns=[0, 1])

        g_state, f_state, a_state = gr.State(None), gr.State(None), gr.State(None)
        heavy = dict(concurrency_limit=s.heavy_concurrency, concurrency_id="heavy")
        light = dict(concurrency_limit=s.fast_concurrency, concurrency_id="fast")
        quiet = dict(api_visibility="undocumented", show_progress="hidden")

        g_ev = g_btn.click(gatys, [content_img, style_img, g_preset, g_size, g_steps, g_sw, g_pc],
                           [g_out, g_slider, g_info, g_state], api_name="gatys", **heavy)
        g_ev.success(measure, [g_state, g_info], [g_info], api_name="measure_gatys", **light, **quiet)
        f_ev = f_btn.click(fast, [content_img, style_img, f_style, f_style2, f_blend, f_strength, f_pc, f_size,
                                  f_stroke],
                           [f_out, f_slider, f_info, f_state], api_name="fast", **light)
        f_ev.success(measure, [f_state, f_info], [f_info], api_name="measure_fast", **light, **quiet)
        a_ev = a_btn.click(adain, [content_img, style_img, a_style2, a_mix, a_alpha, a_pc, a_size, a_detail],
                           [a_out, a_slider, a_info, a_state], api_name="adain", **light)
        a_ev.success(measure, [a_state, a_info], [a_info], api_name="measure_adain", **light, **quiet)
        compare_btn.click(compare, [content_img, style_img, g_preset, g_size, g_steps, g_sw, g_pc, f_style,
                                    a_alpha, f_size, a_detail],
                          [fig_out, fig_file, g_out, g_slider, g_info, f_out, f_slider, f_info,
                           a_out, a_slider, a_info], api_name="compare", **heavy)
        stop_btn.click(stop, None, [stop_md], api_name="stop", queue=False)
        gallery.select(pick_style, None, [style_img, f_style], api_name="pick_style", **light, **quiet)
        for comp in (content_img, style_img):
            comp.change(input_note, [content_img, style_img], [input_md], api_name="input_note", **light, **quiet)
        demo.load(refresh, None, [status, f_style, f_style2], api_name="status", **light, **quiet)
        for comp, api in ((f_style, "stroke_default"), (f_style2, "stroke_default_2")):
            comp.change(stroke_default, [f_style, f_style2, f_blend], [f_stroke], api_name=api, **light, **quiet)
        f_blend.release(stroke_default, [f_style, f_style2, f_blend], [f_stroke], api_name="stroke_default_blend",
                        **light, **quiet)

    demo.queue(max_size=s.max_queue, default_concurrency_limit=s.fast_concurrency)
    if s.warm_up:
        t = threading.Thread(target=_warm_up, daemon=True, name="stylekit-warm-up")
        t.start()
        # a process that exits while the warm-up is inside torch aborts ("terminate called without an active
        # exception", exit status 134), e.g. a script that only imports demo.app: let the warm-up finish first
        atexit.register(t.join, 300)
    return demo


def _warm_up() -> None:
    try:
        engine.warm_up()
    except Exception as e:  # noqa: BLE001 - a missing model is reported by the UI, not at start-up
        print(f"stylekit demo: warm-up: {e}", file=sys.stderr)


def launch_kwargs(settings: Settings | None = None) -> dict:
    """launch() settings: upload limit; serve nothing beyond the app's own files."""
    s = settings or Settings()
    return dict(max_file_size=s.max_file_size, allowed_paths=[], show_error=False,
                server_name=os.environ.get("GRADIO_SERVER_NAME"),
                server_port=int(os.environ["GRADIO_SERVER_PORT"]) if os.environ.get("GRADIO_SERVER_PORT") else None)


demo = create_demo()


def main() -> None:
    demo.launch(**launch_kwargs())


if __name__ == "__main__":
    main()
