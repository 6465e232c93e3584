"""Every action end to end against the simulator, on both kinds where it applies; read-only refuses each at the gate."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.fleetbuilder import arc_id, vm_id
from tests.ops_support import connection, make_engine, servers_of, writes
from wsam_tui.fleet.model import CapabilityState, State
from wsam_tui.ops.catalog import ACTIONS
from wsam_tui.ops.engine import group_outputs
from wsam_tui.ops.gate import ReadOnlyError
from wsam_tui.ops.plan import plan
from wsam_tui.sim.state import completion


@pytest.fixture
async def ops(scenario_sim, tmp_path):
    conn = await connection(scenario_sim)
    yield conn, await servers_of(conn, tmp_path), make_engine(conn, tmp_path)
    await conn.close()


def doc(running, rid: str) -> dict | None:
    return running.call(lambda: running.state.get(rid))


async def run(engine, servers, names, action_id, params=None):
    p = plan(action_id, params or {}, [servers[n] for n in names])
    job = await engine.run(p)
    return p, {t.target.name: t for t in job.targets.values()}, job


async def test_extension_upgrade_then_remove_on_both_kinds(ops, scenario_sim):
    _, servers, engine = ops
    p, done, _ = await run(engine, servers, ["web-00", "fs-00", "fs-01"], "extension.upgrade",
                           {"extension": "ama", "version": "1.30"})
    assert [(s.target.name, s.reason) for s in p.skipped] == [("fs-01", "not installed")]
    assert {n: t.state for n, t in done.items()} == {"web-00": "succeeded", "fs-00": "succeeded"}
    calls = {t.target.name: (t.call.method, t.call.path.rsplit("/", 1)[-1]) for t in p.targets}
    assert calls == {"web-00": ("PATCH", "AzureMonitorWindowsAgent"), "fs-00": ("POST", "upgradeExtensions")}
    for rid in (vm_id("web-00"), arc_id("fs-00")):
        assert doc(scenario_sim, f"{rid}/extensions/AzureMonitorWindowsAgent")["properties"]["typeHandlerVersion"] == "1.30"

    p, done, _ = await run(engine, servers, ["web-00", "fs-00", "web-01"], "extension.remove", {"extension": "ama"})
    assert [(s.target.name, s.reason) for s in p.skipped] == [("web-01", "not installed")]
    assert {t.state for t in done.values()} == {"succeeded"} and len(done) == 2
    assert doc(scenario_sim, f"{vm_id('web-00')}/extensions/AzureMonitorWindowsAgent") is None
    assert doc(scenario_sim, f"{arc_id('fs-00')}/extensions/AzureMonitorWindowsAgent") is None


async def test_patch_assess_and_install_on_both_kinds(ops):
    _, servers, engine = ops
    p, done, _ = await run(engine, servers, ["web-01", "fs-01", "fs-disconnected"], "patch.assess")
    assert [s.target.name for s in p.skipped] == ["fs-disconnected"]
    assert done["web-01"].state == done["fs-01"].state == "succeeded"
    assert {x["kbId"] for x in done["web-01"].result["availablePatches"]} == {"5044281", "5044033", "890830"}
    assert done["fs-01"].result["availablePatchCountByClassification"]["security"] == 1
    p, done, _ = await run(engine, servers, ["web-01", "fs-01"], "patch.install",
                           {"classifications": ["Security", "Critical"], "kb_exclude": ["KB5044033"], "reboot": "Never",
                            "max_duration": "PT1H"})
    body = p.targets[0].call.body
    assert body == {"maximumDuration": "PT1H", "rebootSetting": "Never", "windowsParameters": {
        "classificationsToInclude": ["Security", "Critical"], "kbNumbersToExclude": ["5044033"]}}
    assert done["web-01"].result["installedPatchCount"] == 1 and done["web-01"].result["excludedPatchCount"] == 1
    assert done["fs-01"].result["installedPatchCount"] == 1
    assert "--kb-numbers-to-exclude 5044033" in p.targets[0].az


async def test_tags_add_change_remove_on_both_kinds(ops, scenario_sim, tmp_path):
    conn, servers, engine = ops
    _, done, _ = await run(engine, servers, ["web-00", "fs-00"], "tags.add", {"tags": ["owner=ops team"]})
    assert {t.state for t in done.values()} == {"succeeded"}
    assert doc(scenario_sim, vm_id("web-00"))["tags"] == {"env": "prod", "owner": "ops team"}
    assert doc(scenario_sim, arc_id("fs-00"))["tags"] == {"owner": "ops team"}
    await run(engine, servers, ["web-00", "fs-00"], "tags.change", {"tags": {"env": "test"}})
    assert doc(scenario_sim, vm_id("web-00"))["tags"]["env"] == "test"
    servers = await servers_of(conn, tmp_path, "again")  # plans read the inventory: refresh it, as the console does
    p, done, _ = await run(engine, servers, ["web-00", "fs-00", "fs-01"], "tags.remove", {"tags": ["owner"]})
    assert [(s.target.name, s.reason) for s in p.skipped] == [("fs-01", "has none of these tags")]
    assert "owner" not in doc(scenario_sim, vm_id("web-00"))["tags"]
    assert doc(scenario_sim, arc_id("fs-00"))["tags"] == {"env": "test"}
    assert p.targets[0].az.startswith("az tag update --resource-id")


async def test_identity_enable_on_vms_only(ops, scenario_sim):
    _, servers, engine = ops
    p, done, job = await run(engine, servers, ["web-00", "fs-00"], "identity.enable")
    assert [(s.target.name, s.reason) for s in p.skipped] == [("fs-00", "not applicable to Arc servers")]
    assert done["web-00"].state == "succeeded"
    assert doc(scenario_sim, vm_id("web-00"))["identity"]["type"] == "SystemAssigned"
    assert engine.resource(job.id, vm_id("web-00"))["identity"]["principalId"]


async def test_power_restart_and_deallocate(ops, scenario_sim):
    _, servers, engine = ops
    _, done, _ = await run(engine, servers, ["web-04"], "power.restart")
    assert done["web-04"].state == "succeeded"
    _, done, _ = await run(engine, servers, ["web-05"], "power.deallocate")
    statuses = doc(scenario_sim, vm_id("web-05"))["properties"]["instanceView"]["statuses"]
    assert any(s["code"] == "PowerState/deallocated" for s in statuses)


async def test_a_failing_script_and_a_machine_that_disconnects_after_planning(ops, scenario_sim):
    _, servers, engine = ops
    script = "Write-Error 'disk C: is full'\nexit 3"
    p = plan("run-command", {"script": script}, [servers["web-00"], servers["fs-02"]])

    def disconnect():
        scenario_sim.state.get(arc_id("fs-02"))["properties"]["status"] = "Disconnected"

    scenario_sim.call(disconnect)
    job = await engine.run(p)
    done = {t.target.name: t for t in job.targets.values()}
    assert done["web-00"].state == "failed" and done["web-00"].code == "ExecutionFailed"
    assert done["web-00"].message.startswith("exit code 3") and "disk C: is full" in done["web-00"].message
    assert done["web-00"].output["exitCode"] == 3
    assert done["fs-02"].state == "failed" and done["fs-02"].code == "MachineNotConnected"
    assert "Disconnected" in done["fs-02"].message


@completion("test.patch-install-fails")
def _patch_install_fails(_state, op) -> None:
    op.status = "Failed"
    op.error = {"code": "PatchInstallationFailed", "message": "Windows Update service is disabled"}


async def test_a_post_action_whose_operation_fails_reports_arms_code_and_message(ops, scenario_sim):
    _, servers, engine = ops
    state = scenario_sim.state
    original = state.new_operation

    def failing(**kw):
        if kw["kind"] == "patch.install":
            kw["complete"], kw["complete_args"] = "test.patch-install-fails", {}
        return original(**kw)

    scenario_sim.call(lambda: setattr(state, "new_operation", failing))
    _, done, _ = await run(engine, servers, ["web-01", "fs-01"], "patch.install")
    for name in ("web-01", "fs-01"):
        assert (done[name].state, done[name].code) == ("failed", "PatchInstallationFailed")
        assert done[name].message == "Windows Update service is disabled"


async def test_outputs_are_grouped_and_the_4096_byte_cut_is_flagged(ops):
    _, servers, engine = ops
    names = [f"web-0{i}" for i in range(6)]
    script = "if ((hostname) -like '*-0[0-3]') { 'Running' } else { 'Stopped' }"
    _, _, job = await run(engine, servers, names, "run-command", {"script": script})
    groups = [(g.count, g.stdout.strip(), g.targets) for g in group_outputs(job)]
    assert groups == [(4, "Running", ("web-00", "web-01", "web-02", "web-03")), (2, "Stopped", ("web-04", "web-05"))]
    _, done, job = await run(engine, servers, ["fs-00"], "run-command",
                             {"script": "1..600 | ForEach-Object { \"line $_ of a long answer\" }"})
    (group,) = group_outputs(job)
    assert group.truncated and done["fs-00"].output["truncated"]


def ran_for(output: dict) -> float:
    """Seconds between the run's reported startTime and endTime."""
    from wsam_tui.ops.catalog import parse_time

    return (parse_time(output["endTime"]) - parse_time(output["startTime"])).total_seconds()


