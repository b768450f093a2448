"""A style's own one-style network ("specialist") beside the gallery: a style alone runs on it, blends on
the gallery, in the catalogue, the CLI, the demo engine and the ONNX export."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from stylekit import weights as W
from stylekit.errors import WeightsError
from stylekit.feedforward import TransformerNet, stylize_fast
from stylekit.training import save_checkpoint
from tests.conftest import synthetic_image


def _style_without_own_network() -> str:
    return next(s.name for s in W.list_styles() if not s.specialist)


@pytest.fixture
def own(tmp_path, monkeypatch) -> W.ModelRecord:
    """A small one-style network for a gallery style, registered as that style's own (stroke scale 0.9)."""
    style = _style_without_own_network()
    torch.manual_seed(3)
    net = TransformerNet(1, width=(4, 8, 8), blocks=1)
    meta = {"kind": "fast", "styles": [style], "config": net.config, "command": "stylekit train-fast (test)"}
    ck = save_checkpoint(tmp_path / "ck.safetensors", net, torch.optim.Adam(net.parameters()), 3, meta=meta)
    rec = W.package_fast_checkpoint(ck, tmp_path / "own.safetensors", model_id="test_own", register=False,
                                    extra={"specialist": True, "stroke_scales": {style: 0.9}})
    monkeypatch.setitem(W._EXTRA, rec.id, rec)
    yield rec
    from export import runtime

    runtime.clear_runners()


def test_a_style_alone_runs_on_its_own_network_and_a_blend_on_the_gallery(own):
    style = own.metadata["styles"][0]
    gallery = W.get_record(None, "fast").id
    other = next(s.name for s in W.list_styles() if s.name != style)
    entries = [s for s in W.list_styles() if s.name == style]
    assert len(entries) == 1 and entries[0].model == gallery and entries[0].specialist == own.id  # listed once
    alone = W.solo_style(style)
    assert (alone.model, alone.index, alone.stroke_scale) == (own.id, 0, 0.9)
    mid, vec = W.fast_model_for(style)
    assert mid == own.id and vec.tolist() == [1.0]
    assert W.fast_model_for({style: 1, other: 0})[0] == own.id            # the other style weighs nothing
    mid, vec = W.fast_model_for({style: 1, other: 1})
    assert mid == gallery and vec.numel() == len(W.list_styles(gallery))
    assert W.fast_model_for(style, gallery)[0] == gallery                 # a model named is used as given
    assert W.style_vector(style).numel() == len(W.list_styles(gallery))   # the gallery's vector, as before
    assert W.default_stroke_scale(style) == 0.9
    g = {s.name: s.stroke_scale for s in W.list_styles(gallery)}
    assert W.default_stroke_scale({style: 1, other: 1}) == pytest.approx((g[style] + g[other]) / 2, abs=1e-3)


def test_cli_fast_and_styles_use_the_own_network(own, tmp_path, capsys):
    from stylekit.cli import main
    from stylekit.images import load_image, save_image

    style = own.metadata["styles"][0]
    src = save_image(synthetic_image(40, 56), tmp_path / "in.png")
    out = tmp_path / "out.png"
    assert main(["fast", str(src), "--style", style, "--backend", "torch", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{own.id}, torch" in err and "stroke scale 0.9" in err
    want = stylize_fast(W.load_fast_model(own.id), load_image(src), None, stroke_scale=0.9)
    assert (load_image(out) - want).abs().max() <= 1 / 255 + 1e-6
    assert main(["styles"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith(style + "\t"))
    assert line.split("\t")[2:] == ["stroke scale 0.9", f"its own network ({own.id})"]


def test_a_broken_own_network_names_its_file(own, tmp_path):
    from stylekit.cli import main
    from stylekit.images import save_image

    own.path.write_bytes(own.path.read_bytes()[:200])  # truncated: the sha256 no longer matches
    src = save_image(synthetic_image(40, 56), tmp_path / "in.png")
    with pytest.raises(WeightsError, match="test_own"):
        W.load_fast_model(own.id)
    assert main(["fast", str(src), "--style", own.metadata["styles"][0], "--backend", "torch",
                 "-o", str(tmp_path / "o.png")]) != 0


def test_a_specialist_must_hold_one_style(own, monkeypatch):
    bad = dataclasses.replace(own, metadata={**own.metadata, "styles": ["a", "b"]})
    monkeypatch.setitem(W._EXTRA, own.id, bad)
    with pytest.raises(WeightsError, match="exactly one style"):
        W.list_styles()


def test_demo_engine_serves_a_style_alone_on_its_own_network(own):
    from demo import engine

    style = own.metadata["styles"][0]
    other = next(s for s in engine.fast_style_names() if s != style)
    assert style in engine.own_networks()
    c = engine.prepare(synthetic_image(64, 96), "content")
    good = own.path.read_bytes()
    own.path.write_bytes(b"broken")                        # a broken file: the gallery serves, with a warning
    with pytest.warns(RuntimeWarning, match="own network"):
        res = engine.run_fast(c, style, size=96)
    assert "its own network" not in res.notes[0] and res.image.shape[-2:] == (64, 96)
    engine._OWN_FAILED.discard(style)
    own.path.write_bytes(good)
    res = engine.run_fast(c, style, size=96)
    assert "its own network" in res.notes[0] and "stroke scale 0.9" in ", ".join(res.notes)
    blend = engine.run_fast(c, style, other, 0.5, size=96)
    assert "its own network" not in ", ".join(blend.notes)


def test_export_covers_each_own_network(own, tmp_path):
    from export.make import export_models, fast_model_ids

    assert fast_model_ids() == [None] + [r.id for r in W.records("fast") if r.specialist]
    assert own.id in fast_model_ids() and fast_model_ids("x") == ["x"]
    files = export_models(["fast"], out_dir=tmp_path, variants=("fp32",), log=lambda _: None)
    assert any(own.id in f.name for f in files) and any(W.DEFAULT_FAST_MODEL in f.name for f in files)
