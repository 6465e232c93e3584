"""The console on the hostile fleet (wsam_tui/sim/fleets/hostile-fleet.json, served by the simulator): markup, escape
sequences, bidi controls, emoji and 10 kB tags show as text — each control character as a visible marker (␛, ␇,
⟨U+202E⟩) — in the table, the details pane and :kql answers; a click on `[@click=app.quit]` does nothing; no escape character reaches the
terminal; and in a real terminal (tmux) the pane's title and colours stay the console's own."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.app_support import (
    console_session,
    fill_store,
    fixed_clock,
    loaded,
    make_app,
    screen_segments,
    screen_text,
    wait_for,
)
from tests.tmux_support import SGR, Tmux, console_env, wsam_argv
from wsam_tui.fleet.model import clean_text
from wsam_tui.sim.fleetfile import load_fleet
from wsam_tui.sim.run import BUNDLED_FLEETS

HOSTILE_FILE = BUNDLED_FLEETS / "hostile-fleet.json"
MACHINE_TYPES = ("microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines")
CONTROLS = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
MARKUP = "[@click=app.quit]click me[/]"


def squash(text: str) -> str:
    """Without whitespace: what a wrapped, indented pane and the raw value have in common."""
    return "".join(text.split())


def hostile() -> dict:
    return load_fleet(HOSTILE_FILE)


def machines(fleet: dict) -> list[dict]:
    return [r for r in fleet["resources"] if str(r["type"]).lower() in MACHINE_TYPES]


def extension_messages(fleet: dict, machine: dict) -> list[str]:
    prefix = machine["id"].lower() + "/extensions/"
    out = []
    for r in fleet["resources"]:
        if not r["id"].lower().startswith(prefix):
            continue
        view = (r.get("properties") or {}).get("instanceView") or {}
        statuses = [view["status"]] if isinstance(view.get("status"), dict) else view.get("statuses") or []
        out += [s["message"] for s in statuses if isinstance(s, dict) and s.get("message")]
    return out


def assert_no_controls(app, where: str) -> None:
    """Every character the driver would write as text is printable: no ESC, no C0/C1 control."""
    bad = [seg.text for seg in screen_segments(app) if seg.text != "\n" and CONTROLS & set(seg.text)]
    assert not bad, f"{where}: control characters reach the terminal: {bad[:3]!r}"


async def assert_click_does_not_quit(pilot, needle: str = "[@click") -> None:
    """Click on every place the screen shows ``needle``: the console is still running."""
    lines = screen_text(pilot.app).splitlines()
    spots = [(line.index(needle) + 2, y) for y, line in enumerate(lines) if needle in line]
    assert spots, f"{needle!r} is not on the screen"
    for x, y in spots:
        await pilot.click(offset=(x, y))
        await pilot.pause()
        assert pilot.app.is_running and pilot.app.return_code is None, f"a click at {x},{y} quit the console"


@pytest.fixture
async def hostile_console(make_sim, tmp_path):
    """The hostile fleet refreshed into a store by a real refresh; the console against the same simulator."""
    running = make_sim(hostile(), throttle=False, graph_quota=False)
    newest = await fill_store(running, tmp_path / "store")
    return make_app(console_session(tmp_path / "store", running), clock=fixed_clock(newest))


@pytest.mark.asyncio
async def test_table_shows_hostile_text_literally_and_a_click_does_nothing(hostile_console):
    app = hostile_console
    fleet = hostile()
    async with app.run_test(size=(260, 40)) as pilot:
        await loaded(pilot)
        text = screen_text(app)
        assert app.total == len(machines(fleet))
        for machine in machines(fleet):
            assert machine["name"] in text
        # the subscription's name is shown as typed (cut to the column), its hidden RLO as a marker, on every row
        sub = clean_text(fleet["subscriptions"][0]["displayName"])
        assert sub.startswith("Production ⟨U+202E⟩[@click=app.quit]")
        assert text.count(sub[:19] + "…") == len(machines(fleet)), sub
        assert "␛[31mred text␛[0m Windows" in text  # a colour code shown, not obeyed
        assert_no_controls(app, "table")
        await assert_click_does_not_quit(pilot, "Production ⟨U+202E⟩")


@pytest.mark.asyncio
async def test_details_pane_shows_every_hostile_tag_and_extension_message(hostile_console):

    from wsam_tui.ui.details import DetailsPane

    app = hostile_console
    fleet = hostile()
    checked = 0
    async with app.run_test(size=(200, 60)) as pilot:
        await loaded(pilot)
        pane = app.query_one(DetailsPane)
        for machine in machines(fleet):
            tags = machine.get("tags") or {}
            messages = extension_messages(fleet, machine)
            if not tags and not messages and not any(isinstance(v, str) and not v.isprintable()
                                                     for v in (machine["properties"] or {}).values()):
                continue
            app.run_command("filter", machine["name"])  # :filter NAME
            await wait_for(pilot, lambda: app.table.row_count == 1, 5, f"the filter on {machine['name']}")
            app.table.focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda n=machine["name"]: pane.view is not None and pane.view.server.name == n
                           and pane.view.source == "arm", 15, f"{machine['name']} fresh from ARM")
            body = squash(str(pane.query_one("#details-body").render()))
            for key, value in tags.items():
                assert squash(clean_text(key)) in body, (machine["name"], key)
                # long values are folded: what is shown starts as the value does
                assert squash(clean_text(value))[:120] in body, (machine["name"], key, clean_text(value)[:60])
            for message in messages:
                assert squash(clean_text(message))[:80] in body, (machine["name"], message[:60])
            assert_no_controls(app, f"details of {machine['name']}")
            if "[@click" in screen_text(app):
                await assert_click_does_not_quit(pilot)
            await pilot.press("escape")
            checked += 1
    assert checked >= 4


@pytest.mark.asyncio
async def test_kql_answer_shows_hostile_text_literally(hostile_console):
    app = hostile_console
    fleet = hostile()
    arc = next(m for m in machines(fleet) if (m["properties"].get("osName") or "").startswith(MARKUP))
    async with app.run_test(size=(200, 40)) as pilot:
        await loaded(pilot)
        app.run_command("kql", f"resources | where name == '{arc['name']}' | project name, osName = "
                               "tostring(properties.osName), sku = tostring(properties.osSku)")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "KqlResultScreen", 15, "the :kql answer")
        await pilot.pause()
        text = screen_text(app)
        assert clean_text(arc["properties"]["osName"]) in text
        assert clean_text(arc["properties"]["osSku"])[:40] in text
        assert_no_controls(app, ":kql answer")
        await assert_click_does_not_quit(pilot)


def test_hostile_fleet_in_tmux_leaves_the_terminal_alone(make_sim, tmp_path):
    """The real console (--endpoint/--ca-bundle, as against any ARM) on the hostile simulator, in tmux."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: the terminal test needs a real terminal multiplexer")
    fleet = hostile()
    running = make_sim(fleet, throttle=False, graph_quota=False)
    total = len(machines(fleet))
    tmux = Tmux(tmp_path, "hostile")
    try:
        tmux.start(wsam_argv("--endpoint", running.base_url, "--ca-bundle", str(running.ca_path)),
                   console_env(tmp_path))
        title = tmux.title()
        tmux.wait(lambda s: bool(s) and f"{total} total" in s.splitlines()[0] and "│ online │" in s.splitlines()[0],
                  "the hostile fleet", 60)
        # the Arc server whose every field is hostile, its details fresh from ARM
        tmux.keys("/")
        tmux.wait_text("filter: words")
        tmux.type("LONWEB")
        tmux.keys("Enter")
        tmux.wait(lambda s: "1 shown" in s.splitlines()[0] and "q Quit" in s.splitlines()[-1], "the filter")
        tmux.keys("Enter")
        screen = tmux.wait_text("fresh from ARM")
        assert "[bold red]x[/]" in screen and "[@click=app.quit]click me[/]" in screen
        assert screen.splitlines()[0].lstrip().startswith("wsam-tui")  # no "clear screen" from the data
        coloured = tmux.screen(escapes=True)
        params = {p for sgr in SGR.findall(coloured) for p in _sgr_params(sgr)}
        # the data asked for red (31) and blink (5); the console draws 24-bit colours and plain attributes
        assert not params & {"5", "6", "8", *map(str, range(30, 38)), *map(str, range(40, 48))}, sorted(params)
        assert tmux.title() == title
        tmux.keys("q")
        tmux.wait(lambda s: "WSAM-EXITED" in s or "Quit anyway?" in s, "quit")
        if "Quit anyway?" in tmux.screen():
            tmux.keys("y")
        tmux.wait_text("WSAM-EXITED rc=0")
        assert tmux.title() == title
    finally:
        tmux.stop()


