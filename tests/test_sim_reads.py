"""The reads an operator's own tools make around the machines (wsam_tui/sim/resources.py, sim/network.py):
resource groups where their resources are, generic resource lists, providers, the network interfaces and
public IPs VMs reference (agreeing with what the guest says), the extension image catalogue — and the
simulator's writes keeping what ARM keeps (an identity's principal, installed patches in Get-HotFix)."""

from __future__ import annotations

import json
import re
import ssl
import time
from collections import Counter

import httpx
import pytest

from wsam_tui.sim.run import DEMO_FLEET

VM_TYPE = "Microsoft.Compute/virtualMachines"


class Arm(httpx.Client):
    """ARM calls carry an api-version; URLs ARM gave (nextLink, Location) are followed as given."""

    def request(self, method, url, *, params=None, **kwargs):
        if not str(url).startswith("https://"):
            params = {"api-version": "2024-07-01", **(params or {})}
        return super().request(method, url, params=params, **kwargs)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from wsam_tui.sim.run import create_simulator, start_in_thread

    fleet = json.loads(DEMO_FLEET.read_text(encoding="utf-8"))
    running = start_in_thread(create_simulator(fleet, lro_seconds=0.2, throttle=False, graph_quota=False),
                              ca_dir=tmp_path_factory.mktemp("ca"))
    client = Arm(base_url=running.base_url, headers={"Authorization": "Bearer wsam-test-token"},
                 verify=ssl.create_default_context(cafile=str(running.ca_path)), timeout=30)
    yield fleet, client
    client.close()
    running.stop()


def vms(fleet: dict) -> list[dict]:
    return [r for r in fleet["resources"] if r["type"] == VM_TYPE]


def running(vm: dict) -> bool:
    return any(st.get("code") == "PowerState/running" for st in vm["properties"]["instanceView"].get("statuses", []))


def get(client: httpx.Client, path: str, **params: str) -> httpx.Response:
    return client.get(path, params=params)


def all_pages(client: httpx.Client, path: str, **params: str) -> list[dict]:
    reply = get(client, path, **params)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    items = list(body["value"])
    while body.get("nextLink"):
        body = client.get(body["nextLink"]).json()
        items += body["value"]
    return items


def run_script(client: httpx.Client, vm_id: str, script: str) -> str:
    """The legacy runCommand action, followed to its result: the script's stdout."""
    reply = client.post(f"{vm_id}/runCommand", json={"commandId": "RunPowerShellScript", "script": [script]})
    assert reply.status_code == 202, reply.text
    for _ in range(200):
        result = client.get(reply.headers["Location"])
        if result.status_code == 200:
            return result.json()["value"][0]["message"]
        time.sleep(0.05)
    raise AssertionError("the run command never ended")


