"""Teachers' class tools: a class is a JupyterHub group (made on the admin page, Groups).

    docker compose exec hub python -m aihub.classes list
    docker compose exec hub python -m aihub.classes start CLASS    # before the lesson
    docker compose exec hub python -m aihub.classes stop CLASS     # after it

`start` starts every member's server at once; the hub starts them in turns
(SPAWN_CONCURRENCY at a time) and this shows how many are ready as they come up, then
any that failed and why. Students who arrive then find their server running. `stop`
stops the class's servers (their files stay). Other classes are never touched.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from . import secrets
from .auth import REHEARSAL_GROUP
from .hubapi import HubClient


class NoSuchClass(Exception):
    pass


async def members(hub: HubClient, group: str) -> list[str]:
    found = await hub.group(group)
    if found is None:
        raise NoSuchClass(f"no class (group) named {group!r}; make it on the admin page (Groups), "
                          "or see them all with: python -m aihub.classes list")
    return sorted(found["users"])


async def list_classes(hub: HubClient) -> int:
    running = {user["name"] for user in await hub.users() if user.get("servers")}
    groups = [group for group in await hub.groups() if group["name"] != REHEARSAL_GROUP]
    if not groups:
        print("no classes yet: make a group on the admin page (Groups) and add its students")
    for group in sorted(groups, key=lambda group: group["name"]):
        names = group["users"]
        print(f"{group['name']:<24} {len(names)} students  {len(running.intersection(names))} running")
    return 0


async def start_class(hub: HubClient, group: str) -> int:
    names = await members(hub, group)
    started = time.monotonic()
    spawns = await hub.start_many(names, what=f"starting class {group}")
    ready = [spawn for spawn in spawns if not spawn.error]
    print(f"{len(ready)} of {len(names)} servers ready in {time.monotonic() - started:.0f} s")
    for spawn in spawns:
        if spawn.error:
            print(f"  FAILED {spawn.name}: {spawn.error}")
    return 0 if len(ready) == len(names) else 1


async def stop_class(hub: HubClient, group: str) -> int:
    names = await members(hub, group)
    running = [user["name"] for user in await hub.users() if user["name"] in names and user.get("servers")]
    started = time.monotonic()
    await hub.stop_many(running)
    print(f"stopped {len(running)} servers of class {group} in {time.monotonic() - started:.0f} s (files kept)")
    return 0


async def run(args: argparse.Namespace) -> int:
    hub = HubClient(secrets.read_or_exit()["CLASS_TOOLS_API_TOKEN"])
    try:
        if args.command == "list":
            return await list_classes(hub)
        if args.command == "start":
            return await start_class(hub, args.group)
        return await stop_class(hub, args.group)
    except NoSuchClass as error:
        print(f"aihub: {error}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aihub.classes", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every class, its students and how many servers run")
    for command, help in (("start", "start every server of a class, in turns, with progress"),
                          ("stop", "stop every server of a class (files stay)")):
        commands.add_parser(command, help=help).add_argument("group", help="the class: a group's name")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
