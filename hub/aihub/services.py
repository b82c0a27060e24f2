"""Services the hub runs or registers, with the roles and scopes that connect them."""

import sys
from types import SimpleNamespace

from .gateway.config import ACCESS_SCOPE as GATEWAY_ACCESS
from .gateway.config import SERVICE_NAME as GATEWAY
from .gateway.config import URL as GATEWAY_URL

# Where the hub listens in its container: the proxy for people (published as HUB_PORT),
# and the hub's own API (for students' servers, the gateway and the class tools).
PROXY_PORT = 8000
HUB_API_PORT = 8081

IDLE_CULLER = "idle-culler"
# The AI gateway (GATEWAY, GATEWAY_URL, GATEWAY_ACCESS, defined by aihub.gateway.config)
# holds the vendor keys; students' servers reach it on the users network.
# The admin's class tools (aihub.rehearse, aihub.classes) run in the hub's container with
# this service's token: they manage accounts, groups and servers, run cells in servers
# (the rehearsal's %%ai) and read the hub's metrics (its event-loop lag).
CLASS_TOOLS = "class-tools"
CLASS_TOOLS_SCOPES = ["admin:users", "admin:servers", "access:servers", "admin:groups", "read:metrics"]
# What a server's own token may do by default (JupyterHub's `server` role).
SERVER_SCOPES = ["users:activity!user", "access:servers!server"]
# The gateway asks the hub whether a token is a running server's own (its digest in the
# server's state: aihub.server_token) or a personal one, and when a personal one expires.
GATEWAY_SCOPES = ["read:servers", "admin:server_state", "read:tokens"]


def gateway_enabled(settings: SimpleNamespace) -> bool:
    return settings.ai_enabled and settings.ai_key_mode == "gateway"


def student_networks(settings: SimpleNamespace) -> list[str]:
    """Docker networks a student's container joins besides the users network.

    Ollama has no authentication, so it sits on its own network (docker-compose.yml's
    `models`) with the gateway, which meters and limits every call. Only in
    AI_KEY_MODE=direct, with no gateway in between, do students' containers join it.
    """
    if settings.ai_enabled and settings.ai_key_mode == "direct":
        return [f"{settings.compose_project_name}-models"]
    return []


def hub_services(settings: SimpleNamespace, secret: dict[str, str]) -> list[dict]:
    services = []
    if settings.cull_idle_timeout:
        # Check often enough that a server never outlives its timeout by more than 10%.
        cull_every = max(10, min(300, settings.cull_idle_timeout // 10))
        services.append({
            "name": IDLE_CULLER,
            "command": [
                sys.executable, "-m", "jupyterhub_idle_culler",
                f"--timeout={settings.cull_idle_timeout}",
                f"--cull-every={cull_every}",
            ],
        })
    services.append({"name": CLASS_TOOLS, "api_token": secret["CLASS_TOOLS_API_TOKEN"]})
    if gateway_enabled(settings):
        # Runs in its own container (docker-compose.yml); the hub proxies its admin page
        # at /services/ai-gateway/ and logs admins in to it with OAuth.
        services.append({
            "name": GATEWAY,
            "url": GATEWAY_URL,
            "api_token": secret["GATEWAY_API_TOKEN"],
            "oauth_no_confirm": True,
        })
    return services


def hub_roles(settings: SimpleNamespace) -> list[dict]:
    roles = []
    if settings.cull_idle_timeout:
        roles.append({
            "name": IDLE_CULLER,
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": [IDLE_CULLER],
        })
    roles.append({"name": CLASS_TOOLS, "scopes": CLASS_TOOLS_SCOPES, "services": [CLASS_TOOLS]})
    if gateway_enabled(settings):
        # Every user may call the gateway, so their servers' tokens can carry that scope.
        roles.append({"name": "user", "scopes": ["self", GATEWAY_ACCESS]})
        roles.append({"name": GATEWAY, "scopes": GATEWAY_SCOPES, "services": [GATEWAY]})
    return roles


def server_token_scopes(settings: SimpleNamespace) -> list[str]:
    """A student's server token: JupyterHub's defaults, plus calling the gateway."""
    return SERVER_SCOPES + ([GATEWAY_ACCESS] if gateway_enabled(settings) else [])
