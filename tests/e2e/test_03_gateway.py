"""Keys stay on the hub: students' AI calls go through the gateway, which meters them.

The stack runs with the default AI_KEY_MODE=gateway, so test_02_ai's cells already went
through it; here: the ledger, the budget, the admin report, and where the key is not.
"""

import csv
import io

from .stack import run
from .test_02_ai import ASK_DEEPSEEK


def test_no_vendor_key_in_a_students_container(stack, server):
    key = stack.settings["DEEPSEEK_API_KEY"]
    container = stack.user_container(server.username)
    assert key not in run(["docker", "inspect", container]).stdout
    found = run(["docker", "exec", container, "grep", "-rIl", "--", key, "/home", "/etc", "/opt", "/tmp", "/proc/self/environ"],
                check=False)
    assert found.returncode != 0 and not found.stdout, f"the key is in {found.stdout}"  # 2: unreadable files
    env = server.run_cell("import os; print(os.environ['DEEPSEEK_BASE_URL'])")
    assert env.strip() == "http://gateway:8090/deepseek/v1"


def test_a_students_call_is_in_the_ledger(stack, server):
    before = int(stack.psql("SELECT count(*) FROM ai_usage").strip())
    assert server.run_cell(ASK_DEEPSEEK, timeout=180).strip()
    row = stack.psql("SELECT username, provider, model, status, prompt_tokens > 0, completion_tokens > 0"
                     " FROM ai_usage ORDER BY id DESC LIMIT 1")
    assert row.strip() == f"{server.username}|deepseek|deepseek-chat|ok|t|t"
    assert int(stack.psql("SELECT count(*) FROM ai_usage").strip()) == before + 1


def test_an_over_budget_student_gets_one_line(stack, server):
    stack.psql(f"INSERT INTO ai_budget_overrides (username, daily_tokens) VALUES ('{server.username}', 1)"
               " ON CONFLICT (username) DO UPDATE SET daily_tokens = 1")
    try:
        output = server.run_cell(ASK_DEEPSEEK, expect_ok=False).strip()
        assert "daily AI budget of 1 tokens used; resets at 00:00 UTC" in output, output
        assert "Traceback" not in output and len(output.splitlines()) <= 2, output
    finally:
        stack.psql(f"DELETE FROM ai_budget_overrides WHERE username = '{server.username}'")


def test_admins_download_the_usage_csv(stack, admin, student):
    response = admin.page("/services/ai-gateway/usage.csv")
    assert response.status_code == 200, response.text[:300]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert any(row.get("username") == student.username for row in rows), response.text[:500]
    page = admin.page("/services/ai-gateway/")
    assert page.status_code == 200 and student.username in page.text


def test_students_are_refused_the_report(stack, student):
    assert student.page("/services/ai-gateway/").status_code == 403
    assert student.page("/services/ai-gateway/usage.csv").status_code == 403


def test_a_request_without_a_valid_token_costs_nothing(stack, server):
    before = stack.psql("SELECT count(*) FROM ai_usage").strip()
    code = ("import urllib.request, urllib.error\n"
            "req = urllib.request.Request('http://gateway:8090/deepseek/v1/chat/completions', data=b'{}',"
            " headers={'Authorization': 'Bearer not-a-token', 'Content-Type': 'application/json'})\n"
            "try:\n    urllib.request.urlopen(req)\nexcept urllib.error.HTTPError as e:\n    print(e.code)")
    assert server.run_cell(code).strip() == "401"
    assert stack.psql("SELECT count(*) FROM ai_usage").strip() == before


def test_students_cannot_reach_the_database_through_the_gateways_network(stack, server):
    probe = run(["docker", "exec", stack.user_container(server.username), "python", "-c",
                 "import socket; socket.create_connection(('postgres', 5432), timeout=5)"], check=False)
    assert probe.returncode != 0