@pytest.mark.parametrize("sleeps", ["Start-Sleep 25", "Start-Sleep -Seconds 20; sleep 5",
                                    "Start-Sleep -Milliseconds 25000"])
async def test_a_scripts_sleeps_count_toward_its_run_time(ops, sleeps):
    """The simulator's clock runs fast in tests (lro_seconds 0.2), but the run reports 25 s and more."""
    _, servers, engine = ops
    _, done, _ = await run(engine, servers, ["web-00", "fs-00"], "run-command", {"script": f"{sleeps}; 'awake'"})
    for name in ("web-00", "fs-00"):
        output = done[name].output
        assert (done[name].state, output["executionState"], output["stdout"].strip()) == ("succeeded", "Succeeded", "awake")
        assert 25 <= ran_for(output) < 28, (name, output["startTime"], output["endTime"])


async def test_a_script_that_sleeps_past_its_timeout_ends_timed_out(ops):
    _, servers, engine = ops
    _, done, _ = await run(engine, servers, ["web-00", "fs-00"], "run-command",
                           {"script": "Start-Sleep 45; 'too late'", "timeout": 30})
    for name in ("web-00", "fs-00"):
        t = done[name]
        assert (t.state, t.code, t.output["executionState"]) == ("failed", "ExecutionTimedOut", "TimedOut")
        assert t.message == "timed out after 30 s (the run's timeoutInSeconds)"
        assert ran_for(t.output) == 30


