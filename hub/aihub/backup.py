"""Back up a class, and restore it into a fresh stack: one archive, one command each.

    docker compose run --rm -T backup create > class.tar
    docker compose run --rm -T backup restore < class.tar

(the `backup` service of docker-compose.yml: this module in the hub's image, with the
Docker socket, the secrets volume and the database network). The archive holds:

    aihub-backup.json          what is in it: format, stack, students' volumes
    secrets/...                the secrets volume (passwords, tokens, cookie secret)
    database.dump              pg_dump of the hub's database, taken in one transaction
                               (accounts, servers, tokens, the AI usage ledger)
    volumes/VOLUME/...         each student's home folder, owners and modes kept

Everything is read through the stack's own services and image: pg_dump runs in the
`postgres` container (its own version), volumes are read and written through an
unstarted container of this image. Nothing is pulled.

`restore` is for a fresh stack (after `docker compose down -v`, or on a new machine):
compose starts `secrets` and `postgres` for it, then it refuses a database that already
holds the hub's tables or a student volume that already exists, so it never mixes two
classes. It puts the secrets back (values set in .env still win, as at every start),
restores the database and sets the database password to the restored secret, then
each student's volume, renamed for this stack's COMPOSE_PROJECT_NAME. `docker compose
up -d --wait` then starts the class where it was.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import sys
import tarfile
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import docker
import psycopg2

from . import secrets, settings as settings_module
from .database import in_transaction
from .labels import PROJECT_LABEL, ROLE_LABEL, compose_service_filter
from .progress import size_text
from .spawner import home_volume, home_volume_prefix, volume_owner

FORMAT = "aihub-backup"
VERSION = 1
MANIFEST = "aihub-backup.json"
SECRETS = "secrets/"
DATABASE = "database.dump"
VOLUMES = "volumes/"
# The compose service holding the hub's database (docker-compose.yml).
POSTGRES_SERVICE = "postgres"
# Where the helper container mounts a student's volume, and how it is labelled.
MOUNT = "volume"
BACKUP_HELPER = "backup-helper"
CHUNK = 1 << 20


def volumes_text(count: int) -> str:
    return f"{count} student volume{'' if count == 1 else 's'}"


class BackupError(Exception):
    """Why a backup or restore cannot go on; str() is the one line to show."""


def say(line: str) -> None:
    """Progress goes to stderr: stdout is the archive."""
    print(line, file=sys.stderr, flush=True)


class Meter:
    """Bytes of one long step, told every few seconds, then in one closing line."""

    def __init__(self, what: str, every: float = 5.0):
        self.what, self.every = what, every
        self.bytes = 0
        self.started = self.told = time.monotonic()

    def add(self, count: int) -> None:
        self.bytes += count
        now = time.monotonic()
        if now - self.told >= self.every:
            self.told = now
            say(f"  {self.what}: {size_text(self.bytes)} so far ({now - self.started:.0f} s)")

    def done(self) -> None:
        say(f"  {self.what}: {size_text(self.bytes)} in {time.monotonic() - self.started:.0f} s")


class ChunkReader(io.RawIOBase):
    """A file over an iterator of byte chunks (a Docker archive as it arrives), counted."""

    def __init__(self, chunks, meter: Meter):
        self.chunks, self.meter = iter(chunks), meter
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.pending = chunk
            self.meter.add(len(chunk))
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count


class ArchiveUpload:
    """A tar archive written member by member and extracted into a container as it is
    written (Docker's put_archive, fed through a pipe), so no volume is held in memory
    or on disk twice."""

    def __init__(self, container, path: str):
        self.container, self.path = container, path
        self.error: Exception | None = None
        read_end, write_end = os.pipe()
        self.reader, self.writer = os.fdopen(read_end, "rb"), os.fdopen(write_end, "wb")
        self.tar = tarfile.open(fileobj=self.writer, mode="w|", format=tarfile.PAX_FORMAT)
        self.thread = threading.Thread(target=self._upload, daemon=True)
        self.thread.start()

    def _upload(self) -> None:
        try:
            if not self.container.put_archive(self.path, iter(lambda: self.reader.read(CHUNK), b"")):
                self.error = BackupError(f"Docker refused to write into {self.path}")
        except Exception as error:  # reported by close(), in the main thread
            self.error = error
        finally:
            self.reader.close()  # a failed upload unblocks the writer

    def add(self, member: tarfile.TarInfo, content=None) -> None:
        try:
            self.tar.addfile(member, content)
        except BrokenPipeError:
            self.close()

    def close(self) -> None:
        try:
            self.tar.close()
            self.writer.close()
        except BrokenPipeError:
            pass
        self.thread.join()
        if self.error:
            detail = getattr(self.error, "explanation", None) or self.error
            raise BackupError(f"could not write into {self.path}: {detail}")


class VolumeUpload(ArchiveUpload):
    """A new student volume, filled from the archive through an unstarted helper container."""

    def __init__(self, stack: "Stack", volume: str, image: str, what: str):
        stack.docker.volumes.create(volume)
        self.helper = stack.helper(volume, image, read_only=False)
        self.meter = Meter(what)
        super().__init__(self.helper, "/")

    def add(self, member: tarfile.TarInfo, content=None) -> None:
        super().add(member, content)
        self.meter.add(member.size)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.helper.remove(force=True)
        self.meter.done()


def renamed(member: tarfile.TarInfo, old: str, new: str) -> tarfile.TarInfo:
    """`member` moved from under `old` to under `new` (hard links point there too)."""
    member.name = new + member.name[len(old):]
    if member.islnk() and member.linkname.startswith(old):
        member.linkname = new + member.linkname[len(old):]
    # A long name came in a PAX header, which would win over the new name: made anew.
    member.pax_headers = {key: value for key, value in member.pax_headers.items() if key not in ("path", "linkpath")}
    return member


class Stack:
    """The running stack as the backup sees it: its Docker objects and its database."""

    def __init__(self, settings, engine=None):
        self.settings = settings
        self.project = settings.compose_project_name
        self.docker = engine or docker.from_env()

    def image(self) -> str:
        """This container's own image (the hub's): used for the helper containers."""
        try:
            return self.docker.containers.get(socket.gethostname()).image.id
        except docker.errors.NotFound:
            raise BackupError("run this as the stack's backup service: docker compose run --rm -T backup ...") from None

    def postgres(self):
        found = self.docker.containers.list(filters=compose_service_filter(self.project, POSTGRES_SERVICE))
        if not found:
            raise BackupError(f"the {POSTGRES_SERVICE} service of {self.project} is not running; "
                              f"start it: docker compose up -d {POSTGRES_SERVICE}")
        return found[0]

    def student_volumes(self) -> list[str]:
        prefix = home_volume_prefix(self.project)
        return sorted(volume.name for volume in self.docker.volumes.list(filters={"name": prefix})
                      if volume.name.startswith(prefix))

    def helper(self, volume: str, image: str, read_only: bool):
        """An unstarted container with `volume` at /volume: Docker reads and writes a
        volume's files through a container, and this one never runs anything."""
        return self.docker.containers.create(
            image, ["true"], network_mode="none", labels={PROJECT_LABEL: self.project, ROLE_LABEL: BACKUP_HELPER},
            volumes={volume: {"bind": f"/{MOUNT}", "mode": "ro" if read_only else "rw"}})

    def run_in_postgres(self, command: list[str], output=None, meter: Meter | None = None) -> None:
        """Run `command` in the postgres container, its standard output into `output`;
        a failure raises its last line of errors."""
        api = self.docker.api
        execution = api.exec_create(self.postgres().id, command)
        errors = b""
        for out, error in api.exec_start(execution["Id"], stream=True, demux=True):
            if out and output is not None:
                output.write(out)
                meter.add(len(out))
            errors += error or b""
        if api.exec_inspect(execution["Id"])["ExitCode"] != 0:
            lines = errors.decode(errors="replace").strip().splitlines()
            raise BackupError(f"{command[0]} failed: {lines[-1] if lines else 'no output'}")

    def database(self, password: str, work):
        return in_transaction(self.settings, password, work)


