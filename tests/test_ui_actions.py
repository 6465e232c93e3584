"""The console's action screens through Pilot, against the simulator: mark, act, read the plan, confirm,
watch the job, see the matrix change; typed confirmation; read-only; Run Command outputs grouped."""

from __future__ import annotations

import pytest

from tests.app_support import (
    console_session,
    fill_store,
    fixed_clock,
    loaded,
    make_app,
    notices,
    screen_text,
    wait_for,
)
from tests.fleetbuilder import SUB_B, arc, dcr, extension, scenario_fleet, vm, vm_id
from tests.ops_support import SECRET, scan_for, writes
from wsam_tui.config import Settings
from wsam_tui.fleet.model import State
from wsam_tui.inventory import Inventory
from wsam_tui.ops.journal import Journal
from wsam_tui.ops.plan import plan
from wsam_tui.store.cache import Store
from wsam_tui.ui import glyphs as g
from wsam_tui.ui.actions import ActionForm, ActionMenu, PlanScreen, save_script
from wsam_tui.ui.jobs import JobsScreen, SecretsScreen

SIZE = (200, 50)
DCR = "/subscriptions/00000000-0000-4000-8000-00000000000a/resourceGroups/rg-mon/providers/Microsoft.Insights/dataCollectionRules/dcr-windows"


def dcr_association(machine: dict) -> dict:
    return {"id": f"{machine['id']}/providers/Microsoft.Insights/dataCollectionRuleAssociations/dcr-windows-association",
            "name": "dcr-windows-association", "type": "Microsoft.Insights/dataCollectionRuleAssociations",
            "properties": {"dataCollectionRuleId": DCR, "provisioningState": "Succeeded"}}


def monitored_fleet() -> dict:
    """Every server has its DCR association (a policy put it there); only web-00 and fs-00 have the agent.
    Installing the Azure Monitor agent turns the others' Monitor cell from partial to on."""
    fleet = scenario_fleet()
    machines = [vm(f"web-{i:02d}") for i in range(4)] + [vm("web-stopped", power="deallocated")]
    machines += [arc("fs-00"), arc("fs-01"), arc("fs-disconnected", status="Disconnected")]
    machines += [vm("app-00", sub=SUB_B, rg="rg-app")]
    resources = [*machines, *(dcr_association(m) for m in machines)]
    for m in (machines[0], machines[5]):
        resources.append(extension(m, "AzureMonitorWindowsAgent", "Microsoft.Azure.Monitor", "AzureMonitorWindowsAgent",
                                   version="1.2"))
    fleet["resources"] = resources
    fleet["simulation"] = {}
    return fleet


@pytest.fixture
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("WSAM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("WSAM_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


async def console(make_sim, tmp_path, fleet, *, readonly=False, settings=None):
    running = make_sim(fleet, throttle=False, graph_quota=False, lro_seconds=0.2)
    newest = await fill_store(running, tmp_path / "store", allow_failures=True)
    session = console_session(tmp_path / "store", running, readonly=readonly)
    return running, make_app(session, clock=fixed_clock(newest), settings=settings)


def cell(app, server_name: str, capability: str) -> int:
    """The state code the table draws for one server's capability."""
    data = app.table._data
    caps = [c.spec.capability for c in data.layout if c.spec.capability is not None]
    server = next(s for s in app.servers if s.name == server_name)
    return data.states[data.index_of[server.id]][caps.index(capability)]


async def mark_filter(pilot, text: str) -> None:
    await pilot.press("slash", *text, "enter", "a")
    await pilot.pause()


async def choose_action(pilot, action_id: str) -> None:
    """o, then the action in the menu by keys (down until it is highlighted, enter)."""
    app = pilot.app
    await pilot.press("o")
    await wait_for(pilot, lambda: isinstance(app.screen, ActionMenu), 5, "the action menu")
    menu = app.screen.query_one("#action-list")
    for _ in range(menu.option_count):
        if menu.highlighted_option is not None and menu.highlighted_option.id == action_id:
            break
        await pilot.press("down")
    assert menu.highlighted_option.id == action_id
    await pilot.press("enter")
    await pilot.pause()


async def form_for_all(pilot, action_id: str) -> ActionForm:
    """Mark every server (a), choose the action, and hand back its form."""
    await loaded(pilot)
    await pilot.press("a")
    await choose_action(pilot, action_id)
    assert isinstance(pilot.app.screen, ActionForm)
    return pilot.app.screen


async def run_and_watch(pilot, until: str) -> str:
    """y on the plan, the job to its end, then J: the jobs pane's text once it shows ``until``."""
    app = pilot.app
    await pilot.press("y")
    await job_done(pilot)
    await pilot.press("J")
    await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), 5, "the jobs pane")
    await wait_for(pilot, lambda: until in screen_text(app), 10, repr(until))
    return screen_text(app)


