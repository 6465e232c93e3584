"""Writes: what each action does to the simulator's state, and when.

Every action is validated up front (the errors ARM would answer synchronously), then runs as a
long-running operation whose effect lands at ``finish_at`` — whether or not anybody polls.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from . import guest
from .common import stable_guid
from .server import ArmError, Ctx, Reply, Simulator
from .state import (
    Operation,
    SimState,
    completion,
    iso,
    power_status,
    set_power_state,
    sub_rg_of,
    utcnow,
)

CLASSIFICATION_KEYS = {
    "critical": "critical", "security": "security", "updaterollup": "updateRollup", "featurepack": "featurePack",
    "servicepack": "servicePack", "definition": "definition", "tools": "tools", "updates": "updates",
}


def _handlers():
    from . import handlers  # circular at import time only

    return handlers


def provider_of(doc: dict) -> str:
    return "Microsoft.Compute" if doc["type"].lower().startswith("microsoft.compute") else "Microsoft.HybridCompute"


def is_vm(doc: dict) -> bool:
    return doc["type"].lower() == "microsoft.compute/virtualmachines"


def now_iso() -> str:
    return iso(utcnow())


def start_op(sim: Simulator, doc: dict, kind: str, complete: str | None = None, args: dict | None = None,
             duration: float | None = None, start_at: float | None = None) -> Operation:
    """A long-running operation on ``doc``; at its end the completion registered as ``complete`` runs with
    ``args`` (JSON: ids, not documents, so that it can run in a later process)."""
    sub, _ = sub_rg_of(doc["id"])
    return sim.state.new_operation(subscription=sub, location=doc.get("location", ""), provider=provider_of(doc),
                                   kind=kind, target=doc["id"], duration=duration, complete=complete,
                                   complete_args=args, start_at=start_at)


def _doc(state: SimState, resource_id: str) -> dict | None:
    """A document an operation acts on, fetched again when it completes (it may be gone by then)."""
    return state.get(resource_id)


@completion("resource.provisioned")
def _complete_provisioned(state: SimState, op: Operation, *, resource_id: str) -> None:
    doc = _doc(state, resource_id)
    if doc is not None:
        doc["properties"]["provisioningState"] = "Succeeded"
        state.reindex(doc)


@completion("resource.delete")
def _complete_delete(state: SimState, op: Operation, *, resource_id: str) -> None:
    state.delete(resource_id)


def accepted(sim: Simulator, ctx: Ctx, op: Operation) -> Reply:
    return Reply(202, None, _handlers().lro_headers(sim, ctx, op))


# ---- preconditions --------------------------------------------------------------------------------


def require_vm_running(doc: dict, what: str) -> None:
    state = vm_power_state(doc)
    if state not in ("running", "starting"):
        raise ArmError(409, "OperationNotAllowed",
                       f"Cannot {what} in the VM '{doc['name']}' when the VM is not running. Current power state: {state}.")


def arc_status(doc: dict) -> str:
    return str((doc.get("properties") or {}).get("status") or "")


def require_arc_connected(doc: dict, what: str) -> None:
    status = arc_status(doc)
    if status.lower() != "connected":
        since = (doc.get("properties") or {}).get("lastStatusChange") or "unknown"
        raise ArmError(
            409, "MachineNotConnected",
            f"Cannot {what} on machine '{doc['name']}': its Connected Machine agent is {status or 'not connected'} "
            f"(last status change {since}). The agent must be Connected for this operation.",
        )


def require_guest_ready(doc: dict, what: str) -> None:
    if is_vm(doc):
        require_vm_running(doc, what)
    else:
        require_arc_connected(doc, what)


# ---- power (VMs only) -----------------------------------------------------------------------------

_TRANSITION = {"start": ("starting", "running"), "poweroff": ("stopping", "stopped"),
               "restart": ("starting", "running"), "deallocate": ("deallocating", "deallocated")}


def vm_power(sim: Simulator, ctx: Ctx) -> Reply:
    doc = _handlers().machine_from(sim, ctx)
    action = ctx.match["action"].lower()
    during, final = _TRANSITION[action]
    current = vm_power_state(doc)
    if action == "restart" and current not in ("running", "starting"):
        raise ArmError(409, "OperationNotAllowed", f"Cannot restart the VM '{doc['name']}' because it is {current}.")
    sim_entry = sim.state.sim_for(doc["id"])
    iv = doc["properties"].setdefault("instanceView", {})
    if final in ("stopped", "deallocated") and "vmAgent" in iv:
        sim_entry.setdefault("_stashedAgent", iv.pop("vmAgent"))
        sim.state.sim_machines[doc["id"].lower()] = sim_entry
    set_power_state(doc, during)
    sim.state.reindex(doc)
    return accepted(sim, ctx, start_op(sim, doc, f"vm.{action}", "vm.power", {"machine": doc["id"], "final": final}))


@completion("vm.power")
def _complete_power(state: SimState, op: Operation, *, machine: str, final: str) -> None:
    doc = _doc(state, machine)
    if doc is None:
        return
    set_power_state(doc, final)
    if final == "running":
        stashed = state.sim_for(doc["id"]).pop("_stashedAgent", None)
        iv = doc["properties"]["instanceView"]
        if stashed is not None:
            iv["vmAgent"] = stashed
        elif "vmAgent" not in iv:  # a VM that was deallocated in the fleet file boots with a ready agent
            iv["vmAgent"] = {"vmAgentVersion": "2.7.41491.1102", "statuses": [
                {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready",
                 "message": "GuestAgent is running and processing the extensions.", "time": now_iso()}]}
    state.reindex(doc)


def vm_power_state(doc: dict) -> str:
    st = power_status(doc)
    return st["code"].split("/", 1)[1] if st else "unknown"


# ---- patches --------------------------------------------------------------------------------------


def available_patches(state: SimState, doc: dict) -> list[dict]:
    """The machine's current list of missing patches (simulation override, else its softwarePatches docs)."""
    entry = state.sim_for(doc["id"])
    if "availablePatches" in entry:
        return entry["availablePatches"]
    out = []
    for p in state.children_of(f"{doc['id']}/patchAssessmentResults/latest", "/softwarepatches"):
        props = p.get("properties") or {}
        out.append({
            "patchId": props.get("patchId") or p["name"],
            "name": props.get("patchName") or p["name"],
            "kbId": str(props.get("kbId") or ""),
            "version": props.get("version") or "",
            "classifications": list(props.get("classifications") or []),
            "rebootBehavior": props.get("rebootBehavior") or "CanRequestReboot",
            "publishedDate": props.get("publishedDateTime"),
        })
    entry["availablePatches"] = out
    state.sim_machines[doc["id"].lower()] = entry
    return out


