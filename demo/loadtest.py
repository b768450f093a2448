"""Load and fault benchmark of the demo: the app in its own process on 127.0.0.1, many gradio_client users.

    python demo/loadtest.py                                   # 16 fast/AdaIN users + 2 Gatys users
    nice python demo/loadtest.py --users 8 --requests 3 --size 256 --quick-gatys

Phases:

1. start ``demo/app.py`` in a child process (it stops with a clear message unless both shipped models
   load), wait for it and warm it up with one untimed request per mode;
2. load: ``--users`` clients alternate feed-forward and AdaIN requests (``--requests`` results each; a
   "busy, try again" answer of the server's work gate is followed by a 2-4 s back-off and a retry) while
   ``--gatys-users`` clients run Gatys jobs (``--gatys-jobs`` each). The first Gatys user presses Stop
   on its first job one second after its first preview arrived (the optimization is running), while the
   second user's job waits in the queue behind it: the time from Stop to the waiting job starting is the
   "worker freed" figure;
3. print a table: per mode answers, ok, busy (queue-full) answers, errors, p50 / p95 / max latency of the
   accepted requests and p95 from first press to result (retries included); throughput;
   the server's peak RSS (``VmHWM`` of the server process); and the goals (no errors other than
   queue-full answers, peak RSS < 4 GB, feed-forward p95 < 3 s while Gatys runs, next Gatys job starts
   within 5 s of Stop). ``--strict`` exits 1 when a goal is missed.

Numbers depend on the machine and its load; run it on an otherwise idle machine for real figures.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from demo.procs import free_port, stop_process

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "demo" / "examples"
QUEUE_FULL_WORDS = ("queue is full", "busy", "try again")


# ---- the server process ---------------------------------------------------------------------------------------------
def serve() -> None:
    """Child mode: check that both shipped models load, then run the demo (demo/app.py's main)."""
    sys.path.insert(0, str(REPO))
    from demo import engine

    status = engine.model_status()
    for kind in ("fast", "adain"):
        print(f"loadtest-server: {kind}: {status[kind]}", file=sys.stderr, flush=True)
    if not all(status[k].startswith("ready") for k in ("fast", "adain")):
        raise SystemExit("loadtest-server: the shipped models are needed (see the lines above)")
    import demo.app as app

    app.main()


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """Resident memory of a process and its children (MB) from /proc; ``VmHWM`` = the process' peak."""
    total = 0.0
    pids = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak = pid, every, 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self.stop.wait(self.every)


# ---- clients --------------------------------------------------------------------------------------------------------
@dataclass
class Record:
    mode: str
    start: float
    seconds: float
    outcome: str            # ok | queue_full | error
    message: str = ""
    during_gatys: bool = False
    #: ok requests: seconds from the user's first attempt (busy answers and back-offs included)
    with_retries: float = 0.0


@dataclass
class Shared:
    records: list[Record] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    gatys_running: int = 0
    cancel: dict = field(default_factory=dict)

    def add(self, r: Record) -> None:
        with self.lock:
            self.records.append(r)


def classify(e: BaseException) -> tuple[str, str]:
    msg = f"{type(e).__name__}: {e}".strip()
    low = msg.lower()
    if type(e).__name__ == "QueueError" or any(w in low for w in QUEUE_FULL_WORDS):
        return "queue_full", msg
    return "error", msg[:300]


def fast_user(url: str, idx: int, n: int, size: int, shared: Shared, style_name: str, barrier: threading.Barrier,
              retries: int = 20) -> None:
    """``n`` feed-forward/AdaIN results, one after another; after a "busy, try again" answer the user waits
    2-4 s (like a person pressing the button again) and retries, at most ``retries`` times per result."""
    import random

    from gradio_client import Client, handle_file

    contents = sorted((EXAMPLES / "content").glob("*.jpg"))
    styles = sorted((EXAMPLES / "style").glob("*.jpg"))
    rng = random.Random(idx)
    client = Client(url, verbose=False)
    barrier.wait()
    for i in range(n):
        mode = "fast" if (idx + i) % 2 == 0 else "adain"
        c = handle_file(str(contents[(idx + i) % len(contents)]))
        s = handle_file(str(styles[(idx + 2 * i) % len(styles)]))
        first = time.perf_counter()
        for _attempt in range(retries + 1):
            t = time.perf_counter()
            during = shared.gatys_running > 0
            try:
                if mode == "fast":
                    client.predict(c, None, style_name, "(none)", 0.5, 1.0, False, size, api_name="/fast")
                else:
                    client.predict(c, s, None, 0.5, 1.0, False, size, api_name="/adain")
                now = time.perf_counter()
                shared.add(Record(mode, t, now - t, "ok", during_gatys=during or shared.gatys_running > 0,
                                  with_retries=now - first))
                break
            except Exception as e:  # noqa: BLE001 - every answer is recorded
                outcome, msg = classify(e)
                shared.add(Record(mode, t, time.perf_counter() - t, outcome, msg, during))
                if outcome != "queue_full":
                    break
                time.sleep(rng.uniform(2.0, 4.0))


def _running(job) -> bool:
    from gradio_client.utils import Status

    try:
        code = job.status().code
    except Exception:  # noqa: BLE001
        return False
    return code in (Status.PROCESSING, Status.ITERATING, Status.PROGRESS) or bool(job.outputs())


def gatys_user(url: str, idx: int, jobs: int, size: int, steps: int, shared: Shared, barrier: threading.Barrier,
               first_started: threading.Event, stop_sent: threading.Event) -> None:
    """Gatys jobs; user 0 stops its first job once running, user 1 queues its first job behind it."""
    from gradio_client import Client, handle_file

    c = handle_file(str(sorted((EXAMPLES / "content").glob("*.jpg"))[idx % 3]))
    s = handle_file(str(sorted((EXAMPLES / "style").glob("*.jpg"))[idx % 3]))
    client = Client(url, verbose=False)
    barrier.wait()
    for j in range(jobs):
        if idx == 1 and j == 0:
            first_started.wait(300)  # queue behind user 0's running job
        t = time.perf_counter()
        job = client.submit(c, s, "default", size, steps, 1.0, False, api_name="/gatys")
        started = first_preview = None
        with shared.lock:
            shared.gatys_running += 1
        try:
            while not job.done():
                if started is None and _running(job):
                    started = time.perf_counter()
                    if idx == 0 and j == 0:
                        first_started.set()
                    if idx == 1 and j == 0 and stop_sent.is_set():
                        shared.cancel["next_started"] = started
                if idx == 0 and j == 0 and first_preview is None and len(job.outputs()) >= 1:
                    first_preview = time.perf_counter()
                if idx == 0 and j == 0 and first_preview is not None and not stop_sent.is_set() \
                        and time.perf_counter() - first_preview > 1.0:
                    shared.cancel["stop_at"] = time.perf_counter()
                    shared.cancel["stop_answer"] = str(client.predict(api_name="/stop"))
                    shared.cancel["stop_returned"] = time.perf_counter()
                    stop_sent.set()
                time.sleep(0.05)
            if idx == 0 and j == 0:
                shared.cancel["stopped_job_ended"] = time.perf_counter()
            try:
                res = job.result()
                outcome, msg = "ok", ""
                if idx == 0 and j == 0 and isinstance(res, (list, tuple)) and res:
                    shared.cancel["stopped_info"] = str(res[-1])[:200]
            except Exception as e:  # noqa: BLE001
                outcome, msg = classify(e)
                if idx == 0 and j == 0 and "stop" in msg.lower():
                    outcome = "ok"  # the stopped job ends with its last image or a "Stopped." answer
            shared.add(Record("gatys", t, time.perf_counter() - t, outcome, msg))
        finally:
            with shared.lock:
                shared.gatys_running -= 1
            if idx == 0:
                first_started.set()  # never leave user 1 waiting, whatever happened to this job


# ---- report ---------------------------------------------------------------------------------------------------------
def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def report(shared: Shared, wall: float, peak_rss: float, hwm: float, args: argparse.Namespace,
           notes: list[str]) -> bool:
    rows = []
    for mode in ("fast", "adain", "gatys"):
        rs = [r for r in shared.records if r.mode == mode]
        ok = [r.seconds for r in rs if r.outcome == "ok"]
        retried = [r.with_retries for r in rs if r.outcome == "ok"]
        rows.append((mode, len(rs), len(ok), sum(r.outcome == "queue_full" for r in rs),
                     sum(r.outcome == "error" for r in rs), pct(ok, 0.5), pct(ok, 0.95), max(ok, default=float("nan")),
                     pct(retried, 0.95) if mode != "gatys" else float("nan")))
    print()
    print(f"{'mode':8s} {'answers':>8s} {'ok':>5s} {'busy':>6s} {'errors':>6s} {'p50 s':>7s} {'p95 s':>7s} {'max s':>7s}"
          f" {'p95 incl. retries':>18s}")
    for m, n, ok, qf, err, p50, p95, mx, p95r in rows:
        print(f"{m:8s} {n:8d} {ok:5d} {qf:6d} {err:6d} {p50:7.2f} {p95:7.2f} {mx:7.2f} {p95r:18.2f}")
    print("(answers: every reply, busy ones included; p50/p95/max: latency of the accepted requests; "
          "incl. retries: from a user's first press to the result, back-offs of 2-4 s after each busy answer included)")
    light = [r for r in shared.records if r.mode != "gatys"]
    light_ok = sum(r.outcome == "ok" for r in light)
    # over the time the feed-forward/AdaIN users were active (Gatys jobs may run on after them)
    span = (max(r.start + r.seconds for r in light) - min(r.start for r in light)) if light else wall
    ff_during = [r.seconds for r in shared.records if r.mode == "fast" and r.outcome == "ok" and r.during_gatys]
    p95_ff_during = pct(ff_during, 0.95)
    print(f"\nload phase {wall:.1f} s; feed-forward + AdaIN throughput {light_ok / span:.2f} req/s over {span:.0f} s "
          f"({args.users} users x {args.requests} requests at {args.size} px; {args.gatys_users} Gatys users x "
          f"{args.gatys_jobs} jobs at {args.gatys_size} px, {args.gatys_steps} steps)")
    print(f"feed-forward while Gatys ran: {len(ff_during)} requests, p95 {p95_ff_during:.2f} s")
    print(f"server peak RSS: {max(peak_rss, hwm):.0f} MB (VmHWM {hwm:.0f} MB, sampled {peak_rss:.0f} MB)")
    c = shared.cancel
    freed = c.get("next_started", float("nan")) - c.get("stop_at", float("nan"))
    ended = c.get("stopped_job_ended", float("nan")) - c.get("stop_at", float("nan"))
    print(f"Gatys Stop under load: stopped job ended {ended:.2f} s after Stop; next queued Gatys job started "
          f"{freed:.2f} s after Stop")
    if "stop_answer" in c:
        print(f"  (the Stop endpoint answered {c['stop_answer']!r} in "
              f"{c.get('stop_returned', float('nan')) - c['stop_at']:.2f} s; the stopped job says "
              f"{c.get('stopped_info', '?')!r})")
    errors = [r for r in shared.records if r.outcome == "error"]
    for r in errors[:10]:
        print(f"  error ({r.mode}): {r.message}")
    for n in notes:
        print(f"note: {n}")
    goals = [("no errors other than queue-full answers", not errors),
             ("server peak RSS < 4 GB", max(peak_rss, hwm) < 4096),
             ("feed-forward p95 < 3 s while Gatys runs", p95_ff_during < 3.0),
             ("next Gatys job starts within 5 s of Stop", freed < 5.0)]
    print()
    for name, ok in goals:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return all(ok for _, ok in goals)


# ---- main -----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", default=None, help="test an already running demo instead of starting one "
                                               "(no RSS figure then)")
    p.add_argument("--users", type=int, default=16, help="concurrent feed-forward/AdaIN users (default 16)")
    p.add_argument("--requests", type=int, default=4, help="requests per feed-forward/AdaIN user (default 4)")
    p.add_argument("--size", type=int, default=512, help="feed-forward/AdaIN size, long side px (default 512)")
    p.add_argument("--gatys-users", type=int, default=2)
    p.add_argument("--gatys-jobs", type=int, default=2, help="Gatys jobs per Gatys user (default 2)")
    p.add_argument("--gatys-size", type=int, default=256)
    p.add_argument("--gatys-steps", type=int, default=40)
    p.add_argument("--quick-gatys", action="store_true", help="Gatys at 128 px, 15 steps")
    p.add_argument("--queue", type=int, default=None, help="server queue size (STYLEKIT_DEMO_QUEUE)")
    p.add_argument("--max-wait", type=float, default=None,
                   help="server's wait budget of the one-pass modes, s (STYLEKIT_DEMO_MAX_WAIT)")
    p.add_argument("--retries", type=int, default=20, help="busy answers a user retries per result (default 20)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    p.add_argument("--timeout", type=float, default=900, help="give up after this many seconds")
    args = p.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.quick_gatys:
        args.gatys_size, args.gatys_steps = 128, 15
    if args.gatys_users < 2:
        p.error("--gatys-users must be at least 2 (one stops its job, one waits behind it)")
    sys.path.insert(0, str(REPO))
    import httpx

    notes: list[str] = []
    proc = None
    work = Path(tempfile.mkdtemp(prefix="stylekit-loadtest-"))
    url = args.url
    log = open(work / "server.log", "w+")
    if url is None:
        port = free_port()
        env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
                   STYLEKIT_DEMO_DIR=str(work / "demo"), PYTHONPATH=str(REPO))
        if args.queue:
            env["STYLEKIT_DEMO_QUEUE"] = str(args.queue)
        if args.max_wait is not None:
            env["STYLEKIT_DEMO_MAX_WAIT"] = str(args.max_wait)
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=str(work))
        url = f"http://127.0.0.1:{port}/"
        while True:
            try:
                if httpx.get(url + "gradio_api/info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.perf_counter() - t0 > 300:
                log.seek(0)
                print(log.read()[-3000:], file=sys.stderr)
                print("loadtest: the demo did not start", file=sys.stderr)
                return 2
            time.sleep(0.5)
        print(f"server up in {time.perf_counter() - t0:.1f} s at {url} (pid {proc.pid})", file=sys.stderr)
    try:
        from gradio_client import Client, handle_file

        warm = Client(url, verbose=False)
        content = handle_file(str(sorted((EXAMPLES / "content").glob("*.jpg"))[0]))
        style = handle_file(str(sorted((EXAMPLES / "style").glob("*.jpg"))[0]))
        api = warm.view_api(print_info=False, return_format="dict")
        style_name = None
        try:
            params = api["named_endpoints"]["/fast"]["parameters"]
            choices = [prm for prm in params if prm.get("parameter_name") == "style"][0]["type"].get("enum")
            style_name = choices[0] if choices else None
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        t = time.perf_counter()
        warm.predict(content, None, style_name, "(none)", 0.5, 1.0, False, args.size, api_name="/fast")
        warm.predict(content, style, None, 0.5, 1.0, False, args.size, api_name="/adain")
        print(f"warm-up requests done in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        if proc is not None:
            log.flush()
            log.seek(0)
            notes += [ln.split("loadtest-server: ", 1)[1] for ln in log.read().splitlines() if "loadtest-server:" in ln]

        shared = Shared()
        sampler = RssSampler(proc.pid) if proc is not None else None
        if sampler:
            sampler.start()
        n_threads = args.users + args.gatys_users
        barrier = threading.Barrier(n_threads + 1)
        first_started, stop_sent = threading.Event(), threading.Event()
        threads = [threading.Thread(target=fast_user, args=(url, i, args.requests, args.size, shared, style_name,
                                                             barrier, args.retries), daemon=True)
                   for i in range(args.users)]
        threads += [threading.Thread(target=gatys_user, args=(url, i, args.gatys_jobs, args.gatys_size,
                                                              args.gatys_steps, shared, barrier, first_started,
                                                              stop_sent), daemon=True)
                    for i in range(args.gatys_users)]
        for th in threads:
            th.start()
        barrier.wait(300)
        t0 = time.perf_counter()
        for th in threads:
            th.join(max(1.0, args.timeout - (time.perf_counter() - t0)))
        wall = time.perf_counter() - t0
        if any(th.is_alive() for th in threads):
            notes.append(f"some users were still waiting after --timeout {args.timeout:.0f} s")
        peak = sampler.peak if sampler else float("nan")
        if sampler:
            sampler.stop.set()
        hwm = rss_mb(proc.pid, "VmHWM") if proc is not None else float("nan")
        ok = report(shared, wall, peak, hwm, args, notes)
    finally:
        if proc is not None:
            stop_process(proc)
        log.close()
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
