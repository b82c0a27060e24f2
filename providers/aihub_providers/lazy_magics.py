"""`%ai` and `%%ai` in every kernel, with jupyter-ai loaded on their first use.

Loading jupyter_ai_magics at kernel start imports LangChain and every provider: about
0.6 s of CPU and 55 MiB in every kernel (1.1 s and 80 MiB while the providers used the
openai SDK), whether or not it ever asks a model, and 30 students starting kernels at
once share two cores. This IPython extension (`c.InteractiveShellApp.extensions = ["aihub_providers.lazy_magics"]`)
registers stand-in `%ai` and `%%ai` magics instead. The first call loads the real
extensions, jupyter_ai_magics and then aihub_providers, exactly as listing them in
the config would have, and passes its arguments on to jupyter-ai's own magic, which
then replaces the stand-ins. Output, `c.AiMagics.*` settings, `%ai list` etc. are
jupyter-ai's own.

Two things the real extensions do at load cannot wait for the first `%ai`, and both
are cheap (IPython only), so they happen at kernel start:
- jupyter_ai_magics stores the traceback of every error in `Err` for `%ai error`, and
  aihub_providers shows a ProviderError as its one line: their exception handlers
  are installed now.
- both count as loaded, so `%load_ext jupyter_ai_magics` (as jupyter-ai's tutorials
  say) stays the no-op it is when they are loaded at start.
"""

from __future__ import annotations

import jupyter_ai_magics  # cheap: its package imports its modules on first use
from jupyter_ai_magics.exception import store_exception

import aihub_providers

REAL_EXTENSIONS = ("jupyter_ai_magics", "aihub_providers")


def load_ipython_extension(ip) -> None:
    ip.extension_manager.loaded.update(REAL_EXTENSIONS)
    ip.set_custom_exc((BaseException,), store_exception)
    aihub_providers.show_provider_errors(ip)

    def ai_line(line):
        """jupyter-ai's `%ai` (loaded on first use): `%ai help` lists its commands."""
        return _real_magic(ip, "line")(line)

    def ai_cell(line, cell):
        """jupyter-ai's `%%ai` (loaded on first use): `%ai help` lists its options."""
        return _real_magic(ip, "cell")(line, cell)

    ip.register_magic_function(ai_line, "line", "ai")
    ip.register_magic_function(ai_cell, "cell", "ai")


def _real_magic(ip, kind: str):
    """Load the real extensions, whose AiMagics replace the stand-ins; its `ai` magic.

    The extension manager already counts them as loaded, so their extension functions
    are called directly; aihub_providers' wraps the handler jupyter_ai_magics' installs.
    """
    jupyter_ai_magics.load_ipython_extension(ip)
    aihub_providers.load_ipython_extension(ip)
    return ip.magics_manager.magics[kind]["ai"]
