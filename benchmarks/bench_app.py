"""The console's warm start, filter keystroke and memory with 10k and 50k cached servers, beside an empty
Textual app started the same way in the same run.

    python benchmarks/bench_app.py [--sizes 10000,50000] [--runs 3] [--keys 12]

Each measurement runs in a fresh child process (RSS is the child's own). A store is filled first for
each size (a generated fleet, seed 7, read from an in-process simulator without throttling — the
refresh itself is bench_inventory's subject), then one priming start lets the console save its table
rows, as any session does.

- "first paint": from the child's start (before Python imports anything of ours or Textual's) to the end
  of the first screen refresh that shows the table's rows — headless, 200x50, through ``run_test``. The
  empty app is measured from its start to its first refresh the same way: the difference is the cost
  of the console itself.
- "indexed": until the snapshot is derived from the store, indexed, and the filter usable (the rows of
  the last session are on screen meanwhile).
- "keystroke": one character typed into the `/` filter (`web`, `prod`, `kind:arc` …, then erased),
  from the Input's change event to the end of the table's next ``render_lines``: query parse,
  FleetIndex.filter and the repaint; "worst" is the slowest one.
- "RSS": resident memory once the snapshot is indexed and shown.

Targets (issue 4): first paint at most the empty app + 0.5 s at 50k; keystroke ≤ 30 ms, none over 50 ms;
RSS under 250 MB with 50k servers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TYPED = ["w", "e", "b", "backspace", "backspace", "backspace", "k", "i", "n", "d", ":", "a", "r", "c",
         *["backspace"] * 8, "m", "i", "s", "s", "i", "n", "g", ":", "m", "o", "n"]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


# ---- children -----------------------------------------------------------------------------------


def child_empty(t0: float) -> dict:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    result: dict = {}

    class Empty(App):
        def compose(self) -> ComposeResult:
            yield Static("empty")

        def on_mount(self) -> None:
            self.call_after_refresh(self.painted)

        def painted(self) -> None:
            result["first_paint"] = time.time() - t0
            self.exit()

    import asyncio

    async def run() -> None:
        async with Empty().run_test(size=(200, 50)) as pilot:
            while "first_paint" not in result:
                await pilot.pause(0.01)

    asyncio.run(run())
    result["rss_mb"] = rss_mb()
    return result


def child_console(t0: float, cache_dir: str, keys: int) -> dict:
    import asyncio

    os.environ.setdefault("WSAM_CONFIG_DIR", tempfile.mkdtemp())
    from wsam_tui.cli import build_parser
    from wsam_tui.console import build_session
    from wsam_tui.ui.app import WsamApp

    result: dict = {}
    typed: list[float] = []

    class Measured(WsamApp):
        _key_started: float | None = None

        def _apply_rows(self, data, meta) -> None:
            super()._apply_rows(data, meta)
            self.call_after_refresh(lambda: result.setdefault("first_paint", time.time() - t0))

        def _apply_snapshot(self, *args) -> None:
            super()._apply_snapshot(*args)
            result.setdefault("first_paint", time.time() - t0)  # no saved rows: this is the first paint
            self.call_after_refresh(lambda: result.setdefault("indexed", time.time() - t0))

        def _set_query(self, text: str, *, quiet: bool = False) -> bool:
            if not quiet:  # a keystroke in the filter bar (quiet: re-applied after a load)
                self._key_started = time.perf_counter()
            return super()._set_query(text, quiet=quiet)

    args = build_parser().parse_args(["--offline", "--cache-dir", cache_dir])
    session = build_session(args)
    app = Measured(session, refresh_on_start=False)

    async def run() -> None:
        async with app.run_test(size=(200, 50)) as pilot:
            table = app.table
            original = table.render_lines

            def render_lines(crop):
                lines = original(crop)
                if app._key_started is not None:
                    typed.append((time.perf_counter() - app._key_started) * 1000)
                    app._key_started = None
                return lines

            table.render_lines = render_lines
            while "indexed" not in result:
                await pilot.pause(0.01)
            result["rss_mb"] = rss_mb()
            result["servers"] = len(app.servers)
            if keys:
                await pilot.press("slash")
                for key in TYPED[:keys]:
                    await pilot.press(key)
                    await pilot.pause()
    asyncio.run(run())
    session.close()
    result["keystrokes_ms"] = typed
    return result


# ---- parent -------------------------------------------------------------------------------------


def fill_store(size: int, directory: Path) -> float:
    code = f"""
