"""ARM's generic reads, as general tools make them: resource groups, resource lists, resource providers,
network interfaces and public IPs, and the VM extension image catalogue.

The console reads machines and their documents; an operator's own tools read more around them: ``az
group show`` (and ``az vm run-command create``, for the group's location), ``az resource list``, ``az
resource show`` (it asks the provider for API versions), ``az vm list -d`` (interfaces and public IPs)
and ``az vm extension set`` without ``--version`` (the latest version from the image catalogue). All of it
is derived from the fleet, so that it agrees with what the machines say.
"""

from __future__ import annotations

import re
from collections import Counter

from . import fleetgen, network
from .common import check_resource_group, check_subscription, not_found, page
from .server import ArmError, Ctx, Reply, Simulator
from .state import MACHINE_TYPES, SimState, sub_rg_of

# ---- resource groups ------------------------------------------------------------------------------


def _top_level(resource_id: str) -> bool:
    """``/subscriptions/s/resourceGroups/g/providers/Namespace/type/name``: a resource, not a child."""
    parts = resource_id.split("/")
    return len(parts) == 9 and parts[5].lower() == "providers"


def group_locations(state: SimState, subscription: str) -> dict[str, str]:
    """Each resource group's location: where most of its resources are (a group's location is only
    where its metadata lives, but operators create groups beside what they hold)."""
    seen: dict[str, Counter[str]] = {}
    for (_, sub), keys in state.by_type.items():
        if sub != subscription.lower():
            continue
        for key in keys:
            doc = state.docs.get(key)
            location = str((doc or {}).get("location") or "").lower()
            if doc is not None and location and location != "global" and _top_level(doc["id"]):
                seen.setdefault(sub_rg_of(doc["id"])[1].lower(), Counter())[location] += 1
    fallback = Counter(loc for counter in seen.values() for loc in counter.elements()).most_common(1)
    default = fallback[0][0] if fallback else "westeurope"
    rgs = state.resource_groups.get(subscription.lower(), {})
    return {low: (seen[low].most_common(1)[0][0] if low in seen else default) for low in rgs}


def _group_document(sub: str, rg: str, location: str) -> dict:
    return {"id": f"/subscriptions/{sub}/resourceGroups/{rg}", "name": rg, "type": "Microsoft.Resources/resourceGroups",
            "location": location, "properties": {"provisioningState": "Succeeded"}}


def list_resource_groups(sim: Simulator, ctx: Ctx) -> Reply:
    sub = check_subscription(sim, ctx.match["sub"])["subscriptionId"]
    rgs = sim.state.resource_groups.get(sub.lower(), {})
    where = group_locations(sim.state, sub)
    items = [_group_document(sub, rg, where[rg.lower()]) for rg in sorted(rgs.values(), key=str.lower)]
    return page(sim, ctx, items)


def get_resource_group(sim: Simulator, ctx: Ctx) -> Reply:
    sub = check_subscription(sim, ctx.match["sub"])["subscriptionId"]
    rg = sim.state.resource_groups.get(sub.lower(), {}).get(ctx.match["rg"].lower())
    if rg is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{ctx.match['rg']}' could not be found.")
    if ctx.method == "HEAD":  # ResourceGroups_CheckExistence (az group exists)
        return Reply(204, None)
    return Reply(200, _group_document(sub, rg, group_locations(sim.state, sub)[rg.lower()]))


# ---- generic resource lists -------------------------------------------------------------------------

_GENERIC_KEYS = ("id", "name", "type", "kind", "location", "extendedLocation", "managedBy", "sku", "plan", "identity",
                 "zones", "tags")
_CLAUSE = re.compile(r"^\s*(?:(?P<field>resourceType|resourceGroup|name|location|tagName|tagValue)\s+eq\s+'(?P<value>(?:[^']|'')*)'"
                     r"|substringof\(\s*'(?P<sub>(?:[^']|'')*)'\s*,\s*name\s*\))\s*$", re.IGNORECASE)


def _listed(doc: dict) -> bool:
    """What ARM's resource list holds: tracked resources and machine extensions, not proxy documents
    (policy states, assessments, associations, patch results) or their children."""
    parts = doc["id"].split("/")
    if len(parts) < 9 or parts[5].lower() != "providers" or "/providers/" in "/".join(parts[6:]).lower():
        return False
    return _top_level(doc["id"]) or (len(parts) == 11 and f"{parts[6]}/{parts[7]}".lower() in MACHINE_TYPES
                                     and parts[9].lower() == "extensions")


def _generic(doc: dict) -> dict:
    out = {k: doc[k] for k in _GENERIC_KEYS if k in doc and doc[k] is not None}
    if "identity" in out:  # the list shows the identity's kind and ids, as ARM does
        out["identity"] = {k: v for k, v in out["identity"].items() if k in ("type", "principalId", "tenantId",
                                                                             "userAssignedIdentities")}
    return out


