"""The session's logic: reacts to the dock's and the map tool's requests, edits points, starts engine tasks and
turns their results into layers and rows of the iteration table."""

import contextlib
from dataclasses import replace
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
from .dock import ClassEdit, SparseAlDock
from .export import export_prediction
from .export_dialog import ExportDialog
from .loop import Loop
from .map_tool import MapClick, PointTool
from .notify import Notifier, UserError, guarded
from .points_store import PointStore, create_points_file, nearest_feature, open_points_layer
from .results import ResultLayers, iteration_of, role_of, tag
from .session import IterationRecord, Session, SessionState, latest
from .settings import load_settings, save_settings
from .settings_dialog import SettingsDialog
from .styles import style_points, style_prediction
from .tasks import FunctionTask

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
        self.loop = Loop(self)
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
        d.runRequested.connect(self.loop.run)
        d.cancelRequested.connect(self.loop.cancel)
        d.undoRequested.connect(self.undo)
        d.exportRequested.connect(self.export)
        d.settingsRequested.connect(self.open_settings)
        self.tool.clicked.connect(self.on_click)
        self.tool.hovered.connect(self.on_hover)
        self.tool.classKeyPressed.connect(self.activate_class)
        self.tool.undoRequested.connect(self.undo)
        self.project.layersAdded.connect(self.refresh_rasters)
        self.project.layersRemoved.connect(self.refresh_rasters)
        self.project.layerWillBeRemoved.connect(self._forget_points_layer)

    def unload(self) -> None:
        """Disconnect from QGIS; a running engine is cancelled and its results are dropped."""
        for signal, slot in ((self.project.layersAdded, self.refresh_rasters),
                             (self.project.layersRemoved, self.refresh_rasters),
                             (self.project.layerWillBeRemoved, self._forget_points_layer)):  # fmt: skip
            with contextlib.suppress(TypeError):  # never connected
                signal.disconnect(slot)
        self.loop.unload()

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
        self.refresh_rasters()
        self._show_classes()
        self.dock.set_history(self.history, self.state.classes)
        session.save_state(self.state)
        self.notifier.info(f"session {session.folder}: {sum(self.counts().values())} point(s), "
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
        path = self.require_session().points_file
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

    def counts(self) -> dict[str, int]:
        return self.store.counts() if self.store is not None else {}

    def _points_crs(self) -> QgsCoordinateReferenceSystem:
        for layer in self.session_rasters():
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
                    self.results.add_suggestions(record.number, path, "")
        newest = self.results.newest()
        if newest is not None:
            self.results.show_only(newest)

    def require_session(self) -> Session:
        if self.session is None:
            raise UserError("open a session folder first (Sparse AL dock, Session, Open…)")
        return self.session

    # ----- rasters -----
    @guarded
    def set_rasters(self, layer_ids: list) -> None:
        layers = [self.project.mapLayer(i) for i in layer_ids]
        paths = tuple(layer.source() for layer in layers if isinstance(layer, QgsRasterLayer))
        self.save_state(rasters=paths)

    @guarded
    def set_reference(self, layer_id: str) -> None:
        layer = self.project.mapLayer(layer_id) if layer_id else None
        self.save_state(reference=layer.source() if layer is not None else None)
        self.refresh_rasters()

    def refresh_rasters(self, *_args) -> None:
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

    def session_rasters(self) -> list[QgsRasterLayer]:
        return [layer for layer in (self._raster_layer(p) for p in self.state.rasters) if layer is not None]

    # ----- classes -----
    @guarded
    def edit_class(self, edit: ClassEdit) -> None:
        self.require_session()
        classes = self.state.classes
        if edit.action == "activate":
            self.activate_class(edit.index)
            return
        if edit.action == "add":
            self.set_classes(cl.add_class(classes), len(classes))
        elif edit.action == "rename":
            if classes[edit.index].name == edit.value.strip():
                return
            new = cl.rename_class(classes, edit.index, edit.value)
            if self.store is not None:
                self.store.rename_class(classes[edit.index].name, new[edit.index].name)
            self.set_classes(new, self.state.active_class)
        elif edit.action == "recolor":
            self.set_classes(cl.recolor_class(classes, edit.index, edit.value), self.state.active_class)
        elif edit.action == "reweight":
            self._reweight_class(edit.index, edit.value)
        elif edit.action == "remove":
            self._remove_class(edit.index)

    def _reweight_class(self, index: int, value: str) -> None:
        try:
            new = cl.reweight_class(self.state.classes, index, value)
        except cl.ClassListError:
            self._show_classes()  # a refused weight goes back to the saved one
            raise
        spec, changed = new[index], new[index].map_setting() != self.state.classes[index].map_setting()
        self.set_classes(new, self.state.active_class)  # shows the setting as saved ("x1.5" becomes "1.5")
        if changed and spec.share is not None:
            self.notifier.info(f"{spec.name} will cover about {spec.share:g}% of the map: press Predict to see it "
                               "(no retraining)")  # fmt: skip
        elif changed:
            self.notifier.info(f"{spec.name} weighs {spec.weight:g}: press Predict to see it (no retraining)")

    def _remove_class(self, index: int) -> None:
        classes = self.state.classes
        name = classes[index].name
        count = self.counts().get(name, 0)
        new = cl.remove_class(classes, index)
        if count and CONFIRM and QMessageBox.question(
            self.dock, "Remove class", f"Remove class {name} and its {count} point(s)?"
        ) != QMessageBox.StandardButton.Yes:  # fmt: skip
            self._show_classes()
            return
        if self.store is not None:
            self.store.remove_class(name)
        self.set_classes(new, min(self.state.active_class, len(new) - 1))

    def set_classes(self, classes: cl.Classes, active: int) -> None:
        self.save_state(classes=classes, active_class=active)
        if self.store is not None:
            style_points(self.store.layer, classes)
        for layer in self.results.layers("prediction"):
            if layer.renderer() is not None and len(layer.renderer().classes()) == len(classes):
                style_prediction(layer, classes)
        self._show_classes()

    @guarded
    def activate_class(self, index: int) -> None:
        if 0 <= index < len(self.state.classes):
            self.save_state(active_class=index)
            self._show_classes()
            self.iface.mainWindow().statusBar().showMessage(f"Sparse AL: clicking {self.active_class.name}", 3000)

    @property
    def active_class(self) -> cl.ClassSpec:
        return self.state.classes[self.state.active_class]

    def _show_classes(self) -> None:
        self.dock.set_classes(self.state.classes, self.state.active_class, self.counts())
        self.tool.set_color(self.active_class.color)

    # ----- clicks -----
    @guarded
    def on_click(self, click: MapClick) -> None:
        self.require_session()
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
            store.accept_suggestion(layer, feature, to_points, self.active_class.name, self.next_number())
        else:
            point = self.transform_to(store.layer.crs()).transform(click.point)
            store.add(point, self.active_class.name, self.next_number())

    def _remove_point(self, click: MapClick) -> None:
        if self.store is None:
            return
        feature = nearest_feature(
            self.store.layer, click.point, click.radius, self.transform_to(self.store.layer.crs())
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
            feature = nearest_feature(layer, click.point, click.accept_radius, self.transform_to(layer.crs()))
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
            p = self.transform_to(layer.crs()).transform(point)
            if not layer.extent().contains(p):
                continue
            value, ok = layer.dataProvider().sample(p, 1)
            if ok and 0 <= int(value) < len(self.state.classes):
                name = self.state.classes[int(value)].name
                return f"Sparse AL prediction (iteration {iteration_of(layer)}): {name}"
        return ""

    def transform_to(self, crs: QgsCoordinateReferenceSystem) -> QgsCoordinateTransform:
        """From the map canvas's CRS to ``crs``."""
        return QgsCoordinateTransform(self.iface.mapCanvas().mapSettings().destinationCrs(), crs, self.project)

    def next_number(self) -> int:
        """The number of the iteration the next training makes (and that new points belong to)."""
        record = latest(self.history)
        return (record.number if record else 0) + 1

    def save_state(self, **changes) -> None:
        self.state = replace(self.state, **changes)
        if self.session is not None:
            self.session.save_state(self.state)

    def save_history(self, records: list[IterationRecord]) -> None:
        self.history = records
        self.session.save_history(records)
        self.dock.set_history(records, self.state.classes)

    # ----- export and settings -----
    @guarded
    def export(self) -> None:
        session = self.require_session()
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
