"""Wires the plugin into QGIS (initGui) and undoes all of it (unload). The logic lives in other modules."""

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .controller import Controller
from .dock import SparseAlDock
from .map_tool import PointTool
from .notify import TAG
from .resources import icon_path, resource


class SparseAlPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.toolbar = None
        self.dock = None
        self.tool = None
        self.controller = None
        self.actions: list[QAction] = []

    def initGui(self):  # QGIS's name
        window = self.iface.mainWindow()
        self.dock = SparseAlDock(window)
        self.dock.hide()
        self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.tool = PointTool(self.iface.mapCanvas())
        self.controller = Controller(self.iface, self.dock, self.tool)

        self.dock_action = self._action(QIcon(str(resource("icon.svg"))), "Sparse AL", checkable=True)
        self.dock_action.setToolTip("Sparse AL: click class points, train, predict, suggest")
        self.dock_action.toggled.connect(self.dock.setVisible)
        self.dock.visibilityChanged.connect(self.dock_action.setChecked)
        self.tool_action = self._action(QIcon(icon_path("click")), "Click points", checkable=True)
        self.tool_action.setToolTip("Left click: add a point of the active class (or accept a suggestion); right "
                                    "click: remove the nearest point; 1-9: active class; Ctrl+Z: undo")  # fmt: skip
        self.tool_action.toggled.connect(self._toggle_tool)
        self.tool.setAction(self.tool_action)
        self.dock.set_tool_action(self.tool_action)
        self.settings_action = self._action(QIcon(), "Settings…")
        self.settings_action.triggered.connect(self.controller.open_settings)

        self.toolbar = self.iface.addToolBar(TAG)
        self.toolbar.setObjectName("SparseAlToolbar")
        self.toolbar.addAction(self.dock_action)
        self.toolbar.addAction(self.tool_action)
        for action in self.actions:
            self.iface.addPluginToRasterMenu(TAG, action)

    def _action(self, icon: QIcon, text: str, checkable: bool = False) -> QAction:
        action = QAction(icon, text, self.iface.mainWindow())
        action.setCheckable(checkable)
        self.actions.append(action)
        return action

    def _toggle_tool(self, on: bool) -> None:
        canvas = self.iface.mapCanvas()
        if on:
            canvas.setMapTool(self.tool)
        elif canvas.mapTool() is self.tool:
            canvas.unsetMapTool(self.tool)

    def unload(self):
        if self.controller is not None:
            self.controller.unload()
        canvas = self.iface.mapCanvas()
        if self.tool is not None and canvas.mapTool() is self.tool:
            canvas.unsetMapTool(self.tool)
        for action in self.actions:
            self.iface.removePluginRasterMenu(TAG, action)
            action.deleteLater()
        self.actions.clear()
        if self.toolbar is not None:
            self.toolbar.deleteLater()
        if self.dock is not None:
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
        self.toolbar = self.dock = self.tool = self.controller = None
