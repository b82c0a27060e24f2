"""Every setting an admin can change, read from the environment in this one place.

Each setting is a row of SETTINGS: the environment variable, its default (as text),
a parser that turns the text into a typed value or raises ValueError with a reason a
person can act on, one line of help, and optionally a heading that starts a group of
rows and a longer note. COMPOSE_SETTINGS lists, the same way, the variables docker
compose reads itself (ports, images, build mirrors): the hub never reads those.

`.env.example` and the README's configuration table are generated from both tables
(`python -m aihub.settings_docs`, see aihub.settings_docs); tests fail when they are stale.

An empty value means "use the default", so `FOO=` in .env is never an error.
Secret settings default to "" and are generated on first start (see aihub.secrets);
their values never appear in an error message.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Mapping

from aihub_providers.errors import redact_url
from aihub_providers.reasoning import SHOW_SETTING as AI_SHOW_REASONING
from aihub_providers.vendors import VENDORS, VENDORS_LIST

ENV_FILE_HINT = "set it in .env"


class ConfigError(Exception):
    """One or more settings are wrong; each line of str(error) names one variable."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


# -- parsers: text -> value, or ValueError("why, and what a good value looks like") --


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


_MEMORY_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def byte_size(text: str) -> int:
    """'2G', '512K', '1048576' -> bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?", text.upper())
    if not match:
        raise ValueError("is not a size; use a number with K, M or G, e.g. 2G")
    return int(float(match[1]) * _MEMORY_UNITS[match[2]])


def memory(text: str) -> int | None:
    """A server's memory limit: '2G' -> bytes; '0' means no limit (None)."""
    try:
        size = byte_size(text)
    except ValueError:
        raise ValueError("is not a memory size; use a number with K, M or G, e.g. 2G (0 = no limit)") from None
    if size == 0:
        return None
    if size < 128 * 1024**2:
        raise ValueError("is below 128M, too small for a JupyterLab server")
    return size


def cpus(text: str) -> float | None:
    """'1.5' -> 1.5 CPUs; '0' means no limit (None)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("is not a number of CPUs, e.g. 1 or 0.5 (0 = no limit)") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be 0 (no limit) or a positive number of CPUs")
    return value or None


_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> int:
    """'3600', '60m', '1h' -> seconds."""
    match = re.fullmatch(r"(\d+)\s*([smhd]?)", text.lower())
    if not match:
        raise ValueError("is not a duration; use seconds or a number with s, m, h or d, e.g. 1h")
    return int(match[1]) * _DURATION_UNITS[match[2]]


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError("is not a TCP port; use a whole number from 1 to 65535")
    return int(text)


def hostname(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", text):
        raise ValueError("is not a host name (letters, digits, dots and dashes)")
    return text


def hostname_or_empty(text: str) -> str:
    return text and hostname(text)


def identifier(text: str) -> str:
    """A PostgreSQL role or database name, or a hub user name: safe in URLs and SQL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_.-]{0,62}", text):
        raise ValueError("must start with a lowercase letter or _ and use only a-z, 0-9, _ . -")
    return text


def image(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/:@-]*", text):
        raise ValueError("is not a Docker image name, e.g. aihub-singleuser:0.1.0")
    return text


def registry(text: str) -> str:
    """An image registry's address, host[:port][/path], or empty (none)."""
    if text and not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?(/[a-z0-9._-]+)*", text):
        raise ValueError("is not a registry address; use host[:port], e.g. registry.example.edu:5000 (no http://)")
    return text


def absolute_path(text: str) -> str:
    if not re.fullmatch(r"/[A-Za-z0-9._/-]*", text) or "/../" in text + "/":
        raise ValueError("must be an absolute path (letters, digits, . _ - /), e.g. /srv/aihub-homes")
    return text.rstrip("/") or "/"


def password(text: str) -> str:
    if text and len(text) < 8:
        raise ValueError("is too short; use at least 8 characters or leave it empty to generate one")
    return text


