"""Loading and unloading the plugin; what it imports; the dock's typed requests; settings."""

import ast
import subprocess
import sys

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QEvent
from qgis.PyQt.QtWidgets import QDockWidget, QToolBar

from sparse_al_plugin.dock import ClassEdit, RunRequest, SparseAlDock
from sparse_al_plugin.jobs import TrainOptions
from sparse_al_plugin.session import LoopOptions
from sparse_al_plugin.settings import PluginSettings, load_settings, save_settings
from tests.plugin.conftest import ROOT


def test_init_gui_adds_and_unload_removes_everything(iface):
    from sparse_al_plugin.plugin import SparseAlPlugin

    window = iface.mainWindow()
    QgsApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # what earlier tests unloaded
    before = len(window.findChildren(QToolBar)), len(window.findChildren(QDockWidget))
    plugin = SparseAlPlugin(iface)
    plugin.initGui()
    assert plugin.toolbar.actions() == [plugin.dock_action, plugin.tool_action]
    plugin.tool_action.setChecked(True)
    assert iface.mapCanvas().mapTool() is plugin.tool
    assert plugin.dock.isHidden()
    plugin.dock_action.setChecked(True)
    assert not plugin.dock.isHidden()  # the toolbar button shows the dock
    plugin.unload()
    QgsApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # deleteLater
    QgsApplication.processEvents()
    assert iface.mapCanvas().mapTool() is None
    assert (len(window.findChildren(QToolBar)), len(window.findChildren(QDockWidget))) == before
    assert plugin.controller is None and plugin.actions == []


def test_the_plugin_never_imports_torch_or_the_engine():
    code = ("import sys, sparse_al_plugin.plugin, sparse_al_plugin.controller; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'engine', 'rasterio', 'geopandas')); "
            "print(bad); sys.exit(1 if bad else 0)")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_plugin_sources_import_qt_only_through_qgis_pyqt():
    banned = {"PyQt5", "PyQt6", "sip", "torch", "engine", "rasterio", "geopandas"}
    for path in (ROOT / "sparse_al_plugin").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & banned, f"{path.name} imports {names}"


def test_dock_emits_typed_requests(qgis_iface):
    dock = SparseAlDock()
    dock.set_session("/tmp/s")
    runs, edits = [], []
    dock.runRequested.connect(runs.append)
    dock.classEdited.connect(edits.append)
    dock.set_loop_options(LoopOptions("margin", 7, "visible"))
    dock.next_button.click()
    dock.train_button.click()
    assert runs == [RunRequest(("train", "predict", "suggest"), LoopOptions("margin", 7, "visible")),
                    RunRequest(("train",), LoopOptions("margin", 7, "visible"))]  # fmt: skip
    from sparse_al_plugin.classes import DEFAULT_CLASSES

    dock.set_classes(DEFAULT_CLASSES, 1, {"class_1": 4})
    assert edits == []  # showing state emits nothing
    assert dock.class_table.item(1, 3).text() == "4"
    dock.add_class_button.click()
    dock.class_table.item(1, 2).setText("car")
    dock.class_table.selectRow(0)
    assert edits == [ClassEdit("add"), ClassEdit("rename", 1, "car"), ClassEdit("activate", 0)]


def test_dock_disables_the_loop_while_busy(qgis_iface):
    dock = SparseAlDock()
    assert not dock.train_button.isEnabled()  # no session yet
    dock.set_session("/tmp/s")
    assert dock.next_button.isEnabled() and not dock.cancel_button.isEnabled()
    dock.set_busy(True, "train")
    assert not dock.next_button.isEnabled() and dock.cancel_button.isEnabled()


def test_settings_round_trip():
    settings = PluginSettings("/env/bin/python", "engine", "/p", "cpu", TrainOptions(5, 128, 4, 16, "resnet34"),
                              precision="bf16")  # fmt: skip
    save_settings(settings, QgsSettings())
    assert load_settings(QgsSettings()) == settings
