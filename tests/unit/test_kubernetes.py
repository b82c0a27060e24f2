"""kubernetes/: the Zero to JupyterHub values and the manifests of the bundle's own parts.

Not deployed on a cluster here: the values are validated against the chart's own values
schema (kubernetes/z2jh-VERSION/, merged into the chart's defaults as helm does), the
manifests against Kubernetes' schemas (kubernetes-validate bundles them: no network),
and every fact the compose stack also has (the gateway's name, port and scopes, the
students' environment, the culler, the database, the images) is checked against the
code that defines it there.
"""

import copy
import re
import sys
import types
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from aihub import secrets, services
from aihub.database import database_url
from aihub.gateway import config as gateway_config
from aihub.server_token import STATE_KEY, RecordsServerToken, token_digest
from aihub.settings import COMPOSE_SETTINGS, load, memory
from aihub.spawner import HOME_DIR
from aihub.user_env import server_token, user_environment

from .test_env_example import COMPOSE_TEXT
from .test_readme_zh import README, README_ZH, code_blocks

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "kubernetes"
[CHART_DIR] = KUBERNETES.glob("z2jh-*")
CHART_VERSION = CHART_DIR.name.removeprefix("z2jh-")
CHART_DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
CHART_SCHEMA = yaml.safe_load((CHART_DIR / "values.schema.yaml").read_text())
VALUES = yaml.safe_load((KUBERNETES / "values.yaml").read_text())
MANIFESTS = {path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
             for path in sorted(KUBERNETES.glob("*.yaml")) if path.name != "values.yaml"}
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
# The admin's registry: every image of the values and the manifests comes from it.
MIRROR = "registry.example.edu/aihub"
# The oldest Kubernetes the chart supports (its Chart.yaml kubeVersion) and the newest
# whose schemas kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.28", kubernetes_validate.latest_version())
SECRET = {"GATEWAY_API_TOKEN": "gateway-token-for-tests", "CLASS_TOOLS_API_TOKEN": "class-tools-token-for-tests"}


def helm_merge(defaults: dict, overrides: dict) -> dict:
    """Values as helm coalesces them: maps merge key by key, the user's value wins, null deletes."""
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def chart_images(values: dict, path: tuple = ()) -> dict[tuple, dict]:
    """Every image setting in `values` (a map with a name and a tag), by its path."""
    found = {}
    for key, value in values.items():
        if isinstance(value, dict):
            if key == "image" and "name" in value and "tag" in value:
                found[path + (key,)] = value
            else:
                found.update(chart_images(value, path + (key,)))
    return found


def at(values: dict, path: tuple):
    for key in path:
        values = values[key]
    return values


def resources(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for docs in MANIFESTS.values() for doc in docs if doc["kind"] == kind}


def containers() -> list[dict]:
    return [container for workload in [*resources("Deployment").values(), *resources("StatefulSet").values()]
            for container in workload["spec"]["template"]["spec"]["containers"]]


GATEWAY = resources("Deployment")["gateway"]
GATEWAY_POD = GATEWAY["spec"]["template"]
[GATEWAY_CONTAINER] = GATEWAY_POD["spec"]["containers"]


# --- The chart's own schema ---------------------------------------------------------

def test_the_values_pass_the_charts_own_schema():
    jsonschema.Draft7Validator.check_schema(CHART_SCHEMA)
    jsonschema.validate(helm_merge(CHART_DEFAULTS, VALUES), CHART_SCHEMA, cls=jsonschema.Draft7Validator)


@pytest.mark.parametrize("mistake", [
    {"hub": {"db": {"typ": "postgres"}}},  # a misspelt setting
    {"hub": {"db": {"type": "postgresql"}}},  # a value the chart does not know
    {"cull": {"timeout": "1h"}},  # a duration the chart takes in seconds
])
def test_the_schema_catches_a_mistake_in_the_values(mistake):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(helm_merge(CHART_DEFAULTS, helm_merge(VALUES, mistake)), CHART_SCHEMA,
                            cls=jsonschema.Draft7Validator)


