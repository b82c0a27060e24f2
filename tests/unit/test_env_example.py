""".env.example mirrors aihub.settings.SETTINGS and agrees with docker-compose.yml."""

import re
from pathlib import Path

import pytest
import yaml

from aihub.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
ENV_LINES = (ROOT / ".env.example").read_text().splitlines()
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
SETTING_NAMES = [setting.name for setting in SETTINGS]


def env_assignments() -> list[tuple[int, str, str]]:
    """(line index, NAME, value) for every NAME=value line of .env.example."""
    return [
        (index, match[1], match[2])
        for index, line in enumerate(ENV_LINES)
        if (match := re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line))
    ]


ENV = {name: value for _, name, value in env_assignments()}


# ${VAR}, ${VAR:-default}, ${VAR-default} or $VAR; $$ is an escaped $, not a variable.
REFERENCE = re.compile(
    r"(?<!\$)(?:\$\$)*\$(?:\{(?P<braced>[A-Za-z_]\w*)(?P<op>:?-(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)
# VAR -> the defaults it is given in docker-compose.yml (None: used without one).
COMPOSE_DEFAULTS: dict[str, set[str | None]] = {}
for _match in REFERENCE.finditer(COMPOSE_TEXT):
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


def test_no_name_is_assigned_twice():
    names = [name for _, name, _ in env_assignments()]
    assert sorted(names) == sorted(set(names))


def test_settings_appear_in_table_order():
    assert [name for _, name, _ in env_assignments() if name in SETTING_NAMES] == SETTING_NAMES


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_each_setting_shows_its_default_under_its_help(setting):
    [(index, value)] = [(index, value) for index, name, value in env_assignments() if name == setting.name]
    assert value == ("" if setting.secret else setting.default)
    assert ENV_LINES[index - 1] == f"# {setting.help}"


def test_every_other_name_is_a_compose_variable():
    assert set(ENV) - set(SETTING_NAMES) <= set(COMPOSE_DEFAULTS)


def test_compose_file_references_variables():
    # Guards the regex below: if it found nothing, the next tests would pass vacuously.
    assert {"COMPOSE_PROJECT_NAME", "HUB_PORT", "SINGLEUSER_IMAGE", "POSTGRES_USER", "POSTGRES_DB"} <= set(COMPOSE_DEFAULTS)
    assert "$$POSTGRES_USER" in COMPOSE_TEXT and None not in COMPOSE_DEFAULTS["POSTGRES_USER"]


@pytest.mark.parametrize("name", sorted(COMPOSE_DEFAULTS))
def test_each_compose_variable_is_in_env_example_with_the_compose_default(name):
    assert name in ENV
    assert ENV[name] == compose_default(name)


@pytest.mark.parametrize("name", ["COMPOSE_PROJECT_NAME", "SINGLEUSER_IMAGE", "POSTGRES_USER", "POSTGRES_DB"])
def test_compose_defaults_equal_settings_defaults(name):
    [setting] = [setting for setting in SETTINGS if setting.name == name]
    assert compose_default(name) == setting.default


@pytest.mark.parametrize("dockerfile", ["hub/Dockerfile", "singleuser/Dockerfile"])
def test_dockerfile_build_arg_defaults_equal_the_compose_defaults(dockerfile):
    """`docker build` without compose must build the same image as `docker compose build`."""
    args = dict(re.findall(r"^ARG (\w+)=(.*)$", (ROOT / dockerfile).read_text(), re.M))
    build_args = yaml.safe_load(COMPOSE_TEXT)["x-build-args"]
    assert set(build_args) <= set(args)
    assert {name: args[name] for name in build_args} == {name: compose_default(name) for name in build_args}
