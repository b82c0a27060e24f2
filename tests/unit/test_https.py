"""HTTPS in front of the hub: the settings' checks, Caddy's configuration per mode, the
hub's public address and cookies, and the compose override that wires them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aihub import https, secrets, services
from aihub.settings import HTTPS_FRONT_MARK, HTTPS_SETTINGS, ConfigError, https_front_problems, load

from .test_config import load_config

ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = yaml.safe_load((ROOT / "docker-compose.https.yml").read_text().replace("!reset", ""))
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
ERROR_PREFIX = "aihub: configuration error: "
FILES_MODE = {"HTTPS_MODE": "files", "HTTPS_DOMAIN": "hub.school.edu", HTTPS_FRONT_MARK: "caddy"}


def settings(**environ):
    return load(environ)


# -- settings -------------------------------------------------------------------------

def test_https_is_off_by_default():
    plain = load({})
    assert plain.https_mode == "off"
    assert https.public_url(plain) == "" and https.cookie_options(plain) == {}
    assert https_front_problems(plain, {}) == []


@pytest.mark.parametrize("environ, problem", [
    ({"HTTPS_MODE": "letsencrypt"}, "HTTPS_MODE='letsencrypt' must be one of off, acme, files, internal"),
    ({"HTTPS_MODE": "internal"}, "HTTPS_DOMAIN is empty but HTTPS_MODE=internal"),
    ({"HTTPS_MODE": "files"}, "HTTPS_DOMAIN is empty but HTTPS_MODE=files"),
    ({"HTTPS_MODE": "acme", "HTTPS_DOMAIN": "192.168.1.10"}, "HTTPS_DOMAIN='192.168.1.10' cannot get a Let's Encrypt"),
    ({"HTTPS_MODE": "acme", "HTTPS_DOMAIN": "localhost"}, "HTTPS_DOMAIN='localhost' cannot get a Let's Encrypt"),
    ({"HTTPS_DOMAIN": "https://hub.school.edu"}, "HTTPS_DOMAIN='https://hub.school.edu' is not a host name"),
    ({"HTTPS_DOMAIN": "hub.school.edu:8443"}, "HTTPS_DOMAIN='hub.school.edu:8443' is not a host name"),
    ({"HTTPS_EMAIL": "admin"}, "HTTPS_EMAIL='admin' is not an email address"),
    ({"HTTPS_CERT_FILE": "/etc/ssl/hub.crt"}, "HTTPS_CERT_FILE='/etc/ssl/hub.crt' must be a file name only"),
    ({"HTTPS_KEY_FILE": "../hub.key"}, "HTTPS_KEY_FILE='../hub.key' must be a file name only"),
    ({"HTTPS_PORT": "70000"}, "HTTPS_PORT='70000' is not a TCP port"),
    ({"HTTPS_MODE": "internal", "HTTPS_DOMAIN": "hub.lan", "HTTP_PORT": "443"}, "HTTP_PORT and HTTPS_PORT are both 443"),
])
def test_wrong_https_settings_are_one_line_naming_the_variable(environ, problem):
    with pytest.raises(ConfigError) as caught:
        load(environ)
    [line] = caught.value.problems
    assert problem in line and line.endswith("set it in .env")


def test_the_mode_must_agree_with_the_compose_files_in_use():
    on = settings(HTTPS_MODE="internal", HTTPS_DOMAIN="hub.lan")
    [line] = https_front_problems(on, {})
    assert line.startswith("HTTPS_MODE=internal but docker-compose.https.yml is not in use")
    assert "COMPOSE_FILE=docker-compose.yml:docker-compose.https.yml" in line
    [line] = https_front_problems(load({}), {HTTPS_FRONT_MARK: "caddy"})
    assert line.startswith("HTTPS_MODE is off but docker-compose.https.yml is in use")
    assert https_front_problems(on, {HTTPS_FRONT_MARK: "caddy"}) == []


def test_the_secrets_job_stops_a_mode_without_the_override(tmp_path, monkeypatch, capsys):
    """`up --wait` fails before anything starts: a hub with Secure cookies on plain HTTP
    would turn every login away."""
    monkeypatch.setenv("HTTPS_MODE", "internal")
    monkeypatch.setenv("HTTPS_DOMAIN", "hub.lan")
    monkeypatch.delenv(HTTPS_FRONT_MARK, raising=False)
    with pytest.raises(SystemExit) as caught:
        secrets.main(["init"], tmp_path / "secrets")
    assert caught.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(ERROR_PREFIX + "HTTPS_MODE=internal but docker-compose.https.yml")
    monkeypatch.setenv(HTTPS_FRONT_MARK, "caddy")
    assert secrets.main(["init"], tmp_path / "secrets") == 0


def test_the_secrets_job_stops_files_mode_without_its_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(https, "CERTS_DIR", tmp_path)
    for name, value in FILES_MODE.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "hub.key").write_text(PEM)
    with pytest.raises(SystemExit):
        secrets.main(["init"], tmp_path / "secrets")
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(ERROR_PREFIX + "HTTPS_CERT_FILE='hub.crt': no such file in https/certs/")
    (tmp_path / "hub.crt").write_text(PEM)
    assert secrets.main(["init"], tmp_path / "secrets") == 0


# -- the hub --------------------------------------------------------------------------

@pytest.mark.parametrize("port, url", [("443", "https://hub.school.edu/"), ("8443", "https://hub.school.edu:8443/")])
def test_the_hub_knows_its_public_address_and_sets_secure_cookies(port, url):
    on = settings(HTTPS_MODE="files", HTTPS_DOMAIN="Hub.School.edu", HTTPS_PORT=port)
    assert https.public_url(on) == url
    assert https.cookie_options(on) == {"secure": True}


def test_jupyterhub_config_wires_the_public_address_and_cookies(tmp_path, monkeypatch):
    monkeypatch.setattr(secrets, "SECRETS_DIR", tmp_path / "secrets")
    for name, value in {"HTTPS_MODE": "internal", "HTTPS_DOMAIN": "192.168.1.10", HTTPS_FRONT_MARK: "caddy"}.items():
        monkeypatch.setenv(name, value)
    secrets.ensure(load())
    config = load_config()
    assert config.JupyterHub.public_url == "https://192.168.1.10/"
    assert config.JupyterHub.tornado_settings == {"cookie_options": {"secure": True}}


def load_student_server_config(monkeypatch, environ):
    from traitlets.config import Config
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    config, path = Config(), ROOT / "singleuser" / "jupyter_server_config.py"
    exec(compile(path.read_text(), str(path), "exec"), {"get_config": lambda: config})
    return config


def test_students_servers_set_their_xsrf_cookie_secure_behind_https(monkeypatch):
    """The hub passes its cookie options to every server it starts (JUPYTERHUB_COOKIE_OPTIONS)."""
    on = settings(HTTPS_MODE="internal", HTTPS_DOMAIN="hub.lan")
    server = load_student_server_config(monkeypatch, {"JUPYTERHUB_COOKIE_OPTIONS": json.dumps(https.cookie_options(on))})
    assert server.ServerApp.tornado_settings == {"xsrf_cookie_kwargs": {"secure": True}}
    monkeypatch.delenv("JUPYTERHUB_COOKIE_OPTIONS")
    assert "tornado_settings" not in load_student_server_config(monkeypatch, {}).ServerApp


# -- Caddy's configuration ------------------------------------------------------------

def blocks(text: str) -> dict[str, list[str]]:
    """The Caddyfile's blocks by address ("" for the global options), lines stripped."""
    found, name = {}, None
    for line in text.splitlines():
        if line.endswith("{") and not line.startswith("\t"):
            name = line[:-1].strip()
            found[name] = []
        elif line == "}":
            name = None
        elif name is not None and line.strip():
            found[name].append(line.strip())
    return found


