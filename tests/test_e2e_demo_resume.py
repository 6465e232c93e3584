"""Issue 5's done-when, for real, keys only, in tmux at 200x50: on the demo fleet, mark every server missing
Azure Monitor, install the agent on them, watch the job, SIGKILL the console midway, start it again, and
see the job resume and end, the Monitor cells change, and — by the simulator's request log — no extension
sent twice. Then associate a data collection rule to the servers still missing Monitor: their cells turn on."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.tmux_support import SGR, Tmux, console_env, require_tmux, wsam_argv
from wsam_tui.fleet.model import State
from wsam_tui.sim.run import DEMO_FLEET
from wsam_tui.ui import glyphs as g

AMA_PATH = "/extensions/azuremonitorwindowsagent"
LRO_SECONDS = 8  # long enough to kill the console while the operations run, short enough for a test


def header(screen: str) -> str:
    return screen.splitlines()[0] if screen else ""


def shown(screen: str) -> int:
    m = re.search(r"([\d,]+) shown", header(screen))
    return int(m.group(1).replace(",", "")) if m else -1


def table_has_keys(screen: str) -> bool:
    """The footer lists the table's keys (not a prompt's, nor the jobs pane's)."""
    lines = SGR.sub("", screen).splitlines()
    return bool(lines) and "q Quit" in lines[-1] and "a Mark shown" in lines[-1] and "esc Back" not in lines[-1]


def fleet_facts() -> tuple[set[str], set[str], set[str]]:
    """From the demo fleet file: (machines with a DCR association, machines ARM refuses extensions on,
    machines where the agent's install is accepted and then fails)."""
    fleet = json.loads(DEMO_FLEET.read_text(encoding="utf-8"))
    with_dcr, refused, fails = set(), set(), set()
    for r in fleet["resources"]:
        rid, rtype = r["id"].lower(), r["type"].lower()
        if rtype == "microsoft.insights/datacollectionruleassociations":
            with_dcr.add(rid.split("/providers/microsoft.insights/")[0])
        config = (r.get("properties") or {}).get("agentConfiguration") or {}
        if rtype == "microsoft.hybridcompute/machines" and str(config.get("extensionsEnabled", "true")).lower() == "false":
            refused.add(rid)
    for mid, entry in ((fleet.get("simulation") or {}).get("machines") or {}).items():
        if any("azuremonitorwindowsagent" in str(t).lower() for t in entry.get("failExtensionTypes") or []):
            fails.add(mid.lower())
    return with_dcr, refused, fails


def journal(state_dir: Path) -> tuple[dict, list[dict]]:
    """The demo job's header and its records (a line cut by the kill is not a record)."""
    files = list((state_dir / "demo" / "jobs").glob("*.jsonl"))
    if len(files) != 1:
        return {}, []
    records = []
    for line in files[0].read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return (records[0] if records and records[0].get("t") == "job" else {}), records[1:]


def final_states(records: list[dict]) -> dict[str, str]:
    return {r["target"].lower(): r["state"] for r in records if r.get("t") == "done"}


def console_pid(tmux: Tmux) -> int:
    """The console: the python child of the pane's shell."""
    shell = tmux.run("display-message", "-t", tmux.target, "-p", "#{pane_pid}").strip()
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", shell], capture_output=True, text=True, check=False).stdout
    pids = [int(line.split()[0]) for line in out.splitlines() if "wsam_tui.cli" in line]
    assert len(pids) == 1, out
    return pids[0]


def status_line(screen: str) -> str:
    return next((line.strip() for line in screen.splitlines() if " servers, refreshed " in line), "")


def filter_bar(screen: str) -> str:
    return next((line.strip() for line in reversed(screen.splitlines()) if line.startswith("/ ")), "")


