"""Admins' student tools: who has an account, where their files are, and removing one.

    docker compose exec hub python -m aihub.students list
    docker compose exec hub python -m aihub.students delete NAME [--ledger] [--yes]

`list` shows every account and sign-up with its state, its server, and the Docker volume
that holds its home folder with the volume's size. Volume names are escaped for Docker
(li-lei: aihub-user-li-2dlei), so this is where to find them; files left by an account
deleted on the admin page are listed too, under the name they belonged to.

`delete` removes a student completely: their server and its container, their files
(the volume), their hub account and their sign-up, so the name can sign up again; with
--ledger also their rows in the AI usage ledger and their budget override. It asks for
the name to be typed again, or takes --yes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

import docker
from nativeauthenticator.orm import UserInfo

from . import secrets, settings as settings_module
from .database import in_transaction, remove_ledger_rows
from .hubapi import HubClient, HubError
from .labels import student_filter
from .progress import size_text
from .spawner import home_volume, home_volume_prefix, volume_owner

SIGN_UPS = UserInfo.__tablename__


class StudentError(Exception):
    """A request the tool refuses; str() is the one line to show."""


@dataclass
class Student:
    name: str
    account: str          # what the hub and the sign-up say about them
    server: str           # running, stopped, or - (no account)
    volume: str
    size: int | None      # bytes; None: no volume

    @property
    def size_text(self) -> str:
        return "no volume yet" if self.size is None else size_text(self.size)


def account_state(user: dict | None, signed_up: bool | None) -> str:
    """`user`: the hub's account (None: none); `signed_up`: None without a sign-up,
    else whether it is approved."""
    if user is not None and user.get("admin"):
        return "admin"
    if user is None:
        return {None: "no account (files only)", False: "waiting for approval", True: "approved"}[signed_up]
    return {None: "added by an admin, not signed up yet", False: "not approved", True: "approved"}[signed_up]


def students(project: str, users: list[dict], sign_ups: dict[str, bool], volumes: dict[str, int]) -> list[Student]:
    """Everyone with an account, a sign-up or a volume; `volumes`: name -> bytes."""
    accounts = {user["name"]: user for user in users}
    owners = {volume_owner(project, volume) for volume in volumes if volume.startswith(home_volume_prefix(project))}
    found = []
    for name in sorted(set(accounts) | set(sign_ups) | owners):
        user = accounts.get(name)
        volume = home_volume(project, name)
        server = "-" if user is None else ("running" if user.get("servers") else "stopped")
        found.append(Student(name, account_state(user, sign_ups.get(name)), server, volume, volumes.get(volume)))
    return found


class Tools:
    def __init__(self, settings, secret: dict[str, str], hub: HubClient | None = None, engine=None):
        self.settings = settings
        self.secret = secret
        self.project = settings.compose_project_name
        self.hub = hub or HubClient(secret["CLASS_TOOLS_API_TOKEN"])
        self.docker = engine or docker.from_env()

    def database(self, work):
        return in_transaction(self.settings, self.secret["POSTGRES_PASSWORD"], work)

    def sign_ups(self) -> dict[str, bool]:
        def read(cursor):
            cursor.execute(f"SELECT username, is_authorized FROM {SIGN_UPS}")
            return dict(cursor.fetchall())
        return self.database(read)

    def volumes(self) -> dict[str, int]:
        """The stack's student volumes and their sizes (what `docker system df -v` shows)."""
        prefix = home_volume_prefix(self.project)
        return {volume["Name"]: max(volume.get("UsageData", {}).get("Size", 0), 0)
                for volume in self.docker.df().get("Volumes") or [] if volume["Name"].startswith(prefix)}

    async def students(self) -> list[Student]:
        return students(self.project, await self.hub.users(), self.sign_ups(), self.volumes())

    async def list(self) -> int:
        found = await self.students()
        if not found:
            print("no students yet: they sign up at /hub/signup")
            return 0
        width = max(len(student.name) for student in found) + 2
        volume_width = max(len(student.volume) for student in found) + 2
        print(f"{'name':<{width}}{'account':<38}{'server':<9}{'volume':<{volume_width}}size")
        for student in found:
            print(f"{student.name:<{width}}{student.account:<38}{student.server:<9}"
                  f"{student.volume:<{volume_width}}{student.size_text}")
        return 0

    async def find(self, name: str) -> Student:
        for student in await self.students():
            if student.name == name:
                if student.account == "admin":
                    raise StudentError(f"{name} is an admin; take the admin rights away on the admin page first")
                return student
        raise StudentError(f"no student named {name!r} (no account, sign-up or files); "
                           "see them all with: python -m aihub.students list")

    def ledger_rows(self, name: str) -> int:
        def count(cursor):
            cursor.execute("SELECT to_regclass('ai_usage') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return 0
            cursor.execute("SELECT count(*) FROM ai_usage WHERE username = %s", (name,))
            return cursor.fetchone()[0]
        return self.database(count)

    async def delete(self, name: str, ledger: bool, confirmed: bool) -> int:
        student = await self.find(name)
        what = [f"account ({student.account})", f"server ({student.server})",
                f"files (volume {student.volume}, {student.size_text})"]
        if ledger:
            what.append(f"{self.ledger_rows(name)} AI usage ledger rows and any budget override")
        print(f"deleting {name}: " + "; ".join(what))
        if not confirmed and not confirm(name):
            print("nothing deleted")
            return 1
        if student.server == "running":
            await self.hub.stop_server(name)
            print("  server stopped")
        if student.server != "-":
            await self.hub.delete_user(name)
            print("  hub account deleted")
        self.database(lambda cursor: cursor.execute(f"DELETE FROM {SIGN_UPS} WHERE username = %s", (name,)))
        print("  sign-up deleted: the name can sign up again")
        self.remove_files(student.volume)
        if ledger:
            removed = self.database(lambda cursor: remove_ledger_rows(cursor, [name]))
            print(f"  {removed} ledger rows deleted")
        print(f"deleted {name}")
        return 0

    def remove_files(self, volume: str) -> None:
        """Remove the student's containers (a stopped server's is normally gone already),
        then their volume."""
        containers = self.docker.containers.list(all=True, filters={**student_filter(self.project), "volume": volume})
        for container in containers:
            container.remove(force=True)
        if containers:
            print(f"  {len(containers)} container(s) removed")
        try:
            self.docker.volumes.get(volume).remove()
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as error:
            raise StudentError(f"could not remove the volume {volume}: {error.explanation}") from None
        print(f"  volume {volume} removed")


def confirm(name: str) -> bool:
    """The admin types the name again; without a terminal, --yes is needed."""
    if not sys.stdin.isatty():
        raise StudentError(f"deleting {name} cannot be undone: add --yes to confirm")
    try:
        return input(f"type {name} to delete it for good: ").strip() == name
    except EOFError:
        return False


async def run(args: argparse.Namespace) -> int:
    tools = Tools(settings_module.load_or_exit(), secrets.read_or_exit())
    try:
        if args.command == "list":
            return await tools.list()
        return await tools.delete(args.name, args.ledger, args.yes)
    except (StudentError, HubError) as error:
        print(f"aihub: {error}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aihub.students", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every student: account, server, volume and its size")
    delete = commands.add_parser("delete", help="delete a student: server, container, files, account and sign-up")
    delete.add_argument("name", help="the student's user name, as `list` shows it")
    delete.add_argument("--ledger", action="store_true", help="also delete their AI usage ledger rows")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
