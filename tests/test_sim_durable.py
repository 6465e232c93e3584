"""The simulator's durable state (sim/durable.py): what it answered survives SIGKILL, operations in flight
finish after a restart, the time base holds, damage is set aside with a notice, and no secret is written."""

from __future__ import annotations

import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fleetbuilder import scenario_fleet, vm_id
from wsam_tui.sim.durable import CHANGES_FILE, STATE_FILE, DurableState
from wsam_tui.sim.state import SimConfig

SECRET = "s3cr3t-workspace-key-7f1c"
AMA = {"publisher": "Microsoft.Azure.Monitor", "type": "AzureMonitorWindowsAgent", "typeHandlerVersion": "1.22"}


class SimProcess:
    """`wsam-tui sim --state DIR` in a child process, killed with SIGKILL (no chance to clean up)."""

    def __init__(self, fleet_file: Path, state: Path, tmp_path: Path, lro_seconds: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wsam_tui.cli", "sim", "--fleet", str(fleet_file), "--state", str(state),
             "--lro-seconds", str(lro_seconds), "--no-throttle", "--ca-dir", str(tmp_path / "ca")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = {}
        while "CA_BUNDLE" not in lines:
            line = self.proc.stdout.readline()
            assert line, f"the simulator did not start: {self.proc.stderr.read()}"
            if "=" in line:
                key, _, value = line.strip().partition("=")
                lines[key] = value
        self.base_url, self.ca = lines["BASE_URL"], lines["CA_BUNDLE"]
        self.client = httpx.Client(base_url=self.base_url, verify=ssl.create_default_context(cafile=self.ca), headers={"Authorization": "Bearer t"},
                                   params={"api-version": "2024-07-01"}, timeout=10)

    def kill(self) -> None:
        self.client.close()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def fleet_file(tmp_path) -> Path:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(scenario_fleet()), encoding="utf-8")
    return path


def test_an_accepted_extension_install_survives_sigkill_and_finishes_after_the_restart(fleet_file, tmp_path):
    state = tmp_path / "arm"
    machine = vm_id("web-03")
    ext_path = f"{machine}/extensions/AzureMonitorWindowsAgent"
    first = SimProcess(fleet_file, state, tmp_path, lro_seconds=2.0)
    try:
        put = first.client.put(ext_path, json={"location": "westeurope", "properties": {
            **AMA, "settings": {"workspaceId": "ws-1"}, "protectedSettings": {"workspaceKey": SECRET}}})
        assert put.status_code == 201, put.text
        operation = urlsplit(put.headers["Azure-AsyncOperation"])
        assert first.client.get(ext_path).json()["properties"]["provisioningState"] == "Creating"
    finally:
        first.kill()  # right after the answer: nothing had a chance to be saved later

    second = SimProcess(fleet_file, state, tmp_path, lro_seconds=2.0)
    try:
        doc = second.client.get(ext_path).json()
        assert doc["properties"]["provisioningState"] in ("Creating", "Succeeded")  # it is still there
        assert doc["properties"]["settings"] == {"workspaceId": "ws-1"}
        deadline = time.monotonic() + 15
        while (status := second.client.get(operation.path).json()["status"]) == "InProgress":
            assert time.monotonic() < deadline, "the operation never finished after the restart"
            time.sleep(0.2)
        assert status == "Succeeded"
        assert second.client.get(ext_path).json()["properties"]["provisioningState"] == "Succeeded"
        listed = second.client.get(f"{machine}/extensions").json()["value"]
        assert [e["name"] for e in listed] == ["AzureMonitorWindowsAgent"]
    finally:
        second.kill()

    # the secret never reached the disk; the files are private
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in state.iterdir():
        assert SECRET not in path.read_text(encoding="utf-8", errors="replace"), path.name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def _open(directory: Path, fleet: dict | None = None) -> DurableState:
    durable = DurableState(directory)
    durable.open(lambda: json.loads(json.dumps(fleet or dated_fleet())), fleet_id="test", config=SimConfig(lro_seconds=0))
    return durable


def dated_fleet() -> dict:
    fleet = scenario_fleet()
    fleet["generator"] = {"generatedAt": "2025-01-01T00:00:00.0000000Z"}
    return fleet


def _last_change(durable: DurableState) -> str:
    doc = durable.state.get(vm_id("web-01"))
    return doc["properties"]["instanceView"]["statuses"][0].get("time", "")


def test_a_restart_keeps_the_time_base_and_the_changes(tmp_path):
    fleet = dated_fleet()
    fleet["resources"][1]["properties"]["instanceView"]["statuses"][0]["time"] = "2024-12-31T00:00:00.0000000Z"
    first = _open(tmp_path, fleet)
    rebased = _last_change(first)
    assert not rebased.startswith("2024-12-31")  # shifted towards now
    first.state.get(vm_id("web-02"))["tags"] = {"env": "test"}
    first.state.reindex(first.state.get(vm_id("web-02")))
    assert first.flush() > 0
    assert first.flush() == 0  # nothing new
    first.close()
    time.sleep(0.01)
    second = _open(tmp_path, fleet)
    assert _last_change(second) == rebased  # not rebased to this start's time: ages do not jump
    assert second.state.get(vm_id("web-02"))["tags"] == {"env": "test"}
    second.close()


