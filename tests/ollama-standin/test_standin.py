"""The stand-in's model store, pull, listing and errors, in-process on loopback.

No Docker and no inference (the server imports xllamacpp only to run a model): the
image, inference and the official clients are checked by check_clients.py (README.md).
"""

import hashlib
import importlib.util
import json
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


standin = load("ollama_standin", HERE / "ollama_standin.py")
pull_models = load("pull_models_for_standin", HERE.parents[1] / "ollama" / "pull_models.py")


def add_blob(store: Path, data: bytes, media_type: str) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (store / "blobs" / digest.replace(":", "-")).write_bytes(data)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


@pytest.fixture
def store(tmp_path):
    """A store with one model, qwen2.5:0.5b, whose "GGUF" is 200 kB of bytes."""
    root = tmp_path / "store"
    (root / "blobs").mkdir(parents=True)
    config = {"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
              "model_type": "0.15M", "file_type": "F32"}
    manifest = {"schemaVersion": 2,
                "config": add_blob(root, json.dumps(config).encode(), "application/vnd.docker.container.image.v1+json"),
                "layers": [add_blob(root, bytes(range(256)) * 800, standin.MODEL_MEDIA_TYPE)]}
    path = root / "manifests" / "registry.ollama.ai" / "library" / "qwen2.5" / "0.5b"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(manifest))
    return root


@pytest.fixture
def server(store, tmp_path, monkeypatch):
    monkeypatch.setattr(standin, "STORE", store)
    monkeypatch.setattr(standin, "PULL_CHUNK_DELAY", 0)
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "models"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), standin.Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{httpd.server_port}")
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{httpd.server_port}")
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def call(url, body=None):
    """(status, parsed JSON or text) of one request."""
    request = urllib.request.Request(url, None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def test_root_and_version(server):
    assert call(server + "/") == (200, "Ollama is running")
    assert call(server + "/api/version") == (200, {"version": standin.VERSION})


def test_the_pull_job_pulls_from_the_store_and_ollama_list_shows_the_model(server, monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_PULL_MODELS", "qwen2.5:0.5b")
    assert pull_models.main() == 0
    out = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("[GIN]")]
    # 200 kB in 64 KiB chunks, then the config blob.
    assert [line.split()[4] for line in out if "%" in line] == ["32%", "64%", "96%", "100%", "100%"]
    assert out[-1] == "ollama-pull: qwen2.5:0.5b: success"
    [model] = call(server + "/api/tags")[1]["models"]
    assert model["name"] == "qwen2.5:0.5b" and model["size"] == 204800
    assert model["details"]["format"] == "gguf"
    standin.list_command()
    header, row = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("[GIN]")]
    assert header.split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert row.split()[:4] == ["qwen2.5:0.5b", model["digest"][:12], "205", "KB"]
    assert call(server + "/v1/models")[1]["data"][0]["id"] == "qwen2.5:0.5b"


def test_an_unknown_model_fails_inside_the_stream_as_ollama(server, monkeypatch, capsys):
    status, lines = call(server + "/api/pull", {"model": "nonexistent:model"})
    assert status == 200
    assert lines.splitlines()[-1] == '{"error": "pull model manifest: file does not exist"}'
    monkeypatch.setenv("OLLAMA_PULL_MODELS", "nonexistent:model")
    assert pull_models.main() == 1
    assert capsys.readouterr().err == (
        "ollama-pull: error: cannot pull nonexistent:model: pull model manifest: file does not exist;"
        " check OLLAMA_PULL_MODELS in .env\n")


def test_an_invalid_name_is_an_http_error(server):
    assert call(server + "/api/pull", {"model": "Not a model!"}) == (400, {"error": "invalid model name"})


def test_a_model_not_pulled_is_404_in_both_apis(server):
    message = 'model "qwen2.5:0.5b" not found, try pulling it first'
    chat = {"model": "qwen2.5:0.5b", "messages": [{"role": "user", "content": "hi"}]}
    assert call(server + "/api/chat", chat) == (404, {"error": message})
    assert call(server + "/v1/chat/completions", chat) == (404, {"error": {
        "message": message, "type": "not_found_error", "param": None, "code": None}})


@pytest.mark.parametrize("name, parsed", [
    ("qwen2.5:0.5b", ("registry.ollama.ai", "library", "qwen2.5", "0.5b")),
    ("llama3", ("registry.ollama.ai", "library", "llama3", "latest")),
    ("me/model:v1", ("registry.ollama.ai", "me", "model", "v1")),
    ("host:5000/me/model", ("host:5000", "me", "model", "latest")),
])
def test_names_parse_as_ollama(name, parsed):
    assert standin.parse_name(name) == parsed


@pytest.mark.parametrize("name", ["", "Not a model!", "a/b/c/d", "model:", ":tag", "x:bad tag"])
def test_invalid_names(name):
    with pytest.raises(standin.ApiError, match="invalid model name"):
        standin.parse_name(name)


# -- a thinking model's pieces: the first half of its token budget is reasoning --

@pytest.mark.parametrize("field, expected", [
    ("thinking", [{"thinking": "a"}, {"thinking": " b"}, {"content": " c"}, {"content": " d"}]),
    (None, [{"content": "<think>\na"}, {"content": " b"}, {"content": "\n</think>\n\n c"}, {"content": " d"}]),
])
def test_a_thinking_model_thinks_first_in_the_field_or_the_tags_asked_for(field, expected):
    thoughts = standin.Thoughts(field, max_tokens=4)
    assert [thoughts.piece(text) for text in ["a", " b", " c", " d"]] == expected


class FakeModel:
    name = "m:latest"

    def __init__(self, thinks):
        self.thinks = thinks


@pytest.mark.parametrize("thinks, think, field", [
    (True, True, "thinking"), (True, "high", "thinking"), (True, None, None), (True, False, "off"),
    (False, None, "off"), (False, False, "off"),
])
def test_think_is_honoured_as_ollama_does(thinks, think, field):
    thoughts = standin.thoughts_for(FakeModel(thinks), think, "thinking", 8)
    assert (thoughts.field if thoughts else "off") == field


def test_think_for_a_model_that_does_not_is_a_400():
    with pytest.raises(standin.ApiError, match='"m:latest" does not support thinking') as error:
        standin.thoughts_for(FakeModel(False), True, "thinking", 8)
    assert error.value.status == 400


def test_embedding_inputs_are_cut_to_fit_as_ollama_truncates_them():
    long_text = "é" * standin.EMBED_MAX_BYTES  # two bytes each: cut mid-way, on a character
    cut = standin.truncated([long_text, "short", [1, 2, 3]])
    assert len(cut[0].encode()) <= standin.EMBED_MAX_BYTES and cut[0] == "é" * (standin.EMBED_MAX_BYTES // 2)
    assert cut[1:] == ["short", [1, 2, 3]]