def login_password(text: str) -> str:
    # bcrypt, which stores login passwords, refuses more than 72 bytes.
    if len(text.encode()) > 72:
        raise ValueError("is longer than 72 bytes, more than a login password can hold")
    return password(text)


def hex_secret(text: str) -> str:
    if text and not re.fullmatch(r"(?:[0-9a-fA-F]{2}){32,}", text):
        raise ValueError("must be at least 64 hex digits (openssl rand -hex 32), or empty to generate one")
    return text


def whole_number(text: str) -> int:
    if not text.isdigit():
        raise ValueError("must be a whole number (0 or more)")
    return int(text)


def positive_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError("must be a whole number, 1 or more")
    return int(text)


def boolean(text: str) -> bool:
    value = text.lower()
    if value not in ("true", "false", "yes", "no", "1", "0"):
        raise ValueError("must be true or false")
    return value in ("true", "yes", "1")


_USERINFO = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2}")


def url(text: str) -> str:
    """An http(s) URL, or empty (not set). It may carry a login, percent-encoded:
    http://user:p%40ss@proxy:3128 (error messages show it as user:***@)."""
    if not text:
        return text
    match = re.fullmatch(r"(https?)://(?:(?P<userinfo>[^/?#\s]*)@)?(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])"
                         r"(?::(?P<port>\d{1,5}))?(?P<path>[/?#]\S*)?", text)
    if not match:
        raise ValueError("is not an http:// or https:// URL")
    userinfo = match["userinfo"] or ""
    if "@" in userinfo:
        raise ValueError("has an @ in its user name or password: write it percent-encoded, as %40")
    if re.sub(_USERINFO, "", userinfo):
        raise ValueError("has characters in its user name or password that must be percent-encoded "
                         "(e.g. %40 for @, %2F for /, %23 for #)")
    if match["port"] and not 1 <= int(match["port"]) <= 65535:
        raise ValueError("has a port outside 1 to 65535")
    return text.rstrip("/")


def api_key(text: str) -> str:
    if re.search(r"\s", text):
        raise ValueError("contains spaces; paste the key alone")
    return text


def model_id(text: str) -> str:
    provider, _, model = text.partition(":")
    if provider not in VENDORS or not model:
        raise ValueError(f"must be provider:model with a provider among {', '.join(VENDORS)}")
    return text


def embeddings_model_id(text: str) -> str:
    provider, _, model = text.partition(":")
    offering = [vendor.id for vendor in VENDORS.values() if vendor.embeddings]
    if provider not in offering or not model:
        raise ValueError(f"must be provider:model with a provider among {', '.join(offering)}")
    return text


def host_list(text: str) -> tuple[str, ...]:
    hosts = tuple(host for host in re.split(r"[,\s]+", text) if host)
    for host in hosts:
        if not re.fullmatch(r"[A-Za-z0-9.*:/\-\[\]]+", host):
            raise ValueError(f"has {host!r}, not a host name, address or network")
    return hosts


def https_domain(text: str) -> str:
    """The name (or LAN address) students open over HTTPS; empty: not set."""
    try:
        return hostname_or_empty(text).lower()
    except ValueError:  # hostname's rule, with what people type by mistake here
        raise ValueError("is not a host name or IP address, e.g. hub.school.edu or 192.168.1.10"
                         " (no https://, no port)") from None


def email(text: str) -> str:
    if text and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise ValueError("is not an email address")
    return text