def test_files_mode_serves_the_admins_certificate():
    text = https.caddyfile(settings(HTTPS_MODE="files", HTTPS_DOMAIN="hub.school.edu",
                                    HTTPS_CERT_FILE="campus.pem", HTTPS_KEY_FILE="campus-key.pem"))
    assert blocks(text)["hub.school.edu"] == [
        "tls /etc/aihub-https/certs/campus.pem /etc/aihub-https/certs/campus-key.pem", "reverse_proxy hub:8000"]
    assert "default_sni hub.school.edu" in blocks(text)[""]
    assert "skip_install_trust" not in text and "email" not in text


def test_internal_mode_uses_caddys_own_ca():
    text = https.caddyfile(settings(HTTPS_MODE="internal", HTTPS_DOMAIN="192.168.1.10"))
    assert blocks(text)["192.168.1.10"] == ["tls internal", "reverse_proxy hub:8000"]
    assert "skip_install_trust" in blocks(text)[""]


def test_acme_mode_leaves_certificates_to_lets_encrypt():
    text = https.caddyfile(settings(HTTPS_MODE="acme", HTTPS_DOMAIN="hub.school.edu", HTTPS_EMAIL="it@school.edu"))
    assert blocks(text)["hub.school.edu"] == ["reverse_proxy hub:8000"]
    assert "email it@school.edu" in blocks(text)[""]
    assert "email" not in https.caddyfile(settings(HTTPS_MODE="acme", HTTPS_DOMAIN="hub.school.edu"))


@pytest.mark.parametrize("port, target", [("443", "https://hub.school.edu{uri}"),
                                          ("18443", "https://hub.school.edu:18443{uri}")])
