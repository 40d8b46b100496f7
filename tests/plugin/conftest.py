"""Fixtures for the plugin's tests: the plugin loaded into pytest-qgis's iface, a fake engine, tiny rasters."""

import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from qgis.core import QgsApplication, QgsCoordinateReferenceSystem, QgsProject, QgsRasterLayer, QgsRectangle
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt
from qgis.PyQt.QtGui import QKeyEvent

from sparse_al_plugin import controller as controller_module
from sparse_al_plugin.settings import PluginSettings, save_settings
from tests.fixtures import write_raster

ROOT = Path(__file__).resolve().parents[2]
FAKE_MODULE = "tests.plugin.fake_engine"


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Let Qt run (tasks finish, signals arrive) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        QgsApplication.processEvents()
        time.sleep(0.02)


def wait_idle(plugin, timeout: float = 60.0) -> None:
    """Until the controller has no running task and no queued command."""
    wait_for(lambda: not plugin.controller.loop.busy, timeout, "the engine tasks")
    wait_for(lambda: QgsApplication.taskManager().countActiveTasks() == 0, timeout, "the task manager")
    QgsApplication.processEvents()


def mouse(canvas, x: int, y: int, button=Qt.MouseButton.LeftButton, kind=QEvent.Type.MouseButtonRelease):
    return QgsMapMouseEvent(canvas, kind, QPoint(x, y), button)


def click(plugin, x: int, y: int, button=Qt.MouseButton.LeftButton) -> None:
    """A release of ``button`` at canvas pixel (x, y), as the canvas hands it to the active map tool."""
    plugin.tool.canvasReleaseEvent(mouse(plugin.iface.mapCanvas(), x, y, button))


def key(plugin, key_code, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    plugin.tool.keyPressEvent(QKeyEvent(QEvent.Type.KeyPress, key_code, modifiers))


def messages(iface, level) -> list[str]:
    return iface.messageBar().get_messages(level)


@pytest.fixture(autouse=True, scope="session")
def _pytest_qgis_teardown_connection(qgis_app):
    """pytest-qgis ends the session by disconnecting QgsProject.legendLayersAdded from processEvents; in long runs
    that connection (a PyQt proxy for a static method) is sometimes gone by then, which fails its teardown. Make sure
    it is there to disconnect."""
    yield
    signal = QgsProject.instance().legendLayersAdded
    with contextlib.suppress(TypeError):
        signal.disconnect(qgis_app.processEvents)
    signal.connect(qgis_app.processEvents)


@pytest.fixture
def iface(qgis_iface, qgis_new_project, monkeypatch):
    """pytest-qgis's iface with the few QgisInterface methods its stand-in lacks, and an empty message bar."""
    monkeypatch.setattr(qgis_iface, "addPluginToRasterMenu", lambda name, action: None, raising=False)
    monkeypatch.setattr(qgis_iface, "removePluginRasterMenu", lambda name, action: None, raising=False)
    monkeypatch.setattr(qgis_iface, "removeDockWidget", lambda dock: None, raising=False)
    for texts in qgis_iface.messageBar().messages.values():
        texts.clear()
    return qgis_iface


@pytest.fixture
def fake_engine(monkeypatch, tmp_path):
    """The plugin's engine is tests/plugin/fake_engine.py; returns the file that records each call's job."""
    record = tmp_path / "engine_calls.jsonl"
    monkeypatch.setenv("FAKE_ENGINE_RECORD", str(record))
    monkeypatch.setenv("FAKE_ENGINE_MODE", "ok")
    save_settings(PluginSettings(python=sys.executable, module=FAKE_MODULE, path=str(ROOT)))
    monkeypatch.setattr(controller_module, "CONFIRM", False)
    return record


@pytest.fixture
def plugin(iface, fake_engine):
    from sparse_al_plugin.plugin import SparseAlPlugin

    instance = SparseAlPlugin(iface)
    instance.initGui()
    yield instance
    wait_idle(instance)
    instance.unload()
    QgsProject.instance().removeAllMapLayers()


@pytest.fixture
def image(tmp_path) -> Path:
    """A 64 x 64 three-band raster in UTM 33N, 1 m pixels, top-left corner at (500000, 4650000)."""
    rng = np.random.default_rng(1)
    return write_raster(tmp_path / "image.tif", rng.integers(0, 255, (3, 64, 64), dtype=np.uint8))


def show_raster(iface, path: Path, project_crs: str = "EPSG:32633") -> QgsRasterLayer:
    """Add the raster and frame the canvas on it, with the canvas in ``project_crs``."""
    layer = QgsRasterLayer(str(path), path.stem)
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    canvas = iface.mapCanvas()
    iface.mainWindow().setCentralWidget(canvas)
    iface.mainWindow().resize(600, 600)
    iface.mainWindow().show()
    crs = QgsCoordinateReferenceSystem(project_crs)
    QgsProject.instance().setCrs(crs)
    canvas.setDestinationCrs(crs)
    QgsApplication.processEvents()
    canvas.setExtent(_in_crs(layer.extent(), layer.crs(), crs))
    canvas.refresh()
    QgsApplication.processEvents()
    return layer


def _in_crs(rect: QgsRectangle, src, dst) -> QgsRectangle:
    from qgis.core import QgsCoordinateTransform

    return QgsCoordinateTransform(src, dst, QgsProject.instance()).transformBoundingBox(rect)


def open_session(plugin, folder: Path, rasters: list[QgsRasterLayer]) -> None:
    plugin.controller.open_session(str(folder))
    plugin.controller.set_rasters([layer.id() for layer in rasters])
    plugin.tool_action.setChecked(True)
