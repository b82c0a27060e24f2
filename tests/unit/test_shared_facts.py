"""One home for each fact two parts must agree on: the gateway's name, address and
scope (the hub's grant, the gateway's check, the students' base URLs, compose's
healthcheck) and the header that marks the gateway's own errors."""

import http.server
import threading
from urllib.parse import urlsplit

import yaml

from aihub import services, user_env
from aihub.gateway import config as gateway_config
from aihub.gateway import health
from aihub.gateway.auth import make_hub_auth
from aihub.gateway.errors import GATEWAY_HEADER
from aihub.settings import load
from aihub_providers import errors as provider_errors
from aihub_providers.vendors import VENDORS

from .test_env_example import COMPOSE_TEXT

SECRET = {"GATEWAY_API_TOKEN": "gateway-token-for-tests", "CLASS_TOOLS_API_TOKEN": "class-tools-token-for-tests",
          "POSTGRES_PASSWORD": "postgres-password-for-tests"}


def test_the_hub_grants_the_scope_the_gateway_checks_to_the_service_it_registers():
    settings = load({})
    [registered] = [s for s in services.hub_services(settings, SECRET) if s.get("url")]
    hub_auth = make_hub_auth(gateway_config.config_from_settings(settings, SECRET))
    assert hub_auth.oauth_client_id == f"service-{registered['name']}"
    assert hub_auth.access_scopes == {f"access:services!service={registered['name']}"}
    assert hub_auth.access_scopes <= set(services.server_token_scopes(settings))
    user_role = next(role for role in services.hub_roles(settings) if role["name"] == "user")
    assert hub_auth.access_scopes <= set(user_role["scopes"])


def test_students_and_the_hub_reach_the_gateway_where_it_listens():
    registered = urlsplit(services.GATEWAY_URL)
    assert (registered.hostname, registered.port) == (gateway_config.HOST, gateway_config.PORT)
    route = urlsplit(user_env.gateway_route(VENDORS["deepseek"]))
    assert (route.hostname, route.port) == (gateway_config.HOST, gateway_config.PORT)
    compose = yaml.safe_load(COMPOSE_TEXT)
    assert gateway_config.HOST in compose["services"]


def test_composes_healthcheck_asks_the_gateway_module_not_a_written_port():
    gateway = yaml.safe_load(COMPOSE_TEXT)["services"][gateway_config.HOST]
    assert gateway["healthcheck"]["test"] == ["CMD", "python", "-m", "aihub.gateway.health"]
    assert str(gateway_config.PORT) not in COMPOSE_TEXT


class Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_health_module_passes_when_the_gateway_answers_and_fails_when_not(monkeypatch, capsys):
    server = http.server.HTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(health, "PORT", server.server_address[1])
    # a proxy from the environment is never asked
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "")
    try:
        assert health.main() == 0
    finally:
        server.shutdown()
        server.server_close()
    assert health.main() == 1
    assert "not healthy" in capsys.readouterr().err


def test_the_gateways_error_header_is_the_one_students_clients_read():
    assert GATEWAY_HEADER is provider_errors.GATEWAY_ERROR_HEADER