def test_plain_http_redirects_to_the_https_address_and_port(port, target):
    """Caddy's own redirect would drop a port other than 443."""
    text = https.caddyfile(settings(HTTPS_MODE="internal", HTTPS_DOMAIN="hub.school.edu", HTTPS_PORT=port))
    assert blocks(text)["http://"] == [f"redir {target} 308"]
    assert "auto_https disable_redirects" in blocks(text)[""]


def test_caddy_has_no_admin_endpoint_and_no_http3():
    options = blocks(https.caddyfile(settings(HTTPS_MODE="acme", HTTPS_DOMAIN="hub.school.edu")))[""]
    assert "admin off" in options and "protocols h1 h2" in options


# -- Caddy's start --------------------------------------------------------------------



def test_files_mode_starts_with_both_files(tmp_path):
    (tmp_path / "hub.crt").write_text(PEM)
    (tmp_path / "hub.key").write_text(PEM.replace("CERTIFICATE", "PRIVATE KEY"))
    assert https.load_or_exit(FILES_MODE, tmp_path).https_mode == "files"


@pytest.mark.parametrize("present, problem", [
    ({"hub.key": PEM}, "HTTPS_CERT_FILE='hub.crt': no such file in https/certs/; copy your certificate there"),
    ({"hub.crt": PEM}, "HTTPS_KEY_FILE='hub.key': no such file in https/certs/; copy your private key there"),
    ({"hub.crt": "MIIB binary DER", "hub.key": PEM}, "HTTPS_CERT_FILE='hub.crt': https/certs/hub.crt is not a PEM file"),
])
def test_a_missing_or_wrong_certificate_file_stops_caddy_with_one_line(tmp_path, capsys, present, problem):
    for name, text in present.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(SystemExit) as caught:
        https.load_or_exit(FILES_MODE, tmp_path)
    assert caught.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(ERROR_PREFIX + problem)


@pytest.mark.parametrize("environ, problem", [
    ({HTTPS_FRONT_MARK: "caddy"}, "HTTPS_MODE is off but docker-compose.https.yml is in use"),
    ({"HTTPS_MODE": "internal", HTTPS_FRONT_MARK: "caddy"}, "HTTPS_DOMAIN is empty but HTTPS_MODE=internal"),
])
def test_caddy_without_a_usable_mode_stops_with_one_line(tmp_path, capsys, environ, problem):
    with pytest.raises(SystemExit):
        https.load_or_exit(environ, tmp_path)
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(ERROR_PREFIX + problem)


def test_caddys_start_imports_nothing_beyond_the_settings():
    """Caddy's image installs the aihub package without its dependencies."""
    modules = subprocess.run([sys.executable, "-c", "import sys, aihub.https; print(' '.join(sys.modules))"],
                             capture_output=True, text=True, check=True).stdout.split()
    heavy = {"jupyterhub", "psycopg2", "httpx", "asyncpg", "tornado", "docker", "traitlets"}
    assert not heavy & {name.split(".")[0] for name in modules}


# -- the override ---------------------------------------------------------------------

def test_caddy_gets_the_https_settings_and_nothing_else():
    environment = OVERRIDE["services"]["caddy"]["environment"]
    assert set(environment) == {setting.name for setting in HTTPS_SETTINGS}
    assert f"ENV {HTTPS_FRONT_MARK}=caddy" in (ROOT / "https/Dockerfile").read_text()
    assert "env_file" not in OVERRIDE["services"]["caddy"]


def test_the_hub_waits_for_caddy_and_publishes_no_port():
    hub = OVERRIDE["services"]["hub"]
    assert hub["depends_on"]["caddy"]["condition"] == "service_healthy"
    assert OVERRIDE["services"]["caddy"]["depends_on"]["secrets"]["condition"] == "service_completed_successfully"
    assert "ports: !reset []" in (ROOT / "docker-compose.https.yml").read_text()
    secrets_job = OVERRIDE["services"]["secrets"]
    assert secrets_job["environment"] == {HTTPS_FRONT_MARK: "caddy"}
    assert f"./https/certs:{https.CERTS_DIR}:ro" in secrets_job["volumes"]
    assert f"./https/certs:{https.CERTS_DIR}:ro" in OVERRIDE["services"]["caddy"]["volumes"]


def test_the_readmes_copy_internal_modes_root_from_where_caddy_keeps_it():
    command = f"docker compose cp caddy:{https.INTERNAL_ROOT} aihub-root.crt"
    assert command in (ROOT / "README.md").read_text() and command in (ROOT / "README.zh-CN.md").read_text()
    assert "ENV XDG_DATA_HOME=/data " in (ROOT / "https/Dockerfile").read_text()
    assert "caddy-data:/data" in OVERRIDE["services"]["caddy"]["volumes"]


def test_caddy_reaches_the_hub_where_its_proxy_listens():
    assert https.HUB_ADDRESS == f"hub:{services.PROXY_PORT}"
    assert "hub" in yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