async def test_cancel_stops_dispatch_but_tracks_what_was_sent_and_retry_sends_the_rest(scenario_sim, tmp_path):
    conn = await connection(scenario_sim)
    try:
        servers = await servers_of(conn, tmp_path)
        seen: list[str] = []
        engine = make_engine(conn, tmp_path, write_budget=(3, 4.0), on_event=lambda e: seen.append(e.state))
        targets = [s for s in servers.values() if s.subscription_id.endswith("a") and s.state.lower() in ("running", "connected")]
        p = plan("tags.add", {"tags": ["batch=1"]}, targets)
        assert len(p.targets) >= 8
        task = asyncio.create_task(engine.run(p))
        while engine.live(p.id) is None or sum(t.done for t in engine.live(p.id).targets.values()) < 3:
            await asyncio.sleep(0.01)
        assert engine.cancel(p.id)
        job = await task
        states = [t.state for t in job.targets.values()]
        sent = len(writes(scenario_sim))
        assert "waiting-for-throttle" in seen
        assert states.count("succeeded") == sent >= 3 and states.count("cancelled") == len(states) - sent > 0
        job = await engine.retry_failed(p.id)
        assert {t.state for t in job.targets.values()} == {"succeeded"}
        assert len(writes(scenario_sim)) == len(p.targets), "retry sent only what was cancelled"
    finally:
        await conn.close()



async def test_cancel_stops_targets_waiting_for_the_write_budget_at_once_and_sends_them_nothing(scenario_sim, tmp_path):
    conn = await connection(scenario_sim)
    try:
        servers = await servers_of(conn, tmp_path)
        # Two writes in the bucket, then one every 1,000 s: every other target waits on the budget.
        engine = make_engine(conn, tmp_path, write_budget=(2, 0.001))
        targets = [s for s in servers.values() if s.subscription_id.endswith("a") and s.state.lower() in ("running", "connected")]
        p = plan("tags.add", {"tags": ["batch=2"]}, targets)
        assert len(p.targets) >= 6
        task = asyncio.create_task(engine.run(p))

        def waiting() -> int:
            job = engine.live(p.id)
            return sum(t.state == "waiting-for-throttle" for t in job.targets.values()) if job else 0

        while waiting() < len(p.targets) - 2:
            await asyncio.sleep(0.01)
        assert engine.cancel(p.id)
        job = await asyncio.wait_for(task, 60)  # a guard against a hang: the budget would take 1,000 s a target
        by_state: dict[str, list[str]] = {}
        for t in job.targets.values():
            by_state.setdefault(t.state, []).append(t.target.id.lower())
        assert len(by_state["succeeded"]) == 2 and len(by_state["cancelled"]) == len(p.targets) - 2
        assert all(t.message == "cancelled before it was sent" for t in job.targets.values() if t.state == "cancelled")
        sent = [e["path"].lower() for e in writes(scenario_sim)]
        assert len(sent) == 2 and not any(path.startswith(tuple(by_state["cancelled"])) for path in sent)
        assert not job.unfinished
    finally:
        await conn.close()

