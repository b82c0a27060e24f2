"""A vendor's event stream, passed on event for event with as little work as possible.

The vendor's bytes arrive in arbitrary pieces; `EventStream.feed` returns the bytes to
send on at once: every complete event in the piece, unchanged (never re-encoded), so a
token reaches the student as soon as the vendor sends it. Only a trailing partial event
waits for its rest.

Each event's JSON is read (not rewritten) to meter it: the usage it carries and the
text it adds. One event may be dropped: the usage-only chunk (`"choices": []` with
`usage`) that the gateway asked for on a client's behalf, which that client did not
expect (some clients break on a chunk without choices). A vendor's mid-stream
`{"error": ...}` event is re-sent with its message scrubbed of secrets.
"""

from __future__ import annotations

import json
import re
from typing import Callable, Optional

from .metering import Meter

_EVENT_END = re.compile(rb"\r?\n\r?\n")
DONE = b"[DONE]"


def _data(event: bytes) -> Optional[bytes]:
    """The data field of one event (data lines joined), or None for comments etc."""
    if event.startswith(b"data:") and event.count(b"\n") <= 2:  # the usual: one data line
        return event[5:].strip()
    lines = [line[5:].strip() for line in event.splitlines() if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


class EventStream:
    def __init__(self, meter: Meter, *, strip_usage_chunk: bool, clean: Callable[[str], str]):
        self.meter = meter
        self.strip_usage_chunk = strip_usage_chunk
        self.clean = clean  # scrubs a vendor's error message before it is passed on
        self.error: Optional[str] = None  # the message of an {"error": ...} event
        self.done = False
        self._rest = b""

    def feed(self, piece: bytes) -> bytes:
        data = self._rest + piece if self._rest else piece
        out = []
        start = 0
        changed = False
        while True:
            match = _EVENT_END.search(data, start)
            if match is None:
                break
            event = data[start:match.end()]
            passed = self._pass(event)
            if passed is not event:
                changed = True
            if passed:
                out.append(passed)
            start = match.end()
        self._rest = data[start:]
        if not changed:  # the common case: one slice, no copy of each event
            return data[:start]
        return b"".join(out)

    def close(self) -> bytes:
        """What is left at the end of the stream (an event without its blank line)."""
        rest, self._rest = self._rest, b""
        return self._pass(rest) if rest.strip() else rest

    def _pass(self, event: bytes) -> bytes:
        """The event to send on: itself (the rule), b"" to drop it, or a scrubbed error."""
        payload = _data(event)
        if not payload:
            return event
        if payload == DONE:
            self.done = True
            return event
        try:
            chunk = json.loads(payload)
        except ValueError:
            return event  # not ours to judge: pass it on
        if not isinstance(chunk, dict):
            return event
        if chunk.get("error"):
            return self._error_event(chunk["error"])
        self.meter.saw_delta_chunk(chunk)
        if self.strip_usage_chunk and not chunk.get("choices") and chunk.get("usage"):
            return b""
        return event

    def _error_event(self, error: object) -> bytes:
        """A vendor's mid-stream error, re-sent with its message scrubbed."""
        if isinstance(error, dict):
            message = error.get("message") or error.get("msg") or json.dumps(error)
            kind, code = error.get("type"), error.get("code")
        else:
            message, kind, code = error, None, None
        self.error = self.clean(str(message))
        cleaned = {
            "message": self.error,
            "type": self.clean(kind) if isinstance(kind, str) else "upstream_error",
            "code": self.clean(str(code)) if code is not None else None,
        }
        return b"data: " + json.dumps({"error": cleaned}).encode() + b"\n\n"
