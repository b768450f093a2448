"""Faults: a training run killed with SIGKILL resumes from its last checkpoint; every file stylekit writes
(checkpoints, weights, exports, images) goes through stylekit.atomic, so a crash mid-write never leaves
a corrupt file where a good one was (crashes are simulated by SIGKILLing a process half-way through
a real write)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                OMP_NUM_THREADS="1")


def _crash_mid_write(target: Path, writer: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``writer`` (Python code that writes ``target``) in a subprocess whose low-level file writes are
    cut off: after the first ~100 bytes reach any temporary file, the process SIGKILLs itself."""
    code = textwrap.dedent(f"""
        import builtins, io, os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        target = {str(target)!r}
        real_open = builtins.open

        class Dying(io.FileIO):
            # a file whose first write stores 100 bytes, reaches the disk, then the process is SIGKILLed
            def write(self, b):
                n = super().write(bytes(b)[:100])
                os.fsync(self.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
                return n

        def ARM(file, mode="r", *a, **k):
            if isinstance(file, (str, os.PathLike)) and ("w" in mode or "a" in mode):
                return Dying(os.fspath(file), "w")
            return real_open(file, mode, *a, **k)
    """) + textwrap.dedent(writer)
    script = tmp_path / "crash.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, env=_env())


def _leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


def test_atomic_write_survives_a_kill_mid_write(tmp_path):
    from stylekit.atomic import atomic_write_bytes

    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"good" * 1000)
    r = _crash_mid_write(target, """
        from stylekit.atomic import atomic_path
        with atomic_path(target) as tmp:
            f = ARM(str(tmp), 'wb')
            f.write(b'bad' * 100000)
    """, tmp_path)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert target.read_bytes() == b"good" * 1000
    # the next write succeeds and replaces it
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"


def test_atomic_write_cleans_up_after_an_exception(tmp_path):
    from stylekit.atomic import atomic_path

    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old" and _leftovers(target) == []


def test_new_file_is_never_half_there(tmp_path):
    """A first write killed half-way leaves no file at the target path (only a hidden temporary)."""
    target = tmp_path / "new.png"
    r = _crash_mid_write(target, """
        import builtins, torch
        from stylekit.images import save_image
        builtins.open = ARM  # PIL opens the temporary file with open()
        save_image(torch.rand(1, 3, 64, 64), target)
    """, tmp_path)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not target.exists()


def _tiny_checkpoint(path: Path, step: int):
    from stylekit.feedforward import TransformerNet
    from stylekit.training import save_checkpoint

    torch.manual_seed(step)
    net = TransformerNet(num_styles=2, width=(4, 8, 8), blocks=0)
    opt = torch.optim.Adam(net.parameters())
    return save_checkpoint(path, net, opt, step, meta={"kind": "fast", "config": net.config})


@pytest.mark.parametrize("what", ["checkpoint", "decoder", "onnx"])
def test_checkpoints_weights_and_exports_survive_a_kill_mid_write(tmp_path, what):
    from stylekit.training import read_checkpoint

    if what == "checkpoint":
        target = tmp_path / "checkpoint.safetensors"
        _tiny_checkpoint(target, 7)
        writer = f"""
            import builtins, torch, safetensors.torch as st
            from stylekit.feedforward import TransformerNet
            from stylekit.training import save_checkpoint
            real = st.save_file
            def save_file(t, p, metadata=None):
                real(t, p, metadata=metadata)       # the full file lands in the temporary path...
                with open(p, 'r+b') as f:           # ...then the process dies while rewriting it
                    f.truncate(50); f.flush(); os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
            st.save_file = save_file
            net = TransformerNet(num_styles=2, width=(4, 8, 8), blocks=0)
            save_checkpoint(target, net, torch.optim.Adam(net.parameters()), 99, meta={{"kind": "fast"}})
        """
        check = lambda: read_checkpoint(target).step == 7  # noqa: E731
    elif what == "decoder":
        from stylekit.adain import Decoder, load_decoder, save_decoder

        target = tmp_path / "decoder.safetensors"
        save_decoder(Decoder(width=0.125), target)
        good = target.read_bytes()
        writer = """
            import builtins, safetensors.torch as st
            from stylekit.adain import Decoder, save_decoder
            def save_file(t, p, metadata=None):
                with open(p, 'wb') as f:
                    f.write(b'x' * 10); f.flush(); os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
            st.save_file = save_file
            save_decoder(Decoder(width=0.25), target)
        """
        check = lambda: target.read_bytes() == good and load_decoder(target) is not None  # noqa: E731
    else:
        import onnx
        from onnx import TensorProto, helper

        from export.onnx_files import save_model

        target = tmp_path / "model.onnx"

        def model(name):
            x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 4, 4])
            y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 4, 4])
            g = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], name, [x], [y])
            return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

        save_model(model("good"), target)
        good = target.read_bytes()
        writer = """
            import pathlib
            from onnx import TensorProto, helper
            from export.onnx_files import save_model
            real = pathlib.Path.write_bytes
            def write_bytes(self, data):
                with open(self, 'wb') as f:
                    f.write(data[:20]); f.flush(); os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
            pathlib.Path.write_bytes = write_bytes
            x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 4, 4])
            y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 4, 4])
            g = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "bad", [x], [y])
            save_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), target)
        """
        check = lambda: target.read_bytes() == good and onnx.load(str(target)).graph.name == "good"  # noqa: E731
    r = _crash_mid_write(target, writer, tmp_path)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert check(), f"{target.name} was damaged by a crash mid-write"


