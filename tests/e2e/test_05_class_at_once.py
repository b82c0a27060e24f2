"""A whole class at once, all lesson long: the burst of servers starting together, the
admin's class tools, and every kind of restart an admin (or a crash) puts the stack
through mid-lesson, each of which must keep the students' running kernels."""

import re
import signal
import time

import pytest

from .browser import Browser
from .stack import run

REHEARSAL_STUDENTS = 10


def rehearsal_leftovers(stack) -> dict[str, list[str]]:
    """Whatever a rehearsal could leave behind: accounts and its group, containers,
    volumes, ledger rows."""
    users = stack.psql("SELECT name FROM users WHERE name LIKE 'rehearsal-%'").split()
    users += stack.psql("SELECT name FROM groups WHERE name = 'aihub-rehearsal'").split()
    rows = stack.psql("SELECT username FROM ai_usage WHERE username LIKE 'rehearsal-%'").split()
    containers = run(["docker", "ps", "-a", "--format", "{{.Names}}",
                      "--filter", f"name={stack.project}-rehearsal"]).stdout.split()
    volumes = [name for name in stack.user_volumes() if "rehearsal" in name]
    return {name: found for name, found in
            (("users", users), ("ledger rows", rows), ("containers", containers), ("volumes", volumes)) if found}


def test_a_class_starts_at_once_with_no_failure_and_the_rehearsal_cleans_up(stack, figures):
    """The admin's rehearsal, as the README gives it: every server of a class started at
    the same moment comes up, every %%ai cell answers, and nothing is left behind."""
    result = stack.compose("exec", "-T", "hub", "python", "-m", "aihub.rehearse",
                           "--students", str(REHEARSAL_STUDENTS), timeout=1200)
    out = result.stdout
    assert f"({REHEARSAL_STUDENTS} of {REHEARSAL_STUDENTS} ready)" in out, out
    assert f"({REHEARSAL_STUDENTS} of {REHEARSAL_STUDENTS} answered)" in out, out
    assert "FAILED" not in out and "Verdict: this machine holds about" in out, out
    assert rehearsal_leftovers(stack) == {}
    for label in ("time to ready", "idle memory", "first %%ai", "after %%ai", "hub event loop"):
        line = next(line for line in out.splitlines() if line.strip().startswith(label))
        figures[f"rehearsal of {REHEARSAL_STUDENTS}: {label}"] = line.split(":", 1)[1].strip()


def test_an_interrupted_rehearsal_still_removes_everything(stack):
    """Ctrl-C while the servers start: the accounts, servers and volumes go all the same."""
    hub = stack.compose("ps", "-q", "hub").stdout.strip()
    rehearsal = run(["docker", "exec", "-d", hub, "sh", "-c",
                     "python -m aihub.rehearse --students 4 > /tmp/rehearsal.log 2>&1"])
    assert rehearsal.returncode == 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "containers" not in rehearsal_leftovers(stack):
        time.sleep(0.5)
    assert "containers" in rehearsal_leftovers(stack), "the rehearsal started no server"
    interrupt = ("import os, signal\n"
                 "for pid in os.listdir('/proc'):\n"
                 "    if pid.isdigit() and b'aihub.rehearse' in open(f'/proc/{pid}/cmdline', 'rb').read()"
                 " and int(pid) != os.getpid():\n"
                 f"        os.kill(int(pid), {int(signal.SIGINT)})\n")
    stack.compose("exec", "-T", "hub", "python", "-c", interrupt)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and rehearsal_leftovers(stack):
        time.sleep(1)
    log = stack.compose("exec", "-T", "hub", "cat", "/tmp/rehearsal.log").stdout
    assert "interrupted" in log and "removing the rehearsal's 4 accounts" in log, log
    assert rehearsal_leftovers(stack) == {}


def test_a_class_is_started_and_stopped_by_its_group(stack, admin):
    """Teachers' tools: pre-start one class's servers, leave another class alone, stop them."""
    for group, members in (("class-a", ["ca1", "ca2", "ca3"]), ("class-b", ["cb1"])):
        admin.api("POST", "/hub/api/users", json={"usernames": members}).raise_for_status()
        admin.api("POST", f"/hub/api/groups/{group}", json={}).raise_for_status()
        admin.api("POST", f"/hub/api/groups/{group}/users", json={"users": members}).raise_for_status()
    try:
        started = stack.compose("exec", "-T", "hub", "python", "-m", "aihub.classes", "start", "class-a",
                                timeout=600).stdout
        assert "3 of 3 servers ready" in started, started
        running = {user["name"] for user in admin.api("GET", "/hub/api/users").json() if user["servers"]}
        assert {"ca1", "ca2", "ca3"} <= running and "cb1" not in running
        listing = stack.compose("exec", "-T", "hub", "python", "-m", "aihub.classes", "list").stdout
        assert re.search(r"class-a\s+3 students\s+3 running", listing), listing
        stopped = stack.compose("exec", "-T", "hub", "python", "-m", "aihub.classes", "stop", "class-a",
                                timeout=300).stdout
        assert "stopped 3 servers" in stopped, stopped
        running = {user["name"] for user in admin.api("GET", "/hub/api/users").json() if user["servers"]}
        assert not running & {"ca1", "ca2", "ca3"}
        missing = stack.compose("exec", "-T", "hub", "python", "-m", "aihub.classes", "start", "no-such-class",
                                check=False)
        assert missing.returncode == 2 and "no class (group) named 'no-such-class'" in missing.stderr
    finally:
        for name in ("ca1", "ca2", "ca3", "cb1"):
            admin.api("DELETE", f"/hub/api/users/{name}")
        for group in ("class-a", "class-b"):
            admin.api("DELETE", f"/hub/api/groups/{group}")


