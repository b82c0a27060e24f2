"""A real PostgreSQL for tests, on a machine that has only Docker.

`postgres_server()` gives a superuser's DSN: the server named in AIHUB_TEST_DATABASE_URL,
or else a throwaway one in a container, removed when the `with` block ends (a failing
test and Ctrl-C included). The container runs the stack's own image (POSTGRES_IMAGE's
default) where it is present or can be pulled, else its stand-in (tests/standins), keeps
its data in memory and is published on a free loopback port. Each container is labelled
with its owner's host and pid, so one left by a killed session (SIGKILL skips every
clean-up) is removed by the next.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Iterator, Optional

import psycopg2

from aihub.settings import COMPOSE_SETTINGS
from standin_images import official_or_standin

OFFICIAL_IMAGE = next(setting.default for setting in COMPOSE_SETTINGS if setting.name == "POSTGRES_IMAGE")
OWNER_LABEL = "aihub.test.postgres.owner"
PGDATA = "/var/lib/postgresql/data"  # both images' data folder


class DatabaseSetupError(Exception):
    pass


@dataclass
class PostgresServer:
    dsn: str
    image: Optional[str] = None  # None: the server named in AIHUB_TEST_DATABASE_URL
    ready_in: Optional[float] = None  # seconds from `docker run` to the first query


def docker(*args: str, check: bool = True, timeout: float = 300,
           env: Optional[dict] = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        # The arguments name no secret: the password is passed in the environment.
        raise DatabaseSetupError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def remove_orphans() -> list[str]:
    """Remove this host's throwaway containers whose owner process is gone; return their names."""
    listed = docker("ps", "-a", "--filter", f"label={OWNER_LABEL}",
                    "--format", f'{{{{.Names}}}} {{{{.Label "{OWNER_LABEL}"}}}}').stdout
    orphans = []
    for line in listed.splitlines():
        name, _, label = line.partition(" ")
        host, _, pid = label.rpartition(":")
        if host == socket.gethostname() and pid.isdigit() and not alive(int(pid)):
            docker("rm", "-f", "-v", name, check=False)
            orphans.append(name)
    return orphans


def wait_ready(container: str, port: int, password: str, timeout: float) -> None:
    """Until the server answers a query on the published port (the images' first-start
    server listens on its socket only, so an answer means the real server is up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password=password,
                                    dbname="postgres", connect_timeout=2)
        except psycopg2.OperationalError:
            running = docker("inspect", "-f", "{{.State.Running}}", container, check=False).stdout.strip()
            if running != "true" or time.monotonic() > deadline:
                logs = docker("logs", "--tail", "20", container, check=False)
                state = "stopped" if running != "true" else f"not ready after {timeout:.0f} s"
                raise DatabaseSetupError(f"the throwaway PostgreSQL container {container} {state}:\n"
                                         f"{logs.stdout}{logs.stderr}") from None
            time.sleep(0.1)
            continue
        with conn, conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        conn.close()
        return


@contextlib.contextmanager
def throwaway_postgres(image: Optional[str] = None, timeout: float = 120) -> Iterator[PostgresServer]:
    """A new PostgreSQL server in a container, removed when the block ends."""
    if not shutil.which("docker"):
        raise DatabaseSetupError("a throwaway PostgreSQL needs Docker (see README, Test it); or name a "
                                 "server in AIHUB_TEST_DATABASE_URL")
    remove_orphans()
    try:
        image = image or official_or_standin("postgres", OFFICIAL_IMAGE)
    except RuntimeError as error:
        raise DatabaseSetupError(str(error)) from None
    name = f"aihub-throwaway-postgres-{secrets.token_hex(4)}"  # not aihub-test-*: the e2e tests purge those
    password = secrets.token_hex(16)
    started = time.monotonic()
    try:
        docker("run", "-d", "--name", name, "--label", f"{OWNER_LABEL}={owner()}",
               "-e", "POSTGRES_PASSWORD", "--tmpfs", PGDATA, "-p", "127.0.0.1::5432", image,
               env={**os.environ, "POSTGRES_PASSWORD": password})
        published = docker("port", name, "5432/tcp").stdout.split()[0]  # 127.0.0.1:PORT
        port = int(published.rpartition(":")[2])
        wait_ready(name, port, password, timeout)
        yield PostgresServer(f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres", image,
                             time.monotonic() - started)
    finally:
        docker("rm", "-f", "-v", name, check=False)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """AIHUB_TEST_DATABASE_URL's server where one is named, else a throwaway one."""
    named = os.environ.get("AIHUB_TEST_DATABASE_URL")
    if named:
        yield PostgresServer(named)
    else:
        with throwaway_postgres() as server:
            yield server
