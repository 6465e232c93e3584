"""Themes: TOML files mapped to Textual themes — bundled as package data in wsam_tui/themes/, the user's own in
~/.config/wsam-tui/themes/. A broken file is reported and skipped, never fatal."""

from __future__ import annotations

import tomllib
from importlib import resources
from importlib.resources.abc import Traversable

from textual.theme import Theme

BUNDLED: Traversable = resources.files("wsam_tui") / "themes"
DEFAULT_THEME = "wsam-dark"
# The matrix and table read these; a theme that lacks one gets the fallback.
VARIABLE_DEFAULTS = {
    "cap-on": "green",
    "cap-partial": "yellow",
    "cap-off": "red",
    "cap-na": "grey",
    "cap-unknown": "white",
    "row-marked": "blue",
}
_FIELDS = {"name", "primary", "secondary", "warning", "error", "success", "accent", "foreground", "background",
           "surface", "panel", "boost", "dark", "luminosity_spread", "text_alpha", "variables", "ansi"}


def load_theme_file(path: Traversable) -> Theme:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown = set(data) - _FIELDS
    if unknown:
        raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
    if not isinstance(data.get("name"), str) or not isinstance(data.get("primary"), str):
        raise ValueError("'name' and 'primary' are required strings")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ValueError("[variables] must map names to colour strings")
    return Theme(**data)


def load_themes(*folders: Traversable) -> tuple[list[Theme], list[str]]:
    """Every *.toml theme in the folders (later folders override earlier ones by name), and the problems."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted((p for p in folder.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name):
            try:
                theme = load_theme_file(path)
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, TypeError) as e:
                problems.append(f"theme {path}: {e}; skipped")
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems
