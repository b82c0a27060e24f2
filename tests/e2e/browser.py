"""A person at a browser, as the hub sees one: forms with XSRF tokens, cookies, redirects.

Everything goes through the public port, the way a student's browser talks to the stack:
the hub's own pages (sign-up, login, approval), the hub's REST API with the login
cookie, and the student's Jupyter server (OAuth redirects, REST, kernel websocket).
"""

from __future__ import annotations

import json
import re
import time
import uuid

import requests
import websocket


class Browser:
    def __init__(self, base_url: str, ca_file: str | None = None):
        """`ca_file`: the CA that signed an https:// hub's certificate, trusted for every
        request and websocket (verification stays on)."""
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if ca_file:
            self.session.verify = ca_file
            # Else REQUESTS_CA_BUNDLE, where set, would win over the session's CA.
            self.session.trust_env = False
        self.ssl_options = {"ca_certs": ca_file} if ca_file else None
        self.username: str | None = None

    # -- plumbing ------------------------------------------------------------------

    def _xsrf(self, path_prefix: str) -> str:
        """The _xsrf cookie a page under `path_prefix` set, as a browser would send it."""
        best = None
        for cookie in self.session.cookies:
            if cookie.name == "_xsrf" and path_prefix.startswith(cookie.path.rstrip("/")):
                if best is None or len(cookie.path) > len(best.path):
                    best = cookie
        if best is None:
            raise AssertionError(f"no _xsrf cookie for {path_prefix}; visit a page there first")
        return best.value

    def page(self, path: str) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=60)

    def submit(self, form_page: str, action: str, fields: dict) -> requests.Response:
        """Load a form page (which sets the XSRF cookie), then post the form, as a person does."""
        html = self.page(form_page).text
        hidden = re.search(r'name="_xsrf" value="([^"]+)"', html)
        data = dict(fields, _xsrf=hidden[1] if hidden else self._xsrf(action))
        return self.session.post(self.base_url + action, data=data, timeout=60)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """A REST call authenticated by the login cookie, with the XSRF header pages send."""
        prefix = "/hub/" if path.startswith("/hub/") else path.split("/api/")[0] + "/"
        headers = {"X-XSRFToken": self._xsrf(prefix), **kwargs.pop("headers", {})}
        return self.session.request(method, self.base_url + path, headers=headers, timeout=60, **kwargs)

    # -- the hub's pages -----------------------------------------------------------

    def sign_up(self, username: str, password: str) -> str:
        response = self.submit("/hub/signup", "/hub/signup", {
            "username": username,
            "signup_password": password,
            "signup_password_confirmation": password,
        })
        response.raise_for_status()
        return response.text

    @classmethod
    def logged_in_admin(cls, base_url: str, login: tuple[str, str]) -> "Browser":
        """The admin, logged in with the password the bundle generated (`login`)."""
        browser = cls(base_url)
        browser.log_in(*login)
        assert browser.is_logged_in(), "the admin could not log in with the generated password"
        return browser

    def log_in(self, username: str, password: str) -> requests.Response:
        response = self.submit("/hub/login", "/hub/login", {"username": username, "password": password})
        self.username = username
        return response

    def is_logged_in(self) -> bool:
        response = self.session.get(self.base_url + "/hub/api/user", timeout=30)
        return response.status_code == 200

    def approve(self, username: str) -> None:
        """Admin: toggle a signed-up account to authorized on NativeAuthenticator's page."""
        page = self.page("/hub/authorize")
        assert username in page.text, f"{username} is not on the approval page"
        response = self.page(f"/hub/authorize/{username}")
        response.raise_for_status()

    # -- the student's server -------------------------------------------------------

    def start_server(self, timeout: float = 180) -> float:
        """Start my server through the hub's API and wait until ready; return seconds taken."""
        started = time.monotonic()
        response = self.api("POST", f"/hub/api/users/{self.username}/server")
        assert response.status_code in (201, 202), (response.status_code, response.text)
        self.wait_until_ready(timeout)
        return time.monotonic() - started

    def wait_until_ready(self, timeout: float = 180) -> None:
        """Wait for my server to be ready (a start in progress, e.g. the one logging in began)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/hub/api/users/{self.username}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return
            time.sleep(0.25)
        raise AssertionError(f"server of {self.username} not ready after {timeout}s")

    def server_running(self) -> bool:
        return bool(self.api("GET", f"/hub/api/users/{self.username}").json().get("servers"))

    def stop_server(self, timeout: float = 120) -> None:
        response = self.api("DELETE", f"/hub/api/users/{self.username}/server")
        assert response.status_code in (202, 204), (response.status_code, response.text)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/hub/api/users/{self.username}").json()
            if not model.get("servers"):
                return
            time.sleep(0.25)
        raise AssertionError(f"server of {self.username} did not stop in {timeout}s")

    @property
    def server_path(self) -> str:
        return f"/user/{self.username}"

    def open_lab(self) -> None:
        """Open JupyterLab: follows the OAuth redirects that log me in to my own server."""
        response = self.page(self.server_path + "/lab")
        response.raise_for_status()
        assert "JupyterLab" in response.text, response.text[:300]

    def run_cell(self, code: str, timeout: float = 60, expect_ok: bool = True) -> str:
        """Run code in a new kernel over the websocket, as a notebook does; return its output."""
        kernel_id = self.start_kernel()
        try:
            return self.execute(kernel_id, code, timeout, expect_ok)
        finally:
            self.api("DELETE", f"{self.server_path}/api/kernels/{kernel_id}")

    def start_kernel(self) -> str:
        """A new kernel that stays, as an open notebook's does; its id."""
        kernel = self.api("POST", self.server_path + "/api/kernels", json={"name": "python3"})
        assert kernel.status_code == 201, (kernel.status_code, kernel.text)
        return kernel.json()["id"]

    def _websocket(self, path: str, timeout: float) -> websocket.WebSocket:
        """A websocket to my server with my cookies, as the browser opens one."""
        url = self.base_url.replace("http", "ws", 1) + self.server_path + path
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
        return websocket.create_connection(
            url,
            header=[f"Cookie: {cookies}", f"X-XSRFToken: {self._xsrf(self.server_path + '/')}"],
            origin=self.base_url,
            timeout=timeout,
            sslopt=self.ssl_options,
        )

    def chat(self, prompt: str, timeout: float = 120) -> str:
        """Ask in Jupyter AI's chat panel; return the agent's whole reply."""
        conn = self._websocket("/api/ai/chats", timeout)
        try:
            assert json.loads(conn.recv())["type"] == "connection"
            conn.send(json.dumps({"prompt": prompt}))
            reply, deadline = [], time.monotonic() + timeout
            while time.monotonic() < deadline:
                message = json.loads(conn.recv())
                if message["type"] == "agent":  # a whole reply at once (errors, help)
                    return message["body"]
                if message["type"] == "agent-stream-chunk":
                    reply.append(message["content"])
                    if message.get("stream_complete"):
                        return "".join(reply)
            raise AssertionError(f"no complete chat reply in {timeout}s; got {''.join(reply)!r}")
        finally:
            conn.close()

    def execute(self, kernel_id: str, code: str, timeout: float = 60, expect_ok: bool = True) -> str:
        """Run code in a running kernel over a new websocket (a notebook reconnecting)."""
        conn = self._websocket(f"/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}", timeout)
        msg_id = uuid.uuid4().hex
        conn.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                       "username": self.username, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False},
        }))
        output, status, idle = [], None, False
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                message = json.loads(conn.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    output.append(content["text"])
                elif kind in ("execute_result", "display_data"):
                    data = content["data"]  # %%ai answers as Markdown
                    output.append(data.get("text/markdown") or data.get("text/plain", ""))
                elif kind == "error":
                    output.append("\n".join(content["traceback"]))
                elif kind == "execute_reply":
                    status = content["status"]
                elif kind == "status":
                    idle = content["execution_state"] == "idle"
                if status and idle:
                    break
        finally:
            conn.close()
        assert status and (status == "ok" or not expect_ok), f"cell failed ({status}): {''.join(output)}"
        return "".join(output)
