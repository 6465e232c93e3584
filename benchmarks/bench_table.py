"""ServerTable benchmark: load, filter keystroke to repaint, cursor repaint and memory, at 10k and 50k
servers, beside an empty App measured the same way in the same run.

    python benchmarks/bench_table.py [--sizes 10000,50000] [--filters 20] [--size 160x50]

Each scenario runs in a fresh child process (RSS is the child's own). A keystroke is a key press sent
by Pilot to an app action; "paint" is from the start of that action to the end of the table's next
``render_lines`` (the compositor's serialisation to the terminal is skipped headless, and depends on the
screen size, not on the number of rows); "idle" is until Pilot's ``pause()`` returns (the next
keystroke would be handled by then; it is mostly Pilot's own wait, which advances in steps of about
20 ms: see the empty App's figure for a keystroke that does nothing). "stall"
is the longest gap seen by a 2 ms ticker on the event loop during the run; the long ones are the
garbage collector walking every record (a full collection over 50,000 servers' objects), which
``gc.freeze()`` after loading a snapshot takes out: each size is run without it and with it. Filters are a plain
substring test over a precomputed lowercase haystack (name, resource group, subscription, region), the
query language (wsam_tui/fleet/query.py) being measured by its own benchmark; its cost is printed
apart ("filter") from the table's ("set_view").

Targets (the issue): filter keystroke to repaint ≤ 30 ms at 50k, no stall over 50 ms; RSS with 50k
servers under 250 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual.app import App, ComposeResult  # noqa: E402
from textual.binding import Binding, BindingType  # noqa: E402
from textual.geometry import Region  # noqa: E402
from textual.strip import Strip  # noqa: E402

from tests.test_ui_table import NOW, SUBSCRIPTIONS, make_servers  # noqa: E402
from wsam_tui.ui.table import ServerTable, TableData, default_columns  # noqa: E402
from wsam_tui.ui.themes import VARIABLE_DEFAULTS  # noqa: E402

# Typed one key at a time, then erased and retyped: narrowing, widening, empty and near-empty results.
QUERIES = ["v", "vm", "vm-", "vm-s", "vm-sq", "vm-sql", "vm-sql-0", "vm-sql-00", "vm-sql-001", "vm-sql-0012",
           "vm-sql-001", "vm-sql-00", "vm-sql", "vm", "", "a", "ar", "arc", "arc-d", "arc-dc", "", "westeurope",
           "rg-file", "prod-weu", "zzz", ""]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Stalls:
    """The longest gap between ticks of a 2 ms timer on the event loop."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.002)
            last = now

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()


class TimedTable(ServerTable):
    """Records the end of the last ``render_lines`` that drew fresh lines (later calls served from
    Textual's line cache, e.g. when the scrollbar is redrawn, do not count) and how many lines were drawn."""

    last_paint = 0.0
    painted_lines = 0
    t_key = 0.0

    def render_line(self, y: int) -> Strip:
        TimedTable.painted_lines += 1
        return super().render_line(y)

    def action_cursor_down(self) -> None:
        TimedTable.t_key = time.perf_counter()
        super().action_cursor_down()

    def action_page_down(self) -> None:
        TimedTable.t_key = time.perf_counter()
        super().action_page_down()

    def render_lines(self, crop: Region) -> list[Strip]:
        before = TimedTable.painted_lines
        strips = super().render_lines(crop)
        if TimedTable.painted_lines != before:
            TimedTable.last_paint = time.perf_counter()
        return strips


class BenchApp(App):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("f5", "next_filter", "next filter"),
                                             Binding("f6", "nothing", "nothing")]

    def __init__(self, servers: list | None) -> None:
        super().__init__()
        self.servers = servers
        self.hay: list[str] = []
        self.query_no = 0
        self.t_key = 0.0
        self.filter_s: list[float] = []
        self.set_view_s: list[float] = []
        self.rows: list[int] = []

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        if self.servers is not None:
            yield TimedTable()

    def action_nothing(self) -> None:
        self.t_key = time.perf_counter()

    def action_next_filter(self) -> None:
        self.t_key = t0 = time.perf_counter()
        q = QUERIES[self.query_no % len(QUERIES)]
        self.query_no += 1
        hay = self.hay
        view = [i for i in range(len(hay)) if q in hay[i]] if q else list(range(len(hay)))
        t1 = time.perf_counter()
        self.query_one(ServerTable).set_view(view)
        t2 = time.perf_counter()
        self.filter_s.append(t1 - t0)
        self.set_view_s.append(t2 - t1)
        self.rows.append(len(view))


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) * 1000:6.1f} / {max(values) * 1000:6.1f}"


