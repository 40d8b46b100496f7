"""The session's logic: reacts to the dock's and the map tool's requests, edits points, starts engine tasks and
turns their results into layers and rows of the iteration table."""

import contextlib
import traceback
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QObject
from qgis.PyQt.QtWidgets import QDialog, QMessageBox

from . import classes as cl
from .dock import ClassEdit, RunRequest, SparseAlDock
from .engine_process import EngineOutcome
from .export import export_prediction
from .export_dialog import ExportDialog
from .jobs import EngineStep, bbox_text, predict_job, suggest_job, train_job, warm_start
from .map_tool import MapClick, PointTool
from .metrics import confusion, scores
from .notify import Notifier, UserError, guarded, log
from .points_store import PointStore, create_points_file, nearest_feature, open_points_layer
from .results import ResultLayers, iteration_of, role_of, tag
from .session import IterationRecord, PredictionFiles, Session, SessionState, latest, safe_name, upsert, with_prediction
from .settings import load_settings, save_settings
from .settings_dialog import SettingsDialog
from .styles import style_points, style_prediction
from .tasks import EngineTask, FunctionTask

CONFIRM = True  # tests switch the confirmation dialogs off


class Controller(QObject):
    def __init__(self, iface, dock: SparseAlDock, tool: PointTool):
        super().__init__()
        self.iface = iface
        self.dock = dock
        self.tool = tool
        self.notifier = Notifier(iface)
        self.project = QgsProject.instance()
        self.results = ResultLayers(self.project)
        self.session: Session | None = None
        self.state = SessionState()
        self.history: list[IterationRecord] = []
        self.store: PointStore | None = None
        self.task = None
        self.queue: list[str] = []
        self.settings_dialog: SettingsDialog | None = None
        self.hover_text = ""
        self.export_task: FunctionTask | None = None
        self._connect()

    def _connect(self) -> None:
        d = self.dock
        d.sessionFolderChosen.connect(self.open_session)
        d.rastersChanged.connect(self.set_rasters)
        d.referenceChanged.connect(self.set_reference)
        d.classEdited.connect(self.edit_class)
        d.runRequested.connect(self.run)
        d.cancelRequested.connect(self.cancel)
        d.undoRequested.connect(self.undo)
        d.exportRequested.connect(self.export)
        d.settingsRequested.connect(self.open_settings)
        self.tool.clicked.connect(self.on_click)
        self.tool.hovered.connect(self.on_hover)
        self.tool.classKeyPressed.connect(self.activate_class)
        self.tool.undoRequested.connect(self.undo)
        self.project.layersAdded.connect(self._refresh_rasters)
        self.project.layersRemoved.connect(self._refresh_rasters)
        self.project.layerWillBeRemoved.connect(self._forget_points_layer)

    def unload(self) -> None:
        """Disconnect from QGIS; a running engine is cancelled and its results are dropped."""
        for signal, slot in ((self.project.layersAdded, self._refresh_rasters),
                             (self.project.layersRemoved, self._refresh_rasters),
                             (self.project.layerWillBeRemoved, self._forget_points_layer)):  # fmt: skip
            with contextlib.suppress(TypeError):  # never connected
                signal.disconnect(slot)
        self.queue.clear()
        if self.task is not None:
            self.task.on_finished = lambda task: None
            self.task.cancel()
            self.task = None

    # ----- session -----
    @guarded
    def open_session(self, folder: str) -> None:
        session = Session(folder)
        self.session = session
        self.state = session.load_state()
        self.history = session.load_history()
        for path in self.state.rasters:
            self._raster_layer(path, add=True)
        self._open_points()
        self._restore_results()
        self.dock.set_session(str(session.folder))
        self.dock.set_loop_options(self.state.loop)
        self.dock.set_reference(self._raster_layer(self.state.reference) if self.state.reference else None)
        self._refresh_rasters()
        self._show_classes()
        self.dock.set_history(self.history, self.state.classes)
        session.save_state(self.state)
        self.notifier.info(f"session {session.folder}: {sum(self._counts().values())} point(s), "
                           f"{len(self.history)} iteration(s)")  # fmt: skip

    def _open_points(self) -> None:
        """The session's points layer, when its file exists (it is created at the first click, in the CRS of the
        first raster then chosen)."""
        self.store = None
        for layer in self.project.mapLayers().values():
            if role_of(layer) == "points":
                self.project.removeMapLayer(layer.id())
        if self.session.points_file.exists():
            self._points()

    def _points(self) -> PointStore:
        if self.store is not None:
            return self.store
        path = self._require_session().points_file
        if not path.exists():
            create_points_file(path, self._points_crs())
        layer = tag(open_points_layer(path), "points")
        style_points(layer, self.state.classes)
        self.project.addMapLayer(layer, False)
        self.project.layerTreeRoot().insertLayer(0, layer)
        self.store = PointStore(layer)
        return self.store

    def _forget_points_layer(self, layer_id: str) -> None:
        """The user removed the points layer from the project: the next click opens the file again."""
        if self.store is not None and self.store.layer.id() == layer_id:
            self.store = None

    def _counts(self) -> dict[str, int]:
        return self.store.counts() if self.store is not None else {}

    def _points_crs(self) -> QgsCoordinateReferenceSystem:
        for layer in self._session_rasters():
            if layer.crs().isValid():
                return layer.crs()
        crs = self.iface.mapCanvas().mapSettings().destinationCrs()
        return crs if crs.isValid() else QgsCoordinateReferenceSystem("EPSG:4326")

    def _restore_results(self) -> None:
        """Layers of earlier iterations (when this project does not show them yet), the newest visible."""
        shown = {int(n) for n in self.results.iteration_groups()}
        for record in self.history:
            if record.number in shown:
                continue
            multiple = len(record.predictions) > 1
            for files in record.predictions:
                if Path(files.prediction).exists() and Path(files.uncertainty).exists():
                    self.results.add_prediction(record.number, files, self.state.classes,
                                                Path(files.raster).stem if multiple else "")  # fmt: skip
            for path in record.suggestions:
                if Path(path).exists():
                    self.results.add_suggestions(record.number, path, path, Path(path).stem if multiple else "")
        newest = self.results.newest()
        if newest is not None:
            self.results.show_only(newest)

    def _save_state(self, **changes) -> None:
        self.state = replace(self.state, **changes)
        if self.session is not None:
            self.session.save_state(self.state)

    def _require_session(self) -> Session:
        if self.session is None:
            raise UserError("open a session folder first (Sparse AL dock, Session, Open…)")
        return self.session

    # ----- rasters -----
    @guarded
    def set_rasters(self, layer_ids: list) -> None:
        layers = [self.project.mapLayer(i) for i in layer_ids]
        paths = tuple(layer.source() for layer in layers if isinstance(layer, QgsRasterLayer))
        self._save_state(rasters=paths)

    @guarded
    def set_reference(self, layer_id: str) -> None:
        layer = self.project.mapLayer(layer_id) if layer_id else None
        self._save_state(reference=layer.source() if layer is not None else None)
        self._refresh_rasters()

    def _refresh_rasters(self, *_args) -> None:
        if self.session is None:
            return
        candidates = [layer for layer in self.project.mapLayers().values() if isinstance(layer, QgsRasterLayer)
                      and not role_of(layer) and layer.source() != self.state.reference]  # fmt: skip
        checked = [layer.id() for layer in candidates if layer.source() in self.state.rasters]
        self.dock.set_rasters([(layer.id(), layer.name()) for layer in candidates], checked)

    def _raster_layer(self, path: str, add: bool = False) -> QgsRasterLayer | None:
        for layer in self.project.mapLayers().values():
            if isinstance(layer, QgsRasterLayer) and layer.source() == path:
                return layer
        if not add or not Path(path).exists():
            return None
        layer = QgsRasterLayer(path, Path(path).stem)
        if layer.isValid():
            self.project.addMapLayer(layer, False)
            self.project.layerTreeRoot().addLayer(layer)
            return layer
        return None

    def _session_rasters(self) -> list[QgsRasterLayer]:
        return [layer for layer in (self._raster_layer(p) for p in self.state.rasters) if layer is not None]

    # ----- classes -----
    @guarded
    def edit_class(self, edit: ClassEdit) -> None:
        self._require_session()
        classes = self.state.classes
        if edit.action == "activate":
            self.activate_class(edit.index)
            return
        if edit.action == "add":
            self._set_classes(cl.add_class(classes), len(classes))
        elif edit.action == "rename":
            if classes[edit.index].name == edit.value.strip():
                return
            new = cl.rename_class(classes, edit.index, edit.value)
            if self.store is not None:
                self.store.rename_class(classes[edit.index].name, new[edit.index].name)
            self._set_classes(new, self.state.active_class)
        elif edit.action == "recolor":
            self._set_classes(cl.recolor_class(classes, edit.index, edit.value), self.state.active_class)
        elif edit.action == "remove":
            self._remove_class(edit.index)

    def _remove_class(self, index: int) -> None:
        classes = self.state.classes
        name = classes[index].name
        count = self._counts().get(name, 0)
        new = cl.remove_class(classes, index)
        if count and CONFIRM and QMessageBox.question(
            self.dock, "Remove class", f"Remove class {name} and its {count} point(s)?"
        ) != QMessageBox.StandardButton.Yes:  # fmt: skip
            self._show_classes()
            return
        if self.store is not None:
            self.store.remove_class(name)
        self._set_classes(new, min(self.state.active_class, len(new) - 1))

    def _set_classes(self, classes: cl.Classes, active: int) -> None:
        self._save_state(classes=classes, active_class=active)
        if self.store is not None:
            style_points(self.store.layer, classes)
        for layer in self.results.layers("prediction"):
            if layer.renderer() is not None and len(layer.renderer().classes()) == len(classes):
                style_prediction(layer, classes)
        self._show_classes()

    @guarded
    def activate_class(self, index: int) -> None:
        if 0 <= index < len(self.state.classes):
            self._save_state(active_class=index)
            self._show_classes()
            self.iface.mainWindow().statusBar().showMessage(f"Sparse AL: clicking {self.active_class.name}", 3000)

    @property
    def active_class(self) -> cl.ClassSpec:
        return self.state.classes[self.state.active_class]

    def _show_classes(self) -> None:
        self.dock.set_classes(self.state.classes, self.state.active_class, self._counts())
        self.tool.set_color(self.active_class.color)

    # ----- clicks -----
    @guarded
    def on_click(self, click: MapClick) -> None:
        self._require_session()
        if click.action == "add":
            self._add_point(click)
        else:
            self._remove_point(click)
        self._show_classes()

    def _add_point(self, click: MapClick) -> None:
        store = self._points()
        suggestion = self._suggestion_near(click)
        if suggestion is not None:
            layer, feature = suggestion
            to_points = QgsCoordinateTransform(layer.crs(), store.layer.crs(), self.project)
            store.accept_suggestion(layer, feature, to_points, self.active_class.name, self._next_number())
        else:
            point = self._transform_to(store.layer.crs()).transform(click.point)
            store.add(point, self.active_class.name, self._next_number())

    def _remove_point(self, click: MapClick) -> None:
        if self.store is None:
            return
        feature = nearest_feature(
            self.store.layer, click.point, click.radius, self._transform_to(self.store.layer.crs())
        )
        if feature is None:
            self.iface.mainWindow().statusBar().showMessage("Sparse AL: no point near the click to remove", 3000)
            return
        self.store.remove(feature)

    def _suggestion_near(self, click: MapClick):
        for layer in self.results.layers("suggestions", self.results.newest()):
            node = self.project.layerTreeRoot().findLayer(layer.id())
            if node is None or not node.isVisible():
                continue
            feature = nearest_feature(layer, click.point, click.accept_radius, self._transform_to(layer.crs()))
            if feature is not None:
                return layer, feature
        return None

    @guarded
    def undo(self) -> None:
        if self.store is None:
            return
        done = self.store.undo()
        self.iface.mainWindow().statusBar().showMessage(f"Sparse AL: {done or 'nothing to undo'}", 3000)
        self._show_classes()

    @guarded
    def on_hover(self, point: QgsPointXY) -> None:
        """The class under the cursor in the newest prediction, in the status bar."""
        text = self._class_under(point)
        if text or self.hover_text:
            self.iface.mainWindow().statusBar().showMessage(text, 4000)
        self.hover_text = text

    def _class_under(self, point: QgsPointXY) -> str:
        layers = sorted(self.results.layers("prediction"), key=iteration_of, reverse=True)
        for layer in layers:
            p = self._transform_to(layer.crs()).transform(point)
            if not layer.extent().contains(p):
                continue
            value, ok = layer.dataProvider().sample(p, 1)
            if ok and 0 <= int(value) < len(self.state.classes):
                name = self.state.classes[int(value)].name
                return f"Sparse AL prediction (iteration {iteration_of(layer)}): {name}"
        return ""

    def _transform_to(self, crs: QgsCoordinateReferenceSystem) -> QgsCoordinateTransform:
        return QgsCoordinateTransform(self.iface.mapCanvas().mapSettings().destinationCrs(), crs, self.project)

    def _next_number(self) -> int:
        record = latest(self.history)
        return (record.number if record else 0) + 1

    # ----- the loop -----
    @guarded
    def run(self, request: RunRequest) -> None:
        self._require_session()
        if self.task is not None:
            raise UserError("the engine is busy; wait for it or press Cancel")
        self._save_state(loop=request.loop)
        self.queue = list(request.commands)
        self._start_next()

    def _start_next(self) -> None:
        if not self.queue:
            self.dock.set_busy(False, self.dock.stage_label.text())
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
            self.dock.set_busy(False)
            raise
        after = None
        if command == "predict" and self.state.reference:
            after = partial(_score, self.state.reference, len(self.state.classes))
        task = EngineTask(f"Sparse AL: {command}", config, steps, self._task_finished, after)
        task.progressChanged.connect(self.dock.set_progress)
        task.stageChanged.connect(self.dock.set_stage)
        self.task = task
        self.dock.set_busy(True, f"{command}: starting the engine…")
        QgsApplication.taskManager().addTask(task)

    @guarded
    def cancel(self) -> None:
        self.queue.clear()
        if self.task is not None:
            self.dock.set_stage("cancelling…")
            self.task.cancel()

    def _train_steps(self) -> list[EngineStep]:
        session = self._require_session()
        rasters = self._require_rasters()
        if not sum(self._counts().values()):
            raise UserError("click some points first: at least one per class, on the rasters you train on")
        number = self._next_number()
        previous = latest(self.history)
        init = warm_start(Path(previous.model_dir), self.state.classes) if previous else None
        if previous and init is None:
            log("the class list changed since the last model: this iteration trains a new model")
        settings = load_settings()
        job = train_job([layer.source() for layer in rasters], session.points_file, self.state.classes,
                        session.model_dir(number), init, settings.train)  # fmt: skip
        return [EngineStep("train", job, session.iteration_dir(number) / "train.json", f"train iteration {number}")]

    def _predict_steps(self) -> list[EngineStep]:
        session = self._require_session()
        model = self._require_model()
        run_dir = session.run_dir(model.number, "predict")
        steps = []
        for i, layer in enumerate(self._require_rasters()):
            bbox = self._visible_bbox(layer) if self.state.loop.extent == "visible" else None
            if bbox == "":
                continue  # the raster is outside the visible extent
            out = run_dir / f"{i + 1:02d}_{safe_name(layer.name())}"
            job = predict_job(Path(model.model_dir), layer.source(), out, bbox)
            steps.append(EngineStep("predict", job, out.with_suffix(".json"), f"predict {layer.name()}",
                                    layer.source()))  # fmt: skip
        if not steps:
            raise UserError("none of the session's rasters is in the visible extent; pan to one or predict whole")
        return steps

    def _suggest_steps(self) -> list[EngineStep]:
        session = self._require_session()
        model = self._require_model()
        run_dir = session.run_dir(model.number, "suggest")
        loop = self.state.loop
        steps = []
        for i, layer in enumerate(self._require_rasters()):
            out = run_dir / f"{i + 1:02d}_{safe_name(layer.name())}.gpkg"
            job = suggest_job(Path(model.model_dir), layer.source(), out, loop.strategy, loop.budget)
            steps.append(EngineStep("suggest", job, out.with_suffix(".json"), f"suggest {layer.name()}",
                                    layer.source()))  # fmt: skip
        return steps

    def _require_rasters(self) -> list[QgsRasterLayer]:
        rasters = self._session_rasters()
        if not rasters:
            raise UserError("tick the raster layer(s) to work on in the Sparse AL dock")
        return rasters

    def _require_model(self) -> IterationRecord:
        record = latest(self.history)
        if record is None or not Path(record.model_dir).exists():
            raise UserError("there is no trained model yet; press Train (or Next iteration) first")
        return record

    def _visible_bbox(self, layer: QgsRasterLayer) -> str:
        """The visible map extent in the raster's CRS, clipped to the raster ("" when they do not meet)."""
        canvas = self.iface.mapCanvas()
        extent = self._transform_to(layer.crs()).transformBoundingBox(canvas.extent())
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
            self.dock.set_busy(False, self.dock.stage_label.text())

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
            self.dock.set_stage("failed")
            return False
        if task.was_cancelled:
            self.notifier.info(f"{task.command} cancelled; earlier results are intact")
            self.dock.set_stage("cancelled")
            return False
        if task.failed_outcome is not None:
            outcome = task.failed_outcome
            self.notifier.error(f"{task.command} failed: {outcome.message()}", outcome.details())
            self.dock.set_stage("failed: " + outcome.message())
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
            points_per_class=dict(result.get("points_per_class") or self._counts()),
        )  # fmt: skip
        self._save_history(upsert(self.history, record))
        self.dock.set_stage(f"iteration {number} trained" + (f", loss {record.loss:.3f}" if record.loss else ""))
        self.notifier.success(f"iteration {number} trained")

    def _predicted(self, task: EngineTask) -> None:
        record = self._record_of(task)
        files = [_prediction_files(step, outcome) for step, outcome in zip(task.steps, task.outcomes, strict=True)]
        multiple = len(self.state.rasters) > 1
        for step, f in zip(task.steps, files, strict=True):
            self.results.add_prediction(record.number, f, self.state.classes, _label(step, multiple))
        record = with_prediction(record, files)
        matrices = [m for m in task.extras if m is not None]
        if matrices:
            record = replace(record, metrics=scores(sum(matrices), [c.name for c in self.state.classes]))
        self._save_history(upsert(self.history, record))
        self.dock.set_stage(f"iteration {record.number}: prediction added")

    def _suggested(self, task: EngineTask) -> None:
        record = self._record_of(task)
        multiple = len(self.state.rasters) > 1
        paths = []
        for step, outcome in zip(task.steps, task.outcomes, strict=True):
            path = str(outcome.result.get("suggestions") or step.job["out"])
            self.results.add_suggestions(record.number, path, step.raster, _label(step, multiple))
            paths.append(path)
        self._save_history(upsert(self.history, replace(record, suggestions=tuple(paths))))
        self.dock.set_stage(f"iteration {record.number}: suggestions added; click on one to accept it")

    def _record_of(self, task: EngineTask) -> IterationRecord:
        model = str(task.steps[0].job["model"])
        return next(r for r in self.history if r.model_dir == model)

    def _save_history(self, records: list[IterationRecord]) -> None:
        self.history = records
        self.session.save_history(records)
        self.dock.set_history(records, self.state.classes)

    # ----- export and settings -----
    @guarded
    def export(self) -> None:
        session = self._require_session()
        record = latest(self.history)
        if record is None or not record.predictions:
            raise UserError("there is no prediction to export yet; press Predict first")
        dialog = ExportDialog(str(session.folder / f"prediction_{record.number:03d}.tif"), self.iface.mainWindow())
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.start_export([p.prediction for p in record.predictions], dialog.request())

    def start_export(self, predictions: list[str], request) -> FunctionTask:
        names = [c.name for c in self.state.classes]
        task = FunctionTask("Sparse AL: export", lambda: export_prediction(predictions, request, names),
                            self._exported)  # fmt: skip
        self.export_task = task
        QgsApplication.taskManager().addTask(task)
        return task

    @guarded
    def _exported(self, task: FunctionTask) -> None:
        self.export_task = None
        if task.exception is not None:
            self.notifier.error(f"export failed: {task.exception}", task.details)
        else:
            self.notifier.success("exported " + ", ".join(task.result))

    @guarded
    def open_settings(self) -> None:
        dialog = SettingsDialog(load_settings(), self.notifier, self.iface.mainWindow())
        self.settings_dialog = dialog
        if dialog.exec() == QDialog.DialogCode.Accepted:
            save_settings(dialog.result_settings())


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
