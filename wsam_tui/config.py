"""Settings and paths: a TOML file in the user's config dir; cache and state under the user's dirs.

    # ~/.config/wsam-tui/config.toml
    required_tags = ["env", "owner", "costCenter"]
    stale_after_days = 7
    readonly = false
    protected_subscriptions = []      # ids or names: writes need a typed confirmation
    theme = "wsam-dark"

A setting that is malformed is reported and its default used: a typo must not stop the console.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

APP = "wsam-tui"


def config_dir() -> Path:
    return Path(os.environ.get("WSAM_CONFIG_DIR") or platformdirs.user_config_dir(APP, appauthor=False))


def cache_dir() -> Path:
    return Path(os.environ.get("WSAM_CACHE_DIR") or platformdirs.user_cache_dir(APP, appauthor=False))


def state_dir() -> Path:
    return Path(os.environ.get("WSAM_STATE_DIR") or platformdirs.user_state_dir(APP, appauthor=False))


@dataclass
class Settings:
    required_tags: tuple[str, ...] = ("env", "owner", "costCenter")
    stale_after_days: int = 7
    readonly: bool = False
    protected_subscriptions: tuple[str, ...] = ()
    theme: str = "wsam-dark"
    keys: dict[str, str] = field(default_factory=dict)  # action id -> key(s), e.g. {"refresh": "r,f5"}
    problems: list[str] = field(default_factory=list)  # what was wrong in the file, for a notification


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def load_settings(path: Path | None = None) -> Settings:
    path = path or config_dir() / "config.toml"
    settings = Settings()
    if not path.is_file():
        return settings
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        settings.problems.append(f"{path}: {e}; using defaults")
        return settings
    checks = {
        "required_tags": (_strings, "a list of strings"),
        "protected_subscriptions": (_strings, "a list of strings"),
        "stale_after_days": (lambda v: v if isinstance(v, int) and 1 <= v <= 365 else None, "a number of days (1-365)"),
        "readonly": (lambda v: v if isinstance(v, bool) else None, "true or false"),
        "theme": (lambda v: v if isinstance(v, str) and v else None, "a theme name"),
        "keys": (lambda v: {str(k): str(x) for k, x in v.items()} if isinstance(v, dict) else None, "a table of action = keys"),
    }
    for key, value in data.items():
        if key not in checks:
            settings.problems.append(f"{path}: unknown setting {key!r} ignored")
            continue
        convert, what = checks[key]
        converted = convert(value)
        if converted is None:
            settings.problems.append(f"{path}: {key} must be {what}; using the default")
            continue
        setattr(settings, key, converted)
    return settings