@pytest.mark.parametrize("requirements", ["hub/requirements.txt", "singleuser/core-requirements.txt"])
def test_the_pinned_chart_runs_the_jupyterhub_the_bundles_images_pin(requirements):
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    [pin] = re.findall(r"^jupyterhub==(\S+)$", (ROOT / requirements).read_text(), re.M)
    assert chart["appVersion"].split(".")[:2] == pin.split(".")[:2], f"{requirements} pins jupyterhub {pin}"


def test_the_readmes_and_the_values_install_the_chart_version_whose_schema_is_kept():
    install = f"helm upgrade --install aihub jupyterhub/jupyterhub --version {CHART_VERSION} -f kubernetes/values.yaml"
    for readme in (README, README_ZH):
        assert install in readme
        assert len(set(re.findall(r"--version (\S+)", readme))) == 1
    assert install in (KUBERNETES / "values.yaml").read_text()


# --- Images -------------------------------------------------------------------------

def test_every_image_the_chart_pulls_comes_from_the_admins_registry():
    merged = helm_merge(CHART_DEFAULTS, VALUES)
    images = chart_images(CHART_DEFAULTS)
    assert len(images) == 10, "hub, proxy (chp, traefik, secret sync), singleuser, network tools, scheduler, two pauses, awaiter"
    for path, default in images.items():
        name = at(merged, path)["name"]
        assert name.startswith(MIRROR + "/"), f"{'.'.join(path)} is pulled from {name}"
        if path != ("singleuser", "image"):
            # The chart's own images keep their names and the chart's tags.
            assert name == f"{MIRROR}/{default['name'].rsplit('/', 1)[-1]}"
            assert "tag" not in at(VALUES, path)


def test_the_readmes_copy_every_image_of_the_chart_into_the_registry():
    for path, default in chart_images(CHART_DEFAULTS).items():
        if path == ("singleuser", "image"):
            continue
        tag = CHART_VERSION if default["tag"] == "set-by-chartpress" else default["tag"]
        source = default["name"] if "/" in default["name"] else f"docker.io/library/{default['name']}"
        for readme in (README, README_ZH):
            assert f"{source}:{tag}" in readme, f"the README does not copy {'.'.join(path)}"


def test_the_bundles_images_are_those_compose_builds_or_names():
    singleuser = VALUES["singleuser"]["image"]
    named = [f"{singleuser['name']}:{singleuser['tag']}"] + [container["image"] for container in containers()]
    compose_defaults = {setting.default for setting in COMPOSE_SETTINGS if setting.name.endswith("_IMAGE")}
    built = {service["image"].split(":-")[-1].rstrip("}"): service["build"]["dockerfile"]
             for service in COMPOSE["services"].values() if "build" in service}
    for image in named:
        assert image.startswith(MIRROR + "/"), image
        image = image.removeprefix(MIRROR + "/")
        if image in built:
            assert (ROOT / built[image]).is_file(), f"{image} is built from {built[image]}, which is missing"
        else:
            assert any(default.rsplit("/", 1)[-1] == image for default in compose_defaults), \
                f"{image} is neither built by docker-compose.yml nor one of its default images"
    assert load({}).singleuser_image == singleuser["name"].rsplit("/", 1)[-1] + ":" + singleuser["tag"]


# --- The gateway as a hub service ---------------------------------------------------

def test_the_hub_registers_the_gateway_as_compose_does():
    settings = load({})
    [compose_entry] = [s for s in services.hub_services(settings, SECRET) if s["name"] == gateway_config.SERVICE_NAME]
    # The chart takes a map of services by name, and makes the service's token itself.
    entry = dict(VALUES["hub"]["services"][gateway_config.SERVICE_NAME], name=gateway_config.SERVICE_NAME)
    assert entry == {key: value for key, value in compose_entry.items() if key != "api_token"}


