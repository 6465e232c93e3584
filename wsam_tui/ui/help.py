"""The `?` screen: every binding with its keys and action id (the name to use in the config file's
``[keys]`` table), the `:` commands, and a summary of the filter language."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

FILTER_SUMMARY = """\
web prod                       free words: all must match (name, resource group, region, OS, tags …)
kind:arc  kind:vm              Arc servers or Azure VMs
sub:NAME  rg:NAME  loc:REGION  subscription (id or name), resource group, region; * is a wildcard
os:2016  state:disconnected    OS and version; power or connection state
tag:env=prod  tag:owner        a tag with a value, or a tag key present
has:backup  missing:monitor    a capability on, or off/partial (missing:any = any gap)
coverage<50  agent<1.45        comparisons on coverage (%) and agent version
!kind:arc  -tag:env            negation
a OR b   (a b) OR c            alternatives (OR binds tighter than the implicit AND)
os:"2022 datacenter"           quotes for spaces
"""

CONFIG_EXAMPLE = """\
# ~/.config/wsam-tui/config.toml — rebind by action id (comma-separated keys):
[keys]
refresh = "f5"
mark_all = "A"
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 110; height: 90%; border: thick $primary;
                                  background: $surface; padding: 0 1; }
    HelpScreen .title { text-style: bold; color: $accent; margin-top: 1; }
    """

    def __init__(self, bindings: Sequence[tuple[str, str, str]], commands: Sequence) -> None:
        super().__init__()
        self.bindings = bindings
        self.commands = commands

    def compose(self) -> ComposeResult:
        key_width = max((len(k) for k, _, _ in self.bindings), default=4) + 2
        id_width = max((len(i) for _, i, _ in self.bindings), default=4) + 2
        lines = [f"{'keys':<{key_width}}{'action id':<{id_width}}what it does"]
        lines += [f"{k:<{key_width}}{i:<{id_width}}{d}" for k, i, d in self.bindings]
        commands = [f":{c.usage.lstrip(':'):<34}{c.help}" for c in self.commands]
        with VerticalScroll():
            yield Static(Content("Keys (escape closes)"), classes="title")
            yield Static(Content("The console's keys act on the server table; in front of it (the jobs pane, a :kql "
                                 "answer) only that screen's keys and help, jobs and quit work."))
            yield Static(Content("\n".join(lines)))
            yield Static(Content("Commands (:, tab completes)"), classes="title")
            yield Static(Content("\n".join(commands)))
            yield Static(Content("Filter language (/) — docs/filter.md"), classes="title")
            yield Static(Content(FILTER_SUMMARY))
            yield Static(Content("Rebinding"), classes="title")
            yield Static(Content(CONFIG_EXAMPLE))
