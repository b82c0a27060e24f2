"""A thinking model's reasoning, end to end: shown apart from the answer in a student's
`%%ai` cell and chat panel, kept out of generated code.

The model is the Ollama stand-in's qwen3:0.6b, which thinks as Ollama's qwen3 does
(tests/ollama-standin/README.md): asked plainly over the OpenAI-compatible API, its
reasoning comes first in the answer between <think> tags; with `reasoning_effort`, in a
`reasoning` field of its own. Both reach the student through the gateway.
"""

import ast

import pytest

THINKING_MODEL = "qwen3:0.6b"
OPENING = "<details><summary>Thinking</summary>\n\n> "
CLOSING = "\n\n</details>\n\n"


@pytest.fixture(scope="module")
def thinking_model(stack):
    """The thinking model, pulled into the stack's Ollama as an admin would."""
    stack.compose("exec", "-T", "ollama", "ollama", "pull", THINKING_MODEL)
    return f"ollama:{THINKING_MODEL}"


def assert_thinking_above_the_answer(shown: str) -> None:
    assert shown.startswith(OPENING), shown[:300]
    reasoning, answer = shown[len(OPENING):].split(CLOSING, 1)
    assert reasoning.strip() and answer.strip(), shown
    assert "<think>" not in shown and "</think>" not in shown


@pytest.mark.parametrize("options", ["", ' -m {"reasoning_effort":"low"}'], ids=["think-tags", "reasoning-field"])
def test_an_ai_cell_shows_the_thinking_above_the_answer(server, thinking_model, options):
    shown = server.run_cell(f"%%ai {thinking_model}{options}\nIs 1001 a prime number?", timeout=180)
    assert_thinking_above_the_answer(shown)


def test_generated_code_is_the_answer_only(server, thinking_model):
    # The code goes into the next cell (a payload of the reply): read it in the same cell.
    printed = server.run_cell(
        "ip = get_ipython()\n"
        f"ip.run_cell_magic('ai', '{thinking_model} -f code', 'Print hello in Python')\n"
        "print(repr([p['text'] for p in ip.payload_manager.read_payload() if p.get('source') == 'set_next_input']))",
        timeout=180)
    [code] = ast.literal_eval(printed.strip().splitlines()[-1])
    assert code.strip()
    assert "think>" not in code and "Thinking" not in code and not code.startswith("> ")


def test_the_chat_panel_shows_the_thinking_above_the_answer(server, thinking_model):
    config = server.server_path + "/api/ai/config"
    before = server.api("GET", config).json()["model_provider_id"]
    assert server.api("POST", config, json={"model_provider_id": thinking_model}).status_code == 204
    try:
        assert_thinking_above_the_answer(server.chat("Is 1001 a prime number?"))
    finally:
        server.api("POST", config, json={"model_provider_id": before})
