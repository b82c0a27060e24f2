"""Ollama's own API through the gateway: authenticated, streamed, metered and limited.

Ollama here is the stand-in of tests/ollama-standin (its HTTP layer over real llama.cpp
inference on a tiny model) in a throwaway container, and the client is the official
`ollama` package, configured as in a student's container: OLLAMA_HOST at the gateway's
/ollama, OLLAMA_API_KEY the student's token.
"""

from __future__ import annotations

import json
import time

import httpx
import ollama
import pytest

from aihub.gateway.metering import Meter
from aihub.gateway.errors import GatewayError
from aihub.gateway.ollama_api import LineStream, answer_cap_of

from standin_images import ollama_standin
from throwaway_containers import SetupError, docker, throwaway_container

from .conftest import GatewayThread

MODEL = "qwen2.5:0.5b"
THINKING_MODEL = "qwen3:0.6b"  # the stand-in's thinking model
QUESTION = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture(scope="module")
def ollama_server():
    """The stand-in in a throwaway container on loopback, with MODEL and THINKING_MODEL
    pulled: its URL."""
    try:
        image = ollama_standin()
        with throwaway_container("ollama", image, 11434) as (name, port):
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, name)
            for model in (MODEL, THINKING_MODEL):
                pulled = httpx.post(f"{url}/api/pull", json={"model": model, "stream": False}, timeout=120)
                assert pulled.status_code == 200, pulled.text
            yield url
    except (SetupError, RuntimeError) as error:
        pytest.fail(str(error))


def wait_until_up(url: str, container: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{url}/api/version", timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                logs = docker("logs", "--tail", "20", container, check=False)
                raise SetupError(f"the Ollama stand-in ({container}) did not answer in {timeout:.0f} s:\n"
                                 f"{logs.stdout}{logs.stderr}") from None
            time.sleep(0.2)


@pytest.fixture(scope="module")
def gateway(make_config, ollama_server):
    running = GatewayThread(make_config(OLLAMA_BASE_URL=ollama_server))
    yield running
    running.stop()


@pytest.fixture
def client(gateway, monkeypatch):
    """client(student) -> the ollama client as a student's container makes it."""
    def make(student) -> ollama.Client:
        monkeypatch.setenv("OLLAMA_HOST", f"{gateway.url}/ollama")
        monkeypatch.setenv("OLLAMA_API_KEY", student.token)
        return ollama.Client()

    return make


def only_row(database, name: str) -> dict:
    [row] = database.rows(name)
    return row


@pytest.mark.parametrize("method, path", [("POST", "api/chat"), ("POST", "api/generate"), ("POST", "api/embed"),
                                          ("GET", "api/tags"), ("POST", "api/show"), ("GET", "")])
def test_every_route_needs_the_students_token(gateway, database, method, path):
    before = database.query("SELECT count(*) FROM ai_usage")
    response = httpx.request(method, f"{gateway.url}/ollama/{path}", json={"model": MODEL, "messages": QUESTION})
    assert response.status_code == 401
    assert "JupyterHub token" in response.json()["error"]  # Ollama's error shape
    response = httpx.request(method, f"{gateway.url}/ollama/{path}", json={"model": MODEL},
                             headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert database.query("SELECT count(*) FROM ai_usage") == before


def test_the_ollama_client_streams_a_chat_and_the_ledger_has_ollamas_counts(client, student, database):
    alice = student()
    parts = list(client(alice).chat(model=MODEL, messages=QUESTION, stream=True))
    assert len(parts) > 2 and parts[-1].done and not parts[0].done
    assert "".join(part.message.content for part in parts).strip()
    row = only_row(database, alice.name)
    assert (row["provider"], row["model"], row["endpoint"], row["stream"], row["status"], row["estimated"]) == \
        ("ollama", MODEL, "api/chat", True, "ok", False)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (parts[-1].prompt_eval_count, parts[-1].eval_count)
    assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"] > 0
    assert 0 <= row["ttft_ms"] <= row["latency_ms"]


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "plain"])
def test_a_thinking_models_thinking_is_passed_on_and_metered(client, student, database, stream):
    alice = student()
    answer = client(alice).chat(model=THINKING_MODEL, messages=QUESTION, think=True, stream=stream,
                                options={"num_predict": 12})
    parts = list(answer) if stream else [answer]
    thinking = "".join(part.message.thinking or "" for part in parts)
    content = "".join(part.message.content for part in parts)
    assert thinking.strip() and content.strip() and "<think>" not in content
    row = only_row(database, alice.name)
    # Ollama's eval_count counts the thinking's tokens with the answer's
    assert (row["completion_tokens"], row["estimated"]) == (parts[-1].eval_count, False) == (12, False)


