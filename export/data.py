"""Where verification, calibration and benchmarks find real photos.

Order: ``$STYLEKIT_DATA/content`` (or ``../shared/data/content`` next to the repository) held-out
validation photos, split the way the trainers split them; then the demo's example photos
(``demo/examples/``, committed in the repository).
"""
from __future__ import annotations

import os
from pathlib import Path

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")
REPO = Path(__file__).resolve().parent.parent


def _data_roots() -> list[Path]:
    roots = []
    env = os.environ.get("STYLEKIT_DATA")
    if env:
        roots.append(Path(env))
    roots += [REPO.parent / "shared" / "data", REPO / "data"]
    return roots


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS) if folder.is_dir() else []


def _val_split(folder: Path) -> list[Path]:
    try:
        from stylekit.training import split_files  # the trainers' held-out split

        return list(split_files(folder, "val"))
    except Exception:  # noqa: BLE001  (module not there yet, or another signature)
        files = _images(folder)
        return files[::10]  # every 10th photo: a deterministic 10 % split


def validation_photos(n: int = 8) -> list[Path]:
    """Up to ``n`` held-out content photos (validation split), else the demo examples."""
    for root in _data_roots():
        content = root / "content"
        if content.is_dir():
            files = _val_split(content)
            if files:
                return files[:n]
    return demo_photos()[:n]


def demo_photos() -> list[Path]:
    """The photos committed under ``demo/examples/`` (content images; styles live in a ``style`` folder)."""
    ex = REPO / "demo" / "examples"
    files = [p for p in _images(ex) if "style" not in p.name.lower()]
    if (ex / "content").is_dir():
        files = _images(ex / "content") + files
    return files


def style_photos(n: int = 8) -> list[Path]:
    """Up to ``n`` style images (paintings): held-out ones from the data pack, else the demo's."""
    for root in _data_roots():
        folder = root / "style"
        if folder.is_dir():
            files = _val_split(folder)
            if files:
                return files[:n]
    return _images(REPO / "demo" / "examples" / "style")[:n]
