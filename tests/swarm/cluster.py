"""A Docker Swarm of a manager and two workers on this one machine, for the tests.

Each node is a container running Debian's Docker Engine (Docker-in-Docker, tests/swarm/
node/), on a bridge network of its own with a local registry (Debian's docker-registry,
tests/swarm/registry/) that the nodes pull from over plain HTTP, as a site's nodes pull
from its registry. The bundle's images (built as tests/e2e builds them) are pushed
there, and the stack is deployed on the manager with the README's commands.

Everything it makes is named aihub-swarmtest-*, apart from other stacks on the engine,
and removed at the end (the nodes' engines, with their images and volumes, go with them).
"""

from __future__ import annotations

import json
import shlex
import time
import urllib.request
from pathlib import Path

from e2e.stack import Stack, run

HERE = Path(__file__).parent
PREFIX = "aihub-swarmtest"
NETWORK = f"{PREFIX}-net"
REGISTRY = f"{PREFIX}-registry"  # the nodes reach it as REGISTRY:5000
NODE_IMAGE = "aihub-swarmtest/node:1"
REGISTRY_IMAGE = "aihub-swarmtest/registry:1"
MANAGER = "manager"
WORKERS = ("worker1", "worker2")
STACK = "aihub"
STACK_DIR = "/srv/aihub"
HUB_PORT = 8000
# Docker's --privileged asks for every capability, and fails ("unable to apply caps:
# operation not permitted") on hosts that withhold one, as this machine withholds
# CAP_SYS_RESOURCE; a node gets the rest, no seccomp filter, and the devices its
# containers need. /var/lib/docker is a volume: overlay2 cannot stack on the node's own
# overlay root. The node makes its cgroups writable itself (node/start-node.sh).
NODE_OPTIONS = ["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
                "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                "--security-opt", "systempaths=unconfined", "--device-cgroup-rule", "a *:* rwm",
                "-v", "/var/lib/docker", "--tmpfs", "/run"]


def container(name: str) -> str:
    return f"{PREFIX}-{name}"


def services(stack: Stack) -> dict[str, dict]:
    """The services of `stack`'s compose files, as docker compose reads them."""
    return json.loads(stack.compose("config", "--format", "json").stdout)["services"]