def _filter(ctx: Ctx):
    """``$filter`` of Resources_List as az sends it (-g, --resource-type, --name, --location, --tag), as a predicate."""
    text = ctx.q("$filter")
    if not text:
        return lambda doc: True
    wanted: dict[str, str] = {}
    contains: list[str] = []
    for clause in re.split(r"\s+and\s+", text, flags=re.IGNORECASE):
        m = _CLAUSE.match(clause)
        if m is None:
            raise ArmError(400, "InvalidFilterInQueryString",
                           f"Invalid $filter '{text}': the simulator understands resourceType, resourceGroup, name, "
                           "location, tagName and tagValue with eq, and substringof('…', name), joined by and (docs/simulator.md).")
        if m["sub"] is not None:
            contains.append(m["sub"].replace("''", "'").lower())
        else:
            wanted[m["field"].lower()] = m["value"].replace("''", "'")

    def keep(doc: dict) -> bool:
        if "resourcetype" in wanted and doc["type"].lower() != wanted["resourcetype"].lower():
            return False
        if "resourcegroup" in wanted and sub_rg_of(doc["id"])[1].lower() != wanted["resourcegroup"].lower():
            return False
        if "name" in wanted and doc["name"].lower() != wanted["name"].lower():
            return False
        if "location" in wanted and str(doc.get("location", "")).lower() != wanted["location"].lower():
            return False
        tags = {str(k).lower(): v for k, v in (doc.get("tags") or {}).items()}
        if "tagname" in wanted and wanted["tagname"].lower() not in tags:
            return False
        if "tagvalue" in wanted and ("tagname" not in wanted or tags.get(wanted["tagname"].lower()) != wanted["tagvalue"]):
            return False
        return all(c in doc["name"].lower() for c in contains)

    return keep


def list_resources(sim: Simulator, ctx: Ctx) -> Reply:
    """Resources_List (a subscription) and Resources_ListByResourceGroup, paged."""
    g = ctx.match.groupdict()
    sub = check_subscription(sim, g["sub"])["subscriptionId"]
    rg = g.get("rg")
    if rg is not None:
        check_resource_group(sim, sub, rg)
    keep = _filter(ctx)
    state = sim.state
    docs: list[dict] = []
    for (_, s), keys in state.by_type.items():
        if s != sub.lower():
            continue
        for key in keys:
            doc = state.docs.get(key)
            if doc is not None and _listed(doc) and (rg is None or sub_rg_of(doc["id"])[1].lower() == rg.lower()):
                docs.append(doc)
    docs += network.interfaces(state, sub, rg, derived_only=True)
    docs += network.public_ips(state, sub, rg, derived_only=True)
    docs = sorted((d for d in docs if keep(d)), key=lambda d: d["id"].lower())
    return page(sim, ctx, docs, _generic)


# ---- resource providers ------------------------------------------------------------------------------

# Namespaces the simulator serves, with the API versions each announces (newest first; the examples'
# versions among them). Resource types come from the fleet, plus the ones every subscription has.
_PROVIDERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Microsoft.Compute": (("2026-04-01", "2025-04-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-09-01", "2023-03-01"),
                          ("virtualMachines", "virtualMachines/extensions", "virtualMachines/runCommands", "locations",
                           "locations/operations", "locations/publishers", "disks")),
    "Microsoft.HybridCompute": (("2026-09-01", "2025-01-13", "2024-07-10", "2024-07-01-preview", "2022-12-27"),
                                ("machines", "machines/extensions", "machines/runCommands", "locations",
                                 "locations/operationStatus", "locations/operationResults")),
    "Microsoft.Network": (("2025-09-01", "2025-07-01", "2024-05-01", "2023-11-01"),
                          ("networkInterfaces", "publicIPAddresses", "virtualNetworks", "networkSecurityGroups")),
    "Microsoft.Resources": (("2025-04-01", "2022-12-01", "2021-04-01"), ("resourceGroups", "tags", "subscriptions")),
    "Microsoft.ResourceGraph": (("2022-10-01", "2021-03-01"), ("resources",)),
    "Microsoft.GuestConfiguration": (("2024-04-05", "2022-01-25"), ("guestConfigurationAssignments",)),
    "Microsoft.Insights": (("2023-03-11", "2022-06-01"), ("dataCollectionRules", "dataCollectionRuleAssociations")),
    "Microsoft.Security": (("2024-01-01", "2021-06-01"), ("pricings", "assessments")),
    "Microsoft.RecoveryServices": (("2026-08-01", "2026-05-01", "2026-02-01", "2023-08-01"), ("vaults", "locations")),
    "Microsoft.Maintenance": (("2025-11-01", "2023-04-01"), ("maintenanceConfigurations", "configurationAssignments")),
    "Microsoft.Automanage": (("2022-05-04",), ("configurationProfileAssignments", "bestPractices")),
    "Microsoft.StorageSync": (("2025-12-01", "2022-09-01"), ("storageSyncServices",)),
    "Microsoft.PolicyInsights": (("2024-10-01", "2019-10-01"), ("policyStates",)),
    "Microsoft.OperationalInsights": (("2023-09-01", "2022-10-01"), ("workspaces",)),
    "Microsoft.OperationsManagement": (("2015-11-01-preview",), ("solutions",)),
    "Microsoft.ManagedIdentity": (("2024-11-30", "2023-01-31"), ("userAssignedIdentities",)),
}
_EXTENSION_TYPES = ("guestconfigurationassignments", "datacollectionruleassociations", "pricings", "assessments",
                    "configurationprofileassignments", "configurationassignments", "policystates")