def _sgr_params(sgr: str) -> list[str]:
    """The attribute numbers of one SGR, the colour arguments of 38/48 left out."""
    parts = re.split("[;:]", sgr) if sgr else ["0"]
    out, skip = [], 0
    for i, p in enumerate(parts):
        if skip:
            skip -= 1
            continue
        if p in ("38", "48") and i + 1 < len(parts):
            skip = 4 if parts[i + 1] == "2" else 2
        out.append(p)
    return out


TWIN_TAGS = {"k\x1b]0;PWNED\x07": "title", "k\x1b]52;c;aGk=\x07": "clipboard"}  # both were "k" once


@pytest.mark.asyncio
async def test_tags_that_differ_only_in_their_escape_sequences_stay_distinct(make_sim, tmp_path):
    """Each control shows as a marker (␛, ␇): neither tag disappears from the details pane or the export,
    and still no control character reaches the terminal."""
    import json

    from wsam_tui.export import from_store
    from wsam_tui.inventory import Inventory
    from wsam_tui.store.cache import Store
    from wsam_tui.ui.details import DetailsPane

    fleet = hostile()
    machine = machines(fleet)[0]
    machine["tags"] = {"env": "prod", **TWIN_TAGS}
    running = make_sim(fleet, throttle=False, graph_quota=False)
    newest = await fill_store(running, tmp_path / "store")
    shown = {"k␛]0;PWNED␇": "title", "k␛]52;c;aGk=␇": "clipboard"}

    store = Store(tmp_path / "store")
    try:
        text, _ = from_store(Inventory(store), "json")
    finally:
        store.close()
    exported = next(s for s in json.loads(text)["servers"] if s["name"] == machine["name"])
    assert exported["tags"] == {"env": "prod", **shown}

    app = make_app(console_session(tmp_path / "store", running), clock=fixed_clock(newest))
    async with app.run_test(size=(200, 60)) as pilot:
        await loaded(pilot)
        pane = app.query_one(DetailsPane)
        app.run_command("filter", machine["name"])
        await wait_for(pilot, lambda: app.table.row_count == 1, 5, f"the filter on {machine['name']}")
        app.table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: pane.view is not None and pane.view.source == "arm", 15, "details from ARM")
        body = str(pane.query_one("#details-body").render())
        assert "Tags (3)" in body
        for key, value in shown.items():
            assert f"{key} = {value}" in body
        assert_no_controls(app, "details")
