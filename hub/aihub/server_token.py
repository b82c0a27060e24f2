"""Which token is a running server's own: the spawner records it, the gateway checks it.

JupyterHub gives each server start a fresh API token (the container's
$JUPYTERHUB_API_TOKEN) and deletes it when the server stops. A student's personal
tokens (the hub's Token page, /hub/token) look the same to the hub's API: same owner,
same scopes, no expiry by default, a note the student writes. So the spawner records a
SHA-256 digest of its server's token in its state, which the hub keeps in its database
(across hub restarts) and shows to holders of `admin:server_state` (the AI gateway,
aihub.services); the gateway compares a caller's token with it (aihub.gateway.auth).
A digest, not the token: the state is readable by admins and stored in the database.
"""

from __future__ import annotations

import hashlib
from typing import Optional

STATE_KEY = "api_token_sha256"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class RecordsServerToken:
    """Spawner mixin: the running server's token digest in get_state()."""

    _token_digest: Optional[str] = None

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        # After a hub restart the spawner has no api_token of its own, only its state.
        self._token_digest = state.get(STATE_KEY)

    def get_state(self) -> dict:
        state = super().get_state()
        digest = token_digest(self.api_token) if self.api_token else self._token_digest
        if digest:
            state[STATE_KEY] = digest
        return state

    def clear_state(self) -> None:
        super().clear_state()
        self._token_digest = None
