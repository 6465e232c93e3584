"""Ages on screen advance while the console is idle (the header's data age, the details pane's "N min old",
the offline status line), read from the app's clock, which the tests move."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.app_support import console_session, fill_store, fixed_clock, loaded, wait_for
from tests.fleetbuilder import scenario_fleet
from wsam_tui.config import Settings
from wsam_tui.ui.app import WsamApp

SIZE = (200, 50)


def header(app) -> str:
    return app.query_one("#header").render().plain


def status(app) -> str:
    return app.query_one("#status").render().plain


async def test_ages_advance_while_idle(make_sim, tmp_path):
    running = make_sim(scenario_fleet(), throttle=False, graph_quota=False)
    newest = await fill_store(running, tmp_path / "store", allow_failures=True)
    now = [fixed_clock(newest)]  # five minutes after the data
    app = WsamApp(console_session(tmp_path / "store", offline=True), Settings(), now=lambda: now[0],
                  refresh_on_start=False, user_themes=Path("/nonexistent-wsam-test-themes"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("d")  # the details pane of the first server, from the cache
        details = app.query_one("#details")
        await wait_for(pilot, lambda: "from the cache, 5 min old" in details.text, 5, "the details")
        assert "data 5 min ago" in header(app) and "(5 min ago)" in status(app)
        now[0] += timedelta(minutes=10)  # nothing happens but time
        await wait_for(pilot, lambda: "data 15 min ago" in header(app), 5, "the header's age to advance")
        await wait_for(pilot, lambda: "from the cache, 15 min old" in details.text, 5, "the details' age")
        await wait_for(pilot, lambda: "(15 min ago)" in status(app), 5, "the status line's age")


async def test_details_after_an_action_say_which_job_wrote_what_they_show(make_sim, tmp_path, monkeypatch):
    from tests.test_ui_actions import choose_action, console, job_done, mark_filter, plan_text

    monkeypatch.setenv("WSAM_STATE_DIR", str(tmp_path / "state"))
    fleet = scenario_fleet()
    _, app = await console(make_sim, tmp_path, fleet)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await mark_filter(pilot, "name:web-00")
        await choose_action(pilot, "tags.add")
        app.screen.query_one("#tags").value = "owner=ops"
        await plan_text(pilot)
        await pilot.press("y")
        await job_done(pilot)
        job = app.ops.ended[0]
        await wait_for(pilot, lambda: app.by_id[app.table.highlighted_id].tags.get("owner") == "ops", 10,
                       "the row the action wrote")
        await pilot.press("d")  # the details from the cache: the tag the job just wrote, and who wrote it
        details = app.query_one("#details")
        await wait_for(pilot, lambda: "owner = ops" in details.text, 5, "the new tag in the details")
        line = next(line for line in details.text.splitlines() if line.startswith("as of"))
        assert "from the cache, 5 min old" in line and f"updated by job {job}: Add tags" in line, line
        clock = app.clock().strftime("%H:%M:%S UTC")
        assert f"at {clock} (0 s ago)" in line, line



async def test_a_tick_while_the_console_closes_is_harmless(make_sim, tmp_path):
    """The age timer can fire while the app tears down, after its screens are gone (seen once in the full
    suite: NoMatches for StatusLine from the tick, raised out of the app's shutdown)."""
    running = make_sim(scenario_fleet(), throttle=False, graph_quota=False)
    newest = await fill_store(running, tmp_path / "store", allow_failures=True)
    app = WsamApp(console_session(tmp_path / "store", offline=True), Settings(), now=lambda: fixed_clock(newest),
                  refresh_on_start=False, user_themes=Path("/nonexistent-wsam-test-themes"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("d")
    app._tick_ages()  # the screens are gone: nothing to renew, nothing raised