DCR_RULE = "/subscriptions/00000000-0000-4000-8000-00000000000a/resourceGroups/rg-monitor/providers/Microsoft.Insights/dataCollectionRules/dcr-perf"
SAMPLES = {
    "extension.install": ("web-01", {"extension": "ama"}),
    "extension.remove": ("web-00", {"extension": "ama"}),
    "extension.upgrade": ("web-00", {"extension": "ama", "version": "1.30"}),
    "run-command": ("web-01", {"script": "hostname"}),
    "patch.assess": ("web-01", {}),
    "patch.install": ("web-01", {}),
    "power.start": ("web-stopped", {}),
    "power.stop": ("web-01", {}),
    "power.restart": ("web-01", {}),
    "power.deallocate": ("web-01", {}),
    "tags.add": ("web-01", {"tags": ["owner=x"]}),
    "tags.change": ("web-01", {"tags": ["env=test"]}),
    "tags.remove": ("web-01", {"tags": ["env"]}),
    "identity.enable": ("web-01", {}),
    "monitor.associate-dcr": ("web-00", {"rule": DCR_RULE}),
    "monitor.remove-dcr": ("web-00", {"rule": DCR_RULE}),
}


def test_every_action_has_a_read_only_sample():
    assert set(SAMPLES) == set(ACTIONS)


@pytest.mark.parametrize("action_id", sorted(SAMPLES))
async def test_read_only_refuses_the_action_at_the_gate(action_id, scenario_sim, tmp_path):
    conn = await connection(scenario_sim)
    try:
        servers = await servers_of(conn, tmp_path)
        name, params = SAMPLES[action_id]
        server = servers[name]
        if action_id == "monitor.remove-dcr":  # the scenario has no association: this row lists one to remove
            monitor = CapabilityState("monitor", State.ON, "AzureMonitorWindowsAgent 1.2 Succeeded; 1 DCR: dcr-perf")
            server = dataclasses.replace(server, capabilities={**server.capabilities, "monitor": monitor})
        assert plan(action_id, params, [server], readonly=True).targets == ()  # not offered
        p = plan(action_id, params, [server])
        assert len(p.targets) == 1, p.skipped
        engine = make_engine(conn, tmp_path, readonly=True)
        with pytest.raises(ReadOnlyError):
            await engine.run(p)  # refused even when called directly
        call = p.targets[0].call
        with pytest.raises(ReadOnlyError):
            await engine.gate.send(call.method, call.path, api_version=call.api_version, body=call.body)
        assert engine.gate.refused == 2
        assert writes(scenario_sim) == []
        assert not (tmp_path / "state" / "jobs").exists() or not any((tmp_path / "state" / "jobs").iterdir())
    finally:
        await conn.close()


async def test_hostile_script_output_is_cleaned_on_arrival(make_sim, tmp_path):
    from tests.fleetbuilder import scenario_fleet

    fleet = scenario_fleet()
    hostile = {"stdout": "\x1b]0;owned\x07ok [@click=app.quit]x[/]\x1b[31m red\n", "stderr": "\x9b2J", "exitCode": 0}
    fleet["simulation"]["machines"][vm_id("web-03")] = {"runCommandOutput": hostile}
    running = make_sim(fleet, lro_seconds=0.2, throttle=False, graph_quota=False)
    conn = await connection(running)
    try:
        servers = await servers_of(conn, tmp_path)
        _, done, job = await run(make_engine(conn, tmp_path), servers, ["web-03"], "run-command", {"script": "hostname"})
    finally:
        await conn.close()
    out = done["web-03"].output
    # markup stays data for the UI; each control is a visible marker
    assert out["stdout"] == "␛]0;owned␇ok [@click=app.quit]x[/]␛[31m red\n" and out["stderr"] == "⟨U+009B⟩2J"
    stored = (tmp_path / "state" / "jobs" / f"{job.id}.jsonl").read_text()
    assert "\\u001b" not in stored and "\\u009b" not in stored and "\\u0007" not in stored


