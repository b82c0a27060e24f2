"""How the admin tools show progress: many servers starting at once in one line, kept
up to date; sizes as `docker system df` shows them."""

from __future__ import annotations

import sys
import time


class Progress:
    """One status line, rewritten in place on a terminal, every 5 s in a log."""

    def __init__(self, total: int, what: str):
        self.total, self.what = total, what
        self.state: dict[str, str] = {}
        self.started = time.monotonic()
        self.tty = sys.stdout.isatty()
        self.last_print = 0.0

    def event(self, name: str, event: dict) -> None:
        if event.get("ready"):
            self.state[name] = "ready"
        elif event.get("failed"):
            self.state[name] = "failed"
        elif "in line" in event.get("message", ""):
            self.state[name] = "in line"
        else:
            self.state[name] = "starting"
        self.show()

    def done(self, name: str, ok: bool) -> None:
        self.state[name] = "ready" if ok else "failed"
        self.show()

    def show(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last_print < (0.5 if self.tty else 5):
            return
        self.last_print = now
        counts = {key: sum(1 for value in self.state.values() if value == key)
                  for key in ("ready", "starting", "in line", "failed")}
        line = (f"  {self.what}: {counts['ready']}/{self.total} ready, {counts['starting']} starting, "
                f"{counts['in line']} in line, {counts['failed']} failed ({now - self.started:.0f} s)")
        print(("\r" + line + "\033[K") if self.tty else line, end="\n" if final or not self.tty else "", flush=True)


def size_text(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