async def plan_text(pilot) -> str:
    """ctrl+g on the form; the plan screen as the operator reads it."""
    await pilot.press("ctrl+g")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PlanScreen), 5, "the plan")
    return screen_text(pilot.app)


async def job_done(pilot, jobs: int = 1, timeout: float = 60) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: len(app.ops.ended) >= jobs and not app.ops.running, timeout, "the job")


async def mark_missing_monitor_and_choose(pilot, action_id: str, *, partial: str, marked: int) -> ActionForm:
    """Once loaded (``partial``'s Monitor cell partial): mark ``missing:monitor`` (``marked`` servers), choose the action."""
    app = pilot.app
    await loaded(pilot)
    assert cell(app, partial, "monitor") == g.CODE[State.PARTIAL]
    await mark_filter(pilot, "missing:monitor")
    assert app.marked == marked
    await choose_action(pilot, action_id)
    assert isinstance(app.screen, ActionForm)
    return app.screen


async def test_install_the_monitor_agent_on_the_servers_missing_it(make_sim, private_dirs):
    tmp_path = private_dirs
    running, app = await console(make_sim, tmp_path, monitored_fleet())
    async with app.run_test(size=SIZE) as pilot:
        await mark_missing_monitor_and_choose(pilot, "extension.install", partial="web-01", marked=7)
        assert app.screen.query_one("#extension").value == "ama"  # the catalog's first: the Azure Monitor agent
        text = await plan_text(pilot)
        assert "Targets (5)" in text and "Skipped (2)" in text
        for name in ("web-01", "web-02", "web-03", "fs-01", "app-00"):
            assert f"{name}  PUT" in text
            assert f"/{name}/extensions/AzureMonitorWindowsAgent?api-version=" in text
        assert "VM is deallocated: it must be running to install extensions (1): web-stopped" in text
        assert "Arc agent is Disconnected: it must be Connected to install extensions (1): fs-disconnected" in text
        assert "az vm extension set" in text and "az connectedmachine extension create" in text
        assert writes(running) == []  # nothing sent while planning
        text = await run_and_watch(pilot, "5 of 5 ended")
        assert "5 succeeded, 2 skipped" in text and "Install Azure Monitor agent 1.2" in text
        for name in ("web-01", "fs-01", "app-00"):
            assert any(name in line and "succeeded" in line for line in text.splitlines())
        # The matrix turns green: each target's row was re-read through ARM when its target succeeded.
        await wait_for(pilot, lambda: all(cell(app, n, "monitor") == g.CODE[State.ON]
                                          for n in ("web-01", "web-02", "web-03", "fs-01", "app-00")),
                       30, "the rows to show the agent")
        assert cell(app, "web-stopped", "monitor") == g.CODE[State.PARTIAL]
        assert cell(app, "fs-disconnected", "monitor") == g.CODE[State.PARTIAL]
        await pilot.press("escape")
        assert not isinstance(app.screen, JobsScreen)
        # The filter behind the marks (missing:monitor) and the gap view follow the new rows.
        await wait_for(pilot, lambda: app.shown == 2, 10, "missing:monitor to drop the servers that got the agent")
        assert {app.index.servers[i].name for i in app._filtered()} == {"web-stopped", "fs-disconnected"}
        gaps = app.index.filter(app.index.gaps("monitor"))  # what the gap view (x, :gaps monitor) lists
        assert {app.index.servers[i].name for i in gaps} == {"web-stopped", "fs-disconnected"}
        assert app.by_id[next(s.id for s in app.servers if s.name == "web-01")].capabilities["monitor"].state is State.ON
        await wait_for(pilot, lambda: app.ops.stored == 5, 10, "the changed rows in the store")
    puts = [e["path"] for e in writes(running)]
    assert len(puts) == 5 and all(p.endswith("/extensions/AzureMonitorWindowsAgent") for p in puts)
    # The rows came from what the engine read back while tracking each install: no other ARM read.
    start = next(i for i, e in enumerate(running.sim.log.entries) if e["method"] == "PUT")
    other = [e["path"] for e in running.sim.log.entries[start:] if e["method"] == "GET"
             and "/providers/microsoft.resourcegraph/" not in e["path"].lower()
             and not e["path"].lower().endswith("/extensions/azuremonitorwindowsagent")]
    assert other == [], other
    # And the store has them: a console started --offline after this one shows the agent installed.
    store = Store(tmp_path / "store")
    try:
        offline = {s.name: s for s in Inventory(store).load().servers}
    finally:
        store.close()
    for name in ("web-01", "web-02", "web-03", "fs-01", "app-00"):
        assert offline[name].capabilities["monitor"].state is State.ON, name
    assert offline["web-stopped"].capabilities["monitor"].state is State.PARTIAL


