"""The action catalog: every write the console offers, what it sends to ARM, and to which servers it applies.

An action turns validated parameters and one target into one ARM call (``Call``): method, path,
api-version and body. Secrets (Run Command protected parameters, extension protected settings) are
kept apart from the other parameters: ``request(target, params, secrets=None)`` puts a placeholder
where they go, which is what plans, the journal and the audit log see; only the engine, at the
moment of sending, passes the real values. How a call's end is observed (``track``):

* ``resource`` — a PUT/DELETE of a child resource with a deterministic name: the resource itself is
  read until its provisioningState is terminal (one read when timed by Retry-After, and the read is
  also the fresh state the table needs); on resume, its existence says whether the PUT was received.
* ``operation`` — a POST action: the Azure-AsyncOperation status URL is polled, then Location read
  for the action's result (patch results).
* ``sync`` — ARM answers at once (tags, Arc machine PATCH).

This module does no I/O; no Textual, no httpx.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..fleet.model import Kind, Server, State, clean_text

API = {"vm": "2024-07-01", "arc": "2024-07-10", "arc-runcommand": "2025-01-13", "tags": "2021-04-01"}
HIDDEN = "<hidden>"  # what plans, the journal and the audit log show in place of a secret
CLASSIFICATIONS = ("Critical", "Security", "UpdateRollUp", "FeaturePack", "ServicePack", "Definition", "Tools", "Updates")
REBOOT_SETTINGS = ("IfRequired", "Never", "Always")
_ISO_DURATION = re.compile(r"^PT(?=\d)(\d+H)?(\d+M)?$")
_KB = re.compile(r"^(KB)?\d{4,8}$", re.IGNORECASE)
_TAG_KEY_FORBIDDEN = set("<>%&\\?/")
_NOTE_NAMES = 10  # servers a plan note names before "… and N more"


class ActionError(ValueError):
    """Parameters an action cannot accept; the message says which and why."""


@dataclass(frozen=True)
class Target:
    """What a request needs to know about a server (kept in the journal: enough to resume without the inventory)."""

    id: str
    name: str
    kind: Kind
    subscription_id: str
    resource_group: str
    location: str

    @classmethod
    def of(cls, server: Server) -> Target:
        return cls(server.id, server.name, server.kind, server.subscription_id, server.resource_group, server.location)

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "kind": self.kind.value, "subscription": self.subscription_id,
                "resourceGroup": self.resource_group, "location": self.location}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Target:
        return cls(str(d["id"]), clean_text(d.get("name")), Kind(d.get("kind", "vm")), str(d.get("subscription", "")),
                   str(d.get("resourceGroup", "")), str(d.get("location", "")))


@dataclass(frozen=True)
class Call:
    """One ARM request and how to follow it to its end."""

    method: str
    path: str
    api_version: str
    body: Any = None
    track: str = "operation"  # resource | operation | sync
    resource_path: str = ""  # for track=resource: the resource to read (and for resume)
    expand: str = ""  # $expand for the resource read (instanceView: run command output, extension status)
    deleting: bool = False  # track=resource: the end is the resource gone (404)

    def to_json(self) -> dict:
        return {"method": self.method, "path": self.path, "apiVersion": self.api_version, "body": self.body,
                "track": self.track, "resourcePath": self.resource_path, "expand": self.expand, "deleting": self.deleting}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Call:
        return cls(str(d["method"]), str(d["path"]), str(d["apiVersion"]), d.get("body"), str(d.get("track", "operation")),
                   str(d.get("resourcePath", "")), str(d.get("expand", "")), bool(d.get("deleting")))


# ---- the extension catalog ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtensionSpec:
    key: str  # what the user types: "ama", "mde", …
    title: str
    publisher: str
    type: str
    version: str  # typeHandlerVersion (major.minor); autoUpgradeMinorVersion keeps it current
    name: str  # the extension resource name (deterministic: a second install targets the same resource)
    kinds: frozenset[Kind]
    settings: Mapping[str, Any] = field(default_factory=dict)
    automatic_upgrade: bool = False
    note: str = ""

    @property
    def handler(self) -> str:
        return f"{self.publisher}.{self.type}"


BOTH = frozenset({Kind.VM, Kind.ARC})
VM_ONLY = frozenset({Kind.VM})

# Publisher/type/version from the built-in DeployIfNotExists policies (research/arm-api.md §11).
EXTENSIONS: dict[str, ExtensionSpec] = {s.key: s for s in (
    ExtensionSpec("ama", "Azure Monitor agent", "Microsoft.Azure.Monitor", "AzureMonitorWindowsAgent", "1.2",
                  "AzureMonitorWindowsAgent", BOTH, automatic_upgrade=True),
    ExtensionSpec("mde", "Defender for Endpoint", "Microsoft.Azure.AzureDefenderForServers", "MDE.Windows", "1.0",
                  "MDE.Windows", BOTH, {"azureResourceId": "{id}", "forceReOnboarding": False},
                  note="onboarding package comes from Defender for Servers"),
    ExtensionSpec("aadlogin", "Entra ID login", "Microsoft.Azure.ActiveDirectory", "AADLoginForWindows", "1.0",
                  "AADLoginForWindows", VM_ONLY, note="Arc support is not confirmed"),
    ExtensionSpec("wac", "Windows Admin Center", "Microsoft.AdminCenter", "AdminCenter", "0.0", "AdminCenter", BOTH,
                  {"port": "6516"}),
    ExtensionSpec("changetracking", "Change Tracking", "Microsoft.Azure.ChangeTrackingAndInventory", "ChangeTracking-Windows",
                  "2.0", "ChangeTracking-Windows", BOTH, automatic_upgrade=True, note="needs the Azure Monitor agent and a DCR"),
    ExtensionSpec("machineconfig", "Machine Configuration", "Microsoft.GuestConfiguration", "ConfigurationforWindows", "1.1",
                  "AzurePolicyforWindows", VM_ONLY, automatic_upgrade=True,
                  note="built into the Arc agent; needs a system-assigned identity on VMs"),
    ExtensionSpec("dependency", "Dependency agent", "Microsoft.Azure.Monitoring.DependencyAgent", "DependencyAgentWindows",
                  "9.10", "DependencyAgentWindows", BOTH, {"enableAMA": "true"}, automatic_upgrade=True),
    ExtensionSpec("customscript", "Custom Script", "Microsoft.Compute", "CustomScriptExtension", "1.10",
                  "CustomScriptExtension", BOTH, note="commandToExecute goes in protected settings"),
)}


def extension_spec(key: str) -> ExtensionSpec:
    """By key, name, type or publisher.type, case-insensitively."""
    k = key.strip().lower()
    for spec in EXTENSIONS.values():
        if k in (spec.key, spec.name.lower(), spec.type.lower(), spec.handler.lower()):
            return spec
    raise ActionError(f"unknown extension {key!r}; known: {', '.join(EXTENSIONS)}")


def installed(server: Server, spec: ExtensionSpec):
    """The server's extension with this handler (identified by publisher + type, never by name), or None."""
    for ext in server.extensions:
        if ext.publisher.lower() == spec.publisher.lower() and ext.type.lower() == spec.type.lower():
            return ext
    return None