def test_thinking_inside_the_answer_is_metered_too(gateway, student, database):
    """Without `think`, Ollama's qwen3 and deepseek-r1 put it first, in <think> tags."""
    alice = student()
    response = httpx.post(f"{gateway.url}/ollama/api/generate", headers=alice.headers, timeout=60,
                          json={"model": THINKING_MODEL, "prompt": "Why?", "stream": False,
                                "options": {"num_predict": 10}})
    answer = response.json()
    assert answer["response"].startswith("<think>\n") and "\n</think>\n\n" in answer["response"]
    assert (only_row(database, alice.name)["completion_tokens"], answer["eval_count"]) == (10, 10)


def test_a_stream_cut_short_estimates_its_thinking():
    """No final counts (the student left): the thinking's text counts, as the answer's."""
    meter = Meter(prompt_estimate=3)
    stream = LineStream(meter, clean=str)
    stream.feed(b'{"message":{"content":"","thinking":"' + b"x" * 40 + b'"},"done":false}\n'
                b'{"response":"","thinking":"' + b"y" * 20 + b'","done":false}\n'
                b'{"message":{"content":"' + b"z" * 8 + b'"},"done":false}\n')
    assert meter.tokens() == (3, 17, 20, True)


def test_the_openai_route_meters_ollamas_reasoning_field(gateway, student, database):
    alice = student()
    response = httpx.post(f"{gateway.url}/ollama/v1/chat/completions", headers=alice.headers, timeout=60,
                          json={"model": THINKING_MODEL, "messages": QUESTION, "max_tokens": 8,
                                "reasoning_effort": "low"})
    answer = response.json()
    assert answer["choices"][0]["message"]["reasoning"].strip()
    row = only_row(database, alice.name)
    assert (row["completion_tokens"], row["estimated"]) == (answer["usage"]["completion_tokens"], False) == (8, False)


def test_a_stream_is_passed_on_line_by_line_as_ndjson(gateway, student, database):
    alice = student()
    with httpx.stream("POST", f"{gateway.url}/ollama/api/generate", headers=alice.headers,
                      json={"model": MODEL, "prompt": "Why is the sky blue?"}, timeout=60) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    row = only_row(database, alice.name)
    assert (row["endpoint"], row["stream"], row["completion_tokens"]) == ("api/generate", True, lines[-1]["eval_count"])


def test_requests_code_as_in_the_tutorials_gets_one_answer(gateway, student, database):
    alice = student()
    response = httpx.post(f"{gateway.url}/ollama/api/generate", headers=alice.headers,
                          json={"model": MODEL, "prompt": "你好", "stream": False}, timeout=60)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["done"] and answer["response"]
    row = only_row(database, alice.name)
    assert (row["stream"], row["prompt_tokens"], row["completion_tokens"]) == \
        (False, answer["prompt_eval_count"], answer["eval_count"])


def test_embeddings_are_metered_by_their_prompt(client, student, database):
    alice = student()
    result = client(alice).embed(model=MODEL, input=["the sky", "is blue"])
    assert len(result.embeddings) == 2
    row = only_row(database, alice.name)
    assert (row["endpoint"], row["prompt_tokens"], row["completion_tokens"], row["estimated"]) == \
        ("api/embed", result.prompt_eval_count, 0, False)


def test_the_older_embeddings_api_is_estimated(client, student, database):
    alice = student()
    assert len(client(alice).embeddings(model=MODEL, prompt="the sky is blue").embedding) > 0
    row = only_row(database, alice.name)
    assert (row["endpoint"], row["prompt_tokens"], row["estimated"]) == ("api/embeddings", 4, True)


def test_listing_showing_and_version_are_forwarded_unmetered(client, gateway, student, database):
    alice = student()
    ollama_client = client(alice)
    assert MODEL in [model.model for model in ollama_client.list().models]
    assert ollama_client.show(MODEL).details.family == "llama"
    assert httpx.get(f"{gateway.url}/ollama/api/version", headers=alice.headers).json()["version"]
    assert httpx.get(f"{gateway.url}/ollama/", headers=alice.headers).text == "Ollama is running"
    assert database.rows(alice.name) == []


@pytest.mark.parametrize("call", [
    lambda c: c.pull("tinyllama:test"), lambda c: c.delete(MODEL), lambda c: c.copy(MODEL, "mine:latest"),
])
def test_students_cannot_pull_or_delete_models(client, student, ollama_server, call):
    with pytest.raises(ollama.ResponseError) as refused:
        call(client(student()))
    assert refused.value.status_code == 403 and "OLLAMA_PULL_MODELS" in refused.value.error
    assert sorted(m["name"] for m in httpx.get(f"{ollama_server}/api/tags").json()["models"]) == [MODEL, THINKING_MODEL]