# -- create ------------------------------------------------------------------------


def create(stack: Stack, out, secrets_dir: Path) -> None:
    settings = stack.settings
    image = stack.image()
    volumes = stack.student_volumes()
    started = time.monotonic()
    say(f"aihub: backing up {stack.project}: secrets, database, {volumes_text(len(volumes))}")
    archive = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
    manifest = {
        "format": FORMAT, "version": VERSION, "project": stack.project,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "volumes": {volume: volume_owner(stack.project, volume) for volume in volumes},
    }
    add_bytes(archive, MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode())

    names = sorted(path.name for path in secrets_dir.iterdir() if path.is_file() and path.suffix != ".partial")
    for name in names:
        archive.add(secrets_dir / name, arcname=SECRETS + name)
    say(f"  secrets: {len(names)} files")

    meter = Meter("database (pg_dump)")
    with tempfile.TemporaryFile() as dump:
        stack.run_in_postgres(["pg_dump", "--format=custom", "-U", settings.postgres_user, "-d", settings.postgres_db],
                              dump, meter)
        meter.done()
        info = tarfile.TarInfo(DATABASE)
        info.size, info.mtime, info.mode = dump.tell(), int(time.time()), 0o600
        dump.seek(0)
        archive.addfile(info, dump)

    for number, volume in enumerate(volumes, 1):
        meter = Meter(f"[{number}/{len(volumes)}] {volume}")
        helper = stack.helper(volume, image, read_only=True)
        try:
            chunks, _ = helper.get_archive(f"/{MOUNT}")
            files = tarfile.open(fileobj=io.BufferedReader(ChunkReader(chunks, meter), CHUNK), mode="r|")
            for member in files:
                content = files.extractfile(member) if member.isreg() else None
                archive.addfile(renamed(member, MOUNT, VOLUMES + volume), content)
        finally:
            helper.remove(force=True)
        meter.done()
    archive.close()
    out.flush()
    say(f"aihub: backup complete in {time.monotonic() - started:.0f} s")


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    archive.addfile(info, io.BytesIO(data))


