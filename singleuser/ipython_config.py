# Every kernel in the students' image: the %%ai magics, and the bundle's providers'
# one-line errors instead of tracebacks (providers/). Installed as /etc/ipython/.
# aihub_providers.lazy_magics loads jupyter_ai_magics and aihub_providers on the first
# %ai/%%ai, not at kernel start (1.1 s of CPU and 95 MiB in every kernel otherwise).
# The hub passes AI_ENABLED and AI_DEFAULT_MODEL from .env at spawn.
import os

c = get_config()  # noqa: F821 (provided by IPython)
if os.environ.get("AI_ENABLED", "true") != "false":
    c.InteractiveShellApp.extensions = ["aihub_providers.lazy_magics"]
    if os.environ.get("AI_DEFAULT_MODEL"):
        c.AiMagics.default_language_model = os.environ["AI_DEFAULT_MODEL"]
