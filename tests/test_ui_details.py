"""The details pane (wsam_tui/ui/details.py): a server at once from its table row, then in depth with its
evidence and age; failures said in place; hostile text shown literally and never run; one snapshot."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from textual.app import App, ComposeResult
from textual.content import Content

from tests.fleetbuilder import SUB_A, TENANT, extension, vm
from wsam_tui.depth import ServerView, cached_view, fresh_view
from wsam_tui.fleet.capabilities import CATALOG, build_server
from wsam_tui.fleet.model import FleetContext, RawServer, Server, Source, SourceStatus, State, clean_text
from wsam_tui.inventory import ConnectOptions, Inventory, connect
from wsam_tui.sim.hostile import HOSTILE_STRINGS, TEN_KB, hostile_fleet
from wsam_tui.store.cache import Store
from wsam_tui.ui import glyphs
from wsam_tui.ui.details import DetailsPane
from wsam_tui.ui.themes import VARIABLE_DEFAULTS

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CACHED_AT = NOW - timedelta(minutes=42)
FRESH_AT = NOW - timedelta(seconds=3)
AMA = "AzureMonitorWindowsAgent"
DENIED = "backupStatus: no access (403 AuthorizationFailed), request id 5b1c-req"


def web_raw(machine: dict | None = None) -> RawServer:
    machine = copy.deepcopy(machine or vm("web-00", tags={"env": "prod", "owner": "ops"}))
    machine["tenantId"] = TENANT
    return RawServer(machine=machine, extensions=[
        extension(machine, AMA, "Microsoft.Azure.Monitor", AMA, version="1.22"),
        extension(machine, "MDE.Windows", "Microsoft.Azure.AzureDefenderForServers", "MDE.Windows", state="Failed"),
    ])


def context(fetched_at: datetime, *, failed: dict[Source, str] | None = None) -> FleetContext:
    sources = {(SUB_A.lower(), s): SourceStatus(fetched_at=fetched_at) for s in Source if s is not Source.IN_GUEST}
    for source, reason in (failed or {}).items():
        sources[(SUB_A.lower(), source)] = SourceStatus(error=reason)
    return FleetContext(now=NOW, sources=sources)


def table_row(raw: RawServer | None = None) -> Server:
    """What the table holds: states and summaries, no evidence."""
    return build_server(raw or web_raw(), context(CACHED_AT), evidence=False)


def fresh(raw: RawServer | None = None) -> ServerView:
    """As ARM answered, the backup read refused; the cache's backup status stands for it."""
    server = build_server(raw or web_raw(), context(FRESH_AT, failed={Source.BACKUP: "no access (403 AuthorizationFailed)"}))
    return ServerView(server=server, source="arm", as_of=FRESH_AT, errors={Source.BACKUP: DENIED})


def cached(raw: RawServer | None = None) -> ServerView:
    return ServerView(server=build_server(raw or web_raw(), context(CACHED_AT)), source="cache", as_of=CACHED_AT,
                      errors={})


class PaneApp(App):
    def __init__(self, setup=None, glyph_set=glyphs.UNICODE) -> None:
        super().__init__()
        self.setup = setup
        self.glyph_set = glyph_set
        self.pwned = False

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield DetailsPane(id="details", glyphs=self.glyph_set)

    def on_mount(self) -> None:
        if self.setup is not None:
            self.setup(self.query_one(DetailsPane))
        self.query_one(DetailsPane).focus()

    def action_pwn(self) -> None:
        self.pwned = True


def screen_text(app: App) -> str:
    """Every line the pane shows on screen now (wrapped as the terminal shows it)."""
    body = app.query_one("#details-body")
    lines = body.render_lines(body.region.reset_offset)
    return "\n".join("".join(segment.text for segment in line).rstrip() for line in lines)