# -- restore -----------------------------------------------------------------------


def restore(stack: Stack, source, secrets_dir: Path) -> None:
    settings = stack.settings
    started = time.monotonic()
    archive = tarfile.open(fileobj=source, mode="r|")
    first = archive.next()
    if first is None or first.name != MANIFEST:
        raise BackupError("this is not an aihub backup (no aihub-backup.json at its start)")
    manifest = json.loads(archive.extractfile(first).read())
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BackupError(f"unknown backup format {manifest.get('format')}/{manifest.get('version')}")
    # Students' volumes take this stack's name (COMPOSE_PROJECT_NAME may differ).
    targets = {volume: home_volume(stack.project, owner) for volume, owner in manifest["volumes"].items()}
    fresh_password = secrets.read(secrets_dir)["POSTGRES_PASSWORD"]  # what the new database was made with
    check_fresh(stack, fresh_password, targets.values())
    say(f"aihub: restoring the backup of {manifest['project']} made {manifest['created']} into {stack.project}: "
        f"secrets, database, {volumes_text(len(targets))}")
    image = stack.image()

    restored_secrets, database_done, upload, volume = 0, False, None, None
    for member in archive:
        if member.name.startswith(SECRETS) and member.isreg():
            write_secret(secrets_dir / Path(member.name).name, archive.extractfile(member).read())
            restored_secrets += 1
        elif member.name == DATABASE:
            values = secrets.ensure(settings, secrets_dir)  # .env wins, as at every start
            say(f"  secrets: {restored_secrets} files")
            restore_database(stack, archive, member, fresh_password, values["POSTGRES_PASSWORD"])
            database_done = True
        elif member.name.startswith(VOLUMES):
            name = member.name[len(VOLUMES):].split("/", 1)[0]
            if name != volume:
                if upload:
                    upload.close()
                if name not in targets:
                    raise BackupError(f"the archive holds {name}, which its {MANIFEST} does not list")
                volume = name
                number = list(targets).index(volume) + 1
                upload = VolumeUpload(stack, targets[volume], image, f"[{number}/{len(targets)}] {targets[volume]}")
            content = archive.extractfile(member) if member.isreg() else None
            upload.add(renamed(member, VOLUMES + volume, MOUNT), content)
    if upload:
        upload.close()
    if not database_done:
        raise BackupError("the archive ends before its database: it was cut short")
    say(f"aihub: restore complete in {time.monotonic() - started:.0f} s; "
        "now start the class: docker compose up -d --wait")


