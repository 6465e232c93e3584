"""The action engine end to end against the simulator: plan → gate → journal → dispatch → track → audit."""

from __future__ import annotations

import stat

import pytest

from tests.fleetbuilder import SUB_A
from tests.ops_support import SECRET, connection, make_engine, scan_for, servers_of, writes
from wsam_tui.ops.audit import AuditLog
from wsam_tui.ops.engine import group_outputs
from wsam_tui.ops.plan import plan, secrets_for


@pytest.fixture
async def ops(scenario_sim, tmp_path):
    """(connection, servers by name) on the scenario fleet."""
    conn = await connection(scenario_sim)
    yield conn, await servers_of(conn, tmp_path)
    await conn.close()


async def test_extension_install_on_both_kinds_with_skips_and_a_failure(ops, scenario_sim, tmp_path):
    conn, servers = ops
    chosen = [servers[n] for n in ("web-00", "web-01", "web-02", "web-stopped", "fs-00", "fs-01", "fs-disconnected")]
    p = plan("extension.install", {"extension": "mde"}, chosen)
    skipped = {s.target.name: s.reason for s in p.skipped}
    assert skipped["fs-00"].startswith("already installed")
    assert "deallocated" in skipped["web-stopped"]
    assert "Disconnected" in skipped["fs-disconnected"]
    assert {t.target.name for t in p.targets} == {"web-00", "web-01", "web-02", "fs-01"}
    assert all(t.call.method == "PUT" and t.call.path.endswith("/extensions/MDE.Windows") for t in p.targets)
    assert any(c.startswith("az vm extension set") for c in p.az_commands)
    assert any(c.startswith("az connectedmachine extension create") for c in p.az_commands)

    events = []
    engine = make_engine(conn, tmp_path, on_event=events.append)
    job = await engine.run(p)
    states = {t.target.name: t for t in job.targets.values()}
    assert {n: t.state for n, t in states.items()} == {"web-00": "succeeded", "web-01": "succeeded",
                                                        "web-02": "failed", "fs-01": "succeeded"}
    assert states["web-02"].code == "VMExtensionProvisioningError"
    assert "Enable failed" in states["web-02"].message
    assert states["web-00"].request_id and states["web-00"].correlation_id
    # The effect is in ARM at once, and the engine handed back the fresh resource for the table.
    ext = engine.resource(job.id, states["fs-01"].target.id)
    assert ext["properties"]["provisioningState"] == "Succeeded"
    assert {e.state for e in events} >= {"running", "succeeded", "failed"}
    # The audit log: who, what, which server, which outcome, with ARM's ids to quote.
    audit = AuditLog(tmp_path / "state" / "audit.jsonl").read()
    assert [a["event"] for a in audit] == ["job-started", *["target"] * 4, "job-finished"]
    assert audit[0]["principal"] == "unknown" and len(audit[0]["targets"]) == 4 and len(audit[0]["skipped"]) == 3
    failed = next(a for a in audit if a.get("outcome") == "failed")
    assert failed["code"] == "VMExtensionProvisioningError" and failed["target"].endswith("/web-02")
    assert all(a["requestId"] and a["correlationId"] and a["time"] for a in audit if a["event"] == "target")
    # One PUT per target, nothing else written.
    assert sorted(e["path"].split("/")[-3] for e in writes(scenario_sim)) == sorted(
        ["web-00", "web-01", "web-02", "fs-01"])