def file_name(text: str) -> str:
    """A file's name inside a folder of the bundle (no path: the folder is mounted)."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", text):
        raise ValueError("must be a file name only (no folder), e.g. hub.crt")
    return text


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    parse: Callable[[str], Any]
    help: str
    secret: bool = False
    # Starts a new group in .env.example and the README; the rows after belong to it.
    heading: str = ""
    # Sentences beyond the one-line help: what an admin should know before changing it.
    note: str = ""

    @property
    def attr(self) -> str:
        return self.name.lower()


def project_name(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", text):
        raise ValueError("must be lowercase letters, digits, _ and -, starting with a letter or digit")
    return text


HTTPS_MODES = ("acme", "files", "internal")

# Read by the hub (its public address, secure cookies), by Caddy's start in front of it
# (aihub.https) and by docker-compose.https.yml (ports).
HTTPS_SETTINGS: tuple[Setting, ...] = (
    Setting("HTTPS_MODE", "off", choice("off", *HTTPS_MODES),
            "off: plain HTTP on HUB_PORT; acme: Let's Encrypt certificates; files: your certificate in https/certs/;"
            " internal: Caddy's own CA, for a LAN (all three need docker-compose.https.yml)",
            heading="HTTPS (Caddy in front of the hub, docker-compose.https.yml; see HTTPS in the README)",
            note="Turn it on with COMPOSE_FILE=docker-compose.yml:docker-compose.https.yml in .env; the hub's"
                 " own port (HUB_PORT) is then no longer published."),
    Setting("HTTPS_DOMAIN", "", https_domain,
            "the name students open, e.g. hub.school.edu (internal mode: a LAN name or IP address, e.g. 192.168.1.10); needed with HTTPS_MODE"),
    Setting("HTTPS_EMAIL", "", email,
            "acme: the address Let's Encrypt writes to about your certificates (optional)"),
    Setting("HTTPS_CERT_FILE", "hub.crt", file_name,
            "files: your certificate (PEM, followed by its intermediate certificates), a file in https/certs/"),
    Setting("HTTPS_KEY_FILE", "hub.key", file_name,
            "files: the certificate's private key (PEM, no passphrase), a file in https/certs/"),
    Setting("HTTPS_PORT", "443", port,
            "host port of HTTPS (acme needs 443)"),
    Setting("HTTP_PORT", "80", port,
            "host port that redirects plain HTTP to HTTPS (acme needs 80 for Let's Encrypt's check)"),
)

SETTINGS: tuple[Setting, ...] = (
    Setting("COMPOSE_PROJECT_NAME", "aihub", project_name,
            "name of this stack: prefixes its containers, networks and volumes (two classes on one machine: two names, two HUB_PORTs)",
            heading="The stack"),
    Setting("AUTH_MODE", "approval", choice("approval", "open"),
            "approval: students sign up and an admin approves them; open: sign-up alone gives access (workshops)",
            heading="Accounts"),
    Setting("ADMIN_USER", "admin", identifier,
            "the admin account, created on first start with ADMIN_PASSWORD"),
    Setting("ADMIN_PASSWORD", "", login_password,
            "the admin's initial password; empty: generated on first start", secret=True,
            note="Read only when the account is first created: later, change the password at /hub/change-password."),
    Setting("SINGLEUSER_IMAGE", "aihub-singleuser:0.1.0", image,
            "the image every student's server runs; docker compose builds it from singleuser/",
            heading="Student servers",
            note="For more Python packages, edit singleuser/requirements.txt and run"
                 " `docker compose build singleuser && docker compose up -d --wait`;"
                 " servers started after that use the new image."),
    Setting("USER_MEM_LIMIT", "2G", memory,
            "memory limit of each student's server, e.g. 512M, 2G; 0 = no limit"),
    Setting("USER_CPU_LIMIT", "1", cpus,
            "CPU limit of each student's server, e.g. 0.5, 2; 0 = no limit"),
    Setting("SPAWN_CONCURRENCY", "4", positive_number,
            "how many students' servers start at once; the others wait their turn, seeing their place in line (about 2 per CPU core)"),
    Setting("CULL_IDLE_TIMEOUT", "1h", duration,
            "stop a student's server after this long without activity (seconds, or 30m, 1h); 0 = never"),
    Setting("SPAWNER_MODE", "docker", choice("docker", "swarm"),
            "docker: each student's server is a container on this machine (docker-compose.yml); swarm: a Swarm service on a worker node (docker-stack.yml sets it)",
            heading="Several machines: Docker Swarm (see Swarm in the README)"),
    Setting("IMAGE_REGISTRY", "", registry,
            "registry the Swarm's nodes pull the bundle's images from, host[:port], e.g. registry.example.edu:5000; prefixes SINGLEUSER_IMAGE and docker-stack.yml's images (swarm only)"),
    Setting("HOME_STORAGE", "node", choice("node", "nfs"),
            "where students' home volumes live on a Swarm: node: on the worker where each was made, the student's server always runs there; nfs: on HOME_NFS_SERVER, servers run on any worker",
            note="node needs nothing shared, but a student whose worker is drained or down cannot start until it is back;"
                 " nfs lets Swarm move servers to another worker, files included, and needs an NFS server every worker can mount."),
    Setting("HOME_NFS_SERVER", "", hostname_or_empty,
            "NFS server holding students' homes (HOME_STORAGE=nfs), e.g. nfs.example.edu"),
    Setting("HOME_NFS_PATH", "/srv/aihub-homes", absolute_path,
            "exported folder on HOME_NFS_SERVER; each student's home is a subfolder named after their volume"),
    Setting("POSTGRES_HOST", "postgres", hostname, "host of the hub's PostgreSQL database",
            heading="Hub database"),
    Setting("POSTGRES_PORT", "5432", port, "port of the hub's PostgreSQL database"),
    Setting("POSTGRES_USER", "jupyterhub", identifier, "PostgreSQL user the hub connects as"),
    Setting("POSTGRES_DB", "jupyterhub", identifier, "PostgreSQL database that holds the hub's tables"),
    Setting("POSTGRES_PASSWORD", "", password,
            "PostgreSQL password; empty: generated on first start", secret=True,
            note="Read only when the database is first created (a new postgres-data volume)."),
    Setting("AI_ENABLED", "true", boolean,
            "false: no AI for students (no %%ai, no chat panel, no keys), e.g. during an exam",
            heading="AI models (see AI in notebooks in the README)",
            note="Applies to servers started after the change; running servers keep what they started with."),
    Setting("AI_KEY_MODE", "gateway", choice("gateway", "direct"),
            "gateway: vendor keys stay in the AI gateway, students get only its address; direct: keys go into students' containers (they can read them)",
            note="With direct, any student can print the keys and spend without limit, and nothing is metered:"
                 " use it only with keys that have a spending limit."),
    Setting("AI_DAILY_TOKEN_BUDGET", "200000", whole_number,
            "tokens (prompt + completion) each student may use per day through the gateway, UTC days; 0 = no limit"),
    Setting("AI_MAX_CONCURRENT_REQUESTS", "4", whole_number,
            "AI requests one student may have in flight at once through the gateway; 0 = no limit"),
    Setting("AI_DEFAULT_MAX_TOKENS", "4096", positive_number,
            "answer length (tokens) the gateway asks for when a request names none (max_tokens); reserved from the student's budget while the answer runs (raise it for reasoning models)"),
    Setting("AI_REQUEST_TIMEOUT", "2m", duration,
            "how long the gateway waits for a vendor's answer (seconds, or 30s, 2m)"),
    Setting("AI_MAX_REQUEST_SIZE", "2M", byte_size,
            "largest request body the gateway accepts, e.g. 512K, 2M"),
    Setting("AI_ALLOW_PERSONAL_TOKENS", "false", boolean,
            "true: students may also call the gateway with a personal token that expires (hub's Token page), e.g. for an editor on their laptop; still metered and budgeted"),
    Setting("AI_DEFAULT_MODEL", "ollama:qwen2.5:0.5b", model_id,
            "the model %%ai and the chat panel use when none is named, as provider:model"),
    Setting(AI_SHOW_REASONING, "true", boolean,
            "true: a thinking model's reasoning shows in a collapsed block above its answer (%%ai Markdown and text output, the chat panel; never in -f code); false: the answer only"),
    Setting("AI_DEFAULT_EMBEDDINGS_MODEL", "ollama:nomic-embed-text", embeddings_model_id,
            "the embedding model the chat panel's /learn and /ask start with, as provider:model (pulled into Ollama by default)"),
    Setting("USE_AI_PROXY", "false", boolean,
            "true: students' calls to AI vendors go through AI_PROXY_URL (internal services never do)"),
    Setting("AI_PROXY_URL", "", url,
            "HTTP proxy for AI vendors, e.g. http://proxy.example.edu:3128, with a login http://user:p%40ss@proxy:3128 (percent-encoded; needed when USE_AI_PROXY=true)"),
    Setting("AI_NO_PROXY", "", host_list,
            "more hosts that bypass the proxy, comma-separated (the hub, Ollama and localhost always do)"),
    *(setting for index, vendor in enumerate(VENDORS_LIST) for setting in (
        Setting(vendor.key_env, "", api_key,
                f"{vendor.name} API key" + ("" if vendor.key_required else " (optional)")
                + ("; empty: not offered to students" if vendor.key_required else ""), secret=True,
                heading="" if index else "AI vendors: set a key to offer a vendor to every student"),
        Setting(vendor.base_env, vendor.default_base or "", url,
                f"{vendor.name} API base URL" + ("; set it to offer this provider" if vendor.default_base is None else "")),
    )),
    *HTTPS_SETTINGS,
    Setting("HUB_COOKIE_SECRET", "", hex_secret,
            "signs login cookies; empty: generated on first start", secret=True,
            heading="Hub internals"),
    Setting("PROXY_AUTH_TOKEN", "", password,
            "token between the hub and its HTTP proxy; empty: generated on first start", secret=True),
    Setting("GATEWAY_API_TOKEN", "", password,
            "token between the hub and the AI gateway; empty: generated on first start", secret=True),
    Setting("CLASS_TOOLS_API_TOKEN", "", password,
            "token of the admin's class tools (rehearsal, class start/stop) at the hub; empty: generated on first start", secret=True),
)

# Read by docker compose (docker-compose.yml gives each the same default), never by the
# hub; here so that .env.example and the README document them from one table too.
COMPOSE_SETTINGS: tuple[Setting, ...] = (
    Setting("HUB_PORT", "8000", port, "host port where the hub's login page is served",
            heading="Build and ports (read by docker compose)"),
    Setting("PYTHON_IMAGE", "python:3.12-slim-bookworm", image,
            "base image of the hub and student images (any Debian bookworm image with Python 3.10+ and pip)"),
    Setting("OLLAMA_IMAGE", "ollama/ollama:0.34.2", image,
            "Ollama image (models live in the ollama-models volume)"),
    Setting("OLLAMA_PULL_MODELS", "qwen2.5:0.5b nomic-embed-text", str,
            "models pulled into Ollama at each start, separated by spaces or commas (see ollama.com/library)",
            note="Watch a pull with `docker compose logs -f ollama-pull`; a model that cannot be pulled"
                 " makes `docker compose up -d --wait` fail, and that log names it."),
    Setting("POSTGRES_IMAGE", "postgres:15.14-bookworm", image, "PostgreSQL image of the hub's database"),
    Setting("DEBIAN_MIRROR", "", url,
            "Debian mirror for image builds, http:// (e.g. http://mirrors.tuna.tsinghua.edu.cn/debian); empty: deb.debian.org"),
    Setting("PIP_INDEX_URL", "https://pypi.org/simple", url,
            "Python package index for image builds (e.g. https://pypi.tuna.tsinghua.edu.cn/simple)"),
)


def load(environ: Mapping[str, str] | None = None, table: tuple[Setting, ...] = SETTINGS) -> SimpleNamespace:
    """Parse every setting of `table`; raise ConfigError listing every wrong one."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in table:
        text = environ.get(setting.name, "").strip() or setting.default
        try:
            values[setting.attr] = setting.parse(text)
        except ValueError as reason:
            # A URL's password never shows (http://user:***@proxy:3128).
            shown = "(value hidden)" if setting.secret else repr(redact_url(text))
            problems.append(f"{setting.name}={shown} {reason}; {ENV_FILE_HINT}")
    if not problems and values.get("use_ai_proxy") and not values.get("ai_proxy_url"):
        problems.append(f"AI_PROXY_URL is empty but USE_AI_PROXY=true: give the proxy's URL; {ENV_FILE_HINT}")
    if not problems:
        problems += https_problems(values)
    if not problems and values.get("home_storage") == "nfs" and not values.get("home_nfs_server"):
        problems.append(f"HOME_NFS_SERVER is empty but HOME_STORAGE=nfs: name the NFS server; {ENV_FILE_HINT}")
    if problems:
        raise ConfigError(problems)
    return SimpleNamespace(**values)


