"""The server table (wsam_tui/ui/table.py): keys, marks, messages, hostile text, 50,000 rows, a snapshot."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from rich.cells import cell_len
from textual.app import App, ComposeResult

from wsam_tui.fleet.capabilities import CATALOG
from wsam_tui.fleet.model import CapabilityState, Kind, Server, State, clean_text
from wsam_tui.ui import glyphs
from wsam_tui.ui.table import HEADER_LINES, ColumnSpec, ServerTable, TableData, default_columns, fit
from wsam_tui.ui.themes import BUNDLED, DEFAULT_THEME, VARIABLE_DEFAULTS, load_themes

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SUBSCRIPTIONS = {f"0000000{i}-0000-4000-8000-00000000000{i}": name
                 for i, name in enumerate(("prod-weu", "prod-neu", "dev-shared", "dr-eus2", "corp-arc"))}
_SUB_IDS = list(SUBSCRIPTIONS)
_ROLES = ("web", "sql", "app", "dc", "file", "rds", "iis")
_WEIGHTS = (State.ON,) * 5 + (State.PARTIAL, State.OFF, State.OFF, State.UNKNOWN)
_CELLS = {(c.id, s): CapabilityState(c.id, s, f"{c.label}: {s}") for c in CATALOG for s in State}


def make_server(i: int, rnd: random.Random, *, name: str | None = None, **changes) -> Server:
    kind = Kind.ARC if i % 3 == 2 else Kind.VM
    role = _ROLES[i % len(_ROLES)]
    sub = _SUB_IDS[i % len(_SUB_IDS)]
    rg = f"rg-{role}-{i % 4}"
    name = name if name is not None else f"{'arc' if kind is Kind.ARC else 'vm'}-{role}-{i:05d}"
    provider = "Microsoft.HybridCompute/machines" if kind is Kind.ARC else "Microsoft.Compute/virtualMachines"
    caps = {c.id: _CELLS[(c.id, rnd.choice(_WEIGHTS) if c.applies(kind) else State.NOT_APPLICABLE)] for c in CATALOG}
    os_name, os_version = (("Windows Server 2022 Datacenter Azure Edition", "10.0.20348.2340"),
                           ("Windows Server 2019 Datacenter", "10.0.17763.5576"),
                           ("Windows Server 2025 Standard", "10.0.26100.1742"))[i % 3]
    if kind is Kind.ARC:
        state, agent = ("Disconnected" if i % 11 == 5 else "Connected"), "1.47.02878.1850"
    else:
        state, agent = ("deallocated" if i % 7 == 3 else "running"), "2.7.41491.1102"
    server = Server(
        id=f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider}/srv{i:05d}",
        name=name, kind=kind, subscription_id=sub, tenant_id="10000000-0000-4000-8000-000000000001",
        resource_group=rg, location=("westeurope", "northeurope", "eastus2", "swedencentral")[i % 4],
        os_name=os_name, os_version=os_version, state=state, agent_version=agent,
        tags={"env": "prod" if i % 2 else "dev", "owner": "ops"}, identity_type="SystemAssigned",
        extensions=(), capabilities=caps, fetched_at=NOW - timedelta(minutes=(i * 37) % 5000),
    )
    return replace(server, **changes) if changes else server


def make_servers(n: int, seed: int = 7) -> list[Server]:
    rnd = random.Random(seed)
    return [make_server(i, rnd) for i in range(n)]


HOSTILE_NAMES = [
    "[@click=app.quit]quit-now[/]",
    "srv[/foo]",
    "x[/]",
    "[bold red]red[/]",
    "[$accent]v[/]",
    "[link=\"https://evil.example\"]link[/]",
    "esc-\x1b[31mRED\x1b[0m-end",
    "osc-\x1b]0;PWNED-TITLE\x1b\\-end",
    "bel-\x07-c1-\x9b31m-end",
    "שרת-ראשי-01",  # RTL letters are kept (bidi overrides are stripped by clean_text)
    "rlo-\u202eevil\u202c-end",
    "服务器-宽字符-名字-超长-服务器-宽字符",  # wide characters: two cells each
    "zero\u200bwidth-e\u0301",
    "A" * 10_000,
]


class TableApp(App):
    """A screen with one table; records the table's messages."""

    def __init__(self, servers: list[Server], columns: list[ColumnSpec] | None = None) -> None:
        super().__init__()
        self.servers = servers
        self.columns = columns if columns is not None else default_columns(SUBSCRIPTIONS, now=NOW)
        self.highlights: list[str | None] = []
        self.selected: list[str] = []
        self.sorts: list[str] = []
        self.mark_counts: list[int] = []
        self.pwned = False

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield ServerTable(id="servers")

    def on_mount(self) -> None:
        for theme in load_themes(BUNDLED)[0]:
            self.register_theme(theme)
        self.theme = DEFAULT_THEME
        table = self.query_one(ServerTable)
        table.set_data(self.servers, self.columns)
        table.focus()

    def action_quit(self) -> None:  # a hostile name must never reach this
        self.pwned = True

    def action_pwn(self) -> None:
        self.pwned = True

    def on_server_table_row_highlighted(self, message: ServerTable.RowHighlighted) -> None:
        self.highlights.append(message.server_id)

    def on_server_table_row_selected(self, message: ServerTable.RowSelected) -> None:
        self.selected.append(message.server_id)

    def on_server_table_sort_requested(self, message: ServerTable.SortRequested) -> None:
        self.sorts.append(message.column_id)

    def on_server_table_marks_changed(self, message: ServerTable.MarksChanged) -> None:
        self.mark_counts.append(message.count)