def test_the_hub_grants_the_roles_and_scopes_compose_grants():
    settings = load({})
    roles = {role["name"]: role for role in services.hub_roles(settings)}
    loaded = {name: dict(role, name=name) for name, role in VALUES["hub"]["loadRoles"].items()}
    assert loaded == {name: roles[name] for name in ("user", gateway_config.SERVICE_NAME)}
    assert VALUES["hub"]["config"]["KubeSpawner"]["server_token_scopes"] == services.server_token_scopes(settings)
    # The chart runs the idle culler with its own role; the class tools run only in
    # the compose hub's container (README).
    assert set(roles) - set(loaded) == {services.IDLE_CULLER, services.CLASS_TOOLS}


def test_the_gateway_listens_where_the_hub_and_students_call_it():
    service = resources("Service")[gateway_config.HOST]
    [port] = service["spec"]["ports"]
    [container_port] = GATEWAY_CONTAINER["ports"]
    assert port["port"] == container_port["containerPort"] == gateway_config.PORT
    assert port["targetPort"] == container_port["name"]
    assert service["spec"]["selector"].items() <= GATEWAY_POD["metadata"]["labels"].items()
    assert GATEWAY["spec"]["selector"]["matchLabels"].items() <= GATEWAY_POD["metadata"]["labels"].items()
    assert VALUES["hub"]["services"][gateway_config.SERVICE_NAME]["url"] == gateway_config.URL


def test_students_pods_may_reach_the_gateway_and_the_gateway_the_hub():
    [rule] = VALUES["singleuser"]["networkPolicy"]["egress"]
    [destination] = rule["to"]
    assert destination["podSelector"]["matchLabels"].items() <= GATEWAY_POD["metadata"]["labels"].items()
    assert rule["ports"] == [{"port": gateway_config.PORT, "protocol": "TCP"}]
    # The chart's network policy admits to the hub's API the pods labelled so (as the students').
    access = CHART_DEFAULTS["singleuser"]["extraLabels"]
    assert access.items() <= GATEWAY_POD["metadata"]["labels"].items()


def test_the_gateway_runs_as_composes_gateway_does():
    compose_gateway = COMPOSE["services"]["gateway"]
    assert GATEWAY_CONTAINER["command"] == compose_gateway["command"]
    env = {item["name"]: item["value"] for item in GATEWAY_CONTAINER["env"]}
    assert env["JUPYTERHUB_API_URL"] == compose_gateway["environment"]["JUPYTERHUB_API_URL"]
    assert urlsplit(env["JUPYTERHUB_API_URL"]).port == services.HUB_API_PORT
    for probe in ("readinessProbe", "livenessProbe"):
        assert GATEWAY_CONTAINER[probe]["exec"]["command"] == compose_gateway["healthcheck"]["test"][1:]


def test_the_gateway_reads_every_secret_and_the_token_the_chart_made_for_its_service():
    [mount] = [m for m in GATEWAY_CONTAINER["volumeMounts"] if m["mountPath"] == str(secrets.SECRETS_DIR)]
    [volume] = [v for v in GATEWAY_POD["spec"]["volumes"] if v["name"] == mount["name"]]
    files = {item["path"]: (source["secret"]["name"], item["key"])
             for source in volume["projected"]["sources"] for item in source["secret"]["items"]}
    # Exactly the files aihub.secrets.read wants, so the gateway starts as in compose.
    assert set(files) == {name.lower() for name in secrets.GENERATORS}
    # Its token with the hub is the one the chart generated (Secret `hub`), no copy.
    assert files["gateway_api_token"] == ("hub", f"hub.services.{gateway_config.SERVICE_NAME}.apiToken")
    assert {secret for secret, _ in files.values()} == {"hub", "aihub-secrets"}


# --- Students' servers --------------------------------------------------------------

