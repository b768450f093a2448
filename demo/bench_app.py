"""Benchmark of the demo as users see it: the app in its own process, measured through gradio_client.

    python demo/bench_app.py [--runs 5] [--quick] [--content IMG] [--style IMG]

Measures (goals from the project brief, for a 2-vCPU Space):

- cold start: process start -> first answered request (a feed-forward request)       <= 20 s
- feed-forward request at 512 px, end to end (upload, run, PNG back), median           <= 1 s
- AdaIN request at 512 px, end to end, median (style statistics cached after the 1st)  <= 2 s
- Gatys with the UI's defaults: first preview                                          <= 10 s
- Gatys with the UI's defaults: whole run                                              <= 90 s

Prints a table. Numbers depend on the machine and its load; run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from demo.procs import free_port, stop_process

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "demo" / "examples"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--content", default=str(EXAMPLES / "content" / "skimage_chelsea_cat.jpg"))
    p.add_argument("--style", default=str(EXAMPLES / "style" / "vangogh_starry_night.jpg"))
    p.add_argument("--runs", type=int, default=5, help="timed requests per fast mode (median reported)")
    p.add_argument("--quick", action="store_true", help="skip the Gatys run (fast modes and cold start only)")
    p.add_argument("--size", type=int, default=512, help="fast modes' output long side (default 512)")
    a = p.parse_args(argv)

    from gradio_client import Client, handle_file

    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(REPO / "demo" / "app.py")], env=env, cwd=str(REPO),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rows: list[tuple[str, float | None, float, str]] = []
    try:
        client = None
        while client is None:
            if proc.poll() is not None:
                print(proc.stderr.read(), file=sys.stderr)
                raise SystemExit("the app exited")
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.2)
        t_up = time.perf_counter() - t0
        c, s = handle_file(a.content), handle_file(a.style)
        api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        fast_style, choices = None, []
        for prm in api["/fast"]["parameters"]:
            if prm["parameter_name"] == "style":
                choices = prm.get("type", {}).get("enum") or []
                stem = Path(a.style).stem
                fast_style = stem if stem in choices else (choices[0] if choices else None)

        # the style whose own stroke scale (the catalogue's, which the page's slider takes) is the finest: its
        # network runs at the most pixels
        from stylekit.weights import list_styles

        fine = min((e for e in list_styles() if e.name in choices), key=lambda e: e.stroke_scale, default=None)

        def fast(style=None, stroke=1.0):
            return client.predict(c, s, style or fast_style, "(none)", 0.5, 1.0, False, a.size, stroke,
                                  api_name="/fast")

        def adain():
            return client.predict(c, s, None, 0.5, 1.0, False, a.size, api_name="/adain")

        first_ok = True
        try:
            fast()
        except Exception as e:  # noqa: BLE001 - e.g. no model shipped: cold start is then the first error answer
            first_ok = False
            print(f"first request: {e}", file=sys.stderr)
        cold = time.perf_counter() - t0
        rows.append(("cold start (process -> first answer)", cold, 20.0,
                     f"listening after {t_up:.1f} s" + ("" if first_ok else "; the answer was an error")))

        own = {e.name for e in list_styles() if e.specialist}
        modes = [(f"feed-forward 512 px, end to end ({fast_style}"
                  + (", its own network)" if fast_style in own else ")"), fast, 1.0)]
        if fine is not None and fine.stroke_scale != 1.0:
            modes.append((f"feed-forward 512 px, {fine.short_name} at its stroke scale {fine.stroke_scale:g}",
                          lambda: fast(fine.name, fine.stroke_scale), 1.0))
        modes.append(("AdaIN 512 px, end to end", adain, 2.0))
        for name, fn, goal in modes:
            times = []
            try:
                fn()  # warm (AdaIN: style statistics cached from here on)
                for _ in range(a.runs):
                    t = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t)
                rows.append((name, statistics.median(times), goal, f"median of {a.runs}, min {min(times):.2f} s"))
            except Exception as e:  # noqa: BLE001
                rows.append((name, None, goal, f"failed: {str(e)[:80]}"))

        if not a.quick:
            job = client.submit(c, s, "default", api_name="/gatys")
            t = time.perf_counter()
            first = None
            while not job.done():
                if first is None and any(o and o[0] for o in job.outputs()):
                    first = time.perf_counter() - t
                time.sleep(0.05)
            total = time.perf_counter() - t
            try:
                _, _, info = job.result()
                note = info.split("·")[0:3]
                note = " ".join(x.strip() for x in note).replace("**", "")
            except Exception as e:  # noqa: BLE001
                note = f"failed: {e}"
            if first is None and job.outputs():
                first = total
            rows.append(("Gatys default: first preview", first, 10.0, "UI defaults"))
            rows.append(("Gatys default: whole run", total, 90.0, note))
    finally:
        stop_process(proc)

    print(f"\nstylekit demo benchmark ({os.cpu_count()} CPUs visible, load average "
          f"{os.getloadavg()[0]:.1f})\n")
    print(f"| {'measure':38s} | {'seconds':>8s} | {'goal':>6s} | ok | notes")
    print(f"|{'-' * 40}|{'-' * 10}|{'-' * 8}|----|------")
    for name, v, goal, note in rows:
        val = f"{v:8.2f}" if v is not None else "       -"
        ok = "yes" if v is not None and v <= goal else "no "
        print(f"| {name:38s} | {val} | {goal:6.0f} | {ok}| {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
