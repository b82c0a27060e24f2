"""The stack end to end, driven as an admin and a student would, in the order they would.

Tests in this module share one running stack and build on each other (sign-up before
spawn, a file written before it is looked for), so they run in file order.
"""

import json


from .browser import Browser
from .stack import run

NOTE = "/home/jovyan/note.txt"
WRITE_NOTE = f"open('{NOTE}', 'w').write('kept across respawns')\nimport os\nprint(os.getuid(), os.stat('/home/jovyan').st_uid)"
READ_NOTE = f"print(open('{NOTE}').read())"


def test_login_page_and_health(stack):
    assert stack.http_status("/hub/health") == 200
    page = Browser(stack.url).page("/hub/login")
    assert page.status_code == 200
    assert 'name="password"' in page.text and "/hub/signup" in page.text


def test_secrets_are_generated_not_defaults(stack):
    user, password = stack.admin_login()
    assert user == "admin"
    assert len(password) >= 12 and password.lower() not in {"admin", "password", "changeme"}
    # The database password is generated too, and is what PostgreSQL was initialised with.
    db_password = stack.compose("exec", "-T", "hub", "cat", "/srv/secrets/postgres_password").stdout.strip()
    assert len(db_password) >= 24


def test_admin_name_cannot_be_claimed_by_sign_up(stack, admin):
    intruder = Browser(stack.url)
    assert "already in use" in intruder.sign_up("admin", "intruder-password")
    intruder.log_in("admin", "intruder-password")
    assert not intruder.is_logged_in()


def test_an_admin_lands_on_the_hub_without_starting_a_server(stack, admin):
    response = admin.log_in(*stack.admin_login())
    assert response.url.endswith("/hub/home"), response.url
    assert not admin.server_running(), "logging in started the admin's own server"


def test_student_spawns_and_runs_a_cell(stack, student, figures):
    figures["first spawn of a student server (API start to ready)"] = f"{student.start_server():.1f} s"
    student.open_lab()
    uid, home_owner = student.run_cell(WRITE_NOTE).split()
    assert (uid, home_owner) == ("1000", "1000"), "the server must run as jovyan and own its home volume"
    listing = student.api("GET", student.server_path + "/api/contents/").json()
    assert "note.txt" in [item["name"] for item in listing["content"]]


def test_student_container_is_confined(stack, student, figures):
    container = stack.user_container(student.username)
    info = json.loads(run(["docker", "inspect", container]).stdout)[0]
    assert info["Config"]["User"] in ("jovyan", "1000")
    assert all("docker.sock" not in mount["Source"] for mount in info["Mounts"])
    assert list(info["NetworkSettings"]["Networks"]) == [f"{stack.project}-users"]
    assert info["HostConfig"]["Memory"] == 1024**3
    assert info["HostConfig"]["CpuQuota"] / info["HostConfig"]["CpuPeriod"] == 1.0  # one CPU
    volume = [mount for mount in info["Mounts"] if mount["Destination"] == "/home/jovyan"]
    assert volume and volume[0]["Name"] == f"{stack.project}-user-{student.username}"
    # The database is on a network the student's container is not on: by name or address.
    postgres = stack.compose("ps", "-q", "postgres").stdout.strip()
    db_ip = next(iter(json.loads(run(["docker", "inspect", postgres]).stdout)[0]["NetworkSettings"]["Networks"].values()))["IPAddress"]
    for host in ("postgres", db_ip):
        probe = run(["docker", "exec", container, "python", "-c",
                     f"import socket; socket.create_connection(('{host}', 5432), timeout=5)"], check=False)
        assert probe.returncode != 0, f"a student's container reached PostgreSQL at {host}"
    assert run(["docker", "exec", container, "test", "-e", "/var/run/docker.sock"], check=False).returncode != 0
    memory = run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container]).stdout.split("/")[0]
    figures["memory of a student container after one cell"] = memory.strip()


def test_files_survive_container_removal_and_respawn(stack, student, figures):
    student.stop_server()
    container = stack.user_container(student.username)
    assert run(["docker", "inspect", container], check=False).returncode != 0, "the stopped container was not removed"
    figures["respawn of a student server"] = f"{student.start_server():.1f} s"
    student.open_lab()
    assert student.run_cell(READ_NOTE).strip() == "kept across respawns"


def test_admins_query_the_users_table(stack, student):
    # The README's query, through the README's psql command.
    rows = stack.psql("SELECT name, admin, last_activity FROM users ORDER BY name")
    accounts = {line.split("|")[0]: line.split("|")[1] for line in rows.splitlines()}
    assert accounts.get("admin") == "t" and accounts.get(student.username) == "f"


def test_metrics_and_services_for_admins_only(stack, admin, student):
    metrics = admin.page("/hub/metrics")
    assert metrics.status_code == 200 and "jupyterhub_" in metrics.text
    assert student.page("/hub/metrics").status_code == 403
    assert Browser(stack.url).page("/hub/metrics").status_code in (401, 403)
    services = admin.api("GET", "/hub/api/services").json()
    assert "idle-culler" in services


def test_students_are_not_asked_about_jupyter_news(stack, server):
    setting = server.api("GET", server.server_path + "/lab/api/settings/@jupyterlab/apputils-extension:notification")
    assert setting.status_code == 200, setting.text
    # The image's overrides.json is JupyterLab's default for everyone ("false": never ask, never fetch).
    defaults = {name: value["default"] for name, value in setting.json()["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False
