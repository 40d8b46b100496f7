"""Runs one engine command as a subprocess and follows its JSON-lines events (engine/CONTRACT.md).

Plain Python (no Qt, no QGIS): the QgsTask in tasks.py calls :func:`run_engine` from its worker thread.
"""

import json
import queue
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_VERSION = 1
EXIT_CANCELLED = 130
_EOF = object()


@dataclass
class EngineOutcome:
    returncode: int
    result: dict | None = None
    error: dict | None = None
    cancelled: bool = False
    metrics: list[dict] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)
    stderr_tail: str = ""
    log_file: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.result is not None

    def message(self) -> str:
        """One line for the message bar."""
        if self.cancelled:
            return "cancelled; earlier results are intact"
        if self.error and self.error.get("message"):
            return str(self.error["message"])
        if self.returncode == 0:
            return "the engine finished without a result event; see the log panel"
        return f"the engine stopped with exit status {self.returncode} and no error message; see the log panel"

    def details(self) -> str:
        """The long story for the log panel: the error event, warnings and the end of the engine's stderr."""
        lines = [f"exit status {self.returncode}"]
        if self.error:
            lines.append(f"error event: {json.dumps(self.error)}")
        lines += [f"{e.get('level', 'info')}: {e.get('message', '')}" for e in self.logs]
        if self.stderr_tail.strip():
            lines.append("engine stderr (end):\n" + self.stderr_tail.rstrip())
        if self.log_file:
            lines.append(f"full log: {self.log_file}")
        return "\n".join(lines)


def parse_event(line: str) -> dict | None:
    """A contract event from one stdout line, or None for anything else (blank, not JSON, not an event)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(event, dict) or "event" not in event:
        return None
    return event


def run_engine(
    argv: list[str],
    env: dict | None = None,
    on_event: Callable[[dict], None] = lambda event: None,
    should_cancel: Callable[[], bool] = lambda: False,
    log_path: Path | None = None,
    cwd: Path | None = None,
    poll_seconds: float = 0.1,
    terminate_timeout: float = 60.0,
) -> EngineOutcome:
    """Start the engine, hand each event to ``on_event`` (from this thread), and return how it ended.

    ``should_cancel`` is polled while the engine runs; when it turns true the engine gets SIGTERM (terminate()) and
    is waited for, so it can stop at a safe step and leave earlier outputs intact; after ``terminate_timeout``
    seconds it is killed. The engine's stderr goes to ``log_path`` (a file the user can open).
    """
    log_path = Path(log_path) if log_path else None
    if log_path:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    stderr = open(log_path, "w", encoding="utf-8") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=env,
                                    cwd=cwd, text=True, encoding="utf-8", errors="replace", bufsize=1,
                                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))  # fmt: skip
        except OSError as exc:
            error = {"code": "not_started", "message": f"could not start the engine ({argv[0]}): {exc}; check the "
                     "engine's Python in Sparse AL settings"}  # fmt: skip
            return EngineOutcome(returncode=-1, error=error)
        outcome = _follow(proc, on_event, should_cancel, poll_seconds, terminate_timeout)
    finally:
        if log_path:
            stderr.close()
    if log_path:
        outcome.log_file = str(log_path)
        outcome.stderr_tail = _tail(log_path)
    return outcome


def _follow(proc, on_event, should_cancel, poll_seconds, terminate_timeout) -> EngineOutcome:
    outcome = EngineOutcome(returncode=0)

    def on_line(line: str) -> None:
        event = parse_event(line)
        if event is not None:
            _record(outcome, event)
            on_event(event)

    outcome.cancelled = follow_lines(proc, on_line, should_cancel, poll_seconds, terminate_timeout)
    outcome.returncode = proc.returncode
    if outcome.returncode == EXIT_CANCELLED or (outcome.error or {}).get("code") == "cancelled":
        outcome.cancelled = True
    return outcome


def follow_lines(proc: subprocess.Popen, on_line: Callable[[str], None], should_cancel: Callable[[], bool],
                 poll_seconds: float = 0.1, terminate_timeout: float = 60.0) -> bool:  # fmt: skip
    """Hand each stdout line of ``proc`` to ``on_line`` until it ends; poll ``should_cancel`` meanwhile and answer
    it with terminate() (SIGTERM), then kill() after ``terminate_timeout`` seconds. Returns whether it cancelled."""
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    waited = None
    while True:
        try:
            line = lines.get(timeout=poll_seconds)
        except queue.Empty:
            line = None
        if line is _EOF:
            break
        if line is not None:
            on_line(line)
        if waited is None and should_cancel():
            proc.terminate()
            waited = 0.0
        elif waited is not None and line is None:
            waited += poll_seconds
            if waited > terminate_timeout and proc.poll() is None:
                proc.kill()
    proc.wait()
    reader.join(timeout=1.0)
    proc.stdout.close()
    return waited is not None


def _read_lines(stream, lines: queue.Queue) -> None:
    try:
        for line in stream:
            lines.put(line)
    finally:
        lines.put(_EOF)


def _record(outcome: EngineOutcome, event: dict) -> None:
    kind = event.get("event")
    if kind == "result":
        outcome.result = event
    elif kind == "error":
        outcome.error = event
    elif kind == "metric":
        outcome.metrics.append(event)
    elif kind == "log" and event.get("level") in ("warning", "error"):
        outcome.logs.append(event)


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text[-chars:]
