"""aihub.settings: defaults, parsed types, and errors of one line per wrong variable."""

import os
import subprocess
import sys

import pytest

from aihub.settings import SETTINGS, ConfigError, load, load_or_exit

GiB = 1024**3
MiB = 1024**2
SECRET_NAMES = [setting.name for setting in SETTINGS if setting.secret]
ERROR_PREFIX = "aihub: configuration error: "


def test_defaults_load_from_an_empty_environment():
    settings = vars(load({}))
    vendor_settings = {name: settings.pop(name) for name in list(settings)
                       if name.endswith(("_api_key", "_base_url"))}
    assert settings == {
        "compose_project_name": "aihub",
        "auth_mode": "approval",
        "admin_user": "admin",
        "admin_password": "",
        "singleuser_image": "aihub-singleuser:0.1.0",
        "user_mem_limit": 2 * GiB,
        "user_cpu_limit": 1.0,
        "spawn_concurrency": 4,
        "cull_idle_timeout": 3600,
        "spawner_mode": "docker",
        "image_registry": "",
        "home_storage": "node",
        "home_nfs_server": "",
        "home_nfs_path": "/srv/aihub-homes",
        "postgres_host": "postgres",
        "postgres_port": 5432,
        "postgres_user": "jupyterhub",
        "postgres_db": "jupyterhub",
        "postgres_password": "",
        "ai_enabled": True,
        "ai_key_mode": "gateway",
        "ai_daily_token_budget": 200000,
        "ai_max_concurrent_requests": 4,
        "ai_default_max_tokens": 4096,
        "ai_request_timeout": 120,
        "ai_max_request_size": 2 * MiB,
        "ai_allow_personal_tokens": False,
        "ai_default_model": "ollama:qwen2.5:0.5b",
        "ai_show_reasoning": True,
        "ai_default_embeddings_model": "ollama:nomic-embed-text",
        "use_ai_proxy": False,
        "ai_proxy_url": "",
        "ai_no_proxy": (),
        "https_mode": "off",
        "https_domain": "",
        "https_email": "",
        "https_cert_file": "hub.crt",
        "https_key_file": "hub.key",
        "https_port": 443,
        "http_port": 80,
        "hub_cookie_secret": "",
        "proxy_auth_token": "",
        "gateway_api_token": "",
        "class_tools_api_token": "",
    }
    # No vendor has a key by default; each has its documented base URL (none for a
    # generic OpenAI-compatible server, which the admin must name).
    assert all(value == "" for name, value in vendor_settings.items() if name.endswith("_api_key"))
    assert vendor_settings["deepseek_base_url"] == "https://api.deepseek.com/v1"
    assert vendor_settings["ollama_base_url"] == "http://ollama:11434"
    assert vendor_settings["openai_compatible_base_url"] == ""


@pytest.mark.parametrize("environ, problem", [
    ({"USE_AI_PROXY": "true"}, "AI_PROXY_URL is empty but USE_AI_PROXY=true"),
    ({"USE_AI_PROXY": "maybe"}, "USE_AI_PROXY='maybe' must be true or false"),
    ({"AI_PROXY_URL": "proxy:3128"}, "AI_PROXY_URL='proxy:3128' is not an http:// or https:// URL"),
    ({"AI_DEFAULT_MODEL": "gpt-4o"}, "AI_DEFAULT_MODEL='gpt-4o' must be provider:model"),
    ({"AI_DEFAULT_MODEL": "nobody:model"}, "AI_DEFAULT_MODEL='nobody:model' must be provider:model"),
    # DeepSeek serves no embeddings: the message lists the vendors that do
    ({"AI_DEFAULT_EMBEDDINGS_MODEL": "deepseek:deepseek-chat"},
     "AI_DEFAULT_EMBEDDINGS_MODEL='deepseek:deepseek-chat' must be provider:model with a provider among qwen, siliconflow"),
    ({"AI_DEFAULT_EMBEDDINGS_MODEL": "ollama:"}, "AI_DEFAULT_EMBEDDINGS_MODEL='ollama:' must be provider:model"),
    ({"DEEPSEEK_BASE_URL": "api.deepseek.com"}, "DEEPSEEK_BASE_URL='api.deepseek.com' is not an http"),
    ({"AI_NO_PROXY": "ok.example, bad host!"}, "AI_NO_PROXY="),
])
def test_ai_settings_are_checked(environ, problem):
    with pytest.raises(ConfigError) as caught:
        load(environ)
    assert len(caught.value.problems) == 1 and problem in caught.value.problems[0]


