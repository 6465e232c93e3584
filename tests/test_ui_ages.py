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