async def test_above_the_threshold_the_operator_types_the_count(make_sim, private_dirs):
    tmp_path = private_dirs
    fleet = scenario_fleet()
    fleet["resources"] = [vm(f"web-{i:02d}", tags={}) for i in range(12)]
    fleet["simulation"] = {}
    running, app = await console(make_sim, tmp_path, fleet)
    async with app.run_test(size=SIZE) as pilot:
        form = await form_for_all(pilot, "tags.add")
        await pilot.press("ctrl+g")  # no tag given: the form says why and stays
        assert app.screen is form and "name at least one tag" in screen_text(app)
        form.query_one("#tags").value = 'owner="Jane Doe" env=prod'
        assert "Type 12 and press enter" in await plan_text(pilot)
        await pilot.press("y")  # not enough above the threshold
        assert isinstance(app.screen, PlanScreen)
        await pilot.press("1", "1", "enter")
        assert isinstance(app.screen, PlanScreen) and "Type exactly 12" in screen_text(app)
        assert writes(running) == []
        app.screen.query_one("#confirm-count").value = ""
        await pilot.press("1", "2", "enter")
        await job_done(pilot)
    sent = writes(running)
    assert len(sent) == 12 and all(e["method"] == "PATCH" for e in sent)
    assert all(running.sim.state.get(vm_id(f"web-{i:02d}"))["tags"] == {"owner": "Jane Doe", "env": "prod"}
               for i in range(12))


async def test_a_protected_subscription_needs_the_typed_count_even_for_one(make_sim, private_dirs):
    running, app = await console(make_sim, private_dirs, monitored_fleet(),
                                 settings=Settings(protected_subscriptions=("Apps",)))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await mark_filter(pilot, "app-00")
        await choose_action(pilot, "power.restart")  # no form: straight to the plan
        assert isinstance(app.screen, PlanScreen)
        text = screen_text(app)
        assert "app-00  [protected subscription]  POST" in text and "Type 1 and press enter" in text
        await pilot.press("escape")
        await pilot.pause()
    assert writes(running) == []


