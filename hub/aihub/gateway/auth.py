"""Who is calling, and with which token: the student's JupyterHub token -> their user name.

Students' clients send the token as an API key (`Authorization: Bearer <token>`,
what the OpenAI SDK does); `Authorization: token <token>` works too. JupyterHub's
HubAuth asks the hub who owns it (GET /hub/api/user with that token) and caches the
answer for CACHE_SECONDS, so a stopped server's token (the hub deletes it) is refused
within that time, and a student calling without pause costs the hub one request per
CACHE_SECONDS (30 students: about 7 requests a second, each a small lookup).

The policy, one token kind at a time:

    your running server's own token ($JUPYTERHUB_API_TOKEN)  -> accepted
    a personal token (the hub's Token page, or its API)      -> 403, unless the admin set
                                                                AI_ALLOW_PERSONAL_TOKENS=true
      ... with that setting: one that expires                -> accepted (metered, budgeted)
      ... with that setting: one that never expires          -> 403, "make one that expires"
    no token, or one the hub does not know (a stopped
      server's, an expired or revoked one)                   -> 401
    a token without the gateway's scope                      -> 403
    a service's token                                        -> 403
    the hub unreachable                                      -> 503

A server's token is told from a personal one by the digest its spawner records in
the server's state (aihub.server_token), which the gateway reads with its own token
(scopes in aihub.services.GATEWAY_SCOPES) once per token: a token's kind never changes.

None of the refusals cost the student anything nor write a ledger row: nobody was
metered. No message ever repeats the token.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from typing import Optional
from urllib.parse import quote

from jupyterhub.services.auth import HubOAuth, check_scopes
from jupyterhub.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.web import HTTPError
from traitlets import Bool

from ..server_token import STATE_KEY, token_digest
from ..services import GATEWAY_SCOPES
from .config import ACCESS_SCOPE, SERVICE_NAME, SERVICE_PREFIX, GatewayConfig
from .errors import GatewayError

log = logging.getLogger("aihub.gateway")

CACHE_SECONDS = 4  # a stopped server's token is refused within this (issue: within 5 s)
KNOWN_TOKENS = 10_000  # token kinds remembered (a class's tokens, many times over)
HUB_TIMEOUT = 10.0  # seconds for one of the gateway's own requests to the hub
_AUTHORIZATION = re.compile(r"(?:bearer|token)\s+(\S+)\s*$", re.IGNORECASE)

SERVER, PERSONAL, EXPIRING, NEVER_EXPIRES = "server", "personal", "personal, expiring", "personal, never expiring"

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
PERSONAL_TOKEN = (
    "this is a personal token, not your running server's: the AI gateway takes your server's "
    "own token ($JUPYTERHUB_API_TOKEN in a notebook); to use personal tokens that expire, "
    "the admin must set AI_ALLOW_PERSONAL_TOKENS=true in .env"
)
NEVER_EXPIRES_TOKEN = (
    "this personal token never expires, and the AI gateway takes only personal tokens that do: "
    "make one on the hub's Token page (/hub/token) with an expiry, e.g. 1 month, and use that"
)
HUB_DOWN = "cannot check your token: the hub did not answer; try again in a minute"


class GatewayHubAuth(HubOAuth):
    """HubOAuth (the hub's tokens and the admin page's login) with the gateway's policy."""

    allow_personal_tokens = Bool(False, help="AI_ALLOW_PERSONAL_TOKENS")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.token_kinds: OrderedDict[str, str] = OrderedDict()  # token digest -> kind

    async def token_kind(self, model: dict, token: str) -> str:
        """SERVER, PERSONAL (not allowed: not looked into), EXPIRING or NEVER_EXPIRES."""
        digest = token_digest(token)
        kind = self.token_kinds.get(digest)
        if kind is None:
            kind = await self._find_kind(model, digest)
            self.token_kinds[digest] = kind
            while len(self.token_kinds) > KNOWN_TOKENS:
                self.token_kinds.popitem(last=False)
        return kind

    async def _find_kind(self, model: dict, digest: str) -> str:
        user = quote(model["name"], safe="")
        owner = await self._hub_get(f"users/{user}") or {"servers": {}}
        if "servers" not in owner:  # the hub did not give the gateway its role
            log.warning("the hub shows the gateway no servers: its role must grant %s", ", ".join(GATEWAY_SCOPES))
            raise GatewayError(503, HUB_DOWN, "hub_unavailable", type="server_error")
        servers = owner["servers"]
        if any((server.get("state") or {}).get(STATE_KEY) == digest for server in servers.values()):
            return SERVER
        if not self.allow_personal_tokens:
            return PERSONAL
        token_id = model.get("token_id")
        info = await self._hub_get(f"users/{user}/tokens/{quote(token_id, safe='')}") if token_id else None
        return EXPIRING if info and info.get("expires_at") else NEVER_EXPIRES

    async def _hub_get(self, path: str) -> Optional[dict]:
        """GET the hub's API with the gateway's own token; None when it says 404."""
        request = HTTPRequest(url_path_join(self.api_url, path), headers={"Authorization": f"token {self.api_token}"},
                              request_timeout=HUB_TIMEOUT)
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except Exception as error:  # connection refused, DNS, timeout: the hub is away
            log.warning("cannot reach the hub to check a token: %s", type(error).__name__)
            raise GatewayError(503, HUB_DOWN, "hub_unavailable", type="server_error") from None
        if response.code == 404:
            return None
        if response.code != 200:
            log.warning("the hub answered HTTP %s to the gateway's token check (does its role grant %s?)",
                        response.code, ", ".join(GATEWAY_SCOPES))
            raise GatewayError(503, HUB_DOWN, "hub_unavailable", type="server_error")
        return json.loads(response.body)


def make_hub_auth(config: GatewayConfig) -> GatewayHubAuth:
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
        allow_personal_tokens=config.allow_personal_tokens,
    )
    if config.hub_api_url:
        options["api_url"] = config.hub_api_url
    return GatewayHubAuth(**options)


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


async def authenticate(hub_auth: GatewayHubAuth, authorization: str) -> str:
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
    kind = await hub_auth.token_kind(model, token)
    if kind == PERSONAL:
        raise GatewayError(403, PERSONAL_TOKEN, "personal_token")
    if kind == NEVER_EXPIRES:
        raise GatewayError(403, NEVER_EXPIRES_TOKEN, "token_never_expires")
    return model["name"]
