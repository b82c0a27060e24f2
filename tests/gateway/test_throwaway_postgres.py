"""The gateway tests' PostgreSQL: a throwaway container that no session leaves behind."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from standin_images import official_or_standin
from throwaway_containers import OWNER_LABEL, owner, remove_orphans
from throwaway_postgres import OFFICIAL_IMAGE, postgres_server

TESTS = Path(__file__).parents[1]

# A session of its own, using the `database` fixture like every gateway test; it notes
# which containers carry its label, then ends as ENDING says.
SESSION = """
import os, signal, socket, subprocess, time
from pathlib import Path

def test_uses_the_database(database):
    assert database.query("SELECT 1") == [(1,)]
    label = f"label=LABEL={socket.gethostname()}:{os.getpid()}"
    Path("containers").write_text(subprocess.run(["docker", "ps", "-q", "--filter", label],
                                                 capture_output=True, text=True, check=True).stdout)
    ENDING
"""


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def labelled(value: str) -> list[str]:
    return docker("ps", "-a", "-q", "--filter", f"label={OWNER_LABEL}={value}").split()


@pytest.mark.parametrize("ending, exit_code", [
    ("assert False, 'fails on purpose'", 1),
    # Ctrl-C. Python's own handler first: a shell's background job inherits SIGINT ignored.
    ("signal.signal(signal.SIGINT, signal.default_int_handler); "
     "os.kill(os.getpid(), signal.SIGINT); time.sleep(60)", 2),
], ids=["test-failed", "interrupted"])
def test_a_session_runs_its_database_in_a_container_and_removes_it(tmp_path, ending, exit_code):
    (tmp_path / "test_session.py").write_text(SESSION.replace("LABEL", OWNER_LABEL).replace("ENDING", ending))
    env = {name: value for name, value in os.environ.items() if name != "AIHUB_TEST_DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    # tests/conftest.py and this folder's conftest.py as plugins: the fixtures the gateway's tests use.
    session = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "gateway.conftest",
                              "-p", "no:cacheprovider", "-q", "test_session.py"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert session.returncode == exit_code, session.stdout[-3000:] + session.stderr[-3000:]
    containers = (tmp_path / "containers").read_text().split()
    assert len(containers) == 1, f"the session's database ran in {containers} containers"
    assert docker("ps", "-a", "-q", "--filter", f"id={containers[0]}") == "", "the container is still there"


def test_a_container_whose_session_was_killed_is_removed_by_the_next():
    killed = subprocess.Popen(["true"])
    killed.wait()
    image = official_or_standin("postgres", OFFICIAL_IMAGE)
    host = socket.gethostname()
    orphan, kept = f"aihub-throwaway-orphan-{os.getpid()}", f"aihub-throwaway-kept-{os.getpid()}"
    docker("create", "--name", orphan, "--label", f"{OWNER_LABEL}={host}:{killed.pid}", image)
    docker("create", "--name", kept, "--label", f"{OWNER_LABEL}={owner()}", image)
    try:
        assert orphan in remove_orphans()
        assert labelled(f"{host}:{killed.pid}") == []
        assert docker("ps", "-a", "-q", "--filter", f"name=^{kept}$") != "", "a live session's container was removed"
    finally:
        subprocess.run(["docker", "rm", "-f", orphan, kept], capture_output=True)


def test_a_server_named_in_aihub_test_database_url_is_used_and_no_container_started(monkeypatch):
    named = "postgresql://someone:secret@db.example:6543/postgres"
    monkeypatch.setenv("AIHUB_TEST_DATABASE_URL", named)
    before = labelled(owner())
    with postgres_server() as server:
        assert (server.dsn, server.image) == (named, None)
        assert labelled(owner()) == before
