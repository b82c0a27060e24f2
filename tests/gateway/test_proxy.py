"""The gateway's way to vendors through a site's proxy: from GatewayConfig, not os.environ.

A real forward proxy on loopback that demands a login (Basic, as tinyproxy's BasicAuth
and most sites' proxies do) and knows the name `vendor.test` (the test vendor); the
gateway cannot resolve that name itself, so an answer proves the call went through.
Ollama's base URL (127.0.0.1) is internal and must not.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from aihub.gateway.upstream import make_client

from .conftest import DEEPSEEK_KEY

CHAT = {"model": "echo-1", "messages": [{"role": "user", "content": "through the proxy"}]}
LOGIN = ("student", "p@ss:w/rd")  # written p%40ss%3Aw%2Frd in AI_PROXY_URL
PROXY_URL_LOGIN = "student:p%40ss%3Aw%2Frd"


class ProxyHandler(BaseHTTPRequestHandler):
    """Plain-HTTP forwarding (absolute URLs), after checking Proxy-Authorization."""

    def log_message(self, *args) -> None:
        pass

    def _forward(self) -> None:
        server = self.server
        server.seen.append((self.command, self.path))
        expected = "Basic " + base64.b64encode(":".join(LOGIN).encode()).decode()
        if self.headers.get("Proxy-Authorization") != expected:
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            server.refused += 1
            return
        target = urlsplit(self.path)
        host = "127.0.0.1" if target.hostname == "vendor.test" else target.hostname
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-authorization", "connection")}
        connection = http.client.HTTPConnection(host, target.port, timeout=20)
        connection.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body, headers)
        answer = connection.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _forward


@pytest.fixture
def proxy():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ProxyHandler)
    server.seen, server.refused = [], 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def post(gateway, student, path):
    # trust_env=False: the tests below set a dead proxy in this process's environment
    return httpx.post(gateway.url + path, headers=student.headers, json=CHAT, timeout=30, trust_env=False)


def test_vendor_calls_go_through_a_proxy_with_a_login_and_internal_ones_do_not(
        start_gateway, student, proxy, upstream, monkeypatch):
    port = proxy.server_address[1]
    # Whatever the process's environment says about proxies is not the gateway's rule.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    gateway = start_gateway(USE_AI_PROXY="true", AI_PROXY_URL=f"http://{PROXY_URL_LOGIN}@127.0.0.1:{port}",
                            DEEPSEEK_BASE_URL=f"http://vendor.test:{upstream.server_address[1]}/v1")
    alice = student("proxied")
    response = post(gateway, alice, "/deepseek/v1/chat/completions")
    assert response.status_code == 200, response.text
    assert ("POST", f"http://vendor.test:{upstream.server_address[1]}/v1/chat/completions") in proxy.seen
    assert proxy.refused == 0
    # the vendor got the admin's key, not the proxy's login
    last = [r for r in upstream.state.requests if r.path.endswith("/chat/completions")][-1]
    assert last.authorization == f"Bearer {DEEPSEEK_KEY}"
    # Ollama (127.0.0.1) is internal: straight there
    seen = len(proxy.seen)
    assert post(gateway, alice, "/ollama/v1/chat/completions").status_code == 200
    assert len(proxy.seen) == seen


def test_a_wrong_proxy_login_is_reported_without_the_password(start_gateway, student, proxy, upstream):
    port = proxy.server_address[1]
    gateway = start_gateway(USE_AI_PROXY="true", AI_PROXY_URL=f"http://student:wr0ng%40pw@127.0.0.1:{port}",
                            DEEPSEEK_BASE_URL=f"http://vendor.test:{upstream.server_address[1]}/v1")
    response = post(gateway, student("badlogin"), "/deepseek/v1/chat/completions")
    assert response.status_code == 502 and proxy.refused == 1
    assert "AI_PROXY_URL" in response.json()["error"]["message"]
    assert "wr0ng" not in response.text


def test_without_use_ai_proxy_the_environments_proxy_is_ignored(make_config, upstream, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    config = make_config()
    assert config.proxy_url is None

    async def call():
        async with make_client(config) as client:
            return (await client.get(f"{upstream.url}/v1/models", headers={"Authorization": "Bearer x"})).status_code

    assert asyncio.run(call()) == 200
