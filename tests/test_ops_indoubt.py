"""In-doubt POSTs: the process dies between the journalled intent and ARM's answer, then the job resumes.

The interruption is the one SIGKILL leaves (tests/test_ops_resume.py kills a real process): the intent is on
disk, the request either reached ARM or did not, and nothing after it was written. Here the engine's send
raises a BaseException right there, which nothing in the engine catches, so the job stops exactly at that
point; a fresh engine on the same journal then resumes it. Per POST action (docs/actions.md, "In doubt"):
the server's state tells whether it arrived (power state, the assessment's or installation's start time
against the intent's, the extension's version); a call idempotent by nature is sent again when it did not
arrive; one that is not, and cannot be told, ends ``in-doubt`` with what to check. The simulator's request
log counts the POSTs: never one too many.
"""

from __future__ import annotations

import asyncio
import io

import pytest

from tests.ops_support import connection, journal_lines, make_engine, servers_of, writes
from wsam_tui.ops.headless import print_job
from wsam_tui.ops.journal import Journal
from wsam_tui.ops.plan import plan


class Killed(BaseException):
    """The process dying: nothing in the engine catches it."""


@pytest.fixture
async def ops(scenario_sim, tmp_path):
    conn = await connection(scenario_sim)
    yield conn, await servers_of(conn, tmp_path)
    await conn.close()


async def killed_after_intent(conn, tmp_path, p, *, arrives: bool) -> None:
    """Run ``p`` until its one request is about to get its answer, then die. ``arrives``: ARM got it first."""
    engine = make_engine(conn, tmp_path)
    real = engine.gate.send

    async def send(method, path, **kwargs):
        if arrives:
            await real(method, path, **kwargs)  # accepted; the answer dies with the process
        raise Killed

    engine.gate.send = send
    with pytest.raises(Killed):
        await engine.run(p)
    (path,) = (tmp_path / "state" / "jobs").glob(f"{p.id}*.jsonl")
    assert journal_lines(path)[-1]["t"] == "intent", "the journal ends at the intent, as a kill leaves it"


async def operations_ended(running) -> None:
    """Until the simulator has completed every operation it accepted (a restart takes longer than they do)."""
    def ended() -> bool:
        running.state.advance()
        return all(op.done for op in running.state.operations.values())

    while not running.call(ended):
        await asyncio.sleep(0.05)


async def resumed(conn, tmp_path, job_id: str):
    job = await make_engine(conn, tmp_path).resume(job_id)
    (t,) = job.targets.values()
    return job, t


def posts(running, verb: str) -> int:
    return sum(1 for e in writes(running) if e["method"] == "POST" and e["path"].lower().endswith("/" + verb.lower()))


# action, server, params, the POST's last path segment
SAFE_TO_SEND_AGAIN = [
    ("power.start", "web-stopped", {}, "start"),
    ("power.stop", "web-01", {}, "powerOff"),
    ("power.deallocate", "web-01", {}, "deallocate"),
    ("patch.assess", "web-01", {}, "assessPatches"),
    ("extension.upgrade", "fs-00", {"extension": "ama", "version": "1.30"}, "upgradeExtensions"),
]


@pytest.mark.parametrize("arrived", [True, False], ids=["arrived", "never-arrived"])
@pytest.mark.parametrize(("action_id", "name", "params", "verb"), SAFE_TO_SEND_AGAIN, ids=[c[0] for c in SAFE_TO_SEND_AGAIN])
async def test_a_post_safe_to_repeat_is_confirmed_from_the_server_if_it_arrived_else_sent_on_resume(
        ops, scenario_sim, tmp_path, action_id, name, params, verb, arrived):
    conn, servers = ops
    p = plan(action_id, params, [servers[name]])
    await killed_after_intent(conn, tmp_path, p, arrives=arrived)
    await operations_ended(scenario_sim)
    assert posts(scenario_sim, verb) == int(arrived)
    job, t = await resumed(conn, tmp_path, p.id)
    assert t.state == "succeeded", (t.code, t.message)
    if arrived:
        assert t.message.startswith("confirmed by reading the server"), t.message
    assert posts(scenario_sim, verb) == 1, "sent once in all: ARM had it, or it is sent now"
    assert not job.unfinished


async def test_a_start_still_under_way_at_the_restart_is_followed_to_its_end(ops, scenario_sim, tmp_path):
    conn, servers = ops
    p = plan("power.start", {}, [servers["web-stopped"]])
    await killed_after_intent(conn, tmp_path, p, arrives=True)
    _, t = await resumed(conn, tmp_path, p.id)  # at once: the VM is still starting
    assert t.state == "succeeded" and "the VM is running" in t.message
    assert posts(scenario_sim, "start") == 1


async def test_an_installation_that_arrived_is_confirmed_by_its_start_time(ops, scenario_sim, tmp_path):
    conn, servers = ops
    p = plan("patch.install", {}, [servers["web-01"]])
    await killed_after_intent(conn, tmp_path, p, arrives=True)
    await operations_ended(scenario_sim)
    _, t = await resumed(conn, tmp_path, p.id)
    assert t.state == "succeeded" and "an installation started after the request" in t.message
    assert posts(scenario_sim, "installPatches") == 1


@pytest.mark.parametrize(("action_id", "name", "verb", "check"), [
    ("patch.install", "web-01", "installPatches", "check the VM's update history"),
    ("patch.install", "fs-01", "installPatches", "check the machine's history in Azure Update Manager"),
    ("power.restart", "web-01", "restart", "check its activity log"),
])
async def test_a_post_that_cannot_be_told_and_is_not_safe_to_repeat_ends_in_doubt(
        ops, scenario_sim, tmp_path, action_id, name, verb, check):
    conn, servers = ops
    p = plan(action_id, {}, [servers[name]])
    arrives = action_id == "power.restart"  # a restart that arrived looks the same as one that did not
    await killed_after_intent(conn, tmp_path, p, arrives=arrives)
    await operations_ended(scenario_sim)
    job, t = await resumed(conn, tmp_path, p.id)
    assert t.state == "in-doubt" and t.code == "InDoubt" and t.message.startswith("in doubt:") and check in t.message
    assert posts(scenario_sim, verb) == int(arrives), "nothing sent again blindly"
    assert not job.unfinished, "in doubt is an end: the operator decides"
    # jobs show (headless) says it as the console's pane does
    out = io.StringIO()
    print_job(Journal(tmp_path / "state" / "jobs").load(p.id), out)
    assert f"  {name}: in-doubt InDoubt: in doubt:" in out.getvalue()
    # The operator checked: retry-failed sends it again, once.
    again = await make_engine(conn, tmp_path).retry_failed(p.id)
    assert [x.state for x in again.targets.values()] == ["succeeded"]
    assert posts(scenario_sim, verb) == int(arrives) + 1