def test_each_resource_group_is_where_most_of_its_machines_are(demo):
    fleet, client = demo
    for sub in fleet["subscriptions"]:
        sid = sub["subscriptionId"]
        groups = {g["name"].lower(): g for g in all_pages(client, f"/subscriptions/{sid}/resourceGroups")}
        where: dict[str, Counter] = {}
        for m in fleet["resources"]:
            if m["type"] in (VM_TYPE, "Microsoft.HybridCompute/machines") and f"/subscriptions/{sid}/" in m["id"]:
                where.setdefault(m["id"].split("/")[4].lower(), Counter())[m["location"]] += 1
        assert where
        for rg, counter in where.items():
            assert groups[rg]["location"] == counter.most_common(1)[0][0], rg
            one = get(client, f"/subscriptions/{sid}/resourceGroups/{groups[rg]['name']}")
            assert one.status_code == 200 and one.json() == groups[rg]
    assert client.head(f"/subscriptions/{sid}/resourceGroups/{next(iter(where))}").status_code == 204  # az group exists
    missing = get(client, f"/subscriptions/{sid}/resourceGroups/rg-nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceGroupNotFound"
    assert client.head(f"/subscriptions/{sid}/resourceGroups/rg-nowhere").status_code == 404


def test_a_vms_network_interface_has_the_address_and_mac_its_guest_shows(demo):
    fleet, client = demo
    with_public = 0
    for vm in [v for v in vms(fleet) if running(v)][:12]:
        nic_id = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
        nic = get(client, nic_id)
        assert nic.status_code == 200, nic.text
        props = nic.json()["properties"]
        assert props["virtualMachine"]["id"] == vm["id"] and nic.json()["location"] == vm["location"]
        ipconfig = props["ipConfigurations"][0]["properties"]
        guest = run_script(client, vm["id"], "ipconfig /all")
        assert f"IPv4 Address. . . . . . . . . . . : {ipconfig['privateIPAddress']}" in guest
        assert f"Physical Address. . . . . . . . . : {props['macAddress']}" in guest
        if "publicIPAddress" in ipconfig:
            with_public += 1
            pip = get(client, ipconfig["publicIPAddress"]["id"])
            assert pip.status_code == 200, pip.text
            address = pip.json()["properties"]["ipAddress"]
            assert re.fullmatch(r"(198\.51\.100|203\.0\.113|192\.0\.2)\.\d+", address)  # documentation ranges
            assert pip.json()["properties"]["ipConfiguration"]["id"].startswith(nic_id)
    assert 0 < with_public < 12


def test_a_missing_network_interface_is_not_found_in_arms_words(demo):
    fleet, client = demo
    vm = vms(fleet)[0]
    rg_path = vm["id"].split("/providers/")[0]
    reply = get(client, f"{rg_path}/providers/Microsoft.Network/networkInterfaces/no-such-nic")
    assert reply.status_code == 404
    assert reply.json()["error"]["message"].startswith(
        f"The Resource 'Microsoft.Network/networkInterfaces/no-such-nic' under resource group '{vm['id'].split('/')[4]}'")


def test_resource_lists_hold_the_groups_tracked_resources_and_filter_as_az_asks(demo):
    fleet, client = demo
    vm = vms(fleet)[0]
    sid, rg = vm["id"].split("/")[2], vm["id"].split("/")[4]
    listed = all_pages(client, f"/subscriptions/{sid}/resources")
    ids = {r["id"].lower() for r in listed}
    expected = {r["id"].lower() for r in fleet["resources"]
                if f"/subscriptions/{sid}/" in r["id"] and len(r["id"].split("/")) == 9}
    assert expected <= ids  # every top-level resource of the subscription
    assert vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].lower() in ids
    assert any("/extensions/" in i for i in ids) and not any("policystates" in i or "/assessments/" in i for i in ids)
    assert all(set(r) <= {"id", "name", "type", "kind", "location", "extendedLocation", "managedBy", "sku", "plan",
                          "identity", "zones", "tags"} for r in listed)
    in_group = all_pages(client, f"/subscriptions/{sid}/resourceGroups/{rg}/resources")
    assert in_group and {r["id"].lower() for r in in_group} == {i for i in ids if i.split("/")[4] == rg.lower()}
    by_az = all_pages(client, f"/subscriptions/{sid}/resources", **{"$filter": f"resourceGroup eq '{rg}'"})  # az resource list -g
    assert {r["id"] for r in by_az} == {r["id"] for r in in_group}
    typed = all_pages(client, f"/subscriptions/{sid}/resources", **{"$filter": f"resourceType eq '{VM_TYPE}'"})
    assert {r["id"] for r in typed} == {v["id"] for v in vms(fleet) if f"/subscriptions/{sid}/" in v["id"]}
    key, value = next(iter(vm["tags"].items()))
    tagged = all_pages(client, f"/subscriptions/{sid}/resources", **{"$filter": f"tagName eq '{key}' and tagValue eq '{value}'"})
    assert vm["id"] in {r["id"] for r in tagged} and all(r["tags"][key] == value for r in tagged)
    bad = get(client, f"/subscriptions/{sid}/resources", **{"$filter": "startswith(name, 'x')"})
    assert bad.status_code == 400 and "$filter" in bad.json()["error"]["message"]


