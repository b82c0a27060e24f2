"""Stops a stack's student servers when the whole stack stops, and at no other time.

The hub keeps students' servers running when it restarts (a crash, `docker compose
restart hub`, a new .env), so a lesson survives an admin's change. But `docker compose
down` and `docker compose stop` must still leave no student container behind, and the
hub cannot tell those apart from a restart: it gets the same SIGTERM either way.

This tiny service can. The hub depends on it, so compose stops the hub first and this
service after it whenever the stack goes down or stops. On SIGTERM it looks at the hub:
still running means only this service is being restarted or recreated (students stay);
stopped means the stack is going down, so it stops and removes every student
container of this stack (their home volumes stay). The hub notices at its next start
that those servers are gone.

Run as `python -m aihub.reaper` with COMPOSE_PROJECT_NAME set and the Docker socket.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import docker

from .labels import student_filter

log = logging.getLogger("aihub.reaper")
# A student's server gets this long to shut its kernels down before Docker kills it.
STOP_TIMEOUT = 10


def student_containers(client: docker.DockerClient, project: str) -> list:
    return client.containers.list(all=True, filters=student_filter(project))


def hub_running(client: docker.DockerClient, project: str) -> bool:
    return bool(client.containers.list(filters={"status": "running", "label": [
        f"com.docker.compose.project={project}", "com.docker.compose.service=hub"]}))


def stop_and_remove(container) -> None:
    try:
        container.stop(timeout=STOP_TIMEOUT)
        container.remove(force=True)
    except docker.errors.NotFound:
        pass  # gone already


def stop_student_servers(client: docker.DockerClient, project: str) -> int:
    """Stop and remove every student container of `project`, all at once; return how many."""
    containers = student_containers(client, project)
    with ThreadPoolExecutor(max(1, min(32, len(containers)))) as pool:
        list(pool.map(stop_and_remove, containers))
    return len(containers)


def on_stack_stop(client: docker.DockerClient, project: str) -> None:
    if hub_running(client, project):
        log.info("the hub is running: only this service restarts; students' servers keep running")
        return
    started = time.monotonic()
    count = stop_student_servers(client, project)
    log.info("the stack is stopping: stopped %d student server(s) in %.1f s (home volumes kept)",
             count, time.monotonic() - started)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    project = os.environ["COMPOSE_PROJECT_NAME"]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    log.info("watching stack %r: students' servers stop when the stack stops", project)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    on_stack_stop(docker.from_env(), project)


if __name__ == "__main__":
    main()
