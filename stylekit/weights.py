"""The catalogue of shipped models: what the CLI, the ONNX export and the demo read.

Shipped weights live in ``stylekit/models/`` and are listed in ``stylekit/models/catalogue.json``::

    {"models": [{"id": "fast_gallery", "kind": "fast", "path": "fast_gallery.safetensors",
                 "sha256": "...", "metadata": {"styles": [...], "style_images": ["styles/x.jpg", ...], ...}}]}

Each entry is a :class:`ModelRecord` (``kind`` ``"fast"`` for feed-forward networks, ``"adain_decoder"``
for the AdaIN decoder, ...). Paths are relative to ``stylekit/models/``. A record's file is verified
against its sha256 before it is used; a missing, corrupt, truncated or wrong-architecture file raises
:class:`~stylekit.errors.WeightsError` with a message that names the file.

Feed-forward weight files are fp16 ``.safetensors`` whose metadata key ``"stylekit"`` holds JSON:
style names, style image paths, the architecture (:attr:`TransformerNet.config`), the training command
line, data, steps, time, machine and the final metrics. The style images are committed beside them in
``stylekit/models/styles/`` with their licenses (``LICENSES.tsv`` / ``LICENSES.md``).

Styles are named by their file stem (``vangogh_starry_night``); a short name without the artist
prefix (``starry_night``) or any unique part of a name works too.

A style may also have its **own network**: a one-style ``fast`` record with ``"specialist": true``
(``fast_vangogh_starry_night``, the gallery fine-tuned on that style alone). A style run alone uses it,
a blend uses the gallery: :func:`fast_model_for` picks the model, :func:`solo_style` the entry.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from .errors import ParameterError, WeightsError

MODELS_DIR = Path(__file__).resolve().parent / "models"
CATALOGUE_FILE = MODELS_DIR / "catalogue.json"
DEFAULT_FAST_MODEL = "fast_gallery"
METADATA_KEY = "stylekit"


@dataclass
class ModelRecord:
    id: str
    path: Path                      # absolute
    sha256: str
    kind: str                       # "fast", "adain_decoder", ...
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def specialist(self) -> bool:
        """A one-style network trained for one gallery style alone (``"specialist": true`` in its
        metadata): it serves that style when the style runs alone; blends run on the gallery."""
        return bool(self.metadata.get("specialist"))

    def to_json(self, base: Path | None = None) -> dict[str, Any]:
        try:
            p = str(self.path.relative_to(base or MODELS_DIR))
        except ValueError:
            p = str(self.path)
        return {"id": self.id, "kind": self.kind, "path": p, "sha256": self.sha256, "metadata": self.metadata}


@dataclass
class StyleEntry:
    name: str
    image: Path          # the style image (also the thumbnail)
    model: str           # id of the model holding this style
    index: int           # index of the style in that model's weight vector
    license: str | None = None
    stroke_scale: float = 1.0   # the stroke scale this style is run at by default (the model's "stroke_scales")
    specialist: str | None = None  # id of the style's own one-style network (used when it runs alone), if any

    @property
    def short_name(self) -> str:
        return short_name(self.name)


_EXTRA: dict[str, ModelRecord] = {}
_LOCK = threading.Lock()


def short_name(name: str) -> str:
    """``vangogh_starry_night`` -> ``starry_night`` (the name without its first ``_`` part)."""
    return name.split("_", 1)[1] if "_" in name else name


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- the registry ------------------------------------------------------------------------------
def _read_catalogue(path: Path | None = None) -> list[ModelRecord]:
    path = path or CATALOGUE_FILE
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        return [ModelRecord(m["id"], (path.parent / m["path"]).resolve(), m["sha256"], m["kind"],
                            dict(m.get("metadata", {}))) for m in data.get("models", [])]
    except (ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"model catalogue '{path}' is corrupt: {e}") from None


def records(kind: str | None = None) -> list[ModelRecord]:
    """All catalogued models (the shipped catalogue file, then runtime registrations), optionally of one kind."""
    recs = {r.id: r for r in _read_catalogue()}
    with _LOCK:
        recs.update(_EXTRA)
    return [r for r in recs.values() if kind is None or r.kind == kind]


def get_record(model_id: str | None = None, kind: str | None = None) -> ModelRecord:
    """A model by id (default: the default model of ``kind``)."""
    recs = records(kind)
    if model_id is None:
        if kind == "fast":
            for r in recs:
                if r.id == DEFAULT_FAST_MODEL:
                    return r
        if recs:
            return recs[0]
        raise WeightsError(f"no {kind or ''} model in the catalogue ({CATALOGUE_FILE})".replace("  ", " "))
    for r in recs:
        if r.id == model_id:
            return r
    raise WeightsError(f"unknown model {model_id!r}; the catalogue has {[r.id for r in recs] or 'none'}")


def shipped_record(model_id: str, kind: str, path: str | os.PathLike, info: Mapping[str, Any],
                   summary_keys: Sequence[str], **summary: Any) -> ModelRecord:
    """The catalogue record of a weight file: its sha256, and the keys ``summary_keys`` of its training
    record ``info`` (those that are set) plus ``summary`` as the catalogue's metadata."""
    out = Path(path).resolve()
    meta = {k: info[k] for k in summary_keys if info.get(k) not in (None, {}, [], "")} | summary
    return ModelRecord(model_id, out, sha256_file(out), kind, meta)


