"""aihub_providers.lazy_server: a student's server starts without jupyter_ai, and the
chat panel's first request loads it with the image's settings.

Runs `jupyter server` with the user image's singleuser/jupyter_server_config.py, as
the hub starts it (AI_ENABLED, AI_DEFAULT_MODEL, a configured vendor), and reads
what jupyter_ai logs and answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tornado.websocket import websocket_connect

SINGLEUSER = Path(__file__).resolve().parents[2] / "singleuser"
TOKEN = "test-token-5d1e"
JUPYTER_AI_READY = "Initialized Jupyter AI server extension"


class Server:
    def __init__(self, tmp_path: Path, env: dict):
        etc = tmp_path / "etc"
        etc.mkdir()
        shutil.copy(SINGLEUSER / "jupyter_server_config.py", etc)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log_path = tmp_path / "server.log"
        home = self.home = tmp_path / "home"
        home.mkdir()
        self.data_dir = tmp_path / "data"
        env = os.environ | {
            "HOME": str(home),
            "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
            "JUPYTER_CONFIG_PATH": str(etc),
            "JUPYTER_DATA_DIR": str(self.data_dir),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
            "NO_PROXY": "127.0.0.1,localhost",
        } | env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser",
             f"--port={self.port}", "--ServerApp.ip=127.0.0.1",
             f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={home}"],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log_path.open("w"),
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log
            try:
                self.get("/api/status")
                break
            except (OSError, urllib.error.URLError):
                assert time.monotonic() < deadline, self.log
                time.sleep(0.1)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def get(self, path: str, token: str = TOKEN):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"Authorization": f"token {token}"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def start_server(tmp_path):
    servers = []

    def start(**env) -> Server:
        home = tmp_path / str(len(servers))
        home.mkdir()
        server = Server(home, env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


IMAGE_ENV = {
    "AI_ENABLED": "true",
    "AI_DEFAULT_MODEL": "deepseek:deepseek-chat",
    "DEEPSEEK_API_KEY": "k3y-deepseek-7f3a9c21e4",
    "OLLAMA_BASE_URL": "http://127.0.0.1:9",
}


def test_chat_panel_loads_jupyter_ai_on_its_first_request(start_server):
    server = start_server(**IMAGE_ENV)
    assert JUPYTER_AI_READY not in server.log

    # a request without the token is refused by jupyter_ai's handler (routing loaded it)
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.get("/api/ai/providers", token="wrong")
    assert refused.value.code == 403

    # the panel's requests, with the image's AiExtension settings applied
    providers = server.get("/api/ai/providers")["providers"]
    assert sorted(p["id"] for p in providers) == ["deepseek", "ollama"]
    assert server.get("/api/ai/config")["model_provider_id"] == "deepseek:deepseek-chat"
    assert server.log.count(JUPYTER_AI_READY) == 1
    commands = server.get("/api/ai/chats/slash_commands")["slash_commands"]
    assert "help" in [c["slash_id"] for c in commands]

    # the chat's websocket: jupyter_ai's handler greets the client
    async def connect():
        url = f"ws://127.0.0.1:{server.port}/api/ai/chats?token={TOKEN}"
        connection = await websocket_connect(url)
        message = json.loads(await asyncio.wait_for(connection.read_message(), 30))
        connection.close()
        return message

    assert asyncio.run(connect())["type"] == "connection"
    assert server.log.count(JUPYTER_AI_READY) == 1


def test_ai_disabled_serves_no_ai_api(start_server):
    server = start_server(AI_ENABLED="false")
    with pytest.raises(urllib.error.HTTPError) as missing:
        server.get("/api/ai/providers")
    assert missing.value.code == 404
    assert JUPYTER_AI_READY not in server.log


def chat(port: int, prompt: str, timeout: float = 90) -> dict:
    """Send one message on the chat panel's websocket; the agent's reply message."""
    async def exchange():
        url = f"ws://127.0.0.1:{port}/api/ai/chats?token={TOKEN}"
        connection = await websocket_connect(url)
        try:
            assert json.loads(await connection.read_message())["type"] == "connection"
            await connection.write_message(json.dumps({"prompt": prompt}))
            while True:
                message = json.loads(await asyncio.wait_for(connection.read_message(), timeout))
                if message["type"] == "agent":
                    return message
        finally:
            connection.close()

    return asyncio.run(exchange())


def one_page_pdf(text: str) -> bytes:
    """A minimal PDF whose one page shows `text` in Helvetica (as a slide exported to PDF)."""
    content = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    pdf, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return pdf + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def test_learn_and_ask_answer_from_the_students_own_files(start_server, server):
    """/learn indexes a folder with the preselected embedding model, /ask answers from it
    and quotes the passages it drew on.

    The fake vendor embeds by shared words and answers with the last user message
    reversed; what proves /ask drew on the document is the chat request's prompt, which
    must carry the document's passage that shares the question's words.
    """
    base = server.url + "/v1"
    # Behind a firewall: anything /learn or /ask fetched from outside (a tokenizer's
    # files, a model) would fail through this proxy, which nothing listens on.
    firewall = "http://127.0.0.1:9"
    jupyter = start_server(
        HTTP_PROXY=firewall, HTTPS_PROXY=firewall, http_proxy=firewall, https_proxy=firewall,
        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
        AI_ENABLED="true", OLLAMA_BASE_URL="http://127.0.0.1:9",
        OPENAI_COMPATIBLE_BASE_URL=base,
        AI_DEFAULT_MODEL="openai-compatible:test-model",
        AI_DEFAULT_EMBEDDINGS_MODEL="openai-compatible:test-embedder",
    )
    assert jupyter.get("/api/ai/config")["embeddings_provider_id"] == "openai-compatible:test-embedder"

    notes = jupyter.home / "notes"
    notes.mkdir()
    (notes / "bank.md").write_text(
        "# Silicon Valley Bank\n\nSilicon Valley Bank collapsed on 10 March 2023 after a bank run.\n")
    (notes / "garden.txt").write_text("Tomatoes need sun, water and a stake to climb.\n")
    (notes / "lecture.pdf").write_bytes(one_page_pdf("Photosynthesis turns light into sugar."))

    learned = chat(jupyter.port, "/learn notes")
    assert "I have learned documents" in learned["body"], learned["body"]
    embedded = [t for r in server.state.requests if r.path == "/v1/embeddings" for t in r.body["input"]]
    assert any("collapsed on 10 March 2023" in text for text in embedded)
    assert any("Photosynthesis turns light into sugar." in text for text in embedded)  # the PDF's text
    assert all(r.body["model"] == "test-embedder" for r in server.state.requests)
    # the index lives in the Jupyter data dir (in the image: the home volume)
    assert (jupyter.data_dir / "jupyter_ai" / "indices" / "default.faiss").is_file()

    server.state.requests.clear()
    answer = chat(jupyter.port, "/ask When did Silicon Valley Bank collapse?")
    chats = [r for r in server.state.requests if r.path == "/v1/chat/completions"]
    prompt = json.dumps(chats[-1].body["messages"])
    assert "collapsed on 10 March 2023" in prompt
    # the fake vendor's answer, computed from that prompt, then the passage it was given
    reply, sources = answer["body"].split("\n\n**Sources**\n\n")
    assert reply.strip()
    assert sources.startswith("`notes/bank.md`\n\n"
                              r"> \# Silicon Valley Bank Silicon Valley Bank collapsed on 10 March 2023"), sources
    assert any(r.path == "/v1/embeddings" for r in server.state.requests)  # the question's embedding
