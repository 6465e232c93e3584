"""The real async Azure SDK clients against a running simulator, changed only in base URL, credential and CA."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.hybridcompute.aio import HybridComputeManagementClient
from azure.mgmt.resourcegraph.aio import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest

from tests.conftest import sdk_kwargs
from tests.fleetbuilder import SUB_A, arc_id, vm_id

pytestmark = pytest.mark.asyncio


def compute(running, credential, sub=SUB_A, **kw):
    return ComputeManagementClient(credential, sub, **sdk_kwargs(running), **kw)


def hybrid(running, credential, sub=SUB_A, **kw):
    return HybridComputeManagementClient(credential, sub, **sdk_kwargs(running), **kw)


def graph(running, credential, **kw):
    return ResourceGraphClient(credential, **sdk_kwargs(running), **kw)


async def test_list_both_kinds_across_pages(scenario_sim, credential):
    async with compute(scenario_sim, credential) as c, hybrid(scenario_sim, credential) as h:
        vms = [vm.name async for vm in c.virtual_machines.list_all()]
        machines = [m.name async for m in h.machines.list_by_subscription()]
    assert sorted(vms) == sorted([f"web-{i:02d}" for i in range(6)] + ["web-stopped"])
    assert {"fs-00", "fs-disconnected", "fs-expired", "fs-noext"} <= set(machines)
    pages = [e for e in scenario_sim.sim.log.entries if "virtualMachines" in e["path"] and e["method"] == "GET"]
    assert len(pages) == 2, "7 VMs at page size 4 must take two pages through nextLink"
    assert "$skiptoken" in pages[1]["query"] and "api-version" in pages[1]["query"]


async def test_get_with_instance_view_and_resource_group_list(scenario_sim, credential):
    async with compute(scenario_sim, credential) as c:
        vm = await c.virtual_machines.get("rg-web", "web-00", expand="instanceView")
        assert vm.instance_view.computer_name == "web-00"
        assert any(s.code == "PowerState/running" for s in vm.instance_view.statuses)
        plain = await c.virtual_machines.get("rg-web", "web-00")
        assert plain.instance_view is None
        assert [e.name for e in plain.resources] == ["AzureMonitorWindowsAgent"]
        in_rg = [v.name async for v in c.virtual_machines.list("rg-web")]
        assert "web-stopped" in in_rg
        with pytest.raises(ResourceNotFoundError) as err:
            await c.virtual_machines.get("rg-web", "no-such-vm")
        assert err.value.error.code == "ResourceNotFound"


async def test_extension_install_through_poller_then_visible_in_resource_graph(scenario_sim, credential):
    async with compute(scenario_sim, credential) as c:
        poller = await c.virtual_machine_extensions.begin_create_or_update(
            "rg-web", "web-01", "AzureMonitorWindowsAgent",
            {"location": "westeurope", "properties": {
                "publisher": "Microsoft.Azure.Monitor", "type": "AzureMonitorWindowsAgent", "typeHandlerVersion": "1.2",
                "autoUpgradeMinorVersion": True, "enableAutomaticUpgrade": True,
                "protectedSettings": {"secret": "do-not-store"}}},
        )
        ext = await poller.result()
    assert ext.provisioning_state == "Succeeded"
    assert "do-not-store" not in str(scenario_sim.state.get(vm_id("web-01") + "/extensions/AzureMonitorWindowsAgent"))
    async with graph(scenario_sim, credential) as g:
        resp = await g.resources(QueryRequest(
            subscriptions=[SUB_A],
            query="resources | where type =~ 'microsoft.compute/virtualmachines/extensions' "
                  "| where name =~ 'AzureMonitorWindowsAgent' | project id, state = tostring(properties.provisioningState)",
        ))
    ids = {row["id"].lower(): row["state"] for row in resp.data}
    assert ids[(vm_id("web-01") + "/extensions/AzureMonitorWindowsAgent").lower()] == "Succeeded"


async def test_arc_extension_install_and_failed_operation_surfaces(scenario_sim, credential):
    async with hybrid(scenario_sim, credential) as h:
        poller = await h.machine_extensions.begin_create_or_update(
            "rg-arc", "fs-01", "AdminCenter",
            {"location": "westeurope", "properties": {"publisher": "Microsoft.AdminCenter", "type": "AdminCenter",
                                                      "typeHandlerVersion": "0.0", "settings": {"port": "6516"}}},
        )
        ext = await poller.result()
        assert ext.properties.provisioning_state == "Succeeded"
        got = await h.machine_extensions.get("rg-arc", "fs-01", "AdminCenter")
        assert got.properties.instance_view.status.code == "success"
    async with compute(scenario_sim, credential) as c:
        poller = await c.virtual_machine_extensions.begin_create_or_update(
            "rg-web", "web-02", "MDE.Windows",
            {"location": "westeurope", "properties": {
                "publisher": "Microsoft.Azure.AzureDefenderForServers", "type": "MDE.Windows", "typeHandlerVersion": "1.0"}},
        )
        with pytest.raises(HttpResponseError) as err:
            await poller.result()
    assert "VMExtensionProvisioningError" in str(err.value)


async def test_disconnected_arc_refuses_extension_work(scenario_sim, credential):
    async with hybrid(scenario_sim, credential) as h:
        with pytest.raises(HttpResponseError) as err:
            poller = await h.machine_extensions.begin_create_or_update(
                "rg-arc", "fs-disconnected", "AzureMonitorWindowsAgent",
                {"location": "westeurope", "properties": {"publisher": "Microsoft.Azure.Monitor", "type": "AzureMonitorWindowsAgent"}},
            )
            await poller.result()
    assert err.value.status_code == 409
    assert err.value.error.code == "MachineNotConnected"


async def test_run_command_v2_on_both_kinds(scenario_sim, credential):
    async with compute(scenario_sim, credential) as c:
        poller = await c.virtual_machine_run_commands.begin_create_or_update(
            "rg-web", "web-03", "wsam-check",
            {"location": "westeurope", "properties": {"source": {"script": "hostname"}, "asyncExecution": False}},
        )
        rc = await poller.result()
        assert rc.provisioning_state == "Succeeded"
        full = await c.virtual_machine_run_commands.get_by_virtual_machine("rg-web", "web-03", "wsam-check", expand="instanceView")
        assert full.instance_view.execution_state == "Succeeded"
        assert full.instance_view.exit_code == 0
        assert "web-03" in full.instance_view.output
    async with hybrid(scenario_sim, credential) as h:
        poller = await h.machine_run_commands.begin_create_or_update(
            "rg-arc", "fs-02", "wsam-check",
            {"location": "westeurope", "properties": {"source": {"script": "hostname"}, "asyncExecution": False}},
        )
        rc = await poller.result()
        assert rc.properties.instance_view.execution_state == "Succeeded"
        assert "fs-02" in rc.properties.instance_view.output


async def test_legacy_run_command_to_completion(scenario_sim, credential):
    async with compute(scenario_sim, credential) as c:
        poller = await c.virtual_machines.begin_run_command(
            "rg-web", "web-04", {"commandId": "RunPowerShellScript", "script": ["hostname"]})
        result = await poller.result()
    stdout = next(s for s in result.value if "StdOut" in s.code)
    assert "web-04" in stdout.message


async def test_assess_patches_returns_result_for_both_kinds(scenario_sim, credential):
    async with compute(scenario_sim, credential) as c:
        poller = await c.virtual_machines.begin_assess_patches("rg-web", "web-01")
        result = await poller.result()
    assert result.status == "Succeeded"
    assert result.critical_and_security_patch_count == 2
    assert {p.kb_id for p in result.available_patches} == {"5044281", "5044033", "890830"}
    async with hybrid(scenario_sim, credential) as h:
        poller = await h.machines.begin_assess_patches("rg-arc", "fs-01")
        arc_result = await poller.result()
    assert arc_result.status == "Succeeded"


async def test_install_patches_changes_next_assessment(scenario_sim, credential):
    async with compute(scenario_sim, credential) as c:
        poller = await c.virtual_machines.begin_install_patches("rg-web", "web-01", {
            "maximumDuration": "PT2H", "rebootSetting": "IfRequired",
            "windowsParameters": {"classificationsToInclude": ["Critical", "Security"]}})
        installed = await poller.result()
        assert installed.installed_patch_count == 2
        assert installed.not_selected_patch_count == 1
        again = await (await c.virtual_machines.begin_assess_patches("rg-web", "web-01")).result()
    assert [p.kb_id for p in again.available_patches] == ["890830"]
    assert again.critical_and_security_patch_count == 0


async def test_power_state_changes_are_visible(scenario_sim, credential):
    async with compute(scenario_sim, credential) as c:
        await (await c.virtual_machines.begin_start("rg-web", "web-stopped")).result()
        booted = await c.virtual_machines.instance_view("rg-web", "web-stopped")
        assert booted.vm_agent is not None and booted.vm_agent.statuses[0].display_status == "Ready"
        await (await c.virtual_machines.begin_power_off("rg-web", "web-05")).result()
        view = await c.virtual_machines.instance_view("rg-web", "web-05")
        assert any(s.code == "PowerState/stopped" for s in view.statuses)
        await (await c.virtual_machines.begin_start("rg-web", "web-05")).result()
        view = await c.virtual_machines.instance_view("rg-web", "web-05")
        assert any(s.code == "PowerState/running" for s in view.statuses)


async def test_throttled_request_with_retry_after_is_survived(make_sim, credential):
    from tests.fleetbuilder import scenario_fleet

    running = make_sim(scenario_fleet(), faults="429:0.3/GET", seed=3, page_size=100)
    async with compute(running, credential) as c:
        names = [vm.name async for vm in c.virtual_machines.list_all()]
        for _ in range(3):
            await c.virtual_machines.get("rg-web", "web-00")
    assert len(names) == 7
    statuses = [e["status"] for e in running.sim.log.entries]
    assert 429 in statuses and statuses[-1] == 200


async def test_subscription_throttling_sends_arm_headers(make_sim, credential):
    from tests.fleetbuilder import scenario_fleet

    running = make_sim(scenario_fleet())
    running.call(lambda: setattr(running.sim.throttle, "limits", {"reads": (3, 1), "writes": (200, 10), "deletes": (200, 10)}))
    seen = []

    def hook(resp):
        seen.append((resp.http_response.status_code, resp.http_response.headers.get("x-ms-ratelimit-remaining-subscription-reads")))

    async with compute(running, credential, retry_total=0) as c:
        for _ in range(3):
            await c.virtual_machines.get("rg-web", "web-00", raw_response_hook=hook)
        with pytest.raises(HttpResponseError) as err:
            await c.virtual_machines.get("rg-web", "web-00")
    assert [s for s, _ in seen] == [200, 200, 200]
    assert [r for _, r in seen] == ["2", "1", "0"]
    assert err.value.status_code == 429
    assert err.value.error.code == "SubscriptionRequestsThrottled"
    assert int(err.value.response.headers["Retry-After"]) >= 1


async def test_arc_has_no_power_operations(scenario_sim, credential):
    import ssl

    import httpx

    ctx = ssl.create_default_context(cafile=str(scenario_sim.ca_path))
    async with httpx.AsyncClient(verify=ctx, headers={"Authorization": "Bearer t"}) as client:
        r = await client.post(f"{scenario_sim.base_url}{arc_id('fs-00')}/start", params={"api-version": "2026-07-15"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "InvalidResourceType"


async def test_run_command_v2_by_command_id(scenario_sim, credential):
    async with compute(scenario_sim, credential) as c:
        rc = await (await c.virtual_machine_run_commands.begin_create_or_update(
            "rg-web", "web-03", "ipconfig", {"location": "westeurope", "properties": {"source": {"commandId": "IPConfig"}}})).result()
        assert rc.provisioning_state == "Succeeded"
        full = await c.virtual_machine_run_commands.get_by_virtual_machine("rg-web", "web-03", "ipconfig", expand="instanceView")
        assert "IPv4 Address" in full.instance_view.output
        with pytest.raises(HttpResponseError) as err:
            await c.virtual_machine_run_commands.begin_create_or_update(
                "rg-web", "web-03", "nope", {"location": "westeurope", "properties": {"source": {"commandId": "NoSuchCommand"}}})
        assert err.value.status_code == 400
        names = [r.name async for r in c.virtual_machine_run_commands.list_by_virtual_machine("rg-web", "web-03")]
        assert "nope" not in names
