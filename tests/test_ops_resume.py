"""Never lose, never double: a headless job killed with SIGKILL and resumed; the headless commands end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.ops_support import (
    SECRET,
    accepted_writes_by_path,
    bulk_fleet,
    cli_env,
    journal_lines,
    scan_for,
    writes,
)
from wsam_tui.cli import main
from wsam_tui.ops.journal import Journal


def endpoint(running) -> list[str]:
    return ["--endpoint", running.base_url, "--ca-bundle", str(running.ca_path)]


def test_a_job_killed_midway_and_resumed_tracks_every_target_and_sends_nothing_twice(make_sim, tmp_path, monkeypatch,
                                                                                     capsys):
    running = make_sim(bulk_fleet(40, arc_share=0.5), lro_seconds=2.0, latency_ms=60, throttle=False, graph_quota=False)
    env = {**os.environ, **cli_env(tmp_path), "WSAM_PARAM_Token": SECRET}
    child = subprocess.Popen(
        [sys.executable, "-m", "wsam_tui.cli", "run-command", *endpoint(running), "-q", "name:bulk", "--yes",
         "--concurrency", "4", "--script", "param($Token)\nhostname", "--protected-parameter", "Token"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    jobs_dir = tmp_path / "state" / "jobs"
    deadline = time.monotonic() + 60
    accepted = 0
    while time.monotonic() < deadline and child.poll() is None:
        files = list(jobs_dir.glob("*.jsonl")) if jobs_dir.is_dir() else []
        if files:
            accepted = files[0].read_text().count('"t":"accepted"')
            if accepted >= 12:
                break
        time.sleep(0.02)
    assert child.poll() is None, f"the job ended before it could be killed: {child.communicate()}"
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    (job_file,) = jobs_dir.glob("*.jsonl")
    job_id = job_file.stem
    before = Journal(jobs_dir).load(job_id)
    assert before.unfinished and 12 <= accepted < 40
    assert [j.id for j in Journal(jobs_dir).unfinished()] == [job_id], "the interrupted job is listed as unfinished"
    time.sleep(0.5)  # what was in flight lands (a restart takes longer than that)

    for key, value in cli_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WSAM_PARAM_Token", SECRET)
    code = main(["jobs", "resume", job_id, *endpoint(running)])
    out = capsys.readouterr()
    assert code == 0, out.err
    job = Journal(jobs_dir).load(job_id)
    assert not job.unfinished and {t.state for t in job.targets.values()} == {"succeeded"}
    assert len(job.targets) == 40 and all(t.output and t.output["stdout"].strip() for t in job.targets.values())
    counts = accepted_writes_by_path(running)
    expected = {f"{t.target.id}/runCommands/wsam-{job_id}".lower() for t in job.targets.values()}
    assert set(counts) == expected, "every target got its Run Command"
    assert [p for p, n in counts.items() if n > 1] == [], "no Run Command was submitted twice"
    assert scan_for(tmp_path / "state", SECRET) == []
    code = main(["jobs", "show", job_id])
    shown = capsys.readouterr().out
    assert code == 0 and "40 server(s), exit code 0" not in shown  # one group per hostname: outputs differ
    assert "40 succeeded" in shown


def test_ctrl_c_cancels_a_headless_job_and_waits_for_what_was_sent(make_sim, tmp_path):
    running = make_sim(bulk_fleet(30), lro_seconds=1.0, latency_ms=60, throttle=False, graph_quota=False)
    child = subprocess.Popen(
        [sys.executable, "-m", "wsam_tui.cli", "tags", "add", "batch=7", *endpoint(running), "-q", "name:bulk", "--yes",
         "--concurrency", "2", "--confirm", "30"],
        env={**os.environ, **cli_env(tmp_path)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jobs_dir = tmp_path / "state" / "jobs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        files = list(jobs_dir.glob("*.jsonl")) if jobs_dir.is_dir() else []
        if files and files[0].read_text().count('"t":"accepted"') >= 4:
            break
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 3, err
    assert "cancelling: nothing more is sent" in err
    (job_file,) = jobs_dir.glob("*.jsonl")
    job = Journal(jobs_dir).load(job_file.stem)
    states = [t.state for t in job.targets.values()]
    sent = sum(1 for e in writes(running) if e["status"] < 300)
    assert not job.unfinished and states.count("succeeded") == sent >= 4 and states.count("cancelled") == 30 - sent > 0
    assert any(a["event"] == "job-cancelled" for a in map(json.loads, (tmp_path / "state" / "audit.jsonl").open()))


def test_headless_extension_install_prints_the_plan_and_exit_code_tells_failures(make_sim, tmp_path, monkeypatch,
                                                                                capsys):
    from tests.fleetbuilder import scenario_fleet

    running = make_sim(scenario_fleet(), lro_seconds=0.2, throttle=False, graph_quota=False)
    for key, value in cli_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    args = ["extension", "install", "mde", *endpoint(running), "-q", "name:web OR name:fs"]
    assert main(args) == 1, "without --yes and without a terminal nothing is sent"
    out = capsys.readouterr()
    assert "Plan " in out.out and "az vm extension set" in out.out and "add --yes" in out.err
    assert "skipped (1): already installed" in out.out and "Arc agent is Disconnected" in out.out
    assert writes(running) == []
    code = main([*args, "--yes"])
    out = capsys.readouterr()
    assert code == 3, "web-02 fails (its fleet entry fails MDE.Windows), so not every target succeeded"
    assert "web-02: failed VMExtensionProvisioningError" in out.err
    job_id = json.loads((tmp_path / "state" / "audit.jsonl").read_text().splitlines()[0])["job"]
    assert main(["jobs", "list"]) == 0 and job_id in capsys.readouterr().out
    # retry-failed sends only to the failure (it fails again: the fleet says so) and nothing else.
    sent = len(writes(running))
    assert main(["jobs", "retry", job_id, *endpoint(running)]) == 3
    again = writes(running)[sent:]
    assert [e["path"].split("/")[-3] for e in again if e["status"] < 300] == ["web-02"]
    lines = journal_lines(tmp_path / "state" / "jobs" / f"{job_id}.jsonl")
    assert [r["t"] for r in lines].count("retry") == 1


def test_headless_usage_errors_send_nothing(make_sim, tmp_path, monkeypatch, capsys):
    from tests.fleetbuilder import scenario_fleet

    running = make_sim(scenario_fleet(), lro_seconds=0.2, throttle=False, graph_quota=False)
    for key, value in cli_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    assert main(["power", "start", *endpoint(running)]) == 2  # neither --filter nor --all
    assert main(["power", "start", *endpoint(running), "-q", "kindd:vm", "--yes"]) == 2
    assert "unknown field" in capsys.readouterr().err
    assert main(["patch", "install", *endpoint(running), "--all", "--max-duration", "4 hours", "--yes"]) == 2
    assert main(["tags", "add", *endpoint(running), "--all", "novalue", "--yes"]) == 2
    assert main(["power", "start", *endpoint(running), "-q", "name:nothing-like-this", "--yes"]) == 4
    assert main(["run-command", *endpoint(running), "--all", "--script", "x", "--protected-parameter", "a=b"]) == 2
    assert main(["power", "restart", *endpoint(running), "--all", "--readonly", "--yes"]) == 1
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text('protected_subscriptions = ["Production"]\n')
    assert main(["power", "restart", *endpoint(running), "-q", "name:web-00", "--yes"]) == 1
    assert "add --confirm 1" in capsys.readouterr().err
    assert writes(running) == []
    assert main(["power", "restart", *endpoint(running), "-q", "name:web-00", "--yes", "--confirm", "1"]) == 0
    assert [e["path"].rsplit("/", 2)[-2:] for e in writes(running)] == [["web-00", "restart"]]
