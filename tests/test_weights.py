"""The model catalogue (stylekit.weights): shipped files, style names, blends, broken weight files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from stylekit import weights as W
from stylekit.errors import ParameterError, WeightsError
from stylekit.feedforward import TransformerNet, stylize_fast
from stylekit.training import save_checkpoint
from tests.conftest import synthetic_image


def test_catalogue_files_exist_verify_and_load():
    recs = W.records("fast")
    assert any(r.id == W.DEFAULT_FAST_MODEL for r in recs)
    for r in recs:
        W.verify(r)
        state, info = W.read_weights_file(r.path)
        assert all(v.dtype == torch.float16 for v in state.values())
        for key in ("styles", "config", "command", "steps", "data", "machine"):
            assert key in info, key
        if r.specialist:  # a style's own network: one style of the gallery, with its benchmark figures
            assert len(info["styles"]) == 1 and W.find_style(info["styles"][0]).specialist == r.id
            assert info["metrics"]["style_distance"] and (info.get("rounds") or info.get("history")), r.id
    net = W.load_fast_model()
    assert net.num_styles == len(net.style_names) >= 6
    y = stylize_fast(net, synthetic_image(37, 53), W.style_vector("starry_night"))
    assert y.shape == (1, 3, 37, 53)


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_cli_fast_with_a_stroke_scale_keeps_the_size(tmp_path, backend, capsys):
    from stylekit.cli import main
    from stylekit.images import load_image, save_image

    src = save_image(synthetic_image(61, 90), tmp_path / "in.png")
    rc = main(["fast", str(src), "--style", "the_scream", "--stroke-scale", "0.8", "--backend", backend,
               "-o", str(tmp_path / "out.png")])
    assert rc == 0, capsys.readouterr().err
    out = load_image(tmp_path / "out.png")
    assert out.shape == (1, 3, 61, 90)
    plain = stylize_fast(W.load_fast_model(), load_image(src), W.style_vector("the_scream"))
    assert (out - plain).abs().mean() > 1e-3   # the strokes did change


def test_every_style_has_its_image_and_license():
    styles = W.list_styles()
    assert len(styles) >= 6
    names = {s.name for s in styles}
    assert {"vangogh_starry_night", "munch_the_scream", "klimt_the_kiss", "hokusai_great_wave_off_kanagawa",
            "kandinsky_composition_viii"} <= names
    for s in styles:
        assert s.image.is_file(), s.image
        assert s.license and "public domain" in s.license.lower() or "cc" in (s.license or "").lower()


def test_style_names_and_vectors():
    full = W.find_style("vangogh_starry_night")
    assert W.find_style("starry_night") == full == W.find_style("Starry Night")
    v = W.style_vector("starry_night")
    assert v.sum() == 1 and v[full.index] == 1
    mix = W.style_vector({"starry_night": 1, "the_scream": 3})
    assert torch.allclose(mix.sum(), torch.tensor(1.0)) and abs(float(mix[W.find_style("the_scream").index]) - 0.75) < 1e-6
    mid, _ = W.style_vector("the_kiss", with_model=True)
    assert mid == W.DEFAULT_FAST_MODEL


@pytest.mark.parametrize("spec", ["no_such_style", {"starry_night": float("nan")}, {"starry_night": -1},
                                  {"starry_night": 0, "the_scream": 0}, {}, {"starry_night": "x"}])
def test_bad_style_specs_are_parameter_errors(spec):
    with pytest.raises(ParameterError):
        W.style_vector(spec)


def test_corrupt_and_truncated_files_are_weights_errors(tmp_path):
    src = W.get_record(W.DEFAULT_FAST_MODEL).path
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(WeightsError, match="trunc.safetensors"):
        W.fast_model_from_file(trunc)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a weights file at all")
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        W.fast_model_from_file(junk)
    with pytest.raises(WeightsError, match="does not exist"):
        W.fast_model_from_file(tmp_path / "missing.safetensors")
    # a catalogue record whose file changed: sha256 mismatch
    rec = W.ModelRecord("broken", trunc, "0" * 64, "fast", {"styles": ["a"]})
    with pytest.raises(WeightsError, match="corrupt or was replaced"):
        W.verify(rec)


def test_checkpoint_of_another_architecture_is_a_weights_error(tmp_path):
    from safetensors.torch import save_file

    small = TransformerNet(2, width=(4, 8, 8), blocks=1)
    meta = {"kind": "fast", "styles": ["a", "b"], "config": small.config}
    p = save_checkpoint(tmp_path / "ck.safetensors", small, None, 1, meta=meta)
    assert W.fast_model_from_file(p).num_styles == 2          # a training checkpoint loads
    # the same tensors described as a different architecture
    other = dict(TransformerNet(2, width=(4, 8, 16), blocks=1).config)
    state = {k: v for k, v in small.state_dict().items()}
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata={"stylekit": json.dumps({"styles": ["a", "b"], "config": other})})
    with pytest.raises(WeightsError, match="does not match this model's architecture"):
        W.fast_model_from_file(bad)
    # not a feed-forward file at all (e.g. an AdaIN decoder)
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(WeightsError, match="not a stylekit feed-forward network"):
        W.fast_model_from_file(tmp_path / "other.safetensors")


def test_package_checkpoint_round_trip(tmp_path):
    net = TransformerNet(2, width=(4, 8, 8), blocks=1)
    meta = {"kind": "fast", "styles": ["s1", "s2"], "config": net.config, "command": "stylekit train-fast ...",
            "init_styles": {"s2": "old"}}
    ck = save_checkpoint(tmp_path / "ck.safetensors", net, torch.optim.Adam(net.parameters()), 5, meta=meta)
    rec = W.package_fast_checkpoint(ck, tmp_path / "m.safetensors", model_id="tiny", register=False,
                                    extra={"metrics": {"x": 1}})
    assert rec.sha256 == W.sha256_file(tmp_path / "m.safetensors")
    state, info = W.read_weights_file(rec.path)
    assert info["steps"] == 5 and info["metrics"] == {"x": 1} and info["styles"] == ["s1", "s2"]
    assert info["init_styles"] == {"s2": "old"}  # train-fast --init-style's map travels into the shipped record
    again = W.fast_model_from_file(rec.path)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v.half().float())


def test_packaged_networks_keep_their_training_lineage(tmp_path):
    """A network continued from a shipped file (``--init``) records every round before it, also the rounds
    that shipped file inherited, with the steps and seconds summed."""
    net = TransformerNet(1, width=(4, 8, 8), blocks=1)

    def package(name: str, step: int, seconds: float, init: Path | None) -> W.ModelRecord:
        meta = {"kind": "fast", "styles": ["s"], "config": net.config, "command": f"train {name}", "machine": "m",
                "init_meta": W.training_record(init)}
        ck = save_checkpoint(tmp_path / f"{name}.ck.safetensors", net, None, step, meta=meta,
                             extra={"seconds": seconds})
        return W.package_fast_checkpoint(ck, tmp_path / f"{name}.safetensors", model_id=name, register=False)

    first = package("first", 5, 10.0, None)
    assert "rounds" not in first.metadata and first.metadata["steps"] == 5      # one round: its own fields
    second = package("second", 7, 20.0, first.path)
    third = package("third", 11, 40.0, second.path)
    _, info = W.read_weights_file(third.path)
    assert [(r["command"], r["steps"], r["seconds"]) for r in info["rounds"]] == [
        ("train third", 11, 40.0), ("train second", 7, 20.0), ("train first", 5, 10.0)]
    assert (info["total_steps"], info["total_seconds"]) == (23, 70.0)
    assert third.metadata["rounds"] == info["rounds"] and third.metadata["total_steps"] == 23  # the catalogue's


def _gallery_with_stroke_scales(monkeypatch, scales) -> W.ModelRecord:
    import dataclasses

    rec = W.get_record(None, "fast")
    fake = dataclasses.replace(rec, metadata={**rec.metadata, "stroke_scales": scales})
    monkeypatch.setitem(W._EXTRA, rec.id, fake)
    return fake


def test_styles_carry_their_stroke_scale_and_a_blend_averages_them(monkeypatch, capsys):
    from stylekit.cli import main

    _gallery_with_stroke_scales(monkeypatch, {"munch_the_scream": 0.8, "klimt_the_kiss": 1.2})
    by_name = {s.name: s.stroke_scale for s in W.list_styles()}
    assert by_name["munch_the_scream"] == 0.8 and by_name["klimt_the_kiss"] == 1.2
    assert by_name["vangogh_starry_night"] == 1.0                      # not listed: as trained
    assert W.default_stroke_scale("the_scream") == 0.8
    assert W.default_stroke_scale({"the_scream": 1, "the_kiss": 3}) == pytest.approx(0.25 * 0.8 + 0.75 * 1.2)
    assert main(["styles"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("munch_the_scream\t"))
    name, path, scale, net = line.split("\t")
    assert path.endswith("munch_the_scream.jpg") and scale == "stroke scale 0.8" and net.startswith("the gallery")


def test_cli_fast_runs_a_style_at_its_own_stroke_scale(monkeypatch, tmp_path, capsys):
    from stylekit.cli import main
    from stylekit.images import load_image, save_image

    _gallery_with_stroke_scales(monkeypatch, {"munch_the_scream": 0.8})
    src = save_image(synthetic_image(40, 56), tmp_path / "in.png")
    outs = {}
    for extra in ([], ["--stroke-scale", "0.8"], ["--stroke-scale", "1"]):
        out = tmp_path / f"out{len(outs)}.png"
        assert main(["fast", str(src), "--style", "the_scream", "--backend", "torch", "-o", str(out), *extra]) == 0
        outs[tuple(extra)] = load_image(out)
    assert torch.equal(outs[()], outs[("--stroke-scale", "0.8")])        # the style's own: 0.8
    assert not torch.equal(outs[()], outs[("--stroke-scale", "1")])


@pytest.mark.parametrize("bad", [0.1, "x", None, float("nan")])
def test_a_bad_stroke_scale_in_the_catalogue_is_a_weights_error(monkeypatch, bad):
    _gallery_with_stroke_scales(monkeypatch, {"munch_the_scream": bad})
    with pytest.raises(WeightsError, match="stroke scale"):
        W.list_styles()


def test_bench_selects_stroke_scales_on_training_photos_and_stores_them(monkeypatch, tmp_path, capsys):
    """``stylekit bench fast --select-stroke-scale``: per style the candidate with the lowest mean style
    distance on training photos (a larger one within SELECT_TIE preferred), written into the record."""
    from stylekit.bench_fast import main as bench

    data = tmp_path / "data" / "content"
    data.mkdir(parents=True)
    from stylekit.images import save_image

    for i in range(11):   # ten for training, every tenth held out
        save_image(synthetic_image(36, 48, seed=i, kind="content"), data / f"p{i:02d}.png")
    cat = tmp_path / "catalogue.json"
    js = json.loads(W.CATALOGUE_FILE.read_text())
    for m in js["models"]:
        m["path"] = str(W.MODELS_DIR / m["path"])
    cat.write_text(json.dumps(js))
    monkeypatch.setattr(W, "CATALOGUE_FILE", cat)
    monkeypatch.setattr(W, "_EXTRA", {})
    rc = bench(["--select-stroke-scale", "1,0.9", "--photos", "1", "--styles", "the_kiss", "--data",
                str(tmp_path / "data"), "--write-catalogue"])
    out = capsys.readouterr().out
    assert rc == 0, out
    row = next(l for l in out.splitlines() if l.startswith("klimt_the_kiss"))
    s09, s1, chosen = float(row.split()[1]), float(row.split()[3]), float(row.split()[-1])
    assert chosen == (1.0 if s1 <= min(s09, s1) + 0.005 else 0.9)
    rec = next(m for m in json.loads(cat.read_text())["models"] if m["id"] == W.DEFAULT_FAST_MODEL)
    sel = rec["metadata"]["stroke_scale_selection"]
    from stylekit.training import list_images, split_files

    held_out = {p.name for p in split_files(list_images(data))[1]}
    assert len(sel["photos"]) == 1 and not set(sel["photos"]) & held_out      # a training photo, never a held-out one
    assert "--select-stroke-scale 1,0.9" in sel["command"]
    assert rec["metadata"]["stroke_scales"] == ({} if chosen == 1.0 else {"klimt_the_kiss": 0.9})
    assert set(sel["s_out"]["klimt_the_kiss"]) == {"0.9", "1"}
    with pytest.raises(ParameterError, match="write-catalogue"):
        bench(["--write-catalogue"])


def test_a_partial_bench_leaves_the_docs_contact_sheet_alone(monkeypatch, tmp_path, capsys):
    """``stylekit bench fast --styles ...`` (or ``--weights-file``, ``--model``, ``--stroke-scale``) is an
    experiment: by default it writes no contact sheet, so the docs' sheet of the shipped gallery stays as
    the full run left it; ``--sheet PATH`` still writes one where asked."""
    from stylekit.bench_fast import DOCS_SHEET, main as bench
    from stylekit.images import save_image

    data = tmp_path / "data" / "content"
    data.mkdir(parents=True)
    for i in range(10):
        save_image(synthetic_image(40, 56, seed=i, kind="content"), data / f"p{i:02d}.png")
    monkeypatch.chdir(tmp_path)   # a default sheet path would land under tmp_path
    args = ["--styles", "the_kiss", "--photos", "1", "--gatys-photos", "0", "--repeat", "1", "--data",
            str(tmp_path / "data")]
    assert bench(args) == 0
    assert "contact sheet:" not in capsys.readouterr().out
    assert not (tmp_path / DOCS_SHEET).exists()
    assert bench(args + ["--sheet", "mine.png"]) == 0
    assert "contact sheet: mine.png" in capsys.readouterr().out
    assert (tmp_path / "mine.png").stat().st_size > 0
