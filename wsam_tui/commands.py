"""Non-interactive commands (`export`, later the headless actions): wiring of services to stdout/stderr."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .ages import age_text as age_text  # re-exported
from .arm.auth import CredentialError, EndpointError, quiet_azure_logging
from .arm.transport import ArmHttpError, TransportEvent
from .config import load_settings
from .fleet.model import Source
from .inventory import ConnectOptions, Inventory, connect
from .store.cache import Store, default_store_dir

EXIT_OK, EXIT_USAGE, EXIT_PARTIAL, EXIT_NO_DATA, EXIT_CONNECT = 0, 2, 3, 4, 5


class StderrProgress:
    """Progress on stderr, only when stderr is a terminal (scripts get clean output)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.totals: dict[Source, tuple[int, int]] = {}

    def source(self, source: Source, done: int, total: int) -> None:
        self.totals[source] = (done, total)
        if self.tty:
            parts = " ".join(f"{s.value} {d}/{t}" for s, (d, t) in self.totals.items())
            print(f"\r\x1b[Kfetching: {parts}"[:200], end="", file=sys.stderr, flush=True)

    def event(self, e: TransportEvent) -> None:
        if self.tty:
            print(f"\r\x1b[K{e.message}", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)


def run_subcommand(args: argparse.Namespace) -> int:
    """Every subcommand but `sim` goes through here: one contract for --demo (the demo's ARM, cache and journal,
    as the console has them) and for a credential or endpoint that fails (a message and exit 5, no traceback)."""
    import asyncio

    from .fleet.model import clean_text
    from .ops import headless

    demo = None
    try:
        if args.demo or args.demo_reset:
            if args.endpoint:
                print(f"wsam-tui {args.command}: --demo serves its own ARM; it does not go with --endpoint", file=sys.stderr)
                return EXIT_USAGE
            from .console import start_demo

            quiet_azure_logging()
            needs_arm = not getattr(args, "offline", False) and getattr(args, "verb", "") not in ("list", "show")
            demo = start_demo(args, serve=needs_arm)
            for notice in demo.notices:
                print(f"wsam-tui: {notice}", file=sys.stderr)
            args.cache_dir, args.journal_dir = str(demo.store_dir), str(demo.journal_dir)
            if demo.options is not None:
                args.endpoint, args.ca_bundle = demo.options.endpoint, demo.options.ca_bundle
        if args.command == "export":
            return asyncio.run(export_command(args))
        return headless.main(args)
    except (CredentialError, EndpointError) as e:
        print(f"wsam-tui {args.command}: {clean_text(e)}", file=sys.stderr)
        return EXIT_CONNECT
    finally:
        for close in demo.closers if demo is not None else ():
            close()


async def export_command(args: argparse.Namespace) -> int:
    from . import export

    quiet_azure_logging()
    logging.getLogger("wsam_tui").addHandler(logging.NullHandler())
    settings = load_settings()
    store = Store(args.cache_dir or default_store_dir())
    required = tuple(args.required_tag) or settings.required_tags
    inventory = Inventory(store, required_tags=required, stale_after_days=settings.stale_after_days)
    exit_code = EXIT_OK
    told = len(store.notices)
    for notice in [*settings.problems, *store.notices]:
        print(f"wsam-tui: {notice}", file=sys.stderr)
    if not args.offline:
        progress = StderrProgress()
        try:
            conn = await connect(ConnectOptions(endpoint=args.endpoint, ca_bundle=args.ca_bundle, cloud=args.cloud,
                                                auth=args.auth, tenant=args.tenant, on_event=progress.event))
        except (EndpointError, CredentialError, ValueError) as e:
            print(f"wsam-tui export: {e}", file=sys.stderr)
            return EXIT_CONNECT
        try:
            report = await inventory.refresh(conn, args.subscription, progress=progress.source,
                                             graph=not getattr(args, "no_graph", False))
        except ArmHttpError as e:
            progress.done()
            print(f"wsam-tui export: cannot list subscriptions: {e.describe()}", file=sys.stderr)
            return EXIT_CONNECT
        finally:
            await conn.close()
        progress.done()
        if report.through_arm and not getattr(args, "no_graph", False):
            for sub in report.through_arm:
                print(f"wsam-tui export: subscription {sub}: Resource Graph refused it; read through ARM instead",
                      file=sys.stderr)
        for sub, source, message in report.failures:
            print(f"wsam-tui export: subscription {sub}: {source}: {message}", file=sys.stderr)
        if report.failures:
            exit_code = EXIT_PARTIAL
    text, snapshot = export.from_store(inventory, args.output, args.subscription)
    store.close()
    for notice in store.notices[told:]:  # what could not be read (damaged values): their cells are unknown
        print(f"wsam-tui: {notice}", file=sys.stderr)
    if store.damaged and args.offline:
        if not snapshot.servers:
            print("wsam-tui export: the local cache is damaged and nothing in it could be read; "
                  "run once online to fill it again", file=sys.stderr)
            return EXIT_NO_DATA
        exit_code = EXIT_PARTIAL
    if not snapshot.subscriptions and args.offline:
        print("wsam-tui export: the local cache is empty; run once online first", file=sys.stderr)
        return EXIT_NO_DATA
    if args.offline:
        print(f"wsam-tui export: offline; data as of {snapshot.oldest.isoformat(timespec='seconds') if snapshot.oldest else 'never'} "
              f"({age_text(snapshot.oldest)})", file=sys.stderr)
    if args.file:
        Path(args.file).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return exit_code