def with_installed_name(server: Server, params: Mapping[str, Any]) -> dict[str, Any]:
    """Extensions are identified by handler; the call must use the name this server's copy already has."""
    ext = installed(server, EXTENSIONS[params["extension"]])
    return {**params, "name": ext.name} if ext is not None else dict(params)


def _ext_name(params: Mapping[str, Any]) -> str:
    return str(params.get("name") or EXTENSIONS[params["extension"]].name)


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v)[:4])


# ---- helpers --------------------------------------------------------------------------------------


def machine_api(target: Target) -> str:
    return API["vm"] if target.kind is Kind.VM else API["arc"]


def _q(value: str) -> str:
    return shlex.quote(value)


def _json_arg(value: Any) -> str:
    return _q(json.dumps(value, separators=(",", ":")))


def _az_named(target: Target, flag: str = "--name") -> str:
    """A resource named by group and name: with its subscription, so the command cannot pick another one's
    group of the same name (the CLI would use its default subscription)."""
    return f"--subscription {_q(target.subscription_id)} --resource-group {_q(target.resource_group)} {flag} {_q(target.name)}"


def _az_machine(target: Target) -> str:
    return _az_named(target, "--vm-name" if target.kind is Kind.VM else "--machine-name")


def guest_not_ready(server: Server, what: str) -> str | None:
    """Why a server cannot take an in-guest action now (VM not running, Arc agent not connected), or None."""
    state = server.state or "unknown"
    if server.kind is Kind.VM:
        return None if state.lower() in ("running", "starting") else f"VM is {state}: it must be running to {what}"
    if state.lower() != "connected":
        return f"Arc agent is {state}: it must be Connected to {what}"
    return None