def _counts(patches: list[dict]) -> dict[str, int]:
    counts = dict.fromkeys(["critical", "security", "updateRollup", "featurePack", "servicePack", "definition", "tools", "updates", "other"], 0)
    for p in patches:
        cls = [c.lower() for c in p.get("classifications") or []]
        key = next((CLASSIFICATION_KEYS[c] for c in cls if c in CLASSIFICATION_KEYS), "other")
        counts[key] += 1
    return counts


def _critical_security(patches: list[dict]) -> int:
    return sum(1 for p in patches if {c.lower() for c in p.get("classifications") or []} & {"critical", "security"})


def write_assessment(state: SimState, doc: dict, patches: list[dict], *, activity: str, started: str,
                     reboot_pending: bool, started_by: str = "User") -> None:
    """Rewrite the ARG patch assessment documents (summary + one per patch) and the VM's patchStatus."""
    base = f"{doc['id']}/patchAssessmentResults/latest"
    for child in state.children_of(base, "/softwarepatches"):
        state.delete(child["id"])
    provider_type = doc["type"] + "/patchAssessmentResults"
    ended = now_iso()
    summary = state.get(base) or {"id": base, "name": "latest", "type": provider_type}
    summary["properties"] = {
        "status": "Succeeded",
        "rebootPending": reboot_pending,
        "patchServiceUsed": "WU",
        "osType": "Windows",
        "startedBy": started_by,
        "startDateTime": started,
        "lastModifiedDateTime": ended,
        "assessmentActivityId": activity,
        "availablePatchCountByClassification": _counts(patches),
        "errorDetails": None,
    }
    state.put(summary)
    for p in patches:
        pid = p.get("patchId") or p.get("name")
        state.put({
            "id": f"{base}/softwarePatches/{pid}",
            "name": pid,
            "type": provider_type + "/softwarePatches",
            "properties": {
                "patchId": pid, "patchName": p.get("name"), "kbId": p.get("kbId"), "version": p.get("version", ""),
                "classifications": p.get("classifications", []), "rebootBehavior": p.get("rebootBehavior"),
                "publishedDateTime": p.get("publishedDate"), "lastModifiedDateTime": ended,
                "osType": "Windows", "patchAssessmentStatus": "Available",
            },
        })
    if is_vm(doc):
        ps = doc["properties"].setdefault("instanceView", {}).setdefault("patchStatus", {})
        ps["availablePatchSummary"] = {
            "status": "Succeeded", "assessmentActivityId": activity, "rebootPending": reboot_pending,
            "criticalAndSecurityPatchCount": _critical_security(patches),
            "otherPatchCount": len(patches) - _critical_security(patches),
            "startTime": started, "lastModifiedTime": ended, "error": None,
        }
        state.reindex(doc)


def _reboot_pending(state: SimState, doc: dict) -> bool:
    summary = state.get(f"{doc['id']}/patchAssessmentResults/latest")
    if summary is not None:
        return bool((summary.get("properties") or {}).get("rebootPending"))
    if is_vm(doc):
        aps = ((doc["properties"].get("instanceView") or {}).get("patchStatus") or {}).get("availablePatchSummary") or {}
        return bool(aps.get("rebootPending"))
    return False


def assess_patches(sim: Simulator, ctx: Ctx) -> Reply:
    doc = _handlers().machine_from(sim, ctx)
    require_guest_ready(doc, "assess patches")
    args = {"machine": doc["id"], "started": now_iso(), "activity": str(uuid.uuid4())}
    return accepted(sim, ctx, start_op(sim, doc, "patch.assess", "patch.assess", args))


