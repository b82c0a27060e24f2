"""Who is calling: the student's JupyterHub token -> their user name, asked of the hub.

Students' clients send the token as an API key (`Authorization: Bearer <token>`,
what the OpenAI SDK does); `Authorization: token <token>` works too. JupyterHub's
HubAuth asks the hub who owns it (GET /hub/api/user with that token) and caches the
answer for CACHE_SECONDS, so a busy student costs the hub one request a minute.

    no token, or one the hub does not know   -> 401
    a token without the gateway's scope      -> 403 (e.g. a token made by hand)
    the hub unreachable                      -> 503

None of these cost the student anything nor write a ledger row: nobody was metered.
No message ever repeats the token.
"""

from __future__ import annotations

import logging
import re
from typing import Optional

from jupyterhub.services.auth import HubOAuth, check_scopes
from tornado.web import HTTPError

from .config import ACCESS_SCOPE, SERVICE_NAME, SERVICE_PREFIX, GatewayConfig
from .errors import GatewayError

log = logging.getLogger("aihub.gateway")

CACHE_SECONDS = 60
_AUTHORIZATION = re.compile(r"(?:bearer|token)\s+(\S+)\s*$", re.IGNORECASE)

NO_TOKEN = (
    "no JupyterHub token in the request: send it as the API key "
    "(Authorization: Bearer <token>); in a notebook it is $JUPYTERHUB_API_TOKEN"
)
UNKNOWN_TOKEN = (
    "the hub does not know this token (expired, or from a stopped server): "
    "restart your server from the hub's home page to get a fresh one"
)
NO_SCOPE = (
    f"this token may not use the AI gateway (it lacks the scope {ACCESS_SCOPE}): "
    "use your server's own token, $JUPYTERHUB_API_TOKEN, or restart your server"
)
NOT_A_USER = "only hub users can use the AI gateway, not services"
HUB_DOWN = "cannot check your token: the hub did not answer; try again in a minute"


def make_hub_auth(config: GatewayConfig) -> HubOAuth:
    """One HubOAuth for both tokens (API calls) and browsers (the admin page's login).

    Values JupyterHub gives managed services as environment variables are set here
    explicitly, since compose, not the hub, starts the gateway; JUPYTERHUB_API_URL
    stays HubAuth's own default unless the config names the hub.
    """
    options = dict(
        api_token=config.api_token,
        base_url=SERVICE_PREFIX,
        oauth_client_id=f"service-{SERVICE_NAME}",
        access_scopes={ACCESS_SCOPE},
        cache_max_age=CACHE_SECONDS,
    )
    if config.hub_api_url:
        options["api_url"] = config.hub_api_url
    return HubOAuth(**options)


def token_from(authorization: str) -> Optional[str]:
    match = _AUTHORIZATION.match(authorization or "")
    return match[1] if match else None


async def user_model_for(hub_auth: HubOAuth, token: str) -> Optional[dict]:
    """The hub's user model for `token` (cached), or None when the hub does not know it."""
    try:
        return await hub_auth.user_for_token(token, sync=False)
    except HTTPError as error:
        log.warning("cannot reach the hub to check a token: HTTP %s", error.status_code)
        raise GatewayError(503, HUB_DOWN, "hub_unavailable", type="server_error") from None


async def authenticate(hub_auth: HubOAuth, authorization: str) -> str:
    """The user name behind an Authorization header, or GatewayError(401/403/503)."""
    token = token_from(authorization)
    if not token:
        raise GatewayError(401, NO_TOKEN, "missing_token")
    model = await user_model_for(hub_auth, token)
    if not model:
        raise GatewayError(401, UNKNOWN_TOKEN, "invalid_token")
    if model.get("kind", "user") != "user":
        raise GatewayError(403, NOT_A_USER, "not_a_user")
    if not check_scopes({ACCESS_SCOPE}, set(model.get("scopes") or ())):
        raise GatewayError(403, NO_SCOPE, "missing_scope")
    return model["name"]
