"""Throwaway containers for tests on a machine that has only Docker: each runs with one
port published on a free loopback port and is removed when its `with` block ends (a
failing test and Ctrl-C included). Each is labelled with its owner's host and pid, so one
left by a killed session (SIGKILL skips every clean-up) is removed by the next.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
from typing import Iterator, Optional

OWNER_LABEL = "aihub.test.throwaway.owner"


class SetupError(Exception):
    """A test's server could not be set up; the message says why."""


def docker(*args: str, check: bool = True, timeout: float = 300,
           env: Optional[dict] = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        # Callers pass secrets in the environment, never in the arguments.
        raise SetupError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
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


@contextlib.contextmanager
def throwaway_container(kind: str, image: str, port: int, *run_args: str,
                        env: Optional[dict] = None) -> Iterator[tuple[str, int]]:
    """`image` running as aihub-throwaway-<kind>-<random> with `port` published on
    loopback: (its name, the host port). `run_args` go to `docker run` before the image;
    `env` is the environment `docker run` sees (for `-e NAME` without a value)."""
    if not shutil.which("docker"):
        raise SetupError(f"a throwaway {kind} needs Docker (see README, Test it)")
    remove_orphans()
    name = f"aihub-throwaway-{kind}-{secrets.token_hex(4)}"  # not aihub-test-*: the e2e tests purge those
    try:
        docker("run", "-d", "--name", name, "--label", f"{OWNER_LABEL}={owner()}",
               "-p", f"127.0.0.1::{port}", *run_args, image, env=env)
        published = docker("port", name, f"{port}/tcp").stdout.split()[0]  # 127.0.0.1:PORT
        yield name, int(published.rpartition(":")[2])
    finally:
        docker("rm", "-f", "-v", name, check=False)
