"""Security guarantees: no pickle on any load path; the running demo serves only files it created and
enforces its upload size and pixel limits server-side (tested with raw HTTP, not the browser)."""
from __future__ import annotations

import ast
import base64
import json
import os
from pathlib import Path

import pytest

from .hostile import bomb_png, file_data, good_jpeg, png_bytes, rest_call, rest_upload

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("stylekit", "export", "demo")


# ---- code scan ------------------------------------------------------------------------------------------------------
def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def scan_source(src: str, where: str = "<string>") -> list[str]:
    """Problems in one Python source: pickle imports, torch.load without weights_only=True, np.load with
    allow_pickle=True, pandas.read_pickle, torch.jit.load, yaml.load without a safe loader."""
    problems = []
    tree = ast.parse(src, where)
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in UNSAFE_MODULES:
                    problems.append(f"{line}: import {a.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in UNSAFE_MODULES:
                problems.append(f"{line}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            tail = name.split(".")[-2:] if "." in name else [name]
            if name == "torch.load" or name.endswith(".torch.load"):
                if not _is_true(_kw(node, "weights_only")):
                    problems.append(f"{line}: {name}(...) without weights_only=True")
            elif tail == ["jit", "load"]:
                problems.append(f"{line}: {name}(...) (TorchScript archives may hold pickles)")
            elif name in ("np.load", "numpy.load") and _is_true(_kw(node, "allow_pickle")):
                problems.append(f"{line}: {name}(..., allow_pickle=True)")
            elif name.endswith("read_pickle") or name.endswith("pickle.load") or name.endswith("pickle.loads"):
                problems.append(f"{line}: {name}(...)")
            elif name in ("yaml.load", "yaml.load_all") and not _kw(node, "Loader"):
                problems.append(f"{line}: {name}(...) without a safe Loader")
            elif name in ("yaml.unsafe_load", "yaml.full_load"):
                problems.append(f"{line}: {name}(...)")
    return problems


def test_scanner_finds_planted_problems():
    bad = ("import pickle\nimport torch, numpy as np\nfrom dill import loads\n"
           "torch.load('x.pth')\ntorch.load('x', weights_only=False)\nnp.load('a.npy', allow_pickle=True)\n"
           "torch.jit.load('m.pt')\nimport yaml\nyaml.load(open('c'))\n")
    assert len(scan_source(bad)) == 7
    good = ("import torch, numpy as np\ntorch.load('x', map_location='cpu', weights_only=True)\n"
            "np.load('a.npy')\nnp.load('a.npy', allow_pickle=False)\n")
    assert scan_source(good) == []


def test_no_pickle_on_any_load_path():
    files = [p for d in SCANNED for p in sorted((REPO / d).rglob("*.py")) if ".venv" not in p.parts]
    assert len(files) >= 10, files
    problems = []
    for p in files:
        problems += scan_source(p.read_text(), str(p.relative_to(REPO)))
    assert not problems, "\n".join(problems)


def test_shipped_weights_are_safetensors():
    models = REPO / "stylekit" / "models"
    assert models.is_dir() and any(models.glob("*.safetensors")), "the shipped models are missing"
    for p in models.rglob("*"):
        if p.is_file():
            assert p.suffix not in (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".npy", ".npz"), p
            if p.suffix == ".safetensors":
                n = int.from_bytes(p.read_bytes()[:8], "little")
                json.loads(p.read_bytes()[8:8 + n])  # a safetensors header, not a zip/pickle


# ---- the running demo ---------------------------------------------------------------------------------------------
LIMIT = "1mb"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import httpx  # noqa: F401

    from .hostile import launch_demo

    app, url, styles, restore = launch_demo(tmp_path_factory.mktemp("onnx-sec"), max_file_size=LIMIT)
    status, paths = rest_upload(url, "mine.jpg", good_jpeg(64, 48))
    assert status == 200, paths
    yield {"url": url, "styles": styles, "upload": Path(paths[0])}
    app.close()
    restore()


class _Raw:
    """A response from :func:`_get` (status_code, content, headers), like httpx's."""

    def __init__(self, status: int, content: bytes, headers: dict) -> None:
        self.status_code, self.content, self.headers = status, content, headers


def _get(url: str, path: str) -> _Raw:
    """GET ``path`` exactly as written: http.client sends ``../`` segments verbatim (httpx and browsers
    would normalize them away before sending, hiding the traversal from the server)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", "/" + path)
        r = conn.getresponse()
        return _Raw(r.status, r.read(), {k.lower(): v for k, v in r.getheaders()})
    finally:
        conn.close()


def _fast_args(server, f) -> list:
    return [f, None, server["styles"][0], "(none)", 0.5, 1.0, False, 96, 1.0]


def test_own_files_are_served(server):
    up = server["upload"]
    r = _get(server["url"], "gradio_api/file=" + str(up))
    assert r.status_code == 200 and r.content == up.read_bytes()
    # ../ reaches the server un-normalized (so the refusals below are the server's): a detour that ends
    # inside the upload folder is still served
    r = _get(server["url"], f"gradio_api/file={up.parent}/../{up.parent.name}/{up.name}")
    assert r.status_code == 200 and r.content == up.read_bytes()


def _refused(r) -> bool:
    return r.status_code in (400, 403, 404, 405) and b"root:" not in r.content and b"[project]" not in r.content


def test_other_paths_are_refused(server):
    url, up = server["url"], server["upload"]
    targets = [
        "/etc/passwd", "//etc/passwd", "etc/passwd", "../../../../../../etc/passwd",
        "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "....//....//....//etc/passwd",
        str(up.parent) + "/../../../../../../etc/passwd", str(up.parent) + "/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "file:///etc/passwd", "~/.bashrc", "/proc/self/environ", "/proc/self/cmdline",
        str(REPO / "pyproject.toml"), "pyproject.toml", "demo/app.py", str(REPO / "demo" / "app.py"),
        str(REPO / "stylekit" / "models" / "catalogue.json"), str(up.parent.parent),  # a folder
        "http://127.0.0.1:1/", "http://169.254.169.254/latest/meta-data/",
    ]
    served = []
    for t in targets:
        for prefix in ("gradio_api/file=", "gradio_api/file/", "file=", "gradio_api/static/", "static/",
                       "assets/"):
            r = _get(url, prefix + t)
            if not _refused(r) and not (r.status_code == 200 and r.headers.get("content-type", "").startswith(
                    "text/html") and prefix in ("file=", "static/", "assets/")):
                served.append(f"{prefix}{t} -> {r.status_code} {r.content[:60]!r}")
    assert not served, "\n".join(served)


def test_symlinks_in_the_served_folder_are_refused(server):
    up = server["upload"]
    links = {"passwd_link.txt": Path("/etc/passwd"), "repo_link.toml": REPO / "pyproject.toml",
             "etc_dir": Path("/etc")}
    made = []
    try:
        for name, target in links.items():
            p = up.parent / name
            p.symlink_to(target)
            made.append(p)
        for name in ("passwd_link.txt", "repo_link.toml", "etc_dir/passwd", "etc_dir/hostname"):
            r = _get(server["url"], "gradio_api/file=" + str(up.parent / name))
            assert _refused(r), (name, r.status_code, r.content[:80])
    finally:
        for p in made:
            p.unlink()


def test_inputs_naming_server_files_are_refused(server):
    """An API call whose image input names a file outside the upload folder must not read it."""
    url = server["url"]
    outside = Path(server["upload"]).parent.parent.parent / "outside.jpg"
    outside.write_bytes(good_jpeg(64, 48))
    try:
        for p in ("/etc/passwd", str(REPO / "demo" / "examples" / "LICENSES.md"), str(outside),
                  str(server["upload"].parent) + "/../../outside.jpg"):
            event, payload = rest_call(url, "fast", _fast_args(server, file_data(p)))
            assert event != "complete", (p, payload)
            assert "root:" not in payload
    finally:
        outside.unlink()


def test_upload_size_limit_is_enforced_by_the_server(server):
    big = good_jpeg(64, 48) + os.urandom(1_200_000)  # > 1 MB limit
    status, body = rest_upload(server["url"], "big.jpg", big)
    assert status == 413, (status, str(body)[:200])
    assert not list(server["upload"].parent.parent.rglob("big.jpg")), "the refused upload was kept"
    status, _ = rest_upload(server["url"], "small.jpg", good_jpeg(64, 48))
    assert status == 200


def test_default_launch_settings_limit_uploads():
    from demo.app import Settings, launch_kwargs

    kw = launch_kwargs(Settings())
    assert kw["max_file_size"], "no upload size limit"
    import gradio.utils as gu

    assert gu._parse_file_size(kw["max_file_size"]) <= 50 * 1024 * 1024
    assert not kw.get("allowed_paths"), "the demo must not serve extra folders"


def test_pixel_limits_are_enforced_by_the_server(server):
    url = server["url"]
    for name, data, needle in (("bomb.png", bomb_png(), "too large"),
                               ("big.png", png_bytes(9000, 5000, bit_depth=1), "megapixels")):
        assert len(data) < 1_000_000  # passes the size limit: only the pixel check can stop it
        status, paths = rest_upload(url, name, data)
        assert status == 200, paths
        event, payload = rest_call(url, "fast", _fast_args(server, file_data(paths[0])))
        assert event == "error" and needle in payload.lower(), (name, event, payload[:300])
        assert str(Path(paths[0]).parent) not in payload, "the error leaks a server path"
    # above the demo's working cap but under the hard limit: downscaled, with a note
    status, paths = rest_upload(url, "wide.png", png_bytes(2400, 1600, bit_depth=1))
    event, payload = rest_call(url, "fast", _fast_args(server, file_data(paths[0])))
    assert event == "complete" and "downscaled" in payload, payload[:300]


def test_data_url_inputs_get_the_same_checks(server):
    url = server["url"]
    for data in (bomb_png(), b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"not an image"):
        f = {"url": "data:image/png;base64," + base64.b64encode(data).decode(), "path": "x.png",
             "meta": {"_type": "gradio.FileData"}}
        event, payload = rest_call(url, "fast", _fast_args(server, f))
        assert event != "complete", payload[:200]
    event, payload = rest_call(url, "fast", _fast_args(server, file_data(str(server["upload"]))))
    assert event == "complete", payload[:300]


def test_huge_json_payload_does_not_break_the_server(server):
    import httpx

    url = server["url"]
    junk = {"data": ["x" * 1_000_000] * 20 + [[[[[[0]]]]]] * 1000}  # ~20 MB
    r = httpx.post(url + "gradio_api/call/fast", content=json.dumps(junk), timeout=60,
                   headers={"content-type": "application/json"})
    if r.status_code == 200:  # queued: it must end in an error, not a result
        eid = r.json()["event_id"]
        text = httpx.get(f"{url}gradio_api/call/fast/{eid}", timeout=60).text
        assert "event: error" in text, text[:300]
    else:
        assert 400 <= r.status_code < 500, r.status_code
    r = httpx.post(url + "gradio_api/call/fast", content=b"{" * 100_000 + b"}", timeout=60,
                   headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    event, payload = rest_call(url, "fast", _fast_args(server, file_data(str(server["upload"]))))
    assert event == "complete", payload[:300]
