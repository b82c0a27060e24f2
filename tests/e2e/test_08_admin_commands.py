"""What the README promises admins, done as an admin does it: a name added in the admin
panel is approved at sign-up; `aihub.students` lists students with their (escaped)
volumes and deletes one completely; `backup create`/`restore` carry a class through
`docker compose down -v` into a fresh stack.

Uses only the fixtures. The stack is left up and working for the files that follow,
with alice (the student fixture) restored as she was.
"""

import json
import re
import subprocess
import tarfile
import time
import uuid

from .browser import Browser
from .stack import run
from .test_02_ai import ASK_DEEPSEEK

ADDED = "li-lei"  # escaped in Docker names: li-2dlei
PASSWORD = "li-lei-password-1"


def students_tool(stack, *args, check=True):
    return stack.compose("exec", "-T", "hub", "python", "-m", "aihub.students", *args, check=check)


def ledger_rows(stack, name: str) -> int:
    return int(stack.psql(f"SELECT count(*) FROM ai_usage WHERE username = '{name}'").strip())


def test_a_name_the_admin_added_is_approved_at_sign_up(stack, admin):
    response = admin.api("POST", f"/hub/api/users/{ADDED}")
    assert response.status_code == 201, response.text
    student = Browser(stack.url)
    message = student.sign_up(ADDED, PASSWORD)
    assert "sent to the admin" not in message and "log in" in message, message[-600:]
    student.log_in(ADDED, PASSWORD)
    assert student.is_logged_in(), "the name the admin added could not log in after signing up"


def test_students_list_shows_each_escaped_volume_and_its_size(stack):
    student = Browser(stack.url)
    student.log_in(ADDED, PASSWORD)  # logging in starts her server
    student.wait_until_ready()
    student.open_lab()
    student.run_cell("open('/home/jovyan/homework.txt', 'w').write('x' * 100000)")
    assert student.run_cell(ASK_DEEPSEEK, timeout=180).strip()
    listing = students_tool(stack, "list").stdout
    print(listing)  # shown with pytest -rP
    line = next(line for line in listing.splitlines() if line.startswith(ADDED + " "))
    assert "approved" in line and "running" in line, listing
    assert f"{stack.project}-user-li-2dlei" in line, listing
    assert re.search(r" \d+\.\d (KiB|MiB)$", line.rstrip()), listing  # her 100 kB file, measured


def test_deleting_a_student_removes_everything_and_frees_the_name(stack, admin):
    volume = f"{stack.project}-user-li-2dlei"
    unknown = students_tool(stack, "delete", "li-le", "--yes", check=False)
    assert unknown.returncode == 2 and "no student named 'li-le'" in unknown.stderr, unknown.stderr
    unconfirmed = students_tool(stack, "delete", ADDED, check=False)
    assert unconfirmed.returncode == 2 and "add --yes" in unconfirmed.stderr, unconfirmed.stderr
    assert ledger_rows(stack, ADDED) >= 1

    deleted = students_tool(stack, "delete", ADDED, "--ledger", "--yes")
    assert f"volume {volume} removed" in deleted.stdout, deleted.stdout
    assert admin.api("GET", f"/hub/api/users/{ADDED}").status_code == 404
    assert run(["docker", "volume", "inspect", volume], check=False).returncode != 0
    assert run(["docker", "inspect", stack.user_container("li-2dlei")], check=False).returncode != 0
    assert stack.psql(f"SELECT count(*) FROM users_info WHERE username = '{ADDED}'").strip() == "0"
    assert ledger_rows(stack, ADDED) == 0
    assert ADDED not in students_tool(stack, "list").stdout
    # The name is free again, as any new name: this sign-up waits for the admin.
    assert "sent to the admin" in Browser(stack.url).sign_up(ADDED, "another-password-2")
    students_tool(stack, "delete", ADDED, "--yes")


def backup_tool(stack, command: str, archive, check: bool = True) -> subprocess.CompletedProcess:
    """`docker compose run --rm -T backup create > archive` (or `restore < archive`)."""
    files = [arg for name in stack.compose_files for arg in ("-f", name)]
    redirect = {"stdout": archive} if command == "create" else {"stdin": archive, "stdout": subprocess.PIPE}
    result = subprocess.run(["docker", "compose", *files, "run", "--rm", "-T", "backup", command],
                            cwd=stack.workdir, stderr=subprocess.PIPE, timeout=600, **redirect)
    assert result.returncode == 0 or not check, \
        f"backup {command} exited {result.returncode}:\n{result.stderr.decode()[-3000:]}"
    return result


def test_a_class_survives_down_v_through_backup_and_restore(stack, admin, server, student_credentials, tmp_path,
                                                             figures):
    username, password = student_credentials
    proof = uuid.uuid4().hex
    server.run_cell(f"import os; os.makedirs('/home/jovyan/notes', exist_ok=True); "
                    f"open('/home/jovyan/notes/proof.txt', 'w').write('{proof}')")
    assert server.run_cell(ASK_DEEPSEEK, timeout=180).strip()
    rows = ledger_rows(stack, username)
    assert rows >= 1

    archive = tmp_path / "class.tar"
    started = time.monotonic()
    with archive.open("wb") as out:
        created = backup_tool(stack, "create", out)
    figures["backup create (one student), archive size"] = (
        f"{time.monotonic() - started:.1f} s, {archive.stat().st_size / 2**20:.1f} MiB")
    progress = created.stderr.decode()
    print(progress)
    assert "backup complete" in progress, progress[-2000:]
    assert "database (pg_dump):" in progress and f"] {stack.project}-user-{username}:" in progress, progress[-2000:]
    with tarfile.open(archive) as contents:
        names = contents.getnames()
        manifest = json.load(contents.extractfile("aihub-backup.json"))
    assert manifest["volumes"][f"{stack.project}-user-{username}"] == username
    assert "database.dump" in names and "secrets/postgres_password" in names
    assert f"volumes/{stack.project}-user-{username}/notes/proof.txt" in names

    # The class is gone: database, secrets and every student's files.
    stack.down(volumes=True)
    run(["docker", "volume", "rm", "-f", *stack.user_volumes()])
    assert not stack.user_volumes()

    started = time.monotonic()
    with archive.open("rb") as source:
        restored = backup_tool(stack, "restore", source)
    figures["backup restore into a fresh stack (compose starts postgres)"] = f"{time.monotonic() - started:.1f} s"
    print(restored.stderr.decode())
    assert "restore complete" in restored.stderr.decode(), restored.stderr.decode()[-2000:]
    stack.compose("up", "-d", "--wait")
    stack.wait_healthy()

    returning = Browser(stack.url)
    returning.log_in(username, password)
    assert returning.is_logged_in(), "the student could not log in with her password after the restore"
    returning.wait_until_ready()
    returning.open_lab()
    assert returning.run_cell("print(open('/home/jovyan/notes/proof.txt').read())").strip() == proof
    owner = returning.run_cell("import os; print(os.stat('/home/jovyan').st_uid, os.access('/home/jovyan', os.W_OK))")
    assert owner.strip() == "1000 True"
    assert ledger_rows(stack, username) == rows

    # A restore goes only into a fresh stack: this one now holds a class.
    with archive.open("rb") as source:
        again = backup_tool(stack, "restore", source, check=False)
    assert again.returncode == 2 and b"already holds the hub's accounts" in again.stderr, again.stderr[-2000:]