def test_over_budget_the_ollama_client_gets_the_one_line_reason(client, student, database):
    alice = student()
    database.query("INSERT INTO ai_budget_overrides (username, daily_tokens) VALUES (%s, 1)", alice.name)
    ollama_client = client(alice)
    assert ollama_client.chat(model=MODEL, messages=QUESTION, stream=False).done  # under budget when it started
    with pytest.raises(ollama.ResponseError) as refused:
        list(ollama_client.chat(model=MODEL, messages=QUESTION, stream=True))
    assert refused.value.status_code == 429
    assert refused.value.error.startswith("daily AI budget of 1 tokens used; resets at")
    assert [row["status"] for row in database.rows(alice.name)] == ["ok", "rejected_quota"]


def test_an_unknown_model_is_ollamas_404_and_costs_nothing(client, student, database):
    alice = student()
    with pytest.raises(ollama.ResponseError) as refused:
        client(alice).chat(model="no-such-model", messages=QUESTION)
    assert refused.value.status_code == 404 and "no-such-model" in refused.value.error
    row = only_row(database, alice.name)
    assert (row["status"], row["http_status"], row["total_tokens"]) == ("error", 404, 0)


@pytest.mark.parametrize("path, body", [
    ("chat", {"messages": QUESTION}), ("chat", {"model": 5}), ("chat", {"model": MODEL, "stream": "yes"}),
    ("chat", {"model": MODEL, "messages": "hi"}), ("chat", {"model": MODEL, "messages": ["hi"]}),
    ("chat", {"model": MODEL, "messages": 0}), ("generate", {"model": MODEL, "prompt": 5}),
    ("embed", {"model": MODEL, "input": 0}), ("embeddings", {"model": MODEL, "prompt": ["a"]}),
])
def test_malformed_bodies_are_400_in_ollamas_shape_without_a_row(gateway, student, database, path, body):
    alice = student()
    response = httpx.post(f"{gateway.url}/ollama/api/{path}", headers=alice.headers, json=body)
    assert response.status_code == 400 and isinstance(response.json()["error"], str)
    assert database.rows(alice.name) == []


# -- the NDJSON reader, piece by piece --

def test_lines_split_across_pieces_pass_whole_and_are_metered():
    meter = Meter(prompt_estimate=3)
    stream = LineStream(meter, clean=str)
    first = b'{"message":{"content":"Hel'
    assert stream.feed(first) == b""
    out = stream.feed(b'lo"},"done":false}\n{"done":true,"prompt_eval_count":7,')
    assert out == b'{"message":{"content":"Hello"},"done":false}\n'
    assert stream.feed(b'"eval_count":2}') == b""
    assert stream.close() == b'{"done":true,"prompt_eval_count":7,"eval_count":2}'
    assert meter.tokens() == (7, 2, 9, False)


def test_a_cached_prompt_counts_its_estimate():
    meter = Meter(prompt_estimate=5)
    LineStream(meter, clean=str).feed(b'{"done":true,"eval_count":4}\n')
    assert meter.tokens() == (5, 4, 9, False)


def test_an_error_line_is_scrubbed_and_kept():
    stream = LineStream(Meter(1), clean=lambda text: text.replace("sk-secret", "***"))
    assert stream.feed(b'{"error":"failed with sk-secret"}\n') == b'{"error": "failed with ***"}\n'
    assert stream.error == "failed with ***"


@pytest.mark.parametrize("options, cap, sent", [
    (None, 64, 64),                       # no length: the gateway's default, sent to Ollama
    ({"num_predict": -1}, 64, 64),        # Ollama's "no limit" is no cap: the default too
    ({"num_predict": 10}, 10, None),      # the client's own cap, body unchanged
    ({"num_predict": 500, "seed": 1}, 500, None),
])
def test_an_answer_reserves_its_num_predict_or_the_default(options, cap, sent):
    body = {"model": MODEL, "prompt": "hi", **({"options": options} if options is not None else {})}
    found, changed = answer_cap_of(body, 64)
    assert found == cap
    if sent is None:
        assert changed is None
    else:
        assert changed["options"]["num_predict"] == sent and changed["prompt"] == "hi"


@pytest.mark.parametrize("options", [{"num_predict": 0}, {"num_predict": "10"}, {"num_predict": True}, [1]])
def test_a_bad_num_predict_is_a_clear_400(options):
    with pytest.raises(GatewayError) as caught:
        answer_cap_of({"model": MODEL, "options": options}, 64)
    assert caught.value.status == 400 and "options" in str(caught.value)