async def run_child(size: int, filters: int, width: int, height: int, freeze: bool) -> dict:
    out: dict = {"size": size, "freeze": freeze}
    gc.collect()
    out["rss_start"] = rss_mb()
    servers = None
    if size:
        t = time.perf_counter()
        servers = make_servers(size)
        out["generate_s"] = time.perf_counter() - t
    gc.collect()
    out["rss_servers"] = rss_mb()
    app = BenchApp(servers)
    async with app.run_test(size=(width, height)) as pilot:
        await pilot.pause()
        out["rss_app"] = rss_mb()
        stalls = Stalls()
        if servers is None:
            # The empty App: what Pilot and Textual cost for a keystroke that does nothing.
            idle = []
            for _ in range(filters):
                t = time.perf_counter()
                await pilot.press("f6")
                await pilot.pause()
                idle.append(time.perf_counter() - t)
            out["idle_noop"] = idle
            gc.collect()
            out["rss_loaded"] = rss_mb()
            return out
        table = app.query_one(ServerTable)
        columns = default_columns(SUBSCRIPTIONS, now=NOW)
        t = time.perf_counter()
        table.set_data(servers, columns)  # the one-call path, as an app would use it
        out["set_data_s"] = time.perf_counter() - t
        await pilot.pause()
        table.focus()
        await pilot.pause()
        gc.collect()
        out["rss_loaded"] = rss_mb()
        # The same in two steps: the preparation (which can run in a thread worker), then the swap.
        t = time.perf_counter()
        data = TableData.build(servers, columns)
        out["build_s"] = time.perf_counter() - t
        t = time.perf_counter()
        table.set_prepared(data)
        out["set_prepared_s"] = time.perf_counter() - t
        del data
        await pilot.pause()
        app.hay = [f"{s.name} {s.resource_group} {SUBSCRIPTIONS.get(s.subscription_id, '')} {s.location}".lower()
                   for s in servers]
        if freeze:  # what the app would do once a snapshot is loaded
            gc.collect()
            gc.freeze()

        stalls.start()
        paint, idle, lines = [], [], []
        for _ in range(filters):
            TimedTable.last_paint = 0.0
            TimedTable.painted_lines = 0
            t = time.perf_counter()
            await pilot.press("f5")
            await pilot.pause()
            idle.append(time.perf_counter() - t)
            paint.append(TimedTable.last_paint - app.t_key if TimedTable.last_paint else float("nan"))
            lines.append(TimedTable.painted_lines)
        out.update(filter_paint=paint, filter_idle=idle, filter=app.filter_s, set_view=app.set_view_s,
                   rows=app.rows, filter_lines=lines)
        await pilot.press("f5")  # back to a long list for the cursor
        while app.rows[-1] < 1000:
            await pilot.press("f5")
        await pilot.pause()

        for key in ("down", "pagedown"):
            paint, idle, lines = [], [], []
            for _ in range(15):
                TimedTable.last_paint = 0.0
                TimedTable.painted_lines = 0
                t = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                idle.append(time.perf_counter() - t)
                paint.append(TimedTable.last_paint - TimedTable.t_key if TimedTable.last_paint else float("nan"))
                lines.append(TimedTable.painted_lines)
            out[f"{key}_paint"], out[f"{key}_idle"], out[f"{key}_lines"] = paint, idle, lines
        stalls.stop()
        out["stall_s"] = stalls.longest
        gc.collect()
        out["rss_end"] = rss_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--filters", type=int, default=20)
    parser.add_argument("--size", default="160x50", help="terminal size, WxH")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--freeze", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.child is not None:
        print(json.dumps(asyncio.run(run_child(args.child, args.filters, width, height, args.freeze))))
        return

    results = []
    runs = [(0, False)] + [(int(s), freeze) for s in args.sizes.split(",") for freeze in (False, True)]
    for size, freeze in runs:
        proc = subprocess.run([sys.executable, __file__, "--child", str(size), "--filters", str(args.filters),
                               "--size", args.size, *(["--freeze"] if freeze else [])],
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            sys.exit(f"child {size} failed:\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    print(f"ServerTable benchmark, terminal {width}x{height}, Python {sys.version.split()[0]}; "
          f"times in ms as median / max over {args.filters} keystrokes (15 for cursor keys)\n")
    base = results[0]
    print(f"empty App (baseline): RSS {base['rss_app']:.0f} MB; no-op keystroke until idle "
          f"{fmt(base['idle_noop'])}\n")
    for r in results[1:]:
        n = r["size"]
        how = "gc.freeze() after loading" if r["freeze"] else "no gc.freeze()"
        print(f"{n:,} servers, {how}  (generating the synthetic records: {r['generate_s'] * 1000:.0f} ms)")
        print(f"  set_data (prepare + show)       {r['set_data_s'] * 1000:7.1f} ms "
              f"(TableData.build {r['build_s'] * 1000:.1f} ms, which can run in a thread, + set_prepared "
              f"{r['set_prepared_s'] * 1000:.1f} ms)")
        print(f"  filter keystroke → repaint      {fmt(r['filter_paint'])}   (rows shown: "
              f"{min(r['rows'])}–{max(r['rows'])}; lines painted per keystroke: "
              f"{statistics.median(r['filter_lines']):.0f})")
        print(f"    of which filter / set_view    {fmt(r['filter'])}  /  {fmt(r['set_view'])}")
        print(f"    until idle (incl. Pilot)      {fmt(r['filter_idle'])}")
        print(f"  down → repaint                  {fmt(r['down_paint'])}   lines painted per press: "
              f"{statistics.median(r['down_lines']):.0f}")
        print(f"  pagedown → repaint              {fmt(r['pagedown_paint'])}   lines painted per press: "
              f"{statistics.median(r['pagedown_lines']):.0f}")
        print(f"  longest event-loop stall        {r['stall_s'] * 1000:7.1f} ms (during filters and cursor keys)")
        print(f"  RSS: empty App {base['rss_app']:.0f} MB; this process at start {r['rss_start']:.0f} MB, "
              f"+ servers {r['rss_servers']:.0f} MB, + app {r['rss_app']:.0f} MB, + table data "
              f"{r['rss_loaded']:.0f} MB (table: +{r['rss_loaded'] - r['rss_app']:.0f} MB); at the end, after a "
              f"second load and the benchmark's haystack, {r['rss_end']:.0f} MB\n")


if __name__ == "__main__":
    main()
