"""The jobs pane through Pilot, against the simulator: a fault in a redraw does not end the console or the job;
Run Command outputs — every group on screen, titled by where it differs, viewable in full with its servers,
written to a file."""

from __future__ import annotations

import json

import pytest

from tests.app_support import (
    console_session,
    fill_store,
    fixed_clock,
    make_app,
    notices,
    screen_text,
    wait_for,
)
from tests.fleetbuilder import scenario_fleet, vm, vm_id
from tests.test_ui_actions import SIZE, console, form_for_all, job_done, plan_text
from wsam_tui.ui.jobs import JobsScreen


@pytest.fixture
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("WSAM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("WSAM_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


HEADER = "Status   Name      DisplayName\n------   ----      -----------\n"


def twenty_outputs_fleet() -> tuple[dict, dict[str, str]]:
    """24 servers, 20 distinct outputs that all start with the same two header lines (as Get-Service prints):
    web-00..web-04 answer the same; sv-18 and sv-19 differ only at their fourth line."""
    fleet = scenario_fleet()
    names = [f"web-{i:02d}" for i in range(5)] + [f"sv-{i:02d}" for i in range(1, 20)]
    stdout = {n: HEADER + "Running  Spooler   Print Spooler\n" for n in names[:5]}
    for i in range(1, 18):
        stdout[f"sv-{i:02d}"] = HEADER + f"Stopped  Svc{i:02d}     Service number {i}\n"
    stdout["sv-18"] = HEADER + "Running  W32Time   Windows Time\nRunning  WinRM     Remote Management\n"
    stdout["sv-19"] = HEADER + "Running  W32Time   Windows Time\nStopped  WinRM     Remote Management\n"
    fleet["resources"] = [vm(n) for n in names]
    fleet["simulation"] = {"machines": {vm_id(n): {"runCommandOutput": {"stdout": out, "stderr": "", "exitCode": 0}}
                                        for n, out in stdout.items()}}
    return fleet, stdout


async def run_script(pilot, script: str = "Get-Service") -> None:
    """Mark every server, Run Command ``script``, confirm (typing the count above the threshold), to its end."""
    app = pilot.app
    form = await form_for_all(pilot, "run-command")
    form.query_one("#script").text = script
    await plan_text(pilot)
    await pilot.press(*str(app.marked), "enter")  # the typed count (above the threshold)
    await job_done(pilot)


async def open_jobs(pilot) -> JobsScreen:
    app = pilot.app
    await pilot.press("J")
    await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), 5, "the jobs pane")
    await wait_for(pilot, lambda: "Outputs:" in screen_text(app), 10, "the outputs")
    return app.screen


class InjectedFault(RuntimeError):
    pass


async def test_a_fault_in_a_jobs_pane_redraw_leaves_the_job_and_the_console_running(make_sim, private_dirs,
                                                                                    monkeypatch):
    fleet, _ = twenty_outputs_fleet()
    running = make_sim(fleet, throttle=False, graph_quota=False, lro_seconds=3)  # the job runs for 3 s
    newest = await fill_store(running, private_dirs / "store")
    app = make_app(console_session(private_dirs / "store", running), clock=fixed_clock(newest))
    draw = JobsScreen._draw_outputs
    faulted = []

    def draw_once_faulty(self, job):
        if not faulted and job.unfinished:  # the first redraw while the job runs
            faulted.append(job.id)
            raise InjectedFault("a redraw failed")
        draw(self, job)

    monkeypatch.setattr(JobsScreen, "_draw_outputs", draw_once_faulty)
    with pytest.raises(InjectedFault):  # Pilot raises the first fault when the test ends: none is passed over
        async with app.run_test(size=SIZE) as pilot:
            form = await form_for_all(pilot, "run-command")
            form.query_one("#script").text = "Get-Service"
            await plan_text(pilot)
            await pilot.press("2", "4", "enter")  # the typed count: the job starts
            await pilot.press("J")  # the pane redraws while the job runs: the first redraw raises
            await wait_for(pilot, lambda: bool(faulted), 20, "the injected fault")
            await job_done(pilot)
            assert app.is_running and isinstance(app.screen, JobsScreen)
            # the fault is shown, with where its traceback is; the log is private
            log = private_dirs / "state" / "errors.log"
            await wait_for(pilot, lambda: any("InjectedFault: a redraw failed" in n for n in notices(app)), 5,
                           "the notification")
            assert any(str(log) in n and "go on" in n for n in notices(app))
            assert "InjectedFault: a redraw failed" in log.read_text() and "draw_once_faulty" in log.read_text()
            assert log.stat().st_mode & 0o777 == 0o600
            # the pane still redraws: the job ended, every output group listed
            await wait_for(pilot, lambda: "24 of 24 ended" in screen_text(app), 10, "the ended job")
            assert "Outputs: 20 distinct among 24 servers" in screen_text(app)
            # and the console still answers keys: back to the table, a filter, the help screen
            await pilot.press("escape")
            assert not isinstance(app.screen, JobsScreen)
            await pilot.press("slash", *"sv-1", "enter")
            await wait_for(pilot, lambda: app.shown == 10, 5, "the filter")
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: "Keys (escape closes)" in screen_text(app), 5, "help")
    assert faulted