def register_model(record: ModelRecord, persist: bool = False) -> ModelRecord:
    """Add a model at run time; ``persist=True`` also writes it into ``catalogue.json`` (atomically)."""
    record.path = Path(record.path).resolve()
    with _LOCK:
        _EXTRA[record.id] = record
    if persist:
        from .atomic import atomic_write_bytes

        recs = {r.id: r for r in _read_catalogue()}
        recs[record.id] = record
        data = {"models": [r.to_json() for r in recs.values()]}
        atomic_write_bytes(CATALOGUE_FILE, (json.dumps(data, indent=2) + "\n").encode())
        os.chmod(CATALOGUE_FILE, 0o644)
    return record


def verify(record: ModelRecord) -> Path:
    """Check the record's file exists and has its sha256; returns the path."""
    p = record.path
    if not p.is_file():
        raise WeightsError(f"weights file of model '{record.id}' is missing: {p}")
    got = sha256_file(p)
    if got != record.sha256:
        raise WeightsError(f"weights file of model '{record.id}' is corrupt or was replaced: {p} has sha256 "
                           f"{got[:12]}..., the catalogue expects {record.sha256[:12]}...")
    return p


# ---- styles ------------------------------------------------------------------------------------
def _licenses() -> dict[str, str]:
    p = MODELS_DIR / "styles" / "LICENSES.tsv"
    out: dict[str, str] = {}
    if p.exists():
        for line in p.read_text().splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) >= 2:
                out[Path(parts[0]).stem] = "\t".join(parts[1:])
    return out


def list_styles(model_id: str | None = None) -> list[StyleEntry]:
    """The styles of the feed-forward models in the catalogue (or of one model).

    Without ``model_id``: the gallery's styles (every non-specialist model's), each with the id of its
    own one-style network in :attr:`StyleEntry.specialist` where the catalogue has one, then any
    specialist whose style no gallery holds. A style is listed once.
    """
    lic = _licenses()
    recs = records("fast")
    own: dict[str, str] = {}
    for r in recs:
        if r.specialist:
            names = r.metadata.get("styles", [])
            if len(names) != 1:
                raise WeightsError(f"catalogue: specialist model {r.id!r} must hold exactly one style, "
                                   f"it names {len(names)}")
            own.setdefault(names[0], r.id)
    out: list[StyleEntry] = []
    for r in sorted(recs, key=lambda r: r.specialist):  # galleries first
        if model_id is not None and r.id != model_id:
            continue
        names = r.metadata.get("styles", [])
        if model_id is None and r.specialist and any(e.name == names[0] for e in out):
            continue
        images = r.metadata.get("style_images", [])
        scales = r.metadata.get("stroke_scales", {})
        for i, n in enumerate(names):
            img = (MODELS_DIR / images[i]).resolve() if i < len(images) else MODELS_DIR / "styles" / f"{n}.jpg"
            out.append(StyleEntry(n, img, r.id, i, lic.get(n), _stroke_scale(scales.get(n, 1.0), r.id, n),
                                  None if r.specialist else own.get(n)))
    return out


