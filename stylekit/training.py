"""Shared training loop for stylekit's networks (feed-forward transformer nets, the AdaIN decoder).

A trainer supplies three things and calls :func:`train`:

1. a **model** (``nn.Module``; only its trainable parameters are optimized and checkpointed),
2. **data**: an :class:`ImageFolder` (deterministic 90/10 train/validation split by sorted file name,
   images pre-loaded once) — :class:`CropSampler` draws random crops with scale jitter and flips from it,
3. a **loss closure** ``loss_fn(model, batch, ctx) -> (loss, {name: float})`` where ``batch`` is a
   (B, 3, crop, crop) float tensor in [0, 1] on the device and ``ctx`` a :class:`StepContext` (step,
   device, a ``generator`` to draw any extra randomness from, e.g. the style index of each sample —
   it is checkpointed, so resumed runs draw the same numbers).

Optionally a ``preview_fn(model, val_images) -> (N, 3, H, W)`` renders the rows of the preview grid PNG
written every ``preview_every`` steps.

::

    cfg = TrainConfig(out="runs/x", steps=2000, batch_size=4, crop=192, lr=1e-3)
    data = ImageFolder("photos/", load_size=288)
    result = train(model, loss_fn, data, cfg, preview_fn=preview)

What :func:`train` does: ``--device auto`` (CUDA if present), bf16 autocast where it pays (``amp=None``:
CUDA only; the CLIs' ``--bf16 auto`` also turns it on for CPUs with AVX512-BF16/AMX, ~1.7x there), Adam
with a constant-then-cosine learning-rate schedule, tqdm with step / losses / ETA, a
checkpoint every N minutes (atomic; model + optimizer + step + every RNG state, stored pickle-free as
one ``.safetensors`` file with the non-tensor state as JSON metadata), exact ``resume`` (bit-for-bit on
the same machine / thread count), a ``time_budget`` after which it stops cleanly and saves (so does
SIGTERM, after the current step: ``kill``, ``timeout`` or a job scheduler lose no work), and
DistributedDataParallel when started by ``torchrun`` (gloo on CPU, nccl on CUDA; each rank draws its own
crops; rank 0 alone logs, previews and checkpoints; all ranks' RNG states go into the checkpoint).
"""
from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .atomic import atomic_path
from .errors import ImageError, ParameterError, WeightsError
from .precision import autocast_context, cpu_has_bf16, use_bf16  # noqa: F401 - re-exported for the trainers

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
CHECKPOINT_NAME = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "stylekit-train-checkpoint/1"


# ---- device / threads ------------------------------------------------------------------------------
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA if available (and this process' local rank's GPU under torchrun), else CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        d = torch.device(device)
    except RuntimeError:
        raise ParameterError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError("--device cuda was asked for but no CUDA GPU is available")
    return d


