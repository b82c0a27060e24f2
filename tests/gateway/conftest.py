"""Real parts for the gateway's tests: PostgreSQL, JupyterHub, a vendor, the gateway.

- PostgreSQL: a throwaway server in a container for the session (tests/throwaway_postgres.py),
  or the one named by a superuser's DSN in AIHUB_TEST_DATABASE_URL. Each session makes
  its own database and drops it at the end.
- JupyterHub: `jupyterhub` from this venv on loopback (hub_config.py), with users and
  tokens made through its REST API, and real server tokens from its spawner.
- The vendor: tests/fake_openai.py on loopback.
- The gateway: aihub.gateway.app.Gateway in a thread with its own event loop, built
  from aihub.settings exactly as `python -m aihub.gateway` builds it; or the real
  command in a subprocess (`GatewayProcess`) where a test must kill it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import unquote, urlsplit

import httpx
import psycopg2
import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from aihub.gateway.app import Gateway
from aihub.gateway.config import ACCESS_SCOPE as SCOPE
from aihub.gateway.config import config_from_settings
from aihub.secrets import GENERATORS
from aihub.settings import SETTINGS, load

from fake_openai import FakeOpenAI
from throwaway_containers import SetupError
from throwaway_postgres import postgres_server

# hypothesis keeps caches in ./.hypothesis unless told otherwise: not in the repository.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="aihub-hypothesis-"))

HERE = Path(__file__).parent
VENV_BIN = Path(sys.executable).parent
DEEPSEEK_KEY = "sk-test-deepseek-0123456789abcdef"
MOONSHOT_KEY = "sk-test-moonshot-fedcba9876543210"
GATEWAY_TOKEN = "gateway-token-" + secrets.token_hex(16)
ADMIN_TOKEN = "test-admin-" + secrets.token_hex(16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- PostgreSQL --------------------------------------------------------------------


@dataclass
class Database:
    host: str
    port: int
    user: str
    password: str
    name: str

    def connect(self):
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                dbname=self.name)
        conn.autocommit = True
        return conn

    def query(self, sql: str, *args) -> list[tuple]:
        with self.connect() as conn, conn.cursor() as cursor:
            cursor.execute(sql, args)
            rows = cursor.fetchall() if cursor.description else []
        conn.close()
        return rows

    def rows(self, username: str) -> list[dict]:
        """The ledger rows of a user, oldest first, as dicts."""
        conn = self.connect()
        with conn.cursor() as cursor:
            cursor.execute("SELECT * FROM ai_usage WHERE username = %s ORDER BY id", (username,))
            names = [c.name for c in cursor.description]
            result = [dict(zip(names, row)) for row in cursor.fetchall()]
        conn.close()
        return result

    def settled_rows(self, username: str, timeout: float = 10.0) -> list[dict]:
        """The user's rows once none is running: a row is completed just after its answer."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows(username)
            if not any(r["status"] == "started" for r in rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def create_database(dsn: str) -> tuple[Database, Callable[[], None]]:
    """A new, empty database on the server of `dsn` (a superuser's), and its dropper."""
    parts = urlsplit(dsn)
    admin = dict(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                 user=unquote(parts.username or "postgres"), password=unquote(parts.password or ""))
    name = f"aihub_gw_test_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg2.connect(dbname=(parts.path or "/postgres").lstrip("/") or "postgres", **admin)
    except psycopg2.OperationalError as error:
        raise SetupError(f"cannot connect to PostgreSQL as {admin['user']}@{admin['host']}:{admin['port']} "
                                 f"(AIHUB_TEST_DATABASE_URL, when set): {str(error).strip().splitlines()[0]}") from None
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()

    return Database(admin["host"], admin["port"], admin["user"], admin["password"], name), drop


@pytest.fixture(scope="session")
def database(figures) -> Database:
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_server())
            made, drop = create_database(server.dsn)
        except SetupError as error:
            pytest.fail(str(error))
        if server.image:
            figures[f"throwaway PostgreSQL ({server.image}), docker run to first query"] = f"{server.ready_in:.1f} s"
        yield made
        drop()


# -- the vendor ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def upstream() -> FakeOpenAI:
    server = FakeOpenAI(["echo-1", "echo-2"]).start()
    yield server
    server.stop()


# -- JupyterHub ----------------------------------------------------------------------