def solo_style(name: str | StyleEntry) -> StyleEntry:
    """The entry a style runs at *alone*: its own one-style network's where the catalogue has one
    (model, index 0, its stroke scale), else the gallery's."""
    e = name if isinstance(name, StyleEntry) else find_style(name)
    if e.specialist:
        return list_styles(e.specialist)[0]
    return e


def fast_model_for(spec: str | Mapping[str, float] | StyleEntry,
                   model_id: str | None = None) -> tuple[str, torch.Tensor]:
    """``(model id, weight vector)`` that a style request runs on.

    A style alone (one name, or a blend whose other weights are 0) runs on its own one-style network
    where the catalogue has one (``vector = [1.]``); a blend runs on the gallery (:func:`style_vector`).
    An explicit ``model_id`` is used as given.
    """
    mid, vec = style_vector(spec, model_id, with_model=True)
    if model_id is None:
        nonzero = torch.nonzero(vec).flatten().tolist()
        if len(nonzero) == 1:
            entry = next((e for e in list_styles(mid) if e.index == nonzero[0]), None)
            if entry is not None and entry.specialist:
                return entry.specialist, torch.ones(1)
    return mid, vec


def _stroke_scale(value: Any, model_id: str, name: str) -> float:
    from .feedforward import STROKE_SCALE_RANGE

    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not STROKE_SCALE_RANGE[0] <= v <= STROKE_SCALE_RANGE[1]:
        raise WeightsError(f"catalogue: model {model_id!r} gives style {name!r} the stroke scale {value!r}; "
                           f"it must be a number in {STROKE_SCALE_RANGE[0]:g}..{STROKE_SCALE_RANGE[1]:g}")
    return v


def default_stroke_scale(spec: str | Mapping[str, float] | StyleEntry, model_id: str | None = None) -> float:
    """The stroke scale a style (or a blend: the blend-weighted mean of its styles') is run at by default.

    Each style of each model has one (the model's ``stroke_scales`` metadata, 1 where it gives none), chosen
    on training photos by ``stylekit bench fast --select-stroke-scale`` (docs/feedforward.md). Without
    ``model_id``, a style alone takes its own network's value (:func:`fast_model_for`).
    """
    mid, vec = fast_model_for(spec, model_id)
    scales = {s.index: s.stroke_scale for s in list_styles(mid)}
    return round(sum(float(w) * scales.get(i, 1.0) for i, w in enumerate(vec.tolist())), 3)


