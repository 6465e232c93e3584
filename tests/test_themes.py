"""Theme files: the bundled ones load and carry the matrix colours; a broken user theme is reported, not fatal."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from wsam_tui.ui.themes import BUNDLED, DEFAULT_THEME, VARIABLE_DEFAULTS, load_themes


def test_bundled_themes_load_with_every_matrix_variable():
    themes, problems = load_themes(BUNDLED)
    assert problems == []
    names = {t.name for t in themes}
    assert {"wsam-dark", "wsam-light", "wsam-high-contrast", "wsam-ansi"} <= names
    assert DEFAULT_THEME in names
    for theme in themes:
        assert set(VARIABLE_DEFAULTS) <= set(theme.variables), theme.name
    assert next(t for t in themes if t.name == "wsam-ansi").ansi


def test_user_themes_override_and_broken_files_are_reported(tmp_path: Path):
    (tmp_path / "mine.toml").write_text('name = "wsam-dark"\nprimary = "#FF0000"\n')
    (tmp_path / "typo.toml").write_text('name = "x"\nprimery = "#FF0000"\n')
    (tmp_path / "bad.toml").write_text("name = \n")
    themes, problems = load_themes(BUNDLED, tmp_path)
    dark = next(t for t in themes if t.name == "wsam-dark")
    assert dark.primary == "#FF0000"
    assert len(problems) == 2 and any("typo.toml" in p and "primery" in p for p in problems)


async def test_themes_register_and_switch_live():
    themes, _ = load_themes(BUNDLED)

    class Demo(App):
        CSS = "Screen { color: $cap-on; }"

        def get_theme_variable_defaults(self) -> dict[str, str]:
            return dict(VARIABLE_DEFAULTS)

        def on_mount(self) -> None:
            for t in themes:
                self.register_theme(t)
            self.theme = DEFAULT_THEME

    app = Demo()
    async with app.run_test() as pilot:
        assert app.theme == "wsam-dark"
        for name in ("wsam-light", "wsam-high-contrast", "wsam-ansi"):
            app.theme = name
            await pilot.pause()
            assert app.theme == name