async def test_readonly_hides_the_actions_and_says_why(make_sim, private_dirs):
    running, app = await console(make_sim, private_dirs, monitored_fleet(), readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("a", "o")  # the key says why it does nothing
        await wait_for(pilot, lambda: sum("Read-only mode" in n for n in notices(app)) == 1, 5, "the reason")
        assert not isinstance(app.screen, ActionMenu)
        await app.run_action("act")  # the command palette's "Act" (SystemCommand runs the action so): the same
        await wait_for(pilot, lambda: sum("Read-only mode" in n for n in notices(app)) == 2, 5, "the reason again")
        assert not isinstance(app.screen, ActionMenu)
        await pilot.press("J")  # the jobs pane still reads the journal
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), 5, "the jobs pane")
        assert "No jobs yet" in screen_text(app)
    assert writes(running) == []


async def test_run_command_outputs_are_grouped_and_hostile_text_stays_literal(make_sim, private_dirs):
    tmp_path = private_dirs
    fleet = scenario_fleet()
    names = [f"web-{i:02d}" for i in range(6)]
    fleet["resources"] = [vm(n) for n in names]
    outputs = {n: {"stdout": "Running\n", "stderr": "", "exitCode": 0} for n in names[:3]}
    outputs["web-03"] = {"stdout": "Stopped\n", "stderr": "service is stopped\n", "exitCode": 1}
    outputs["web-04"] = {"stdout": "\x1b]0;owned\x07[@click=app.quit]quit[/] [b]bold[/b]\n", "stderr": "", "exitCode": 0}
    outputs["web-05"] = {"stdout": "x" * 5000 + "\n", "stderr": "", "exitCode": 0}
    fleet["simulation"] = {"machines": {vm_id(n): {"runCommandOutput": o} for n, o in outputs.items()}}
    save_script("status", "Get-Service $Name | Select -Expand Status", tmp_path / "config" / "scripts")
    running, app = await console(make_sim, tmp_path, fleet)
    async with app.run_test(size=SIZE) as pilot:
        form = await form_for_all(pilot, "run-command")
        form.query_one("#saved-script").value = "status"  # load the saved script
        await pilot.pause()
        assert form.query_one("#script").text == "Get-Service $Name | Select -Expand Status"
        form.query_one("#save-name").value = "status-copy"
        form.query_one("#save-script").press()  # saved beside it, private; parameters are not saved
        await pilot.pause()
        saved = tmp_path / "config" / "scripts" / "status-copy.ps1"
        assert saved.read_text() == "Get-Service $Name | Select -Expand Status"
        assert saved.stat().st_mode & 0o777 == 0o600 and saved.parent.stat().st_mode & 0o777 == 0o700
        form.query_one("#parameters").value = "Name=Spooler"
        form.query_one("#protected-name").value = "Token"
        form.query_one("#protected-value").value = SECRET
        form.query_one("#timeout").value = "120"
        text = await plan_text(pilot)
        assert "Targets (6)" in text and "/runCommands/wsam-" in text and SECRET not in text and "<hidden>" in text
        text = await run_and_watch(pilot, "Outputs: 4 distinct among 6 servers")
        assert "3 servers: Running" in text
        assert "1 server: Stopped  exit code 1  stderr" in text
        assert "1 server: ␛]0;owned␇[@click=app.quit]quit[/] [b]bold[/b]" in text  # literally, controls as markers
        assert "[truncated at 4,096 bytes]" in text
        assert "1 failed" in text  # exit code 1 is a failed target
        await pilot.click("#job-outputs")  # a click on the hostile text runs no action
        await pilot.pause()
        assert app.is_running
        await pilot.press("e", "home", "enter")  # the largest group in full: its streams and servers
        await wait_for(pilot, lambda: "Output group 1 of 4" in screen_text(app), 5, "the first group")
        assert "servers (3):\nweb-00\nweb-01\nweb-02" in "\n".join(line.strip() for line in screen_text(app).splitlines())
        await pilot.press("n")
        await wait_for(pilot, lambda: "service is stopped" in screen_text(app), 5, "the group with stderr")
        assert "\x1b" not in text and "\x07" not in text
    assert scan_for(tmp_path / "state", SECRET) == []
    assert scan_for(tmp_path / "config", SECRET) == []
    assert len(writes(running)) == 6  # one Run Command PUT per server


def journal_unsent(tmp_path, p) -> None:
    """The journal of a job that an earlier console planned and wrote down, then died before sending."""
    Journal(tmp_path / "state" / "jobs").create({
        "id": p.id, "action": p.action, "title": p.title, "params": p.params, "secretNames": list(p.secret_names),
        "principal": "earlier", "skipped": [],
        "targets": [{"target": t.target.to_json(), "params": t.params, "call": t.call.to_json()} for t in p.targets],
    }).close()


def servers_named(tmp_path, *names: str) -> list:
    store = Store(tmp_path / "store")
    try:
        return [s for s in Inventory(store).load().servers if s.name in names]
    finally:
        store.close()


async def test_an_unfinished_job_is_resumed_at_start(make_sim, private_dirs):
    running, app = await console(make_sim, private_dirs, monitored_fleet())
    chosen = servers_named(private_dirs, "web-01", "web-02")
    journal_unsent(private_dirs, plan("extension.install", {"extension": "ama"}, chosen))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await wait_for(pilot, lambda: any("Resuming 1 unfinished job(s)" in n for n in notices(app)), 10,
                       "the notice")
        await job_done(pilot)
        await pilot.press("J")
        await wait_for(pilot, lambda: "2 of 2 ended · 2 succeeded" in screen_text(app), 10, "the resumed job's end")
        await wait_for(pilot, lambda: cell(app, "web-02", "monitor") == g.CODE[State.ON], 30, "the row")
    assert sorted(e["path"].rsplit("/", 3)[1] for e in writes(running)) == ["web-01", "web-02"]


async def test_a_restart_killed_in_flight_resumes_in_doubt_and_the_pane_says_what_to_check(make_sim, private_dirs):
    running, app = await console(make_sim, private_dirs, monitored_fleet())
    p = plan("power.restart", {}, servers_named(private_dirs, "web-01"))
    journal_unsent(private_dirs, p)
    writer = Journal(private_dirs / "state" / "jobs").open(p.id)  # the request left, the console died: no answer
    writer.append({"t": "intent", "target": p.targets[0].target.id, "attempt": 1, "method": "POST",
                   "path": p.targets[0].call.path}, sync=True)
    writer.close()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await job_done(pilot)  # resumed at start
        await pilot.press("J")
        await wait_for(pilot, lambda: "1 in-doubt" in screen_text(app), 10, "the resumed job's end")
        text = screen_text(app)
        assert "in-doubt  InDoubt: in doubt: a restart leaves the VM running either way; check its activity log" in text
        assert "f retry failed" in text
    assert writes(running) == [], "a restart is not sent again blindly"


async def test_a_read_only_start_shows_an_unfinished_job_and_does_not_resume_it(make_sim, private_dirs):
    running, app = await console(make_sim, private_dirs, monitored_fleet(), readonly=True)
    chosen = servers_named(private_dirs, "web-01", "web-02")
    journal_unsent(private_dirs, plan("extension.install", {"extension": "ama"}, chosen))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await wait_for(pilot, lambda: any("1 unfinished job(s)" in n and "Not resumed: Read-only" in n
                                          for n in notices(app)), 10, "the notice")
        await pilot.press("J")
        await wait_for(pilot, lambda: "unfinished: r resumes" in screen_text(app), 10, "the unfinished job")
        assert app.ops.running == set()
    assert writes(running) == []


