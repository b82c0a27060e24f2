"""Which providers are set up: the ids a student should see in the chat panel.

configured_provider_ids(environ) lists, in the table's order, the provider ids whose
required settings are present: `ollama` always (the bundle's own server, no key),
`openai-compatible` once OPENAI_COMPATIBLE_BASE_URL is set, every other vendor once
its key is set. Empty values count as unset. The user image feeds this list to
jupyter-ai's allowed providers (AiExtension.allowed_providers), so the chat panel
offers only providers that can work.

Command line (prints the ids for the current environment):

    python -m aihub_providers.configured           # one id per line
    python -m aihub_providers.configured --json    # ["deepseek", "ollama"]

Imports only the vendor table: no LangChain, so it is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Mapping, Optional, Sequence

from .vendors import VENDORS_LIST


def configured_provider_ids(environ: Optional[Mapping[str, str]] = None) -> list[str]:
    """Provider ids whose required settings are present in `environ` (os.environ)."""
    environ = os.environ if environ is None else environ
    return [v.id for v in VENDORS_LIST if v.missing_setting(environ) is None]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aihub_providers.configured",
        description="Print the ids of the model providers whose settings are present.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    args = parser.parse_args(argv)
    ids = configured_provider_ids()
    if args.json:
        print(json.dumps(ids))
    else:
        for provider_id in ids:
            print(provider_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