def find_style(name: str, model_id: str | None = None) -> StyleEntry:
    """Resolve a style name: exact, short name (without the artist prefix), or a unique part of a name."""
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(f"style name must be a non-empty string, got {name!r}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = key[:-4] if key.endswith((".jpg", ".png")) else key
    styles = list_styles(model_id)
    if not styles:
        raise WeightsError("no feed-forward styles are installed (stylekit/models/catalogue.json is empty)")
    for test in (lambda s: s.name == key, lambda s: s.short_name == key, lambda s: key in s.name):
        hits = [s for s in styles if test(s)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ParameterError(f"style {name!r} is ambiguous: {', '.join(s.name for s in hits)}")
    raise ParameterError(f"unknown style {name!r}; available: {', '.join(s.name for s in styles)}")


def style_vector(spec: str | Mapping[str, float] | StyleEntry, model_id: str | None = None,
                 with_model: bool = False) -> torch.Tensor | tuple[str, torch.Tensor]:
    """Weight vector (S,) over a model's styles (sums to 1) from a name or a ``{name: weight}`` blend.

    All styles of a blend must belong to the same model. ``with_model=True`` returns ``(model_id, vector)``.
    Unknown names, NaN/inf/negative weights or all-zero blends raise :class:`ParameterError`.
    """
    if isinstance(spec, StyleEntry):
        spec = {spec.name: 1.0}
    elif isinstance(spec, str):
        spec = {spec: 1.0}
    elif not isinstance(spec, Mapping) or not spec:
        raise ParameterError(f"style must be a name or a non-empty {{name: weight}} mapping, got {spec!r}")
    entries: list[tuple[StyleEntry, float]] = []
    for k, v in spec.items():
        try:
            w = float(v)
        except (TypeError, ValueError):
            raise ParameterError(f"weight of style {k!r} must be a number, got {v!r}") from None
        if not math.isfinite(w) or w < 0:
            raise ParameterError(f"weight of style {k!r} must be finite and >= 0, got {v!r}")
        entries.append((find_style(k, model_id), w))
    models = {e.model for e, _ in entries}
    if len(models) > 1:
        raise ParameterError(f"styles from different models cannot be blended: {sorted(models)}")
    total = sum(w for _, w in entries)
    if total <= 0:
        raise ParameterError("style weights are all zero; give at least one positive weight")
    mid = models.pop()
    n = len(get_record(mid, "fast").metadata.get("styles", []))
    vec = torch.zeros(n)
    for e, w in entries:
        vec[e.index] += w / total
    return (mid, vec) if with_model else vec


# ---- feed-forward weight files --------------------------------------------------------------------
def read_weights_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, stylekit metadata) of a ``.safetensors`` weight file; unreadable -> WeightsError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - corrupt/truncated headers raise various types
        raise WeightsError(f"'{path}' is not a readable .safetensors weights file (corrupt or truncated?): "
                           f"{type(e).__name__}: {str(e)[:160]}") from None
    try:
        info = json.loads(meta.get(METADATA_KEY, "{}"))
    except ValueError:
        raise WeightsError(f"'{path}' has unreadable stylekit metadata") from None
    return state, info


def training_record(path: str | os.PathLike | None) -> dict[str, Any]:
    """The training record (command, steps, time, machine, losses, and its own ``init_meta``) of the
    weights a run starts from (``--init``), so a fine-tuned model keeps its whole history."""
    if not path:
        return {}
    _, info = read_weights_file(path)
    if "meta" in info:
        info = info["meta"]
    return {k: info.get(k) for k in ("command", "steps", "seconds", "machine", "final_losses", "val_losses",
                                      "init_meta", "rounds", "resumed_with") if info.get(k) is not None}


def training_rounds(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every training run behind a model, newest first: the command, steps, seconds and machine of the run
    that ``record`` describes (a checkpoint's training record with its ``steps`` and ``seconds``) and of
    each ``--init`` it started from (its ``init_meta``, recursively). A shipped file's own ``rounds``
    already hold its whole lineage, so the walk stops there: a network continued from a shipped file
    keeps the rounds before it."""
    out: list[dict[str, Any]] = []
    m: Any = record
    while isinstance(m, Mapping) and m.get("command"):
        if m is not record and isinstance(m.get("rounds"), list) and m["rounds"]:
            out.extend(dict(r) for r in m["rounds"])
            break
        out.append({k: m.get(k) for k in ("command", "steps", "seconds", "machine")}
                   | ({"resumed_with": list(m["resumed_with"])} if m.get("resumed_with") else {}))
        m = m.get("init_meta")
    return out


def _current_init_record(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``--init`` record, re-read from the init file where that file still holds the same
    run's record (same command and steps) and has since gained its lineage (``rounds`` written into a
    shipped file after the run started), so a continued network keeps every round before it."""
    rec, init = dict(meta.get("init_meta") or {}), meta.get("init")
    if init:
        path = Path(init) if Path(init).is_file() else MODELS_DIR.parents[1] / init
        try:
            now = training_record(path) if path.is_file() else {}
        except WeightsError:
            now = {}
        if now.get("rounds") and (now.get("command"), now.get("steps")) == (rec.get("command"), rec.get("steps")):
            return now
    return rec


def lineage(rounds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A record's lineage fields: ``rounds`` with ``total_steps`` and ``total_seconds``, or nothing for a
    model of one round (its own ``steps`` and ``seconds`` say it all)."""
    if len(rounds) < 2:
        return {}
    return {"rounds": [dict(r) for r in rounds], "total_steps": sum(int(r.get("steps") or 0) for r in rounds),
            "total_seconds": round(sum(float(r.get("seconds") or 0.0) for r in rounds), 1)}


def fast_model_from_file(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Build a :class:`~stylekit.feedforward.TransformerNet` from a weights file (fp32, eval mode).

    Accepts shipped fp16 files and training checkpoints (``stylekit train-fast`` output).
    """
    from .feedforward import ARCH, TransformerNet
    from .training import load_model_state

    path = Path(path)
    state, info = read_weights_file(path)
    if "format" in info and "meta" in info:  # a training checkpoint
        info = dict(info["meta"])
        state = {k[6:]: v for k, v in state.items() if k.startswith("model.")}
    cfg = info.get("config")
    if not isinstance(cfg, dict) or cfg.get("arch") != ARCH:
        raise WeightsError(f"'{path}' is not a stylekit feed-forward network (architecture "
                           f"{cfg.get('arch') if isinstance(cfg, dict) else 'unknown'}, expected {ARCH})")
    try:
        net = TransformerNet.from_config(cfg)
    except (KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"'{path}' has an invalid architecture description: {e}") from None
    load_model_state(net, state, f"'{path}'")
    for k, v in net.state_dict().items():
        if not torch.isfinite(v).all():
            raise WeightsError(f"'{path}' holds non-finite values in {k}")
    net.style_names = list(info.get("styles", []))  # type: ignore[attr-defined]
    net.metadata = info  # type: ignore[attr-defined]
    return net.float().eval().to(device)


_MODEL_CACHE: dict[tuple, torch.nn.Module] = {}


def _cached_model(rec: ModelRecord, device: str | torch.device, verify_sha: bool, build) -> torch.nn.Module:
    """The model of catalogue record ``rec`` on ``device``, built once by ``build(path)`` (after the
    sha256 check) and cached per (kind, id, path, sha256, device)."""
    key = (rec.kind, rec.id, str(rec.path), rec.sha256, str(device))
    with _LOCK:
        model = _MODEL_CACHE.get(key)
    if model is not None:
        return model
    if verify_sha:
        verify(rec)
    model = build(rec.path)
    model.model_id = rec.id  # type: ignore[attr-defined]
    with _LOCK:
        _MODEL_CACHE[key] = model
    return model


def load_fast_model(model_id: str | None = None, device: str | torch.device = "cpu", verify_sha: bool = True):
    """The catalogue's feed-forward network (default ``fast_gallery``), sha256-verified, cached, eval mode."""
    return _cached_model(get_record(model_id, "fast"), device, verify_sha,
                         lambda path: fast_model_from_file(path, device))


#: the keys of a feed-forward file's metadata that its catalogue record repeats
SHIPPED_SUMMARY_KEYS = ("styles", "style_images", "specialist", "config", "command", "steps", "seconds", "machine",
                        "final_losses", "metrics", "init", "note", "stroke_scales", "stroke_scale_selection",
                        "rounds", "total_steps", "total_seconds")


def package_fast_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, model_id: str = DEFAULT_FAST_MODEL,
                            style_images: list[str] | None = None, extra: Mapping[str, Any] | None = None,
                            register: bool = True) -> ModelRecord:
    """Convert a ``train-fast`` checkpoint into a shipped fp16 ``.safetensors`` file (+ catalogue record).

    ``style_images``: paths relative to ``stylekit/models/`` (default ``styles/<name>.jpg``); ``extra``
    is merged into the metadata (final metrics, ...).
    """
    from .training import read_checkpoint

    ck = read_checkpoint(checkpoint)
    meta = dict(ck.meta)
    if meta.get("kind") != "fast":
        raise WeightsError(f"'{checkpoint}' is not a feed-forward training checkpoint")
    fast_model_from_file(checkpoint)  # validates the architecture
    names = list(meta["styles"])
    info = {"kind": "fast", "id": model_id, "styles": names,
            "style_images": style_images or [f"styles/{n}.jpg" for n in names],
            "style_sources": meta.get("style_images"), "config": meta["config"],
            "command": meta.get("command"), **({"resumed_with": meta["resumed_with"]} if meta.get("resumed_with") else {}),
            "data": meta.get("data"), "train_images": meta.get("train_images"), "val_images": meta.get("val_images"),
            "val_files": meta.get("val_files"), "loss": meta.get("loss"),
            "steps": ck.step, "seconds": round(float(ck.extra.get("seconds", 0.0)), 1),
            "final_losses": ck.extra.get("losses"), "machine": meta.get("machine"),
            "train_config": ck.extra.get("config"), "dtype": "float16"}
    # the training lineage: this run and every --init run before it (steps and seconds per round, and summed)
    info |= lineage(training_rounds({**meta, "init_meta": _current_init_record(meta), "steps": info["steps"],
                                     "seconds": info["seconds"]}))
    if meta.get("init_styles"):  # train-fast --init-style: which styles started from which
        info["init_styles"] = meta["init_styles"]
    if meta.get("train_styles"):  # train-fast --train-styles: only these styles' rows were trained
        info["train_styles"] = meta["train_styles"]
    info.update(extra or {})
    return write_fast_file(ck.model, info, out, model_id, register)


def write_fast_file(state: Mapping[str, torch.Tensor], info: Mapping[str, Any], out: str | os.PathLike,
                    model_id: str, register: bool = True) -> ModelRecord:
    """Write a feed-forward network as a shipped fp16 ``.safetensors`` file with ``info`` as its stylekit
    metadata, and its catalogue record (registered; persisted when ``out`` is in ``stylekit/models/``)."""
    from safetensors.torch import save_file

    from .atomic import atomic_path

    out = Path(out)
    with atomic_path(out) as tmp:
        save_file({k: v.half().contiguous() for k, v in state.items()}, str(tmp),
                  metadata={METADATA_KEY: json.dumps(dict(info))})
    os.chmod(out, 0o644)
    rec = shipped_record(model_id, "fast", out, info, SHIPPED_SUMMARY_KEYS)
    if register:
        register_model(rec, persist=out.resolve().parent == MODELS_DIR)
    return rec


# ---- AdaIN decoder ------------------------------------------------------------------------------
def load_adain_model(model_id: str | None = None, device: str | torch.device = "cpu", verify_sha: bool = True):
    """The catalogue's AdaIN model (VGG-19 encoder + shipped ``adain_decoder``), sha256-verified, cached.

    A missing, corrupt or wrong-architecture decoder file raises :class:`WeightsError`.
    """
    from .adain import ADAIN_KIND, AdaINModel, load_decoder

    return _cached_model(get_record(model_id, ADAIN_KIND), device, verify_sha,
                         lambda path: AdaINModel(load_decoder(path), device=device))