async def test_offline_offers_no_action(make_sim, private_dirs):
    running, online = await console(make_sim, private_dirs, monitored_fleet())
    app = make_app(console_session(private_dirs / "store", offline=True), clock=online.clock())
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("o")
        await wait_for(pilot, lambda: any("Offline (--offline): actions need ARM" in n for n in notices(app)), 5,
                       "the reason")
        assert not isinstance(app.screen, ActionMenu)
        await pilot.press("r")  # refresh: it says why it does not connect
        await wait_for(pilot, lambda: any("Offline mode (--offline)" in n for n in notices(app)), 5, "why not")
        assert not app.refreshing
    assert writes(running) == []


async def test_hostile_server_names_and_tags_show_literally_in_the_plan_and_the_jobs_pane(make_sim, private_dirs):
    fleet = scenario_fleet()
    hostile = "srv-[@click=app.quit]q[/]-[$accent]v"
    fleet["resources"] = [vm(hostile), vm("web-00")]
    fleet["simulation"] = {}
    running, app = await console(make_sim, private_dirs, fleet)
    async with app.run_test(size=SIZE) as pilot:
        form = await form_for_all(pilot, "tags.add")
        form.query_one("#tags").value = '"note=[b]x[/b] [@click=app.quit]y[/]"'
        text = await plan_text(pilot)
        assert "srv-[@click=app.quit]q[/]-[$accent]v  PATCH" in text
        assert "note=[b]x[/b] [@click=app.quit]y[/]" in text  # in the az command, quoted
        text = await run_and_watch(pilot, "2 of 2 ended")
        assert "srv-[@click=app.quit]q[/]-[$accent]v  succeeded" in text
        await pilot.click("#job-targets", offset=(8, 0))  # on the name's "[@click=app.quit]": no action runs
        await pilot.pause()
        assert app.is_running
    assert [e["method"] for e in writes(running)] == ["PATCH", "PATCH"]


async def test_cancel_stops_sending_and_retry_failed_sends_the_rest(make_sim, private_dirs):
    fleet = scenario_fleet()
    fleet["resources"] = [vm(f"web-{i:02d}", tags={}) for i in range(10)]
    fleet["simulation"] = {}
    running, app = await console(make_sim, private_dirs, fleet)
    async with app.run_test(size=SIZE) as pilot:
        engine = await app.session.engine()
        engine.write_budget = (1.0, 2.0)  # one write at once, then two a second: most targets wait their turn
        form = await form_for_all(pilot, "tags.add")
        form.query_one("#tags").value = "env=prod"
        await plan_text(pilot)
        await pilot.press("y", "J")
        await wait_for(pilot, lambda: "waiting-for-throttle" in screen_text(app), 10, "targets waiting for the budget")
        await pilot.press("c")
        await job_done(pilot)
        await wait_for(pilot, lambda: "10 of 10 ended" in screen_text(app), 10, "the cancelled job's end")
        text = screen_text(app)
        assert "cancelled before it was sent" in text and "f retry failed" in text
        sent = len(writes(running))
        assert 1 <= sent < 10
        assert f"{10 - sent} cancelled" in text and f"{sent} succeeded" in text
        await pilot.press("f")
        await job_done(pilot, jobs=2)
        await wait_for(pilot, lambda: "10 of 10 ended · 10 succeeded" in screen_text(app), 20, "the retried job")
    assert len(writes(running)) == 10  # the cancelled ones once each, nothing sent twice


