"""The network interfaces and public IP addresses that the fleet's Azure VMs reference.

A fleet file describes machines, not their networks; but a VM document names its network interfaces
(``properties.networkProfile.networkInterfaces[].id``) and clients follow those ids: ``az vm list -d``
and ``az vm show -d`` read each interface for its private IP and MAC, and its public IP address. The
simulator serves them derived from the VM: the private IP and MAC are the ones ``ipconfig`` shows in the
guest (guest.vm_primary_address), so ARM and the guest agree.

About one VM in four has a public IP address (a stable hash of its id decides); the fleet file can
decide it instead: ``simulation.machines[id].publicIpAddress`` is an address, or ``false`` for none.
Addresses come from the documentation ranges (RFC 5737): they never route anywhere. A document of the
same id in the fleet itself takes precedence over the derived one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from . import guest
from .common import stable_guid
from .state import VM_TYPE, SimState, sub_rg_of

NIC_TYPE = "Microsoft.Network/networkInterfaces"
PUBLIC_IP_TYPE = "Microsoft.Network/publicIPAddresses"
_DOC_RANGES = ("198.51.100", "203.0.113", "192.0.2")  # RFC 5737 TEST-NET-2, -3, -1


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.lower().encode()).digest()[:8], "big")


def nic_ids(vm: dict) -> list[str]:
    """The network interface ids a VM document references, in its order (the first is the primary)."""
    refs = ((vm.get("properties") or {}).get("networkProfile") or {}).get("networkInterfaces") or []
    return [r["id"] for r in refs if isinstance(r, dict) and isinstance(r.get("id"), str) and "/" in r["id"]]


def public_ip_address(vm: dict, sim: dict) -> str | None:
    """The public IPv4 address of the VM's primary interface, or None when it has none."""
    pinned = sim.get("publicIpAddress")
    if pinned is False:
        return None
    if isinstance(pinned, str) and pinned:
        return pinned
    seed = _seed(vm["id"])
    if seed % 4 != 0:
        return None
    return f"{_DOC_RANGES[(seed >> 8) % 3]}.{1 + (seed >> 16) % 254}"


def public_ip_id(nic_id: str) -> str:
    """A public IP beside its interface, named after it as the portal names a new VM's (``<vm>-ip``)."""
    sub, rg = sub_rg_of(nic_id)
    name = nic_id.rsplit("/", 1)[1]
    stem = name[: -len("-nic01")] if name.lower().endswith("-nic01") else name.removesuffix("-nic")
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/publicIPAddresses/{stem}-ip"


def _rg_prefix(resource_id: str) -> str:
    sub, rg = sub_rg_of(resource_id)
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def interface_document(state: SimState, vm: dict, nic_id: str) -> dict:
    """The NetworkInterfaces_Get document of one of a VM's interfaces."""
    sim = state.sim_for(vm["id"])
    ids = nic_ids(vm)
    index = next((i for i, n in enumerate(ids) if n.lower() == nic_id.lower()), 0)
    ip, mac = guest.vm_primary_address(vm, sim)
    if index:  # a secondary interface: the next address, a MAC of its own
        ip = ip.rsplit(".", 1)[0] + f".{(int(ip.rsplit('.', 1)[1]) + index * 16) % 250 + 4}"
        mac = mac[:-2] + f"{(int(mac[-2:], 16) + index) % 256:02X}"
    rg = _rg_prefix(nic_id)
    rg_name = sub_rg_of(nic_id)[1]
    name = nic_id.rsplit("/", 1)[1]
    ipconfig: dict[str, Any] = {
        "privateIPAddress": ip, "privateIPAddressVersion": "IPv4", "privateIPAllocationMethod": "Dynamic",
        "primary": True, "provisioningState": "Succeeded",
        "subnet": {"id": f"{rg}/providers/Microsoft.Network/virtualNetworks/{rg_name}-vnet/subnets/default"},
    }
    if index == 0 and public_ip_address(vm, sim) is not None:
        ipconfig["publicIPAddress"] = {"id": public_ip_id(nic_id)}
    return {
        "name": name, "id": nic_id, "type": NIC_TYPE, "location": vm.get("location"),
        "etag": f'W/"{_seed(nic_id + "etag"):016x}"',
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": stable_guid("resourceGuid", nic_id),
            "ipConfigurations": [{"name": "ipconfig1", "id": f"{nic_id}/ipConfigurations/ipconfig1",
                                  "type": f"{NIC_TYPE}/ipConfigurations", "properties": ipconfig}],
            "dnsSettings": {"dnsServers": [], "appliedDnsServers": [],
                            "internalDomainNameSuffix": f"{_seed(rg):x}"[:12] + ".ax.internal.cloudapp.net"},
            "macAddress": mac,
            "enableAcceleratedNetworking": True,
            "enableIPForwarding": False,
            "disableTcpStateTracking": False,
            "vnetEncryptionSupported": False,
            "networkSecurityGroup": {"id": f"{rg}/providers/Microsoft.Network/networkSecurityGroups/{name}-nsg"},
            "primary": index == 0,
            "virtualMachine": {"id": vm["id"]},
            "nicType": "Standard",
        },
    }


