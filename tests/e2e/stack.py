"""The stack under test: a copy of the repository run with docker compose, as an admin would.

The copy holds exactly what a fresh clone holds (plus certs/*.crt, which a site adds),
so a developer's own .env never leaks into a test run, and the test stack has its own
compose project name, port and volumes.

Where the official base images cannot be pulled (no registry here), tests/standins builds
local images with the same contract and tests/standins/compose.standins.yml points the
bundle at them; the production compose file is used unchanged either way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from standin_images import image_available

REPO = Path(__file__).resolve().parents[2]
OFFICIAL_IMAGES = ("python:3.12-slim-bookworm", "postgres:15.14-bookworm", "ollama/ollama:0.34.2")


def run(args: list[str], cwd: Path | None = None, check: bool = True, timeout: float = 1800,
        env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def official_images_available() -> bool:
    """True when the official images are present or can be pulled."""
    return all(image_available(image) for image in OFFICIAL_IMAGES)


def copy_repository(destination: Path) -> None:
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO).stdout
    names = [name for name in listed.split("\0") if name]
    names += [str(path.relative_to(REPO)) for path in (REPO / "certs").glob("*.crt")]
    for name in names:
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


# Settings every test stack starts with: small limits keep the test machine comfortable,
# and the Ollama stand-ins' random models never stop on their own (they cut at 32 tokens
# unless asked for more), so the gateway's answer cap asks for as much as they give.
SMALL_CLASSROOM = {"USER_MEM_LIMIT": "1G", "USER_CPU_LIMIT": "1", "AI_DEFAULT_MAX_TOKENS": "32"}


class Stack:
    def __init__(self, workdir: Path, project: str, port: int, settings: dict[str, str]):
        self.workdir = workdir
        self.project = project
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.settings = settings
        self.compose_files = ["docker-compose.yml"]

    def prepare(self) -> None:
        copy_repository(self.workdir)
        # Stand-ins are always built: the test-only services run on them.
        run(["bash", "tests/standins/build.sh"], cwd=self.workdir, timeout=1800)
        if not official_images_available():
            self.compose_files += ["tests/standins/compose.standins.yml",
                                   "tests/ollama-standin/compose.ollama-standin.yml"]
        self.compose_files.append("tests/e2e/compose.e2e.yml")
        self.write_env(self.settings)

    def write_env(self, settings: dict[str, str]) -> None:
        """The .env an admin writes; COMPOSE_PROJECT_NAME and HUB_PORT keep tests apart."""
        lines = {"COMPOSE_PROJECT_NAME": self.project, "HUB_PORT": str(self.port), **settings}
        (self.workdir / ".env").write_text("".join(f"{k}={v}\n" for k, v in lines.items()))

    def apply_settings(self, settings: dict[str, str]) -> None:
        """Change .env and `docker compose up -d` again, as an admin does; wait for the hub."""
        self.write_env(settings)
        self.compose("up", "-d")
        self.wait_healthy()

    def compose(self, *args: str, check: bool = True, timeout: float = 1800,
                env: dict | None = None) -> subprocess.CompletedProcess:
        files = [arg for name in self.compose_files for arg in ("-f", name)]
        return run(["docker", "compose", *files, *args], cwd=self.workdir, check=check, timeout=timeout, env=env)

    def up(self, timeout: float = 1800) -> float:
        """`docker compose up -d`, then wait for a healthy hub; return seconds taken in all."""
        started = time.monotonic()
        self.compose("up", "-d", "--build", timeout=timeout)
        self.wait_healthy()
        return time.monotonic() - started

    def wait_healthy(self, timeout: float = 180) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.health() == "healthy":
                return time.monotonic() - started
            time.sleep(0.5)
        logs = self.compose("logs", "--tail=40", "hub", check=False).stdout
        raise AssertionError(f"hub not healthy after {timeout}s (state {self.health()}):\n{logs}")

    def health(self) -> str:
        container = self.compose("ps", "-a", "-q", "hub", check=False).stdout.strip()
        if not container:
            return "absent"
        state = run(["docker", "inspect", "-f", "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                     container], check=False).stdout.strip()
        return state.split("/")[1] if state.startswith("running/") else state

    def down(self, volumes: bool = False) -> None:
        self.compose("down", "--remove-orphans", *(["-v"] if volumes else []), timeout=300)

    def user_volumes(self) -> list[str]:
        names = run(["docker", "volume", "ls", "-q", "--filter", f"name={self.project}-user-"]).stdout
        return [name for name in names.split() if name.startswith(f"{self.project}-user-")]

    def user_container(self, username: str) -> str:
        return f"{self.project}-{username}"

    def purge(self) -> None:
        """Remove everything the stack made: its containers, volumes and students' volumes."""
        names = run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
        leftovers = [name for name in names if name.startswith(f"{self.project}-")]
        if leftovers:
            run(["docker", "rm", "-f", *leftovers], check=False)
        self.compose("down", "--remove-orphans", "-v", check=False, timeout=300)
        if self.user_volumes():
            run(["docker", "volume", "rm", "-f", *self.user_volumes()], check=False)

    def psql(self, sql: str) -> str:
        user = self.settings.get("POSTGRES_USER", "jupyterhub")
        db = self.settings.get("POSTGRES_DB", "jupyterhub")
        return self.compose("exec", "-T", "postgres", "psql", "-U", user, db, "-At", "-c", sql).stdout

    def admin_login(self) -> tuple[str, str]:
        """The README's command that prints the admin's login."""
        out = self.compose("exec", "-T", "hub", "python", "-m", "aihub.secrets", "admin-login").stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return fields["user"].strip(), fields["password"].strip()

    def http_status(self, path: str) -> int:
        try:
            return urllib.request.urlopen(self.url + path, timeout=10).status
        except urllib.error.HTTPError as error:
            return error.code
