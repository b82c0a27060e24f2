"""Services the hub starts and manages, with the roles that give them their scopes."""

import sys
from types import SimpleNamespace

IDLE_CULLER = "idle-culler"


def hub_services(settings: SimpleNamespace) -> list[dict]:
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
    return services


def hub_roles(settings: SimpleNamespace) -> list[dict]:
    roles = []
    if settings.cull_idle_timeout:
        roles.append({
            "name": IDLE_CULLER,
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": [IDLE_CULLER],
        })
    return roles
