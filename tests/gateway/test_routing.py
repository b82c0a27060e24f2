"""Routing: /<provider>/v1/... and provider:model reach the right vendor with its key."""

import httpx
import pytest

from fake_openai import embedding_of

from .conftest import DEEPSEEK_KEY, MOONSHOT_KEY

PREFIX = "/services/ai-gateway"


def chat(model, text="one two three"):
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def last_call(upstream, suffix):
    return [r for r in upstream.state.requests if r.path.endswith(suffix)][-1]


@pytest.mark.parametrize("base", ["", PREFIX])
@pytest.mark.parametrize("path, model, vendor_path, key", [
    ("/deepseek/v1/chat/completions", "echo-1", "/v1/chat/completions", DEEPSEEK_KEY),
    ("/moonshot/v1/chat/completions", "echo-2", "/first/v1/chat/completions", MOONSHOT_KEY),
    ("/ollama/v1/chat/completions", "echo-1", "/v1/chat/completions", "ollama"),
    ("/v1/chat/completions", "deepseek:echo-1", "/v1/chat/completions", DEEPSEEK_KEY),
    ("/v1/chat/completions", "moonshot:echo-2", "/first/v1/chat/completions", MOONSHOT_KEY),
    ("/v1/chat/completions", "ollama:echo-1", "/v1/chat/completions", "ollama"),
])
def test_chat_reaches_the_vendor_with_its_key(gateway, upstream, student, database, base, path, model,
                                              vendor_path, key):
    alice = student("alice")
    response = httpx.post(gateway.url + base + path, headers=alice.headers, json=chat(model))
    assert response.status_code == 200, response.text
    vendor_model = model.split(":", 1)[-1]
    assert response.json()["choices"][0]["message"]["content"] == f"{vendor_model}: eerht owt eno"
    call = last_call(upstream, "/chat/completions")
    assert (call.path, call.authorization) == (vendor_path, f"Bearer {key}")
    assert call.body["model"] == vendor_model  # the provider prefix is the gateway's, not the vendor's
    [row] = database.settled_rows(alice.name)
    assert (row["provider"], row["model"]) == (model.split(":")[0] if ":" in model else path.split("/")[1],
                                               vendor_model)
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (3, 4, 7)


def test_a_plain_request_goes_to_the_vendor_unchanged(gateway, upstream, student):
    """No re-encoding when nothing must change: the vendor gets the client's bytes."""
    raw = (b'{"model":"echo-1",  "messages":[{"role":"user","content":"caf\\u00e9 \xc3\xa9"}], "temperature": 0.5,'
           b' "max_tokens": 9}')
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=student().headers, content=raw)
    assert response.status_code == 200, response.text
    assert last_call(upstream, "/chat/completions").body == {
        "model": "echo-1", "messages": [{"role": "user", "content": "café é"}], "temperature": 0.5, "max_tokens": 9}


@pytest.mark.parametrize("path, model", [("/deepseek/v1/embeddings", "echo-1"),
                                         ("/v1/embeddings", "deepseek:echo-1"),
                                         (PREFIX + "/ollama/v1/embeddings", "echo-1")])
def test_embeddings(gateway, student, database, path, model):
    alice = student()
    response = httpx.post(gateway.url + path, headers=alice.headers,
                          json={"model": model, "input": ["a b c", "hello"]})
    assert response.status_code == 200, response.text
    assert [d["embedding"] for d in response.json()["data"]] == [embedding_of("a b c"), embedding_of("hello")]
    [row] = database.settled_rows(alice.name)
    assert (row["endpoint"], row["prompt_tokens"], row["completion_tokens"], row["total_tokens"],
            row["estimated"]) == ("embeddings", 4, 0, 4, False)


def test_models_lists_every_routable_model_as_provider_model(gateway, student):
    response = httpx.get(f"{gateway.url}/v1/models", headers=student().headers)
    assert response.status_code == 200
    ids = [m["id"] for m in response.json()["data"]]
    assert ids == ["deepseek:echo-1", "deepseek:echo-2", "moonshot:echo-1", "moonshot:echo-2",
                   "ollama:echo-1", "ollama:echo-2"]
    listing = httpx.get(f"{gateway.url}{PREFIX}/moonshot/v1/models", headers=student().headers).json()
    assert [m["id"] for m in listing["data"]] == ["echo-1", "echo-2"]
    one = httpx.get(f"{gateway.url}/v1/models/ollama:echo-2", headers=student().headers)
    assert one.json()["id"] == "ollama:echo-2"
    missing = httpx.get(f"{gateway.url}/deepseek/v1/models/nope", headers=student().headers)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "model_not_found")


def test_models_fall_back_to_the_vendor_tables_examples(start_gateway, student):
    """A vendor that cannot list its models: the table's examples stand in."""
    gateway = start_gateway(DEEPSEEK_BASE_URL="http://127.0.0.1:9/v1")
    ids = [m["id"] for m in httpx.get(f"{gateway.url}/v1/models", headers=student().headers).json()["data"]]
    assert ids[:2] == ["deepseek:deepseek-chat", "deepseek:deepseek-reasoner"]
    assert "ollama:echo-1" in ids


