"""`wsam-tui --demo` for real, in tmux at 200x50: the fleet arrives, a filter narrows it, marks, the details
pane with its "as of" line, a :kql answer, a live theme switch seen in the terminal's colours, and q quits —
the process ends and the terminal's title was never touched. And a fault in the jobs pane while a bulk Run Command
runs does not end the console."""

from __future__ import annotations

import json
import re

import pytest

from tests.tmux_support import EXITED, SGR, Tmux, console_env, require_tmux, sgr_colours, wsam_argv
from wsam_tui.sim.run import DEMO_FLEET

ARC_TYPE = "microsoft.hybridcompute/machines"
MACHINE_TYPES = (ARC_TYPE, "microsoft.compute/virtualmachines")


def demo_counts() -> tuple[int, int]:
    """(servers, Arc servers) in the bundled demo fleet, read from the fixture itself."""
    fleet = json.loads(DEMO_FLEET.read_text(encoding="utf-8"))
    types = [str(r.get("type", "")).lower() for r in fleet["resources"]]
    return sum(t in MACHINE_TYPES for t in types), types.count(ARC_TYPE)


def header(screen: str) -> str:
    return screen.splitlines()[0] if screen else ""


def table_has_keys(screen: str) -> bool:
    """The footer lists the table's keys again: the focus is back on the table (not in a prompt)."""
    lines = SGR.sub("", screen).splitlines()
    return bool(lines) and "q Quit" in lines[-1] and "a Mark shown" in lines[-1]


def open_prompt(tmux: Tmux, key: str, placeholder: str) -> None:
    """Open the filter bar or the command line and wait until it shows, as a person does before typing.
    (Keys sent in the same write go to the bar too: test_keys_sent_in_one_burst_apply_in_order.)"""
    tmux.keys(key)
    tmux.wait_text(placeholder)


@pytest.fixture
def tmux(tmp_path):
    require_tmux()
    session = Tmux(tmp_path, "demo")
    yield session
    session.stop()


def test_demo_end_to_end_in_tmux(tmux, tmp_path):
    total, arcs = demo_counts()
    tmux.start(wsam_argv("--demo"), console_env(tmp_path))
    title = tmux.title()

    # the fleet: painted and refreshed from the in-process simulator
    tmux.wait(lambda s: f"{total:,} total" in header(s) and "│ online │" in header(s), "the refreshed fleet", 60)
    assert f"{total:,} shown · 0 marked" in header(tmux.screen())

    # filter: / then text, enter
    open_prompt(tmux, "/", "filter: words")
    tmux.type("kind:arc")
    tmux.keys("Enter")
    screen = tmux.wait(lambda s: f"{arcs:,} shown" in header(s) and table_has_keys(s), "the filtered table")
    assert "filter: kind:arc" in header(screen)
    kinds = [m.group(1) for line in screen.splitlines()[3:] if (m := re.search(r"│ (Arc|VM) ", line))]
    assert kinds and set(kinds) == {"Arc"}, kinds

    # marks: space marks the highlighted server (and moves down), a marks every server shown
    tmux.keys("Space")
    tmux.wait_text(f"{arcs:,} shown · 1 marked")
    tmux.keys("a")
    tmux.wait_text(f"{arcs:,} shown · {arcs:,} marked")

    # details: enter opens the pane, fresh from ARM, with its "as of" time
    tmux.keys("Enter")
    screen = tmux.wait(lambda s: re.search(r"as of \d\d:\d\d:\d\d UTC", s) is not None, "the details' as-of line")
    assert "Properties" in screen and "Arc server" in screen
    assert tmux.title() == title
    tmux.keys("Escape")
    tmux.wait(lambda s: "Properties" not in s and table_has_keys(s), "the details pane to close")

    # :kql, its answer screen, escape back
    open_prompt(tmux, ":", "command (tab completes)")
    tmux.type("kql resources | summarize count() by type")
    tmux.keys("Enter")
    screen = tmux.wait_text("microsoft.hybridcompute/machines")
    assert "resources | summarize count() by type" in screen and "rows" in screen
    assert re.search(rf"microsoft\.hybridcompute/machines\s+{arcs}\b", screen)
    assert tmux.title() == title
    tmux.keys("Escape")
    tmux.wait(lambda s: f"{arcs:,} marked" in header(s) and table_has_keys(s), "the table again")

    # theme: the colours the terminal draws with change; `?` sent together with the enter opens help (it
    # used to land in the command line being closed, and was lost)
    before = sgr_colours(tmux.screen(escapes=True))
    assert before, "no 24-bit colour in the pane (COLORTERM=truecolor should give it)"
    open_prompt(tmux, ":", "command (tab completes)")
    tmux.type("theme wsam-light")
    tmux.keys("Enter", "?")
    screen = tmux.wait(lambda s: "Keys (escape closes)" in s and len(sgr_colours(s) - before) >= 3,
                       "help in the light theme", escapes=True)
    assert len(sgr_colours(screen) - before) >= 3
    tmux.keys("Escape")
    tmux.wait(lambda s: "Keys (escape closes)" not in s and table_has_keys(s), "help to close")

    # quit (confirming if a refresh is still running): the process ends
    assert f"{EXITED}0" in tmux.quit_console()
    assert tmux.title() == title


