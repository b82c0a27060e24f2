"""A proxy with a login (USE_AI_PROXY, AI_PROXY_URL): accepted, passed on, never shown.

One rule for which hosts bypass the proxy (aihub.proxies), read by the students'
environment and by the gateway's config; one redaction for every URL a message shows.
"""

import pytest

from aihub.gateway.config import HOST as GATEWAY_HOST
from aihub.gateway.config import config_from_settings
from aihub.proxies import INTERNAL_HOSTS, bypasses_proxy, no_proxy_hosts
from aihub.settings import ConfigError, load, load_or_exit
from aihub.user_env import user_environment

PASSWORD = "p@ss"
PROXY = "http://user:p%40ss@proxy:3128"
SHOWN = "http://user:***@proxy:3128"
SECRET = {"GATEWAY_API_TOKEN": "gateway-token-for-tests", "POSTGRES_PASSWORD": "postgres-password-for-tests"}


@pytest.mark.parametrize("proxy", [PROXY, "http://user:pass@proxy:3128", "https://u%3Ax:p%2F1@proxy.example.edu/"])
def test_a_proxy_url_with_a_login_is_accepted(proxy):
    settings = load({"USE_AI_PROXY": "true", "AI_PROXY_URL": proxy})
    assert settings.ai_proxy_url == proxy.rstrip("/")


def test_students_and_the_gateway_get_the_login_as_written():
    settings = load({"USE_AI_PROXY": "true", "AI_PROXY_URL": PROXY, "AI_NO_PROXY": "vllm.lan"})
    env = user_environment(settings)
    assert {env[name] for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")} == {PROXY}
    config = config_from_settings(settings, SECRET)
    assert config.proxy_url == PROXY
    # one rule: the gateway bypasses exactly the hosts students' NO_PROXY names
    assert ",".join(config.no_proxy) == env["NO_PROXY"]
    assert "vllm.lan" in config.no_proxy and GATEWAY_HOST in INTERNAL_HOSTS
    # the gateway scrubs the password, encoded or not, from anything it repeats
    assert {"p%40ss", PASSWORD} <= set(config.secrets)
    assert PROXY not in repr(config)


@pytest.mark.parametrize("variable", ["AI_PROXY_URL", "OPENAI_COMPATIBLE_BASE_URL", "OLLAMA_BASE_URL", "DEEPSEEK_BASE_URL"])
@pytest.mark.parametrize("wrong, reason", [
    ("http://user:p@ss@proxy:3128", "write it percent-encoded, as %40"),
    ("ftp://user:p@ss@proxy:3128", "is not an http:// or https:// URL"),
    ("http://user:p ss@proxy:3128", "is not an http:// or https:// URL"),
    ("http://user:p@ss@proxy:99999", "write it percent-encoded, as %40"),
    ("http://user:p\\ss@proxy:3128", "must be percent-encoded"),
    ("http://user:pass@proxy:99999", "has a port outside 1 to 65535"),
])
def test_a_wrong_url_is_named_with_user_and_no_password(variable, wrong, reason, capsys):
    with pytest.raises(ConfigError) as error:
        load({variable: wrong})
    [problem] = error.value.problems
    assert problem.startswith(f"{variable}='") and reason in problem, problem
    assert "user:***@" in problem
    for secret in ("p@ss", "p ss", "p\\ss", ":pass@"):
        assert secret not in problem
    with pytest.raises(SystemExit):
        load_or_exit({variable: wrong})
    printed = capsys.readouterr().err
    assert "user:***@" in printed and "p@ss" not in printed and ":pass@" not in printed


def test_no_proxy_hosts_always_hold_the_internal_ones_and_ollamas():
    hosts = no_proxy_hosts(load({"OLLAMA_BASE_URL": "http://gpu-box:11434", "AI_NO_PROXY": "10.0.0.0/8,.lan"}))
    assert hosts[:len(INTERNAL_HOSTS)] == INTERNAL_HOSTS
    assert {"gpu-box", "10.0.0.0/8", ".lan"} <= set(hosts)


@pytest.mark.parametrize("host, entries, bypass", [
    ("ollama", INTERNAL_HOSTS, True),
    ("api.deepseek.com", INTERNAL_HOSTS, False),
    ("vllm.lan", ("lan",), True),
    ("vllm.lan", (".lan",), True),
    ("vllm.lan", ("*.lan",), True),
    ("lan", (".lan",), True),
    ("evil-lan", ("lan",), False),
    ("10.1.2.3", ("10.0.0.0/8",), True),
    ("11.1.2.3", ("10.0.0.0/8",), False),
    ("::1", INTERNAL_HOSTS, True),
    ("[::1]", INTERNAL_HOSTS, True),
    ("anything", ("*",), True),
    ("API.DeepSeek.com", ("deepseek.com",), True),
])
def test_bypasses_proxy_reads_no_proxy_as_clients_do(host, entries, bypass):
    assert bypasses_proxy(host, entries) is bypass
