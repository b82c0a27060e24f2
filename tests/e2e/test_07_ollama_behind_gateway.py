"""Ollama behind the gateway: students reach it only through the gateway, which meters it.

With the default AI_KEY_MODE=gateway, Ollama is on the models network with the gateway
alone; a student's container has OLLAMA_HOST at the gateway's /ollama and its server
token as OLLAMA_API_KEY, so `import ollama` and `requests` code work unchanged and leave
ledger rows. The last test switches to AI_KEY_MODE=direct (no gateway), where students'
containers join the models network, and back.
"""

import json

from .stack import run

MODEL = "qwen2.5:0.5b"

# From a student's notebook: Ollama by name, and by its address on the models network.
REACH = """
import socket
for host in {hosts!r}:
    try:
        socket.create_connection((host, 11434), timeout=5).close()
        print(host, "reached")
    except OSError as error:
        print(host, "unreachable", type(error).__name__)
"""
OLLAMA_CLIENT = f"""
import json, ollama
parts = list(ollama.chat(model={MODEL!r}, messages=[{{"role": "user", "content": "Say hello."}}], stream=True))
print(json.dumps({{"done": parts[-1].done, "eval_count": parts[-1].eval_count,
                  "text": "".join(p.message.content for p in parts)}}))
"""
# As in the tutorials, with the container's address and token.
REQUESTS_CODE = f"""
import os, requests
response = requests.post(os.environ["OLLAMA_HOST"] + "/api/generate",
                         headers={{"Authorization": "Bearer " + os.environ.get("OLLAMA_API_KEY", "")}},
                         json={{"model": {MODEL!r}, "prompt": "你好", "stream": False}})
print(response.status_code, response.json()["eval_count"])
"""


def ollama_address(stack) -> str:
    container = stack.compose("ps", "-q", "ollama").stdout.strip()
    return run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                container]).stdout.split()[0]


def last_row(stack) -> str:
    return stack.psql("SELECT username, provider, model, endpoint, stream, status, completion_tokens"
                      " FROM ai_usage ORDER BY id DESC LIMIT 1").strip()


def test_a_student_cannot_reach_ollama_directly(stack, server):
    output = server.run_cell(REACH.format(hosts=["ollama", ollama_address(stack)]), timeout=60)
    lines = output.strip().splitlines()
    assert len(lines) == 2 and all(line.split()[1] == "unreachable" for line in lines), output
    networks = run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}",
                    stack.user_container(server.username)]).stdout
    assert list(json.loads(networks)) == [f"{stack.project}-users"]


def test_the_ollama_client_goes_through_the_gateway_and_is_metered(stack, server):
    env = server.run_cell("import os; print(os.environ['OLLAMA_HOST'])").strip()
    assert env == "http://gateway:8090/ollama"
    answer = json.loads(server.run_cell(OLLAMA_CLIENT, timeout=180).strip().splitlines()[-1])
    assert answer["done"] and answer["text"].strip()
    assert last_row(stack) == f"{server.username}|ollama|{MODEL}|api/chat|t|ok|{answer['eval_count']}"


def test_requests_code_goes_through_the_gateway_and_is_metered(stack, server):
    status, eval_count = server.run_cell(REQUESTS_CODE, timeout=180).split()
    assert status == "200"
    assert last_row(stack) == f"{server.username}|ollama|{MODEL}|api/generate|f|ok|{eval_count}"


def test_without_a_gateway_students_reach_ollama_directly(stack, student):
    """AI_KEY_MODE=direct: nothing stands between students and Ollama (nor meters them)."""
    try:
        if student.server_running():
            student.stop_server()
        stack.apply_settings({**stack.settings, "AI_KEY_MODE": "direct"})
        student.start_server()
        student.open_lab()
        assert student.run_cell("import os; print(os.environ['OLLAMA_HOST'])").strip() == "http://ollama:11434"
        answer = json.loads(student.run_cell(OLLAMA_CLIENT, timeout=180).strip().splitlines()[-1])
        assert answer["done"] and answer["text"].strip()
    finally:
        student.stop_server()
        stack.apply_settings(stack.settings)