async def test_run_command_v2_on_both_kinds_groups_outputs_and_keeps_no_secret(ops, scenario_sim, tmp_path):
    conn, servers = ops
    chosen = [servers[n] for n in ("web-00", "web-01", "fs-00", "fs-01", "fs-expired", "app-00")]
    params = {"script": "param($Who)\nWrite-Output \"hello $Who\"", "parameters": ["Who=team"],
              "protected_parameters": [f"Password={SECRET}"], "timeout": 120}
    p = plan("run-command", params, chosen)
    assert [s.target.name for s in p.skipped] == ["fs-expired"]
    assert p.secret_names == ("protected_parameters",)
    body = p.targets[0].call.body
    assert body["properties"]["protectedParameters"] == [{"name": "Password", "value": "<hidden>"}]
    engine = make_engine(conn, tmp_path)
    with pytest.raises(ValueError, match="never stored"):
        await engine.run(p)  # without the secret: refused before anything is written or sent
    job = await engine.run(p, secrets=secrets_for("run-command", params))
    assert {t.state for t in job.targets.values()} == {"succeeded"}
    names = {e["path"].rsplit("/", 1)[-1] for e in writes(scenario_sim)}
    assert names == {f"wsam-{p.id}"}, "one deterministic Run Command name per job"
    groups = group_outputs(job)
    assert len(groups) == 1 and groups[0].count == 5 and "hello team" in groups[0].stdout
    assert groups[0].exit_code == 0 and not groups[0].truncated
    assert scan_for(tmp_path / "state", SECRET, "wsam-test-token", "wsam-simulator-accepts-any-token") == []
    for path in (tmp_path / "state", tmp_path / "state" / "jobs"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for path in [*(tmp_path / "state" / "jobs").iterdir(), tmp_path / "state" / "audit.jsonl"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_power_actions_apply_to_vms_only_and_the_vm_is_reread(ops, scenario_sim, tmp_path):
    conn, servers = ops
    p = plan("power.stop", {}, [servers["web-03"], servers["web-stopped"], servers["fs-00"]])
    reasons = {s.target.name: s.reason for s in p.skipped}
    assert reasons == {"web-stopped": "already deallocated", "fs-00": "not applicable to Arc servers"}
    engine = make_engine(conn, tmp_path)
    job = await engine.run(p)
    (t,) = job.targets.values()
    assert t.state == "succeeded"
    vm = engine.resource(job.id, t.target.id)
    assert any(s["code"] == "PowerState/stopped" for s in vm["properties"]["instanceView"]["statuses"])
    job = await engine.run(plan("power.start", {}, [servers["web-stopped"]]))
    assert [t.state for t in job.targets.values()] == ["succeeded"]
    assert [(e["method"], e["path"].rsplit("/", 1)[-1]) for e in writes(scenario_sim)] == [
        ("POST", "powerOff"), ("POST", "start")]


async def test_a_protected_subscription_or_many_targets_need_the_typed_count(ops):
    _, servers = ops
    few = [servers["web-00"], servers["app-00"]]
    assert not plan("tags.add", {"tags": ["owner=ops"]}, few).confirm_required
    p = plan("tags.add", {"tags": ["owner=ops"]}, few, protected_subscriptions=["Production"],
             subscription_names={SUB_A: "Production"})
    assert p.confirm_required and p.confirm_text == "2" and not p.confirmed_by("y") and p.confirmed_by("2")
    many = plan("tags.add", {"tags": ["owner=ops"]}, list(servers.values()), threshold=5)
    assert many.confirm_required
    scoped = plan("tags.add", {"tags": ["owner=ops"]}, few, readonly_subscriptions=[SUB_A])
    assert [s.reason for s in scoped.skipped] == ["read-only scope (subscription is read-only)"]


async def test_windows_admin_center_installs_on_a_vm_and_its_column_turns_on(ops, tmp_path):
    conn, servers = ops
    assert servers["web-01"].capabilities["wac"].state.value == "off"
    p = plan("extension.install", {"extension": "wac"}, [servers["web-01"], servers["fs-01"]])
    assert p.skipped == () and len(p.targets) == 2
    vm_cmd = next(c for c in p.az_commands if c.startswith("az vm extension set"))
    assert "--name AdminCenter" in vm_cmd and "--publisher Microsoft.AdminCenter" in vm_cmd
    job = await make_engine(conn, tmp_path).run(p)
    assert {t.state for t in job.targets.values()} == {"succeeded"}
    after = await servers_of(conn, tmp_path, "after")
    assert after["web-01"].capabilities["wac"].state.value == "on"
    assert after["fs-01"].capabilities["wac"].state.value == "on"