class Hub:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/hub/api"
        self.tokens_dir = workdir / "server-tokens"
        self.log = workdir / "jupyterhub.log"
        self.process: Optional[subprocess.Popen] = None
        self.api = httpx.Client(base_url=self.api_url, headers={"Authorization": f"token {ADMIN_TOKEN}"},
                                timeout=30)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
        env.update(HUB_PORT=str(self.port), GATEWAY_URL="http://127.0.0.1:9", GATEWAY_API_TOKEN=GATEWAY_TOKEN,
                   TEST_ADMIN_TOKEN=ADMIN_TOKEN, GATEWAY_TEST_TOKENS=str(self.tokens_dir))
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([str(VENV_BIN / "jupyterhub"), "-f", str(HERE / "hub_config.py")],
                                            cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.api_url}/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-3000:]
        pytest.fail(f"JupyterHub did not start:\n{tail}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def create_user(self, name: str) -> None:
        response = self.api.post("/users", json={"usernames": [name]})
        assert response.status_code in (201, 409), response.text

    def token(self, name: str, scopes: list[str], expires_in: Optional[int] = None) -> str:
        """A personal token, as the hub's Token page makes one (no expiry by default)."""
        response = self.api.post(f"/users/{name}/tokens",
                                 json={"scopes": scopes, "note": "gateway test", "expires_in": expires_in})
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def start_server(self, name: str) -> str:
        """Start the user's server; return the token the hub gave it (JUPYTERHUB_API_TOKEN)."""
        response = self.api.post(f"/users/{name}/server")
        assert response.status_code in (201, 202), response.text
        path = self.tokens_dir / name
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready = self.api.get(f"/users/{name}").json().get("server")
            if ready and path.exists():
                return path.read_text()
            time.sleep(0.1)
        raise AssertionError(f"{name}'s server did not start")

    def stop_server(self, name: str) -> None:
        response = self.api.delete(f"/users/{name}/server")
        assert response.status_code in (202, 204), response.text


@pytest.fixture(scope="session")
def hub() -> Hub:
    workdir = Path(tempfile.mkdtemp(prefix="aihub-gw-hub-"))
    hub = Hub(workdir)
    hub.start()
    yield hub
    hub.stop()


@dataclass
class Student:
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def student(hub):
    """make a hub user with a running server, and its token: student("alice")"""

    def make(prefix: str = "s") -> Student:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        hub.create_user(name)
        return Student(name, hub.start_server(name))

    return make


# -- the gateway ----------------------------------------------------------------------


def settings_env(database: Database, upstream: FakeOpenAI, **overrides: str) -> dict[str, str]:
    env = {
        "DEEPSEEK_API_KEY": DEEPSEEK_KEY,
        "DEEPSEEK_BASE_URL": f"{upstream.url}/v1",
        "MOONSHOT_API_KEY": MOONSHOT_KEY,
        "MOONSHOT_BASE_URL": f"{upstream.url}/first/v1",
        "OLLAMA_BASE_URL": upstream.url,  # the gateway adds /v1, as for the real Ollama
        "POSTGRES_HOST": database.host,
        "POSTGRES_PORT": str(database.port),
        "POSTGRES_USER": database.user,
        "POSTGRES_DB": database.name,
        "AI_DAILY_TOKEN_BUDGET": "0",
        "AI_MAX_CONCURRENT_REQUESTS": "0",
        "AI_REQUEST_TIMEOUT": "20s",
    }
    env.update(overrides)
    return env


def secret_values(database: Database) -> dict[str, str]:
    values = {name: secrets.token_hex(32) for name in GENERATORS}
    values.update(POSTGRES_PASSWORD=database.password, GATEWAY_API_TOKEN=GATEWAY_TOKEN)
    return values


class GatewayThread:
    """A Gateway on 127.0.0.1 in a thread with its own event loop."""

    def __init__(self, config):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.gateway = Gateway(config)
        port = self.run(self.gateway.start("127.0.0.1", 0, db_wait=10))
        self.url = f"http://127.0.0.1:{port}"

    def run(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.run(self.gateway.stop(grace=2))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="session")
def make_config(database, upstream, hub):
    def make(**overrides: str):
        settings = load(settings_env(database, upstream, **overrides))
        return config_from_settings(settings, secret_values(database), hub_api_url=hub.api_url)

    return make


@pytest.fixture(scope="session")
def gateway(make_config) -> GatewayThread:
    """The session's gateway: no budget, no concurrency cap (tests set overrides)."""
    running = GatewayThread(make_config())
    yield running
    running.stop()


@pytest.fixture
def start_gateway(make_config):
    """start_gateway(AI_MAX_CONCURRENT_REQUESTS="2") -> a gateway with those settings."""
    started = []

    def start(**overrides: str) -> GatewayThread:
        running = GatewayThread(make_config(**overrides))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


class GatewayProcess:
    """`python -m aihub.gateway`'s main(), for real, in its own process."""

    def __init__(self, database: Database, upstream: FakeOpenAI, hub: Hub, workdir: Path, **overrides: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        secrets_dir = workdir / "secrets"
        secrets_dir.mkdir(exist_ok=True)
        for name, value in secret_values(database).items():
            (secrets_dir / name.lower()).write_text(value + "\n")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("JUPYTERHUB_") and k not in {s.name for s in SETTINGS}}
        env.update(settings_env(database, upstream, **overrides), JUPYTERHUB_API_URL=hub.api_url)
        code = ("import sys; from pathlib import Path; from aihub.gateway.__main__ import main; "
                f"sys.exit(main(secrets_dir=Path({str(secrets_dir)!r}), address='127.0.0.1', port={self.port}))")
        self.log = workdir / f"gateway-{self.port}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"the gateway did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def start_gateway_process(database, upstream, hub):
    """start_gateway_process() -> the real command running; killed at the test's end."""
    started = []

    def start(**overrides: str) -> GatewayProcess:
        workdir = Path(tempfile.mkdtemp(prefix="aihub-gw-proc-"))
        started.append(GatewayProcess(database, upstream, hub, workdir, **overrides))
        return started[-1]

    yield start
    for process in started:
        process.kill()