def test_a_damaged_state_is_set_aside_with_a_notice_and_the_fleet_starts_afresh(tmp_path):
    first = _open(tmp_path)
    first.state.delete(vm_id("web-04"))
    first.flush()
    first.state.get(vm_id("web-05"))["tags"] = {"k": "v"}
    first.state.reindex(first.state.get(vm_id("web-05")))
    first.flush()
    first.close()
    changes = tmp_path / CHANGES_FILE
    lines = changes.read_text(encoding="utf-8").splitlines()
    changes.write_text(lines[0][:40] + "\n" + lines[1] + "\n", encoding="utf-8")  # a middle line cut short

    second = _open(tmp_path)
    assert len(second.notices) == 1 and "could not be read" in second.notices[0] and "Starting afresh" in second.notices[0]
    assert second.state.get(vm_id("web-04")) is not None  # the fresh fleet
    assert [p.name for p in tmp_path.glob(f"{CHANGES_FILE}.damaged-*")]  # set aside, not deleted
    second.close()

    (tmp_path / STATE_FILE).write_text("{not json", encoding="utf-8")
    third = _open(tmp_path)
    assert third.notices and STATE_FILE in third.notices[0]
    third.close()


def test_a_write_cut_by_a_kill_is_dropped_quietly(tmp_path):
    first = _open(tmp_path)
    first.state.get(vm_id("web-05"))["tags"] = {"k": "v"}
    first.state.reindex(first.state.get(vm_id("web-05")))
    first.flush()
    first.close()
    with open(tmp_path / CHANGES_FILE, "a", encoding="utf-8") as fh:
        fh.write('{"docs": [{"id": "/subscriptions/x')  # never answered: the process died mid-line
    second = _open(tmp_path)
    assert second.notices == []
    assert second.state.get(vm_id("web-05"))["tags"] == {"k": "v"}
    second.close()


def test_a_second_process_on_the_same_state_serves_a_copy_and_says_so(tmp_path):
    first = _open(tmp_path)
    second = _open(tmp_path)
    assert second.notices and "Another process" in second.notices[0]
    second.state.delete(vm_id("web-04"))
    assert second.flush() == 0
    first.close()
    second.close()


def test_reset_forgets_the_saved_state(tmp_path):
    first = _open(tmp_path)
    first.state.delete(vm_id("web-04"))
    first.flush()
    first.close()
    again = DurableState(tmp_path)
    again.open(dated_fleet, fleet_id="test", reset=True)
    assert again.state.get(vm_id("web-04")) is not None
    again.close()
    assert os.path.getsize(tmp_path / CHANGES_FILE) == 0


def test_many_changes_are_compacted_on_open(tmp_path):
    first = _open(tmp_path)
    for i in range(250):
        doc = first.state.get(vm_id(f"web-0{i % 6}"))
        doc["tags"] = {"round": str(i)}
        first.state.reindex(doc)
        first.flush()
    first.close()
    second = _open(tmp_path)
    second.close()
    assert len((tmp_path / CHANGES_FILE).read_text(encoding="utf-8").splitlines()) == 1
    third = _open(tmp_path)
    assert third.state.get(vm_id("web-03"))["tags"] == {"round": "249"}
    assert third.state.get(vm_id("web-01"))["tags"] == {"round": "247"}
    third.close()


def test_the_demo_session_says_when_its_saved_state_was_damaged_and_serves_on_its_port_again(tmp_path, monkeypatch):
    from wsam_tui.cli import build_parser
    from wsam_tui.console import build_session

    monkeypatch.setenv("WSAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WSAM_STATE_DIR", str(tmp_path / "state"))
    arm = tmp_path / "cache" / "demo-arm"
    arm.mkdir(parents=True)
    (arm / STATE_FILE).write_text('{"format": 1, "fleet": "demo:', encoding="utf-8")  # cut short
    first = build_session(build_parser().parse_args(["--demo"]))
    try:
        assert any("could not be read" in n and "Starting afresh" in n for n in first.info.notices)
        assert first.journal.directory == tmp_path / "state" / "demo" / "jobs"
        port = urlsplit(first.options.endpoint).port
    finally:
        first.close()
    again = build_session(build_parser().parse_args(["--demo-reset"]))
    try:
        assert not any("could not be read" in n for n in again.info.notices)
        assert urlsplit(again.options.endpoint).port == port
    finally:
        again.close()


def test_demo_reset_sets_the_earlier_demo_jobs_aside(tmp_path, monkeypatch):
    """Their operations belong to the forgotten fleet: kept on disk, not resumed against the fresh one."""
    from wsam_tui.cli import build_parser
    from wsam_tui.console import build_session

    monkeypatch.setenv("WSAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WSAM_STATE_DIR", str(tmp_path / "state"))
    jobs = tmp_path / "state" / "demo" / "jobs"
    jobs.mkdir(parents=True)
    (jobs / "job-1.jsonl").write_text('{"t": "job"}\n', encoding="utf-8")
    session = build_session(build_parser().parse_args(["--demo-reset"]))
    try:
        (aside,) = (tmp_path / "state" / "demo").glob("jobs.before-reset-*")
        assert (aside / "job-1.jsonl").read_text(encoding="utf-8") == '{"t": "job"}\n'
        assert session.journal.directory == jobs and not list(session.journal.jobs())
        assert any("set aside" in n and str(aside) in n for n in session.info.notices)
    finally:
        session.close()
    again = build_session(build_parser().parse_args(["--demo"]))  # a plain --demo start moves nothing
    try:
        assert len(list((tmp_path / "state" / "demo").glob("jobs.before-reset-*"))) == 1
    finally:
        again.close()
