"""How old a piece of data is, in words (the header, the details pane, `export`'s report)."""

from __future__ import annotations

from datetime import UTC, datetime


def age_text(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    if seconds < 90:
        return f"{max(seconds, 0)} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"
