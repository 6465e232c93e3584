"""The printed az equivalents: each names its target unambiguously and, parsed as bash parses it, sends what the call sends."""

from __future__ import annotations

import io
import json
import shlex

import pytest

from tests.test_ops_actions import SAMPLES
from wsam_tui.fleet.model import Kind
from wsam_tui.ops.catalog import ACTIONS, Target
from wsam_tui.ops.headless import print_plan
from wsam_tui.ops.plan import Plan, PlannedTarget
from wsam_tui.ui.actions import plan_content

SUB = "00000000-0000-0000-0000-0000000000b2"
TARGETS = {
    Kind.VM: Target(f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/web-01",
                    "web-01", Kind.VM, SUB, "rg-web", "westeurope"),
    Kind.ARC: Target(f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.HybridCompute/machines/fs-01",
                     "fs-01", Kind.ARC, SUB, "rg-web", "westeurope"),
}
SCRIPT = "$name = 'it''s me'\nWrite-Output \"$name on $env:COMPUTERNAME\"\n\tGet-Service | Select -First 3"


def az_of(action_id: str, kind: Kind, params: dict) -> list[str]:
    act = ACTIONS[action_id]
    full = act.validate({**params, "run_name": "wsam-abc"} if action_id == "run-command" else params)
    return shlex.split(act.az(TARGETS[kind], full))


def flag(tokens: list[str], name: str) -> str:
    assert name in tokens, f"{name} missing from {tokens}"
    return tokens[tokens.index(name) + 1]


@pytest.mark.parametrize("action_id,kind", [(a, k) for a in sorted(SAMPLES) for k in (Kind.VM, Kind.ARC)
                                            if k in ACTIONS[a].kinds])
def test_every_az_command_selects_its_target_unambiguously(action_id, kind):
    tokens = az_of(action_id, kind, SAMPLES[action_id][1])
    assert tokens[0] == "az"
    if "--resource-group" in tokens:  # a resource named by group and name: the subscription too
        assert flag(tokens, "--subscription") == SUB, tokens
    else:  # or by its full id
        assert any(t.startswith(f"/subscriptions/{SUB}/") for t in tokens), tokens


def test_the_az_run_command_runs_the_same_multi_line_script_on_both_kinds():
    vm = az_of("run-command", Kind.VM, {"script": SCRIPT, "parameters": ["a=1 2"]})
    assert vm[:4] == ["az", "vm", "run-command", "create"] and flag(vm, "--script") == SCRIPT
    assert flag(vm, "--parameters") == "a=1 2"
    # connectedmachine extension 4.0.0b1 (aaz, api 2026-06-16-preview): the script goes in --source, the
    # parameters as a list of {name, value}; there is no --script flag
    arc = az_of("run-command", Kind.ARC, {"script": SCRIPT, "parameters": ["a=1 2"]})
    assert arc[:4] == ["az", "connectedmachine", "run-command", "create"] and "--script" not in arc
    assert json.loads(flag(arc, "--source")) == {"script": SCRIPT}
    assert json.loads(flag(arc, "--parameters")) == [{"name": "a", "value": "1 2"}]
    assert flag(arc, "--timeout-in-seconds") == "3600" and flag(arc, "--machine-name") == "fs-01"


def test_extension_install_carries_automatic_upgrade_when_the_request_enables_it():
    assert flag(az_of("extension.install", Kind.VM, {"extension": "ama"}), "--enable-auto-upgrade") == "true"
    # connectedmachine extension 4.0.0b1 names it --enable-automatic-upgrade
    assert flag(az_of("extension.install", Kind.ARC, {"extension": "ama"}), "--enable-automatic-upgrade") == "true"
    for kind in (Kind.VM, Kind.ARC):
        tokens = az_of("extension.install", kind, {"extension": "mde"})  # the request leaves it off
        assert "--enable-auto-upgrade" not in tokens and "--enable-automatic-upgrade" not in tokens


def run_command_plan() -> Plan:
    act = ACTIONS["run-command"]
    params = act.validate({"script": SCRIPT, "run_name": "wsam-abc"})
    target = TARGETS[Kind.VM]
    planned = PlannedTarget(target, params, act.request(target, params), act.az(target, params))
    return Plan("abc", act.id, act.describe(params), params, (planned,), (), False, "1", False,
                blocks=act.blocks(params))


def shown_as_block(lines: list[str], text: str) -> bool:
    """The text's lines, in order, each on a display line of its own (after a margin)."""
    want = [line.expandtabs(4) for line in text.splitlines()]
    def holds(line: str, w: str) -> bool:
        return line.endswith(w) and line[: len(line) - len(w)].strip() in ("", "|", "│")

    return any(all(holds(lines[i + k], w) for k, w in enumerate(want)) for i in range(len(lines) - len(want) + 1))


def test_the_plan_shows_a_multi_line_script_as_the_block_it_is():
    out = io.StringIO()
    print_plan(run_command_plan(), out)
    headless = out.getvalue().splitlines()
    console = plan_content(run_command_plan()).plain.splitlines()
    for lines in (headless, console):
        assert shown_as_block(lines, SCRIPT), lines
        assert not any(SCRIPT.splitlines()[1] in line and SCRIPT.splitlines()[2].strip() in line for line in lines)
