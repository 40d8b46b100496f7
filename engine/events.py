"""The event stream of CONTRACT.md: JSON lines on stdout, or a progress bar and log lines for people."""

import copy
import json
import logging
import sys
import time
from typing import Any, TextIO

from engine import SCHEMA_VERSION

log = logging.getLogger("engine")


class Events:
    """Emits start, progress, log, metric, result and error events.

    ``mode`` is ``json`` (one object a line on ``stream``) or ``text`` (a progress bar on stderr; logs through
    :mod:`logging`; the result as readable lines on ``stream``).
    """

    def __init__(self, mode: str = "text", stream: TextIO | None = None):
        if mode not in ("json", "text"):
            raise ValueError(f"events mode must be json or text, not {mode!r}")
        self.mode = mode
        self.stream = stream if stream is not None else sys.stdout
        self._last_bar = 0.0
        self._bar_open = False
        self._span = (0.0, 1.0)

    def span(self, start: float, end: float) -> "Events":
        """These events, with progress fractions mapped into [start, end] of the whole (of this span): a command
        that runs in stages (fitting class shares, then predicting) moves one bar forward instead of restarting it."""
        low, high = self._span
        part = copy.copy(self)
        part._span = (low + (high - low) * start, low + (high - low) * end)
        return part

    def _emit(self, event: str, **fields: Any) -> None:
        record = {"v": SCHEMA_VERSION, "event": event, "time": round(time.time(), 3), **fields}
        self.stream.write(json.dumps(record, default=_jsonable) + "\n")
        self.stream.flush()

    def start(self, command: str, engine_version: str, device: str) -> None:
        if self.mode == "json":
            self._emit("start", command=command, engine_version=engine_version, device=device)
        else:
            log.info("%s on %s, engine %s", command, device, engine_version)

    def progress(self, stage: str, done: int, total: int, fraction: float | None = None) -> None:
        fraction = done / total if fraction is None and total else (fraction or 0.0)
        low, high = self._span
        fraction = low + (high - low) * min(max(fraction, 0.0), 1.0)
        if self.mode == "json":
            self._emit("progress", stage=stage, done=done, total=total, fraction=round(fraction, 4))
            return
        now = time.monotonic()
        if now - self._last_bar < 0.2 and done < total:
            return
        self._last_bar = now
        width = 30
        filled = int(width * fraction)
        sys.stderr.write(f"\r{stage:>10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({fraction:.0%})")
        self._bar_open = done < total
        if not self._bar_open:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def _close_bar(self) -> None:
        if self._bar_open:
            sys.stderr.write("\n")
            self._bar_open = False

    def log(self, level: str, message: str) -> None:
        if self.mode == "json":
            self._emit("log", level=level, message=message)
        else:
            self._close_bar()
            log.log(logging.getLevelName(level.upper()), message)

    def info(self, message: str) -> None:
        self.log("info", message)

    def warning(self, message: str) -> None:
        self.log("warning", message)

    def metric(self, name: str, value: float, **where: Any) -> None:
        if self.mode == "json":
            self._emit("metric", name=name, value=float(value), **where)
        else:
            log.debug("%s = %.4f %s", name, value, where)

    def result(self, command: str, **fields: Any) -> None:
        if self.mode == "json":
            self._emit("result", command=command, **fields)
            return
        self._close_bar()
        lines = [f"{command}: done"] + [f"  {key}: {_readable(value)}" for key, value in fields.items()]
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()

    def error(self, code: str, message: str, field: str | None = None) -> None:
        if self.mode == "json":
            extra = {"field": field} if field else {}
            self._emit("error", code=code, message=message, **extra)
        else:
            self._close_bar()
            log.error("%s", message)


def plain(value: Any) -> Any:
    """A value as JSON's plain types: dicts and lists (tuples too) converted inside, numbers, strings, booleans and
    None as they are, anything else (a Path) as its string."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value if isinstance(value, int | float | str | bool | type(None)) else str(value)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _readable(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_readable(v)}" for k, v in value.items())
    return str(value)