def public_ip_document(vm: dict, nic_id: str, address: str) -> dict:
    """The PublicIPAddresses_Get document of the public IP on a VM's primary interface."""
    pip_id = public_ip_id(nic_id)
    name = pip_id.rsplit("/", 1)[1]
    label = name.lower()
    return {
        "name": name, "id": pip_id, "type": PUBLIC_IP_TYPE, "location": vm.get("location"),
        "etag": f'W/"{_seed(pip_id + "etag"):016x}"',
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": stable_guid("resourceGuid", pip_id),
            "ipAddress": address,
            "publicIPAddressVersion": "IPv4",
            "publicIPAllocationMethod": "Static",
            "idleTimeoutInMinutes": 4,
            "ipTags": [],
            "ddosSettings": {"protectionMode": "VirtualNetworkInherited"},
            "dnsSettings": {"domainNameLabel": label, "fqdn": f"{label}.{vm.get('location')}.cloudapp.azure.com"},
            "ipConfiguration": {"id": f"{nic_id}/ipConfigurations/ipconfig1"},
        },
    }


# ---- lookups ------------------------------------------------------------------------------------


def _own(state: SimState, type_name: str, subscription: str, resource_group: str | None) -> list[dict]:
    return [d for d in state.of_type(type_name.lower(), subscription)
            if resource_group is None or sub_rg_of(d["id"])[1].lower() == resource_group.lower()]


def interfaces(state: SimState, subscription: str, resource_group: str | None = None, *,
               derived_only: bool = False) -> Iterator[dict]:
    """Every network interface in a subscription (or one of its groups): the fleet's own (unless
    ``derived_only``), then those derived from the VMs that reference them."""
    own = {d["id"].lower() for d in state.of_type(NIC_TYPE.lower(), subscription)}
    if not derived_only:
        yield from _own(state, NIC_TYPE, subscription, resource_group)
    for vm in state.machines(VM_TYPE, subscription):
        for nic_id in nic_ids(vm):
            in_group = resource_group is None or sub_rg_of(nic_id)[1].lower() == resource_group.lower()
            if in_group and nic_id.lower() not in own and sub_rg_of(nic_id)[0].lower() == subscription.lower():
                yield interface_document(state, vm, nic_id)


def public_ips(state: SimState, subscription: str, resource_group: str | None = None, *,
               derived_only: bool = False) -> Iterator[dict]:
    """As ``interfaces``, for the public IP addresses on the VMs' primary interfaces."""
    own = {d["id"].lower() for d in state.of_type(PUBLIC_IP_TYPE.lower(), subscription)}
    if not derived_only:
        yield from _own(state, PUBLIC_IP_TYPE, subscription, resource_group)
    for vm in state.machines(VM_TYPE, subscription):
        ids = nic_ids(vm)
        address = public_ip_address(vm, state.sim_for(vm["id"])) if ids else None
        if address is None:
            continue
        pip_id = public_ip_id(ids[0])
        in_group = resource_group is None or sub_rg_of(pip_id)[1].lower() == resource_group.lower()
        if in_group and pip_id.lower() not in own and sub_rg_of(pip_id)[0].lower() == subscription.lower():
            yield public_ip_document(vm, ids[0], address)


def _vm_referencing(state: SimState, resource_id: str) -> dict | None:
    if state.network_index is None:
        index: dict[str, str] = {}
        for vm in state.all_machines():
            if vm["type"].lower() == VM_TYPE:
                for i, nic_id in enumerate(nic_ids(vm)):
                    index[nic_id.lower()] = vm["id"]
                    if i == 0:
                        index[public_ip_id(nic_id).lower()] = vm["id"]
        state.network_index = index
    vm_id = state.network_index.get(resource_id.lower())
    return state.get(vm_id) if vm_id else None


def find_interface(state: SimState, nic_id: str) -> dict | None:
    """The interface of that id: the fleet's document, or the one derived from the VM that references it."""
    doc = state.get(nic_id)
    if doc is not None:
        return doc
    vm = _vm_referencing(state, nic_id)
    return interface_document(state, vm, nic_id) if vm is not None else None


def find_public_ip(state: SimState, pip_id: str) -> dict | None:
    doc = state.get(pip_id)
    if doc is not None:
        return doc
    vm = _vm_referencing(state, pip_id)
    if vm is None:
        return None
    address = public_ip_address(vm, state.sim_for(vm["id"]))
    return public_ip_document(vm, nic_ids(vm)[0], address) if address is not None else None
