"""Wires the plugin into QGIS (initGui) and undoes all of it (unload). The logic lives in other modules."""

from qgis.PyQt.QtWidgets import QAction


class SparseAlPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.action = None

    def initGui(self):
        self.action = QAction("Sparse AL", self.iface.mainWindow())
        self.iface.addPluginToRasterMenu("Sparse AL", self.action)

    def unload(self):
        if self.action is not None:
            self.iface.removePluginRasterMenu("Sparse AL", self.action)
            self.action = None