def test_students_get_the_environment_compose_gives_them():
    compose_env = user_environment(load({}))
    k8s_env = VALUES["singleuser"]["extraEnv"]
    for name, value in compose_env.items():
        assert name in k8s_env, f"singleuser.extraEnv lacks {name}"
        if value is server_token:
            # The server's own token, as Kubernetes expands it in the pod (KubeSpawner
            # orders the variables so that the reference resolves).
            assert k8s_env[name] == "$(JUPYTERHUB_API_TOKEN)"
        elif name.lower() == "no_proxy":
            hosts = k8s_env[name].split(",")
            assert hosts[:len(value.split(","))] == value.split(","), "NO_PROXY keeps compose's hosts first"
        else:
            assert k8s_env[name] == value, name


def test_students_servers_have_composes_limits_home_and_image():
    settings = load({})
    singleuser = VALUES["singleuser"]
    assert memory(singleuser["memory"]["limit"]) == settings.user_mem_limit
    assert singleuser["cpu"]["limit"] == settings.user_cpu_limit
    assert singleuser["storage"]["homeMountPath"] == HOME_DIR
    assert singleuser["defaultUrl"] == "/lab"


def test_the_idle_culler_runs_with_composes_timeout_and_interval():
    [culler] = [s for s in services.hub_services(load({}), SECRET) if s["name"] == services.IDLE_CULLER]
    flags = dict(arg.removeprefix("--").split("=") for arg in culler["command"] if arg.startswith("--"))
    cull = VALUES["cull"]
    assert cull["enabled"] is True
    assert (str(cull["timeout"]), str(cull["every"])) == (flags["timeout"], flags["cull-every"])


def test_the_spawner_of_the_values_records_its_server_tokens_digest(monkeypatch):
    """hub.extraConfig runs in the chart's hub, with KubeSpawner and the ConfigMap
    aihub-hub-code (this repository's hub/aihub/server_token.py) mounted."""
    code_mount = next(m for m in VALUES["hub"]["extraVolumeMounts"] if m["name"] == "aihub-hub-code")
    snippet = VALUES["hub"]["extraConfig"]["aihub-server-token"]
    [path] = re.findall(r'sys\.path\.insert\(0, "([^"]+)"\)', snippet)
    assert f"{path}/aihub" == code_mount["mountPath"]
    assert "kubectl create configmap aihub-hub-code --from-file=hub/aihub/__init__.py " \
           "--from-file=hub/aihub/server_token.py" in README

    class KubeSpawner:  # what the mixin relies on: state methods and the server's token
        api_token = None

        def get_state(self):
            return {"pod_name": "jupyter-alice"}

        def load_state(self, state):
            pass

        def clear_state(self):
            pass

    monkeypatch.setitem(sys.modules, "kubespawner", types.SimpleNamespace(KubeSpawner=KubeSpawner))
    monkeypatch.setattr(sys, "path", list(sys.path))
    c = types.SimpleNamespace(JupyterHub=types.SimpleNamespace())
    exec(snippet, {"c": c})
    spawner = c.JupyterHub.spawner_class()
    assert isinstance(spawner, RecordsServerToken) and isinstance(spawner, KubeSpawner)
    spawner.api_token = "the-servers-token"
    assert spawner.get_state() == {"pod_name": "jupyter-alice", STATE_KEY: token_digest("the-servers-token")}


def test_accounts_work_as_in_composes_default_approval_mode():
    settings = load({})
    config = VALUES["hub"]["config"]
    assert config["Authenticator"]["admin_users"] == [settings.admin_user]
    assert config["NativeAuthenticator"]["open_signup"] is (settings.auth_mode == "open")
    assert "c.NativeAuthenticator.minimum_password_length = 8" in (ROOT / "jupyterhub_config.py").read_text()
    assert config["NativeAuthenticator"]["minimum_password_length"] == 8


# --- Database, Ollama, CA -------------------------------------------------------------------