def pairs(value: Any, what: str) -> dict[str, str]:
    """{"a": "1"} or ["a=1", …] → a dict of strings."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    for item in value:
        k, sep, v = str(item).partition("=")
        if not sep or not k:
            raise ActionError(f"{what} {item!r} must be NAME=VALUE")
        out[k] = v
    return out


# ---- actions --------------------------------------------------------------------------------------


class Action:
    """One kind of write. Subclasses say what they apply to, what they send, and the az equivalent."""

    id: str = ""
    title: str = ""
    kinds: frozenset[Kind] = BOTH
    secret_params: tuple[str, ...] = ()
    idempotent: bool = False  # safe to send again after a crash between sending and hearing back

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Normalized parameters (secrets included; the caller splits them off)."""
        return dict(params)

    def skip_reason(self, server: Server, params: Mapping[str, Any]) -> str | None:
        if server.kind not in self.kinds:
            return f"not applicable to {'Arc servers' if server.kind is Kind.ARC else 'Azure VMs'}"
        return None

    def target_params(self, server: Server, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters for this server: the job's, plus what this server needs (an existing extension's name)."""
        return dict(params)

    def request(self, target: Target, params: Mapping[str, Any], secrets: Mapping[str, Any] | None = None) -> Call:
        raise NotImplementedError

    def az(self, target: Target, params: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def describe(self, params: Mapping[str, Any]) -> str:
        return self.title

    def blocks(self, params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        """Multi-line parameters the plan shows as blocks, line for line: (title, text)."""
        return ()

    def notes(self, servers: list[Server], params: Mapping[str, Any]) -> list[str]:
        """Warnings for the plan about the servers it will write to (nothing by default)."""
        return []

    # -- a POST whose intent is journalled but whose answer never came (docs/actions.md, "In doubt")

    def evidence(self, target: Target) -> str:
        """What to read to learn whether such a POST arrived: "machine" (with its instance view),
        "extensions" (the machine's list), or "" (ARM has no read that can tell)."""
        return ""

    def arrival(self, target: Target, params: Mapping[str, Any], evidence: Any, sent_at: datetime | None) -> Arrival:
        """Whether the POST sent at ``sent_at`` arrived, judged from ``evidence`` (what ``evidence`` names, read
        after the restart). Without a read that can tell: send again only an idempotent call."""
        if self.idempotent:
            return Arrival("absent")
        return Arrival("unknown", f"in doubt: {self.title.lower()} may or may not have reached ARM; check the "
                                  "server before retrying")


@dataclass(frozen=True)
class Arrival:
    """done: ARM has it and it ended; running: ARM has it, follow it; absent: safe to send (never arrived, or
    idempotent by nature); unknown: cannot tell, and sending again is not safe (``message`` says what to check)."""

    verdict: str
    message: str = ""


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time from ARM or the journal; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _since(summary: Any, sent_at: datetime | None) -> bool:
    """True when this instance-view summary (an assessment, an installation) started at or after ``sent_at``."""
    started = parse_time(summary.get("startTime")) if isinstance(summary, dict) else None
    return started is not None and sent_at is not None and started >= sent_at


def _patch_status(machine: Any, key: str) -> dict:
    props = machine.get("properties") if isinstance(machine, dict) else None
    node: Any = props if isinstance(props, dict) else {}
    for part in ("instanceView", "patchStatus", key):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def power_state(machine: Any) -> str:
    """running / stopped / deallocated / starting … from a VM's instance view; "" when it names none."""
    props = machine.get("properties") if isinstance(machine, dict) else None
    view = props.get("instanceView") if isinstance(props, dict) else None
    for status in (view.get("statuses") or []) if isinstance(view, dict) else []:
        code = str(status.get("code") or "") if isinstance(status, dict) else ""
        if code.lower().startswith("powerstate/"):
            return code.split("/", 1)[1].lower()
    return ""


def split_secrets(action: Action, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    public = {k: v for k, v in params.items() if k not in action.secret_params}
    secrets = {k: v for k, v in params.items() if k in action.secret_params and v}
    for k in action.secret_params:
        if params.get(k):
            public[k] = sorted(params[k]) if isinstance(params[k], Mapping) else HIDDEN  # names only
    return public, secrets


def _az_vm_extension_set(target: Target, params: Mapping[str, Any]) -> str:
    spec = EXTENSIONS[params["extension"]]
    return (f"az vm extension set {_az_machine(target)} --name {_q(spec.type)} --publisher {_q(spec.publisher)} "
            f"--extension-instance-name {_q(_ext_name(params))} --version {_q(params['version'])}")


class _ExtensionAction(Action):
    idempotent = True  # a PUT/DELETE of the same extension twice has the effect of one

    def target_params(self, server, params):
        return with_installed_name(server, params)


class ExtensionInstall(_ExtensionAction):
    id, title = "extension.install", "Install extension"
    secret_params = ("protected_settings",)

    def validate(self, params):
        spec = extension_spec(str(params.get("extension") or ""))
        out = {"extension": spec.key, "version": str(params.get("version") or spec.version)}
        settings = params.get("settings")
        if settings is not None and not isinstance(settings, Mapping):
            raise ActionError("settings must be a JSON object")
        out["settings"] = dict(settings) if settings is not None else None
        protected = params.get("protected_settings")
        if protected is not None and not isinstance(protected, Mapping):
            raise ActionError("protected settings must be a JSON object")
        out["protected_settings"] = dict(protected) if protected else {}
        return out

    def skip_reason(self, server, params):
        spec = EXTENSIONS[params["extension"]]
        if server.kind not in spec.kinds:
            return f"{spec.title} is not applicable to {'Arc servers' if server.kind is Kind.ARC else 'Azure VMs'}"
        ext = installed(server, spec)
        if ext is not None and ext.provisioning_state.lower() == "succeeded":
            return f"already installed ({ext.name} {ext.version})"
        return guest_not_ready(server, "install extensions")

    def request(self, target, params, secrets=None):
        spec = EXTENSIONS[params["extension"]]
        settings = params.get("settings")
        if settings is None:
            settings = {k: (v.replace("{id}", target.id) if isinstance(v, str) else v) for k, v in spec.settings.items()}
        props: dict[str, Any] = {"publisher": spec.publisher, "type": spec.type, "typeHandlerVersion": params["version"],
                                 "autoUpgradeMinorVersion": True}
        if spec.automatic_upgrade:
            props["enableAutomaticUpgrade"] = True
        if settings:
            props["settings"] = settings
        if params.get("protected_settings"):
            props["protectedSettings"] = dict(secrets["protected_settings"]) if secrets and "protected_settings" in secrets \
                else HIDDEN
        path = f"{target.id}/extensions/{_ext_name(params)}"
        return Call("PUT", path, machine_api(target), {"location": target.location, "properties": props},
                    track="resource", resource_path=path, expand="instanceView")

    def az(self, target, params):
        spec = EXTENSIONS[params["extension"]]
        call = self.request(target, params)
        settings = call.body["properties"].get("settings")
        extra = f" --settings {_json_arg(settings)}" if settings else ""
        if params.get("protected_settings"):
            extra += " --protected-settings @protected.json"
        automatic = call.body["properties"].get("enableAutomaticUpgrade")
        if target.kind is Kind.VM:
            return _az_vm_extension_set(target, params) + (" --enable-auto-upgrade true" if automatic else "") + extra
        # connectedmachine extension 4.0.0b1 (aaz, api 2026-06-16-preview) calls it --enable-automatic-upgrade
        # (--enable-auto-upgrade was the name from 0.4.1 until the move to aaz)
        return (f"az connectedmachine extension create {_az_machine(target)} --name {_q(_ext_name(params))} "
                f"--publisher {_q(spec.publisher)} --type {_q(spec.type)} --type-handler-version {_q(params['version'])} "
                f"--auto-upgrade-minor-version true{' --enable-automatic-upgrade true' if automatic else ''} "
                f"--location {_q(target.location)}{extra}")

    def describe(self, params):
        return f"Install {EXTENSIONS[params['extension']].title} {params['version']}"


class ExtensionRemove(_ExtensionAction):
    id, title = "extension.remove", "Remove extension"

    def validate(self, params):
        return {"extension": extension_spec(str(params.get("extension") or "")).key}

    def skip_reason(self, server, params):
        ext = installed(server, EXTENSIONS[params["extension"]])
        if ext is None:
            return "not installed"
        return guest_not_ready(server, "remove extensions")

    def request(self, target, params, secrets=None):
        path = f"{target.id}/extensions/{_ext_name(params)}"
        return Call("DELETE", path, machine_api(target), None, track="resource", resource_path=path, deleting=True)

    def az(self, target, params):
        name = _q(_ext_name(params))
        if target.kind is Kind.VM:
            return f"az vm extension delete {_az_machine(target)} --name {name}"
        return f"az connectedmachine extension delete {_az_machine(target)} --name {name} --yes"

    def describe(self, params):
        return f"Remove {EXTENSIONS[params['extension']].title}"


class ExtensionUpgrade(_ExtensionAction):
    """Arc: POST upgradeExtensions (the machine-level call). VMs: PUT the extension with the new version."""

    id, title = "extension.upgrade", "Upgrade extension"

    def validate(self, params):
        spec = extension_spec(str(params.get("extension") or ""))
        version = str(params.get("version") or spec.version)
        if not re.fullmatch(r"\d+(\.\d+){0,3}", version):
            raise ActionError(f"version {version!r} must look like 1.2 or 1.10.0.0")
        return {"extension": spec.key, "version": version}

    def skip_reason(self, server, params):
        ext = installed(server, EXTENSIONS[params["extension"]])
        if ext is None:
            return "not installed"
        if ext.version and _version_tuple(ext.version) >= _version_tuple(params["version"]):
            return f"already at version {ext.version}"
        return guest_not_ready(server, "upgrade extensions")

    def request(self, target, params, secrets=None):
        spec = EXTENSIONS[params["extension"]]
        if target.kind is Kind.ARC:
            body = {"extensionTargets": {spec.handler: {"targetVersion": params["version"]}}}
            return Call("POST", f"{target.id}/upgradeExtensions", API["arc"], body, track="operation")
        path = f"{target.id}/extensions/{_ext_name(params)}"
        body = {"properties": {"publisher": spec.publisher, "type": spec.type, "typeHandlerVersion": params["version"],
                               "autoUpgradeMinorVersion": True}}
        return Call("PATCH", path, API["vm"], body, track="resource", resource_path=path, expand="instanceView")

    def evidence(self, target):
        return "extensions" if target.kind is Kind.ARC else ""

    def arrival(self, target, params, evidence, sent_at):
        # The call names the version to reach: sent again, it ends at the same version (idempotent by nature).
        spec = EXTENSIONS[params["extension"]]
        for ext in evidence or []:
            props = ext.get("properties") if isinstance(ext, dict) else None
            if isinstance(props, dict) and f"{props.get('publisher')}.{props.get('type')}".lower() == spec.handler.lower() \
                    and str(props.get("typeHandlerVersion") or "") == params["version"]:
                return Arrival("done", f"{spec.title} is at version {params['version']}")
        return Arrival("absent")

    def az(self, target, params):
        spec = EXTENSIONS[params["extension"]]
        if target.kind is Kind.ARC:
            targets = {spec.handler: {"targetVersion": params["version"]}}
            return f"az connectedmachine upgrade-extension {_az_machine(target)} --extension-targets {_json_arg(targets)}"
        return _az_vm_extension_set(target, params)

    def describe(self, params):
        return f"Upgrade {EXTENSIONS[params['extension']].title} to {params['version']}"


class RunCommand(Action):
    """Run Command v2 (a child resource on both kinds). The name is fixed per job (``run_name``), so a
    restarted engine finds what it already created instead of creating it again."""

    id, title = "run-command", "Run Command"
    secret_params = ("protected_parameters",)

    def validate(self, params):
        script = params.get("script")
        if not isinstance(script, str) or not script.strip():
            raise ActionError("a script is required")
        if len(script.encode()) > 256 * 1024:
            raise ActionError("the script is larger than 256 KiB")
        timeout = int(params.get("timeout") or 3600)
        if not 30 <= timeout <= 86400:
            raise ActionError("timeout must be between 30 and 86400 seconds")
        name = str(params.get("run_name") or "")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}", name):
            raise ActionError(f"run command name {name!r} is not a valid resource name")
        return {"script": script, "parameters": pairs(params.get("parameters"), "parameter"),
                "protected_parameters": pairs(params.get("protected_parameters"), "protected parameter"),
                "timeout": timeout, "run_name": name}

    def skip_reason(self, server, params):
        return super().skip_reason(server, params) or guest_not_ready(server, "run a command")

    def request(self, target, params, secrets=None):
        props: dict[str, Any] = {
            "source": {"script": params["script"]},
            "parameters": [{"name": k, "value": v} for k, v in params["parameters"].items()],
            "asyncExecution": False,
            "timeoutInSeconds": params["timeout"],
            "treatFailureAsDeploymentFailure": False,
        }
        names = params.get("protected_parameters") or []
        if names:
            given = (secrets or {}).get("protected_parameters") or {}
            props["protectedParameters"] = [{"name": k, "value": given.get(k, HIDDEN)} for k in names]
        path = f"{target.id}/runCommands/{run_name(params)}"
        api = API["vm"] if target.kind is Kind.VM else API["arc-runcommand"]
        return Call("PUT", path, api, {"location": target.location, "properties": props}, track="resource",
                    resource_path=path, expand="instanceView")

    def az(self, target, params):
        """The script is quoted as one bash word (newlines kept inside the quotes)."""
        protected = list(params.get("protected_parameters") or [])
        start = f"{_az_machine(target)} --name {_q(run_name(params))} --location {_q(target.location)}"
        if target.kind is Kind.VM:
            cmd = (f"az vm run-command create {start} --script {_q(params['script'])} "
                   f"--timeout-in-seconds {params['timeout']}")
            if params["parameters"]:
                cmd += " --parameters " + " ".join(_q(f"{k}={v}") for k, v in params["parameters"].items())
            if protected:
                cmd += " --protected-parameters " + " ".join(_q(f"{k}={HIDDEN}") for k in protected)
            return cmd
        # connectedmachine extension 4.0.0b1 (aaz, api 2026-06-16-preview): the script goes in --source (the
        # flat --script of the first versions is gone), parameters as a list of {name, value}
        cmd = (f"az connectedmachine run-command create {start} --source {_json_arg({'script': params['script']})} "
               f"--timeout-in-seconds {params['timeout']}")
        if params["parameters"]:
            cmd += " --parameters " + _json_arg([{"name": k, "value": v} for k, v in params["parameters"].items()])
        if protected:
            cmd += " --protected-parameters " + _json_arg([{"name": k, "value": HIDDEN} for k in protected])
        return cmd

    def blocks(self, params):
        return (("Script", params["script"]),)

    def describe(self, params):
        first = clean_text(params["script"].strip().splitlines()[0], limit=60)
        return f"Run Command: {first}"


def run_name(params: Mapping[str, Any]) -> str:
    """Round 1 uses the job's name; a retry round gets its own, so a new run is never mistaken for the old."""
    round_ = int(params.get("round") or 1)
    return params["run_name"] if round_ <= 1 else f"{params['run_name']}-r{round_}"


class PatchAssess(Action):
    id, title = "patch.assess", "Assess patches"
    idempotent = True  # a second assessment only refreshes the first

    def skip_reason(self, server, params):
        return guest_not_ready(server, "assess patches")

    def request(self, target, params, secrets=None):
        return Call("POST", f"{target.id}/assessPatches", machine_api(target), None, track="operation")

    def evidence(self, target):
        return "machine" if target.kind is Kind.VM else ""  # ARM has no read of an Arc machine's assessment

    def arrival(self, target, params, evidence, sent_at):
        summary = _patch_status(evidence, "availablePatchSummary")
        if _since(summary, sent_at):
            running = str(summary.get("status") or "").lower() == "inprogress"
            return Arrival("running" if running else "done", "an assessment started after the request")
        return Arrival("absent")  # a second assessment only refreshes the first: send

    def az(self, target, params):
        group = "vm" if target.kind is Kind.VM else "connectedmachine"
        return f"az {group} assess-patches {_az_named(target)}"


class PatchInstall(Action):
    id, title = "patch.install", "Install patches"

    def validate(self, params):
        classes = [str(c) for c in params.get("classifications") or ("Critical", "Security")]
        by_lower = {c.lower(): c for c in CLASSIFICATIONS}
        bad = [c for c in classes if c.lower() not in by_lower]
        if bad:
            raise ActionError(f"unknown classification {bad[0]!r}; one of {', '.join(CLASSIFICATIONS)}")
        kbs = {}
        for key in ("kb_include", "kb_exclude"):
            values = [str(k).strip() for k in params.get(key) or ()]
            wrong = [k for k in values if not _KB.match(k)]
            if wrong:
                raise ActionError(f"{wrong[0]!r} is not a KB number (e.g. KB5044281 or 5044281)")
            kbs[key] = [k.upper().removeprefix("KB") for k in values]
        reboot = str(params.get("reboot") or "IfRequired")
        if reboot not in REBOOT_SETTINGS:
            raise ActionError(f"reboot setting must be one of {', '.join(REBOOT_SETTINGS)}")
        duration = str(params.get("max_duration") or "PT2H").upper()
        if not _ISO_DURATION.match(duration):
            raise ActionError(f"maximum duration {duration!r} must be ISO 8601 like PT2H or PT1H30M")
        return {"classifications": [by_lower[c.lower()] for c in classes], **kbs, "reboot": reboot, "max_duration": duration}

    def skip_reason(self, server, params):
        return guest_not_ready(server, "install patches")

    def _windows(self, params) -> dict:
        win: dict[str, Any] = {"classificationsToInclude": params["classifications"]}
        if params["kb_include"]:
            win["kbNumbersToInclude"] = params["kb_include"]
        if params["kb_exclude"]:
            win["kbNumbersToExclude"] = params["kb_exclude"]
        return win

    def request(self, target, params, secrets=None):
        body = {"maximumDuration": params["max_duration"], "rebootSetting": params["reboot"],
                "windowsParameters": self._windows(params)}
        return Call("POST", f"{target.id}/installPatches", machine_api(target), body, track="operation")

    def evidence(self, target):
        return "machine" if target.kind is Kind.VM else ""  # Arc: no ARM read of the installations

    def arrival(self, target, params, evidence, sent_at):
        summary = _patch_status(evidence, "lastPatchInstallationSummary")
        if _since(summary, sent_at):
            status = str(summary.get("status") or "").lower()
            if status == "inprogress":
                return Arrival("running", "an installation started after the request")
            return Arrival("done", f"an installation started after the request ended {status or 'unknown'}")
        where = "the VM's update history" if target.kind is Kind.VM else "the machine's history in Azure Update Manager"
        return Arrival("unknown", f"in doubt: no patch installation was seen starting after the request; check "
                                  f"{where} before retrying (a second installation may reboot the server again)")

    def az(self, target, params):
        base = f"{_az_named(target)} --maximum-duration {params['max_duration']} --reboot-setting {params['reboot']}"
        if target.kind is Kind.ARC:
            return f"az connectedmachine install-patches {base} --windows-parameters {_json_arg(self._windows(params))}"
        cmd = f"az vm install-patches {base} --classifications-to-include-win {' '.join(params['classifications'])}"
        if params["kb_include"]:
            cmd += f" --kb-numbers-to-include {' '.join(params['kb_include'])}"
        if params["kb_exclude"]:
            cmd += f" --kb-numbers-to-exclude {' '.join(params['kb_exclude'])}"
        return cmd

    def describe(self, params):
        return f"Install patches ({', '.join(params['classifications'])}; reboot {params['reboot']}; max {params['max_duration']})"


class Power(Action):
    kinds = VM_ONLY
    _verbs: ClassVar[dict[str, tuple[str, str, tuple[str, ...]]]] = {"start": ("start", "Start", ("running", "starting")), "stop": ("powerOff", "Stop", ("stopped", "stopping", "deallocated", "deallocating")),
              "restart": ("restart", "Restart", ()), "deallocate": ("deallocate", "Deallocate", ("deallocated", "deallocating"))}

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.id = f"power.{verb}"
        self.title = self._verbs[verb][1]

    def skip_reason(self, server, params):
        reason = super().skip_reason(server, params)
        if reason:
            return reason
        state = (server.state or "unknown").lower()
        if state in self._verbs[self.verb][2]:
            return f"already {state}"
        if self.verb == "restart" and state not in ("running", "starting"):
            return f"VM is {state}: only a running VM restarts"
        return None

    def request(self, target, params, secrets=None):
        return Call("POST", f"{target.id}/{self._verbs[self.verb][0]}", API["vm"], None, track="operation")

    # Start, stop and deallocate name the state to reach: sent again, they end in the same state (idempotent
    # by nature). A restart does not: a second one reboots again, and the VM runs before and after either way.
    _ENDS: ClassVar[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
        "start": (("running",), ("starting",)), "stop": (("stopped", "deallocated"), ("stopping",)),
        "deallocate": (("deallocated",), ("deallocating",))}

    def evidence(self, target):
        return "" if self.verb == "restart" else "machine"

    def arrival(self, target, params, evidence, sent_at):
        if self.verb == "restart":
            return Arrival("unknown", "in doubt: a restart leaves the VM running either way; check its activity log "
                                      "(Restart Virtual Machine) or its boot time before retrying")
        ended, moving = self._ENDS[self.verb]
        state = power_state(evidence)
        if state in ended:
            return Arrival("done", f"the VM is {state}")
        if state in moving:
            return Arrival("running", f"the VM is {state}")
        return Arrival("absent")

    def az(self, target, params):
        return f"az vm {self.verb} {_az_named(target)}"


class Tags(Action):
    """Merge (add or change) or Delete tags through Microsoft.Resources/tags (synchronous; idempotent)."""

    idempotent = True

    def __init__(self, operation: str) -> None:
        self.operation = operation  # add | change | remove
        self.id = f"tags.{operation}"
        self.title = {"add": "Add tags", "change": "Change tags", "remove": "Remove tags"}[operation]

    def validate(self, params):
        tags = params.get("tags")
        if self.operation == "remove" and isinstance(tags, list | tuple) and all("=" not in str(t) for t in tags):
            tags = {str(t): "" for t in tags}  # remove by name, whatever the value
        tags = pairs(tags, "tag")
        if not tags:
            raise ActionError("name at least one tag")
        for k, v in tags.items():
            if len(k) > 512 or set(k) & _TAG_KEY_FORBIDDEN:
                raise ActionError(f"tag name {k!r} is too long or holds one of < > % & \\ ? /")
            if len(v) > 256:
                raise ActionError(f"the value of tag {k!r} is longer than 256 characters")
        return {"tags": tags}

    _KEEP = "Add never changes a value: use Change tags"

    def _sent(self, server: Server, params: Mapping[str, Any]) -> dict[str, str]:
        """The tags this server is sent: Add leaves out the keys it already has (their values are kept)."""
        tags = params["tags"]
        if self.operation != "add":
            return dict(tags)
        return {k: v for k, v in tags.items() if k not in server.tags}

    def skip_reason(self, server, params):
        tags = params["tags"]
        current = dict(server.tags)
        if self.operation == "remove":
            return None if any(k in current for k in tags) else "has none of these tags"
        if self.operation == "add" and not self._sent(server, params):
            return f"already has {', '.join(tags)} ({self._KEEP})"
        if all(current.get(k) == v for k, v in tags.items()):
            return "tags already have these values"
        if len({**current, **tags}) > 50:
            return "would exceed 50 tags"
        return None

    def target_params(self, server, params):
        return {**params, "tags": self._sent(server, params)}

    def notes(self, servers, params):
        """Add: each key kept where it already has a value; Change: each value it changes, old → new."""
        if self.operation == "remove":
            return []
        groups: dict[tuple[str, str], list[str]] = {}
        for server in servers:
            for key, value in params["tags"].items():
                old = server.tags.get(key)
                if self.operation == "add" and old is not None:
                    groups.setdefault((key, ""), []).append(f"{server.name} ({key}={old})")
                elif self.operation == "change" and old is not None and old != value:
                    groups.setdefault((key, f"{old} → {value}"), []).append(server.name)
        out = []
        for (key, change), names in groups.items():
            shown = ", ".join(names[:_NOTE_NAMES]) + (f" … and {len(names) - _NOTE_NAMES} more" if len(names) > _NOTE_NAMES else "")
            if change:
                out.append(f"{key}: {change} on {len(names)} server(s): {shown}")
            else:
                out.append(f"{key} not added on {len(names)} server(s) that already have it ({self._KEEP}): {shown}")
        return out

    def request(self, target, params, secrets=None):
        body = {"operation": "Delete" if self.operation == "remove" else "Merge", "properties": {"tags": params["tags"]}}
        return Call("PATCH", f"{target.id}/providers/Microsoft.Resources/tags/default", API["tags"], body, track="sync")

    def az(self, target, params):
        op = "Delete" if self.operation == "remove" else "Merge"
        pairs = " ".join(_q(f"{k}={v}" if v or self.operation != "remove" else k) for k, v in params["tags"].items())
        return f"az tag update --resource-id {_q(target.id)} --operation {op} --tags {pairs}"


class EnableIdentity(Action):
    """A system-assigned managed identity on a VM (PATCH, an LRO; a user-assigned one is kept)."""

    id, title = "identity.enable", "Enable system-assigned identity"
    kinds = VM_ONLY
    idempotent = True

    def skip_reason(self, server, params):
        reason = super().skip_reason(server, params)
        if reason:
            return reason
        return "already has a system-assigned identity" if "systemassigned" in server.identity_type.lower() else None

    def request(self, target, params, secrets=None):
        itype = "SystemAssigned, UserAssigned" if params.get("user_assigned") else "SystemAssigned"
        return Call("PATCH", target.id, API["vm"], {"identity": {"type": itype}}, track="resource",
                    resource_path=target.id, expand="instanceView")  # the power state, for the table's row

    def target_params(self, server, params):
        return {**params, "user_assigned": "userassigned" in server.identity_type.lower()}

    def az(self, target, params):
        return f"az vm identity assign {_az_named(target)}"


_DCR_ID = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Insights/dataCollectionRules/"
                     r"([A-Za-z0-9][A-Za-z0-9_.-]{0,63})$", re.IGNORECASE)