@pytest.mark.asyncio
async def test_row_at_once_then_the_view_with_evidence_and_age():
    app = PaneApp()
    async with app.run_test(size=(110, 200)) as pilot:
        pane = app.query_one(DetailsPane)
        assert "No server selected" in pane.text
        pane.show_row(table_row(), now=NOW)
        await pilot.pause()
        shown = screen_text(app)
        assert "web-00" in shown and "loading …" in shown
        assert "from the table, fetched 42 min ago; evidence not loaded" in shown
        assert "Resource group  rg-web" in shown and f"Tenant          {TENANT}" in shown
        assert "Windows Server 2022 Datacenter Azure Edition 10.0.20348.2340" in shown
        assert "evidence not loaded" in shown and "· extensions" not in shown
        assert f"{glyphs.UNICODE[State.PARTIAL]} partial" in shown  # the failed MDE extension

        pane.show_view(fresh(), now=NOW)
        await pilot.pause()
        shown = screen_text(app)
        assert "loading" not in shown
        assert "as of 11:59:57 UTC — fresh from ARM" in shown
        assert f"backup: {DENIED}" in shown
        assert f"Microsoft.Azure.Monitor.{AMA} 1.22  Succeeded" in shown
        assert "Microsoft.Azure.AzureDefenderForServers.MDE.Windows 1.0  Failed" in shown
        # Every capability, in catalog order under its group, the state a glyph and a word.
        positions = [shown.index(f"  {c.label} — ") for c in CATALOG]
        assert positions == sorted(positions)
        for group in ("Govern", "Protect", "Configure", "Monitor", "Extend"):
            assert f"\n {group}\n" in shown
        assert "  ? unknown        Azure Backup — unknown: backup: no access (403 AuthorizationFailed)" in shown
        assert "    why unknown backup: no access (403 AuthorizationFailed)" in shown
        assert "  ● on             Run Command — VM running" in shown
        assert "    flags extension-failed" in shown
        # Evidence: source, field, value, age, and the document (relative to the machine when it is its own).
        text = pane.text
        assert ("    · extensions properties.provisioningState = Microsoft.Azure.Monitor/AzureMonitorWindowsAgent "
                "Succeeded  3 s ago\n      this machine/extensions/AzureMonitorWindowsAgent") in text
        assert "    · machines tags.costCenter = absent  3 s ago\n      this machine\n" in text
        assert "(no document: the absence is the evidence)" in text

        pane.show_view(cached(), now=NOW)
        await pilot.pause()
        shown = screen_text(app)
        assert "as of 11:18:00 UTC — from the cache, 42 min old" in shown
        assert "42 min ago" in shown and "3 s ago" not in shown and "Could not read" not in shown
        pane.show_view(replace(cached(), errors={Source.POLICY: "HTTP 429 RateLimiting: try later"}), now=NOW)
        await pilot.pause()
        assert "The last refresh could not read\n  policy: HTTP 429 RateLimiting: try later" in screen_text(app)


@pytest.mark.asyncio
async def test_an_error_keeps_what_is_shown_and_clear_empties_the_pane():
    app = PaneApp()
    async with app.run_test(size=(100, 120)) as pilot:
        pane = app.query_one(DetailsPane)
        pane.show_view(cached(), now=NOW)
        pane.show_error(pane.server, "ARM unreachable: showing the cache")
        await pilot.pause()
        shown = screen_text(app)
        assert shown.startswith("! ARM unreachable: showing the cache")
        assert "from the cache, 42 min old" in shown and "· extensions" in shown
        # An error about a server not shown yet shows its record with the error.
        other = table_row(web_raw(vm("web-01")))
        pane.show_error(other, "ARM: HTTP 404 ResourceNotFound: cannot read web-01")
        await pilot.pause()
        shown = screen_text(app)
        assert "web-01" in shown and "404 ResourceNotFound" in shown and "web-00" not in shown
        pane.clear("No server highlighted")
        await pilot.pause()
        assert screen_text(app).strip() == "No server highlighted"


def test_a_pane_not_mounted_yet_keeps_what_it_is_given():
    pane = DetailsPane()
    pane.show_row(table_row(), now=NOW)
    pane.show_view(fresh(), now=NOW)
    pane.show_error(None, "ARM unreachable: showing the cache")
    assert pane.text.startswith("! ARM unreachable: showing the cache\nweb-00\n")
    assert "as of 11:59:57 UTC — fresh from ARM" in pane.text


