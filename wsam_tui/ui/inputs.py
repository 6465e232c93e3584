"""One-line inputs whose width the bar fixes, so that typing lays out nothing."""

from __future__ import annotations

from collections.abc import Callable

from textual.geometry import Size
from textual.widgets import Input


class BarInput(Input):
    """An Input sized by its container (``width: 1fr`` in a one-line bar), and told about each edit at once.

    Textual's Input sets its virtual size to the text's length + 1 on every change, and the virtual size
    is a reactive that lays out the whole screen — about 8 ms a keystroke on the console's screen, for
    a widget whose size does not depend on its text. Here it is set without that layout; the scroll
    region follows, so a long text still scrolls with the cursor.

    ``on_value(text)`` runs inside the edit, before the Input repaints — unlike ``Input.Changed``, a
    message handled after the Input's repaint was sent to the screen: what the handler repaints (the
    table behind a filter) then missed that frame and waited for the next (a keystroke took two frames
    instead of one, 30-45 ms instead of 10-25 at 50,000 servers).
    """

    def __init__(self, *args, on_value: Callable[[str], None] | None = None, **kwargs) -> None:
        self.on_value = on_value  # before Input's __init__, which sets the value
        super().__init__(*args, **kwargs)

    def _watch_value(self, value: str) -> None:
        size = Size(self.content_width, 1)
        if size != self.virtual_size:
            self.set_reactive(BarInput.virtual_size, size)
            self._scroll_update(size)
        super()._watch_value(value)  # sets the same size again: a reactive that does not change does nothing
        if self.on_value is not None:
            self.on_value(value)