def body_text(table: ServerTable, pos_on_screen: int) -> str:
    return table.render_line(HEADER_LINES + pos_on_screen).text


# ---- keys and messages --------------------------------------------------------------------------


async def test_cursor_keys_move_and_post_highlights():
    servers = make_servers(100)
    app = TableApp(servers)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(ServerTable)
        await pilot.pause()
        assert table.cursor_row == 0 and app.highlights == [servers[0].id]
        await pilot.press("down", "j", "j")
        assert table.cursor_row == 3
        await pilot.press("k", "up")
        assert table.cursor_row == 1
        await pilot.press("end")
        assert table.cursor_row == 99 and table.highlighted_id == servers[99].id
        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("G")
        assert table.cursor_row == 99
        await pilot.press("g", "pagedown")
        page = table.cursor_row
        assert 10 < page < 30  # a screenful, less the two header lines
        await pilot.press("pagedown", "pageup")
        assert table.cursor_row == page
        await pilot.press("up", "up", "up")
        await pilot.pause()
        # Every move posted the server under the cursor, and only moves did (no repeats).
        expected = [servers[p].id for p in (0, 1, 2, 3, 2, 1, 99, 0, 99, 0, page, 2 * page, page,
                                               page - 1, page - 2, page - 3)]
        assert app.highlights == expected
        # The cursor row is the one drawn with the cursor style, and it is on screen.
        assert servers[page - 3].name in body_text(table, page - 3 - round(table.scroll_y))


async def test_cursor_stays_visible_and_the_header_stays_on_top():
    servers = make_servers(200)
    app = TableApp(servers)
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(ServerTable)
        for _ in range(40):
            await pilot.press("down")
        await pilot.pause()
        assert table.scroll_y > 0
        assert "Name" in table.render_line(1).text and "Govern" not in table.render_line(1).text
        screen_row = table.cursor_row - round(table.scroll_y)
        assert 0 <= screen_row < table.size.height - HEADER_LINES
        assert servers[40].name in body_text(table, screen_row)


async def test_a_cursor_move_repaints_two_lines():
    app = TableApp(make_servers(500))
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(ServerTable)
        await pilot.pause()
        painted: list[int] = []
        original = table.render_line

        def counting(y: int):
            painted.append(y)
            return original(y)

        table.render_line = counting  # type: ignore[method-assign]
        await pilot.press("down")
        await pilot.pause()
        assert sorted(painted) == [HEADER_LINES, HEADER_LINES + 1]


async def test_enter_posts_row_selected_and_a_double_click_too():
    servers = make_servers(20)
    app = TableApp(servers)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        assert app.selected == [servers[2].id]
        await pilot.click(ServerTable, offset=(10, HEADER_LINES + 5))
        await pilot.pause()
        assert app.query_one(ServerTable).cursor_row == 5 and app.selected == [servers[2].id]
        await pilot.click(ServerTable, offset=(10, HEADER_LINES + 5), times=2)
        await pilot.pause()
        assert app.selected == [servers[2].id, servers[5].id]