INSIGHTS_API = "2022-06-01"


def dcr_association_name(rule_id: str) -> str:
    """One association per machine and rule, named after the rule (as the fleet's own are): a resumed or
    repeated job PUTs the same resource instead of adding a second."""
    return f"{rule_id.rstrip('/').rsplit('/', 1)[-1]}-association"


def _rule_name(rule_id: str) -> str:
    return rule_id.rstrip("/").rsplit("/", 1)[-1].lower()


def _listed_rules(server: Server) -> tuple[int, set[str]] | None:
    """(how many rules the Monitor cell counts, the lower-case names it lists: its first three), or None when
    the cell names no rule."""
    cap = server.capabilities.get("monitor")
    for part in (cap.summary if cap is not None else "").split("; "):
        head, sep, names = part.partition(": ")
        count = re.fullmatch(r"(\d+) DCRs?", head)
        if sep and count:
            return int(count.group(1)), {n.strip().lower() for n in names.split(",") if n.strip()}
    return None


def associated_rules(server: Server) -> set[str]:
    """The lower-case names of the rules the Monitor cell lists for this server (its first three)."""
    listed = _listed_rules(server)
    return listed[1] if listed else set()


def every_associated_rule(server: Server) -> set[str] | None:
    """Every rule the server is associated with, when its Monitor cell tells them all (it was read, and it
    counts no more rules than it names); None when it cannot tell."""
    cap = server.capabilities.get("monitor")
    if cap is None or cap.state in (State.UNKNOWN, State.NOT_APPLICABLE) or cap.summary.endswith("…"):
        return None
    listed = _listed_rules(server)
    if listed is None:
        return set()
    count, names = listed
    return names if count == len(names) else None