async def test_a_job_is_resumed_only_against_the_arm_it_was_started_on(scenario_sim, make_sim, tmp_path, monkeypatch,
                                                                       capsys):
    """A job started on one endpoint, then (as a console or `jobs resume` connected elsewhere would) resumed
    or retried through another: refused, nothing sent there; the endpoint it was started on still resumes it."""
    from tests.fleetbuilder import scenario_fleet
    from wsam_tui.ops.engine import ForeignJobError

    conn = await connection(scenario_sim)
    other = make_sim(scenario_fleet(), throttle=False, graph_quota=False)
    elsewhere = await connection(other)
    try:
        servers = await servers_of(conn, tmp_path)
        engine = make_engine(conn, tmp_path, write_budget=(1, 0.001))  # one write, then the rest wait
        targets = [s for s in servers.values() if s.subscription_id.endswith("a") and s.state.lower() in ("running", "connected")]
        p = plan("tags.add", {"tags": ["where=here"]}, targets)
        task = asyncio.create_task(engine.run(p))
        while engine.live(p.id) is None or not any(t.done for t in engine.live(p.id).targets.values()):
            await asyncio.sleep(0.01)
        engine.cancel(p.id)
        job = await asyncio.wait_for(task, 60)
        assert job.endpoint == scenario_sim.base_url.rstrip("/")
        foreign = make_engine(elsewhere, tmp_path)
        with pytest.raises(ForeignJobError, match=f"started against {scenario_sim.base_url}"):
            await foreign.retry_failed(p.id)
        assert writes(other) == [], "nothing reached the other endpoint"
        # the headless command says so and sends nothing either
        from tests.ops_support import cli_env
        from wsam_tui.cli import main

        for key, value in cli_env(tmp_path).items():
            monkeypatch.setenv(key, value)
        code = await asyncio.to_thread(main, ["jobs", "retry", p.id, "--endpoint", other.base_url,
                                              "--ca-bundle", str(other.ca_path)])
        assert code != 0 and "was started against" in capsys.readouterr().err
        assert writes(other) == []
        job = await make_engine(conn, tmp_path).retry_failed(p.id)
        assert {t.state for t in job.targets.values()} == {"succeeded"}
    finally:
        await conn.close()
        await elsewhere.close()


async def test_add_tags_never_changes_a_value_and_change_tags_shows_old_to_new(ops, scenario_sim, tmp_path):
    conn, servers, engine = ops  # web-00 and web-01 carry env=prod; fs-00 has no tags
    web01 = dict(doc(scenario_sim, vm_id("web-01")), tags={"env": "prod", "owner": "dba"})
    scenario_sim.call(lambda: scenario_sim.state.put(web01))
    servers = await servers_of(conn, tmp_path, "with-owner")
    p, done, _ = await run(engine, servers, ["web-00", "web-01", "fs-00"], "tags.add", {"tags": ["env=test", "owner=ops"]})
    assert [(s.target.name, s.reason) for s in p.skipped] == [
        ("web-01", "already has env, owner (Add never changes a value: use Change tags)")]
    bodies = {t.target.name: t.call.body["properties"]["tags"] for t in p.targets}
    assert bodies == {"web-00": {"owner": "ops"}, "fs-00": {"env": "test", "owner": "ops"}}
    assert "env not added on 1 server(s) that already have it (Add never changes a value: use Change tags): " \
           "web-00 (env=prod)" in p.notes
    assert {t.state for t in done.values()} == {"succeeded"}
    assert doc(scenario_sim, vm_id("web-00"))["tags"] == {"env": "prod", "owner": "ops"}, "the value is as planned"
    assert doc(scenario_sim, arc_id("fs-00"))["tags"] == {"env": "test", "owner": "ops"}

    servers = await servers_of(conn, tmp_path, "after-add")
    p, done, _ = await run(engine, servers, ["web-00", "web-01", "fs-00"], "tags.change", {"tags": ["env=test"]})
    assert [(s.target.name, s.reason) for s in p.skipped] == [("fs-00", "tags already have these values")]
    assert "env: prod → test on 2 server(s): web-00, web-01" in p.notes
    assert {t.state for t in done.values()} == {"succeeded"}
    assert doc(scenario_sim, vm_id("web-00"))["tags"] == {"env": "test", "owner": "ops"}
    assert doc(scenario_sim, vm_id("web-01"))["tags"] == {"env": "test", "owner": "dba"}
