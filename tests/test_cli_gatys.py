"""`stylekit gatys` / `stylekit metrics` / `stylekit bench` from the command line: real runs on tiny images,
and every user error exits 2 with a one-line message (no traceback)."""
from __future__ import annotations

import pytest

from stylekit.cli import main
from stylekit.images import load_image, save_image

from .conftest import synthetic_image


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def pair(tmp_path):
    c = save_image(synthetic_image(48, 64, 0, "content"), tmp_path / "content.png")
    s = save_image(synthetic_image(64, 64, 1, "style"), tmp_path / "style.jpg")
    return str(c), str(s)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_gatys_runs_and_saves_with_previews(tmp_path, pair, capsys):
    c, s = pair
    out = tmp_path / "out" / "result.png"
    rc, stdout, err = _run(capsys, "gatys", c, s, s, "-o", str(out), "--size", "32", "--steps", "4",
                           "--no-multiscale", "--style-weights", "2,1", "--save-every", "2", "--seed", "1",
                           "--bf16", "on")
    assert rc == 0, err
    assert load_image(out).shape == (1, 3, 24, 32)
    assert (tmp_path / "out" / "result_step2.png").exists() and (tmp_path / "out" / "result_step4.png").exists()
    assert "saved" in stdout
    rc, stdout, err = _run(capsys, "metrics", str(out), c, s)
    assert rc == 0
    lines = dict(l.split("\t") for l in stdout.strip().splitlines())
    assert set(lines) == {"style_distance", "content_distance"} and float(lines["content_distance"]) >= 0


def _assert_user_error(rc: int, err: str) -> None:
    assert rc == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("extra", [
    ["--steps", "0"], ["--steps", "abc"], ["--size", "5"], ["--style-weight", "nan"], ["--content-weight", "-1"],
    ["--tv-weight", "inf"], ["--style-scale", "0"], ["--optimizer", "sgd"], ["--init", "zeros"],
    ["--preserve-color", "yes"], ["--preset", "nope"], ["--style-weights", "1,x"], ["--lr", "-3"],
    ["--bf16", "maybe"],
])
def test_bad_options_exit_2(tmp_path, pair, capsys, extra):
    c, s = pair
    with pytest.raises(SystemExit) as e:  # argparse rejects these before running
        main(["gatys", c, s, "-o", str(tmp_path / "o.png"), *extra])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err


def test_user_errors_exit_2_with_one_line(tmp_path, pair, capsys):
    c, s = pair
    o = str(tmp_path / "o.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    cases = [
        ["gatys", str(tmp_path / "missing.jpg"), s, "-o", o],
        ["gatys", c, str(tmp_path / "empty.jpg"), "-o", o],
        ["gatys", str(tmp_path / "text.png"), s, "-o", o],
        ["gatys", c, s, "-o", str(tmp_path / "o.gif"), "--steps", "1"],
        ["gatys", c, s, s, "-o", o, "--style-weights", "1,2,3", "--steps", "1"],
        ["gatys", c, s, "-o", o, "--style-weights", "0", "--steps", "1", "--size", "32"],
        ["gatys", c, s, "-o", o, "--size", "16", "--steps", "1"],
        ["metrics", o, c, s],
    ]
    for argv in cases:
        rc, _, err = _run(capsys, *argv)
        _assert_user_error(rc, err)
    assert not (tmp_path / "o.png").exists()


def test_bench_dispatch(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "nope"])
    assert e.value.code == 2
    rc = main(["bench", "gatys", "--help"])
    assert rc == 0 and "classic" in capsys.readouterr().out