def _provider(state: SimState, subscription: str, namespace: str) -> dict:
    versions, base_types = _PROVIDERS[namespace]
    locations = sorted({str(d.get("location")) for d in state.all_machines() if d.get("location")}) or ["westeurope"]
    names = {t.lower(): t for t in base_types}
    prefix = namespace.lower() + "/"
    for (type_lower, _), _ids in state.by_type.items():
        if type_lower.startswith(prefix):
            rest = type_lower[len(prefix):]
            names.setdefault(rest, rest)
    types = []
    for rest in sorted(names, key=str.lower):
        name = names[rest]
        types.append({"resourceType": name, "locations": [] if rest.split("/")[0] in _EXTENSION_TYPES else locations,
                      "apiVersions": list(versions), "defaultApiVersion": next((v for v in versions if "preview" not in v), versions[0]),
                      "capabilities": "SupportsTags, SupportsLocation" if "/" not in rest else "None"})
    return {"id": f"/subscriptions/{subscription}/providers/{namespace}", "namespace": namespace,
            "registrationState": "Registered", "registrationPolicy": "RegistrationRequired", "resourceTypes": types}


def list_providers(sim: Simulator, ctx: Ctx) -> Reply:
    sub = check_subscription(sim, ctx.match["sub"])["subscriptionId"]
    return page(sim, ctx, [_provider(sim.state, sub, ns) for ns in sorted(_PROVIDERS, key=str.lower)])


def get_provider(sim: Simulator, ctx: Ctx) -> Reply:
    sub = check_subscription(sim, ctx.match["sub"])["subscriptionId"]
    namespace = next((ns for ns in _PROVIDERS if ns.lower() == ctx.match["ns"].lower()), None)
    if namespace is None:
        raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{ctx.match['ns']}' is invalid.")
    return Reply(200, _provider(sim.state, sub, namespace))


# ---- network interfaces and public IPs --------------------------------------------------------------


def get_network_interface(sim: Simulator, ctx: Ctx) -> Reply:
    return _network_get(sim, ctx, "networkInterfaces", network.find_interface)


def get_public_ip(sim: Simulator, ctx: Ctx) -> Reply:
    return _network_get(sim, ctx, "publicIPAddresses", network.find_public_ip)


def _network_get(sim: Simulator, ctx: Ctx, collection: str, find) -> Reply:
    g = ctx.match.groupdict()
    check_resource_group(sim, g["sub"], g["rg"])
    rid = f"/subscriptions/{g['sub']}/resourceGroups/{g['rg']}/providers/Microsoft.Network/{collection}/{g['name']}"
    doc = find(sim.state, rid)
    if doc is None:
        raise not_found(f"Microsoft.Network/{collection}", g["name"], g["rg"])
    return Reply(200, doc)


def list_network(collection: str):
    lister = {"networkInterfaces": network.interfaces, "publicIPAddresses": network.public_ips}[collection]

    def handler(sim: Simulator, ctx: Ctx) -> Reply:
        g = ctx.match.groupdict()
        sub = check_subscription(sim, g["sub"])["subscriptionId"]
        if g.get("rg"):
            check_resource_group(sim, sub, g["rg"])
        return page(sim, ctx, list(lister(sim.state, sub, g.get("rg"))))

    return handler


# ---- VM extension images ----------------------------------------------------------------------------


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))


def _catalogue() -> dict[str, dict[str, tuple[str, ...]]]:
    """publisher -> extension type -> versions, oldest first (the fleet generator's catalogue)."""
    return fleetgen.extension_images()