def apply_filter(tmux: Tmux, text: str) -> str:
    """/ opens the filter bar, the old text is cleared, the new one typed and, once the bar shows it, entered.
    (A person looks before pressing enter: keys sent while the bar takes the focus can be lost, see
    test_e2e_tmux.py; then the bar is closed and the filter typed again.)"""
    for _ in range(3):
        tmux.keys("/")
        tmux.wait(lambda s: not table_has_keys(s), "the filter bar to take the keys")
        tmux.keys("C-u")
        tmux.type(text)
        try:
            tmux.wait(lambda s: filter_bar(s).startswith(f"/ {text}"), f"the bar to show {text!r}", timeout=3)
        except AssertionError:
            tmux.keys("Escape")
            tmux.wait(table_has_keys, "the table after the bar")
            continue
        tmux.keys("Enter")
        # the header shortens a long filter
        return tmux.wait(lambda s: f"filter: {text[:40]}" in header(s) and table_has_keys(s), f"the filter {text!r}")
    raise AssertionError(f"the filter bar never showed {text!r}; the screen:\n{tmux.screen()}")


def monitor_cells(screen: str) -> dict[str, str]:
    """Server name -> the glyph in its Monitor column, for the rows on the screen."""
    lines = screen.splitlines()
    names_row = next(i for i, line in enumerate(lines) if " Name " in line and " Mon " in line)
    col = lines[names_row].index(" Mon ") + 2  # the glyph sits under the middle letter
    cells = {}
    for line in lines[names_row + 1:]:
        m = re.match(r"^(?:\[x\]|   ) (\S+)\s+│", line)
        if m and len(line) > col:
            cells[m.group(1)] = line[col]
    return cells


@pytest.fixture
def sessions(tmp_path):
    require_tmux()
    made: list[Tmux] = []

    def make(name: str) -> Tmux:
        made.append(Tmux(tmp_path, name))
        return made[-1]

    yield make
    for session in made:
        session.stop()