# The console with one jobs-pane redraw made to raise, injected from the test (python -c wraps the real entry
# point): nothing in the product knows about it.
FAULTY_CONSOLE = """
import sys
from wsam_tui.ui.jobs import JobsScreen
draw, faulted = JobsScreen._draw_outputs, []
def draw_once_faulty(self, job):
    if not faulted and job.unfinished:
        faulted.append(job.id)
        raise RuntimeError("injected by the test: a redraw failed")
    draw(self, job)
JobsScreen._draw_outputs = draw_once_faulty
from wsam_tui.cli import main
sys.argv[0] = "wsam-tui"
sys.exit(main())
"""


def run_command_on_connected_arc(tmux: Tmux, script: tuple[str, ...]) -> int:
    """/kind:arc state:connected, a, o, Run Command, the script line by line, ctrl+g, the typed count, enter,
    J: the jobs pane while the job runs. Returns how many servers it runs on."""
    tmux.wait(lambda s: "│ online │" in header(s), "the refreshed fleet", 60)
    open_prompt(tmux, "/", "filter: words")
    tmux.type("kind:arc state:connected")
    tmux.keys("Enter")
    screen = tmux.wait(lambda s: "filter: kind:arc" in header(s) and " 0 shown" not in header(s) and table_has_keys(s),
                       "the filtered table")
    shown = int(re.search(r"([\d,]+) shown", header(screen)).group(1).replace(",", ""))
    assert shown > 10  # above the threshold: the count is typed
    tmux.keys("a")
    tmux.wait_text(f"{shown:,} marked")
    tmux.keys("o")
    tmux.wait_text("enter: choose · esc: close")
    tmux.keys("Down", "Down", "Down", "Enter")  # Run Command, the fourth action
    tmux.wait_text("Script (PowerShell)")
    # a person waits for each step to show before the next (keys typed ahead of a screen:
    # test_keys_sent_with_a_screen_opening_key_go_to_the_screen_it_opens)
    for line in script:
        tmux.type(line)
        tmux.wait_text(line)
        tmux.keys("Enter")
    tmux.keys("C-g")
    tmux.wait_text(f"Type {shown} and press enter")
    tmux.type(str(shown))
    tmux.wait(lambda s: re.search(rf"▊\s+{shown}\s", s) is not None, "the typed count in its field")
    tmux.keys("Enter")
    tmux.wait_text("J shows it.")  # the job started
    tmux.keys("J")
    return shown