async def test_header_click_posts_sort_requested():
    app = TableApp(make_servers(20))
    async with app.run_test(size=(200, 30)) as pilot:
        table = app.query_one(ServerTable)
        header = table.render_line(1).text
        await pilot.click(ServerTable, offset=(header.index("Name"), 1))
        await pilot.click(ServerTable, offset=(header.index("Kind") + 1, 1))
        await pilot.click(ServerTable, offset=(header.index("Sent"), 1))
        await pilot.click(ServerTable, offset=(table.render_line(0).text.index("Govern") + 1, 0))  # group line: the column under it
        await pilot.click(ServerTable, offset=(1, 1))  # the mark column has no sort
        await pilot.pause()
        assert app.sorts == ["name", "kind", "sentinel", "policy"]
        assert table.cursor_row == 0  # a header click does not move the cursor
        table.set_sort_indicator("kind", descending=True)
        await pilot.pause()
        assert "Kind▼" in table.render_line(1).text


# ---- marks ----------------------------------------------------------------------------------------


async def test_marks_survive_filter_sort_and_refresh():
    servers = make_servers(50)
    app = TableApp(servers)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(ServerTable)
        await pilot.press("space", "down", "space")  # marks 0, moves to 1; then 2, marks 2, moves to 3
        await pilot.pause()
        assert table.marks == {servers[0].id, servers[2].id}
        assert app.mark_counts == [1, 2]
        assert table.cursor_row == 3
        assert body_text(table, 0).startswith("[x] ") and body_text(table, 1).startswith("    ")

        # A filter that hides server 0 and reverses the order: marks stay, the cursor follows server 3.
        view = [i for i in reversed(range(50)) if i != 0]
        table.set_view(view)
        await pilot.pause()
        assert table.marks == {servers[0].id, servers[2].id}
        assert table.highlighted_id == servers[3].id
        pos2 = view.index(2)
        assert body_text(table, pos2 - round(table.scroll_y)).startswith("[x] " + servers[2].name)

        # A refreshed record in place: marks, cursor and order untouched, the new values drawn.
        changed = replace(servers[2], resource_group="rg-moved", state="deallocated")
        assert table.update_rows([changed, replace(servers[0], name="gone-from-view")]) == 2
        await pilot.pause()
        line = body_text(table, pos2 - round(table.scroll_y))
        assert line.startswith("[x] " + servers[2].name) and "rg-moved" in line
        assert table.marks == {servers[0].id, servers[2].id} and table.highlighted_id == servers[3].id

        # A new snapshot without server 2 drops its mark.
        table.set_data([s for s in servers if s.id != servers[2].id], app.columns)
        await pilot.pause()
        assert table.marks == {servers[0].id} and app.mark_counts[-1] == 1
        assert table.highlighted_id == servers[3].id


async def test_mark_all_shown_marks_only_the_shown_rows_and_clear_marks_clears():
    servers = make_servers(60)
    app = TableApp(servers)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(ServerTable)
        shown = [i for i in range(60) if servers[i].kind is Kind.ARC]
        table.set_view(shown)
        table.mark_all_shown()
        await pilot.pause()
        assert table.marks == {servers[i].id for i in shown}
        assert app.mark_counts == [len(shown)]
        table.set_view(list(range(60)))
        await pilot.pause()
        top = round(table.scroll_y)  # the cursor's server keeps its height on screen: the view may have scrolled
        assert sum(body_text(table, p).startswith("[x]") for p in range(20)) == \
               sum(i in shown for i in range(top, top + 20))
        table.clear_marks()
        await pilot.pause()
        assert table.marks == frozenset() and app.mark_counts[-1] == 0


async def test_click_on_the_mark_column_toggles_the_mark():
    servers = make_servers(10)
    app = TableApp(servers)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.click(ServerTable, offset=(1, HEADER_LINES + 4))
        await pilot.pause()
        table = app.query_one(ServerTable)
        assert table.marks == {servers[4].id} and table.cursor_row == 4
        # A checkbox: a double click toggles twice and does not open the server.
        await pilot.click(ServerTable, offset=(1, HEADER_LINES + 6), times=2)
        await pilot.pause()
        assert table.marks == {servers[4].id} and table.cursor_row == 6 and app.selected == []


# ---- drawing --------------------------------------------------------------------------------------


