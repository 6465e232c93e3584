"""The audit log: who did what to which server, with which result (JSON Lines in the state dir).

One line when a job starts (the plan: action, parameters without secrets, targets, skipped), one per
target when it ends (outcome, ARM's error code and message, request and correlation ids), one when the
job ends. The principal comes from the access token's claims (upn, else preferred_username, else the
app id / object id); a token that is not a JWT (the simulator's) gives "unknown". The token itself is
never written. Directory 0700, file 0600.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import state_dir
from ..fleet.model import clean_text
from .journal import now_iso, private_dir, scrub


def principal_from_token(token: str) -> str:
    """Who the token says it is, or "unknown" (no signature check: this names, it does not authorize)."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return "unknown"
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, UnicodeDecodeError):
        return "unknown"
    if not isinstance(claims, dict):
        return "unknown"
    for key in ("upn", "preferred_username", "unique_name", "email"):
        if claims.get(key):
            return clean_text(claims[key], limit=200)
    if claims.get("appid") or claims.get("azp"):
        return f"app {clean_text(claims.get('appid') or claims.get('azp'), limit=80)} (object {clean_text(claims.get('oid'), limit=80)})"
    if claims.get("oid"):
        return f"object {clean_text(claims['oid'], limit=80)}"
    return "unknown"


def default_path() -> Path:
    return state_dir() / "audit.jsonl"


class AuditLog:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    def write(self, event: str, fields: Mapping[str, Any]) -> None:
        private_dir(self.path.parent)
        line = json.dumps(scrub({"time": now_iso(), "event": event, **fields}), ensure_ascii=False,
                          separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def read(self) -> list[dict]:
        """Every readable line (a torn or hand-edited line is skipped)."""
        out = []
        if not self.path.is_file():
            return out
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    out.append(rec)
        return out
