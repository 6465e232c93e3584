"""The headless actions: `wsam-tui run-command | extension | patch | tags | power | identity | monitor | jobs`.

Same engine, journal and audit log as the console. Targets are chosen with the `/` filter language
over the inventory's servers (refreshed first; ``--offline`` chooses from the cache without refreshing,
and still sends the actions). The plan goes to stdout; ``--yes`` proceeds (on a terminal without it,
the operator confirms, typing the count when the plan asks for it); progress goes to stderr.

Exit codes: 0 every target succeeded (or nothing needed doing); 1 not confirmed or read-only, nothing
sent; 2 usage error; 3 some targets failed or were cancelled; 4 no server matched; 5 cannot connect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..fleet.model import clean_text
from .catalog import ACTIONS, CLASSIFICATIONS, EXTENSIONS, REBOOT_SETTINGS, ActionError
from .journal import JobRecord, Journal
from .plan import Plan

if TYPE_CHECKING:  # the engine (httpx) loads when a command runs: `wsam-tui` parses its arguments without it
    from .engine import JobEvent

EXIT_OK, EXIT_NOT_SENT, EXIT_USAGE, EXIT_FAILED, EXIT_NO_TARGETS, EXIT_CONNECT = 0, 1, 2, 3, 4, 5
COMMANDS = ("run-command", "extension", "patch", "tags", "power", "identity", "monitor", "jobs")
SHOWN_TARGETS = 20  # plan lines printed per section before "… and N more"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..cli import add_connection_options

    def action_parser(name: str, help_: str, parent: argparse._SubParsersAction = sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=help_ + ". " + _EXITS)
        p.add_argument("-q", "--filter", metavar="QUERY", help="choose servers with the / filter language (docs/filter.md)")
        p.add_argument("--all", action="store_true", help="every server in scope (instead of --filter)")
        p.add_argument("-y", "--yes", action="store_true", help="proceed without asking")
        p.add_argument("--confirm", metavar="COUNT",
                       help="with --yes, the number of targets: required when a target is in a protected subscription")
        p.add_argument("--readonly", action="store_true", help="plan only: the write gate refuses every write")
        p.add_argument("--concurrency", type=int, default=32, metavar="N", help="requests in flight at most (default 32)")
        add_connection_options(p)
        return p

    r = action_parser("run-command", "run a PowerShell script on the chosen servers (Run Command v2)")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--script", help="the script text")
    src.add_argument("--script-file", metavar="PATH", help="read the script from a file")
    r.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE")
    r.add_argument("--protected-parameter", action="append", default=[], metavar="NAME",
                   help="a parameter that is never stored: its value comes from $WSAM_PARAM_<NAME> or a prompt")
    r.add_argument("--timeout", type=int, default=3600, metavar="SECONDS")

    ext = sub.add_parser("extension", help="install, remove or upgrade an extension").add_subparsers(
        dest="verb", metavar="VERB", required=True)
    keys = ", ".join(EXTENSIONS)
    for verb, help_ in (("install", "install an extension"), ("remove", "remove an extension"),
                        ("upgrade", "upgrade an extension (Arc: upgradeExtensions; VMs: a version bump)")):
        e = action_parser(verb, help_, ext)
        e.add_argument("extension", help=f"one of {keys} (or its type / publisher.type)")
        if verb != "remove":
            e.add_argument("--version", help="typeHandlerVersion (default: the catalog's)")
        if verb == "install":
            e.add_argument("--settings", metavar="JSON", help="public settings (default: the catalog's)")
            e.add_argument("--protected-settings-file", metavar="PATH",
                           help="a JSON file of protected settings (sent, never stored)")

    patch = sub.add_parser("patch", help="assess or install patches (Update Manager)").add_subparsers(
        dest="verb", metavar="VERB", required=True)
    action_parser("assess", "assess missing patches", patch)
    pi = action_parser("install", "install patches", patch)
    pi.add_argument("--classification", action="append", default=[], choices=CLASSIFICATIONS,
                    help="repeatable (default Critical and Security)")
    pi.add_argument("--include-kb", action="append", default=[], metavar="KB")
    pi.add_argument("--exclude-kb", action="append", default=[], metavar="KB")
    pi.add_argument("--reboot", choices=REBOOT_SETTINGS, default="IfRequired")
    pi.add_argument("--max-duration", default="PT2H", metavar="ISO8601", help="e.g. PT2H (default)")

    tags = sub.add_parser("tags", help="add, change or remove tags").add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in ("add", "change", "remove"):
        t = action_parser(verb, f"{verb} tags", tags)
        t.add_argument("tags", nargs="+", metavar="NAME=VALUE" if verb != "remove" else "NAME[=VALUE]")

    power = sub.add_parser("power", help="start, stop, restart or deallocate VMs").add_subparsers(
        dest="verb", metavar="VERB", required=True)
    for verb in ("start", "stop", "restart", "deallocate"):
        action_parser(verb, f"{verb} VMs", power)

    ident = sub.add_parser("identity", help="managed identity").add_subparsers(dest="verb", metavar="VERB", required=True)
    action_parser("enable", "enable a system-assigned managed identity on VMs", ident)

    monitor = sub.add_parser("monitor", help="associate or remove a data collection rule").add_subparsers(
        dest="verb", metavar="VERB", required=True)
    for verb, help_ in (("associate-dcr", "associate a data collection rule (with the agent, Monitor turns on)"),
                        ("remove-dcr", "remove a data collection rule association")):
        m = action_parser(verb, help_, monitor)
        m.add_argument("--rule", required=True, metavar="ID", help="the data collection rule's resource id")

    jobs = sub.add_parser("jobs", help="list, show, resume or retry jobs from the journal").add_subparsers(
        dest="verb", metavar="VERB", required=True)
    jobs.add_parser("list", help="every job in the journal, unfinished ones marked")
    js = jobs.add_parser("show", help="one job: every target's state, and Run Command outputs grouped")
    js.add_argument("job")
    for verb, help_ in (("resume", "drive an interrupted job to its end (sends nothing already accepted)"),
                        ("retry", "send again to the targets that failed, were cancelled or ended in doubt")):
        j = jobs.add_parser(verb, help=help_)
        j.add_argument("job")
        j.add_argument("--protected-parameter", action="append", default=[], metavar="NAME",
                       help="Run Command protected parameters (never stored; default: the job's names): "
                            "$WSAM_PARAM_<NAME> or a prompt")
        j.add_argument("--protected-settings-file", metavar="PATH")
        j.add_argument("--readonly", action="store_true")
        add_connection_options(j)


_EXITS = "Exit codes: 0 all succeeded; 1 nothing sent; 2 usage; 3 some failed; 4 no server matched; 5 cannot connect"


def is_headless(args: argparse.Namespace) -> bool:
    return getattr(args, "command", None) in COMMANDS


def main(args: argparse.Namespace) -> int:
    from ..arm.auth import quiet_azure_logging

    quiet_azure_logging()
    try:
        if args.command == "jobs" and args.verb in ("list", "show"):
            return show_jobs(args, sys.stdout)
        return asyncio.run(_jobs_drive(args) if args.command == "jobs" else _run_action(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("wsam-tui: interrupted; `wsam-tui jobs list` shows what is unfinished", file=sys.stderr)
        return EXIT_FAILED


# ---- parameters from arguments -----------------------------------------------------------------------


def action_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(action id, parameters incl. secrets) from the parsed arguments. Raises ActionError."""
    cmd, verb = args.command, getattr(args, "verb", "")
    if cmd == "run-command":
        script = args.script
        if args.script_file:
            try:
                script = Path(args.script_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise ActionError(f"cannot read {args.script_file}: {e}") from e
        return "run-command", {"script": script, "parameters": args.parameter, "timeout": args.timeout,
                               "protected_parameters": protected_values(args.protected_parameter)}
    if cmd == "extension":
        params: dict[str, Any] = {"extension": args.extension}
        if verb != "remove" and args.version:
            params["version"] = args.version
        if verb == "install":
            if args.settings:
                try:
                    params["settings"] = json.loads(args.settings)
                except ValueError as e:
                    raise ActionError(f"--settings is not JSON: {e}") from e
            params["protected_settings"] = protected_file(args.protected_settings_file)
        return f"extension.{verb}", params
    if cmd == "patch":
        if verb == "assess":
            return "patch.assess", {}
        return "patch.install", {"classifications": args.classification or None, "kb_include": args.include_kb,
                                 "kb_exclude": args.exclude_kb, "reboot": args.reboot, "max_duration": args.max_duration}
    if cmd == "tags":
        return f"tags.{verb}", {"tags": args.tags}
    if cmd == "power":
        return f"power.{verb}", {}
    if cmd == "identity":
        return "identity.enable", {}
    if cmd == "monitor":
        return f"monitor.{verb}", {"rule": args.rule}
    raise ActionError(f"unknown command {cmd}")


def protected_values(names: list[str]) -> dict[str, str]:
    """NAME → value from $WSAM_PARAM_<NAME>, else a prompt without echo (never from the command line)."""
    out = {}
    for name in names:
        if "=" in name:
            raise ActionError("protected values are never taken from the command line (other users can read it); "
                              f"set WSAM_PARAM_{name.split('=', 1)[0]} or answer the prompt")
        value = os.environ.get(f"WSAM_PARAM_{name}")
        if value is None:
            if not sys.stdin.isatty():
                raise ActionError(f"protected parameter {name}: set WSAM_PARAM_{name}")
            value = getpass.getpass(f"{name} (not echoed, never stored): ")
        out[name] = value
    return out


def protected_file(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ActionError(f"cannot read protected settings from {path}: {e}") from e
    if not isinstance(value, dict):
        raise ActionError(f"{path}: protected settings must be a JSON object")
    return value


# ---- the plan on stdout -------------------------------------------------------------------------------


def print_plan(p: Plan, out: TextIO) -> None:
    print(f"Plan {p.id}: {p.title}", file=out)
    print(f"  {len(p.targets)} target(s), {len(p.skipped)} skipped", file=out)
    for t in p.targets[:SHOWN_TARGETS]:
        flag = "  [protected subscription]" if t.protected else ""
        print(f"  {t.target.name}: {t.call.method} {t.call.path}?api-version={t.call.api_version}{flag}", file=out)
    if len(p.targets) > SHOWN_TARGETS:
        print(f"  … and {len(p.targets) - SHOWN_TARGETS} more", file=out)
    for title, text in p.blocks:
        print(f"  {title}:", file=out)
        for line in text.splitlines():
            print(f"    | {clean_text(line.expandtabs(4))}", file=out)
    if p.targets and p.targets[0].call.body is not None:
        print("  body: " + json.dumps(p.targets[0].call.body, ensure_ascii=False)[:2000], file=out)
    for reason, group in p.skipped_by_reason().items():
        names = ", ".join(s.target.name for s in group[:SHOWN_TARGETS])
        more = f" … and {len(group) - SHOWN_TARGETS} more" if len(group) > SHOWN_TARGETS else ""
        print(f"  skipped ({len(group)}): {reason}: {names}{more}", file=out)
    if p.targets:
        print("  equivalent az command(s):", file=out)
        for cmd in p.az_commands[:SHOWN_TARGETS]:
            print(f"    {cmd}", file=out)
        if len(p.targets) > SHOWN_TARGETS:
            print(f"    … and {len(p.targets) - SHOWN_TARGETS} more", file=out)
    for note in p.notes:
        print(f"  note: {note}", file=out)
    out.flush()


def confirmed(p: Plan, yes: bool, count: str | None = None) -> bool:
    if yes:
        if any(t.protected for t in p.targets) and not p.confirmed_by(count or ""):
            print(f"wsam-tui: nothing sent; targets in a protected subscription: add --confirm {p.confirm_text}",
                  file=sys.stderr)
            return False
        return True
    if not sys.stdin.isatty():
        print("wsam-tui: nothing sent; add --yes to proceed", file=sys.stderr)
        return False
    if p.confirm_required:
        answer = input(f"Type {p.confirm_text} to act on {p.confirm_text} servers: ")
    else:
        answer = "y" if input(f"Proceed on {len(p.targets)} server(s)? [y/N] ").strip().lower() in ("y", "yes") else ""
        answer = p.confirm_text if answer else ""
    return p.confirmed_by(answer)


class Progress:
    """Per-target ends on stderr; a running count too when stderr is a terminal."""

    def __init__(self, total: int, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.total, self.tty = total, self.out.isatty()
        self.ended = 0
        self.states: dict[str, str] = {}

    def __call__(self, e: JobEvent) -> None:
        self.states[e.target_id] = e.state
        if e.state in ("succeeded", "failed", "cancelled", "in-doubt"):
            self.ended += 1
            detail = f" {e.code}: {e.message}" if e.code else ""
            clear = "\r\x1b[K" if self.tty else ""
            print(f"{clear}[{self.ended}/{self.total}] {e.target_name}: {e.state}{detail}", file=self.out, flush=True)
        elif self.tty:
            waiting = sum(1 for s in self.states.values() if s == "waiting-for-throttle")
            running = sum(1 for s in self.states.values() if s == "running")
            print(f"\r\x1b[K{self.ended}/{self.total} done, {running} running, {waiting} waiting for the write budget",
                  end="", file=self.out, flush=True)


def print_job(job: JobRecord, out: TextIO, *, targets: bool = True) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(job.counts().items()))
    status = "unfinished" if job.unfinished else "finished"
    print(f"Job {job.id}: {job.title} [{job.action}] by {job.principal}, created {job.created}: {counts} ({status})",
          file=out)
    if job.endpoint:
        print(f"  against {job.endpoint} (resumed and retried only through it)", file=out)
    for p in job.problems:
        print(f"  journal: {p}", file=out)
    if targets:
        for t in job.targets.values():
            detail = f" {t.code}: {t.message}" if t.code else (f" {t.message}" if t.message else "")
            ids = f" (request {t.request_id})" if t.request_id else ""
            print(f"  {t.target.name}: {t.state}{detail}{ids}", file=out)
        for target, reason in job.skipped:
            print(f"  {target.name}: skipped: {reason}", file=out)
    from .engine import group_outputs

    for g in group_outputs(job):
        cut = " [output truncated at 4,096 bytes]" if g.truncated else ""
        print(f"  {g.count} server(s), exit code {g.exit_code}{cut}: {', '.join(g.targets[:SHOWN_TARGETS])}"
              + (" …" if g.count > SHOWN_TARGETS else ""), file=out)
        for line in (g.stdout or "(no output)").splitlines()[:40]:
            print(f"    | {line}", file=out)
        for line in g.stderr.splitlines()[:20]:
            print(f"    ! {line}", file=out)
    out.flush()


def journal_of(args: argparse.Namespace) -> Journal:
    """The journal of this run: the demo's with --demo (commands.run_subcommand sets it), else the user's."""
    return Journal(getattr(args, "journal_dir", None))


def show_jobs(args: argparse.Namespace, out: TextIO) -> int:
    journal = journal_of(args)
    if args.verb == "list":
        any_job = False
        for job in journal.jobs():
            any_job = True
            busy = " (running in another process)" if job.unfinished and journal.busy(job.id) else ""
            print_job(job, out, targets=False)
            if busy:
                print(f"  {busy.strip()}", file=out)
        if not any_job:
            print("no jobs in the journal", file=out)
        return EXIT_OK
    try:
        job = journal.load(args.job)
    except (OSError, ValueError) as e:
        print(f"wsam-tui jobs: {e}", file=sys.stderr)
        return EXIT_USAGE
    print_job(job, out)
    return EXIT_OK


# ---- running ------------------------------------------------------------------------------------------


async def _connect(args: argparse.Namespace):
    from ..arm.auth import CredentialError, EndpointError
    from ..inventory import ConnectOptions, connect

    try:
        return await connect(ConnectOptions(endpoint=args.endpoint, ca_bundle=args.ca_bundle, cloud=args.cloud,
                                            auth=args.auth, tenant=args.tenant))
    except (EndpointError, CredentialError, ValueError, OSError) as e:
        print(f"wsam-tui {args.command}: {e}", file=sys.stderr)
        return None


def _engine(conn, args: argparse.Namespace, readonly: bool, total: int):
    from .engine import Engine

    return Engine(conn.transport, journal=journal_of(args), readonly=readonly,
                  concurrency=max(1, getattr(args, "concurrency", 32)), on_event=Progress(total))


def _exit_for(job: JobRecord) -> int:
    states = {t.state for t in job.targets.values()}
    return EXIT_OK if states <= {"succeeded", "skipped"} else EXIT_FAILED


async def _choose(args: argparse.Namespace, conn, settings) -> tuple[list, Mapping[str, str]] | int:
    from ..arm.transport import ArmHttpError
    from ..fleet.query import FleetIndex, QueryError, parse_query
    from ..inventory import Inventory
    from ..store.cache import Store, default_store_dir

    store = Store(args.cache_dir or default_store_dir())
    try:
        inventory = Inventory(store, required_tags=tuple(args.required_tag) or settings.required_tags,
                              stale_after_days=settings.stale_after_days)
        if not args.offline:
            try:
                report = await inventory.refresh(conn, args.subscription, graph=not args.no_graph)
            except ArmHttpError as e:
                print(f"wsam-tui {args.command}: cannot list servers: {e.describe()}", file=sys.stderr)
                return EXIT_CONNECT
            failed: dict[str, list[tuple[str, str]]] = {}
            for sub, source, message in report.failures:
                failed.setdefault(sub, []).append((source, message))
            for sub, items in failed.items():  # one line per subscription: its servers cannot be targeted
                print(f"wsam-tui {args.command}: subscription {sub}: {len(items)} source(s) not read "
                      f"({items[0][0]}: {items[0][1]})", file=sys.stderr)
        snapshot = inventory.load(args.subscription)
    finally:
        store.close()
    names = {str(s.get("subscriptionId", "")): str(s.get("displayName") or "") for s in snapshot.subscriptions}
    try:
        query = parse_query(args.filter or "", subscriptions=names)
    except QueryError as e:
        print(f"wsam-tui {args.command}: --filter: {e}", file=sys.stderr)
        return EXIT_USAGE
    index = FleetIndex(snapshot.servers, names)
    return [snapshot.servers[i] for i in index.filter(query)], names


async def _run_action(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from .plan import plan, secrets_for

    settings = load_settings()
    readonly = args.readonly or settings.readonly
    if not args.filter and not args.all:
        print(f"wsam-tui {args.command}: choose servers with --filter QUERY, or --all", file=sys.stderr)
        return EXIT_USAGE
    try:
        action_id, params = action_request(args)
        ACTIONS[action_id].validate({**params, "run_name": "check"})  # bad parameters fail before connecting
    except ActionError as e:
        print(f"wsam-tui {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    conn = await _connect(args)
    if conn is None:
        return EXIT_CONNECT
    try:
        chosen = await _choose(args, conn, settings)
        if isinstance(chosen, int):
            return chosen
        servers, names = chosen
        if not servers:
            print(f"wsam-tui {args.command}: no server matches", file=sys.stderr)
            return EXIT_NO_TARGETS
        try:
            p = plan(action_id, params, servers, readonly=readonly, protected_subscriptions=settings.protected_subscriptions,
                     subscription_names=names)
        except ActionError as e:
            print(f"wsam-tui {args.command}: {e}", file=sys.stderr)
            return EXIT_USAGE
        print_plan(p, sys.stdout)
        if readonly:
            print("wsam-tui: read-only: nothing sent", file=sys.stderr)
            return EXIT_NOT_SENT
        if not p.targets:
            print("wsam-tui: nothing to do", file=sys.stderr)
            return EXIT_OK
        if not confirmed(p, args.yes, args.confirm):
            return EXIT_NOT_SENT
        engine = _engine(conn, args, readonly, len(p.targets))
        with interrupt_cancels(engine, p.id):
            job = await engine.run(p, secrets=secrets_for(action_id, params))
        print_job(job, sys.stdout, targets=False)
        return _exit_for(job)
    finally:
        await conn.close()


@contextlib.contextmanager
def interrupt_cancels(engine, job_id: str):
    """The first Ctrl-C (or SIGTERM) cancels the job: nothing more is sent, what was sent is followed to its
    end. A second one leaves at once; the journal keeps the job for `wsam-tui jobs resume`."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def stop() -> None:
        if engine.cancel(job_id):
            print("\nwsam-tui: cancelling: nothing more is sent; waiting for what was sent "
                  "(again to leave now; `wsam-tui jobs resume` picks it up)", file=sys.stderr, flush=True)
        elif task is not None:
            task.cancel()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(sig, stop)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _jobs_drive(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from .engine import ForeignJobError
    from .gate import ReadOnlyError
    from .journal import JobBusyError

    journal = journal_of(args)
    try:
        job = journal.load(args.job)
    except (OSError, ValueError) as e:
        print(f"wsam-tui jobs: {e}", file=sys.stderr)
        return EXIT_USAGE
    secrets: dict[str, Any] = {}
    try:
        if "protected_parameters" in job.secret_names:
            names = args.protected_parameter or [str(n) for n in job.params.get("protected_parameters") or []]
            secrets["protected_parameters"] = protected_values(names)
        if "protected_settings" in job.secret_names:
            secrets["protected_settings"] = protected_file(args.protected_settings_file)
    except ActionError as e:
        print(f"wsam-tui jobs: {e}", file=sys.stderr)
        return EXIT_USAGE
    conn = await _connect(args)
    if conn is None:
        return EXIT_CONNECT
    try:
        engine = _engine(conn, args, args.readonly or load_settings().readonly, len(job.targets))
        run = engine.resume if args.verb == "resume" else engine.retry_failed
        with interrupt_cancels(engine, job.id):
            job = await run(job.id, secrets={k: v for k, v in secrets.items() if v})
    except (JobBusyError, ReadOnlyError, ForeignJobError) as e:
        print(f"wsam-tui jobs: {clean_text(e)}", file=sys.stderr)
        return EXIT_NOT_SENT
    finally:
        await conn.close()
    print_job(job, sys.stdout, targets=False)
    return _exit_for(job)