@pytest.mark.parametrize("path, model, words", [
    ("/nosuch/v1/chat/completions", "echo-1", ["no provider 'nosuch'", "deepseek, moonshot, ollama"]),
    ("/v1/chat/completions", "nosuch:echo-1", ["no provider 'nosuch'", "deepseek, moonshot, ollama"]),
    ("/qwen/v1/chat/completions", "qwen-plus", ["'qwen' is not set up", "DASHSCOPE_API_KEY",
                                                "deepseek, moonshot, ollama"]),
])
def test_an_unknown_provider_is_404_naming_the_configured_ones(gateway, student, database, path, model, words):
    alice = student()
    response = httpx.post(gateway.url + path, headers=alice.headers, json=chat(model))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_provider"
    for word in words:
        assert word in error["message"]
    assert database.rows(alice.name) == []
    listing = httpx.get(f"{gateway.url}/nosuch/v1/models", headers=alice.headers)
    assert listing.status_code == 404


def test_provider_less_model_needs_a_provider(gateway, student):
    response = httpx.post(f"{gateway.url}/v1/chat/completions", headers=student().headers, json=chat("echo-1"))
    assert response.status_code == 400
    assert "provider:model" in response.json()["error"]["message"]


def test_unknown_paths_and_methods_get_json(gateway, student):
    response = httpx.get(f"{gateway.url}/v2/whatever", headers=student().headers)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "unknown_endpoint")
    response = httpx.get(f"{gateway.url}/deepseek/v1/chat/completions", headers=student().headers)
    assert response.status_code == 405 and "error" in response.json()


def test_health(gateway):
    for path in ("/health", PREFIX + "/health"):
        response = httpx.get(gateway.url + path)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


# -- what a vendor's failure looks like to a student --


@pytest.mark.parametrize("vendor_status, status, code, words", [
    (401, 502, "upstream_key_rejected", ["DeepSeek refused the hub's API key", "DEEPSEEK_API_KEY"]),
    (403, 502, "upstream_key_rejected", ["DEEPSEEK_API_KEY"]),
    (429, 429, "rate_limit_exceeded", ["rate-limiting", "upgrade your plan"]),
    (500, 500, "server_error", ["DeepSeek failed (HTTP 500)", "try again later"]),
    (400, 400, "invalid_parameter", ["Invalid parameter for key ***"]),
])
def test_vendor_errors_are_scrubbed_and_explained(gateway, student, database, vendor_status, status, code, words):
    alice = student()
    body = {**chat("echo-1"), "x_test": {"error": str(vendor_status)}}
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers, json=body)
    assert response.status_code == status
    text = response.text
    for secret in (DEEPSEEK_KEY, "sk-live0123456789abcdef", "nvapi-ABCDEF0123456789", alice.token):
        assert secret not in text
    message = response.json()["error"]["message"]
    for word in words:
        assert word in message
    assert response.json()["error"]["code"] == code
    [row] = database.settled_rows(alice.name)
    assert (row["status"], row["http_status"], row["total_tokens"]) == ("error", status, 0)
    assert DEEPSEEK_KEY not in (row["error"] or "")


def test_an_unknown_model_is_the_vendors_404(gateway, student):
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=student().headers,
                          json=chat("no-such-model"))
    assert response.status_code == 404
    assert response.json()["error"] == {"message": "The model `no-such-model` does not exist",
                                        "type": "invalid_request_error", "code": "model_not_found"}
    assert "X-AI-Gateway-Error" not in response.headers  # the vendor's words, not the gateway's


def test_an_unreachable_vendor_is_502_naming_the_setting(start_gateway, student, database):
    gateway = start_gateway(DEEPSEEK_BASE_URL="http://127.0.0.1:9/v1")
    alice = student()
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers, json=chat("echo-1"))
    assert response.status_code == 502
    assert "DEEPSEEK_BASE_URL" in response.json()["error"]["message"]
    [row] = database.settled_rows(alice.name)
    assert (row["status"], row["total_tokens"]) == ("error", 0)


def test_a_vendor_that_refuses_stream_options_still_streams(gateway, upstream, student, database):
    alice = student()
    body = {**chat("echo-1"), "stream": True, "x_test": {"refuse_stream_options": True}}
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers, json=body)
    assert response.status_code == 200
    assert "data: [DONE]" in response.text
    calls = [r for r in upstream.state.requests if r.body and r.body.get("x_test") == body["x_test"]]
    assert ["stream_options" in c.body for c in calls[-2:]] == [True, False]
    [row] = database.settled_rows(alice.name)
    assert (row["status"], row["estimated"], row["completion_tokens"]) == ("ok", True, 6)  # 21 characters / 4, rounded up


def test_a_silent_vendor_times_out_with_504(start_gateway, student, database):
    gateway = start_gateway(AI_REQUEST_TIMEOUT="1s")
    alice = student()
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers,
                          json={**chat("echo-1"), "x_test": {"stall": True}}, timeout=30)
    assert response.status_code == 504
    assert "did not answer within 1 s" in response.json()["error"]["message"]
    [row] = database.settled_rows(alice.name)
    assert (row["status"], row["http_status"], row["estimated"]) == ("timeout", 504, True)
    assert row["prompt_tokens"] == row["total_tokens"] > 0  # the prompt was sent: its estimate counts


@pytest.mark.parametrize("steer, words", [({"not_json": True}, "not valid JSON (HTTP 200, application/json)"),
                                          ({"cut_short": True}, "broke off the connection before a whole answer")])
def test_a_vendor_answering_garbage_is_a_bad_answer_not_an_unreachable_vendor(gateway, student, database,
                                                                               steer, words):
    alice = student()
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers,
                          json={**chat("echo-1"), "x_test": steer})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "bad_upstream_response" and words in error["message"]
    assert error["message"].startswith("DeepSeek ")
    assert "reach" not in error["message"] and "DEEPSEEK_BASE_URL" not in error["message"]
    [row] = database.settled_rows(alice.name)
    assert (row["status"], row["http_status"], row["error"]) == ("error", 502, error["message"])