def check_fresh(stack: Stack, password: str, volumes) -> None:
    """A restore goes only into a stack that holds nothing yet."""
    def holds_accounts(cursor) -> bool:
        cursor.execute("SELECT to_regclass('users') IS NOT NULL")
        return cursor.fetchone()[0]
    if stack.database(password, holds_accounts):
        raise BackupError(f"the database of {stack.project} already holds the hub's accounts: restore only into "
                          "a fresh stack (docker compose down -v deletes this one's database and secrets)")
    present = set(stack.student_volumes())
    existing = [volume for volume in volumes if volume in present]
    if existing:
        raise BackupError(f"student volumes exist already: {', '.join(existing)}; "
                          f"remove them first (docker volume rm {' '.join(existing)})")


def write_secret(path: Path, value: bytes) -> None:
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
        file.write(value)


def restore_database(stack: Stack, archive: tarfile.TarFile, member: tarfile.TarInfo, old_password: str,
                     new_password: str) -> None:
    settings = stack.settings
    meter = Meter("database (pg_restore)")
    dump = f"/tmp/aihub-restore-{os.getpid()}.dump"
    upload = ArchiveUpload(stack.postgres(), "/tmp")
    content = archive.extractfile(member)
    member.name = Path(dump).name
    upload.add(member, content)
    upload.close()
    try:
        stack.run_in_postgres(["pg_restore", "-U", settings.postgres_user, "-d", settings.postgres_db,
                               "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", dump])
    finally:
        stack.run_in_postgres(["rm", "-f", dump])
    meter.add(member.size)
    meter.done()
    # The database was made with this stack's new password; the restored secrets hold the
    # old class's, which the hub and the gateway now read.
    stack.database(old_password, lambda cursor: cursor.execute("ALTER ROLE CURRENT_USER PASSWORD %s", (new_password,)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="docker compose run --rm -T backup", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create", help="write the archive to standard output: ... create > class.tar")
    commands.add_parser("restore", help="restore the archive from standard input into a fresh stack: "
                                        "... restore < class.tar")
    args = parser.parse_args(argv)
    try:
        stack = Stack(settings_module.load_or_exit())
        if args.command == "create":
            if sys.stdout.isatty():
                raise BackupError("the archive goes to standard output, not to a terminal: redirect it, "
                                  "docker compose run --rm -T backup create > class.tar")
            create(stack, sys.stdout.buffer, secrets.SECRETS_DIR)
        else:
            if sys.stdin.isatty():
                raise BackupError("the archive comes from standard input, not from a terminal: redirect it, "
                                  "docker compose run --rm -T backup restore < class.tar")
            restore(stack, sys.stdin.buffer, secrets.SECRETS_DIR)
        return 0
    except (BackupError, settings_module.ConfigError, tarfile.TarError) as error:
        print(f"aihub: {error}", file=sys.stderr)
        return 2
    except docker.errors.DockerException as error:
        print(f"aihub: Docker: {getattr(error, 'explanation', None) or error}", file=sys.stderr)
        return 2
    except psycopg2.Error as error:
        print(f"aihub: the hub's database: {str(error).strip().splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