def test_a_fault_in_a_jobs_pane_redraw_while_a_bulk_run_command_runs_does_not_end_the_console(tmux, tmp_path):
    env = console_env(tmp_path)
    env["WSAM_DEMO_LRO_SECONDS"] = "4"  # the job runs for a few seconds: the pane redraws while it runs
    tmux.start([wsam_argv()[0], "-c", FAULTY_CONSOLE, "--demo"], env)
    shown = run_command_on_connected_arc(tmux, ("Get-Service W32Time", "hostname", "Get-Date"))
    screen = tmux.wait_text("Unexpected error", 20)  # the injected fault, shown
    assert "injected by the test: a redraw failed" in screen and "errors.log" in screen
    # the job goes on to its end and the pane still redraws it
    screen = tmux.wait(lambda s: f"{shown} of {shown} ended" in s and "Outputs:" in s, "the job's end", 60)
    assert EXITED not in screen
    log = tmp_path / "state" / "errors.log"
    assert "injected by the test: a redraw failed" in log.read_text() and log.stat().st_mode & 0o777 == 0o600
    # the console still answers keys: back to the table, the help screen, quit
    tmux.keys("Escape")
    tmux.wait(table_has_keys, "the table again")
    tmux.keys("?")
    tmux.wait_text("Keys (escape closes)")
    tmux.keys("Escape")
    tmux.wait(lambda s: "Keys (escape closes)" not in s and table_has_keys(s), "help to close")
    assert f"{EXITED}0" in tmux.quit_console()


def test_run_command_outputs_every_group_reachable_opened_in_full_and_written(tmux, tmp_path):
    tmux.start(wsam_argv("--demo"), console_env(tmp_path))
    shown = run_command_on_connected_arc(tmux, ("hostname",))  # every server answers differently
    screen = tmux.wait(lambda s: f"{shown} of {shown} ended" in s, "the job's end", 60)
    screen = tmux.wait_text(f"Outputs: {shown} distinct among {shown} servers")
    assert len(re.findall(r"1 server: \S+\s+exit code 0", screen)) >= 20  # the groups fill their half
    # by keys: e to the groups, end to the last one (the list scrolls), enter opens it in full
    tmux.keys("e")
    tmux.keys("End")
    tmux.keys("Enter")
    screen = tmux.wait_text(f"Output group {shown} of {shown}")
    assert "stdout:" in screen and "servers (1):" in screen
    tmux.keys("Home")
    tmux.keys("p")
    tmux.wait_text(f"Output group {shown - 1} of {shown}")
    # w: every group to a file, where the operator says (the default is offered in the current directory)
    target = tmp_path / "outputs.txt"
    tmux.keys("w")
    tmux.wait(lambda s: re.search(r"wsam-job-\w+-outputs-[\d-]+\.txt", s) is not None, "the default path")
    tmux.keys("C-u")
    tmux.type(str(target))
    tmux.keys("Enter")
    tmux.wait_text(f"Wrote {shown} output groups ({shown} servers) to")
    written = target.read_text()
    assert written.count("=== Group ") == shown and written.count("--- stdout ---") == shown
    tmux.keys("Escape")
    tmux.wait_text("Outputs:")
    assert f"{EXITED}0" in tmux.quit_console()


# ---- keys apply in the order typed (issue 10, item 3) --------------------------------------------------
# One console for all the tries: each try ends with `a` (mark what is shown) and is undone with `u`.

TRIES = 50
MARKS = re.compile(r"([\d,]+) shown · ([\d,]+) marked")


@pytest.fixture(scope="module")
def demo_console(tmp_path_factory):
    require_tmux()
    tmp_path = tmp_path_factory.mktemp("keys")
    session = Tmux(tmp_path, "keys")
    session.start(wsam_argv("--demo"), console_env(tmp_path))
    total, _ = demo_counts()
    session.wait(lambda s: f"{total:,} total" in header(s) and "│ online │" in header(s), "the refreshed fleet", 60)
    yield session
    session.stop()


def marked_result(tmux: Tmux) -> tuple[str, int, int]:
    """(the filter in the header, shown, marked) once `a` has marked what is shown — or what the screen says
    after 5 s if it never did (a key went elsewhere: that try is wrong)."""
    def settled(screen: str) -> bool:
        m = MARKS.search(header(screen))
        return bool(m) and m.group(2) != "0" and table_has_keys(screen)

    try:
        screen = tmux.wait(settled, "the marks", timeout=5)
    except AssertionError:
        screen = tmux.screen()
    top = header(screen)
    m = MARKS.search(top)
    shown, marked = (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))) if m else (-1, -1)
    found = re.search(r"filter: (.*?) │", top)
    return (found.group(1) if found else ""), shown, marked