def test_the_hub_and_the_gateway_use_composes_database():
    settings = load({})
    assert VALUES["hub"]["db"]["type"] == "postgres"
    # The URL compose's hub uses, less the password (PGPASSWORD, from aihub-secrets).
    assert VALUES["hub"]["db"]["url"] == database_url(settings, "").replace(":@", "@")
    password = VALUES["hub"]["extraEnv"]["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
    assert password == {"name": "aihub-secrets", "key": "postgres_password"}
    service = resources("Service")[settings.postgres_host]
    assert [port["port"] for port in service["spec"]["ports"]] == [settings.postgres_port]
    [postgres] = resources("StatefulSet").values()
    env = {item["name"]: item.get("value") for item in postgres["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"]) == (settings.postgres_user, settings.postgres_db)
    # Only the hub and the gateway may connect.
    [rule] = resources("NetworkPolicy")["postgres"]["spec"]["ingress"]
    [source] = rule["from"]
    allowed = source["podSelector"]["matchLabels"].items()
    assert allowed <= VALUES["hub"]["labels"].items() and allowed <= GATEWAY_POD["metadata"]["labels"].items()


def test_only_the_gateway_reaches_ollama_where_the_gateway_looks_for_it():
    ollama = urlsplit(load({}).ollama_base_url)
    service = resources("Service")[ollama.hostname]
    assert [port["port"] for port in service["spec"]["ports"]] == [ollama.port]
    [rule] = resources("NetworkPolicy")["ollama"]["spec"]["ingress"]
    [source] = rule["from"]
    assert source["podSelector"]["matchLabels"].items() <= GATEWAY_POD["metadata"]["labels"].items()
    assert not source["podSelector"]["matchLabels"].items() <= VALUES["hub"]["labels"].items()


def test_every_pod_that_calls_out_trusts_the_ca_bundle_of_the_configmap():
    bundle = VALUES["singleuser"]["extraEnv"]["SSL_CERT_FILE"]
    ca_dir = str(Path(bundle).parent)
    pods = {
        "hub": (VALUES["hub"]["extraEnv"], VALUES["hub"]["extraVolumes"], VALUES["hub"]["extraVolumeMounts"]),
        "singleuser": (VALUES["singleuser"]["extraEnv"], VALUES["singleuser"]["storage"]["extraVolumes"],
                       VALUES["singleuser"]["storage"]["extraVolumeMounts"]),
        "gateway": ({item["name"]: item["value"] for item in GATEWAY_CONTAINER["env"] if "value" in item},
                    GATEWAY_POD["spec"]["volumes"], GATEWAY_CONTAINER["volumeMounts"]),
    }
    ollama = resources("Deployment")["ollama"]["spec"]["template"]["spec"]
    pods["ollama"] = ({item["name"]: item["value"] for item in ollama["containers"][0]["env"]},
                      ollama["volumes"], ollama["containers"][0]["volumeMounts"])
    for pod, (env, volumes, mounts) in pods.items():
        assert env["SSL_CERT_FILE"] == bundle, pod
        # Python's requests reads its own variable; Ollama (Go) reads only SSL_CERT_FILE.
        assert env.get("REQUESTS_CA_BUNDLE", bundle) == bundle, pod
        [mount] = [m for m in mounts if m["mountPath"] == ca_dir]
        [volume] = [v for v in volumes if v["name"] == mount["name"]]
        assert volume["configMap"]["name"] == "aihub-ca", pod
    assert f"kubectl create configmap aihub-ca --from-file={Path(bundle).name}=ca-bundle.crt" in README


# --- Kubernetes' own schemas --------------------------------------------------------

@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("manifest", sorted(MANIFESTS))
def test_the_manifests_are_valid_kubernetes_objects(manifest, version):
    assert MANIFESTS[manifest]
    for doc in MANIFESTS[manifest]:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_catches_a_misspelt_field():
    broken = copy.deepcopy(GATEWAY)
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_the_readmes_apply_every_manifest():
    for name in MANIFESTS:
        for readme in (README, README_ZH):
            assert any(f"kubernetes/{name}" in block for block in code_blocks(readme)), name