def test_the_demo_job_survives_a_killed_console_and_the_matrix_changes(sessions, tmp_path):
    env = console_env(tmp_path)
    request_log = tmp_path / "requests.jsonl"
    env.update({"WSAM_DEMO_LRO_SECONDS": str(LRO_SECONDS), "WSAM_DEMO_REQUEST_LOG": str(request_log)})
    state_dir = Path(env["WSAM_STATE_DIR"])
    with_dcr, refused, fails = fleet_facts()

    first = sessions("first")
    first.start(wsam_argv("--demo"), env)
    first.wait(lambda s: "│ online │" in header(s) and status_line(s) and table_has_keys(s), "the refreshed fleet", 60)
    monitored_before = shown(apply_filter(first, "has:monitor"))
    missing = shown(apply_filter(first, "missing:monitor"))
    assert missing > 20
    first.keys("a")
    first.wait_text(f"{missing:,} shown · {missing:,} marked")

    # o: the actions; the first entry is the extension install, its form defaults to the Azure Monitor agent
    first.keys("o")
    first.wait_text("Install extension — Install a Windows extension")
    first.keys("Enter")
    first.wait_text("Azure Monitor agent (Microsoft.Azure.Monitor.AzureMonitorWindowsAgent")
    first.keys("C-g")
    plan = first.wait(lambda s: re.search(r"(\d+) target\(s\), (\d+) skipped", s) is not None, "the plan")
    targets, skipped = map(int, re.search(r"(\d+) target\(s\), (\d+) skipped", plan).groups())
    assert targets + skipped == missing and targets > 10
    first.wait_text(f"Type {targets}")
    first.type(str(targets))
    first.keys("Enter")
    first.wait_text(f"{targets} target(s). J shows it.")
    first.keys("J")
    first.wait(lambda s: re.search(rf"\d+ of {targets} ended", s) is not None, "the jobs pane")

    # kill the console (and the demo's ARM in it) once ARM accepted some targets and before they finish
    deadline = time.monotonic() + 20
    while True:
        head, records = journal(state_dir)
        accepted = {r["target"] for r in records if r.get("t") == "accepted"}
        if len(accepted) >= 3:
            break
        assert time.monotonic() < deadline, "no target was accepted"
        time.sleep(0.02)
    os.kill(console_pid(first), signal.SIGKILL)
    first.wait_text("WSAM-EXITED rc=137")
    head, records = journal(state_dir)
    at_kill = final_states(records)
    sent = {r["target"].lower() for r in records if r.get("t") == "intent"}
    answered = {r["target"].lower() for r in records if r.get("t") == "accepted"} | set(at_kill)
    print(f"at the kill: {len(answered)} answered, {len(sent - answered)} sent and not answered, "
          f"{targets - len(sent)} not sent, of {targets}")
    assert head["action"] == "extension.install" and len(head["targets"]) == targets
    assert sum(s == "succeeded" for s in at_kill.values()) < targets // 2, "the job had ended already"

    # start again with the same directories: the job resumes and ends
    second = sessions("second")
    second.start(wsam_argv("--demo"), env)
    second.wait(lambda s: "│ online │" in header(s), "the restarted console", 60)
    second.wait_text("Resuming 1 unfinished job(s)")
    second.keys("J")
    ids = {t["target"]["id"].lower() for t in head["targets"]}
    expected_failed = ids & (refused | fails)
    done = second.wait(lambda s: f"{targets} of {targets} ended" in s, "the resumed job's end", LRO_SECONDS * 4 + 30)
    assert f"{targets - len(expected_failed)} succeeded" in done
    _, records = journal(state_dir)
    states = final_states(records)
    assert states == {i: ("failed" if i in expected_failed else "succeeded") for i in ids}

    # each server's extension PUT was accepted once: none lost, none sent twice (one that ARM refused
    # outright, extensions being disabled on the machine, has no accepted PUT)
    puts = Counter()
    for line in request_log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry["method"] == "PUT" and entry["path"].lower().endswith(AMA_PATH) and entry["status"] < 300:
            puts[entry["path"].lower().removesuffix(AMA_PATH)] += 1
    assert puts == Counter({i: 1 for i in ids - refused})

    # the matrix: every target now has the agent; with a DCR association its Monitor cell is on (without
    # one it is partial: the agent has no rule to collect under — the catalog's install does not add one)
    second.keys("Escape")
    second.wait(table_has_keys, "the table again")
    greened = {i for i in ids - expected_failed if i in with_dcr}
    assert greened
    names = {t["target"]["id"].lower(): t["target"]["name"] for t in head["targets"]}
    sample = sorted(names[i] for i in greened)[:6] + sorted(names[i] for i in ids - expected_failed - greened)[:3]
    on, partial = g.UNICODE[State.ON], g.UNICODE[State.PARTIAL]
    expected = {n: on if n in {names[i] for i in greened} else partial for n in sample}
    apply_filter(second, " OR ".join(sample))
    # each row is re-read through ARM as its target succeeds; the last ones may still be on their way
    second.wait(lambda s: {n: monitor_cells(s).get(n) for n in sample} == expected, f"the Monitor cells {expected}")

    # after a refresh (r) the filters count the change too
    status = status_line(second.screen())
    second.keys("r")
    second.wait(lambda s: status_line(s) != status and "refreshed" in status_line(s), "the refresh", 60)
    assert shown(apply_filter(second, "has:monitor")) == monitored_before + len(greened)

    # the operator's second half: associate a rule to the servers still missing Monitor; with the agent they turn on
    missing = shown(apply_filter(second, "missing:monitor"))
    second.keys("a")
    second.wait_text(f"{missing:,} shown · {missing:,} marked")
    second.keys("o")
    second.wait_text("Install extension — Install a Windows extension")
    second.keys("End", "Up")  # the Monitor group closes the menu: remove, then associate above it
    second.keys("Enter")
    second.wait_text("pick a rule")
    assert "Associate a data collection rule" in second.screen()
    second.keys("Enter")  # open the rule list (the form focuses it), take the first rule
    second.wait_text("dcr-")
    second.keys("Down", "Enter")
    second.wait(lambda s: "pick a rule" not in s, "the rule to be picked")
    second.keys("C-g")
    plan = second.wait(lambda s: re.search(r"(\d+) target\(s\), (\d+) skipped", s) is not None, "the rule's plan")
    targets = int(re.search(r"(\d+) target\(s\), (\d+) skipped", plan).group(1))
    assert targets > 0
    if targets > 10:
        second.wait_text(f"Type {targets}")
        second.type(str(targets))
    second.keys("Enter" if targets > 10 else "y")
    second.wait_text(f"{targets} target(s). J shows it.")
    apply_filter(second, " OR ".join(sample))
    second.wait(lambda s: {n: monitor_cells(s).get(n) for n in sample} == dict.fromkeys(sample, on),
                f"every Monitor cell of {sample} to turn on", 60)
