"""aihub.user_env: what a student's container is told about models, keys and proxies."""

import pytest

from aihub.settings import load as load_settings
from aihub.user_env import server_token, user_environment
from aihub_providers.vendors import VENDORS_LIST

KEY_NAMES = {vendor.key_env for vendor in VENDORS_LIST}
PROXY_NAMES = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}


def load(environ):
    """Settings in direct mode (keys into containers), unless the test names a mode."""
    return load_settings({"AI_KEY_MODE": "direct", **environ})


def test_no_configuration_offers_only_the_local_ollama():
    env = user_environment(load({}))
    assert env["OLLAMA_BASE_URL"] == env["OLLAMA_HOST"] == "http://ollama:11434"
    assert env["AI_DEFAULT_MODEL"] == "ollama:qwen2.5:0.5b"
    assert env["AI_SHOW_REASONING"] == "true"
    # /learn and /ask work out of the box: Ollama's embedding model is preselected
    assert env["AI_DEFAULT_EMBEDDINGS_MODEL"] == "ollama:nomic-embed-text"
    assert not KEY_NAMES & set(env), "no vendor key was configured, none may be passed"
    assert "DEEPSEEK_BASE_URL" not in env, "an unconfigured vendor must not appear"
    assert "OPENAI_COMPATIBLE_BASE_URL" not in env


def test_the_admin_chooses_the_embedding_model():
    env = user_environment(load({"DASHSCOPE_API_KEY": "sk-test",
                                 "AI_DEFAULT_EMBEDDINGS_MODEL": "qwen:text-embedding-v4"}))
    assert env["AI_DEFAULT_EMBEDDINGS_MODEL"] == "qwen:text-embedding-v4"


def test_a_configured_vendor_gets_its_key_and_base_url():
    env = user_environment(load({"DEEPSEEK_API_KEY": "sk-test", "SILICONFLOW_API_KEY": "sk-sf",
                                 "SILICONFLOW_BASE_URL": "http://upstream:8080/v1"}))
    assert env["DEEPSEEK_API_KEY"] == "sk-test"
    assert env["DEEPSEEK_BASE_URL"] == "https://api.deepseek.com/v1"
    assert env["SILICONFLOW_BASE_URL"] == "http://upstream:8080/v1"
    assert "MOONSHOT_API_KEY" not in env and "MOONSHOT_BASE_URL" not in env


def test_an_openai_compatible_server_needs_only_its_base_url():
    env = user_environment(load({"OPENAI_COMPATIBLE_BASE_URL": "http://vllm.lan:8000/v1"}))
    assert env["OPENAI_COMPATIBLE_BASE_URL"] == "http://vllm.lan:8000/v1"
    assert "OPENAI_COMPATIBLE_API_KEY" not in env


@pytest.mark.parametrize("value, passed", [("false", "false"), ("no", "false"), ("yes", "true")])
def test_showing_reasoning_is_the_admins_choice(value, passed):
    assert user_environment(load({"AI_SHOW_REASONING": value}))["AI_SHOW_REASONING"] == passed


def test_proxy_off_sets_no_proxy_only():
    env = user_environment(load({}))
    assert not PROXY_NAMES & set(env)
    assert env["NO_PROXY"] == env["no_proxy"]


@pytest.mark.parametrize("extra", ["", "vllm.lan,10.0.0.0/8"])
def test_proxy_on_routes_vendors_and_keeps_internal_hosts_direct(extra):
    env = user_environment(load({"USE_AI_PROXY": "true", "AI_PROXY_URL": "http://proxy.example.edu:3128",
                                 "AI_NO_PROXY": extra, "OLLAMA_BASE_URL": "http://gpu-box:11434"}))
    assert {env[name] for name in PROXY_NAMES} == {"http://proxy.example.edu:3128"}
    bypass = env["NO_PROXY"].split(",")
    assert {"localhost", "127.0.0.1", "::1", "hub", "ollama", "gpu-box"} <= set(bypass)
    assert set(extra.split(",")) - {""} <= set(bypass)
    assert len(bypass) == len(set(bypass)), "no host twice"
    assert "api.deepseek.com" not in bypass


def test_ai_disabled_passes_no_model_settings_and_no_keys():
    env = user_environment(load({"AI_ENABLED": "false", "DEEPSEEK_API_KEY": "sk-test"}))
    assert env == {"AI_ENABLED": "false"}


class FakeSpawner:
    api_token = "server-token-of-alice"


def test_gateway_mode_gives_routes_and_the_server_token_never_a_key():
    env = user_environment(load_settings({"DEEPSEEK_API_KEY": "sk-secret-of-the-admin",
                                          "OPENAI_COMPATIBLE_BASE_URL": "http://vllm.lan:8000/v1"}))
    assert env["DEEPSEEK_BASE_URL"] == "http://gateway:8090/deepseek/v1"
    assert env["OPENAI_COMPATIBLE_BASE_URL"] == "http://gateway:8090/openai-compatible/v1"
    # Ollama's provider appends /v1 itself; the ollama client calls <OLLAMA_HOST>/api/...,
    # which the gateway serves too, and sends OLLAMA_API_KEY (the server token) itself.
    assert env["OLLAMA_BASE_URL"] == env["OLLAMA_HOST"] == "http://gateway:8090/ollama"
    assert env["DEEPSEEK_API_KEY"] is server_token and env["OLLAMA_API_KEY"] is server_token
    assert server_token(FakeSpawner()) == "server-token-of-alice"
    rendered = [value(FakeSpawner()) if callable(value) else value for value in env.values()]
    assert not any("sk-secret-of-the-admin" in value for value in rendered)
    assert "MOONSHOT_BASE_URL" not in env, "only configured vendors are routed"
    assert "gateway" in env["NO_PROXY"].split(",")