@completion("patch.assess")
def _complete_assess(state: SimState, op: Operation, *, machine: str, started: str, activity: str) -> None:
    doc = _doc(state, machine)
    if doc is None:
        return
    patches = available_patches(state, doc)
    pending = _reboot_pending(state, doc)
    write_assessment(state, doc, patches, activity=activity, started=started, reboot_pending=pending)
    cs = _critical_security(patches)
    if is_vm(doc):
        op.result = {
            "status": "Succeeded", "assessmentActivityId": activity, "rebootPending": pending,
            "criticalAndSecurityPatchCount": cs, "otherPatchCount": len(patches) - cs,
            "startDateTime": started,
            "availablePatches": [
                {"patchId": p.get("patchId"), "name": p.get("name"), "version": p.get("version", ""),
                 "kbId": p.get("kbId"), "classifications": p.get("classifications", []),
                 "rebootBehavior": p.get("rebootBehavior"), "activityId": activity,
                 "publishedDate": p.get("publishedDate"), "lastModifiedDateTime": now_iso(),
                 "assessmentState": "Available"}
                for p in patches
            ],
            "error": None,
        }
    else:
        op.result = {
            "status": "Succeeded", "assessmentActivityId": activity, "rebootPending": pending,
            "availablePatchCountByClassification": _counts(patches), "startDateTime": started,
            "lastModifiedDateTime": now_iso(), "startedBy": "User", "patchServiceUsed": "WU",
            "osType": "Windows", "errorDetails": None,
        }


def _selected(p: dict, params: dict) -> tuple[bool, str]:
    """Whether installPatches picks this patch: (selected, state if not selected)."""
    win = params.get("windowsParameters") or {}
    kb = str(p.get("kbId") or "")
    excluded = {str(k).upper().removeprefix("KB") for k in win.get("kbNumbersToExclude") or []}
    included = {str(k).upper().removeprefix("KB") for k in win.get("kbNumbersToInclude") or []}
    classes = {str(c).lower() for c in win.get("classificationsToInclude") or []}
    kbn = kb.upper().removeprefix("KB")
    if kbn in excluded:
        return False, "Excluded"
    if win.get("excludeKbsRequiringReboot") and p.get("rebootBehavior") == "AlwaysRequiresReboot":
        return False, "Excluded"
    if kbn in included:
        return True, ""
    if classes & {c.lower() for c in p.get("classifications") or []}:
        return True, ""
    return False, "NotSelected"


def install_patches(sim: Simulator, ctx: Ctx) -> Reply:
    doc = _handlers().machine_from(sim, ctx)
    params = ctx.body or {}
    if not isinstance(params, dict) or not params.get("maximumDuration") or not params.get("rebootSetting"):
        raise ArmError(400, "InvalidParameter",
                       "Required parameters 'maximumDuration' and 'rebootSetting' must be provided.", target="installPatchesInput")
    if str(params["rebootSetting"]) not in ("IfRequired", "Never", "Always"):
        raise ArmError(400, "InvalidParameter", f"rebootSetting '{params['rebootSetting']}' is not one of IfRequired, Never, Always.")
    require_guest_ready(doc, "install patches")
    args = {"machine": doc["id"], "params": params, "started": now_iso(), "activity": str(uuid.uuid4())}
    return accepted(sim, ctx, start_op(sim, doc, "patch.install", "patch.install", args))


@completion("patch.install")
def _complete_install(state: SimState, op: Operation, *, machine: str, params: dict, started: str,
                      activity: str) -> None:
    doc = _doc(state, machine)
    if doc is None:
        return
    patches = available_patches(state, doc)
    installed, remaining, rows = [], [], []
    excluded = not_selected = 0
    for p in patches:
        ok, why = _selected(p, params)
        if ok:
            installed.append(p)
        else:
            remaining.append(p)
            excluded += why == "Excluded"
            not_selected += why == "NotSelected"
        rows.append({"patchId": p.get("patchId"), "name": p.get("name"), "version": p.get("version", ""),
                     "kbId": p.get("kbId"), "classifications": p.get("classifications", []),
                     "installationState": "Installed" if ok else why})
    needs_reboot = any(p.get("rebootBehavior") in ("AlwaysRequiresReboot", "CanRequestReboot") for p in installed)
    setting = params["rebootSetting"]
    if setting == "Always" or (needs_reboot and setting == "IfRequired"):
        reboot_status, pending = "Completed", False
    elif needs_reboot:
        reboot_status, pending = "Required", True
    else:
        reboot_status, pending = "NotNeeded", _reboot_pending(state, doc)
    ended = now_iso()
    entry = state.sim_for(doc["id"])
    entry["availablePatches"] = remaining
    # what the guest now has: Get-HotFix lists these (sim/guest.py)
    entry["_installedPatches"] = [*entry.get("_installedPatches", []),
                                  *({"kbId": p.get("kbId"), "classifications": p.get("classifications", []),
                                     "installedOn": ended} for p in installed if p.get("kbId"))]
    state.sim_machines[doc["id"].lower()] = entry
    hist_id = f"{doc['id']}/patchInstallationResults/{activity}"
    state.put({
        "id": hist_id, "name": activity, "type": doc["type"] + "/patchInstallationResults",
        "properties": {
            "status": "Succeeded", "installationActivityId": activity, "rebootStatus": reboot_status,
            "maintenanceWindowExceeded": False, "installedPatchCount": len(installed), "failedPatchCount": 0,
            "pendingPatchCount": 0, "excludedPatchCount": excluded, "notSelectedPatchCount": not_selected,
            "startDateTime": started, "lastModifiedDateTime": ended, "startedBy": "User",
            "patchServiceUsed": "WU", "osType": "Windows", "maintenanceRunId": None, "errorDetails": None,
        },
    })
    # Update Manager assesses again after an installation.
    write_assessment(state, doc, remaining, activity=str(uuid.uuid4()), started=started, reboot_pending=pending,
                     started_by="Platform")
    if is_vm(doc):
        doc["properties"]["instanceView"].setdefault("patchStatus", {})["lastPatchInstallationSummary"] = {
            "status": "Succeeded", "installationActivityId": activity, "maintenanceWindowExceeded": False,
            "notSelectedPatchCount": not_selected, "excludedPatchCount": excluded, "pendingPatchCount": 0,
            "installedPatchCount": len(installed), "failedPatchCount": 0, "startTime": started,
            "lastModifiedTime": ended, "error": None,
        }
        state.reindex(doc)
        op.result = {
            "status": "Succeeded", "installationActivityId": activity, "rebootStatus": reboot_status,
            "maintenanceWindowExceeded": False, "excludedPatchCount": excluded,
            "notSelectedPatchCount": not_selected, "pendingPatchCount": 0,
            "installedPatchCount": len(installed), "failedPatchCount": 0, "patches": rows,
            "startDateTime": started, "error": None,
        }
    else:
        op.result = {
            "status": "Succeeded", "installationActivityId": activity, "rebootStatus": reboot_status,
            "maintenanceWindowExceeded": False, "excludedPatchCount": excluded,
            "notSelectedPatchCount": not_selected, "pendingPatchCount": 0,
            "installedPatchCount": len(installed), "failedPatchCount": 0, "startDateTime": started,
            "lastModifiedDateTime": ended, "startedBy": "User", "patchServiceUsed": "WU", "osType": "Windows",
            "errorDetails": None,
        }


