"""`protomesh deadletters list|show ID|replay ID|replay --all|purge`: look at and recover dead letters."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from chassis.db import safe_url
from chassis.events.deadletters import DeadLetters, StoredDeadLetter
from chassis.events.envelope import InvalidEvent, open_envelope
from chassis.events.streams import nats_servers
from chassis.paths import RUN_DIR

STATE_FILE = "mesh.json"


def add_commands(subparsers: Any) -> None:
    """Register `deadletters` on the protomesh command's subparsers (argparse's add_subparsers() result)."""
    parser = subparsers.add_parser("deadletters", help="list, show, replay or purge dead-lettered events and tasks",
                                   description="Dead letters live in the DEAD_LETTERS stream; ids are its "
                                               "sequence numbers.")
    parser.add_argument("--nats-url", default=None,
                        help="NATS server (default: $NATS_URL, else the running local mesh's NATS)")
    actions = parser.add_subparsers(dest="deadletters_action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="one line per dead letter, oldest first")
    listing.add_argument("--consumer", help="only this consumer's dead letters")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    listing.set_defaults(func=_command(_list))

    show = actions.add_parser("show", help="everything about one dead letter, with its decoded event")
    show.add_argument("id", type=int)
    show.set_defaults(func=_command(_show))

    replay = actions.add_parser("replay", help="publish dead letters to their original subject again")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("id", type=int, nargs="?", help="the dead letter to replay")
    which.add_argument("--all", action="store_true", help="replay every dead letter (or --consumer's)")
    replay.add_argument("--consumer", help="with --all: only this consumer's dead letters")
    replay.add_argument("--keep", action="store_true", help="keep the dead letters after replaying them")
    replay.set_defaults(func=_command(_replay))

    purge = actions.add_parser("purge", help="delete every dead letter (or --consumer's)")
    purge.add_argument("--consumer", help="only this consumer's dead letters")
    purge.set_defaults(func=_command(_purge))


def nats_url(explicit: str | None, state_dir: Path | None = None) -> str:
    """--nats-url, else $NATS_URL, else nats_url from the running local mesh's state file."""
    if explicit:
        return explicit
    if os.environ.get("NATS_URL"):
        return os.environ["NATS_URL"]
    path = (state_dir or Path(os.environ.get("PROTOMESH_STATE_DIR", RUN_DIR))) / STATE_FILE
    try:
        url = json.loads(path.read_text()).get("nats_url")
    except (OSError, ValueError):
        url = None
    if not url:
        raise SystemExit(f"no NATS to talk to: pass --nats-url, set NATS_URL, or start the mesh (no {path})")
    return str(url)


def _command(action: Callable[[DeadLetters, argparse.Namespace], Awaitable[int]]) -> Callable[[argparse.Namespace],
                                                                                              int]:
    def run(args: argparse.Namespace) -> int:
        url = nats_url(args.nats_url, getattr(args, "state_dir", None))

        async def main() -> int:
            try:
                # A NATS cluster's URL lists its nodes comma-separated, each with the user (nats_servers).
                nc = await nats.connect(nats_servers(url), connect_timeout=3, max_reconnect_attempts=2,
                                        name="protomesh-cli")
            except Exception as exc:
                print(f"error: cannot connect to NATS at {safe_url(url)}: {exc}", file=sys.stderr)
                return 1
            try:
                return await action(DeadLetters(nc.jetstream()), args)
            except KeyError as exc:
                print(f"error: {exc.args[0]}", file=sys.stderr)
                return 1
            finally:
                await nc.close()

        return asyncio.run(main())

    return run


def describe(stored: StoredDeadLetter) -> dict[str, Any]:
    """A dead letter as JSON-ready data, with the original event decoded when it is valid."""
    record = json_format.MessageToDict(stored.record, preserving_proto_field_name=True)
    record.pop("data", None)
    result: dict[str, Any] = {"id": stored.id, **record}
    try:
        event, envelope = open_envelope(stored.record.data)
        result["envelope"] = json_format.MessageToDict(envelope, preserving_proto_field_name=True)
        result["envelope"]["data"] = json_format.MessageToDict(event, preserving_proto_field_name=True)
    except (InvalidEvent, DecodeError) as exc:
        result["envelope_error"] = str(exc)
        result["data_hex"] = stored.record.data[:512].hex()
    return result


async def _list(dl: DeadLetters, args: argparse.Namespace) -> int:
    found = await dl.list(args.consumer)
    if args.json:
        for stored in found:
            print(json.dumps(stored.summary()))
        return 0
    if not found:
        print("no dead letters")
        return 0
    print(f"{'ID':>6}  {'CONSUMER':<24} {'REASON':<34} {'TRIES':>5}  {'TYPE':<40} ERROR")
    for stored in found:
        s = stored.summary()
        print(f"{s['id']:>6}  {s['consumer']!s:<24} {s['reason']!s:<34} {s['deliveries']!s:>5}  "
              f"{s['event_type']!s:<40} {str(s['error'])[:80]}")
    return 0


async def _show(dl: DeadLetters, args: argparse.Namespace) -> int:
    print(json.dumps(describe(await dl.show(args.id)), indent=2))
    return 0


async def _replay(dl: DeadLetters, args: argparse.Namespace) -> int:
    if args.all:
        replayed = await dl.replay_all(args.consumer, keep=args.keep)
    else:
        replayed = [await dl.replay(args.id, keep=args.keep)]
    for stored in replayed:
        print(f"replayed {stored.id} ({stored.record.event_type or 'unreadable'} {stored.record.event_id}) "
              f"to {stored.record.original_subject}")
    print(f"{len(replayed)} replayed")
    return 0


async def _purge(dl: DeadLetters, args: argparse.Namespace) -> int:
    print(f"{await dl.purge(args.consumer)} dead letters purged")
    return 0
