# Every kernel in the students' image: the %%ai magics, and the bundle's providers'
# one-line errors instead of tracebacks (providers/). Installed as /etc/ipython/.
# The hub passes AI_ENABLED and AI_DEFAULT_MODEL from .env at spawn.
import os

c = get_config()  # noqa: F821 (provided by IPython)
if os.environ.get("AI_ENABLED", "true") != "false":
    c.InteractiveShellApp.extensions = ["jupyter_ai_magics", "aihub_providers"]
    if os.environ.get("AI_DEFAULT_MODEL"):
        c.AiMagics.default_language_model = os.environ["AI_DEFAULT_MODEL"]