# ---- a real training run, SIGKILLed -------------------------------------------------------------------------------
def _train_cmd(data: Path, style: Path, out: Path, steps: int, resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "stylekit.cli", "train-fast", "--style", str(style), "--data", str(data),
           "--out", str(out), "--steps", str(steps), "--batch-size", "1", "--crop", "32", "--width", "4", "8", "8",
           "--blocks", "0", "--style-size", "32", "--style-layers", "relu1_1", "--content-layer", "relu1_1",
           "--checkpoint-every", "0.05", "--preview-every", "0", "--threads", "1", "--log-every", "50"]
    return cmd + (["--resume"] if resume else [])


def test_training_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path):
    from PIL import Image

    from stylekit.training import read_checkpoint

    data = tmp_path / "data"
    data.mkdir()
    rng = torch.Generator().manual_seed(0)
    for i in range(6):
        arr = (torch.rand(48, 48, 3, generator=rng) * 255).byte().numpy()
        Image.fromarray(arr, "RGB").save(data / f"{i:02d}.png")
    style = tmp_path / "style.png"
    Image.fromarray((torch.rand(32, 32, 3, generator=rng) * 255).byte().numpy(), "RGB").save(style)
    out = tmp_path / "run"
    ckpt = out / "checkpoint.safetensors"
    log = open(tmp_path / "train1.log", "w")
    p = subprocess.Popen(_train_cmd(data, style, out, 10_000_000), stdout=log, stderr=subprocess.STDOUT, env=_env(),
                         cwd=REPO)
    try:
        deadline = time.time() + 150
        seen = []
        while time.time() < deadline and p.poll() is None:
            if ckpt.exists():
                st = ckpt.stat().st_mtime_ns
                if not seen or seen[-1] != st:
                    seen.append(st)
                if len(seen) >= 2:  # at least one checkpoint rewritten: kill somewhere in the run
                    break
            time.sleep(0.2)
        assert p.poll() is None, (tmp_path / "train1.log").read_text()[-2000:]
        assert seen, "no checkpoint within the time limit:\n" + (tmp_path / "train1.log").read_text()[-2000:]
        time.sleep(0.7)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(30)
        log.close()
    assert p.returncode == -signal.SIGKILL
    ck = read_checkpoint(ckpt)  # readable after the kill: never half-written
    s1 = ck.step
    assert s1 > 0
    assert not (out / "result.json").exists()
    r = subprocess.run(_train_cmd(data, style, out, s1 + 3, resume=True), capture_output=True, text=True,
                       timeout=240, env=_env(), cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resumed from {ckpt} at step {s1}" in r.stderr, r.stderr[-2000:]
    res = json.loads((out / "result.json").read_text())
    assert res["step"] == s1 + 3 and res["finished"]
    assert read_checkpoint(ckpt).step == s1 + 3


def test_atomic_files_get_normal_permissions(tmp_path):
    """Atomic writes must not make outputs private (mkstemp's 0o600): same mode as a plain write."""
    from stylekit.atomic import atomic_write_bytes

    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"x")
    atomic = atomic_write_bytes(tmp_path / "atomic.txt", b"x")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    os.chmod(atomic, 0o640)  # replacing a file keeps its mode
    atomic_write_bytes(atomic, b"y")
    assert atomic.stat().st_mode & 0o777 == 0o640


def test_training_stopped_with_sigterm_saves_and_exits_cleanly(tmp_path):
    """SIGTERM (kill, timeout, a job scheduler) ends the run after the current step, with a checkpoint."""
    from PIL import Image

    from stylekit.training import read_checkpoint

    data = tmp_path / "data"
    data.mkdir()
    rng = torch.Generator().manual_seed(1)
    for i in range(4):
        Image.fromarray((torch.rand(48, 48, 3, generator=rng) * 255).byte().numpy(), "RGB").save(data / f"{i}.png")
    style = tmp_path / "style.png"
    Image.fromarray((torch.rand(32, 32, 3, generator=rng) * 255).byte().numpy(), "RGB").save(style)
    out = tmp_path / "run"
    cmd = _train_cmd(data, style, out, 10_000_000)
    cmd[cmd.index("--checkpoint-every") + 1] = "1000"   # no periodic checkpoint: the one on disk is SIGTERM's
    p = subprocess.Popen(cmd + ["--preview-every", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=_env(), cwd=REPO)
    try:
        deadline = time.time() + 150
        while time.time() < deadline and p.poll() is None and not (out / "preview_000003.png").exists():
            time.sleep(0.2)
        assert p.poll() is None, p.stderr.read()[-2000:]
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(30)
    assert p.returncode == 0, err[-2000:]
    assert "SIGTERM: stopping at step" in err and "Traceback" not in err, err[-2000:]
    res = json.loads((out / "result.json").read_text())
    assert not res["finished"] and res["step"] >= 3
    assert read_checkpoint(out / "checkpoint.safetensors").step == res["step"]
