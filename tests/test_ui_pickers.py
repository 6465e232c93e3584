"""The scope picker (wsam_tui/ui/pickers.py): subscriptions and tenants, filter as you type, space, a,
enter, escape, hostile names shown literally."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Input, OptionList, Static

from wsam_tui.ui.pickers import ScopePicker

T1 = "10000000-0000-4000-8000-000000000001"
T2 = "20000000-0000-4000-8000-000000000002"
HOSTILE = "[@click=app.quit]prod[/]"


def sub(n: int, name: str, tenant: str = T1, state: str = "Enabled") -> dict:
    return {"subscriptionId": f"00000000-0000-4000-8000-00000000000{n}", "displayName": name, "tenantId": tenant,
            "state": state}


SUBS = [sub(1, "Production"), sub(2, "Apps"), sub(3, HOSTILE + "\x1b]0;PWNED\x07", T2), sub(4, "Old", T2, "Disabled")]
IDS = [s["subscriptionId"] for s in SUBS]
SERVERS = {IDS[0]: 12, IDS[1]: 3, IDS[2]: 1}


class Host(App):
    def __init__(self, picker: ScopePicker) -> None:
        super().__init__()
        self.picker = picker
        self.results: list = []
        self.quit_ran = False

    def on_mount(self) -> None:
        self.push_screen(self.picker, self.results.append)

    def action_quit(self) -> None:  # a name that ran markup would land here
        self.quit_ran = True


def prompts(picker: ScopePicker) -> list[str]:
    options = picker.query_one(OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


def status(picker: ScopePicker) -> str:
    return str(picker.query_one("#scope-status", Static).visual)


async def test_lists_subscriptions_with_their_details_and_hostile_names_literally():
    picker = ScopePicker(SUBS, SERVERS)
    app = Host(picker)
    async with app.run_test(size=(170, 30)) as pilot:
        await pilot.pause()
        lines = prompts(picker)
        assert len(lines) == 4
        assert lines[0].startswith("[x] Production") and IDS[0] in lines[0] and T1 in lines[0]
        assert "12 servers  Enabled" in lines[0] and lines[0].endswith("tenant " + T1)
        assert lines[2].startswith("[x] " + HOSTILE), "the name is drawn as text; its title sequence is gone"
        assert "\x1b" not in lines[2] and "PWNED" not in lines[2]
        assert "out of scope  Disabled" in lines[3], "not in the counts: its servers are not loaded"
        assert status(picker) == "4 subscriptions selected"
        await pilot.click(OptionList, offset=(6, 2))
        await pilot.pause()
        assert not app.quit_ran


async def test_space_toggles_and_enter_returns_the_ids_in_order():
    app = Host(ScopePicker(SUBS, SERVERS))
    async with app.run_test(size=(170, 30)) as pilot:
        await pilot.press("space", "down", "down", "space", "enter")
        assert app.results == [[IDS[1], IDS[3]]]


async def test_a_selects_all_shown_then_none_and_an_empty_choice_is_refused():
    picker = ScopePicker(SUBS, SERVERS, selected=[IDS[1]])
    app = Host(picker)
    async with app.run_test(size=(170, 30)) as pilot:
        await pilot.pause()
        assert [p[:3] for p in prompts(picker)] == ["[ ]", "[x]", "[ ]", "[ ]"], "the current scope is preselected"
        await pilot.press("a")
        assert status(picker) == "4 subscriptions selected"
        await pilot.press("a")
        assert status(picker) == "0 subscriptions selected"
        await pilot.press("enter")
        assert app.results == [] and app.screen is picker, "nothing chosen: the picker stays"
        assert "Choose at least one" in status(picker)
        await pilot.press("space", "enter")
        assert app.results == [[IDS[0]]]


async def test_typing_filters_and_a_applies_to_the_rows_shown():
    picker = ScopePicker(SUBS, SERVERS, selected=["apps"])  # a display name works as well as an id
    app = Host(picker)
    async with app.run_test(size=(170, 30)) as pilot:
        await pilot.press(*"pro")
        assert picker.query_one("#scope-filter", Input).value == "pro"
        assert [p[4:14] for p in prompts(picker)] == ["Production", HOSTILE[:10]], "name matches, case-insensitive"
        assert "2 of 4 shown" in status(picker)
        await pilot.press("down")  # back to the list
        assert isinstance(app.focused, OptionList)
        await pilot.press("a")
        assert status(picker).startswith("3 subscriptions selected")
        await pilot.press("slash", *"dis")
        assert len(prompts(picker)) == 0, "'prodis' matches nothing"
        await pilot.press("escape")  # escape in the filter clears it and goes back to the list
        assert picker.query_one("#scope-filter", Input).value == "" and len(prompts(picker)) == 4
        assert app.screen is picker
        await pilot.press("enter")
        assert app.results == [[IDS[0], IDS[1], IDS[2]]]


async def test_escape_cancels():
    app = Host(ScopePicker(SUBS, SERVERS))
    async with app.run_test(size=(170, 30)) as pilot:
        await pilot.press("space", "escape")
        assert app.results == [None]


async def test_tenants_choose_all_their_subscriptions():
    picker = ScopePicker(SUBS, SERVERS, tenants=True, tenant_names={T1: "Contoso"}, selected=[IDS[2]])
    app = Host(picker)
    async with app.run_test(size=(170, 30)) as pilot:
        await pilot.pause()
        lines = prompts(picker)
        assert lines[0].startswith("[ ] Contoso") and T1 in lines[0] and "2 subscriptions" in lines[0]
        assert "15 servers" in lines[0]
        assert lines[1].startswith("[ ] —") and T2 in lines[1] and "1 disabled" in lines[1], "a tenant only partly in scope is not ticked"
        await pilot.press("space", "enter")
        assert app.results == [[IDS[0], IDS[1]]]


async def test_enter_in_the_filter_returns_to_the_list():
    picker = ScopePicker(SUBS, SERVERS, selected=[IDS[0]])
    app = Host(picker)
    async with app.run_test(size=(170, 30)) as pilot:
        await pilot.press("slash", *"apps", "enter")  # "/" first: on the list, "a" selects all
        assert isinstance(app.focused, OptionList) and app.results == []
        await pilot.press("space", "enter")
        assert app.results == [[IDS[0], IDS[1]]]


async def test_malformed_subscription_lists_do_not_break_the_picker():
    messy = [SUBS[0], dict(SUBS[0]), {"subscriptionId": IDS[1]}, {"displayName": "no id"}, {"subscriptionId": None}, "not a dict"]
    for tenants in (False, True):
        picker = ScopePicker(messy, None, tenants=tenants)
        app = Host(picker)
        async with app.run_test(size=(170, 30)) as pilot:
            await pilot.pause()
            assert len(prompts(picker)) == 2, "the repeat and the rows without an id are left out"
            await pilot.press("down", "space", "enter")
            assert app.results == [[IDS[0]]], "a subscription without a tenant is a tenant row of its own"


async def test_rows_stay_one_line_each_on_a_narrow_terminal():
    picker = ScopePicker(SUBS, SERVERS)
    app = Host(picker)
    async with app.run_test(size=(90, 30)) as pilot:
        await pilot.pause()
        options = picker.query_one(OptionList)
        assert options.virtual_size.height == options.option_count == 4, "a long row is cut, not wrapped"
