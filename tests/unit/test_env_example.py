""".env.example is generated from aihub.settings, whose tables agree with docker-compose.yml."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from aihub import settings_docs
from aihub.settings import COMPOSE_SETTINGS, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
# The HTTPS override (README, HTTPS) gives its variables the same defaults.
HTTPS_COMPOSE_TEXT = (ROOT / "docker-compose.https.yml").read_text()
DOCUMENTED = {setting.name: setting for setting in SETTINGS + COMPOSE_SETTINGS}


def test_env_example_is_generated_from_the_settings_tables():
    text = (ROOT / ".env.example").read_text()
    assert text == settings_docs.env_example(), f".env.example is stale: run `{settings_docs.COMMAND}`"


# ${VAR}, ${VAR:-default}, ${VAR-default} or $VAR; $$ is an escaped $, not a variable.
REFERENCE = re.compile(
    r"(?<!\$)(?:\$\$)*\$(?:\{(?P<braced>[A-Za-z_]\w*)(?P<op>:?-(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)
# VAR -> the defaults it is given in docker-compose.yml (None: used without one).
COMPOSE_DEFAULTS: dict[str, set[str | None]] = {}
for _match in REFERENCE.finditer(COMPOSE_TEXT + HTTPS_COMPOSE_TEXT):
    COMPOSE_DEFAULTS.setdefault(_match["braced"] or _match["bare"], set()).add(
        _match["default"] if _match["op"] else None
    )


def compose_default(name: str) -> str:
    """The value docker compose uses for `name` when .env does not set it."""
    if name == "COMPOSE_PROJECT_NAME":
        # Used without a default: docker compose takes it from the top-level `name:`.
        assert COMPOSE_DEFAULTS[name] == {None}
        return yaml.safe_load(COMPOSE_TEXT)["name"]
    [default] = COMPOSE_DEFAULTS[name]
    assert default is not None, f"${{{name}}} has no default: a start without .env would break"
    return default


def test_compose_settings_are_compose_variables_whose_defaults_parse():
    for setting in COMPOSE_SETTINGS:
        assert setting.name in COMPOSE_DEFAULTS, f"{setting.name} is not used in docker-compose.yml"
        setting.parse(setting.default)


def test_compose_file_references_variables():
    # Guards the regex below: if it found nothing, the next tests would pass vacuously.
    assert {"COMPOSE_PROJECT_NAME", "HUB_PORT", "SINGLEUSER_IMAGE", "POSTGRES_USER", "POSTGRES_DB"} <= set(COMPOSE_DEFAULTS)
    assert "$$POSTGRES_USER" in COMPOSE_TEXT and None not in COMPOSE_DEFAULTS["POSTGRES_USER"]


@pytest.mark.parametrize("name", sorted(COMPOSE_DEFAULTS))
def test_each_compose_variable_is_documented_with_the_compose_default(name):
    assert name in DOCUMENTED, f"{name} is used in docker-compose.yml: add it to COMPOSE_SETTINGS"
    assert DOCUMENTED[name].default == compose_default(name)


@pytest.mark.parametrize("dockerfile", ["hub/Dockerfile", "singleuser/Dockerfile", "https/Dockerfile"])
def test_dockerfile_build_arg_defaults_equal_the_compose_defaults(dockerfile):
    """`docker build` without compose must build the same image as `docker compose build`."""
    args = dict(re.findall(r"^ARG (\w+)=(.*)$", (ROOT / dockerfile).read_text(), re.M))
    build_args = yaml.safe_load(COMPOSE_TEXT)["x-build-args"]
    assert set(build_args) <= set(args)
    assert {name: args[name] for name in build_args} == {name: compose_default(name) for name in build_args}


def test_a_shell_reads_env_example_as_docker_compose_does():
    """The Swarm deploy exports .env with `set -a; . ./.env` (README)."""
    shown = subprocess.run(["sh", "-c", "set -a; . ./.env.example; env"], cwd=ROOT, capture_output=True, text=True)
    assert shown.returncode == 0 and not shown.stderr, shown.stderr
    exported = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
    for setting in SETTINGS + COMPOSE_SETTINGS:
        assert exported[setting.name] == ("" if setting.secret else setting.default), setting.name