import asyncio, os, time
from wsam_tui.sim.run import create_simulator, start_in_thread
from wsam_tui.sim.fleetgen import generate_fleet
from wsam_tui.inventory import ConnectOptions, Inventory, connect
from wsam_tui.store.cache import Store
sim = create_simulator(generate_fleet(size={size}, seed=7), throttle=False, graph_quota=False, take_ownership=True)
run = start_in_thread(sim)
async def main():
    conn = await connect(ConnectOptions(endpoint=run.base_url, ca_bundle=str(run.ca_path)))
    report = await Inventory(Store({str(directory)!r})).refresh(conn)
    assert not report.failures, report.failures[:3]
    await conn.close()
asyncio.run(main())
os._exit(0)
"""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return time.perf_counter() - started


def run_child(*args: str) -> dict:
    env = dict(os.environ, WSAM_BENCH_T0=repr(time.time()))
    # As an installed console starts: with its compiled bytecode cached (pip compiles it at install; an
    # editable checkout writes it on the first start). PYTHONDONTWRITEBYTECODE, set on some build
    # machines, would make every start compile our modules again (≈0.13 s) while Textual's stay compiled.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="10000,50000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keys", type=int, default=len(TYPED))
    p.add_argument("--store-root", help="keep the filled stores here (reused when present)")
    p.add_argument("--child", nargs="+")
    a = p.parse_args()
    if a.child:
        t0 = float(os.environ["WSAM_BENCH_T0"])
        mode = a.child[0]
        result = child_empty(t0) if mode == "empty" else child_console(t0, a.child[1], int(a.child[2]))
        print(json.dumps(result))
        sys.stdout.flush()
        os._exit(0)

    root = Path(a.store_root) if a.store_root else Path(tempfile.mkdtemp(prefix="wsam-bench-app-"))
    print(f"bench_app: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
          f"{os.getloadavg()[0]:.2f}, stores under {root}; bytecode cached as for an installed console")
    run_child("empty")  # compiles and caches what the children import, as the first start of an install does
    empties = [run_child("empty")["first_paint"] for _ in range(a.runs)]
    empty = statistics.median(empties)
    print(f"empty Textual app: first paint {empty:.3f} s (median of {a.runs}: "
          f"{', '.join(f'{x:.3f}' for x in empties)})")
    for size in (int(s) for s in a.sizes.split(",")):
        store = root / f"store-{size}"
        if not (store / "cache.db").exists():
            print(f"  filling a store with {size:,} servers … {fill_store(size, store):.1f} s")
        # The priming start compiles our bytecode and, when the store has none yet, derives and saves the rows.
        prime = run_child("console", str(store), "0")
        runs = [run_child("console", str(store), str(a.keys)) for _ in range(a.runs)]
        first = statistics.median(r["first_paint"] for r in runs)
        indexed = statistics.median(r["indexed"] for r in runs)
        keys = [k for r in runs for k in r["keystrokes_ms"]]
        rss = max(r["rss_mb"] for r in runs)
        print(f"{size:>6,} servers: first paint {first:.3f} s = empty app + {first - empty:.3f} s "
              f"(ratio {first / empty:.2f}); priming start {prime['first_paint']:.3f} s; "
              f"indexed (filter usable) {indexed:.2f} s")
        if keys:
            print(f"{'':>15} filter keystroke to repaint: median {statistics.median(keys):.1f} ms, "
                  f"p95 {sorted(keys)[int(len(keys) * 0.95) - 1]:.1f} ms, worst {max(keys):.1f} ms "
                  f"({len(keys)} keystrokes)")
        print(f"{'':>15} RSS with the snapshot loaded and indexed: {rss:.0f} MB (servers: {runs[0]['servers']:,})")
    print("targets: first paint <= empty + 0.5 s at 50k; keystroke <= 30 ms, none over 50 ms; RSS < 250 MB at 50k")


if __name__ == "__main__":
    main()
