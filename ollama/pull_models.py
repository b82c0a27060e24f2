"""Pulls the class's models into the Ollama server, once, at `docker compose up`.

    OLLAMA_PULL_MODELS   models to pull, separated by commas or spaces (default qwen2.5:0.5b nomic-embed-text)
    OLLAMA_BASE_URL      the Ollama server (default http://ollama:11434)

Prints progress to the log, skips models the server already has (so a restart needs no
network), and exits 1 with one line naming the model and the reason when a pull fails,
e.g. a misspelt model name. Once every model is present it stays up, idle, until the
stack stops, with the file PULLED_MARKER as its healthcheck: `docker compose up --wait`
reports a job that has exited, even with status 0, as a failure. Standard library only:
it runs in any Python image.
"""

import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request

DEFAULT_MODELS = "qwen2.5:0.5b nomic-embed-text"  # the chat model and the embedding model
DEFAULT_BASE_URL = "http://ollama:11434"
WAIT_SECONDS = 60  # for the server to answer at all
READ_TIMEOUT = 600  # Ollama can be silent for minutes while it verifies a large model
PULLED_MARKER = "/tmp/models-pulled"  # docker-compose.yml's healthcheck of ollama-pull tests it


class PullError(Exception):
    pass


def log(message: str) -> None:
    print(f"ollama-pull: {message}", flush=True)


def model_names(value: str) -> list:
    return list(dict.fromkeys(name for name in re.split(r"[\s,]+", value) if name))


def error_text(raw: bytes) -> str:
    """Ollama's {"error": "..."} body, or the raw text when it is something else."""
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace").strip() or "no details given"


def wait_for_server(base_url: str, seconds: float) -> str:
    """Returns the server's version once /api/version answers; PullError after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/api/version", timeout=5) as response:
                return json.load(response).get("version", "unknown")
        except (OSError, ValueError) as error:
            if time.monotonic() >= deadline:
                reason = getattr(error, "reason", error)
                raise PullError(f"Ollama server at {base_url} not reachable after {seconds:.0f} s ({reason})")
            time.sleep(1)


def present_models(base_url: str) -> set:
    with urllib.request.urlopen(f"{base_url}/api/tags", timeout=30) as response:
        names = set()
        for model in json.load(response).get("models", []):
            names.update({model.get("name"), model.get("model")})
        return names


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000


class Progress:
    """Turns Ollama's stream of progress messages into a few log lines: one when the
    status changes, then one per 10% step or per second of progress, whichever first."""

    def __init__(self, model: str, clock=time.monotonic):
        self.model, self.clock = model, clock
        self.status, self.step, self.percent, self.printed_at = None, -1, None, 0.0

    def update(self, message: dict) -> None:
        status, total = message.get("status", ""), message.get("total")
        percent = min(100, 100 * message.get("completed", 0) // total) if total else None
        now = self.clock()
        if status != self.status:
            self.status, self.step = status, -1
        elif percent is None or percent == self.percent:
            return
        elif percent // 10 == self.step and now - self.printed_at < 1:
            return
        self.percent, self.printed_at = percent, now
        if percent is None:
            log(f"{self.model}: {status}")
        else:
            self.step = percent // 10
            log(f"{self.model}: {status} {percent}% ({human_size(message.get('completed', 0))}"
                f" of {human_size(total)})")


def pull(base_url: str, model: str) -> None:
    """Pulls one model, logging progress; PullError with Ollama's reason on failure."""
    request = urllib.request.Request(
        f"{base_url}/api/pull", json.dumps({"model": model, "stream": True}).encode(),
        {"Content-Type": "application/json"})
    progress = Progress(model)
    try:
        with urllib.request.urlopen(request, timeout=READ_TIMEOUT) as response:
            for line in response:
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    raise PullError(f"unexpected reply from Ollama: {line[:200]!r}") from None
                if "error" in message:  # Ollama's way to fail once the stream has started
                    raise PullError(str(message["error"]))
                progress.update(message)
                if message.get("status") == "success":
                    return
    except urllib.error.HTTPError as error:  # failed before streaming: an error status
        raise PullError(f"HTTP {error.code}: {error_text(error.read())}") from None
    except OSError as error:
        raise PullError(f"connection to {base_url} failed: {getattr(error, 'reason', error)}") from None
    raise PullError("the server ended the pull before reporting success")


def main() -> int:
    base_url = (os.environ.get("OLLAMA_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    models = model_names(os.environ.get("OLLAMA_PULL_MODELS") or DEFAULT_MODELS)
    try:
        version = wait_for_server(base_url, WAIT_SECONDS)
        present = present_models(base_url)
    except (PullError, OSError, ValueError) as error:
        print(f"ollama-pull: error: {error}", file=sys.stderr, flush=True)
        return 1
    log(f"Ollama {version} at {base_url}; models to pull: {', '.join(models)}")
    failed = []
    for model in models:
        if model in present or f"{model}:latest" in present:
            log(f"{model}: already present")
            continue
        try:
            pull(base_url, model)
        except PullError as error:  # go on with the others; the exit status tells
            print(f"ollama-pull: error: cannot pull {model}: {error}; check OLLAMA_PULL_MODELS in .env",
                  file=sys.stderr, flush=True)
            failed.append(model)
    return 1 if failed else 0


def idle_until_stopped(marker: str = PULLED_MARKER) -> None:
    """Mark the pull done (healthy) and wait for the stack to stop this container."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    with open(marker, "w"):
        pass
    log("every model is present; idle until the stack stops")
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    status = main()
    if status == 0:
        idle_until_stopped()
    sys.exit(status)