def https_problems(values: Mapping[str, Any]) -> list[str]:
    """What the HTTPS settings (HTTPS_SETTINGS) need of each other: a mode needs a domain,
    Let's Encrypt a public DNS name, and the two ports must differ."""
    mode, domain = values.get("https_mode", "off"), values.get("https_domain", "")
    if mode == "off":
        return []
    if not domain:
        return [f"HTTPS_DOMAIN is empty but HTTPS_MODE={mode}: give the name students open,"
                f" e.g. hub.school.edu; {ENV_FILE_HINT}"]
    if mode == "acme" and (re.fullmatch(r"[\d.]+", domain) or "." not in domain or domain.endswith(".local")):
        return [f"HTTPS_DOMAIN={domain!r} cannot get a Let's Encrypt certificate (not a public DNS name):"
                f" use HTTPS_MODE=internal or files; {ENV_FILE_HINT}"]
    if values.get("http_port") == values.get("https_port"):
        return [f"HTTP_PORT and HTTPS_PORT are both {values.get('https_port')}: give them different ports; {ENV_FILE_HINT}"]
    return []


# docker-compose.https.yml sets this in the `secrets` job's environment, so the check at
# start knows whether Caddy stands in front of the hub (HTTPS_MODE must agree).
HTTPS_FRONT_MARK = "AIHUB_HTTPS_FRONT"
HTTPS_COMPOSE_FILES = "COMPOSE_FILE=docker-compose.yml:docker-compose.https.yml"