async def test_matrix_glyphs_groups_and_the_frozen_name_column():
    servers = make_servers(30)
    app = TableApp(servers)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(ServerTable)
        await pilot.pause()
        first = body_text(table, 0)
        assert first.startswith("    " + servers[0].name) and "prod-weu" in first
        # l / h scroll the unfrozen columns one column at a time; the name stays.
        await pilot.press("l")
        line = body_text(table, 0)
        assert line.startswith("    " + servers[0].name) and "prod-weu" in line and " VM " not in line
        await pilot.press("h")
        assert table.scroll_x == 0 and " VM " in body_text(table, 0)
        table.scroll_to(x=table.max_scroll_x, animate=False)
        await pilot.pause()
        groups, shorts = table.render_line(0).text, table.render_line(1).text
        for label in ("Govern", "Protect", "Configure", "Monitor", "Extend"):
            assert label in groups
        for cap in CATALOG:
            assert cap.short in shorts
        # The group label sits over its first column, after a separator.
        assert groups.index("│ Protect") == shorts.index("│ Def")
        line = body_text(table, 0)
        assert line.startswith("    " + servers[0].name)  # still there, scrolled right
        assert "prod-weu" not in line
        # One glyph per capability, in catalog order, matching the server's states.
        row_glyphs = [ch for ch in line if ch in "●◐○·?"]
        assert row_glyphs == [glyphs.UNICODE[servers[0].capabilities[c.id].state] for c in CATALOG]
        # Each glyph is its own segment, coloured by its state's component class.
        strip = table.render_line(HEADER_LINES + 1)  # not the cursor row
        on = table.get_component_rich_style("servertable--on", partial=True).color
        off = table.get_component_rich_style("servertable--off", partial=True).color
        colours = {seg.text.strip(): seg.style.color for seg in strip if seg.text.strip() in ("●", "○")}
        assert colours.get("●", on) == on and colours.get("○", off) == off and on != off


async def test_theme_switch_recolours_the_glyphs():
    app = TableApp(make_servers(30))
    async with app.run_test(size=(200, 30)) as pilot:
        table = app.query_one(ServerTable)

        def on_colour():
            for y in range(HEADER_LINES + 1, HEADER_LINES + 20):
                for seg in table.render_line(y):
                    if seg.text.strip() == "●":
                        return seg.style.color
            raise AssertionError("no 'on' cell drawn")

        dark = on_colour()
        app.theme = "wsam-light"
        await pilot.pause()
        assert on_colour() != dark


async def test_hostile_strings_render_literally_and_run_nothing():
    rnd = random.Random(3)
    servers = [make_server(i, rnd, name=name) for i, name in enumerate(HOSTILE_NAMES)]
    # The same names as the inventory would store them (clean_text on arrival), tags as well.
    servers += [make_server(100 + i, rnd, name=clean_text(name, limit=120), resource_group=clean_text(name))
                for i, name in enumerate(HOSTILE_NAMES)]
    app = TableApp(servers)
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.query_one(ServerTable)
        await pilot.pause()
        rows = [table.render_line(HEADER_LINES + p) for p in range(len(servers))]
        texts = [strip.text for strip in rows]
        for literal in ("[@click=app.quit]quit-now[/]", "srv[/foo]", "x[/]", "[bold red]red[/]", "[$accent]v[/]"):
            assert any(literal in t for t in texts), literal
        assert any("[link=" in t for t in texts)
        assert any("שרת-ראשי-01" in t for t in texts)
        joined = "".join(texts)
        assert "\x1b" not in joined and "\x9b" not in joined and "\x07" not in joined and "\u202e" not in joined
        assert any("osc-␛]0;PWNED-TITLE␛\\-end" in t for t in texts)  # the OSC shown, as markers and payload
        assert all("@click" not in str(seg.style) and not seg.style.link and not seg.style.meta
                   for strip in rows for seg in strip)
        # Every row is exactly as wide as the screen, and the frozen separator lines up (wide chars too).
        width = cell_len(texts[0])
        assert all(strip.cell_length == width for strip in rows)
        sep_at = {cell_len(t[: t.index("│")]) for t in texts}
        assert len(sep_at) == 1
        long_row = texts[HOSTILE_NAMES.index("A" * 10_000)]
        assert "A…" in long_row and "AAAAAAAAAA" * 100 not in long_row
        # Click every hostile row, on the name: the app keeps running and no action ran.
        for p in range(len(HOSTILE_NAMES)):
            await pilot.click(ServerTable, offset=(6, HEADER_LINES + p))
        await pilot.press("enter")
        await pilot.pause()
        assert app.is_running and not app.pwned
        assert table.cursor_row == len(HOSTILE_NAMES) - 1