# ---- run commands ---------------------------------------------------------------------------------


def _run_script(state: SimState, doc: dict, script: str, parameters: dict[str, str]) -> guest.ScriptResult:
    return guest.simulate_script(script, doc, extensions=state.extensions_of(doc["id"]), sim=state.sim_for(doc["id"]),
                                 now=utcnow(), parameters=parameters)


def legacy_run_command(sim: Simulator, ctx: Ctx) -> Reply:
    doc = _handlers().machine_from(sim, ctx)
    body = ctx.body or {}
    command_id = str(body.get("commandId") or "")
    if not command_id:
        raise ArmError(400, "InvalidParameter", "Required parameter 'commandId' is missing (null).", target="commandId")
    require_vm_running(doc, "run a command")
    key = doc["id"].lower()
    running = sim.state.legacy_run.get(key)
    if running and not sim.state.operations[running].done:
        raise ArmError(409, "Conflict",
                       "Run command extension execution is in progress. Please wait for completion before invoking a run command.")
    lines = [str(s) for s in body.get("script") or []]
    params = {str(p.get("name")): str(p.get("value")) for p in body.get("parameters") or [] if isinstance(p, dict)}
    try:
        result = guest.simulate_command_id(command_id, lines, doc, extensions=sim.state.extensions_of(doc["id"]),
                                           sim=sim.state.sim_for(doc["id"]), now=utcnow(), parameters=params)
    except ValueError as e:
        raise ArmError(400, "InvalidParameter", f"The run command '{command_id}' is not supported: {e}", target="commandId") from None

    op = start_op(sim, doc, "runcommand.legacy", "runcommand.legacy", {"stdout": result.stdout, "stderr": result.stderr},
                  duration=sim.state.config.run_seconds(result.duration_s))
    sim.state.legacy_run[key] = op.id
    return accepted(sim, ctx, op)