def https_front_problems(settings: SimpleNamespace, environ: Mapping[str, str] | None = None) -> list[str]:
    """HTTPS_MODE against the compose files in use: secure cookies on a plain-HTTP hub
    would lock everyone out, and Caddy without a mode has nothing to serve."""
    environ = os.environ if environ is None else environ
    in_front = bool(environ.get(HTTPS_FRONT_MARK))
    if settings.https_mode != "off" and not in_front:
        return [f"HTTPS_MODE={settings.https_mode} but docker-compose.https.yml is not in use:"
                f" add {HTTPS_COMPOSE_FILES} to .env (or set HTTPS_MODE=off)"]
    if settings.https_mode == "off" and in_front:
        return [f"HTTPS_MODE is off but docker-compose.https.yml is in use:"
                f" set HTTPS_MODE to {', '.join(HTTPS_MODES[:-1])} or {HTTPS_MODES[-1]}; {ENV_FILE_HINT}"]
    return []


def vendor_environment(settings: SimpleNamespace) -> dict[str, str]:
    """Every vendor's key and base URL as an environment, the shape aihub_providers reads
    (Vendor.missing_setting, Vendor.key): how the hub and the gateway decide which
    vendors are configured, by the same rule as a student's chat panel."""
    return {name: getattr(settings, name.lower()) for vendor in VENDORS_LIST
            for name in (vendor.key_env, vendor.base_env)}


def exit_on_error(error: ConfigError) -> None:
    """Print one line per problem, no traceback, and stop with status 2."""
    for problem in error.problems:
        print(f"aihub: configuration error: {problem}", file=sys.stderr)
    raise SystemExit(2)


def load_or_exit(environ: Mapping[str, str] | None = None, table: tuple[Setting, ...] = SETTINGS) -> SimpleNamespace:
    try:
        return load(environ, table)
    except ConfigError as error:
        exit_on_error(error)