async def test_a_fault_is_reported_once_in_a_while_and_logged_a_bounded_number_of_times(tmp_path):
    from wsam_tui.ui import faults

    reporter = faults.FaultReporter(tmp_path / "errors.log")
    shown = []

    class App:
        def notify(self, message, **kwargs):
            shown.append(message)

    for _ in range(faults.LOGGED_MAX + 20):
        try:
            raise InjectedFault("every frame")
        except InjectedFault as e:
            reporter.report(App(), e)
    assert len(shown) == 1  # the same fault again at once: counted, not shown again
    assert (tmp_path / "errors.log").read_text().count("InjectedFault: every frame") == faults.LOGGED_MAX


async def test_twenty_distinct_outputs_all_listed_titled_apart_viewable_and_written(make_sim, private_dirs):
    from wsam_tui.ui.jobs import OutputScreen, PathPrompt

    fleet, stdout = twenty_outputs_fleet()
    _, app = await console(make_sim, private_dirs, fleet)
    async with app.run_test(size=SIZE) as pilot:
        await run_script(pilot)
        jobs = await open_jobs(pilot)
        text = screen_text(app)
        assert "Outputs: 20 distinct among 24 servers" in text
        box = jobs.query_one("#job-outputs")
        titles = [box.get_option_at_index(i).prompt.plain for i in range(box.option_count)]
        assert len(titles) == 20 and len(set(titles)) == 20
        # titled where they differ, not by the header every server printed
        assert titles[0].startswith("5 servers: line 3: Running  Spooler   Print Spooler")
        assert sum("Status   Name" in t for t in titles) == 0
        assert any(t.startswith("1 server: line 4: Running  WinRM") for t in titles)
        assert any(t.startswith("1 server: line 4: Stopped  WinRM") for t in titles)
        # every group on screen at 200x50
        for title in titles:
            assert title[:80] in text, title
        # by keys: e moves to the groups, down reaches the last, enter opens it in full with its servers
        await pilot.press("e")
        assert box.has_focus
        await pilot.press(*["down"] * 19)
        assert box.highlighted == 19
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, OutputScreen), 5, "the group's pager")
        shown = jobs.groups[19]
        text = screen_text(app)
        assert "Output group 20 of 20" in text and "servers (1):" in text and shown.targets[0] in text
        assert "Status   Name      DisplayName" in text  # the whole output, header included
        await pilot.press("p")  # the previous group, in the same pager
        assert "Output group 19 of 20" in screen_text(app)
        await pilot.press("home", "escape")
        await pilot.press("up", *["up"] * 18, "enter")  # the first group: its five servers listed
        await wait_for(pilot, lambda: isinstance(app.screen, OutputScreen), 5, "the first group")
        text = screen_text(app)
        assert "servers (5):" in text and all(f"web-{i:02d}" in text for i in range(5))
        await pilot.press("escape")
        # w writes every group (output and servers) where the operator says
        target = private_dirs / "outputs.txt"
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, PathPrompt), 5, "the path prompt")
        field = app.screen.query_one("#path-input")
        assert field.value.endswith(".txt") and f"wsam-job-{app.ops.ended[0]}" in field.value  # the default
        field.value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: target.exists() and any(str(target) in n for n in notices(app)), 5, "the file")
        written = target.read_text()
        assert written.count("=== Group ") == 20 and "20 distinct outputs among 24 servers" in written
        assert all(line in written for out in stdout.values() for line in out.splitlines())
        assert all(f"  {name}\n" in written for name in stdout)
        assert target.stat().st_mode & 0o777 == 0o600
        # as JSON when the name says so
        as_json = private_dirs / "outputs.json"
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, PathPrompt), 5, "the path prompt")
        app.screen.query_one("#path-input").value = str(as_json)
        await pilot.press("enter")
        await wait_for(pilot, lambda: as_json.exists() and any(str(as_json) in n for n in notices(app)), 5, "JSON")
        groups = json.loads(as_json.read_text())["groups"]
        assert sorted(n for g in groups for n in g["servers"]) == sorted(stdout)
        assert {g["stdout"].rstrip() for g in groups} == {out.rstrip() for out in stdout.values()}
