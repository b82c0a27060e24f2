"""A real PostgreSQL for tests, on a machine that has only Docker.

`postgres_server()` gives a superuser's DSN: the server named in AIHUB_TEST_DATABASE_URL,
or else a throwaway one in a container (tests/throwaway_containers.py). The container runs
the stack's own image (POSTGRES_IMAGE's default) where it is present or can be pulled,
else its stand-in (tests/standins), and keeps its data in memory.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from typing import Iterator, Optional

import psycopg2

from aihub.settings import COMPOSE_SETTINGS
from standin_images import official_or_standin
from throwaway_containers import SetupError, docker, throwaway_container

OFFICIAL_IMAGE = next(setting.default for setting in COMPOSE_SETTINGS if setting.name == "POSTGRES_IMAGE")
PGDATA = "/var/lib/postgresql/data"  # both images' data folder


@dataclass
class PostgresServer:
    dsn: str
    image: Optional[str] = None  # None: the server named in AIHUB_TEST_DATABASE_URL
    ready_in: Optional[float] = None  # seconds from `docker run` to the first query


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
                raise SetupError(f"the throwaway PostgreSQL container {container} {state}:\n"
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
    try:
        image = image or official_or_standin("postgres", OFFICIAL_IMAGE)
    except RuntimeError as error:
        raise SetupError(f"{error}; or name a server in AIHUB_TEST_DATABASE_URL") from None
    password = secrets.token_hex(16)
    started = time.monotonic()
    with throwaway_container("postgres", image, 5432, "-e", "POSTGRES_PASSWORD", "--tmpfs", PGDATA,
                             env={**os.environ, "POSTGRES_PASSWORD": password}) as (name, port):
        wait_ready(name, port, password, timeout)
        yield PostgresServer(f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres", image,
                             time.monotonic() - started)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """AIHUB_TEST_DATABASE_URL's server where one is named, else a throwaway one."""
    named = os.environ.get("AIHUB_TEST_DATABASE_URL")
    if named:
        yield PostgresServer(named)
    else:
        with throwaway_postgres() as server:
            yield server
