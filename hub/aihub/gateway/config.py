"""What the gateway needs to know, computed once at start from settings and secrets.

Every value comes from aihub.settings (the one place the environment is read) and the
secrets volume; nothing here reads os.environ. The hub's own variables for services
(JUPYTERHUB_API_URL, ...) are read by JupyterHub's HubAuth, as for any service.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Mapping, Optional
from urllib.parse import unquote, urlsplit

from aihub_providers.vendors import VENDORS_LIST, Vendor

from aihub.database import postgres_connection
from aihub.proxies import no_proxy_hosts, proxy_url
from aihub.settings import vendor_environment

# The gateway's identity with the hub, and its address on the users network; the hub's
# registration (aihub.services) and the students' base URLs (aihub.user_env) import these.
SERVICE_NAME = "ai-gateway"
# Browsers reach the admin page through the hub's proxy, which keeps this prefix.
SERVICE_PREFIX = f"/services/{SERVICE_NAME}/"
# A token must carry this scope to use the gateway (Spawner.server_token_scopes).
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
HOST = "gateway"  # its service name in docker-compose.yml
PORT = 8090
URL = f"http://{HOST}:{PORT}"


@dataclass(frozen=True)
class Upstream:
    """One vendor the gateway can route to: where its OpenAI API is, and the key."""

    vendor: Vendor
    api_base: str  # e.g. https://api.deepseek.com/v1 (ollama: base + /v1)
    key: str  # the admin's key, or the vendor's stand-in for keyless servers

    @property
    def id(self) -> str:
        return self.vendor.id

    @property
    def name(self) -> str:
        return self.vendor.name

    def url(self, endpoint: str) -> str:
        return f"{self.api_base}/{endpoint}"


@dataclass(frozen=True)
class GatewayConfig:
    upstreams: dict[str, Upstream]  # provider id -> upstream, in the vendor table's order
    unconfigured: dict[str, str]  # provider id -> the .env variable still missing
    daily_token_budget: int  # default per user per UTC day; 0 = no limit
    max_concurrent_requests: int  # per user; 0 = no limit
    default_max_tokens: int  # the answer cap of a request that names none
    request_timeout: float  # seconds the gateway waits on a vendor (per read)
    max_request_size: int  # bytes of a client's request body
    database: dict  # asyncpg connect() keyword arguments
    api_token: str  # GATEWAY_API_TOKEN: the service's token with the hub
    ai_enabled: bool = True
    hub_api_url: Optional[str] = None  # None: HubAuth's default, $JUPYTERHUB_API_URL
    # Vendors are called through this proxy (None: directly), except the hosts of
    # no_proxy (aihub.proxies, the rule students' containers get as NO_PROXY).
    proxy_url: Optional[str] = None
    no_proxy: tuple[str, ...] = ()
    # Personal tokens that expire are accepted too, not only running servers' own tokens.
    allow_personal_tokens: bool = False

    def __repr__(self) -> str:  # never print keys, tokens or the database password
        return f"GatewayConfig(upstreams={list(self.upstreams)})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value an error message must never contain."""
        values = [u.key for u in self.upstreams.values()]
        values += [self.api_token, self.database.get("password", "")]
        for url in (self.proxy_url or "", *(u.api_base for u in self.upstreams.values())):
            password = urlsplit(url).password or ""
            values += [password, unquote(password)]
        return tuple(v for v in values if v)


def routable_upstreams(settings: SimpleNamespace) -> tuple[dict[str, Upstream], dict[str, str]]:
    """The vendors whose settings are complete (same rule as the students' chat panel)."""
    environ = vendor_environment(settings)
    upstreams, unconfigured = {}, {}
    for vendor in VENDORS_LIST:
        missing = vendor.missing_setting(environ)
        if missing:
            unconfigured[vendor.id] = missing
            continue
        base = environ[vendor.base_env] or vendor.default_base or ""
        key = vendor.key(environ) or vendor.default_key or ""
        upstreams[vendor.id] = Upstream(vendor, vendor.api_base(base), key)
    return upstreams, unconfigured


def config_from_settings(settings: SimpleNamespace, secrets: Mapping[str, str], **overrides) -> GatewayConfig:
    upstreams, unconfigured = routable_upstreams(settings)
    values = dict(
        upstreams=upstreams,
        unconfigured=unconfigured,
        daily_token_budget=settings.ai_daily_token_budget,
        max_concurrent_requests=settings.ai_max_concurrent_requests,
        default_max_tokens=settings.ai_default_max_tokens,
        # A zero timeout would make every call fail at once; one second is the floor.
        request_timeout=float(max(1, settings.ai_request_timeout)),
        max_request_size=settings.ai_max_request_size,
        database=postgres_connection(settings, secrets["POSTGRES_PASSWORD"]),
        api_token=secrets["GATEWAY_API_TOKEN"],
        ai_enabled=settings.ai_enabled,
        proxy_url=proxy_url(settings),
        no_proxy=no_proxy_hosts(settings),
        allow_personal_tokens=settings.ai_allow_personal_tokens,
    )
    values.update(overrides)
    return GatewayConfig(**values)