def _image_id(sub: str, loc: str, *parts: str) -> str:
    names = ("Publishers", "ArtifactTypes/VMExtension/Types", "Versions")
    path = "/".join(f"{n}/{p}" for n, p in zip(names, parts, strict=False))
    return f"/Subscriptions/{sub}/Providers/Microsoft.Compute/Locations/{loc}/{path}"


def _image(sub: str, loc: str, publisher: str, etype: str, version: str | None = None) -> dict:
    parts = (publisher, etype) if version is None else (publisher, etype, version)
    rtype = "Microsoft.Compute/locations/publishers/artifacttypes/types" + ("/versions" if version else "")
    return {"id": _image_id(sub, loc, *parts), "name": version or etype, "type": rtype, "location": loc, "tags": {},
            "properties": {"operatingSystem": "Windows", "computeRole": "IaaS", "handlerSchema": "",
                           "vmScaleSetEnabled": True, "supportsMultipleExtensions": False}}


def _publisher(ctx: Ctx) -> tuple[str, dict[str, tuple[str, ...]]]:
    catalogue = _catalogue()
    name = ctx.match["publisher"]
    found = next((p for p in catalogue if p.lower() == name.lower()), None)
    if found is None:
        raise ArmError(404, "NotFound", f"Artifact: VMExtensionType not found for publisher '{name}' in location "
                                        f"'{ctx.match['loc']}'.")
    return found, catalogue[found]


def _extension_type(ctx: Ctx) -> tuple[str, str, tuple[str, ...]]:
    publisher, types = _publisher(ctx)
    name = ctx.match["etype"]
    found = next((t for t in types if t.lower() == name.lower()), None)
    if found is None:
        raise ArmError(404, "NotFound", f"Artifact: VMExtensionType '{name}' not found for publisher '{publisher}' in "
                                        f"location '{ctx.match['loc']}'.")
    return publisher, found, types[found]


def list_image_publishers(sim: Simulator, ctx: Ctx) -> Reply:
    """VirtualMachineImages_ListPublishers: a bare array, as the API answers it."""
    sub = check_subscription(sim, ctx.match["sub"])["subscriptionId"]
    loc = ctx.match["loc"]
    names = sorted({*_catalogue(), "MicrosoftWindowsServer"}, key=str.lower)
    return Reply(200, [{"name": n, "location": loc, "id": _image_id(sub, loc, n)} for n in names])


def list_extension_types(sim: Simulator, ctx: Ctx) -> Reply:
    sub = check_subscription(sim, ctx.match["sub"])["subscriptionId"]
    if ctx.match["publisher"].lower() == "microsoftwindowsserver":
        return Reply(200, [])  # an image publisher with no extensions
    publisher, types = _publisher(ctx)
    return Reply(200, [_image(sub, ctx.match["loc"], publisher, t) for t in sorted(types, key=str.lower)])


def list_extension_versions(sim: Simulator, ctx: Ctx) -> Reply:
    """VirtualMachineExtensionImages_ListVersions with ``$filter`` (startswith(name,'…')), ``$orderby``
    (name [asc|desc]) and ``$top``."""
    sub = check_subscription(sim, ctx.match["sub"])["subscriptionId"]
    publisher, etype, versions = _extension_type(ctx)
    chosen = list(versions)
    text = ctx.q("$filter")
    if text:
        m = re.fullmatch(r"\s*startswith\(\s*name\s*,\s*'([^']*)'\s*\)\s*", text, re.IGNORECASE)
        if m is None:
            raise ArmError(400, "InvalidParameter", f"The $filter '{text}' is not supported: use startswith(name,'…').")
        chosen = [v for v in chosen if v.startswith(m[1])]
    order = (ctx.q("$orderby") or "name asc").strip().lower()
    if order not in ("name", "name asc", "name desc"):
        raise ArmError(400, "InvalidParameter", f"The $orderby '{order}' is not supported: use name asc or name desc.")
    chosen.sort(key=_version_key, reverse=order == "name desc")
    top = ctx.q("$top")
    if top is not None:
        if not top.isdigit():
            raise ArmError(400, "InvalidParameter", f"The $top '{top}' is not a number.")
        chosen = chosen[: int(top)]
    return Reply(200, [_image(sub, ctx.match["loc"], publisher, etype, v) for v in chosen])


def get_extension_version(sim: Simulator, ctx: Ctx) -> Reply:
    sub = check_subscription(sim, ctx.match["sub"])["subscriptionId"]
    publisher, etype, versions = _extension_type(ctx)
    version = next((v for v in versions if v.lower() == ctx.match["version"].lower()), None)
    if version is None:
        raise ArmError(404, "NotFound", f"Artifact: VMExtensionType version '{ctx.match['version']}' not found for "
                                        f"'{publisher}.{etype}' in location '{ctx.match['loc']}'.")
    return Reply(200, _image(sub, ctx.match["loc"], publisher, etype, version))