def test_providers_announce_the_types_and_api_versions_tools_resolve(demo):
    fleet, client = demo
    sid = fleet["subscriptions"][0]["subscriptionId"]
    compute = get(client, f"/subscriptions/{sid}/providers/Microsoft.Compute")
    assert compute.status_code == 200 and compute.json()["registrationState"] == "Registered"
    vm_type = next(t for t in compute.json()["resourceTypes"] if t["resourceType"] == "virtualMachines")
    assert "2024-07-01" in vm_type["apiVersions"] and "westeurope" in vm_type["locations"]
    every = all_pages(client, f"/subscriptions/{sid}/providers")
    assert {"Microsoft.Compute", "Microsoft.HybridCompute", "Microsoft.Network"} <= {p["namespace"] for p in every}
    unknown = get(client, f"/subscriptions/{sid}/providers/Microsoft.Nowhere")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "InvalidResourceNamespace"


def test_the_extension_image_catalogue_names_a_latest_version(demo):
    fleet, client = demo
    sid = fleet["subscriptions"][0]["subscriptionId"]
    images = f"/subscriptions/{sid}/providers/Microsoft.Compute/locations/westeurope/publishers"
    publishers = get(client, images).json()
    assert {"Microsoft.Azure.Monitor", "Microsoft.AdminCenter"} <= {p["name"] for p in publishers}
    types = get(client, f"{images}/Microsoft.Azure.Monitor/artifacttypes/vmextension/types").json()
    assert [t["name"] for t in types] == ["AzureMonitorWindowsAgent"]
    versions = f"{images}/Microsoft.Azure.Monitor/artifacttypes/vmextension/types/AzureMonitorWindowsAgent/versions"
    every = [v["name"] for v in get(client, versions).json()]
    newest = [v["name"] for v in get(client, versions, **{"$orderby": "name desc", "$top": "1"}).json()]
    assert len(every) > 1 and newest == [max(every, key=lambda v: tuple(map(int, v.split("."))))]
    assert get(client, f"{versions}/{newest[0]}").json()["name"] == newest[0]
    assert get(client, f"{versions}/9.9.9.9").status_code == 404
    assert get(client, f"{images}/Contoso.Nothing/artifacttypes/vmextension/types").status_code == 404


def test_assigning_a_system_identity_again_keeps_its_principal(demo):
    fleet, client = demo
    vm = next(v for v in vms(fleet) if (v.get("identity") or {}).get("type") == "SystemAssigned")
    before = vm["identity"]["principalId"]
    reply = client.patch(vm["id"], json={"identity": {"type": "SystemAssigned"}})
    assert reply.status_code == 200, reply.text
    assert reply.json()["identity"]["principalId"] == before
    uai = f"/subscriptions/{vm['id'].split('/')[2]}/resourceGroups/rg-identity/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-x"
    both = client.patch(vm["id"], json={"identity": {"type": "SystemAssigned, UserAssigned",
                                                     "userAssignedIdentities": {uai: {}}}}).json()["identity"]
    assert both["principalId"] == before and both["userAssignedIdentities"][uai]["principalId"]
    again = client.patch(vm["id"], json={"identity": {"type": "SystemAssigned, UserAssigned",
                                                      "userAssignedIdentities": {uai: {}}}}).json()["identity"]
    assert again["userAssignedIdentities"] == both["userAssignedIdentities"]


def test_patches_just_installed_show_in_get_hotfix(demo):
    fleet, client = demo
    pending = {r["id"].split("/patchAssessmentResults/")[0].lower(): r for r in fleet["resources"]
               if r["type"] == f"{VM_TYPE}/patchAssessmentResults/softwarePatches" and r["properties"].get("kbId")}
    vm = next(v for v in vms(fleet) if v["id"].lower() in pending and running(v))
    kb = "KB" + pending[vm["id"].lower()]["properties"]["kbId"]
    assert kb not in run_script(client, vm["id"], "Get-HotFix")
    reply = client.post(f"{vm['id']}/installPatches", json={
        "maximumDuration": "PT2H", "rebootSetting": "Never",
        "windowsParameters": {"classificationsToInclude": ["Critical", "Security", "UpdateRollUp", "FeaturePack",
                                                           "ServicePack", "Definition", "Tools", "Updates"]}})
    assert reply.status_code == 202, reply.text
    for _ in range(200):
        if client.get(reply.headers["Location"]).status_code == 200:
            break
        time.sleep(0.05)
    assert kb in run_script(client, vm["id"], "Get-HotFix")