class SwarmCluster:
    def __init__(self, workdir: Path, settings: dict[str, str]):
        self.workdir = workdir
        self.settings = settings
        self.registry_port = 0
        self.hub_url = ""
        self.pushed: list[str] = []

    # -- the nodes and the registry ---------------------------------------------------

    def build_images(self) -> dict[str, tuple[str, str]]:
        """Build the bundle's images as the e2e tests do (stand-ins where the official
        ones cannot be pulled), under this test's own tags, and the nodes' and the
        registry's images. {service: (image here, its name in the registry)}."""
        stack = Stack(self.workdir, PREFIX, HUB_PORT, self.settings)
        stack.prepare()
        shipped = services(stack)
        stack.compose_files.append("tests/swarm/compose.images.yml")
        here = services(stack)
        names = ("hub", "singleuser", "postgres", "ollama")
        stack.compose("build", *(name for name in names if "build" in here[name]))
        for image, folder in ((NODE_IMAGE, "node"), (REGISTRY_IMAGE, "registry")):
            run(["docker", "build", "-q", "--build-arg", "BASE_IMAGE=aihub-standin/debian:bookworm",
                 "-t", image, str(HERE / folder)])
        return {name: (here[name]["image"], shipped[name]["image"]) for name in names}

    def remove(self) -> None:
        names = run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
        ours = [name for name in names if name.startswith(f"{PREFIX}-")]
        if ours:
            run(["docker", "rm", "-f", "-v", *ours], check=False, timeout=300)
        run(["docker", "network", "rm", NETWORK], check=False)
        if self.pushed:
            run(["docker", "rmi", *self.pushed], check=False)  # tags only: the images stay
            self.pushed = []

    def start(self) -> None:
        run(["docker", "network", "create", NETWORK])
        run(["docker", "run", "-d", "--name", container("registry"), "--network", NETWORK,
             "--network-alias", REGISTRY, "-p", "127.0.0.1::5000", REGISTRY_IMAGE])
        self.registry_port = self._published(container("registry"), 5000)
        for node in (MANAGER, *WORKERS):
            publish = ["-p", f"127.0.0.1::{HUB_PORT}"] if node == MANAGER else []
            run(["docker", "run", "-d", "--name", container(node), "--hostname", node, "--network", NETWORK,
                 *NODE_OPTIONS, *publish, NODE_IMAGE,
                 "--insecure-registry", f"{REGISTRY}:5000", "--storage-driver", "overlay2"])
        for node in (MANAGER, *WORKERS):
            self._wait(lambda: self.docker(node, "info", check=False).returncode == 0, 60, f"dockerd in {node}")
        self.docker(MANAGER, "swarm", "init", "--advertise-addr", "eth0")
        token = self.docker(MANAGER, "swarm", "join-token", "-q", "worker").stdout.strip()
        address = run(["docker", "inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{NETWORK}\").IPAddress}}}}",
                       container(MANAGER)]).stdout.strip()
        for worker in WORKERS:
            self.docker(worker, "swarm", "join", "--token", token, f"{address}:2377")
        self.hub_url = f"http://127.0.0.1:{self._published(container(MANAGER), HUB_PORT)}"

    def push(self, images: dict[str, tuple[str, str]]) -> None:
        """Push the bundle's images to the registry, under the bundle's names."""
        for image, name in images.values():
            tag = f"127.0.0.1:{self.registry_port}/{name}"
            run(["docker", "tag", image, tag])
            self.pushed.append(tag)
            run(["docker", "push", "-q", tag], timeout=900)

    # -- the stack, as an admin deploys it ------------------------------------------------

    def deploy(self, stack_files: list[str], env: dict[str, str]) -> None:
        run(["docker", "exec", container(MANAGER), "mkdir", "-p", STACK_DIR])
        for name in stack_files:
            run(["docker", "cp", str(self.workdir / name), f"{container(MANAGER)}:{STACK_DIR}/{name}"])
        env_file = self.workdir / ".env"
        env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
        run(["docker", "cp", str(env_file), f"{container(MANAGER)}:{STACK_DIR}/.env"])
        files = " ".join(f"-c {shlex.quote(name)}" for name in stack_files)
        # The README's commands.
        self.shell(MANAGER, f"cd {STACK_DIR} && set -a && . ./.env && set +a && docker stack deploy {files} {STACK}")

    def wait_hub(self, timeout: float = 300) -> None:
        def healthy() -> bool:
            try:
                return urllib.request.urlopen(self.hub_url + "/hub/health", timeout=5).status == 200
            except OSError:
                return False
        self._wait(healthy, timeout, "a healthy hub",
                   lambda: self.docker(MANAGER, "service", "ps", "--no-trunc", f"{STACK}_hub", check=False).stdout
                   + self.docker(MANAGER, "service", "logs", "--tail", "30", f"{STACK}_hub", check=False).stdout)

    def service_container(self, service: str) -> str:
        """The id of the running container of the stack's `service` on the manager."""
        return self.docker(MANAGER, "ps", "-q", "-f", f"label=com.docker.swarm.service.name={STACK}_{service}"
                           ).stdout.split()[0]

    def exec_in(self, service: str, *command: str) -> str:
        return self.docker(MANAGER, "exec", self.service_container(service), *command).stdout

    def psql(self, sql: str) -> str:
        return self.exec_in("postgres", "psql", "-U", "jupyterhub", "jupyterhub", "-At", "-c", sql)

    def admin_login(self) -> tuple[str, str]:
        out = self.exec_in("hub", "python", "-m", "aihub.secrets", "admin-login")
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return fields["user"].strip(), fields["password"].strip()

    def node_of(self, service: str) -> str:
        """The node running `service`'s task now ("" when none runs)."""
        out = self.docker(MANAGER, "service", "ps", "-f", "desired-state=running", "--format",
                          "{{.Node}} {{.CurrentState}}", service, check=False).stdout
        return next((line.split()[0] for line in out.splitlines() if " Running" in line), "")

    # -- plumbing ---------------------------------------------------------------------------

    def docker(self, node: str, *args: str, check: bool = True, timeout: float = 600):
        return run(["docker", "exec", container(node), "docker", *args], check=check, timeout=timeout)

    def shell(self, node: str, script: str, check: bool = True):
        return run(["docker", "exec", container(node), "sh", "-c", script], check=check)

    @staticmethod
    def _published(name: str, port: int) -> int:
        return int(run(["docker", "port", name, str(port)]).stdout.split()[0].rsplit(":", 1)[1])

    @staticmethod
    def _wait(condition, timeout: float, what: str, details=lambda: "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(1)
        raise AssertionError(f"no {what} after {timeout:.0f} s\n{details()}")
