"""Restarts and configuration, last: these tests stop and recreate the stack's services."""

import re
import time

import pytest

from .browser import Browser
from .stack import run
from .test_01_accounts_and_servers import READ_NOTE


def test_down_and_up_keep_accounts_secrets_and_files(stack, student_credentials, figures):
    before = stack.admin_login()
    stack.down()
    assert f"{stack.project}-user-{student_credentials[0]}" in stack.user_volumes()
    figures["compose up -d (images built) to healthy hub"] = f"{stack.up():.1f} s"
    assert stack.admin_login() == before
    admin = Browser(stack.url)
    admin.log_in(*before)
    assert admin.is_logged_in()
    student = Browser(stack.url)
    student.log_in(*student_credentials)
    assert student.is_logged_in()
    student.start_server()
    student.open_lab()
    assert student.run_cell(READ_NOTE).strip() == "kept across respawns"


@pytest.mark.parametrize("variable, value", [
    ("USER_MEM_LIMIT", "lots"),
    ("POSTGRES_PORT", "99999"),
    ("AUTH_MODE", "ldap"),
])
def test_bad_setting_stops_the_hub_with_one_line(stack, variable, value):
    result = stack.compose("run", "--rm", "--no-deps", "-T", "-e", f"{variable}={value}", "hub", check=False)
    output = (result.stdout + result.stderr).strip().splitlines()
    errors = [line for line in output if "configuration error" in line]
    assert result.returncode == 2
    assert len(errors) == 1 and variable in errors[0] and value in errors[0], output
    assert not any("Traceback" in line for line in output)


def test_no_secret_in_logs(stack):
    logs = stack.compose("logs", "--no-log-prefix").stdout + stack.compose("logs", "--no-log-prefix").stderr
    secret_files = ("admin_password", "postgres_password", "hub_cookie_secret", "proxy_auth_token")
    for name in secret_files:
        value = stack.compose("exec", "-T", "hub", "cat", f"/srv/secrets/{name}").stdout.strip()
        assert value and value not in logs, f"{name} appears in the stack's logs"



def spawn_and_measure(stack, student, samples: int = 2) -> tuple[float, str]:
    """Best spawn time of `samples` spawns, and the idle server's memory."""
    times = []
    for _ in range(samples):
        if student.server_running():
            student.stop_server()
        times.append(student.start_server())
    time.sleep(5)  # let the new server settle before reading its memory
    container = stack.user_container(student.username)
    memory = run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container]).stdout
    return min(times), memory.split("/")[0].strip()


def test_ai_layer_cost_and_the_exam_switch(stack, student_credentials, figures):
    """Spawn time and idle memory with the AI layer and with AI_ENABLED=false, in one run."""
    student = Browser(stack.url)
    student.log_in(*student_credentials)
    with_ai, memory_before_chat_panel = spawn_and_measure(stack, student)
    container = stack.user_container(student.username)
    # The server starts without Jupyter AI; JupyterLab's chat panel loads it on first use.
    assert "Initialized Jupyter AI" not in run(["docker", "logs", container]).stderr
    student.open_lab()
    assert student.api("GET", student.server_path + "/api/ai/config").status_code == 200
    logs = run(["docker", "logs", container]).stderr
    init = re.search(r"Initialized Jupyter AI server extension in (\d+) ms", logs)
    assert init, "the chat panel's first request did not load the Jupyter AI server extension"
    figures["Jupyter AI server extension init (chat panel's first request)"] = f"{init[1]} ms"
    time.sleep(3)
    memory_with_ai = run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container]).stdout
    memory_with_ai = f"{memory_with_ai.split('/')[0].strip()} (before the chat panel: {memory_before_chat_panel})"
    try:
        student.stop_server()
        stack.apply_settings({**stack.settings, "AI_ENABLED": "false"})
        without_ai, memory_without_ai = spawn_and_measure(stack, student)
        student.open_lab()
        output = student.run_cell("%%ai ollama:qwen2.5:0.5b\nhello", expect_ok=False)
        assert "not found" in output, "with AI_ENABLED=false, %%ai must not exist"
        env = student.run_cell("import os; print(sorted(k for k in os.environ if k.endswith(('_API_KEY', '_BASE_URL'))"
                               " and not k.startswith('JUPYTERHUB_')))")
        assert env.strip() == "[]", env
    finally:
        student.stop_server()
        stack.apply_settings(stack.settings)
    figures["spawn with AI layer / without (best of 2 each)"] = (
        f"{with_ai:.1f} s / {without_ai:.1f} s (ratio {with_ai / without_ai:.2f})")
    figures["idle student server memory with AI layer / without"] = f"{memory_with_ai} / {memory_without_ai}"
