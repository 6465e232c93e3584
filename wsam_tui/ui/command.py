"""The `:` command line (k9s-style): command names by unique prefix, tab completion, history.

``parse_command`` is plain Python (no Textual) so the app, the palette and tests share one parser.
``CommandLine`` is an ``Input``: tab completes the command name, then its argument (repeated tabs
cycle through the candidates); the candidates and any error are drawn after the cursor as the
Input's faint "suggestion" text, so the one-line bar needs no extra widget. Everything drawn there
is plain ``rich.text.Text`` (never markup) and passes ``clean_text`` first: completions can be
subscription names, which come from ARM.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message

from ..fleet.model import clean_text
from .inputs import BarInput

MAX_SHOWN_CANDIDATES = 6
MAX_HISTORY = 200


@dataclass(frozen=True)
class CommandSpec:
    """One `:` command. ``complete`` gets the text typed after the name and returns candidate arguments."""

    name: str
    usage: str
    help: str
    complete: Callable[[str], Sequence[str]] | None = None


class CommandError(ValueError):
    """A command line that cannot run; ``position`` is the offset in the typed text where it went wrong."""

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def _split(text: str) -> tuple[int, str, str]:
    """(offset of the name, the name, the rest: empty, or starting with the whitespace after the name)."""
    body = text.lstrip()
    if body.startswith(":"):  # a typed or pasted leading colon is not part of the name
        body = body[1:].lstrip()
    name = body.split(maxsplit=1)[0] if body.strip() else ""
    return len(text) - len(body), name, body[len(name) :]


def match_commands(prefix: str, commands: Sequence[CommandSpec]) -> list[CommandSpec]:
    """The commands a (case-insensitive) name or prefix could mean: an exact name alone, else every prefix match."""
    key = prefix.lower()
    exact = [c for c in commands if c.name.lower() == key]
    if exact:
        return exact
    return [c for c in commands if c.name.lower().startswith(key)]


def parse_command(text: str, commands: Sequence[CommandSpec]) -> tuple[CommandSpec, str]:
    """``"th dark"`` → (the ``theme`` spec, ``"dark"``). Raises CommandError (with a position) for an
    empty, ambiguous or unknown name; an unknown one names the closest commands."""
    start, name, rest = _split(text)
    if not name:
        raise CommandError("type a command name (tab completes; :help lists them)", start)
    found = match_commands(name, commands)
    if len(found) == 1:
        return found[0], rest.strip()
    shown = clean_text(name, limit=40)
    if found:
        names = ", ".join(c.name for c in found)
        raise CommandError(f"'{shown}' is ambiguous: {names}", start)
    close = difflib.get_close_matches(name.lower(), [c.name.lower() for c in commands], n=2, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "; :help lists the commands"
    raise CommandError(f"unknown command '{shown}'{hint}", start)


@dataclass
class _Cycle:
    """Tab pressed more than once on the same text: which candidate comes next."""

    base: str  # the line without the part being completed (e.g. "theme ")
    candidates: list[str]
    index: int
    shown: str  # the value the last tab produced; any other edit ends the cycle


class CommandLine(BarInput):
    """The `:` bar. Posts ``CommandLine.Submitted(spec, argument)`` on enter and ``CommandLine.Cancelled``
    on escape (or enter on an empty line); a line that does not parse stays as typed, with the error shown after it."""

    DEFAULT_CSS = """
    CommandLine { border: none; height: 1; padding: 0 1; }
    CommandLine:focus { border: none; }
    CommandLine.-error > .input--suggestion { color: $text-error; text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "Complete", show=False),
        Binding("up", "history(-1)", "Previous command", show=False),
        Binding("down", "history(1)", "Next command", show=False),
        Binding("escape", "cancel", "Cancel", show=False),
    ]

    class _LineMessage(Message):
        def __init__(self, command_line: CommandLine) -> None:
            super().__init__()
            self.command_line = command_line

        @property
        def control(self) -> CommandLine:
            return self.command_line

    class Submitted(_LineMessage):
        def __init__(self, command_line: CommandLine, spec: CommandSpec, argument: str) -> None:
            super().__init__(command_line)
            self.spec, self.argument = spec, argument

    class Refused(_LineMessage):
        """Enter on a line that does not parse: the line stays open, its error shown."""

    class Cancelled(_LineMessage):
        """Escape, or enter on an empty line: leave command mode."""

    def __init__(self, commands: Sequence[CommandSpec], *, history: Sequence[str] = (),
                 max_history: int = MAX_HISTORY, placeholder: str | None = None, **kwargs) -> None:
        # State first: Input's __init__ sets an initial ``value=``, which runs watch_value.
        self.commands = list(commands)
        self.max_history = max_history
        self.history: list[str] = [clean_text(h) for h in history if h.strip()][-max_history:]
        self._history_at: int | None = None  # index into history while walking it
        self._draft = ""  # what was typed before walking the history
        self._cycle: _Cycle | None = None
        self._completion = ""  # the full value that "right" accepts ("" = none)
        self.error: CommandError | None = None
        if placeholder is None:
            placeholder = "command (tab completes): " + " · ".join(c.name for c in commands)
        kwargs.setdefault("select_on_focus", False)
        super().__init__(placeholder=placeholder, **kwargs)

    # ---- what is drawn after the cursor -----------------------------------------------------------

    def on_focus(self) -> None:
        # Input's own focus handler runs after this one and clears the suggestion: draw it again after.
        self.call_after_refresh(self._show_hint)

    def watch_value(self, value: str) -> None:
        # Runs after Input's own watcher, which clears the suggestion on every change.
        if self._cycle is not None and value != self._cycle.shown:
            self._cycle = None
        if self.error is not None:
            self.error = None
            self.remove_class("-error")
        self._show_hint()

    def _show_hint(self) -> None:
        value = self.value
        self._completion = ""
        if self.error is not None:
            self._suggestion = value + "  ✗ " + clean_text(self.error.message)
            return
        if not value.strip():
            self._suggestion = ""
            return
        if self._cycle is not None:
            cycle = self._cycle
            self._suggestion = value + f"  ({cycle.index + 1}/{len(cycle.candidates)}: tab for the next)"
            return
        base, word, candidates, _ = self.candidates()
        if not candidates:
            self._suggestion = ""
            return
        first = candidates[0]
        tail = ""
        if first.lower().startswith(word.lower()) and len(first) > len(word):
            self._completion = base + word + first[len(word):]
            tail = first[len(word):]
        if len(candidates) > 1 or not tail:
            shown = " · ".join(clean_text(c, limit=40) for c in candidates[:MAX_SHOWN_CANDIDATES])
            more = f" … +{len(candidates) - MAX_SHOWN_CANDIDATES}" if len(candidates) > MAX_SHOWN_CANDIDATES else ""
            if not (len(candidates) == 1 and candidates[0] == word):
                tail += f"   [{shown}{more}]"
        self._suggestion = value + clean_text(tail)

    def candidates(self) -> tuple[str, str, list[str], bool]:
        """(the fixed part of the line, the word being completed, its candidates, whether that word is the
        command name) for the current value: before the first space the name, after it the argument."""
        value = self.value
        start, name, rest = _split(value)
        if not rest:
            return value[:start], name, [c.name for c in match_commands(name, self.commands)], True
        found = match_commands(name, self.commands)
        if len(found) != 1 or found[0].complete is None:
            return value, "", [], False
        spec = found[0]
        argument = rest.lstrip()
        try:
            candidates = [clean_text(c) for c in spec.complete(argument) or ()]
        except Exception:  # a completer is app code; a bug in one must not take the command line down
            candidates = []
        return f"{spec.name} ", argument, [c for c in candidates if c], False

    # ---- keys -------------------------------------------------------------------------------------

    def action_complete(self) -> None:
        cycle = self._cycle
        if cycle is not None and self.value == cycle.shown:
            cycle.index = (cycle.index + 1) % len(cycle.candidates)
        else:
            base, _, candidates, is_name = self.candidates()
            if not candidates:
                self.app.bell()
                return
            if len(candidates) == 1:
                self._cycle = None
                # A settled name gets its space, so the next tab goes straight on to the argument.
                self._set_value(base + candidates[0] + (" " if is_name else ""))
                return
            cycle = self._cycle = _Cycle(base, candidates, 0, "")
        cycle.shown = cycle.base + cycle.candidates[cycle.index]
        self._set_value(cycle.shown)

    def action_cursor_right(self, select: bool = False) -> None:
        # Input would accept the drawn suggestion, which here may be a hint or an error: accept only a completion.
        if not select and self.cursor_at_end and self._completion:
            self._set_value(self._completion)
            return
        saved, self._suggestion = self._suggestion, ""
        super().action_cursor_right(select)
        if self._suggestion == "":
            self._suggestion = saved

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        if self._history_at is None:
            if step > 0:
                return
            self._draft = self.value
            at = len(self.history) - 1
        else:
            at = self._history_at + step
        if at >= len(self.history):
            self._history_at = None
            self._set_value(self._draft)
            return
        self._history_at = max(0, at)
        self._set_value(self.history[self._history_at])

    def action_cancel(self) -> None:
        self.reset()
        self.post_message(self.Cancelled(self))

    async def action_submit(self) -> None:
        taken = self.take()
        if taken is not None:
            self.post_message(self.Submitted(self, *taken))
        elif self.error is None:
            self.post_message(self.Cancelled(self))
        else:
            self.post_message(self.Refused(self))

    def take(self) -> tuple[CommandSpec, str] | None:
        """(the command, its argument), remembered in the history; None when the line is empty (leave command
        mode, as in k9s) or does not parse (the error is shown, the line stays)."""
        text = self.value
        if not text.strip(" :\t"):
            self.reset()
            return None
        try:
            spec, argument = parse_command(text, self.commands)
        except CommandError as e:
            self.error = e
            self.add_class("-error")
            self.cursor_position = min(e.position, len(text))
            self._show_hint()
            return None
        self.remember(text.strip())
        self.reset()
        return spec, argument

    # ---- helpers ----------------------------------------------------------------------------------

    def remember(self, line: str) -> None:
        """Add a line to the history (not twice in a row; the oldest fall off past ``max_history``)."""
        line = clean_text(line)
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
            del self.history[: -self.max_history]

    def _set_value(self, value: str) -> None:
        self.value = value
        self.cursor_position = len(value)
        self._show_hint()  # also when the value did not change (no watcher runs then)

    def reset(self) -> None:
        """Forget the history walk and the completion cycle (on leaving the line)."""
        self._history_at = None
        self._draft = ""
        self._cycle = None