class _DcrAction(Action):
    idempotent = True  # a PUT/DELETE of the same association twice has the effect of one

    def validate(self, params):
        rule = str(params.get("rule") or "").strip()
        if not _DCR_ID.match(rule):
            raise ActionError(f"{clean_text(rule, limit=120)!r} is not a data collection rule id "
                              "(/subscriptions/…/resourceGroups/…/providers/Microsoft.Insights/dataCollectionRules/NAME)")
        return {"rule": rule}

    def skip_reason(self, server, params):
        if server.kind is Kind.ARC and (server.state or "").lower() != "connected":
            return f"Arc agent is {server.state or 'unknown'}: it must be Connected to collect data"
        return None

    def _path(self, target: Target, params: Mapping[str, Any]) -> str:
        return f"{target.id}/providers/Microsoft.Insights/dataCollectionRuleAssociations/{dcr_association_name(params['rule'])}"

    def _az(self, verb: str, target: Target, params: Mapping[str, Any]) -> str:
        return (f"az monitor data-collection rule association {verb} --name {_q(dcr_association_name(params['rule']))} "
                f"--resource {_q(target.id)}")


class AssociateDcr(_DcrAction):
    """PUT a data collection rule association (ARM answers at once; the engine reads it back)."""

    id, title = "monitor.associate-dcr", "Associate a data collection rule"

    def skip_reason(self, server, params):
        if _rule_name(params["rule"]) in associated_rules(server):
            return "already associated with this rule"
        return super().skip_reason(server, params)

    def notes(self, servers: list[Server], params: Mapping[str, Any]) -> list[str]:
        without = [s for s in servers if installed(s, EXTENSIONS["ama"]) is None]
        if not without:
            return []
        return [f"{len(without)} target(s) have no Azure Monitor agent: data flows once the agent runs"]

    def request(self, target, params, secrets=None):
        path = self._path(target, params)
        body = {"properties": {"dataCollectionRuleId": params["rule"], "description": "Associated by wsam-tui"}}
        return Call("PUT", path, INSIGHTS_API, body, track="resource", resource_path=path)

    def az(self, target, params):
        return self._az("create", target, params) + f" --rule-id {_q(params['rule'])}"

    def describe(self, params):
        return f"Associate data collection rule {dcr_association_name(params['rule']).removesuffix('-association')}"