def unmark(tmux: Tmux) -> None:
    tmux.keys("u")
    tmux.wait(lambda s: "· 0 marked" in header(s) and table_has_keys(s), "the marks cleared")


def test_keys_sent_one_write_each_apply_in_order(demo_console):
    """`/`, 40 backspaces, a filter, enter and `a`, each key its own write (as a person types over a slow
    link): the bar holds exactly that filter, and `a` marks what it shows. Alternating filters, so that the
    backspaces have the last one to erase (a late backspace used to eat a character typed after it)."""
    tmux = demo_console
    wrong = []
    for i in range(TRIES):
        text = ("kind:arc state:connected", "name:api-dev-001")[i % 2]
        tmux.keys("/")
        for _ in range(40):
            tmux.keys("BSpace")
        for ch in text:
            tmux.type(ch)
        tmux.keys("Enter")
        tmux.keys("a")
        got, shown, marked = marked_result(tmux)
        if got != text or marked != shown or marked <= 0:
            wrong.append((i, got, shown, marked))
        unmark(tmux)
    assert not wrong, f"{len(wrong)} of {TRIES} tries wrong: {wrong[:5]}"


def test_keys_sent_in_one_burst_apply_in_order(demo_console):
    """`/`, ctrl+u, `kind:arc`, enter and `a` in one write: `a` marks the Arc servers the filter shows (ctrl+u
    applied after the text used to erase it, and `a` then marked every server)."""
    tmux = demo_console
    _, arcs = demo_counts()
    wrong = []
    for i in range(TRIES):
        tmux.keys("/", "C-u", "kind:arc", "Enter", "a")
        got, shown, marked = marked_result(tmux)
        if (got, shown, marked) != ("kind:arc", arcs, arcs):
            wrong.append((i, got, shown, marked))
        unmark(tmux)
        tmux.keys("/", "C-u", "Enter")  # no filter for the next try
        tmux.wait(lambda s: "filter:" not in header(s) and table_has_keys(s), "the filter cleared")
    assert not wrong, f"{len(wrong)} of {TRIES} tries wrong: {wrong[:5]}"


# ---- the scope: a tenant taken out of scope is brought back without a restart (issue 10, item 5) --------

def demo_tenants() -> list[str]:
    """The demo's tenant ids, in the order of its subscriptions (Contoso's first, then Fabrikam's)."""
    fleet = json.loads(DEMO_FLEET.read_text(encoding="utf-8"))
    return list(dict.fromkeys(s["tenantId"] for s in fleet["subscriptions"]))


def test_a_tenant_taken_out_of_scope_comes_back_with_its_servers(tmux, tmp_path):
    total, _ = demo_counts()
    tmux.start(wsam_argv("--demo"), console_env(tmp_path))
    tmux.wait(lambda s: f"{total:,} total" in header(s) and "│ online │" in header(s), "the refreshed fleet", 60)
    assert "2 tenants · 3 subscriptions" in header(tmux.screen())
    # :tenant, untick Fabrikam (the second row), enter: the scope is Contoso's two subscriptions
    open_prompt(tmux, ":", "command (tab completes)")
    tmux.type("tenant")
    tmux.keys("Enter")
    tmux.wait_text("Scope: choose tenants")
    tmux.keys("Down", "Space")
    tmux.wait_text("2 subscriptions selected")
    tmux.keys("Enter")
    screen = tmux.wait(lambda s: "1 tenant · 2 subscriptions" in header(s) and "│ online │" in header(s)
                       and table_has_keys(s), "the narrowed scope refreshed", 60)
    narrowed = int(re.search(r"([\d,]+) total", header(screen)).group(1).replace(",", ""))
    assert 0 < narrowed < total
    # :tenant again lists both tenants, Fabrikam unticked; :subs lists all three subscriptions
    open_prompt(tmux, ":", "command (tab completes)")
    tmux.type("tenant")
    tmux.keys("Enter")
    screen = tmux.wait_text("Scope: choose tenants")
    contoso, fabrikam = demo_tenants()
    assert re.search(rf"\[x\] .* {contoso} ", screen) and re.search(rf"\[ \] .* {fabrikam} ", screen), screen
    tmux.keys("Escape")
    tmux.wait(table_has_keys, "the table again")
    open_prompt(tmux, ":", "command (tab completes)")
    tmux.type("subs")
    tmux.keys("Enter")
    screen = tmux.wait_text("Scope: choose subscriptions")
    assert re.search(r"\[ \] Fabrikam Hybrid .* out of scope ", screen), screen
    assert len(re.findall(r"\[x\] Contoso ", screen)) == 2, screen
    # a: every subscription, enter: Fabrikam's servers are back
    tmux.keys("a")
    tmux.wait_text("3 subscriptions selected")
    tmux.keys("Enter")
    tmux.wait(lambda s: f"{total:,} total" in header(s) and "2 tenants · 3 subscriptions" in header(s)
              and "│ online │" in header(s), "every server again", 60)
    assert f"{EXITED}0" in tmux.quit_console()