@completion("runcommand.legacy")
def _complete_legacy_run(state: SimState, op: Operation, *, stdout: str, stderr: str) -> None:
    out, _ = guest.cap_output(stdout)
    err, _ = guest.cap_output(stderr)
    op.result = {"value": [
        {"code": "ComponentStatus/StdOut/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "message": out},
        {"code": "ComponentStatus/StdErr/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "message": err},
    ]}


def refresh_execution_state(sim: Simulator, rc_doc: dict, view: dict) -> None:
    """A run command still executing reports Pending/Running from its schedule."""
    if view.get("executionState") in ("Pending", "Running"):
        sched = sim.state.sim_for(rc_doc["id"]).get("_schedule")
        if sched:
            now = sim.state.clock()
            view["executionState"] = "Pending" if now < sched[0] else "Running"


def put_run_command(sim: Simulator, ctx: Ctx) -> Reply:
    doc = _handlers().machine_from(sim, ctx)
    body = ctx.body
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid: 'properties' is required.")
    props_in = body["properties"]
    source = props_in.get("source") or {}
    if not any(source.get(k) for k in ("script", "scriptUri", "commandId")):
        raise ArmError(400, "InvalidParameter", "One of 'source.script', 'source.scriptUri' or 'source.commandId' is required.",
                       target="source")
    require_guest_ready(doc, "run a command")
    name = ctx.match["child"]
    rc_type = doc["type"] + "/runCommands"
    rid = f"{doc['id']}/runCommands/{name}"
    existed = sim.state.get(rid) is not None
    # Secrets are never stored: protectedParameters and runAsPassword are write-only in ARM.
    props = {k: copy.deepcopy(v) for k, v in props_in.items() if k not in ("protectedParameters", "runAsPassword", "instanceView", "provisioningState")}
    props.setdefault("parameters", [])
    props.setdefault("asyncExecution", False)
    props.setdefault("timeoutInSeconds", 0 if is_vm(doc) else 3600)
    if not is_vm(doc):
        props["protectedParameters"] = []
    props["provisioningState"] = "Updating" if existed else "Creating"
    props["instanceView"] = {"executionState": "Pending", "executionMessage": "", "exitCode": 0, "output": "",
                             "error": "", "startTime": None, "endTime": None, "statuses": []}
    rc = {"id": rid, "name": name, "type": rc_type, "location": body.get("location") or doc.get("location"),
          "tags": body.get("tags") or {}, "properties": props}
    script = source.get("script") or ""
    params = {str(p.get("name")): str(p.get("value")) for p in props.get("parameters") or [] if isinstance(p, dict)}
    for p in props_in.get("protectedParameters") or []:  # used for this run only, never stored
        if isinstance(p, dict):
            params[str(p.get("name"))] = str(p.get("value"))
    if source.get("commandId"):
        try:
            result = guest.simulate_command_id(str(source["commandId"]), [], doc, extensions=sim.state.extensions_of(doc["id"]),
                                               sim=sim.state.sim_for(doc["id"]), now=utcnow(), parameters=params)
        except ValueError as e:
            raise ArmError(400, "InvalidParameter", f"The run command '{source['commandId']}' is not supported: {e}",
                           target="source.commandId") from None
    elif source.get("scriptUri"):
        # The simulator cannot fetch the script; it reports a plausible successful run.
        result = guest.ScriptResult(f"Downloaded and ran script from {source['scriptUri']}.\n", "", 0, 1.0)
    else:
        result = _run_script(sim.state, doc, script, params)
    sim.state.put(rc)
    # One command at a time per machine: a new one waits for the one before it.
    mkey = doc["id"].lower()
    now = sim.state.clock()
    start_at = max(now, sim.state.busy_until.get(mkey, 0))
    timeout = int(props.get("timeoutInSeconds") or 0)
    # The script runs for its own time (its commands, every Start-Sleep) unless its timeout stops it first.
    script_seconds = min(result.duration_s, timeout) if timeout else result.duration_s
    duration = sim.state.config.run_seconds(script_seconds)
    sim.state.busy_until[mkey] = start_at + duration
    sim.state.sim_machines.setdefault(rid.lower(), {})["_schedule"] = (start_at, start_at + duration)
    # What the script printed is decided now (the machine as it is when the command is accepted); the
    # protected parameters it ran with are not part of it.
    args = {"run_command": rid, "start_at": start_at, "duration": duration, "timeout": timeout, "script_seconds": script_seconds,
            "result": {"stdout": result.stdout, "stderr": result.stderr, "exit_code": result.exit_code,
                       "duration_s": result.duration_s}}
    async_exec = bool(props.get("asyncExecution"))
    op = start_op(sim, rc, "runcommand.put", "runcommand.put", args, duration=0.05 if async_exec else None,
                  start_at=None if async_exec else start_at)
    if not async_exec:
        op.finish_at = start_at + duration
    headers = _handlers().lro_headers(sim, ctx, op)
    headers.pop("Location", None)  # PUT: the SDK polls Azure-AsyncOperation, then GETs the resource
    return Reply(200 if existed else 201, rc, headers)


def _iso_epoch(t: float) -> str:
    return iso(datetime.fromtimestamp(t, UTC))


@completion("runcommand.execute")
def _finish_execution(state: SimState, op: Operation, *, run_command: str, start_at: float, timeout: int,
                      result: dict, duration: float = 0.0, script_seconds: float | None = None) -> None:
    rc = _doc(state, run_command)
    if rc is None:
        return
    out, out_cut = guest.cap_output(result["stdout"])
    err, err_cut = guest.cap_output(result["stderr"])
    timed_out = bool(timeout) and result["duration_s"] > timeout
    exec_state = "TimedOut" if timed_out else ("Succeeded" if result["exit_code"] == 0 else "Failed")
    view = {
        "executionState": exec_state,
        "executionMessage": {"Succeeded": "Execution completed", "TimedOut": "Execution timed out"}.get(exec_state,
                                                                                                         "Execution failed"),
        "exitCode": result["exit_code"], "output": out, "error": err,
        # ended when the script did (on a fast test clock that is later than now); from an older state, now
        "startTime": _iso_epoch(start_at),
        "endTime": now_iso() if script_seconds is None else _iso_epoch(start_at + script_seconds), "statuses": [],
    }
    if out_cut or err_cut:
        view["statuses"] = [{"code": "ComponentStatus/OutputTruncated", "level": "Warning",
                             "displayStatus": "Output truncated", "message": "Output exceeded 4096 bytes and was truncated."}]
    rc["properties"]["instanceView"] = view
    failed_deploy = exec_state != "Succeeded" and rc["properties"].get("treatFailureAsDeploymentFailure")
    rc["properties"]["provisioningState"] = "Failed" if failed_deploy else "Succeeded"
    state.sim_machines.get(run_command.lower(), {}).pop("_schedule", None)
    state.reindex(rc)


@completion("runcommand.put")
def _complete_run_command(state: SimState, op: Operation, **args: Any) -> None:
    rc = _doc(state, args["run_command"])
    if rc is None:
        return
    if rc["properties"].get("asyncExecution"):
        rc["properties"]["provisioningState"] = "Succeeded"
        state.reindex(rc)
        end = args["start_at"] + args["duration"]
        state.new_operation(subscription=op.subscription, location=op.location, provider=op.provider,
                            kind="runcommand.execute", target=rc["id"], duration=max(0.0, end - state.clock()),
                            complete="runcommand.execute", complete_args=args)
        return
    _finish_execution(state, op, **args)
    if rc["properties"]["provisioningState"] == "Failed":
        op.status = "Failed"
        view = rc["properties"]["instanceView"]
        on_vm = rc["type"].lower().startswith("microsoft.compute")
        op.error = {"code": "VMExtensionProvisioningError" if on_vm else "RunCommandFailed",
                    "message": f"Run command '{rc['name']}' ended {view['executionState']} with exit code {view['exitCode']}: {view['error'][:500]}"}


def delete_run_command(sim: Simulator, ctx: Ctx) -> Reply:
    doc = _handlers().machine_from(sim, ctx)
    rid = f"{doc['id']}/runCommands/{ctx.match['child']}"
    rc = sim.state.get(rid)
    if rc is None:
        return Reply(204)
    op = start_op(sim, rc, "runcommand.delete", "resource.delete", {"resource_id": rid},
                  duration=min(1.0, sim.state.config.lro_seconds))
    return accepted(sim, ctx, op)


# ---- extensions -----------------------------------------------------------------------------------


def _ext_instance_view(doc: dict, name: str, props: dict, ok: bool, message: str) -> dict:
    if is_vm(doc):
        return {"name": name, "type": f"{props.get('publisher')}.{props.get('type')}",
                "typeHandlerVersion": props.get("typeHandlerVersion"),
                "statuses": [{"code": "ProvisioningState/succeeded" if ok else "ProvisioningState/failed/-1",
                              "level": "Info" if ok else "Error",
                              "displayStatus": "Provisioning succeeded" if ok else "Provisioning failed",
                              "message": message, "time": now_iso()}]}
    return {"name": name, "type": props.get("type"), "typeHandlerVersion": props.get("typeHandlerVersion"),
            "status": {"code": "success" if ok else "failed", "level": "Information" if ok else "Error",
                       "displayStatus": "Provisioning succeeded" if ok else "Provisioning failed",
                       "message": message, "time": now_iso()}}


def put_extension(sim: Simulator, ctx: Ctx) -> Reply:
    doc = _handlers().machine_from(sim, ctx)
    body = ctx.body
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid: 'properties' is required.")
    name = ctx.match["child"]
    rid = f"{doc['id']}/extensions/{name}"
    existing = sim.state.get(rid)
    incoming = body["properties"]
    if ctx.method == "PATCH":
        if existing is None:
            raise _handlers().not_found(doc["type"] + "/extensions", f"{doc['name']}/{name}", sub_rg_of(doc["id"])[1])
        merged = copy.deepcopy(existing["properties"])
        merged.update(incoming)
        incoming = merged
    publisher, etype = incoming.get("publisher"), incoming.get("type")
    if not publisher or not etype:
        raise ArmError(400, "InvalidParameter", "Extension 'publisher' and 'type' are required.", target="properties")
    if is_vm(doc):
        require_vm_running(doc, "modify extensions")
    else:
        require_arc_connected(doc, "install or change extensions")
        cfg = (doc.get("properties") or {}).get("agentConfiguration") or {}
        if str(cfg.get("extensionsEnabled", "true")).lower() == "false":
            raise ArmError(400, "ExtensionOperationsDisabled",
                           f"Extension operations are disabled on machine '{doc['name']}' by its local agent configuration (extensionsEnabled=false).")
    for other in sim.state.extensions_of(doc["id"]):
        op_ = other.get("properties") or {}
        if other["id"].lower() != rid.lower() and str(op_.get("publisher", "")).lower() == str(publisher).lower() \
                and str(op_.get("type", "")).lower() == str(etype).lower():
            raise ArmError(400, "OperationNotAllowed" if is_vm(doc) else "BadRequest",
                           f"Multiple VMExtensions per handler not supported for OS type 'Windows'. VMExtension '{other['name']}' "
                           f"with handler '{publisher}.{etype}' already added or specified in input.")
    # protectedSettings are accepted and never stored or returned.
    props = {k: copy.deepcopy(v) for k, v in incoming.items()
             if k not in ("protectedSettings", "protectedSettingsFromKeyVault", "provisioningState", "instanceView")}
    props.setdefault("autoUpgradeMinorVersion", True)
    props["provisioningState"] = "Updating" if existing else "Creating"
    ext = existing or {"id": rid, "name": name, "type": doc["type"] + "/extensions", "location": body.get("location") or doc.get("location")}
    prior_view = (existing or {}).get("properties", {}).get("instanceView")
    if prior_view:
        props["instanceView"] = prior_view
    ext["properties"] = props
    if body.get("tags") is not None:
        ext["tags"] = body["tags"]
    sim.state.put(ext)
    fail_types = {str(t).lower() for t in sim.state.sim_for(doc["id"]).get("failExtensionTypes") or []}
    will_fail = str(etype).lower() in fail_types or f"{publisher}.{etype}".lower() in fail_types
    op = start_op(sim, ext, "extension.put", "extension.put", {"machine": doc["id"], "extension": rid, "fail": will_fail})
    headers = _handlers().lro_headers(sim, ctx, op)
    if is_vm(doc):
        headers.pop("Location", None)
        return Reply(200 if existing else 201, _handlers().render_extension(ext, instance_view=False), headers)
    return Reply(202, None, headers)  # Arc: 202 with no body (arm-api.md §4.3)


@completion("extension.put")
def _complete_extension(state: SimState, op: Operation, *, machine: str, extension: str, fail: bool) -> None:
    doc, ext = _doc(state, machine), _doc(state, extension)
    if doc is None or ext is None:
        return
    props = ext["properties"]
    if fail:
        msg = (f"VM has reported a failure when processing extension '{ext['name']}' (publisher '{props.get('publisher')}' "
               f"and type '{props.get('type')}'). Error message: 'Enable failed: the handler exited with code 1.'")
        props["provisioningState"] = "Failed"
        props["instanceView"] = _ext_instance_view(doc, ext["name"], props, False, msg)
        op.status = "Failed"
        op.error = {"code": "VMExtensionProvisioningError" if is_vm(doc) else "ExtensionOperationFailed", "message": msg}
    else:
        props["provisioningState"] = "Succeeded"
        props["instanceView"] = _ext_instance_view(doc, ext["name"], props, True, "Enable succeeded")
    state.reindex(ext)
    state.reindex(doc)


def delete_extension(sim: Simulator, ctx: Ctx) -> Reply:
    doc = _handlers().machine_from(sim, ctx)
    rid = f"{doc['id']}/extensions/{ctx.match['child']}"
    ext = sim.state.get(rid)
    if ext is None:
        return Reply(204)
    if is_vm(doc):
        require_vm_running(doc, "modify extensions")
    else:
        require_arc_connected(doc, "remove extensions")
    ext["properties"]["provisioningState"] = "Deleting"
    sim.state.reindex(ext)
    op = start_op(sim, ext, "extension.delete", "resource.delete", {"resource_id": rid})
    return accepted(sim, ctx, op)


def upgrade_extensions(sim: Simulator, ctx: Ctx) -> Reply:
    doc = _handlers().machine_from(sim, ctx)
    targets = (ctx.body or {}).get("extensionTargets")
    if not isinstance(targets, dict) or not targets:
        raise ArmError(400, "InvalidParameter", "'extensionTargets' must name at least one '<publisher>.<type>'.", target="extensionTargets")
    require_arc_connected(doc, "upgrade extensions")
    exts = {f"{(e.get('properties') or {}).get('publisher')}.{(e.get('properties') or {}).get('type')}".lower(): e
            for e in sim.state.extensions_of(doc["id"])}
    missing = [k for k in targets if k.lower() not in exts]
    if missing:
        raise ArmError(400, "ExtensionNotFound", f"Extension(s) {', '.join(missing)} are not installed on machine '{doc['name']}'.")
    versions = {exts[key.lower()]["id"]: str((spec or {}).get("targetVersion") or "") for key, spec in targets.items()}
    return accepted(sim, ctx, start_op(sim, doc, "extension.upgrade", "extension.upgrade", {"versions": versions}))


@completion("extension.upgrade")
def _complete_upgrade(state: SimState, op: Operation, *, versions: dict[str, str]) -> None:
    for ext_id, version in versions.items():
        ext = _doc(state, ext_id)
        if ext is None:
            continue
        if version:
            ext["properties"]["typeHandlerVersion"] = version
            iv = ext["properties"].get("instanceView") or {}
            if iv:
                iv["typeHandlerVersion"] = version
        ext["properties"]["provisioningState"] = "Succeeded"
        state.reindex(ext)


# ---- tags and machine PATCH -----------------------------------------------------------------------


def _clean_tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise ArmError(400, "InvalidTagFormat", "Tags must be an object of string names to string values.")
    if len(tags) > 50:
        raise ArmError(400, "InvalidTagCount", "A resource can have at most 50 tags.")
    out = {}
    for k, v in tags.items():
        if len(str(k)) > 512:
            raise ArmError(400, "InvalidTagNameLength", "A tag name can have at most 512 characters.")
        if v is not None and len(str(v)) > 256 * 1024:
            raise ArmError(400, "InvalidTagValueLength", "A tag value is too long.")
        out[str(k)] = "" if v is None else str(v)
    return out


def tags(sim: Simulator, ctx: Ctx) -> Reply:
    rid = ctx.match["rid"]
    h = _handlers()
    sub, rg = sub_rg_of(rid)
    if rg:
        h.check_resource_group(sim, sub, rg)
    else:
        h.check_subscription(sim, sub)
    doc = sim.state.get(rid)
    if doc is None:
        parts = rid.split("/")
        raise h.not_found("/".join(parts[6:-1:2]), parts[-1], rg)
    current = dict(doc.get("tags") or {})
    if ctx.method == "PUT":
        current = _clean_tags(((ctx.body or {}).get("properties") or {}).get("tags"))
    elif ctx.method == "PATCH":
        body = ctx.body or {}
        operation = str(body.get("operation") or "")
        given = _clean_tags((body.get("properties") or {}).get("tags"))
        if operation == "Merge":
            current.update(given)
        elif operation == "Replace":
            current = given
        elif operation == "Delete":
            for k, v in given.items():
                if k in current and (v == "" or current[k] == v):
                    del current[k]
        else:
            raise ArmError(400, "InvalidTagOperation", f"The tag operation '{operation}' is not one of Merge, Replace, Delete.")
        if len(current) > 50:
            raise ArmError(400, "InvalidTagCount", "A resource can have at most 50 tags.")
    if ctx.method != "GET":
        doc["tags"] = current
        sim.state.reindex(doc)
    return Reply(200, {"id": f"{doc['id']}/providers/Microsoft.Resources/tags/default", "name": "default",
                       "type": "Microsoft.Resources/tags", "properties": {"tags": current}})


_PATCHABLE = {"tags", "identity", "properties", "location", "id", "name", "type"}


def patch_machine(sim: Simulator, ctx: Ctx) -> Reply:
    """VM PATCH (an LRO) and Arc machine PATCH (synchronous): tags and system-assigned identity."""
    h = _handlers()
    doc = h.machine_from(sim, ctx)
    body = ctx.body or {}
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid.")
    # ARM would apply any property; answering 200 while ignoring one would tell the client it was applied.
    ignored = sorted(set(body.get("properties") or {}) | (set(body) - _PATCHABLE))
    if ignored:
        what = "virtual machine" if is_vm(doc) else "machine"
        raise ArmError(400, "InvalidParameter",
                       f"The simulator applies only tags and identity in a PATCH of a {what}; it does not apply "
                       + ", ".join(f"'{k}'" for k in ignored) + " (docs/simulator.md).", target=ignored[0])
    if "tags" in body:
        doc["tags"] = _clean_tags(body["tags"])
    identity = body.get("identity")
    if isinstance(identity, dict):
        itype = str(identity.get("type") or "None")
        if not is_vm(doc) and itype not in ("SystemAssigned", "None"):
            raise ArmError(400, "InvalidIdentityType", "Azure Arc machines support only a system-assigned identity.")
        if itype == "None":
            doc.pop("identity", None)
        else:
            doc["identity"] = _patched_identity(sim, doc, itype, identity)
    sim.state.reindex(doc)
    if not is_vm(doc):
        return Reply(200, h.render_arc(doc))
    doc["properties"]["provisioningState"] = "Updating"
    op = start_op(sim, doc, "vm.update", "resource.provisioned", {"resource_id": doc["id"]},
                  duration=min(1.0, sim.state.config.lro_seconds))
    headers = h.lro_headers(sim, ctx, op)
    headers.pop("Location", None)
    return Reply(200, h.render_vm(sim, doc, instance_view=False), headers)


def _patched_identity(sim: Simulator, doc: dict, itype: str, request: dict) -> dict:
    """The identity after a PATCH, as ARM keeps it: an existing system-assigned identity keeps its principal
    (``az vm identity assign`` on a VM that has one changes nothing), user-assigned identities merge with the
    request's (``null`` removes one) and each keeps its ids."""
    old = doc.get("identity") or {}
    old_type = str(old.get("type") or "None")
    new: dict[str, Any] = {"type": itype}
    if "SystemAssigned" in itype:
        keep = "SystemAssigned" in old_type and old.get("principalId")
        sub, _ = sub_rg_of(doc["id"])
        new["principalId"] = old["principalId"] if keep else stable_guid("principal", doc["id"])
        new["tenantId"] = old.get("tenantId") if keep else sim.state.tenant_of(sub)
    if "UserAssigned" in itype:
        merged = dict(old.get("userAssignedIdentities") or {}) if "UserAssigned" in old_type else {}
        for uai, value in (request.get("userAssignedIdentities") or {}).items():
            if value is None:
                merged.pop(uai, None)
            elif uai not in merged:
                merged[uai] = {"principalId": stable_guid("principal", uai), "clientId": stable_guid("client", uai)}
        new["userAssignedIdentities"] = merged
    return new


# ---- data collection rule associations (synchronous, like ARM) ------------------------------------

_DCR_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Insights/dataCollectionRules/[^/]+$",
                     re.IGNORECASE)


def _association(sim: Simulator, ctx: Ctx) -> tuple[dict, str, dict | None]:
    """The machine, the association's id, and the association (None when it does not exist)."""
    doc = _handlers().machine_from(sim, ctx)
    rid = f"{doc['id']}/providers/Microsoft.Insights/dataCollectionRuleAssociations/{ctx.match['child']}"
    return doc, rid, sim.state.get(rid)


def get_dcr_association(sim: Simulator, ctx: Ctx) -> Reply:
    _, _, assoc = _association(sim, ctx)
    if assoc is None:
        raise ArmError(404, "ResourceNotFound", f"The data collection rule association '{ctx.match['child']}' was not found.")
    return Reply(200, assoc)


def put_dcr_association(sim: Simulator, ctx: Ctx) -> Reply:
    """Create (201) or update (200) at once; the rule must be a well-formed id of a rule that exists."""
    _, rid, existing = _association(sim, ctx)
    body = ctx.body if isinstance(ctx.body, dict) else None
    props = body.get("properties") if body is not None else None
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidPayload", "The request content was invalid: properties are required.")
    rule = props.get("dataCollectionRuleId")
    if not isinstance(rule, str) or not _DCR_ID.match(rule):
        raise ArmError(400, "InvalidPayload", f"'{rule}' is not a valid data collection rule resource id.")
    found = sim.state.get(rule)
    if found is None or found["type"].lower() != "microsoft.insights/datacollectionrules":
        raise ArmError(404, "ResourceNotFound", f"The data collection rule '{rule}' was not found.")
    now = iso(utcnow())
    created = (existing or {}).get("systemData", {}).get("createdAt", now)
    new_props: dict[str, Any] = {"dataCollectionRuleId": found["id"], "provisioningState": "Succeeded"}
    if isinstance(props.get("description"), str):
        new_props["description"] = props["description"]
    assoc = {"id": rid, "name": ctx.match["child"], "type": "Microsoft.Insights/dataCollectionRuleAssociations",
             "etag": str(uuid.uuid4()), "properties": new_props,
             "systemData": {"createdAt": created, "lastModifiedAt": now}}
    sim.state.put(assoc)
    return Reply(200 if existing is not None else 201, assoc)


def delete_dcr_association(sim: Simulator, ctx: Ctx) -> Reply:
    _, rid, existing = _association(sim, ctx)
    if existing is None:
        return Reply(204, None)
    sim.state.delete(rid)
    return Reply(200, None)
