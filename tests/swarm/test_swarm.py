"""The bundle on a Docker Swarm of a manager and two workers (tests/swarm/cluster.py),
deployed from docker-stack.yml with the README's commands: students sign up and are
approved, their servers spread over both workers, each runs a cell and a %%ai cell
through the gateway (metered in the ledger, within budgets), %%ai answers again after a
gateway or database restart, a hub restart keeps their kernels, and a
drained worker's students are told which node holds their files, until it is back."""

import time

import pytest

from e2e.browser import Browser
from e2e.test_02_ai import ASK_OLLAMA

from .cluster import MANAGER, STACK, WORKERS

PASSWORD = "correct-horse-battery"
STUDENTS = ("ana", "ben", "cai", "dan")


@pytest.fixture(scope="module")
def students(cluster, swarm_admin):
    """Students who signed up, were approved, logged in, and whose servers are ready."""
    browsers = {}
    for name in STUDENTS:
        browser = Browser(cluster.hub_url)
        assert "sent to the admin" in browser.sign_up(name, PASSWORD)
        swarm_admin.approve(name)
        browser.log_in(name, PASSWORD)  # logging in starts the server
        assert browser.is_logged_in()
        browser.wait_until_ready(300)  # the first on a worker pulls the image there
        browsers[name] = browser
    return browsers


def test_the_hub_database_and_gateway_run_on_the_manager(cluster, figures):
    nodes = cluster.docker(MANAGER, "node", "ls").stdout
    figures["swarm: $ docker node ls"] = "\n" + nodes.rstrip()
    assert all(name in nodes for name in (MANAGER, *WORKERS))
    for service in ("hub", "postgres", "gateway", "ollama"):
        assert cluster.node_of(f"{STACK}_{service}") == MANAGER, service


def test_students_servers_spread_over_both_workers_and_answer(cluster, students, figures):
    placed = {name: cluster.node_of(f"{STACK}-{name}") for name in students}
    listing = cluster.docker(MANAGER, "service", "ps", "--format", "{{.Name}} {{.Node}} {{.CurrentState}}",
                             *(f"{STACK}-{name}" for name in students)).stdout
    figures[f"swarm: $ docker service ps {' '.join(f'{STACK}-{name}' for name in students)}"] = "\n" + listing.rstrip()
    assert set(placed.values()) == set(WORKERS), placed
    figures["swarm: students' servers by node"] = ", ".join(f"{name} on {node}" for name, node in placed.items())
    for name, browser in students.items():
        browser.open_lab()
        host = browser.run_cell(f"import socket, pathlib\npathlib.Path('mine.txt').write_text('{name}')\n"
                                "print(socket.gethostname(), 6 * 7)")
        assert host.split()[1] == "42", host
        started = time.monotonic()
        answer = browser.run_cell(ASK_OLLAMA, timeout=180)
        assert answer.strip() and "Traceback" not in answer, answer
        figures[f"swarm: {name}'s %%ai on {placed[name]}"] = f"{time.monotonic() - started:.1f} s"


def test_every_students_ai_call_is_in_the_ledger(cluster, students):
    rows = cluster.psql("SELECT DISTINCT username FROM ai_usage WHERE status = 'ok'").split()
    assert set(STUDENTS) <= set(rows), rows


def test_a_students_budget_holds_on_the_swarm(cluster, students):
    cluster.psql("INSERT INTO ai_budget_overrides (username, daily_tokens) VALUES ('cai', 1)")
    try:
        output = students["cai"].run_cell(ASK_OLLAMA, timeout=180, expect_ok=False).strip()
        assert "daily AI budget of 1 tokens used; resets at 00:00 UTC" in output, output
    finally:
        cluster.psql("DELETE FROM ai_budget_overrides WHERE username = 'cai'")


