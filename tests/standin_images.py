"""The official images the stack names, or where those cannot be pulled (no registry,
as on the test machine) the local stand-ins with the same contract (tests/standins)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

TESTS = Path(__file__).parent
STANDINS = TESTS / "standins"
# The Ollama stand-in (tests/ollama-standin), as the e2e stack's override builds it.
OLLAMA_STANDIN_COMPOSE = TESTS / "ollama-standin" / "compose.ollama-standin.yml"


def image_available(image: str) -> bool:
    """True when `image` is present or can be pulled."""
    for command in (["docker", "image", "inspect", image], ["docker", "pull", image]):
        if subprocess.run(command, capture_output=True, timeout=300).returncode == 0:
            return True
    return False


def standin_of(service: str) -> str:
    """The image tests/standins/compose.standins.yml runs for `service` of the stack."""
    overrides = yaml.safe_load((STANDINS / "compose.standins.yml").read_text())
    return overrides["services"][service]["image"]


def build_standin(image: str) -> None:
    built = subprocess.run(["bash", str(STANDINS / "build.sh"), image], capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"tests/standins/build.sh {image} failed:\n{built.stderr[-3000:]}")


def ollama_standin() -> str:
    """The Ollama stand-in's image, built on its stand-in base by the same compose file
    as the e2e stack's (a current one is a cache hit, seconds)."""
    service = yaml.safe_load(OLLAMA_STANDIN_COMPOSE.read_text())["services"]["ollama"]
    build_standin(service["build"]["args"]["PYTHON_IMAGE"])
    built = subprocess.run(["docker", "compose", "--project-directory", str(TESTS.parent),
                            "-f", str(OLLAMA_STANDIN_COMPOSE), "build", "ollama"], capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"building the Ollama stand-in ({OLLAMA_STANDIN_COMPOSE.name}) failed:\n"
                           f"{built.stderr[-3000:]}")
    return service["image"]


def official_or_standin(service: str, official: str) -> str:
    """`official` where it can be had, else `service`'s stand-in, built when missing or stale."""
    if image_available(official):
        return official
    standin = standin_of(service)
    try:
        build_standin(standin)
    except RuntimeError as error:
        raise RuntimeError(f"{official} cannot be pulled and {error}") from None
    return standin
