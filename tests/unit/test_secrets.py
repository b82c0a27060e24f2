"""aihub.secrets: made once, kept across starts, .env wins, private on disk."""

import re
import stat

import pytest

from aihub import secrets
from aihub.settings import SETTINGS, ConfigError, hex_secret, load

NAMES = ["ADMIN_PASSWORD", "POSTGRES_PASSWORD", "HUB_COOKIE_SECRET", "PROXY_AUTH_TOKEN", "GATEWAY_API_TOKEN",
         "CLASS_TOOLS_API_TOKEN"]
# A valid value an admin might set in .env for each secret.
FROM_ENV = {
    "ADMIN_PASSWORD": "correct-horse-1",
    "POSTGRES_PASSWORD": "p@ss:w/rd%#1",
    "HUB_COOKIE_SECRET": "ab" * 32,
    "PROXY_AUTH_TOKEN": "token-from-env-123",
    "GATEWAY_API_TOKEN": "gateway-token-from-env",
    "CLASS_TOOLS_API_TOKEN": "class-tools-token-from-env",
}


@pytest.fixture
def directory(tmp_path):
    """Where the `secrets` volume would be; not there yet, as on a first start."""
    return tmp_path / "secrets"


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_the_generated_secrets_are_secret_settings():
    assert sorted(setting.name for setting in SETTINGS if setting.name in NAMES) == sorted(NAMES)
    assert all(setting.secret for setting in SETTINGS if setting.name in NAMES)


def test_first_ensure_writes_all_privately(directory):
    values = secrets.ensure(load({}), directory)
    assert sorted(values) == sorted(NAMES)
    assert sorted(path.name for path in directory.iterdir()) == sorted(name.lower() for name in NAMES)
    assert mode(directory) == 0o700
    for name in NAMES:
        path = directory / name.lower()
        assert mode(path) == 0o600, name
        assert path.read_text() == values[name] + "\n"
    assert secrets.read(directory) == values


def test_generated_secrets_are_distinct_long_and_valid_settings(directory, tmp_path):
    values = secrets.ensure(load({}), directory)
    assert len(set(values.values())) == len(NAMES)
    assert all(len(value) >= 16 for value in values.values())
    assert re.fullmatch(r"[0-9a-f]{64}", values["HUB_COOKIE_SECRET"])
    assert hex_secret(values["HUB_COOKIE_SECRET"]) == values["HUB_COOKIE_SECRET"]
    # A generated value must also be accepted if an admin copies it into .env.
    assert load(values) is not None
    # And it is random: another volume gets other values.
    other = secrets.ensure(load({}), tmp_path / "other")
    assert not set(values.values()) & set(other.values())


def test_a_second_ensure_keeps_the_values(directory):
    first = secrets.ensure(load({}), directory)
    assert secrets.ensure(load({}), directory) == first
    assert secrets.read(directory) == first


@pytest.mark.parametrize("name", NAMES)
def test_a_value_from_env_wins_and_is_written_through(directory, name):
    first = secrets.ensure(load({}), directory)
    values = secrets.ensure(load({name: FROM_ENV[name]}), directory)
    assert values[name] == FROM_ENV[name]
    assert (directory / name.lower()).read_text() == FROM_ENV[name] + "\n"
    assert mode(directory / name.lower()) == 0o600
    assert {n: v for n, v in values.items() if n != name} == {n: v for n, v in first.items() if n != name}
    # Once written, the value is kept even when .env no longer sets it.
    assert secrets.ensure(load({}), directory)[name] == FROM_ENV[name]


@pytest.mark.parametrize("name", NAMES)
def test_read_names_a_missing_secret(directory, name):
    secrets.ensure(load({}), directory)
    (directory / name.lower()).unlink()
    with pytest.raises(ConfigError) as caught:
        secrets.read(directory)
    [problem] = caught.value.problems
    assert name in problem
    assert "\n" not in problem


def test_read_of_an_empty_volume_lists_every_secret(directory):
    directory.mkdir()
    with pytest.raises(ConfigError) as caught:
        secrets.read(directory)
    assert [name for problem in caught.value.problems for name in NAMES if name in problem] == NAMES


def test_main_init_makes_the_secrets(directory, capsys):
    assert secrets.main(["init"], directory) == 0
    assert sorted(secrets.read(directory)) == sorted(NAMES)
    assert str(directory) in capsys.readouterr().out


@pytest.mark.parametrize("variable, value", [("USER_MEM_LIMIT", "lots"), ("ADMIN_PASSWORD", "Xq7#pz")])
def test_main_init_stops_on_any_bad_setting_with_one_line(directory, monkeypatch, capsys, variable, value):
    """The hub, PostgreSQL and the gateway wait for this job: a wrong setting fails
    `docker compose up` here, before anything starts with it."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as caught:
        secrets.main(["init"], directory)
    assert caught.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"aihub: configuration error: {variable}=")
    assert not directory.exists()


def test_main_admin_login_prints_user_and_password(directory, monkeypatch, capsys):
    monkeypatch.setenv("ADMIN_USER", "teacher")
    secrets.main(["init"], directory)
    capsys.readouterr()
    assert secrets.main(["admin-login"], directory) == 0
    out = capsys.readouterr().out
    assert re.search(r"^user:\s+teacher$", out, re.M)
    assert re.search(rf"^password:\s+{re.escape(secrets.read(directory)['ADMIN_PASSWORD'])}$", out, re.M)


def test_main_admin_login_before_init_exits_2(directory):
    with pytest.raises(SystemExit) as caught:
        secrets.main(["admin-login"], directory)
    assert caught.value.code == 2


@pytest.mark.parametrize("argv", [["bogus"], []])
def test_main_with_an_unknown_command_prints_usage_and_returns_2(argv, directory, capsys):
    assert secrets.main(argv, directory) == 2
    assert "usage" in capsys.readouterr().err
    assert not directory.exists()
