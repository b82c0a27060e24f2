"""AI in every notebook, end to end: a student's kernel asks the local Ollama and a vendor.

The vendor is `vendor-upstream` on the users network (tests/e2e/compose.e2e.yml): the
Ollama stand-in serving real tokens from a tiny model under the vendor's model name, at
DEEPSEEK_BASE_URL, which the gateway calls for the students. `proxy` is a real
tinyproxy for USE_AI_PROXY.
"""

import re
import time

import pytest

from .stack import run

ASK_OLLAMA = "%%ai ollama:qwen2.5:0.5b\nExplain a Python list comprehension in one sentence."
ASK_DEEPSEEK = "%%ai deepseek:deepseek-chat\nWhat is a Python generator?"


def test_models_were_pulled_on_first_start(stack):
    logs = stack.compose("logs", "ollama-pull").stdout
    assert "qwen2.5:0.5b" in logs and "%" in logs, logs[-500:]
    state = run(["docker", "inspect", "-f", "{{.State.ExitCode}}", stack.compose("ps", "-a", "-q", "ollama-pull").stdout.strip()])
    assert state.stdout.strip() == "0"
    assert "qwen2.5:0.5b" in stack.compose("exec", "-T", "ollama", "ollama", "list").stdout


def test_ollama_is_not_published_on_the_host(stack):
    assert stack.compose("port", "ollama", "11434", check=False).stdout.strip() in ("", ":0")


def test_a_fresh_notebook_asks_the_local_model(stack, server, figures):
    started = time.monotonic()
    answer = server.run_cell(ASK_OLLAMA, timeout=180)
    figures["first %%ai ollama call, cell to answer (stand-in)"] = f"{time.monotonic() - started:.1f} s"
    assert answer.strip(), "the model's answer is empty"
    assert "Traceback" not in answer and "Error" not in answer[:40]


def test_a_configured_vendor_answers_through_its_base_url(stack, server):
    answer = server.run_cell(ASK_DEEPSEEK, timeout=180)
    assert answer.strip() and "Traceback" not in answer
    upstream_log = stack.compose("logs", "vendor-upstream").stdout
    assert re.search(r"POST\s+\"?/v1/chat/completions", upstream_log), upstream_log[-800:]


def test_the_chat_panel_answers(server):
    reply = server.chat("Explain a Python list comprehension in one sentence.")
    assert reply.strip()
    assert "error" not in reply.lower()[:200], reply[:300]


def test_the_chat_panel_lists_only_configured_providers(server):
    providers = server.api("GET", server.server_path + "/api/ai/providers").json()["providers"]
    assert {provider["id"] for provider in providers} == {"ollama", "deepseek"}


@pytest.mark.parametrize("cell, must_name", [
    ("%%ai moonshot:kimi-k2-0905-preview\nhello", "MOONSHOT_API_KEY"),
    ("%%ai ollama:no-such-model\nhello", "qwen2.5:0.5b"),
])
def test_errors_read_like_help_in_one_or_two_lines(server, cell, must_name):
    output = server.run_cell(cell, expect_ok=False).strip()
    assert must_name in output, output
    assert "Traceback" not in output and len(output.splitlines()) <= 2, output


def test_no_vendor_key_reaches_the_hub_log(stack):
    assert stack.settings["DEEPSEEK_API_KEY"] not in stack.compose("logs", "hub").stdout


# tests/proxy/tinyproxy.conf asks for this login; the password is pr0xy-secret, written
# percent-encoded as a site's admin would for any special character.
PROXY_PASSWORD = "pr0xy-secret"
PROXY_URL = "http://student:pr0xy%2Dsecret@proxy:8888"


def test_proxy_carries_vendor_calls_but_not_internal_ones(stack, student):
    """The gateway makes the vendor calls: through the proxy, with its login; Ollama's
    stay direct; the password shows in no log."""
    try:
        if student.server_running():
            student.stop_server()
        stack.apply_settings({**stack.settings, "USE_AI_PROXY": "true", "AI_PROXY_URL": PROXY_URL})
        student.start_server()
        student.open_lab()
        env = student.run_cell("import os; print(os.environ['HTTPS_PROXY'], os.environ['NO_PROXY'])").split()
        assert env[0] == PROXY_URL and "ollama" in env[1].split(",")
        # the proxy demands its login: without it, 407
        refused = student.run_cell(
            "import urllib.request, urllib.error\n"
            "opener = urllib.request.build_opener(urllib.request.ProxyHandler({'http': 'http://proxy:8888'}))\n"
            "try:\n    opener.open('http://vendor-upstream:11434/', timeout=30)\n"
            "except urllib.error.HTTPError as error:\n    print(error.code)")
        assert refused.strip() == "407", refused
        # ...and the students' own clients decode the one they are given (HTTP_PROXY)
        through = student.run_cell(
            "import urllib.request\nprint(urllib.request.urlopen('http://vendor-upstream:11434/', timeout=30).status)")
        assert through.strip() == "200", through
        since = time.time()
        answer = student.run_cell(ASK_DEEPSEEK, timeout=180)
        assert answer.strip() and "AI_PROXY_URL" not in answer and "407" not in answer, answer
        assert student.run_cell(ASK_OLLAMA, timeout=180).strip()
        proxy_log = stack.compose("logs", "--since", str(int(since) - 1), "proxy").stdout
        assert "vendor-upstream" in proxy_log, proxy_log[-800:]
        assert "ollama:11434" not in proxy_log
        logs = stack.compose("logs")
        for text in (logs.stdout, logs.stderr):
            assert PROXY_PASSWORD not in text and "pr0xy%2Dsecret" not in text
    finally:
        student.stop_server()
        stack.apply_settings(stack.settings)
