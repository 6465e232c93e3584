"""`wsam-tui --demo` for real, in tmux at 200x50: the fleet arrives, a filter narrows it, marks, the details
pane with its "as of" line, a :kql answer, a live theme switch seen in the terminal's colours, and q quits —
the process ends and the terminal's title was never touched."""

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
    (Keys that arrive in the same burst as the opening key go to the table instead: see the report.)"""
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
