"""The fleet generator, the hostile fleet and the bundled fixtures (wsam_tui/sim/fleetgen.py, hostile.py)."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wsam_tui.sim.fleetfile import FleetFileError, dump_fleet, load_fleet, validate_fleet
from wsam_tui.sim.fleetgen import (
    ARC_TYPE,
    VM_TYPE,
    classify_fleet,
    coverage_report,
    default_subscriptions,
    generate_fleet,
)
from wsam_tui.sim.fleetgen import main as fleetgen_main
from wsam_tui.sim.hostile import HOSTILE_STRINGS, hostile_fleet

FLEETS = Path(__file__).resolve().parents[1] / "wsam_tui" / "sim" / "fleets"
MACHINE_TYPES = (VM_TYPE, ARC_TYPE)
THREE = {"on", "partial", "off"}
TWO = {"on", "off"}


def dumped(fleet: dict) -> bytes:
    buf = io.BytesIO()
    dump_fleet(fleet, buf)
    return buf.getvalue()


def machines(fleet: dict, kind: str | None = None) -> list[dict]:
    types = MACHINE_TYPES if kind is None else ((VM_TYPE,) if kind == "vm" else (ARC_TYPE,))
    return [r for r in fleet["resources"] if r["type"] in types]


def strings_in(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(node, list):
        return [s for v in node for s in strings_in(v)]
    return []


@pytest.fixture(scope="module")
def demo() -> dict:
    return generate_fleet(320, 2026)


@pytest.fixture(scope="module")
def demo_report(demo) -> dict[str, set[str]]:
    return coverage_report(demo)


# ---- determinism and size ------------------------------------------------------------------------


def test_same_seed_same_bytes_different_seed_different_fleet() -> None:
    a, b, c = dumped(generate_fleet(350, 9)), dumped(generate_fleet(350, 9)), dumped(generate_fleet(350, 10))
    assert a == b
    assert a != c
    other_now = generate_fleet(350, 9, now=datetime(2027, 3, 1, tzinfo=UTC))
    assert other_now["generator"]["generatedAt"] == "2027-03-01T00:00:00.0000000Z"
    assert dumped(other_now) != a


@pytest.mark.parametrize("size", [1, 2, 7, 99, 320, 1001, 2600])
def test_size_is_respected_with_about_sixty_percent_vms(size: int) -> None:
    fleet = generate_fleet(size, 5)
    validate_fleet(fleet)
    assert len(machines(fleet)) == size
    n_vm = len(machines(fleet, "vm"))
    if size >= 2:
        assert 1 <= n_vm <= size - 1
        assert abs(n_vm - 0.6 * size) <= 1
    assert fleet["generator"] == {"seed": 5, "size": size, "version": 1, "generatedAt": "2026-11-01T00:00:00.0000000Z"}


def test_subscription_and_tenant_defaults() -> None:
    assert [default_subscriptions(n) for n in (1, 300, 1000, 1001, 7500, 7501, 100_000)] == [3, 3, 3, 3, 3, 4, 40]
    fleet = generate_fleet(40, 1, subscriptions=5, tenants=3)
    assert len(fleet["subscriptions"]) == 5 and len(fleet["tenants"]) == 3
    assert len({s["tenantId"] for s in fleet["subscriptions"]}) == 3
    with pytest.raises(ValueError, match="size"):
        generate_fleet(0)
    with pytest.raises(ValueError, match="size"):
        generate_fleet(100_001)


def test_demo_has_three_subscriptions_in_two_tenants_and_uses_them_all(demo) -> None:
    tenants = {t["tenantId"] for t in demo["tenants"]}
    subs = demo["subscriptions"]
    assert len(tenants) == 2 and len(subs) >= 3
    assert {s["tenantId"] for s in subs} == tenants
    used = Counter(m["id"].split("/")[2] for m in machines(demo))
    assert set(used) == {s["subscriptionId"] for s in subs}
    for kind in ("vm", "arc"):
        assert len({m["id"].split("/")[4] for m in machines(demo, kind)}) >= 5, "several resource groups"
        assert len({m["location"] for m in machines(demo, kind)}) >= 2, "several regions"


# ---- the documents -------------------------------------------------------------------------------


def test_every_document_is_well_formed(demo) -> None:
    validate_fleet(demo)
    ids = Counter(r["id"].lower() for r in demo["resources"])
    assert not [i for i, n in ids.items() if n > 1]
    for r in demo["resources"]:
        assert r["name"] == r["id"].rsplit("/", 1)[1], r["id"]
        assert isinstance(r.get("properties"), dict), r["id"]
    for m in machines(demo):
        name = m["name"]
        assert 1 <= len(name) <= 15 and all(c.isalnum() or c == "-" for c in name), name
        assert m["id"] in demo["simulation"]["machines"], "every machine has guest facts"
    # no subscription is denied by default
    assert "access" not in demo["simulation"]
    failing = [(mid.split("/")[6], t) for mid, e in demo["simulation"]["machines"].items()
               for t in e.get("failExtensionTypes", [])]
    assert {p for p, _ in failing} == {"Microsoft.Compute", "Microsoft.HybridCompute"}, "installs that fail, both kinds"
    assert {t for _, t in failing} >= {"MDE.Windows", "AzureMonitorWindowsAgent"}


def test_vm_documents_carry_the_instance_view(demo) -> None:
    for vm in machines(demo, "vm"):
        p = vm["properties"]
        iv = p["instanceView"]
        codes = [s["code"] for s in iv["statuses"]]
        assert codes[0].startswith("ProvisioningState/") and codes[1].startswith("PowerState/")
        assert p["storageProfile"]["osDisk"]["osType"] == "Windows"
        if codes[1] != "PowerState/deallocated":
            assert iv["vmAgent"]["statuses"][0]["displayStatus"] in ("Ready", "Not Ready")
        if codes[1] == "PowerState/running" and "computerName" in iv:
            assert iv["computerName"] == p["osProfile"]["computerName"]
            assert iv["osName"].startswith("Windows Server") and iv["osVersion"].startswith(("10.0.", "6.3."))
        if p["provisioningState"] == "Failed":
            assert codes[0].startswith("ProvisioningState/failed/")


def test_arc_documents(demo) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    for m in machines(demo, "arc"):
        p = m["properties"]
        changed = datetime.fromisoformat(p["lastStatusChange"].replace("0Z", "+00:00"))
        if p["status"] == "Expired":
            assert now - changed > timedelta(days=45)
        elif p["status"] == "Disconnected":
            assert now - changed <= timedelta(days=45)
        assert p["osType"] == "windows" and p["osSku"].startswith("Windows Server")
        assert p["agentConfiguration"]["extensionsEnabled"] in ("true", "false")
        provider = p["cloudMetadata"]["provider"]
        assert provider == p["detectedProperties"]["cloudprovider"]
        assert m["kind"] == {"AWS": "AWS", "GCP": "GCP"}.get(provider, m["kind"])
        if m.get("identity"):
            assert m["identity"]["type"] == "SystemAssigned"


def test_extensions_match_their_machines_and_identities(demo) -> None:
    known = {("Microsoft.Azure.Monitor", "AzureMonitorWindowsAgent"), ("Microsoft.EnterpriseCloud.Monitoring", "MicrosoftMonitoringAgent"),
             ("Microsoft.Azure.AzureDefenderForServers", "MDE.Windows"), ("Microsoft.Azure.ActiveDirectory", "AADLoginForWindows"),
             ("Microsoft.AdminCenter", "AdminCenter"), ("Microsoft.Azure.ChangeTrackingAndInventory", "ChangeTracking-Windows"),
             ("Microsoft.GuestConfiguration", "ConfigurationforWindows"), ("Microsoft.Azure.Monitoring.DependencyAgent", "DependencyAgentWindows"),
             ("Microsoft.Compute", "CustomScriptExtension"), ("Microsoft.Azure.Security", "IaaSAntimalware"),
             ("Microsoft.CPlat.Core", "WindowsPatchExtension")}
    vm_only = {"AADLoginForWindows", "ConfigurationforWindows", "IaaSAntimalware"}
    seen = set()
    for r in demo["resources"]:
        if not r["type"].endswith("/extensions"):
            continue
        p = r["properties"]
        seen.add((p["publisher"], p["type"]))
        assert (p["publisher"], p["type"]) in known
        assert "protectedSettings" not in p
        arc = r["type"] == f"{ARC_TYPE}/extensions"
        if arc:
            assert p["type"] not in vm_only
            if p["provisioningState"] != "Creating":
                assert p["instanceView"]["status"]["level"] == ("Information" if p["provisioningState"] == "Succeeded" else "Error")
        else:
            status = p["instanceView"]["statuses"][0]
            assert status["code"].lower().startswith({"Succeeded": "provisioningstate/succeeded", "Failed": "provisioningstate/failed",
                                                      "Creating": "provisioningstate/transitioning"}[p["provisioningState"]])
    assert seen == known


def test_patch_summaries_count_their_software_patches(demo) -> None:
    keys = {"critical": "critical", "security": "security", "updaterollup": "updateRollup", "definition": "definition",
            "updates": "updates"}
    patches: dict[str, Counter] = {}
    for r in demo["resources"]:
        if r["type"].endswith("/softwarePatches"):
            summary = r["id"].rsplit("/softwarePatches/", 1)[0]
            cls = r["properties"]["classifications"][0]
            patches.setdefault(summary.lower(), Counter())[keys[cls.lower()]] += 1
            assert r["properties"]["patchName"] and r["properties"]["rebootBehavior"]
    summaries = [r for r in demo["resources"] if r["type"].endswith("/patchAssessmentResults")]
    assert summaries
    for s in summaries:
        counts = {k: v for k, v in s["properties"]["availablePatchCountByClassification"].items() if v}
        assert counts == dict(patches.get(s["id"].lower(), {})), s["id"]
    assert any(r["type"].endswith("/patchInstallationResults") for r in demo["resources"])


def test_cross_references_resolve(demo) -> None:
    ids = {r["id"].lower() for r in demo["resources"]}
    machine_ids = {m["id"].lower() for m in machines(demo)}
    workspaces = {r["id"].lower() for r in demo["resources"] if r["type"] == "Microsoft.OperationalInsights/workspaces"}
    sentinel = [r for r in demo["resources"] if r["type"] == "Microsoft.OperationsManagement/solutions"]
    assert sentinel and {s["properties"]["workspaceResourceId"].lower() for s in sentinel} < workspaces, \
        "Sentinel on some workspaces only"
    names = Counter()
    for m in machines(demo):
        p = m["properties"]
        for n in {m["name"], p.get("machineFqdn"), (p.get("osProfile") or {}).get("computerName")} - {None}:
            names[n.lower()] += 1
    for r in demo["resources"]:
        p = r["properties"]
        t = r["type"]
        if t == "Microsoft.Insights/dataCollectionRuleAssociations":
            assert p["dataCollectionRuleId"].lower() in ids
        elif t == "Microsoft.Insights/dataCollectionRules":
            assert all(d["workspaceResourceId"].lower() in workspaces for d in p["destinations"]["logAnalytics"])
        elif t.endswith("/protectedItems"):
            assert p["sourceResourceId"].lower() in machine_ids
            assert r["id"].lower().split("/backupfabrics/")[0] in ids, "the vault exists"
        elif t.endswith("/replicationProtectedItems"):
            assert p["providerSpecificDetails"]["fabricObjectId"].lower() in machine_ids
            assert p["providerSpecificDetails"]["instanceType"] == ("A2A" if "/virtualMachines/" in p["providerSpecificDetails"]["fabricObjectId"] else "InMageRcm")
        elif t == "Microsoft.Security/assessments":
            assert p["resourceDetails"]["Id"].lower() in machine_ids
        elif t == "Microsoft.Maintenance/configurationAssignments":
            assert p["maintenanceConfigurationId"].lower() in ids and p["resourceId"].lower() in machine_ids
        elif t == "Microsoft.StorageSync/storageSyncServices/registeredServers":
            name = p["serverName"].lower()
            assert names[name] == 1 or (names[name] == 0 and names[name.split(".", 1)[0]] == 1), name
        elif t == "Microsoft.Automanage/configurationProfileAssignments":
            assert p["targetId"].lower() in machine_ids


# ---- the coverage guarantee ----------------------------------------------------------------------


COLUMNS = {  # column -> states required, per kind it applies to
    "policy": THREE, "tags": THREE, "defender": THREE, "sentinel": THREE, "backup": THREE, "siterecovery": THREE,
    "updates": THREE, "changetracking": THREE, "automanage": THREE, "extensions": THREE, "wac": THREE,
    "runcommand": THREE, "monitor": THREE, "identity": TWO, "filesync": THREE,
}
VM_ONLY = {"confidential": TWO, "entra": THREE}


def assert_full_coverage(report: dict[str, set[str]]) -> None:
    for column, states in COLUMNS.items():
        for kind in ("vm", "arc"):
            assert report.get(f"{column}/{kind}", set()) >= states, (column, kind, report.get(f"{column}/{kind}"))
    for column, states in VM_ONLY.items():
        assert report.get(f"{column}/vm", set()) >= states, column
        assert f"{column}/arc" not in report, f"{column} does not apply to Arc"
    assert report["os/vm"] >= {"2012r2", "2016", "2019", "2022", "2022ae", "2022ae-hotpatch", "2025", "2025ae"}
    assert report["os/arc"] >= {"2012r2", "2016", "2019", "2022", "2025"}
    assert report["power/vm"] >= {"running", "stopped", "deallocated", "starting"}
    assert report["provisioning/vm"] == {"succeeded", "failed"}
    assert report["arcstatus/arc"] >= {"Connected", "Disconnected", "Expired", "Error"}
    assert report["arckind/arc"] >= {"hyperv", "physical", "vmware", "aws", "gcp"}
    assert report["arcagent/arc"] == {"old", "current"}
    for kind in ("vm", "arc"):
        assert report[f"extstate/{kind}"] >= {"Succeeded", "Failed", "Creating"}


def test_demo_reaches_every_state_of_every_column_for_each_kind(demo_report) -> None:
    # spelled out for the columns a reviewer asks about first
    assert demo_report["backup/arc"] == {"on", "partial", "off"}
    assert demo_report["backup/vm"] == {"on", "partial", "off"}
    assert demo_report["siterecovery/arc"] == {"on", "partial", "off"}
    assert demo_report["defender/vm"] == demo_report["defender/arc"] == {"on", "partial", "off"}
    assert demo_report["sentinel/vm"] == demo_report["sentinel/arc"] == {"on", "partial", "off"}
    assert demo_report["automanage/arc"] == {"on", "partial", "off"}
    assert demo_report["extensions/arc"] == {"on", "partial", "off"}
    assert demo_report["runcommand/vm"] == demo_report["runcommand/arc"] == {"on", "partial", "off"}
    assert demo_report["confidential/vm"] == {"on", "off"}
    assert demo_report["entra/vm"] == {"on", "partial", "off"}
    assert demo_report["identity/vm"] == demo_report["identity/arc"] == {"on", "off"}
    assert_full_coverage(demo_report)


@pytest.mark.parametrize("seed", [1, 2, 3, 77])
def test_any_fleet_of_300_reaches_every_state(seed: int) -> None:
    assert_full_coverage(coverage_report(generate_fleet(300, seed)))


def test_classification_reads_documents_not_profiles(demo) -> None:
    states = classify_fleet(demo)
    assert set(states) == {m["id"] for m in machines(demo)}
    vm = machines(demo, "vm")[0]
    changed = json.loads(json.dumps(demo))
    target = next(m for m in machines(changed, "vm") if m["id"] == vm["id"])
    target["tags"] = {"env": "prod", "owner": "x", "costCenter": "y"}
    target["properties"]["securityProfile"] = {"securityType": "ConfidentialVM"}
    after = classify_fleet(changed)[vm["id"]]
    assert after["tags"] == "on" and after["confidential"] == "on"


def test_the_rest_of_the_fleet_is_mixed_not_all_healthy() -> None:
    fleet = generate_fleet(2000, 4)
    counts: dict[str, Counter] = {}
    for states in classify_fleet(fleet).values():
        for column, state in states.items():
            counts.setdefault(column, Counter())[state] += 1
    for column, c in counts.items():
        assert c["on"] > 0 and c["off"] > 0, (column, c)
    assert counts["monitor"]["on"] > counts["monitor"]["off"], "most servers are monitored"
    assert counts["siterecovery"]["off"] > counts["siterecovery"]["on"], "few servers are replicated"


# ---- fixtures ------------------------------------------------------------------------------------


def test_demo_fixture_is_exactly_what_the_generator_writes() -> None:
    path = FLEETS / "demo-fleet.json"
    assert path.read_bytes() == dumped(generate_fleet(320, 2026)), \
        "wsam_tui/sim/fleets/demo-fleet.json is stale: regenerate it (wsam_tui/sim/fleets/README.md)"
    fleet = load_fleet(path)
    assert len(machines(fleet)) >= 300 and len(fleet["subscriptions"]) >= 3 and len(fleet["tenants"]) == 2


def test_hostile_fixture_is_exactly_what_hostile_fleet_writes() -> None:
    path = FLEETS / "hostile-fleet.json"
    assert path.read_bytes() == dumped(hostile_fleet()), \
        "wsam_tui/sim/fleets/hostile-fleet.json is stale: regenerate it (wsam_tui/sim/fleets/README.md)"
    assert load_fleet(path) == hostile_fleet()


def test_cli_writes_the_same_bytes(tmp_path) -> None:
    out = tmp_path / "f.json"
    assert fleetgen_main(["--size", "310", "--seed", "8", "-o", str(out)]) == 0
    assert out.read_bytes() == dumped(generate_fleet(310, 8))


# ---- the hostile fleet ---------------------------------------------------------------------------


def test_hostile_fleet_is_small_valid_and_has_both_kinds() -> None:
    fleet = hostile_fleet()
    validate_fleet(fleet)
    assert len(fleet["subscriptions"]) == 1 and len(fleet["tenants"]) == 1
    assert machines(fleet, "vm") and machines(fleet, "arc")
    for r in fleet["resources"]:  # names and ids stay legal: ARM restricts them
        assert r["id"].isascii() and r["name"].isascii()
        assert not any(ord(c) < 0x20 or c in "<>%&\\?" for c in r["id"])


def test_hostile_strings_are_where_arm_allows_free_text() -> None:
    fleet = hostile_fleet()
    everything = set(strings_in(fleet))
    for s in HOSTILE_STRINGS:
        assert s in everything or any(s in t for t in everything), repr(s[:40])
    arcs = machines(fleet, "arc")
    hostile_arc = next(m for m in arcs if m["properties"]["osName"] not in (None, "windows"))
    props = hostile_arc["properties"]
    for field in ("osName", "osSku", "displayName", "machineFqdn", "domainName"):
        assert any(h in props[field] for h in HOSTILE_STRINGS if len(h) > 3), field
    assert any(k in HOSTILE_STRINGS or v in HOSTILE_STRINGS for k, v in props["detectedProperties"].items())
    null_arc = next(m for m in arcs if m["properties"]["osName"] is None)
    assert null_arc["tags"] is None
    tags = [t for m in machines(fleet) if isinstance(m.get("tags"), dict) for t in m["tags"].values()]
    assert any(len(t) >= 10_000 for t in tags), "a 10 kB tag value"
    messages = []
    for r in fleet["resources"]:
        iv = r["properties"].get("instanceView") if r["type"].endswith("/extensions") else None
        if isinstance(iv, dict):
            messages += [s.get("message", "") for s in iv.get("statuses", [])] + [(iv.get("status") or {}).get("message", "")]
    assert any("\x1b]0;pwned\x07" in m for m in messages) and any("[@click=app.quit]" in m for m in messages)
    outputs = [e["runCommandOutput"] for e in fleet["simulation"]["machines"].values() if "runCommandOutput" in e]
    assert len(outputs) >= 2 and all(h in outputs[0]["stdout"] for h in HOSTILE_STRINGS)
    # the machines that carry hostile script output can run scripts
    states = classify_fleet(fleet)
    for mid, entry in fleet["simulation"]["machines"].items():
        if "runCommandOutput" in entry:
            assert states[mid]["runcommand"] == "on"


def test_hostile_strings_round_trip_byte_exact(tmp_path) -> None:
    fleet = hostile_fleet()
    path = tmp_path / "hostile.json"
    dump_fleet(fleet, path)
    back = load_fleet(path)
    assert back == fleet
    got = set(strings_in(back))
    for s in HOSTILE_STRINGS:
        if s in set(strings_in(fleet)):
            assert s in got
    assert dumped(back) == path.read_bytes(), "dump(load(dump(x))) == dump(x)"
    text = path.read_bytes().decode("utf-8")
    assert "\x1b" not in text and "\x00" not in text, "controls are escaped in the file"
    assert "\\ud800" in text, "the lone surrogate is written as an escape"


def test_the_simulator_builds_from_generated_and_hostile_fleets() -> None:
    from wsam_tui.sim.state import SimState

    fleet = generate_fleet(400, 3)
    state = SimState(fleet)
    assert len(list(state.all_machines())) == 400
    vm = machines(fleet, "vm")[0]
    assert state.get(vm["id"]) is not None and state.extensions_of(vm["id"]) is not None
    rows = list(state.arg_rows("resources", None))
    assert sum(1 for r in rows if r["type"] in ("microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines")) == 400
    for table in ("patchassessmentresources", "guestconfigurationresources", "securityresources",
                  "recoveryservicesresources", "insightsresources", "maintenanceresources", "policyresources"):
        assert list(state.arg_rows(table, None)), table
    SimState(hostile_fleet())


# ---- load_fleet errors ---------------------------------------------------------------------------


def _write(tmp_path, doc) -> Path:
    path = tmp_path / "fleet.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def test_load_fleet_errors_say_what_and_where(tmp_path) -> None:
    base = generate_fleet(3, 1)
    cases = []
    bad_format = dict(base, format="wsam-fleet/2")
    cases.append((bad_format, "format must be 'wsam-fleet/1', got 'wsam-fleet/2'"))
    dup = json.loads(json.dumps(base))
    dup["resources"].append(dict(dup["resources"][-1], id=dup["resources"][-1]["id"].upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")))
    cases.append((dup, "duplicate id"))
    unknown_sub = json.loads(json.dumps(base))
    rid = unknown_sub["resources"][0]["id"]
    unknown_sub["resources"][0]["id"] = rid.replace(rid.split("/")[2], "99999999-9999-4999-8999-999999999999")
    cases.append((unknown_sub, "subscription 99999999-9999-4999-8999-999999999999 is not listed in subscriptions"))
    missing_id = json.loads(json.dumps(base))
    del missing_id["resources"][5]["id"]
    cases.append((missing_id, "resources[5]: missing id"))
    for doc, message in cases:
        with pytest.raises(FleetFileError) as err:
            load_fleet(_write(tmp_path, doc))
        assert message in str(err.value), str(err.value)
        assert str(tmp_path / "fleet.json") in str(err.value), "the file is named"
    with pytest.raises(FleetFileError, match="not valid JSON"):
        load_fleet(_write(tmp_path, '{"format": "wsam-fleet/1",'))
    with pytest.raises(FleetFileError, match=r"resources\[\d+\] \(id '/subscriptions/"):
        load_fleet(_write(tmp_path, dup))
