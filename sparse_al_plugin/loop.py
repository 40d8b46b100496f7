"""The loop: train, predict and suggest as engine tasks, one after another ("Next iteration"), and their results
as layers and rows of the iteration table. The session's state lives in the controller this works for."""

import traceback
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path

from qgis.core import QgsApplication, QgsRasterLayer

from .classes import class_shares, class_weights
from .dock import RunRequest
from .engine_process import EngineOutcome
from .jobs import EngineStep, bbox_text, model_classes, predict_job, suggest_job, train_job, warm_start
from .metrics import confusion, scores
from .notify import UserError, guarded, log
from .session import (
    IterationRecord,
    PredictionFiles,
    latest,
    map_shares,
    safe_name,
    share_jumps,
    shares_summary,
    upsert,
    with_prediction,
)
from .settings import load_settings
from .tasks import EngineTask


class Loop:
    def __init__(self, controller):
        self.c = controller
        self.task: EngineTask | None = None
        self.queue: list[str] = []

    @property
    def notifier(self):
        return self.c.notifier

    @property
    def busy(self) -> bool:
        return self.task is not None or bool(self.queue)

    def unload(self) -> None:
        """A running engine is cancelled and its results are dropped."""
        self.queue.clear()
        if self.task is not None:
            self.task.on_finished = lambda task: None
            self.task.cancel()
            self.task = None

    @guarded
    def run(self, request: RunRequest) -> None:
        self.c.require_session()
        if self.task is not None:
            raise UserError("the engine is busy; wait for it or press Cancel")
        self.c.save_state(loop=request.loop)
        self.queue = list(request.commands)
        self._start_next()

    def _start_next(self) -> None:
        if not self.queue:
            self.c.dock.set_busy(False, self.c.dock.stage_label.text())
            return
        command = self.queue.pop(0)
        try:
            steps = {"train": self._train_steps, "predict": self._predict_steps,
                     "suggest": self._suggest_steps}[command]()  # fmt: skip
            config = load_settings().engine()
            problem = config.problem()
            if problem:
                raise UserError(problem)
        except Exception:
            self.queue.clear()
            self.c.dock.set_busy(False)
            raise
        after = None
        if command == "predict" and self.c.state.reference:
            after = partial(_score, self.c.state.reference, len(self.c.state.classes))
        task = EngineTask(f"Sparse AL: {command}", config, steps, self._task_finished, after)
        task.progressChanged.connect(self.c.dock.set_progress)
        task.stageChanged.connect(self.c.dock.set_stage)
        self.task = task
        self.c.dock.set_busy(True, f"{command}: starting the engine…")
        QgsApplication.taskManager().addTask(task)

    @guarded
    def cancel(self) -> None:
        self.queue.clear()
        if self.task is not None:
            self.c.dock.set_stage("cancelling…")
            self.task.cancel()

    def _train_steps(self) -> list[EngineStep]:
        session = self.c.require_session()
        rasters = self._require_rasters()
        if not sum(self.c.counts().values()):
            raise UserError("click some points first: at least one per class, on the rasters you train on")
        number = self.c.next_number()
        previous = latest(self.c.history)
        settings = load_settings()
        kind = settings.train.model
        init = warm_start(Path(previous.model_dir), self.c.state.classes, kind) if previous else None
        if previous and init is None and kind != "rf":
            log("the class list or the model kind changed since the last model: this iteration trains a new model")
        job = train_job([layer.source() for layer in rasters], session.points_file, self.c.state.classes,
                        session.model_dir(number), init, settings.train)  # fmt: skip
        return [EngineStep("train", job, session.iteration_dir(number) / "train.json", f"train iteration {number}")]

    def _predict_steps(self) -> list[EngineStep]:
        session = self.c.require_session()
        model = self._require_model()
        run_dir = session.run_dir(model.number, "predict")
        steps = []
        for i, layer in enumerate(self._require_rasters()):
            bbox = self._visible_bbox(layer) if self.c.state.loop.extent == "visible" else None
            if bbox == "":
                continue  # the raster is outside the visible extent
            out = run_dir / f"{i + 1:02d}_{safe_name(layer.name())}"
            job = predict_job(Path(model.model_dir), layer.source(), out, bbox, *self._class_settings(model))
            steps.append(EngineStep("predict", job, out.with_suffix(".json"), f"predict {layer.name()}",
                                    layer.source()))  # fmt: skip
        if not steps:
            raise UserError("none of the session's rasters is in the visible extent; pan to one or predict whole")
        return steps

    def _suggest_steps(self) -> list[EngineStep]:
        session = self.c.require_session()
        model = self._require_model()
        out = session.run_dir(model.number, "suggest") / "suggestions.gpkg"
        loop = self.c.state.loop
        points = session.points_file if session.points_file.exists() else None
        rasters = [layer.source() for layer in self._require_rasters()]
        job = suggest_job(Path(model.model_dir), rasters, out, loop.strategy, loop.budget, model.number, points,
                          *self._class_settings(model))  # fmt: skip
        return [EngineStep("suggest", job, out.with_suffix(".json"), "suggest")]

    def _class_settings(self, model: IterationRecord) -> tuple[list[str], list[str]]:
        """The session's class weights and shares, in the model's class names (classes.class_weights, class_shares)."""
        known = model_classes(Path(model.model_dir))
        return class_weights(self.c.state.classes, known), class_shares(self.c.state.classes, known)

    def _require_rasters(self) -> list[QgsRasterLayer]:
        rasters = self.c.session_rasters()
        if not rasters:
            raise UserError("tick the raster layer(s) to work on in the Sparse AL dock")
        return rasters

    def _require_model(self) -> IterationRecord:
        record = latest(self.c.history)
        if record is None or not Path(record.model_dir).exists():
            raise UserError("there is no trained model yet; press Train (or Next iteration) first")
        return record

    def _visible_bbox(self, layer: QgsRasterLayer) -> str:
        """The visible map extent in the raster's CRS, clipped to the raster ("" when they do not meet)."""
        canvas = self.c.iface.mapCanvas()
        extent = self.c.transform_to(layer.crs()).transformBoundingBox(canvas.extent())
        extent = extent.intersect(layer.extent())
        if extent.isEmpty():
            return ""
        return bbox_text(extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum(),
                         layer.crs().authid())  # fmt: skip

    def _task_finished(self, task: EngineTask) -> None:
        """Main thread, when a task ends: report it, then start the next command of "Next iteration"."""
        self.task = None
        if not self._report(task):
            self.queue.clear()
        if self.queue:
            self._continue()
        else:
            self.c.dock.set_busy(False, self.c.dock.stage_label.text())

    @guarded
    def _continue(self) -> None:
        self._start_next()

    def _report(self, task: EngineTask) -> bool:
        """Whether the task succeeded and its results were added; failures reach the message bar."""
        try:
            return self._report_unguarded(task)
        except Exception as exc:
            self.notifier.error(f"{type(exc).__name__}: {exc}", traceback.format_exc())
            return False

    def _report_unguarded(self, task: EngineTask) -> bool:
        if task.exception:
            self.notifier.error(f"{task.command} failed in the plugin", task.exception)
            self.c.dock.set_stage("failed")
            return False
        if task.was_cancelled:
            self.notifier.info(f"{task.command} cancelled; earlier results are intact")
            self.c.dock.set_stage("cancelled")
            return False
        if task.failed_outcome is not None:
            outcome = task.failed_outcome
            self.notifier.error(f"{task.command} failed: {outcome.message()}", outcome.details())
            self.c.dock.set_stage("failed: " + outcome.message())
            return False
        {"train": self._trained, "predict": self._predicted, "suggest": self._suggested}[task.command](task)
        return True

    def _trained(self, task: EngineTask) -> None:
        result = task.outcomes[-1].result
        step = task.steps[-1]
        number = int(Path(step.job["out"]).parent.name)
        record = IterationRecord(
            number=number, model_dir=str(result.get("model_dir") or step.job["out"]),
            finished=datetime.now().astimezone().isoformat(timespec="seconds"),
            seconds=float(result.get("seconds") or task.elapsedTime() / 1000.0),
            loss=_float(result.get("final_loss")),
            points_per_class=dict(result.get("points_per_class") or self.c.counts()),
        )  # fmt: skip
        self.c.save_history(upsert(self.c.history, record))
        self.c.dock.set_stage(f"iteration {number} trained" + (f", loss {record.loss:.3f}" if record.loss else ""))
        self.notifier.success(f"iteration {number} trained")

    def _predicted(self, task: EngineTask) -> None:
        record = self._record_of(task)
        files = [_prediction_files(step, outcome) for step, outcome in zip(task.steps, task.outcomes, strict=True)]
        multiple = len(self.c.state.rasters) > 1
        for step, f in zip(task.steps, files, strict=True):
            self.c.results.add_prediction(record.number, f, self.c.state.classes, _label(step, multiple))
        record = with_prediction(record, files)
        shares = map_shares([outcome.result.get("class_pixels") for outcome in task.outcomes if outcome.result])
        if all("bbox" not in step.job for step in task.steps):  # whole rasters: comparable with the earlier maps
            self._point_out_jumps(record.number, {f.raster for f in files}, shares)
            record = replace(record, map_shares=shares)
        matrices = [m for m in task.extras if m is not None]
        if matrices:
            record = replace(record, metrics=scores(sum(matrices), [c.name for c in self.c.state.classes]))
        self.c.save_history(upsert(self.c.history, record))
        painted = f" (map: {shares_summary(shares, self.c.state.classes)})" if shares else ""
        self.c.dock.set_stage(f"iteration {record.number}: prediction added{painted}")

    def _point_out_jumps(self, number: int, rasters: set[str], shares: dict | None) -> None:
        """A warning for each class whose share of the map jumped since the last earlier iteration's map of the same
        rasters and classes (another set of rasters or classes paints other shares)."""
        earlier = latest([r for r in self.c.history if r.number < number and r.map_shares])
        if not (earlier and shares and set(earlier.map_shares) == set(shares)):
            return
        if rasters == {p.raster for p in earlier.predictions}:
            for note in share_jumps(earlier.map_shares, shares):
                self.notifier.warning(note)

    def _suggested(self, task: EngineTask) -> None:
        record = self._record_of(task)
        result = task.outcomes[-1].result or {}
        path = result.get("path") if isinstance(result.get("path"), str) else task.steps[-1].job["out"]
        self.c.results.add_suggestions(record.number, path, "")
        self.c.save_history(upsert(self.c.history, replace(record, suggestions=(path,))))
        self.c.dock.set_stage(f"iteration {record.number}: suggestions added; click one to accept it")

    def _record_of(self, task: EngineTask) -> IterationRecord:
        model = str(task.steps[0].job["model"])
        return next(r for r in self.c.history if r.model_dir == model)


def _score(reference: str, n_classes: int, step: EngineStep, outcome: EngineOutcome):
    """Worker thread: the confusion matrix of one prediction against the reference (files only)."""
    return confusion(_prediction_files(step, outcome).prediction, reference, n_classes)


def _prediction_files(step: EngineStep, outcome: EngineOutcome) -> PredictionFiles:
    result = outcome.result or {}
    out = Path(step.job["out"])
    return PredictionFiles(step.raster, str(result.get("prediction") or out / "prediction.tif"),
                           str(result.get("uncertainty") or out / "uncertainty.tif"))  # fmt: skip


def _label(step: EngineStep, multiple: bool) -> str:
    return Path(step.raster).stem if multiple else ""


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