def test_fit_is_exact_in_cells():
    for text in ("abc", "服务器服务器", "e\u0301e\u0301e\u0301", "a服b务c器d", "x" * 50, ""):
        for width in range(1, 12):
            for align in ("left", "right", "center"):
                out = fit(text, width, align)
                assert cell_len(out) == width, (text, width, align, out)


# ---- scale ----------------------------------------------------------------------------------------


async def test_fifty_thousand_rows_load_and_filter():
    servers = make_servers(50_000)
    app = TableApp(servers)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(ServerTable)
        await pilot.pause()
        assert table.row_count == 50_000
        await pilot.press("end")
        assert table.highlighted_id == servers[-1].id
        assert servers[-1].name in body_text(table, table.cursor_row - round(table.scroll_y))
        await pilot.press("home", *["down"] * 5)
        target = servers[5].id
        # A filter keeping one server in three, then a sort descending by name: the cursor follows server 5.
        view = [i for i in range(50_000) if i % 3 == 2]
        table.set_view(view)
        await pilot.pause()
        assert table.row_count == len(view)
        assert table.highlighted_id == target  # 5 % 3 == 2
        view = sorted(view, key=lambda i: servers[i].name, reverse=True)
        table.set_view(view)
        await pilot.pause()
        assert table.highlighted_id == target and table.cursor_row == view.index(5)
        # A filter without it: the nearest position, and a highlight for whatever is there now.
        table.set_view(view[:10])
        await pilot.pause()
        assert table.cursor_row == 9 and app.highlights[-1] == servers[view[9]].id
        table.set_view([])
        await pilot.pause()
        assert table.row_count == 0 and app.highlights[-1] is None
        assert "No servers to show" in body_text(table, 0)
        table.set_view(list(range(50_000)))
        table.mark_all_shown()
        await pilot.pause()
        assert len(table.marks) == 50_000 and app.mark_counts[-1] == 50_000


def test_table_data_shares_repeated_cells_and_caps_widths():
    servers = make_servers(500)
    data = TableData.build(servers, default_columns(SUBSCRIPTIONS, now=NOW))
    kinds = {id(row[1]) for row in data.cells}
    assert len(kinds) == 2  # "VM " and "Arc " strings shared by every row
    name_col = next(c for c in data.layout if c.spec.id == "name")
    assert name_col.width == max(len(s.name) for s in servers)
    wide = data.build([make_server(0, random.Random(1), name="n" * 300)], default_columns(now=NOW))
    assert next(c for c in wide.layout if c.spec.id == "name").width == 32


# ---- snapshot -------------------------------------------------------------------------------------


def _snapshot_app() -> TableApp:
    rnd = random.Random(11)
    servers = [make_server(i, rnd) for i in range(40)]
    hostile = {3: "srv-[@click=app.quit]-literal", 6: "服务器-宽字符-01", 7: "שרת-ראשי-01",
               9: "an-extremely-long-server-name-that-will-not-fit-the-column"}
    for i, name in hostile.items():
        servers[i] = replace(servers[i], name=name)
    servers[12] = replace(servers[12], resource_group="rg-[bold]not-bold[/]", fetched_at=None)
    return TableApp(servers)


async def _mark_and_sort(pilot) -> None:
    table = pilot.app.query_one(ServerTable)
    await pilot.press("down", "space", "down", "down", "space")  # marks rows 1 and 4, cursor on 5
    table.set_sort_indicator("name")
    await pilot.pause()


def test_snapshot_forty_varied_rows(snap_compare):
    assert snap_compare(_snapshot_app(), terminal_size=(120, 30), run_before=_mark_and_sort)


def test_snapshot_forty_varied_rows_scrolled_to_the_matrix(snap_compare):
    async def run_before(pilot) -> None:
        await _mark_and_sort(pilot)
        table = pilot.app.query_one(ServerTable)
        table.scroll_to(x=table.max_scroll_x, animate=False)  # the names stay, the matrix comes into view
        await pilot.pause()

    assert snap_compare(_snapshot_app(), terminal_size=(120, 30), run_before=run_before)