# ---- s sorts by the columns as drawn (issue 10, item 14) ------------------------------------------------

def sort_arrow_x(screen: str) -> int:
    """The column of the sort arrow in the table's header line (-1: not on screen)."""
    for line in screen.splitlines()[:5]:
        if "Name" in line and ("▲" in line or "▼" in line):
            return max(line.find("▲"), line.find("▼"))
    return -1


def test_s_walks_the_sort_arrow_left_to_right_over_the_columns_on_screen(tmux, tmp_path):
    tmux.start(wsam_argv("--demo"), console_env(tmp_path), size=(100, 30))
    tmux.wait(lambda s: "refreshed" in s and "│ online │" in header(s) and table_has_keys(s), "the refreshed fleet", 60)
    xs = []
    for _ in range(3):  # Kind, State, Cov: the columns right of Name, in the order drawn
        before = xs[-1] if xs else 0
        tmux.keys("s")
        screen = tmux.wait(lambda s, before=before: sort_arrow_x(s) > before, "the arrow one column on")
        xs.append(sort_arrow_x(screen))
    assert xs == sorted(xs) and len(set(xs)) == 3, xs
    assert "Cov▲" in tmux.screen()
    tmux.keys("S")
    tmux.wait_text("Cov▼")
    assert f"{EXITED}0" in tmux.quit_console()


# ---- keys typed ahead of a screen go to that screen ----------------------------------------------------

def test_keys_sent_with_a_screen_opening_key_go_to_the_screen_it_opens(tmux, tmp_path):
    """Each step of the jobs flow as one write, keys typed ahead of the screen they are for: the script goes
    into the Run Command form that enter opens (its first letters used to reach the menu being closed), the
    count into the plan's field, and J, typed after the enter that starts the job, opens the jobs pane (it
    used to land in the count field)."""
    env = console_env(tmp_path)
    env["WSAM_DEMO_LRO_SECONDS"] = "1"
    tmux.start(wsam_argv("--demo"), env)
    tmux.wait(lambda s: "refreshed" in s and "│ online │" in header(s), "the refreshed fleet", 60)
    tmux.keys("/", "C-u", "kind:arc state:connected", "Enter", "a")
    screen = tmux.wait(lambda s: re.search(r"│ ([\d,]+) shown · \1 marked", header(s)) is not None
                       and "filter: kind:arc" in header(s) and table_has_keys(s), "the connected Arc servers marked")
    shown = int(re.search(r"│ ([\d,]+) shown", header(screen)).group(1).replace(",", ""))
    assert shown > 10  # above the threshold: the plan asks for the count
    tmux.keys("o", "Down", "Down", "Down", "Enter", "hostname")  # Run Command, the fourth action
    screen = tmux.wait(lambda s: "Script (PowerShell)" in s and "hostname" in s, "the script in the form")
    assert re.search(r"▊ 1  hostname\s", screen), screen
    tmux.keys("C-g", str(shown), "Enter", "J")
    screen = tmux.wait(lambda s: f"of {shown} ended" in s and "Run Command: hostname" in s, "the jobs pane")
    assert "Type exactly" not in screen
    tmux.wait_text(f"{shown} of {shown} ended", 60)
    assert f"{EXITED}0" in tmux.quit_console()
