"""jupyterhub_config.py, loaded for real from settings in the environment and a secrets volume."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from dockerspawner import DockerSpawner
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator
from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.spawner import Spawner
from nativeauthenticator import NativeAuthenticator
from sqlalchemy.engine import make_url
from traitlets.config.loader import PyFileConfigLoader

from aihub import secrets, settings
from aihub.auth import BundleAuthenticator, landing_page
from aihub.spawner import ClassroomSpawner, home_volume, volume_owner
from aihub.swarm import SwarmClassroomSpawner

CONFIG_FILE = Path(__file__).resolve().parents[2] / "jupyterhub_config.py"
# What an admin of a second class on the same machine might put in .env.
CLASS_ENV = {
    "USER_MEM_LIMIT": "1G",
    "COMPOSE_PROJECT_NAME": "class1",
    "AUTH_MODE": "open",
    "POSTGRES_PASSWORD": "p@ss:w/rd%#1",
}
CONFIGURABLES = {cls.__name__: cls for cls in [
    JupyterHub, ConfigurableHTTPProxy, Authenticator, NativeAuthenticator, BundleAuthenticator, Spawner, DockerSpawner,
    ClassroomSpawner, SwarmClassroomSpawner,
]}


@pytest.fixture
def secrets_dir(tmp_path, monkeypatch):
    directory = tmp_path / "secrets"
    monkeypatch.setattr(secrets, "SECRETS_DIR", directory)
    return directory


def load_config():
    return PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()


@pytest.fixture
def start_hub(secrets_dir, monkeypatch):
    """Set .env, run what `secrets init` does, then load the hub's config: (config, secrets)."""
    def start(env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        values = secrets.ensure(settings.load())
        return load_config(), values

    return start


@pytest.fixture
def hub(start_hub):
    return start_hub(CLASS_ENV)


def test_every_option_set_is_a_configurable_trait(hub):
    """A misspelt option would be ignored by traitlets with a mere warning."""
    config, _ = hub
    assert set(config) <= set(CONFIGURABLES)
    for section, options in config.items():
        assert set(options) <= set(CONFIGURABLES[section].class_trait_names(config=True)), section


def test_student_servers_have_the_limits_and_the_stack_names(hub):
    config, _ = hub
    spawner = DockerSpawner(config=config, user=SimpleNamespace(name="alice"))
    assert spawner.mem_limit == 1024**3
    assert spawner.cpu_limit == 1.0
    assert spawner.prefix == "class1"
    assert spawner.network_name == "class1-users"
    assert spawner.object_name == "class1-alice"
    assert spawner.volumes == {"{prefix}-user-{username}": "/home/jovyan"}
    assert spawner.volume_binds == {"class1-user-alice": {"bind": "/home/jovyan", "mode": "rw"}}
    assert spawner.pull_policy == "never"
    assert spawner.image == "aihub-singleuser:0.1.0"


@pytest.mark.parametrize("name", ["alice", "li-lei", "王芳", "Mixed.Case_1"])
def test_the_spawner_mounts_the_volume_home_volume_names(hub, name):
    config, _ = hub
    spawner = DockerSpawner(config=config, user=SimpleNamespace(name=name))
    assert list(spawner.volume_binds) == [home_volume("class1", name)]
    assert volume_owner("class1", home_volume("class1", name)) == name


def test_the_hub_uses_the_secrets_from_the_volume(hub):
    config, values = hub
    app = JupyterHub(config=config)
    assert app.cookie_secret == bytes.fromhex(values["HUB_COOKIE_SECRET"])
    assert len(app.cookie_secret) == 32
    assert ConfigurableHTTPProxy(config=config).auth_token == values["PROXY_AUTH_TOKEN"]
    url = make_url(app.db_url)
    assert app.db_url.startswith("postgresql+psycopg2://")
    assert (url.host, url.password) == ("postgres", CLASS_ENV["POSTGRES_PASSWORD"])


def test_accounts_use_the_bundle_authenticator(hub):
    config, values = hub
    assert JupyterHub(config=config).authenticator_class is BundleAuthenticator
    authenticator = BundleAuthenticator(config=config, add_new_table=False)
    assert authenticator.open_signup is True
    assert authenticator.admin_users == {"admin"}
    assert authenticator.initial_admin_password == values["ADMIN_PASSWORD"]


def test_approval_mode_closes_open_signup(start_hub):
    config, _ = start_hub({"AUTH_MODE": "approval"})
    assert BundleAuthenticator(config=config, add_new_table=False).open_signup is False


def test_the_idle_culler_the_class_tools_and_the_gateway_are_wired_in(hub):
    app = JupyterHub(config=hub[0])
    assert [service["name"] for service in app.services] == ["idle-culler", "class-tools", "ai-gateway"]
    assert [role["name"] for role in app.load_roles] == ["idle-culler", "class-tools", "user", "ai-gateway"]


def test_students_servers_outlive_a_hub_restart_and_start_in_turns(hub):
    config, _ = hub
    app = JupyterHub(config=config)
    assert app.cleanup_servers is False
    assert app.default_url is landing_page
    assert app.spawner_class is ClassroomSpawner
    spawner = ClassroomSpawner(config=config, user=SimpleNamespace(name="alice"))
    assert spawner.start_concurrency == 4
    assert spawner.extra_create_kwargs["labels"]["org.aihub.project"] == "class1"
    assert spawner.environment_without_ai == {"AI_ENABLED": "false"}


def test_a_bad_setting_stops_the_hub_with_status_2(start_hub, monkeypatch):
    start_hub({})
    monkeypatch.setenv("USER_MEM_LIMIT", "lots")
    with pytest.raises(SystemExit) as caught:
        load_config()
    assert caught.value.code == 2


def test_missing_secrets_stop_the_hub_with_status_2(secrets_dir):
    with pytest.raises(SystemExit) as caught:
        load_config()
    assert caught.value.code == 2


@pytest.mark.parametrize("env, networks", [
    ({}, []), ({"AI_KEY_MODE": "direct"}, ["class1-models"]),
    ({"AI_KEY_MODE": "direct", "AI_ENABLED": "false"}, []),
])
def test_students_join_ollamas_network_only_without_the_gateway(start_hub, env, networks):
    """Ollama has no authentication: students reach it through the gateway, which meters."""
    config, _ = start_hub({**CLASS_ENV, **env})
    spawner = ClassroomSpawner(config=config, user=SimpleNamespace(name="alice"))
    assert spawner.network_name == "class1-users" and spawner.extra_networks == networks


def test_on_a_swarm_students_servers_are_services_from_the_registry(start_hub):
    config, _ = start_hub({**CLASS_ENV, "SPAWNER_MODE": "swarm", "IMAGE_REGISTRY": "registry.example.edu:5000"})
    app = JupyterHub(config=config)
    assert app.spawner_class is SwarmClassroomSpawner
    spawner = SwarmClassroomSpawner(config=config, user=SimpleNamespace(name="alice"))
    assert spawner.image == "registry.example.edu:5000/aihub-singleuser:0.1.0"
    # Each worker pulls the image; the manager's engine need not hold it.
    assert spawner.pull_policy == "skip"
    assert spawner.extra_endpoint_spec == {"mode": "dnsrr"}
    assert spawner.network_name == "class1-users"
    assert spawner.object_name == "class1-alice"
    assert spawner.extra_container_spec["labels"]["org.aihub.role"] == "student-server"
    assert (spawner.home_storage, spawner.start_concurrency, spawner.mem_limit) == ("node", 4, 1024**3)
    assert [mount["Source"] for mount in spawner.mounts] == ["class1-user-alice"]
