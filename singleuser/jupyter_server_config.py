# Jupyter AI's chat panel in the students' image, from what the hub passed in at spawn:
# only configured providers are offered, and the admin's default chat and embedding
# models are preselected.
# jupyter_ai loads on the panel's first request, not at server start (it doubles the
# start's CPU: providers/aihub_providers/lazy_server.py); the AiExtension settings
# below apply then. With AI_ENABLED=false it is not loaded at all. Installed in
# /etc/jupyter/.
import json
import os

from aihub_providers.configured import configured_provider_ids

c = get_config()  # noqa: F821 (provided by Jupyter Server)
# Behind HTTPS the hub gives every server it starts its cookie options (Secure);
# JupyterHub applies them to the server's login cookie, this to its XSRF cookie too.
if os.environ.get("JUPYTERHUB_COOKIE_OPTIONS"):
    c.ServerApp.tornado_settings = {"xsrf_cookie_kwargs": json.loads(os.environ["JUPYTERHUB_COOKIE_OPTIONS"])}
if os.environ.get("AI_ENABLED", "true") == "false":
    c.ServerApp.jpserver_extensions = {"jupyter_ai": False}
else:
    c.ServerApp.jpserver_extensions = {"jupyter_ai": False, "aihub_providers.lazy_server": True}
    c.AiExtension.allowed_providers = configured_provider_ids(os.environ)
    if os.environ.get("AI_DEFAULT_MODEL"):
        c.AiExtension.default_language_model = os.environ["AI_DEFAULT_MODEL"]
    # What /learn and /ask embed with; the index then lives in the home volume
    # (~/.local/share/jupyter/jupyter_ai/indices), so it survives a respawn.
    if os.environ.get("AI_DEFAULT_EMBEDDINGS_MODEL"):
        c.AiExtension.default_embeddings_model = os.environ["AI_DEFAULT_EMBEDDINGS_MODEL"]