@pytest.mark.parametrize("service", ["gateway", "postgres"])
def test_after_a_restart_of_the_gateway_or_database_ai_answers_again(cluster, students, service, figures):
    cluster.docker(MANAGER, "service", "update", "--force", "--quiet", f"{STACK}_{service}")
    started, deadline = time.monotonic(), time.monotonic() + 180
    while True:  # as a student would, running the cell again until it answers
        answer = students["ben"].run_cell(ASK_OLLAMA, timeout=180, expect_ok=False)
        if answer.strip() and "Traceback" not in answer and "Error" not in answer[:40]:
            break
        assert time.monotonic() < deadline, f"no %%ai answer 180 s after restarting {service}: {answer}"
        time.sleep(3)
    figures[f"swarm: {service} restarted (service update --force) to an %%ai answer"] = \
        f"{time.monotonic() - started:.1f} s"


def test_the_idle_culler_runs_beside_the_hub(cluster, swarm_admin):
    services = swarm_admin.api("GET", "/hub/api/services").json()
    assert {"idle-culler", "ai-gateway"} <= set(services), services
    assert services["idle-culler"]["pid"], services["idle-culler"]


def test_a_hub_restart_keeps_students_kernels(cluster, students):
    browser = students["ana"]
    kernel = browser.start_kernel()
    browser.execute(kernel, "x = 'still here'")
    cluster.docker(MANAGER, "service", "update", "--force", "--quiet", f"{STACK}_hub")
    cluster.wait_hub()
    deadline = time.monotonic() + 60
    while True:
        try:
            assert browser.execute(kernel, "print(x)").strip() == "still here"
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def test_a_drained_workers_students_are_told_where_their_files_are(cluster, students, figures):
    drained = WORKERS[0]
    on_drained = [name for name in students if cluster.node_of(f"{STACK}-{name}") == drained]
    elsewhere = [name for name in students if name not in on_drained]
    assert on_drained and elsewhere
    cluster.docker(MANAGER, "node", "update", "--availability", "drain", drained)
    try:
        started = time.monotonic()
        # Their servers cannot move without their files: the hub sees them stop.
        for name in on_drained:
            deadline = time.monotonic() + 120
            while students[name].server_running():
                assert time.monotonic() < deadline, f"{name}'s server still counted as running"
                time.sleep(2)
        figures["swarm: drained worker's servers seen stopped by the hub"] = f"{time.monotonic() - started:.1f} s"
        # ...and removes their services: none waits to start behind the hub's back when
        # the node returns.
        listing = cluster.docker(MANAGER, "service", "ls", "--format", "{{.Name}} {{.Replicas}}").stdout
        assert not [name for name in on_drained if f"{STACK}-{name} " in listing], listing
        figures[f"swarm: $ docker node update --availability drain {drained}; docker service ls"] = "\n" + listing.rstrip()
        # Starting again says which node holds the files and what the admin can do.
        browser = students[on_drained[0]]
        message = spawn_failure(browser)
        figures[f"swarm: {browser.username} presses Start"] = message
        assert f"worker node {drained}, which is drained" in message, message
        assert f"docker node update --availability active {drained}" in message, message
        # The other worker's students work on.
        for name in elsewhere:
            assert students[name].run_cell("print(6 * 7)").strip() == "42"
    finally:
        cluster.docker(MANAGER, "node", "update", "--availability", "active", drained)
    # Back: the student's server returns to that node, files and all.
    browser.start_server(180)
    assert cluster.node_of(f"{STACK}-{browser.username}") == drained
    browser.open_lab()
    assert browser.run_cell("print(open('mine.txt').read())").strip() == browser.username


def spawn_failure(browser: Browser, timeout: float = 60) -> str:
    """Press Start and return the failure the spawn page would show."""
    browser.api("POST", f"/hub/api/users/{browser.username}/server")
    deadline = time.monotonic() + timeout
    with browser.api("GET", f"/hub/api/users/{browser.username}/server/progress", stream=True) as events:
        for line in events.iter_lines(decode_unicode=True):
            if '"failed": true' in line:
                return line
            assert time.monotonic() < deadline and '"ready": true' not in line, line
    raise AssertionError("the progress stream ended without a failure")
