"""Capability-state glyphs shared by the server table, the details pane and any legend.

The five states differ by *shape* as well as by colour, so the matrix reads in 16 colours, in
monochrome (``NO_COLOR``, ``TEXTUAL_COLOR_SYSTEM=standard``) and for colour-blind operators.
``ASCII`` is the fallback for fonts or locales where the geometric shapes render badly (they are
East-Asian "ambiguous width": a CJK terminal may draw them two cells wide).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from wsam_tui.fleet.model import State

# A compact code per state (the table keeps one byte per capability cell); the order is also the
# legend's order.
STATES: tuple[State, ...] = (State.ON, State.PARTIAL, State.OFF, State.NOT_APPLICABLE, State.UNKNOWN)
CODE: Mapping[State, int] = MappingProxyType({state: i for i, state in enumerate(STATES)})
UNKNOWN_CODE = CODE[State.UNKNOWN]

UNICODE: Mapping[State, str] = MappingProxyType({
    State.ON: "●",
    State.PARTIAL: "◐",
    State.OFF: "○",
    State.NOT_APPLICABLE: "·",
    State.UNKNOWN: "?",
})
ASCII: Mapping[State, str] = MappingProxyType({
    State.ON: "+",
    State.PARTIAL: "~",
    State.OFF: "-",
    State.NOT_APPLICABLE: ".",
    State.UNKNOWN: "?",
})

# The component-class suffix per state: ``servertable--on`` …, styled by the theme variables
# ``$cap-on`` … (wsam_tui/ui/themes.py VARIABLE_DEFAULTS).
CLASS_SUFFIX: Mapping[State, str] = MappingProxyType({
    State.ON: "on",
    State.PARTIAL: "partial",
    State.OFF: "off",
    State.NOT_APPLICABLE: "na",
    State.UNKNOWN: "unknown",
})

LABEL: Mapping[State, str] = MappingProxyType({
    State.ON: "on",
    State.PARTIAL: "partial",
    State.OFF: "off",
    State.NOT_APPLICABLE: "not applicable",
    State.UNKNOWN: "unknown",
})


def glyph(state: State, glyphs: Mapping[State, str] = UNICODE) -> str:
    return glyphs.get(state, glyphs[State.UNKNOWN])


def legend(glyphs: Mapping[State, str] = UNICODE) -> tuple[tuple[str, str], ...]:
    """(glyph, label) pairs in legend order, e.g. for a help screen or a footer."""
    return tuple((glyphs[state], LABEL[state]) for state in STATES)