def test_ai_settings_parse():
    settings = load({"USE_AI_PROXY": "yes", "AI_PROXY_URL": "http://proxy.example.edu:3128/",
                     "AI_NO_PROXY": "vllm.lan, 10.0.0.0/8", "OLLAMA_BASE_URL": "http://gpu-box:11434"})
    assert settings.use_ai_proxy is True
    assert settings.ai_proxy_url == "http://proxy.example.edu:3128"
    assert settings.ai_no_proxy == ("vllm.lan", "10.0.0.0/8")
    assert settings.ollama_base_url == "http://gpu-box:11434"


@pytest.mark.parametrize("attr, kind", [
    ("user_mem_limit", int),
    ("user_cpu_limit", float),
    ("cull_idle_timeout", int),
    ("postgres_port", int),
])
def test_numeric_defaults_have_their_type(attr, kind):
    assert type(getattr(load({}), attr)) is kind


@pytest.mark.parametrize("name, text, expected", [
    ("USER_MEM_LIMIT", "512M", 512 * MiB),
    ("USER_MEM_LIMIT", "2g", 2 * GiB),
    ("USER_MEM_LIMIT", "1.5G", int(1.5 * GiB)),
    ("USER_MEM_LIMIT", "1GiB", GiB),
    ("USER_MEM_LIMIT", "0", None),
    ("USER_CPU_LIMIT", "0", None),
    ("USER_CPU_LIMIT", "0.5", 0.5),
    ("CULL_IDLE_TIMEOUT", "1h", 3600),
    ("CULL_IDLE_TIMEOUT", "30m", 1800),
    ("CULL_IDLE_TIMEOUT", "90", 90),
    ("CULL_IDLE_TIMEOUT", "0", 0),
    ("AUTH_MODE", "OPEN", "open"),
    ("POSTGRES_PORT", " 6543 ", 6543),
])
def test_values_are_parsed_to_typed_values(name, text, expected):
    value = getattr(load({name: text}), name.lower())
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("blank", ["", "   "])
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_an_empty_value_means_the_default(setting, blank):
    assert getattr(load({setting.name: blank}), setting.attr) == getattr(load({}), setting.attr)


BAD_VALUES = [
    ("USER_MEM_LIMIT", "lots"),
    ("USER_MEM_LIMIT", "64M"),
    ("POSTGRES_PORT", "99999"),
    ("POSTGRES_PORT", "0"),
    ("AUTH_MODE", "ldap"),
    ("USER_CPU_LIMIT", "-1"),
    ("USER_CPU_LIMIT", "nan"),
    ("ADMIN_USER", "Bad Name"),
    ("ADMIN_USER", "ad\nmin"),
    ("CULL_IDLE_TIMEOUT", "soon"),
    ("COMPOSE_PROJECT_NAME", "Class 1"),
    ("SINGLEUSER_IMAGE", "My Image"),
    ("POSTGRES_HOST", "db/host"),
    ("HUB_COOKIE_SECRET", "nothex"),
    ("ADMIN_PASSWORD", "short"),
    # bytes.fromhex() in jupyterhub_config.py needs whole bytes.
    pytest.param("HUB_COOKIE_SECRET", "a" * 65, id="HUB_COOKIE_SECRET-odd-hex-digits"),
    # bcrypt refuses over 72 bytes: the admin would not be created, leaving the name open.
    pytest.param("ADMIN_PASSWORD", "x" * 73, id="ADMIN_PASSWORD-73-bytes"),
    pytest.param("ADMIN_PASSWORD", "é" * 40, id="ADMIN_PASSWORD-40-chars-80-bytes"),
    # DockerSpawner's int(cpu_limit * 100000) overflows at every server start.
    pytest.param("USER_CPU_LIMIT", "inf", id="USER_CPU_LIMIT-inf"),
]


