"""A thinking model's reasoning is metered like its answer on the OpenAI-compatible
routes: from the vendor's usage when it reports one, else estimated from the text of
the answer and of the reasoning, in whichever form the vendor sends it."""

import json
import math

import httpx
import pytest

from fake_openai import answer_for, reasoning_for, with_reasoning

from .conftest import DEEPSEEK_KEY

QUESTION = [{"role": "user", "content": "why does a thinking model think aloud"}]
MODES = ["reasoning_content", "reasoning", "tags"]


def ask(gateway, student, mode: str, stream: bool, usage: str) -> httpx.Response:
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=student.headers,
                          json={"model": "echo-1", "messages": QUESTION, "stream": stream,
                                "x_test": {"reasoning": mode, "usage": usage}})
    assert response.status_code == 200, response.text
    return response


def reasoning_in(response: httpx.Response, stream: bool) -> str:
    """The reasoning the student received, whatever its form."""
    if not stream:
        message = response.json()["choices"][0]["message"]
        return message.get("reasoning_content") or message.get("reasoning") or message["content"]
    deltas = [json.loads(e[6:])["choices"] for e in response.text.split("\n\n") if e.startswith("data: {")]
    return "".join(d[0]["delta"].get(name) or "" for d in deltas if d
                   for name in ("reasoning_content", "reasoning", "content"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_the_vendors_usage_counts_the_reasoning(mode, stream, gateway, student, database):
    alice = student()
    response = ask(gateway, alice, mode, stream, "last")
    thought = reasoning_for(QUESTION)
    assert thought in reasoning_in(response, stream)  # passed on to the student
    [row] = database.settled_rows(alice.name)
    answer_words = len(answer_for("echo-1", QUESTION).split())
    assert (row["completion_tokens"], row["estimated"]) == (answer_words + len(thought.split()), False)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_without_usage_the_estimate_counts_the_reasoning(mode, stream, gateway, student, database):
    alice = student()
    ask(gateway, alice, mode, stream, "none")
    text, fields, _ = with_reasoning(mode, reasoning_for(QUESTION), answer_for("echo-1", QUESTION))
    characters = len(text) + sum(len(value) for value in fields.values())
    [row] = database.settled_rows(alice.name)
    assert (row["completion_tokens"], row["estimated"]) == (math.ceil(characters / 4), True)
    assert len(reasoning_for(QUESTION)) / 4 >= 10  # the reasoning's share is no rounding error


def test_reasoning_reaches_the_student_byte_for_byte(gateway, upstream, student):
    payload = {"model": "echo-1", "messages": QUESTION, "stream": True,
               "x_test": {"reasoning": "reasoning_content"}}
    through = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=student().headers, json=payload)
    direct = httpx.post(f"{upstream.url}/v1/chat/completions", json=payload,
                        headers={"Authorization": f"Bearer {DEEPSEEK_KEY}"})
    assert through.content == direct.content
