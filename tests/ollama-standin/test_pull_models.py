"""ollama/pull_models.py against a scripted fake Ollama server on loopback (no Docker)."""

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("pull_models", ROOT / "ollama" / "pull_models.py")
pull_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pull_models)


class FakeOllama(BaseHTTPRequestHandler):
    """Answers /api/version and /api/tags; /api/pull plays the test's `script`:
    an HTTP status and the NDJSON messages to stream (or a JSON body when not 200)."""

    protocol_version = "HTTP/1.0"  # the body ends when the connection closes
    script = (200, [])
    present: list = []
    pulled: list = []

    def do_GET(self):
        if self.path == "/api/version":
            self.reply(200, {"version": "0.0.0-fake"})
        elif self.path == "/api/tags":
            self.reply(200, {"models": [{"name": n, "model": n} for n in self.present]})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).pulled.append(request["model"])
        status, messages = self.script
        if status != 200:
            return self.reply(status, messages)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        for message in messages:
            self.wfile.write(json.dumps(message).encode() + b"\n")

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve(port=0):
    server = ThreadingHTTPServer(("127.0.0.1", port), FakeOllama)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def fake(monkeypatch):
    FakeOllama.script, FakeOllama.present, FakeOllama.pulled = (200, []), [], []
    server = serve()
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.delenv("OLLAMA_PULL_MODELS", raising=False)
    yield FakeOllama
    server.shutdown()
    server.server_close()


def layer_progress(total=1000, step=10):
    return [{"status": "pulling abc123", "digest": "sha256:abc123", "total": total, "completed": done}
            for done in range(0, total + 1, step)]


def test_progress_is_logged_in_steps_and_the_pull_succeeds(fake, capsys):
    fake.script = (200, [{"status": "pulling manifest"}, *layer_progress(),
                         {"status": "verifying sha256 digest"}, {"status": "writing manifest"},
                         {"status": "success"}])
    assert pull_models.main() == 0
    out = capsys.readouterr().out.splitlines()
    assert fake.pulled == ["qwen2.5:0.5b", "nomic-embed-text"]  # the default chat and embedding models
    progress = [line for line in out if line.startswith("ollama-pull: qwen2.5:0.5b: pulling abc123")]
    # 101 messages from the server, one line per 10% step in the log.
    assert [line.split()[4] for line in progress] == [f"{p}%" for p in range(0, 101, 10)]
    assert progress[-1] == "ollama-pull: qwen2.5:0.5b: pulling abc123 100% (1.0 KB of 1.0 KB)"
    assert "ollama-pull: qwen2.5:0.5b: success" in out
    assert out[-1] == "ollama-pull: nomic-embed-text: success"


def test_between_10_percent_steps_progress_is_logged_at_most_once_a_second(monkeypatch):
    now, lines = [0.0], []
    monkeypatch.setattr(pull_models, "log", lines.append)
    progress = pull_models.Progress("m", clock=lambda: now[0])
    for percent in range(11):  # 1% more every 0.4 s
        now[0] = percent * 0.4
        progress.update({"status": "pulling x", "total": 1000, "completed": percent * 10})
    assert [line.split()[3] for line in lines] == ["0%", "3%", "6%", "9%", "10%"]
    assert lines[0] == "m: pulling x 0% (0 B of 1.0 KB)"


def test_models_are_split_on_commas_and_spaces():
    assert pull_models.model_names(" a:1, b:2  c,,a:1\n") == ["a:1", "b:2", "c"]


def test_models_already_present_are_not_pulled_again(fake, monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_PULL_MODELS", "qwen2.5:0.5b,llama3")
    fake.present = ["qwen2.5:0.5b", "llama3:latest"]
    assert pull_models.main() == 0
    assert fake.pulled == []
    assert "ollama-pull: llama3: already present" in capsys.readouterr().out


def test_an_http_error_fails_with_one_line_naming_the_model(fake, monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_PULL_MODELS", "Bad!Name")
    fake.script = (400, {"error": "invalid model name"})
    assert pull_models.main() == 1
    assert capsys.readouterr().err.splitlines() == [
        "ollama-pull: error: cannot pull Bad!Name: HTTP 400: invalid model name; check OLLAMA_PULL_MODELS in .env"]


def test_an_error_inside_the_stream_fails_and_the_other_models_are_still_pulled(fake, monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_PULL_MODELS", "nonexistent:model qwen2.5:0.5b")
    fake.script = (200, [{"status": "pulling manifest"},
                         {"error": "pull model manifest: file does not exist"}])
    assert pull_models.main() == 1
    assert fake.pulled == ["nonexistent:model", "qwen2.5:0.5b"]
    assert capsys.readouterr().err.splitlines()[0] == (
        "ollama-pull: error: cannot pull nonexistent:model: pull model manifest: file does not exist;"
        " check OLLAMA_PULL_MODELS in .env")


def test_a_stream_that_ends_before_success_fails(fake, capsys):
    fake.script = (200, [{"status": "pulling manifest"}])
    assert pull_models.main() == 1
    assert "ended the pull before reporting success" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server_fails_after_the_wait(monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(pull_models, "WAIT_SECONDS", 2)
    started = time.monotonic()
    assert pull_models.main() == 1
    assert 2 <= time.monotonic() - started < 10
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("ollama-pull: error: Ollama server at http://127.0.0.1:")
    assert "not reachable after 2 s" in line


def test_it_waits_for_a_server_that_starts_late(monkeypatch, capsys):
    port = free_port()
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{port}")
    FakeOllama.script, FakeOllama.present, FakeOllama.pulled = (200, [{"status": "success"}]), [], []
    servers = []
    timer = threading.Timer(1.5, lambda: servers.append(serve(port)))
    timer.start()
    try:
        assert pull_models.main() == 0
    finally:
        timer.join()
        for server in servers:
            server.shutdown()
            server.server_close()
    assert FakeOllama.pulled == ["qwen2.5:0.5b", "nomic-embed-text"]


def test_after_the_pulls_it_stays_up_healthy_until_stopped(tmp_path):
    """`docker compose up --wait` fails on any job that has exited: a done pull stays up."""
    marker = tmp_path / "pulled"
    idle = subprocess.Popen([sys.executable, "-c", (
        "import importlib.util; spec = importlib.util.spec_from_file_location('pull_models', "
        f"{str(ROOT / 'ollama' / 'pull_models.py')!r}); module = importlib.util.module_from_spec(spec); "
        f"spec.loader.exec_module(module); module.idle_until_stopped({str(marker)!r})")],
        stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "no healthcheck marker after the pulls"
        time.sleep(0.5)
        assert idle.poll() is None, "it exited instead of staying up"
        idle.send_signal(signal.SIGTERM)
        assert idle.wait(timeout=5) == 0
        assert "idle until the stack stops" in idle.stdout.read()
    finally:
        idle.kill()
