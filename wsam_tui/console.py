"""`wsam-tui` with no subcommand: wire settings, store, connection and (for --demo) the simulator to the app.

`--demo` starts the simulator in this process on the bundled demo fleet and then connects to it exactly
as to any ARM endpoint (``--endpoint URL --ca-bundle PEM``): discovery through /metadata/endpoints, the
same transport, Resource Graph, ARM. Only the cache directory differs (``demo`` beside the real one),
so a demo never mixes with, or overwrites, the last known state of a real fleet; its jobs have their own
journal too (``demo/jobs`` in the state dir), so a demo job is never resumed against Azure, nor an Azure job
against the demo.

The demo's simulated ARM keeps its state in ``demo-arm`` beside the cache (sim/durable.py), as real ARM
outlives the console: a console killed mid-job restarts on the same fleet, with the operations it started
still running, and resumes the job. ``--demo-reset`` starts the fleet afresh. Two knobs for tests and
demonstrations: ``WSAM_DEMO_LRO_SECONDS`` (how long the demo's operations run; default 3) and
``WSAM_DEMO_REQUEST_LOG`` (a file the demo's simulator appends one JSON line per request to).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .arm.common import quiet_azure_logging
from .config import cache_dir, load_settings, state_dir
from .inventory import ConnectOptions, Inventory
from .ops.journal import Journal
from .session import FleetSession, SessionInfo
from .store.cache import Store, default_store_dir

DEMO_LRO_SECONDS = 3.0


@dataclass
class Demo:
    """Where a --demo run keeps its things, and its simulated ARM (when started)."""

    store_dir: Path
    journal_dir: Path
    options: ConnectOptions | None = None  # None: not started (offline, or a command that needs no ARM)
    closers: list = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def start_demo(args: argparse.Namespace, *, serve: bool) -> Demo:
    """The demo's cache, journal and (with ``serve``) simulated ARM: for the console and every subcommand."""
    reset = bool(getattr(args, "demo_reset", False))
    store_dir = Path(args.cache_dir) if args.cache_dir else cache_dir() / "demo"
    demo = Demo(store_dir, state_dir() / "demo" / "jobs")
    if reset:
        _set_aside(demo.journal_dir, demo.notices)
    if serve:
        from .sim.run import create_durable_simulator, demo_fleet, demo_fleet_id, start_in_thread

        lro_seconds = _demo_lro_seconds(demo.notices)
        sim = create_durable_simulator(store_dir.parent / "demo-arm", demo_fleet, fleet_id=demo_fleet_id(),
                                       reset=reset, lro_seconds=lro_seconds,
                                       request_log=os.environ.get("WSAM_DEMO_REQUEST_LOG") or None)
        demo.notices.extend(sim.durable.notices)
        ca_dir = _private_dir(store_dir.parent / "demo-ca")
        port = sim.durable.saved_port()
        try:  # the port of the last run: the journal's operation URLs name it
            running = start_in_thread(sim, port=port, ca_dir=ca_dir)
        except OSError as e:
            demo.notices.append(f"The demo's simulated ARM could not serve on its port {port} again ({e.strerror or e}); "
                                "jobs of an earlier session cannot follow the operations they started.")
            running = start_in_thread(sim, ca_dir=ca_dir)
        sim.durable.save_port(running.port)
        demo.closers.extend([running.stop, sim.durable.close])
        demo.options = ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path))
    return demo


def build_session(args: argparse.Namespace) -> FleetSession:
    settings = load_settings()
    readonly = bool(args.readonly or settings.readonly)
    args.demo = bool(args.demo or getattr(args, "demo_reset", False))  # --demo-reset implies --demo
    notices: list[str] = []
    closers = []
    options: ConnectOptions | None = None
    demo: Demo | None = None
    if args.demo:
        demo = start_demo(args, serve=not args.offline)  # --demo --offline: the demo's cache, no simulator
        store_dir, options, source = demo.store_dir, demo.options, "demo fleet (simulator)"
        notices.extend(demo.notices)
        closers.extend(demo.closers)
    else:
        store_dir = Path(args.cache_dir) if args.cache_dir else default_store_dir()
        if args.endpoint:
            options = ConnectOptions(endpoint=args.endpoint, ca_bundle=args.ca_bundle, cloud=args.cloud,
                                     auth=args.auth, tenant=args.tenant)
            source = args.endpoint
        else:
            options = ConnectOptions(cloud=args.cloud, auth=args.auth, tenant=args.tenant)
            source = f"Azure ({args.cloud})"
    if args.offline:
        options = None
        source = f"{source}, cache only"
    store = Store(store_dir)
    required = tuple(args.required_tag) or settings.required_tags
    inventory = Inventory(store, required_tags=required, stale_after_days=settings.stale_after_days)
    info = SessionInfo(source=source, offline=bool(args.offline), readonly=readonly,
                       subscriptions=tuple(args.subscription), notices=notices + list(store.notices))
    session = FleetSession(inventory, options, info)
    session.closers.extend(closers)
    if demo is not None:
        session.journal = Journal(demo.journal_dir)
    return session


def _set_aside(jobs: Path, notices: list[str]) -> None:
    """--demo-reset: the earlier demo jobs name operations of the fleet that was just forgotten; resumed, they
    would only fail. They are moved aside (kept, as every record is), not resumed."""
    if not jobs.is_dir() or not any(jobs.iterdir()):
        return
    aside = jobs.with_name(f"jobs.before-reset-{int(time.time())}")
    try:
        jobs.rename(aside)
    except OSError as e:
        notices.append(f"--demo-reset: the earlier demo jobs could not be set aside ({e.strerror or e}); "
                       "unfinished ones will be resumed against the fresh fleet and fail.")
        return
    notices.append(f"--demo-reset: the earlier demo jobs were set aside in {aside} (not resumed).")


def _demo_lro_seconds(notices: list[str]) -> float:
    text = os.environ.get("WSAM_DEMO_LRO_SECONDS", "").strip()
    if not text:
        return DEMO_LRO_SECONDS
    try:
        seconds = float(text)
        if not 0 <= seconds <= 3600:
            raise ValueError
    except ValueError:
        notices.append(f"WSAM_DEMO_LRO_SECONDS={text[:40]!r} is not a number of seconds from 0 to 3600; "
                       f"using {DEMO_LRO_SECONDS:g}.")
        return DEMO_LRO_SECONDS
    return seconds


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def run_console(args: argparse.Namespace) -> int:
    quiet_azure_logging()
    logging.getLogger("wsam_tui").addHandler(logging.NullHandler())
    if not sys.stdout.isatty() and not os.environ.get("WSAM_ALLOW_NO_TTY"):
        print("wsam-tui: the console needs a terminal (for scripts: wsam-tui export)", file=sys.stderr)
        return 2
    try:
        session = build_session(args)
    except OSError as e:
        print(f"wsam-tui: cannot open the local cache: {e}", file=sys.stderr)
        return 2
    from .ui.app import WsamApp

    settings = load_settings()
    app = WsamApp(session, settings, theme=args.theme)
    try:
        app.run()
    finally:
        session.close()
    # Freeing tens of thousands of records object by object takes longer than the session needs.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(app.return_code or 0)