# -- restarts mid-lesson: the student's kernel and its variables survive --------------

@pytest.fixture
def working_student(server):
    """A student in the middle of work: a kernel holding a variable, as an open notebook."""
    kernel_id = server.start_kernel()
    server.execute(kernel_id, "import os\nanswer = 6 * 7\nkernel_pid = os.getpid()")
    yield server, kernel_id
    server.api("DELETE", f"{server.server_path}/api/kernels/{kernel_id}")


def execute_once_back(student: Browser, kernel_id: str, code: str, timeout: float = 30, within: float = 60) -> str:
    """Run a cell, again and again for up to `within` seconds while what it needs comes
    back after a restart (the proxy, the gateway), as a student would press Run again."""
    deadline = time.monotonic() + within
    while True:
        try:
            return student.execute(kernel_id, code, timeout=timeout)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def assert_work_kept(stack, student: Browser, kernel_id: str) -> None:
    """The same kernel answers with its variables; the student's pages work as before."""
    container = stack.user_container(student.username)
    assert run(["docker", "inspect", "-f", "{{.State.Running}}", container]).stdout.strip() == "true"
    # JupyterLab reconnects: a new websocket to the same kernel, through the restarted proxy.
    output = execute_once_back(student, kernel_id, "print(answer, kernel_pid == os.getpid())")
    assert output.strip() == "42 True"
    # Still logged in, with no new login: after a database restart the hub's first
    # request may fail while it reconnects, so allow a few seconds.
    deadline = time.monotonic() + 10
    while not student.is_logged_in():
        assert time.monotonic() < deadline, "the student was logged out by the restart"
        time.sleep(1)
    student.open_lab()


def kill_the_hub_process(stack) -> None:
    """JupyterHub dies inside its container (not a `docker stop`): the restart policy acts."""
    kill = ("import os\n"
            "for pid in os.listdir('/proc'):\n"
            "    if pid.isdigit():\n"
            "        args = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')\n"
            "        if len(args) > 1 and args[1].endswith(b'/jupyterhub'):\n"
            "            os.kill(int(pid), 9)\n")
    hub = stack.compose("ps", "-q", "hub").stdout.strip()
    restarts = int(run(["docker", "inspect", "-f", "{{.RestartCount}}", hub]).stdout)
    stack.compose("exec", "-T", "hub", "python", "-c", kill, check=False)
    deadline = time.monotonic() + 60
    while int(run(["docker", "inspect", "-f", "{{.RestartCount}}", hub]).stdout) == restarts:
        assert time.monotonic() < deadline, "the hub was not restarted after its process died"
        time.sleep(0.5)
    stack.wait_healthy()


def test_restarting_the_hub_keeps_running_kernels(stack, working_student):
    student, kernel_id = working_student
    stack.compose("restart", "hub")
    stack.wait_healthy()
    assert_work_kept(stack, student, kernel_id)
    assert "Cleaning up single-user servers" not in stack.compose("logs", "hub").stdout


def test_a_setting_changed_mid_lesson_keeps_running_kernels(stack, working_student):
    student, kernel_id = working_student
    hub_before = stack.compose("ps", "-q", "hub").stdout.strip()
    try:
        stack.apply_settings({**stack.settings, "CULL_IDLE_TIMEOUT": "2h"})
        assert stack.compose("ps", "-q", "hub").stdout.strip() != hub_before, "the hub was not recreated"
        assert_work_kept(stack, student, kernel_id)
    finally:
        stack.apply_settings(stack.settings)
    assert_work_kept(stack, student, kernel_id)


def test_a_crashed_hub_comes_back_and_keeps_running_kernels(stack, working_student):
    student, kernel_id = working_student
    kill_the_hub_process(stack)
    assert_work_kept(stack, student, kernel_id)


@pytest.mark.parametrize("service", ["gateway", "postgres"])
def test_restarting_the_gateway_or_the_database_keeps_running_kernels(stack, working_student, service):
    student, kernel_id = working_student
    stack.compose("restart", service)
    stack.wait_healthy()
    assert_work_kept(stack, student, kernel_id)
    # And the AI works again in the same kernel, through the gateway, into the ledger.
    rows_before = int(stack.psql(f"SELECT count(*) FROM ai_usage WHERE username = '{student.username}'"))
    output = execute_once_back(student, kernel_id, "%%ai ollama:qwen2.5:0.5b\nSay hello.", timeout=120)
    assert output.strip()
    assert int(stack.psql(f"SELECT count(*) FROM ai_usage WHERE username = '{student.username}'")) > rows_before


def student_containers(stack) -> list[str]:
    return run(["docker", "ps", "-a", "--format", "{{.Names}}",
                "--filter", f"label=org.aihub.project={stack.project}"]).stdout.split()


def test_stop_and_start_stop_the_students_servers_and_keep_their_files(stack, server):
    server.run_cell("open('kept-across-stop.txt', 'w').write('still here')")
    assert student_containers(stack)
    stack.compose("stop", timeout=300)
    assert student_containers(stack) == [], "`docker compose stop` left students' servers running"
    stack.compose("start", timeout=300)
    stack.wait_healthy()
    assert not server.server_running(), "the hub still lists a server that the stack's stop ended"
    server.start_server()
    server.open_lab()
    assert server.run_cell("print(open('kept-across-stop.txt').read())").strip() == "still here"


def test_compose_down_leaves_no_student_server(stack, server):
    assert student_containers(stack)
    stack.down()
    assert student_containers(stack) == [], "`docker compose down` left students' servers behind"
    stack.up()
