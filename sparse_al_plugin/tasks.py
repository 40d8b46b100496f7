"""QgsTasks that run the engine (or any command) in a subprocess while QGIS stays responsive.

run() works in a worker thread and touches no layer or widget; it only starts processes, reads their output and
writes files. finished() runs on the main thread and hands the task to a callback that adds layers.
"""

import subprocess
import traceback
from collections.abc import Callable

from qgis.core import Qgis, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .atomic import write_json
from .engine_config import EngineConfig
from .engine_process import EngineOutcome, follow_lines, run_engine
from .jobs import EngineStep
from .notify import log


class EngineTask(QgsTask):
    """Runs engine steps one after another; stops at the first that fails or when cancelled.

    ``after_step(step, outcome)`` runs in the worker thread after each successful step (for file work such as
    metrics; never layers) and its return value is kept in ``extras``. ``on_finished(task)`` runs on the main
    thread when the task ends, whatever the outcome.
    """

    stageChanged = pyqtSignal(str)

    def __init__(self, description: str, config: EngineConfig, steps: list[EngineStep],
                 on_finished: Callable[["EngineTask"], None],
                 after_step: Callable[[EngineStep, EngineOutcome], object] | None = None):  # fmt: skip
        super().__init__(description, QgsTask.Flag.CanCancel)
        self.config = config
        self.steps = steps
        self.on_finished = on_finished
        self.after_step = after_step
        self.outcomes: list[EngineOutcome] = []
        self.extras: list = []
        self.exception: str | None = None
        self._step_index = 0

    @property
    def command(self) -> str:
        return self.steps[0].command if self.steps else ""

    @property
    def failed_outcome(self) -> EngineOutcome | None:
        return next((o for o in self.outcomes if not o.ok), None)

    @property
    def was_cancelled(self) -> bool:
        return self.isCanceled() or any(o.cancelled for o in self.outcomes)

    def run(self) -> bool:
        try:
            for index, step in enumerate(self.steps):
                if self.isCanceled():
                    return False
                self._step_index = index
                write_json(step.job_file, step.job)
                argv = self.config.command(step.command, step.job_file)
                log(f"{step.label}: {' '.join(argv)}")
                outcome = run_engine(argv, self.config.environment(), self._on_event, self.isCanceled,
                                     step.log_file, cwd=step.job_file.parent)  # fmt: skip
                self.outcomes.append(outcome)
                if not outcome.ok:
                    return False
                self.extras.append(self.after_step(step, outcome) if self.after_step else None)
            self.setProgress(100.0)
            return True
        except Exception:  # a bug in the plugin: reported in finished()
            self.exception = traceback.format_exc()
            return False

    def _on_event(self, event: dict) -> None:
        kind = event.get("event")
        step = self.steps[self._step_index]
        if kind == "progress":
            fraction = float(event.get("fraction") or 0.0)
            self.setProgress(100.0 * (self._step_index + fraction) / len(self.steps))
            stage = event.get("stage", step.command)
            self.stageChanged.emit(f"{step.label}: {stage} {event.get('done', '')}/{event.get('total', '')}")
        elif kind == "start":
            self.stageChanged.emit(f"{step.label}: started on {event.get('device', '?')}")
        elif kind == "log":
            level = {"warning": Qgis.MessageLevel.Warning, "error": Qgis.MessageLevel.Critical}.get(
                event.get("level"), Qgis.MessageLevel.Info
            )
            log(f"{step.label}: {event.get('message', '')}", level)
        elif kind == "metric":
            log(f"{step.label}: {event.get('name')} = {event.get('value')}" +
                (f" (epoch {event['epoch']})" if "epoch" in event else ""))  # fmt: skip

    def finished(self, result: bool) -> None:
        self.on_finished(self)


class CommandTask(QgsTask):
    """Runs shell-free commands one after another (setting up the engine's environment, checking it); every output
    line goes to the log panel and to ``on_line``; ``progress_of(line)`` may return a new progress (0..100)."""

    lineReceived = pyqtSignal(str)

    def __init__(self, description: str, commands: list[list[str]], on_finished: Callable[["CommandTask"], None],
                 env: dict | None = None, progress_of: Callable[[int, str], float | None] | None = None):  # fmt: skip
        super().__init__(description, QgsTask.Flag.CanCancel)
        self.commands = commands
        self.on_finished = on_finished
        self.env = env
        self.progress_of = progress_of
        self.output: list[str] = []
        self.returncode: int | None = None
        self.exception: str | None = None

    def run(self) -> bool:
        try:
            for index, argv in enumerate(self.commands):
                log(f"{self.description()}: {' '.join(argv)}")
                self.returncode = self._run_one(index, argv)
                if self.returncode != 0 or self.isCanceled():
                    return False
            return True
        except OSError as exc:
            self.output.append(str(exc))
            self.exception = str(exc)
            return False

    def _run_one(self, index: int, argv: list[str]) -> int:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=self.env, text=True, encoding="utf-8", errors="replace", bufsize=1,
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))  # fmt: skip

        def on_line(line: str) -> None:
            line = line.rstrip()
            self.output.append(line)
            log(line)
            self.lineReceived.emit(line)
            progress = self.progress_of(index, line) if self.progress_of else None
            if progress is not None:
                self.setProgress(progress)

        follow_lines(proc, on_line, self.isCanceled, terminate_timeout=10.0)
        return proc.returncode

    def finished(self, result: bool) -> None:
        self.on_finished(self)


class FunctionTask(QgsTask):
    """Runs ``function()`` (file work only: no layers, no widgets) and hands the task to ``on_finished`` on the main
    thread, with ``result`` or ``exception`` set."""

    def __init__(self, description: str, function: Callable[[], object], on_finished: Callable[["FunctionTask"], None]):
        super().__init__(description, QgsTask.Flag.CanCancel)
        self.function = function
        self.on_finished = on_finished
        self.result = None
        self.exception: Exception | None = None
        self.details = ""

    def run(self) -> bool:
        try:
            self.result = self.function()
            return True
        except Exception as exc:  # reported in finished()
            self.exception = exc
            self.details = traceback.format_exc()
            return False

    def finished(self, result: bool) -> None:
        self.on_finished(self)