@pytest.mark.asyncio
async def test_ascii_glyphs_for_terminals_that_draw_shapes_badly():
    app = PaneApp(lambda pane: pane.show_view(fresh(), now=NOW), glyph_set=glyphs.ASCII)
    async with app.run_test(size=(100, 120)) as pilot:
        await pilot.pause()
        shown = screen_text(app)
        assert "  ~ partial        Tags — " in shown and "  ? unknown        Azure Backup" in shown
        assert "  + on             Run Command" in shown and "  - off            Azure Site Recovery" in shown
        assert not any(ch in shown for ch in "●◐○")


@pytest.mark.asyncio
async def test_the_pane_scrolls_with_keys():
    app = PaneApp(lambda pane: pane.show_view(fresh(), now=NOW))
    async with app.run_test(size=(90, 20)) as pilot:
        pane = app.query_one(DetailsPane)
        await pilot.pause()
        assert pane.has_focus and pane.max_scroll_y > 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert pane.scroll_y > 0
        await pilot.press("G")
        await pilot.pause()
        assert pane.scroll_y == pane.max_scroll_y
        await pilot.press("g")
        await pilot.pause()
        assert pane.scroll_y == 0
        await pilot.press("j", "j")
        await pilot.pause()
        assert pane.scroll_y == 2


def hostile_raw() -> RawServer:
    machine = vm("web-00", tags={f"k{i}-{s}": s for i, s in enumerate(HOSTILE_STRINGS)})
    machine["name"] = "[@click=app.pwn]name[/]"
    machine["properties"]["instanceView"]["osName"] = HOSTILE_STRINGS[0]
    raw = web_raw(machine)
    raw.extensions[0]["properties"]["instanceView"]["statuses"][0]["message"] = "[@click=app.quit]ext[/] \x1b]0;pwned\x07"
    return raw


@pytest.mark.asyncio
async def test_hostile_text_is_shown_literally_and_never_runs():
    view = fresh(hostile_raw())
    # A record built elsewhere may carry a whole 10 kB tag (build_server keeps 256 characters): the pane folds it.
    server = replace(view.server, tags={**view.server.tags, "huge": TEN_KB})
    view = replace(view, server=server)
    app = PaneApp(lambda pane: pane.show_view(view, now=NOW))
    async with app.run_test(size=(120, 400)) as pilot:
        pane = app.query_one(DetailsPane)
        await pilot.pause()
        body = app.query_one("#details-body")
        assert isinstance(body.render(), Content)  # drawn from Content: never parsed as markup
        text = pane.text
        for s in HOSTILE_STRINGS:
            expected = clean_text(s, limit=256)
            assert expected[:200] in text, repr(s)
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "[@click=app.pwn]name[/]" in screen_text(app).splitlines()[0]
        assert f"huge = {TEN_KB[:300]}… (10,240 characters)" in text
        assert TEN_KB[:301] not in text
        # The layout holds: the two long tags (256 characters from build_server, 300 folded here) take a few
        # wrapped lines, not a hundred.
        assert sum(1 for line in screen_text(app).splitlines() if "hostile-tag-value" in line) <= 8
        # A click on the name and on the extension message runs nothing.
        await pilot.click(DetailsPane, offset=(4, 0))
        ext_line = next(i for i, line in enumerate(screen_text(app).splitlines()) if "[@click=app.quit]ext[/]" in line)
        await pilot.click(DetailsPane, offset=(14, ext_line))
        await pilot.pause()
        assert not app.pwned and app.is_running


@pytest.mark.asyncio
async def test_every_server_of_the_hostile_fleet_from_the_cache_and_from_arm(make_sim, tmp_path):
    """The simulator's hostile fleet (every hostile string wherever ARM takes free text) end to end:
    refresh, cached and fresh views, the pane. Nothing crashes, nothing unclean reaches the screen."""
    running = make_sim(hostile_fleet(), throttle=False, graph_quota=False)
    conn = await connect(ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path)))
    inventory = Inventory(Store(tmp_path / "store"))
    try:
        await inventory.refresh(conn)
        servers = inventory.load().servers
        views = [(cached_view(inventory, s.id, now=NOW), await fresh_view(inventory, conn.transport, s.id, now=NOW))
                 for s in servers]
    finally:
        await conn.close()
    assert len(views) == 8 and all(c is not None and f.source == "arm" for c, f in views)
    app = PaneApp()
    async with app.run_test(size=(100, 60)) as pilot:
        pane = app.query_one(DetailsPane)
        for server, (cached_, fresh_) in zip(servers, views, strict=True):
            for view in (cached_, fresh_):
                pane.show_row(server, now=NOW)
                pane.show_view(view, now=NOW)
                await pilot.pause()
                text = pane.text + screen_text(app)
                assert not any(c in text for c in "\x1b\x07\x9b\u202e\u2067"), server.name
        tagged = next(v for v, _ in views if "h00" in v.server.tags)
        pane.show_view(tagged, now=NOW)
        await pilot.pause()
        assert f"h00 = {HOSTILE_STRINGS[0]}" in pane.text and not app.pwned