# ---- data ------------------------------------------------------------------------------------------
def list_images(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ParameterError(f"training data folder '{folder}' does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise ParameterError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in '{folder}'")
    return files


def split_files(files: Sequence[Path], val_every: int = 10) -> tuple[list[Path], list[Path]]:
    """Deterministic split by sorted name: every ``val_every``-th file (index 9, 19, ...) is validation."""
    files = sorted(files)
    if len(files) < 2 or val_every <= 1:
        return list(files), []
    val = [f for i, f in enumerate(files) if i % val_every == val_every - 1]
    if not val:  # fewer than val_every files: hold out the last one
        val = [files[-1]]
    vs = set(val)
    return [f for f in files if f not in vs], val


def held_out_sample(folder: str | os.PathLike, n: int) -> list[Path]:
    """``n`` of a folder's held-out validation files (evenly spaced over the 90/10 split's tenth);
    what the benchmarks evaluate on."""
    _, val = split_files(list_images(folder))
    if len(val) <= n:
        return val
    return [val[int((i + 0.5) * len(val) / n)] for i in range(n)]


def center_crops(images: Sequence[torch.Tensor], n: int, size: int) -> torch.Tensor:
    """The first ``n`` uint8 (3, H, W) images, short side resized to ``size`` and center-cropped to a
    (n, 3, size, size) float batch in [0, 1]: deterministic."""
    out = []
    for img in images[:n]:
        x = img.unsqueeze(0).float().div(255)
        h, w = x.shape[-2:]
        s = size / min(h, w)
        x = F.interpolate(x, size=(max(size, round(h * s)), max(size, round(w * s))), mode="bilinear",
                          align_corners=False, antialias=True)
        h, w = x.shape[-2:]
        t, l = (h - size) // 2, (w - size) // 2
        out.append(x[..., t:t + size, l:l + size])
    return torch.cat(out).clamp(0, 1)


def _load_short_side(path: Path, short: int) -> torch.Tensor:
    """uint8 (3, H, W) with the short side resized to ``short`` (never upscaled past it... it is, if smaller)."""
    from PIL import Image

    from .images import open_image

    img = open_image(path).convert("RGB")
    w, h = img.size
    s = short / min(w, h)
    nw, nh = max(short, round(w * s)), max(short, round(h * s))
    img = img.resize((nw, nh), Image.Resampling.LANCZOS if s < 1 else Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


class ImageFolder:
    """The images of a folder, split 90/10 into train/validation and pre-loaded as uint8 tensors.

    Every image is resized so its short side is ``load_size`` (crops are then taken from these).
    Unreadable files are skipped with a warning (and listed in ``skipped``).
    """

    def __init__(self, folder: str | os.PathLike | None = None, load_size: int = 288, val_every: int = 10,
                 files: Sequence[str | os.PathLike] | None = None, max_train: int | None = None) -> None:
        paths = [Path(f) for f in files] if files is not None else list_images(folder)  # type: ignore[arg-type]
        self.folder = str(folder) if folder is not None else None
        self.load_size = int(load_size)
        train_files, val_files = split_files(paths, val_every)
        if max_train is not None:
            train_files = train_files[:max_train]
        self.skipped: list[str] = []
        self.train_files, self.train = self._load(train_files)
        self.val_files, self.val = self._load(val_files)
        if not self.train:
            raise ParameterError(f"no readable training images in '{folder}'")

    def _load(self, files: Sequence[Path]) -> tuple[list[Path], list[torch.Tensor]]:
        ok, imgs = [], []
        for f in files:
            try:
                imgs.append(_load_short_side(f, self.load_size))
                ok.append(f)
            except (ImageError, OSError) as e:
                self.skipped.append(f"{f}: {e}")
                print(f"warning: skipping {f}: {e}", file=sys.stderr)
        return ok, imgs

    def validation_batch(self, n: int, size: int) -> torch.Tensor:
        """The first ``n`` validation images (train images if there are none), center-cropped to ``size``."""
        return center_crops(self.val or self.train, n, size)


class CropSampler:
    """Infinite batches of random crops: scale jitter (crop side = crop * U(scale_min, scale_max), capped
    by the image), resized to ``crop``; horizontal flip with p=0.5. All randomness comes from
    ``self.generator`` (a CPU ``torch.Generator``), whose state is checkpointed."""

    def __init__(self, images: Sequence[torch.Tensor], batch_size: int, crop: int, seed: int = 0,
                 scale: tuple[float, float] = (0.8, 1.4), flip: bool = True) -> None:
        if not images:
            raise ParameterError("no images to sample crops from")
        self.images = images
        self.batch_size = int(batch_size)
        self.crop = int(crop)
        self.scale = scale
        self.flip = flip
        self.generator = torch.Generator().manual_seed(int(seed))

    def _rand(self) -> float:
        return float(torch.rand((), generator=self.generator))

    def sample_one(self) -> torch.Tensor:
        g = self.generator
        img = self.images[int(torch.randint(len(self.images), (), generator=g))]
        h, w = img.shape[-2:]
        lo, hi = self.scale
        side = int(round(self.crop * (lo + (hi - lo) * self._rand())))
        side = max(8, min(side, h, w))
        t = int(torch.randint(h - side + 1, (), generator=g))
        l = int(torch.randint(w - side + 1, (), generator=g))
        x = img[:, t:t + side, l:l + side].unsqueeze(0).float().div_(255)
        if side != self.crop:
            x = F.interpolate(x, size=(self.crop, self.crop), mode="bilinear", align_corners=False,
                              antialias=side > self.crop)
        if self.flip and self._rand() < 0.5:
            x = x.flip(-1)
        return x.clamp_(0, 1)

    def next_batch(self) -> torch.Tensor:
        return torch.cat([self.sample_one() for _ in range(self.batch_size)])

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            yield self.next_batch()


# ---- config / schedule ----------------------------------------------------------------------------
@dataclass
class TrainConfig:
    out: str = "runs/train"
    steps: int = 1000
    batch_size: int = 4
    crop: int = 192
    scale: tuple[float, float] = (0.8, 1.4)
    lr: float = 1e-3
    lr_final: float = 0.1           # final lr = lr * lr_final (cosine decay)
    decay_start: float = 0.3        # fraction of the steps at constant lr before the decay starts
    warmup: int = 0                 # linear warm-up steps
    weight_decay: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    amp: bool | None = None         # None = bf16 autocast on CUDA only (see use_bf16)
    channels_last: bool | None = None  # None = on for a single-process CPU run (see use_channels_last)
    checkpoint_every: float = 5.0   # minutes
    preview_every: int = 200        # steps (0 = off)
    preview_count: int = 4
    preview_size: int = 192
    log_every: int = 10             # steps between plain log lines when stderr is not a terminal
    time_budget: float | None = None  # minutes; stop cleanly (and save) after this
    schedule_minutes: float | None = None  # lr schedule progress = max(step/steps, elapsed/this); not bit-exact on resume
    resume: bool = False
    # {parameter name suffix, or prefix when it ends in ".": factor}, e.g. {".gamma": 10, "ctx.": 10}; the first match wins
    lr_multipliers: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # stored in the checkpoint (command line, styles...)

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.crop < 16:
            raise ParameterError("steps and batch size must be >= 1 and the crop >= 16 px")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ParameterError(f"learning rate must be a positive number, got {self.lr}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ParameterError(f"scale jitter must be 0 < lo <= hi, got {self.scale}")


def lr_at(cfg: TrainConfig, step: int, elapsed_min: float | None = None) -> float:
    """Learning rate for (0-based) ``step``: warm-up, constant, then cosine decay to lr * lr_final.

    With ``cfg.schedule_minutes`` (a wall-clock schedule for time-boxed CPU runs), the progress is the
    larger of step/steps and elapsed/schedule_minutes.
    """
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = step / cfg.steps
    if cfg.schedule_minutes and elapsed_min is not None:
        p = max(p, elapsed_min / cfg.schedule_minutes)
    if p < cfg.decay_start:
        return cfg.lr
    t = min(1.0, (p - cfg.decay_start) / max(1e-9, 1 - cfg.decay_start))
    return cfg.lr * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))


@dataclass
class StepContext:
    step: int
    device: torch.device
    generator: torch.Generator    # CPU generator, checkpointed: draw per-sample randomness from it
    rank: int = 0
    world_size: int = 1


@dataclass
class TrainResult:
    step: int
    seconds: float
    losses: dict[str, float]
    checkpoint: Path | None
    finished: bool               # reached cfg.steps (False: stopped by the time budget / interrupt)


# ---- distributed -----------------------------------------------------------------------------------
def dist_info() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def maybe_init_distributed(device: torch.device) -> bool:
    """Initialise the process group when started by ``torchrun`` (WORLD_SIZE > 1). Returns True if it did."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


# ---- checkpoints (pickle-free) ---------------------------------------------------------------------
def _rng_state(sampler_gen: torch.Generator) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch": torch.get_rng_state(), "loader": sampler_gen.get_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    js = {"numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
          "python": [py_state[0], list(py_state[1]), py_state[2]]}
    return tensors, js


def _set_rng_state(tensors: Mapping[str, torch.Tensor], js: Mapping[str, Any], sampler_gen: torch.Generator) -> None:
    torch.set_rng_state(tensors["torch"].to(torch.uint8))
    sampler_gen.set_state(tensors["loader"].to(torch.uint8))
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"].to(torch.uint8))
    n = js["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = js["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def _optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_flat(opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], js: Mapping[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for pid, sc in js.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(sc)
    opt.load_state_dict({"state": state, "param_groups": js["param_groups"]})


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model, nn.parallel.DistributedDataParallel) else model


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None, step: int,
                    rng: Sequence[tuple[dict[str, torch.Tensor], dict[str, Any]]] = (),
                    meta: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> Path:
    """Write model + optimizer + step + RNG states (one entry per rank) atomically, without pickle.

    Tensors go into a ``.safetensors`` file; everything else is JSON in its metadata header.
    """
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for k, v in unwrap(model).state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    js: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "step": int(step), "meta": dict(meta or {}),
                          "extra": dict(extra or {}), "rng": []}
    if optimizer is not None:
        ot, oj = _optimizer_to_flat(optimizer)
        tensors.update(ot)
        js["optimizer"] = oj
    for r, (rt, rj) in enumerate(rng):
        for k, v in rt.items():
            tensors[f"rng.{r}.{k}"] = v.detach().cpu().contiguous()
        js["rng"].append(rj)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"stylekit": json.dumps(js)})
    return Path(path)


@dataclass
class Checkpoint:
    step: int
    model: dict[str, torch.Tensor]
    optimizer_tensors: dict[str, torch.Tensor]
    optimizer_json: dict[str, Any] | None
    rng_tensors: list[dict[str, torch.Tensor]]
    rng_json: list[dict[str, Any]]
    meta: dict[str, Any]
    extra: dict[str, Any]


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; anything else -> :class:`WeightsError`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for corrupt files
        raise WeightsError(f"'{path}' is not a readable checkpoint (corrupt or truncated?): "
                           f"{type(e).__name__}: {str(e)[:160]}") from None
    try:
        js = json.loads(header["stylekit"])
        assert js.get("format") == CHECKPOINT_FORMAT
    except Exception:  # noqa: BLE001
        raise WeightsError(f"'{path}' is a safetensors file but not a stylekit training checkpoint") from None
    model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    opt = {k: v for k, v in tensors.items() if k.startswith("optim.")}
    n = len(js.get("rng", []))
    rng_t = [{k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"rng.{r}.")} for r in range(n)]
    return Checkpoint(int(js["step"]), model, opt, js.get("optimizer"), rng_t, js.get("rng", []),
                      js.get("meta", {}), js.get("extra", {}))


def load_model_state(model: nn.Module, state: Mapping[str, torch.Tensor], where: str = "checkpoint") -> None:
    """``load_state_dict`` with a readable :class:`WeightsError` when the architecture does not match."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensors missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if bad:
            k = bad[0]
            parts.append(f"{len(bad)} with other shapes (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})")
        raise WeightsError(f"{where} does not match this model's architecture: " + "; ".join(parts))
    model.load_state_dict({k: state[k].to(own[k].dtype) for k in own}, strict=True)


# ---- previews --------------------------------------------------------------------------------------
def save_grid(rows: torch.Tensor | Sequence[torch.Tensor], path: str | os.PathLike, ncol: int | None = None,
              pad: int = 2) -> Path:
    """Save images (N, 3, H, W) (all the same size) as one grid PNG, ``ncol`` per row."""
    from .images import save_image

    x = torch.cat(list(rows)) if not torch.is_tensor(rows) else rows
    x = x.detach().float().cpu().clamp(0, 1)
    n, _, h, w = x.shape
    ncol = ncol or n
    nrow = math.ceil(n / ncol)
    grid = torch.ones(1, 3, nrow * (h + pad) + pad, ncol * (w + pad) + pad)
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[0, :, pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = x[i]
    return save_image(grid, path)


# ---- the loop --------------------------------------------------------------------------------------
LossFn = Callable[[nn.Module, torch.Tensor, StepContext], "tuple[torch.Tensor, dict[str, float]]"]
PreviewFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def _fmt_time(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def expected_last_step(step: int, steps: int, done: int, elapsed: float, budget_s: float | None) -> int:
    """The step a run will stop at: ``steps``, or earlier where the time budget ends first (at the rate of
    the ``done`` steps of this process's ``elapsed`` seconds). The progress bar and the log's ETA use it,
    so a run given ``--steps 100000 --time-budget 60`` shows the hour it has, not the 80 it would need."""
    if budget_s is None or done <= 0 or elapsed <= 0:
        return steps
    return min(steps, step + int(max(0.0, budget_s - elapsed) * done / elapsed))


class _StopOnSigterm:
    """While active (main thread only), SIGTERM sets ``requested`` instead of killing the process, so a
    scheduler's or ``kill``'s stop ends the training loop after the current step, with a checkpoint."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> "_StopOnSigterm":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            import signal

            signal.signal(signal.SIGTERM, self._old)


def use_channels_last(device: torch.device) -> bool:
    """Whether a training run keeps its 4-D tensors channels-last (NHWC): on the CPU in a single process.

    oneDNN's convolutions run in that layout; with NCHW tensors every convolution converts its input and
    output, and those copies cost more than the convolutions themselves. On the 2-vCPU Xeon (AMX, bf16
    autocast) a train-fast step of 4 crops of 256 px took about 0.6x the time (docs/training.md, session 28).
    DDP processes keep the default layout (their gradient buckets assume it)."""
    return device.type == "cpu" and dist_info()[1] == 1 and os.environ.get("WORLD_SIZE", "1") == "1"


def train(model: nn.Module, loss_fn: LossFn, data: ImageFolder | CropSampler, cfg: TrainConfig,
          preview_fn: PreviewFn | None = None, preview_ncol: int | None = None,
          cancel: Callable[[], bool] | None = None, progress: bool = True) -> TrainResult:
    """Train ``model`` with ``loss_fn`` on random crops of ``data`` (see the module docstring)."""
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = resolve_device(cfg.device)
    started_dist = maybe_init_distributed(device)
    try:
        return _train(model, loss_fn, data, cfg, device, started_dist, preview_fn, preview_ncol, cancel, progress)
    except BaseException:
        # a run that ends by an exception (TrainingStalled, Ctrl-C, an error) still tears its process group
        # down: a process that exits with gloo's threads alive aborts ("terminate called without an active
        # exception", SIGABRT). No barrier here: another rank may never reach one.
        if started_dist:
            import torch.distributed as dist

            dist.destroy_process_group()
        raise


def _train(model: nn.Module, loss_fn: LossFn, data: ImageFolder | CropSampler, cfg: TrainConfig,
           device: torch.device, started_dist: bool, preview_fn: PreviewFn | None, preview_ncol: int | None,
           cancel: Callable[[], bool] | None, progress: bool) -> TrainResult:
    """The body of :func:`train`, with the device chosen and the process group (if any) started."""
    rank, world = dist_info()
    is_main = rank == 0
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT_NAME
    if is_main:
        out.mkdir(parents=True, exist_ok=True)

    # seeds: everything derives from cfg.seed (+ rank for the crop stream)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    if isinstance(data, CropSampler):
        sampler, folder = data, None
    else:
        folder = data
        sampler = CropSampler(data.train, cfg.batch_size, cfg.crop, seed=cfg.seed * 1000 + rank, scale=cfg.scale)
    if device.type == "cuda":
        # fixed crop sizes: let cuDNN pick its fastest convolution algorithms once per shape; the fp32 parts
        # (Gram matrices, losses) may use TF32 tensor cores. Training only; the CPU path is unchanged.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = model.to(device)
    cl = use_channels_last(device) if cfg.channels_last is None else bool(cfg.channels_last)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    groups: dict[float, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            mult = next((m for k, m in cfg.lr_multipliers.items()
                         if (name.startswith(k) if k.endswith(".") else name.endswith(k))), 1.0)
            groups.setdefault(float(mult), []).append(p)
    opt = torch.optim.Adam([{"params": ps, "lr_mult": m} for m, ps in groups.items()], lr=cfg.lr,
                           weight_decay=cfg.weight_decay)
    step, prev_seconds, meta = 0, 0.0, dict(cfg.meta)
    if cfg.resume and ckpt_path.exists():
        ck = read_checkpoint(ckpt_path)
        load_model_state(model, ck.model, f"checkpoint '{ckpt_path}'")
        if ck.optimizer_json is not None:
            _optimizer_from_flat(opt, ck.optimizer_tensors, ck.optimizer_json)
        if len(ck.rng_tensors) != world:
            raise ParameterError(f"checkpoint was written by {len(ck.rng_tensors)} process(es); resume it with "
                                 f"the same number (this run has {world})")
        _set_rng_state(ck.rng_tensors[rank], ck.rng_json[rank], sampler.generator)
        step = ck.step
        prev_seconds = float(ck.extra.get("seconds", 0.0))
        first = ck.meta.get("command")
        if first and meta.get("command") and first != meta["command"]:
            # the record keeps the run's first command line and lists the ones that continued it
            meta.update(command=first, resumed_with=[*ck.meta.get("resumed_with", []), meta["command"]])
        if is_main:
            print(f"resumed from {ckpt_path} at step {step}", file=sys.stderr)
    elif cfg.resume and is_main:
        print(f"--resume: no checkpoint in {out}, starting fresh", file=sys.stderr)

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    val = folder.validation_batch(cfg.preview_count, cfg.preview_size) if folder is not None and cfg.preview_every else None

    def gather_rng():
        mine = _rng_state(sampler.generator)
        if world == 1:
            return [mine]
        import torch.distributed as dist

        allr: list[Any] = [None] * world
        dist.all_gather_object(allr, (({k: v.numpy().tolist() for k, v in mine[0].items()}), mine[1]))
        return [({k: torch.tensor(v, dtype=torch.uint8) for k, v in t.items()}, j) for t, j in allr]

    def checkpoint(stepnow: int, losses: Mapping[str, float]) -> Path | None:
        states = gather_rng()  # collective: every rank must call it
        if not is_main:
            return None
        return save_checkpoint(ckpt_path, model, opt, stepnow, states, meta,
                               {"losses": dict(losses), "seconds": time.time() - t0 + prev_seconds,
                                "world_size": world, "config": _config_json(cfg)})

    def preview(stepnow: int) -> None:
        if not is_main or val is None or preview_fn is None:
            return
        model.eval()
        with torch.no_grad(), autocast_context(device, cfg.amp):
            img = preview_fn(model, val.to(device)).float()
        model.train()
        save_grid(img, out / f"preview_{stepnow:06d}.png", ncol=preview_ncol or len(val))
        save_grid(img, out / "preview_latest.png", ncol=preview_ncol or len(val))

    t0 = time.time()
    last_ckpt = time.time()
    losses: dict[str, float] = {}
    tty = sys.stderr.isatty()
    bar = None
    if is_main and progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="train", dynamic_ncols=True, mininterval=1 if tty else 60,
                   file=sys.stderr)
    budget_s = cfg.time_budget * 60 if cfg.time_budget is not None else None
    model.train()
    finished = step >= cfg.steps
    with _StopOnSigterm() as term:
        try:
            while step < cfg.steps:
                if cancel is not None and cancel():
                    break
                if budget_s is not None and time.time() - t0 > budget_s:
                    if is_main:
                        print(f"time budget of {cfg.time_budget} min reached at step {step}; saving",
                              file=sys.stderr)
                    break
                cur_lr = lr_at(cfg, step, (time.time() - t0) / 60 + prev_seconds / 60)
                for g in opt.param_groups:
                    g["lr"] = cur_lr * g.get("lr_mult", 1.0)
                batch = sampler.next_batch().to(device, non_blocking=True)
                if cl:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                ctx = StepContext(step, device, sampler.generator, rank, world)
                with autocast_context(device, cfg.amp):
                    loss, parts = loss_fn(net, batch, ctx)
                if not torch.isfinite(loss):
                    raise ParameterError(f"loss became {float(loss)} at step {step}; lower the learning rate")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                step += 1
                losses = {"loss": float(loss.detach()), **{k: float(v) for k, v in parts.items()}}
                if bar is not None:
                    el = time.time() - t0
                    done = step - bar.initial
                    bar.total = expected_last_step(step, cfg.steps, done, el, budget_s)
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()} | {"lr": f"{cur_lr:.2g}"},
                                    refresh=False)
                    if not tty and (step % cfg.log_every == 0 or step == cfg.steps):
                        eta = el / max(1, done) * (bar.total - step)
                        bar.write(f"step {step}/{cfg.steps} " + " ".join(f"{k}={v:.4g}" for k, v in losses.items())
                                  + f" lr={cur_lr:.2g} elapsed={_fmt_time(el)} eta={_fmt_time(eta)}",
                                  file=sys.stderr)
                if cfg.preview_every and step % cfg.preview_every == 0:
                    preview(step)
                # all ranks must agree on when to checkpoint or stop: decide on rank 0, broadcast
                due = time.time() - last_ckpt > cfg.checkpoint_every * 60
                stop = term.requested
                if world > 1:
                    import torch.distributed as dist

                    flag = torch.tensor([int(due), int(stop)], device=device)
                    dist.broadcast(flag, 0)
                    due, stop = bool(flag[0].item()), bool(flag[1].item())
                if due:
                    checkpoint(step, losses)
                    last_ckpt = time.time()
                if stop:
                    if is_main:
                        print(f"SIGTERM: stopping at step {step}; saving", file=sys.stderr)
                    break
            finished = step >= cfg.steps
        except KeyboardInterrupt:
            if is_main:
                print(f"interrupted at step {step}; saving checkpoint", file=sys.stderr)
            checkpoint(step, losses)
            raise
        finally:
            if bar is not None:
                bar.close()
    path = checkpoint(step, losses)
    if finished and cfg.preview_every and step % cfg.preview_every != 0:
        preview(step)
    if started_dist:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(step, time.time() - t0 + prev_seconds, losses, path, finished)


def _config_json(cfg: TrainConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d.pop("meta", None)
    return json.loads(json.dumps(d, default=str))