class RemoveDcr(_DcrAction):
    """DELETE the association. Skipped where the Monitor cell tells every rule and this is not one; sent where
    it cannot tell (it names three at most; a DELETE of an absent association is a harmless 204)."""

    id, title = "monitor.remove-dcr", "Remove a data collection rule association"

    def skip_reason(self, server, params):
        rules = every_associated_rule(server)
        if rules is not None and _rule_name(params["rule"]) not in rules:
            return "not associated with this rule"
        return super().skip_reason(server, params)

    def request(self, target, params, secrets=None):
        path = self._path(target, params)
        return Call("DELETE", path, INSIGHTS_API, None, track="resource", resource_path=path, deleting=True)

    def az(self, target, params):
        return self._az("delete", target, params) + " --yes"

    def describe(self, params):
        return f"Remove data collection rule {dcr_association_name(params['rule']).removesuffix('-association')}"


ACTIONS: dict[str, Action] = {a.id: a for a in (
    ExtensionInstall(), ExtensionRemove(), ExtensionUpgrade(), RunCommand(), PatchAssess(), PatchInstall(),
    *(Power(v) for v in ("start", "stop", "restart", "deallocate")), *(Tags(o) for o in ("add", "change", "remove")),
    EnableIdentity(), AssociateDcr(), RemoveDcr(),
)}


def action(action_id: str) -> Action:
    try:
        return ACTIONS[action_id]
    except KeyError:
        raise ActionError(f"unknown action {action_id!r}; known: {', '.join(ACTIONS)}") from None