@pytest.mark.parametrize("name, text", BAD_VALUES)
def test_a_bad_value_is_one_line_naming_the_variable(name, text):
    with pytest.raises(ConfigError) as caught:
        load({name: text})
    [problem] = caught.value.problems
    assert problem.startswith(f"{name}=")
    assert "\n" not in problem
    assert str(caught.value) == problem


def test_several_bad_values_give_one_line_each_in_table_order():
    with pytest.raises(ConfigError) as caught:
        load({"POSTGRES_PORT": "0", "USER_MEM_LIMIT": "lots", "AUTH_MODE": "ldap"})
    lines = str(caught.value).splitlines()
    assert lines == caught.value.problems
    assert [line.split("=", 1)[0] for line in lines] == ["AUTH_MODE", "USER_MEM_LIMIT", "POSTGRES_PORT"]


# Values chosen so that they cannot appear in the message by coincidence
# (the word "short", for one, is in the password's own reason).
@pytest.mark.parametrize("name, text", [
    ("ADMIN_PASSWORD", "Xq7#pz"),
    ("POSTGRES_PASSWORD", "Pw9!kd"),
    ("PROXY_AUTH_TOKEN", "Tk4$rv"),
    ("HUB_COOKIE_SECRET", "zz"),
    ("HUB_COOKIE_SECRET", "Zy8@qw" * 11),
    ("DEEPSEEK_API_KEY", "sk-abc def"),
    ("OPENAI_API_KEY", "sk-with space"),
])
def test_a_bad_secret_is_never_shown(name, text):
    with pytest.raises(ConfigError) as caught:
        load({name: text, "USER_MEM_LIMIT": "lots"})
    message = str(caught.value)
    assert text not in message
    assert sorted(line.split("=", 1)[0] for line in message.splitlines()) == sorted([name, "USER_MEM_LIMIT"])


def test_secret_settings_are_the_generated_ones_and_every_vendor_key():
    from aihub_providers.vendors import VENDORS_LIST
    expected = {"ADMIN_PASSWORD", "HUB_COOKIE_SECRET", "POSTGRES_PASSWORD", "PROXY_AUTH_TOKEN", "GATEWAY_API_TOKEN",
                "CLASS_TOOLS_API_TOKEN"}
    assert set(SECRET_NAMES) == expected | {vendor.key_env for vendor in VENDORS_LIST}


def test_load_or_exit_prints_each_problem_and_exits_2(capsys):
    with pytest.raises(SystemExit) as caught:
        load_or_exit({"USER_MEM_LIMIT": "lots", "POSTGRES_PORT": "0"})
    assert caught.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [ERROR_PREFIX + "USER_MEM_LIMIT", ERROR_PREFIX + "POSTGRES_PORT"]


def test_a_process_with_bad_settings_exits_2_without_a_traceback():
    env = {name: value for name, value in os.environ.items() if name not in {s.name for s in SETTINGS}}
    env.update(USER_MEM_LIMIT="lots", POSTGRES_PORT="0", ADMIN_PASSWORD="Xq7#pz")
    result = subprocess.run(
        [sys.executable, "-c", "from aihub.settings import load_or_exit; load_or_exit()"],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    assert all(line.startswith(ERROR_PREFIX) for line in lines)
    assert "Traceback" not in result.stderr
    assert "Xq7#pz" not in result.stderr
