"""One export path: the console's :export and `wsam-tui export` write the same file from the same cache."""

from __future__ import annotations

import asyncio
import json

from tests.app_support import loaded, notices, wait_for
from tests.test_app import SIZE, app_for, type_command, world  # noqa: F401  (world is a fixture)
from wsam_tui.cli import main


async def cli_export(store_dir, fmt: str, path) -> None:
    argv = ["export", "--offline", "--cache-dir", str(store_dir), "-o", fmt, "-f", str(path)]
    assert await asyncio.to_thread(main, argv) == 0  # its own event loop, as from a shell


async def test_console_export_and_cli_export_write_the_same_file(world, tmp_path, monkeypatch):
    _, store_dir, _, servers = world
    monkeypatch.setenv("WSAM_CONFIG_DIR", str(tmp_path / "config"))
    app = app_for(world)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        for fmt in ("json", "csv", "md"):
            await type_command(pilot, f"export {fmt} {tmp_path / ('console.' + fmt)}")
            await wait_for(pilot, lambda fmt=fmt: any(f"console.{fmt}" in n for n in notices(app)), what="the export")
    for fmt in ("json", "csv", "md"):
        await cli_export(store_dir, fmt, tmp_path / f"cli.{fmt}")
        assert (tmp_path / f"console.{fmt}").read_text(encoding="utf-8") == (tmp_path / f"cli.{fmt}").read_text(
            encoding="utf-8"), fmt
    doc = json.loads((tmp_path / "console.json").read_text(encoding="utf-8"))
    cells = [c for s in doc["servers"] for c in s["capabilities"].values()]
    assert len(doc["servers"]) == len(servers)
    assert sum(1 for c in cells if c["evidence"]) > len(cells) // 2, "the console's JSON carries the evidence"