def _snapshot_app() -> PaneApp:
    return PaneApp(lambda pane: pane.show_view(fresh(), now=NOW))


def test_snapshot_fresh_view_with_a_failed_source(snap_compare):
    assert snap_compare(_snapshot_app(), terminal_size=(100, 60))


class SideApp(App):
    """The pane beside another widget, hidden until opened, as in the console."""

    CSS = """
    #left { width: 1fr; }
    DetailsPane { width: 42; display: none; }
    DetailsPane.-open { display: block; }
    """

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        from textual.containers import Horizontal
        from textual.widgets import Static

        with Horizontal():
            yield Static("table", id="left")
            yield DetailsPane(id="details")


def drawn_as_wrapped(app: App) -> tuple[list[str], list[str]]:
    """(the lines on screen, the pane's text wrapped to the width it is drawn at)."""
    pane = app.query_one(DetailsPane)
    width = app.query_one("#details-body").size.width
    wrapped = [line.rstrip() for line in pane.render_body(width).plain.split("\n")]
    return screen_text(app).splitlines(), wrapped


@pytest.mark.asyncio
@pytest.mark.parametrize("order", ["view_then_open", "open_then_view", "row_then_view"])
async def test_the_pane_wraps_to_the_width_it_is_drawn_at_whatever_the_order(order):
    """The text arrives (from a thread) before the pane is opened, after, or first short (no scrollbar) then
    long (a scrollbar narrows the pane): the hanging indents hold in every order — a long value continues
    under its value, never from column 0 (it did when the text was wrapped to the width of the moment)."""
    app = SideApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(DetailsPane)
        if order == "view_then_open":
            pane.show_view(cached(), now=NOW)
            pane.add_class("-open")
        elif order == "open_then_view":
            pane.add_class("-open")
            await pilot.pause()
            pane.show_view(cached(), now=NOW)
        else:
            pane.add_class("-open")
            pane.clear("nothing yet")
            await pilot.pause()
            pane.show_view(cached(), now=NOW)
        await pilot.pause()
        await pilot.pause()
        lines, wrapped = drawn_as_wrapped(app)
        assert lines == wrapped
        width = app.query_one("#details-body").size.width
        assert width <= 40 and all(len(line) <= width for line in lines)
        subscription = next(i for i, line in enumerate(lines) if line.startswith("  Subscription"))
        continued = lines[subscription + 1]  # the id does not fit beside its label: it goes on under itself
        assert continued.startswith(" " * 18) and continued.strip() and SUB_A.endswith(continued.strip())


async def test_a_cell_whose_source_failed_since_its_last_fetch_says_stale_and_why():
    ctx = context(CACHED_AT)
    failed = "HTTP 200 MalformedResponse: the response was not valid JSON (35 bytes)"
    sources = {**ctx.sources, (SUB_A.lower(), Source.EXTENSIONS): SourceStatus(fetched_at=CACHED_AT, error=failed)}
    server = build_server(web_raw(), replace(ctx, sources=sources))
    view = ServerView(server=server, source="cache", as_of=CACHED_AT, errors={})
    app = PaneApp(lambda pane: pane.show_view(view, now=NOW))
    async with app.run_test(size=(100, 200)) as pilot:
        await pilot.pause()
        shown = screen_text(app)
        assert "Monitor" in shown and "AzureMonitorWindowsAgent" in shown, "the last known state stays"
        assert "why stale" in shown and "extensions: last fetched" in shown and "not valid JSON" in shown
        assert server.capabilities["monitor"].state is not State.UNKNOWN and "stale" in server.capabilities["monitor"].flags