async def test_a_job_resumed_at_start_fails_what_needs_a_protected_parameter_and_retry_asks_for_it(
        make_sim, private_dirs):
    running, app = await console(make_sim, private_dirs, monitored_fleet())
    params = {"script": "param($Token) Write-Output ok", "protected_parameters": {"Token": SECRET}}
    journal_unsent(private_dirs, plan("run-command", params, servers_named(private_dirs, "web-01", "fs-01")))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await wait_for(pilot, lambda: any("need protected values again" in n for n in notices(app)), 10, "the notice")
        await job_done(pilot)
        await pilot.press("J")
        await wait_for(pilot, lambda: "2 of 2 ended · 2 failed" in screen_text(app), 10, "the job's end")
        assert "SecretsNotKept" in screen_text(app) and writes(running) == []
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, SecretsScreen), 5, "the question for the value")
        assert "Protected parameter Token" in screen_text(app)
        await pilot.press(*SECRET, "enter")
        await job_done(pilot, jobs=2)
        await wait_for(pilot, lambda: "2 of 2 ended · 2 succeeded" in screen_text(app), 10, "the retried job")
        assert SECRET not in screen_text(app)
    bodies = [e for e in writes(running) if e["method"] == "PUT"]
    assert len(bodies) == 2
    assert scan_for(private_dirs / "state", SECRET) == []


def agents_without_rules_fleet() -> dict:
    """The Azure Monitor agent runs everywhere but web-03; no server has a rule: every Monitor cell is partial
    or off. One data collection rule exists for the operator to pick."""
    fleet = scenario_fleet()
    machines = [vm(f"web-{i:02d}") for i in range(4)] + [arc("fs-00"), arc("fs-disconnected", status="Disconnected")]
    resources = [*machines, dcr("dcr-perf", rg="rg-monitor")]
    for m in machines:
        if m["name"] != "web-03":
            resources.append(extension(m, "AzureMonitorWindowsAgent", "Microsoft.Azure.Monitor",
                                       "AzureMonitorWindowsAgent", version="1.2"))
    fleet["resources"] = resources
    fleet["simulation"] = {}
    return fleet


async def test_associate_a_rule_with_keys_and_the_monitor_cells_turn_on(make_sim, private_dirs):
    tmp_path = private_dirs
    running, app = await console(make_sim, tmp_path, agents_without_rules_fleet())
    async with app.run_test(size=SIZE) as pilot:
        form = await mark_missing_monitor_and_choose(pilot, "monitor.associate-dcr", partial="web-00", marked=6)
        await pilot.press("enter", "down", "enter")  # open the rule list, pick the first (the only) rule
        await pilot.pause()
        assert form.query_one("#rule").value.endswith("/dataCollectionRules/dcr-perf")
        text = await plan_text(pilot)
        assert "Targets (5)" in text and "Skipped (1)" in text
        assert "Arc agent is Disconnected: it must be Connected to collect data (1): fs-disconnected" in text
        assert "1 target(s) have no Azure Monitor agent: data flows once the agent runs" in text
        assert "az monitor data-collection rule association create" in text
        assert writes(running) == []
        text = await run_and_watch(pilot, "5 of 5 ended")
        assert "5 succeeded, 1 skipped" in text
        await wait_for(pilot, lambda: all(cell(app, n, "monitor") == g.CODE[State.ON]
                                          for n in ("web-00", "web-01", "web-02", "fs-00")), 30, "the cells to turn on")
        assert cell(app, "web-03", "monitor") == g.CODE[State.PARTIAL]  # a rule, no agent yet
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.shown == 2, 10, "missing:monitor to drop the servers now monitored")
        assert {app.index.servers[i].name for i in app._filtered()} == {"web-03", "fs-disconnected"}
    puts = [e["path"] for e in writes(running)]
    assert len(puts) == 5 and all(p.endswith("/dataCollectionRuleAssociations/dcr-perf-association") for p in puts)


async def test_with_no_rule_known_the_form_says_so(make_sim, private_dirs):
    _, app = await console(make_sim, private_dirs, monitored_fleet())
    async with app.run_test(size=SIZE) as pilot:
        form = await form_for_all(pilot, "monitor.associate-dcr")
        assert "knows no data collection rule" in screen_text(app)
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert app.screen is form and "pick a data collection rule" in screen_text(app)
