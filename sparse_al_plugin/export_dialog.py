"""Asks where and how to export the prediction; returns an ExportRequest."""

from qgis.gui import QgsFileWidget
from qgis.PyQt.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QFormLayout

from .export import ExportRequest


class ExportDialog(QDialog):
    def __init__(self, default_path: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export prediction")
        form = QFormLayout(self)
        self.path_widget = QgsFileWidget()
        self.path_widget.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.path_widget.setFilter("GeoTIFF (*.tif *.tiff)")
        self.path_widget.setFilePath(default_path)
        form.addRow("Raster", self.path_widget)
        self.cog_check = QCheckBox("Cloud Optimized GeoTIFF (COG)")
        self.polygons_check = QCheckBox("Also polygons (GeoPackage next to the raster)")
        form.addRow(self.cog_check)
        form.addRow(self.polygons_check)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def request(self) -> ExportRequest:
        return ExportRequest(self.path_widget.filePath(), self.cog_check.isChecked(), self.polygons_check.isChecked())
