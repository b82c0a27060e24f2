"""What a student's container is told about AI models: one function, used by DockerSpawner.

The student's server reads these variables at call time (providers/), so a change in
.env reaches each student at their next spawn. Only configured vendors appear: a
student's chat panel lists exactly the providers whose variables are here.

With AI_KEY_MODE=gateway (the default) no vendor key leaves the hub: each vendor's base
URL is the gateway's route for it, and its "key" is the student's own server token,
which JupyterHub makes for each server start and revokes when the server stops.
"""

from types import SimpleNamespace

from aihub_providers.reasoning import SHOW_SETTING
from aihub_providers.vendors import VENDORS, VENDORS_LIST, Vendor

from .proxies import no_proxy_hosts, proxy_url
from .services import GATEWAY_URL, gateway_enabled
from .settings import vendor_environment

# A server with no AI: no %%ai, no chat panel, no model addresses or keys.
WITHOUT_AI = {"AI_ENABLED": "false"}


def user_environment(settings: SimpleNamespace) -> dict:
    if not settings.ai_enabled:
        return dict(WITHOUT_AI)
    env = {"AI_ENABLED": "true", "AI_DEFAULT_MODEL": settings.ai_default_model,
           SHOW_SETTING: "true" if settings.ai_show_reasoning else "false",
           "AI_DEFAULT_EMBEDDINGS_MODEL": settings.ai_default_embeddings_model}
    configured = vendor_environment(settings)
    for vendor in VENDORS_LIST:
        if vendor.missing_setting(configured) is not None:
            continue
        if gateway_enabled(settings):
            env[vendor.base_env] = gateway_route(vendor)
            env[vendor.key_env] = server_token
        else:
            env[vendor.base_env] = configured[vendor.base_env]
            if vendor.key(configured):
                env[vendor.key_env] = vendor.key(configured)
    # The official ollama Python client's variable, for students who `import ollama`: the
    # provider's Ollama address. With the gateway that is the gateway's /ollama, which
    # serves Ollama's own API too, and OLLAMA_API_KEY (the server token) authenticates.
    env["OLLAMA_HOST"] = env[VENDORS["ollama"].base_env]
    env.update(proxy_environment(settings))
    return env


def gateway_route(vendor: Vendor) -> str:
    """The gateway's OpenAI-compatible base for a vendor (providers add api_path, as /v1)."""
    return f"{GATEWAY_URL}/{vendor.id}" + ("" if vendor.api_path else "/v1")


def server_token(spawner) -> str:
    """DockerSpawner calls this at each start: the token of the server being started."""
    return spawner.api_token


def proxy_environment(settings: SimpleNamespace) -> dict[str, str]:
    """HTTP(S)_PROXY for vendors when USE_AI_PROXY is on; NO_PROXY keeps internal calls
    direct (aihub.proxies decides both).

    Both spellings, since Python's clients read the lower case and others the upper.
    NO_PROXY is set either way: a proxy can also come from the site's own Docker setup.
    """
    no_proxy = ",".join(no_proxy_hosts(settings))
    env = {"NO_PROXY": no_proxy, "no_proxy": no_proxy}
    proxy = proxy_url(settings)
    if proxy:
        # As written in .env: clients decode a percent-encoded login themselves.
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env[name] = proxy
    return env
