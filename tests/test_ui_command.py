"""The `:` command line (wsam_tui/ui/command.py): parsing, tab completion, history, errors in place, escape."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from wsam_tui.ui.command import CommandError, CommandLine, CommandSpec, parse_command

THEMES = ("dark", "dark-hc", "light", "sixteen")
HOSTILE_SUB = "[@click=app.quit]prod[/]\x1b]0;PWNED\x07"


def specs(subscription_names: tuple[str, ...] = ("Production", "Apps")) -> list[CommandSpec]:
    def themes(arg: str) -> list[str]:
        return [t for t in THEMES if t.startswith(arg.strip())]

    def subs(arg: str) -> list[str]:
        return [s for s in subscription_names if s.lower().startswith(arg.strip().lower())]

    return [
        CommandSpec("subs", ":subs [NAME]", "Choose subscriptions", subs),
        CommandSpec("tenant", ":tenant", "Choose tenants"),
        CommandSpec("theme", ":theme NAME", "Switch theme", themes),
        CommandSpec("kql", ":kql QUERY", "Run KQL"),
        CommandSpec("quit", ":quit", "Quit"),
        CommandSpec("broken", ":broken", "A completer with a bug", lambda arg: 1 / 0),
    ]


# ---- parse_command -----------------------------------------------------------------------------


def test_parse_exact_prefix_colon_and_argument():
    commands = specs()
    assert parse_command("theme dark", commands) == (commands[2], "dark")
    assert parse_command("th  dark-hc ", commands) == (commands[2], "dark-hc")
    assert parse_command(":q", commands) == (commands[4], "")
    assert parse_command("  KQL resources | take 3", commands) == (commands[3], "resources | take 3")


def test_parse_unknown_suggests_the_closest_command_with_its_position():
    with pytest.raises(CommandError) as info:
        parse_command("  thme dark", specs())
    assert "unknown command 'thme'" in str(info.value)
    assert "did you mean 'theme'" in str(info.value)
    assert info.value.position == 2


def test_parse_ambiguous_prefix_and_empty_line():
    with pytest.raises(CommandError, match="ambiguous: tenant, theme"):
        parse_command("t", specs())
    with pytest.raises(CommandError, match="type a command name"):
        parse_command(" : ", specs())


def test_parse_unknown_name_is_quoted_as_clean_data():
    with pytest.raises(CommandError) as info:
        parse_command("\x1b]0;x\x07zz", specs())
    assert "\x1b" not in str(info.value) and "\x07" not in str(info.value)


# ---- the widget --------------------------------------------------------------------------------


class Host(App):
    def __init__(self, commands: list[CommandSpec] | None = None, history: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.commands = commands or specs()
        self.history = history
        self.submitted: list[tuple[str, str]] = []
        self.cancelled = 0

    def compose(self) -> ComposeResult:
        yield CommandLine(self.commands, history=self.history, id="cmd")

    def on_mount(self) -> None:
        self.query_one(CommandLine).focus()

    def on_command_line_submitted(self, message: CommandLine.Submitted) -> None:
        self.submitted.append((message.spec.name, message.argument))

    def on_command_line_cancelled(self, message: CommandLine.Cancelled) -> None:
        self.cancelled += 1


def shown_text(line: CommandLine) -> str:
    """The line as drawn: the value plus the faint text after it."""
    return "".join(segment.text for segment in line.render_line(0)).rstrip()


async def test_typing_and_enter_submits_the_parsed_command():
    app = Host()
    async with app.run_test() as pilot:
        await pilot.press(*"th light", "enter")
        assert app.submitted == [("theme", "light")]
        assert app.query_one(CommandLine).history == ["th light"]


async def test_tab_completes_the_name_then_cycles_arguments():
    app = Host()
    async with app.run_test() as pilot:
        line = app.query_one(CommandLine)
        await pilot.press("t", "h")
        assert "eme" in shown_text(line), "the completion is visible before tab"
        await pilot.press("tab")
        assert line.value == "theme "
        await pilot.press("d")
        assert "dark · dark-hc" in shown_text(line), "both candidates are listed"
        await pilot.press("tab")
        assert line.value == "theme dark"
        assert "(1/2" in shown_text(line)
        await pilot.press("tab")
        assert line.value == "theme dark-hc"
        await pilot.press("tab")
        assert line.value == "theme dark", "repeated tab wraps around"
        await pilot.press("enter")
        assert app.submitted == [("theme", "dark")]


async def test_tab_cycles_ambiguous_names_and_right_accepts_a_completion():
    app = Host()
    async with app.run_test() as pilot:
        line = app.query_one(CommandLine)
        await pilot.press("t", "tab")
        assert line.value == "tenant"
        await pilot.press("tab")
        assert line.value == "theme"
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace", *"su", "right")
        assert line.value == "subs"


async def test_argument_candidates_are_shown_as_data():
    app = Host(specs(subscription_names=(HOSTILE_SUB, "Prodigal")))
    async with app.run_test() as pilot:
        line = app.query_one(CommandLine)
        await pilot.press(*"subs ", "tab")
        drawn = shown_text(line)
        assert "[@click=app.quit]prod[/]" in drawn, "the name is drawn literally"
        assert "\x1b" not in drawn and "\x07" not in drawn
        assert "\x1b" not in line.value
        await pilot.press("enter")
        assert app.submitted == [("subs", "[@click=app.quit]prod[/]␛]0;PWNED␇")], "the title sequence shown as markers"
        assert app.is_running, "nothing in the name ran an action"


async def test_bad_command_shows_the_error_in_the_bar_and_keeps_the_text():
    app = Host()
    async with app.run_test() as pilot:
        line = app.query_one(CommandLine)
        await pilot.press(*"thme dark", "enter")
        assert app.submitted == []
        assert line.value == "thme dark", "nothing typed is lost"
        assert line.has_class("-error")
        assert "unknown command 'thme'; did you mean 'theme'?" in shown_text(line)
        assert line.cursor_position == 0, "the cursor goes to where the error is"
        await pilot.press("end", "backspace")
        assert not line.has_class("-error") and "unknown" not in shown_text(line)


async def test_enter_on_an_empty_line_cancels_and_a_failing_completer_does_not_crash():
    app = Host()
    async with app.run_test() as pilot:
        line = app.query_one(CommandLine)
        await pilot.press("enter")
        assert app.cancelled == 1 and app.submitted == []
        await pilot.press(*"broken ", "tab")
        assert line.value == "broken "
        assert app.is_running


async def test_up_and_down_walk_the_history_and_restore_the_draft():
    app = Host(history=("theme dark", "kql resources | take 1"))
    async with app.run_test() as pilot:
        line = app.query_one(CommandLine)
        await pilot.press(*"sub")
        await pilot.press("up")
        assert line.value == "kql resources | take 1"
        await pilot.press("up", "up")
        assert line.value == "theme dark", "the oldest entry stays put"
        await pilot.press("down")
        assert line.value == "kql resources | take 1"
        await pilot.press("down")
        assert line.value == "sub", "past the newest entry the draft comes back"
        await pilot.press("up", "enter")
        assert app.submitted == [("kql", "resources | take 1")]
        assert line.history == ["theme dark", "kql resources | take 1"], "a repeat is not stored twice"


async def test_escape_posts_cancelled():
    app = Host()
    async with app.run_test() as pilot:
        await pilot.press(*"theme", "escape")
        assert app.cancelled == 1
        assert app.submitted == []


def test_history_is_bounded():
    line = CommandLine(specs(), max_history=3)
    for i in range(5):
        line.remember(f"kql resources | take {i}")
    assert line.history == [f"kql resources | take {i}" for i in (2, 3, 4)]


async def test_a_line_opened_with_text_shows_its_completion():
    class Opened(Host):
        def compose(self) -> ComposeResult:
            yield CommandLine(self.commands, value=":th", id="cmd")

    app = Opened()
    async with app.run_test() as pilot:
        await pilot.pause()
        line = app.query_one(CommandLine)
        assert shown_text(line).startswith(":theme"), "Input's focus handler must not wipe the hint"
        await pilot.press("tab")
        assert line.value == ":theme ", "a typed colon is kept, and ignored by the parser"
