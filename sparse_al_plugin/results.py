"""The engine's outputs as map layers: a group per iteration (prediction, uncertainty, suggestions), the newest
visible and the older ones kept but hidden. Main thread only."""

from pathlib import Path

from qgis.core import QgsLayerTreeGroup, QgsLayerTreeLayer, QgsMapLayer, QgsProject, QgsRasterLayer, QgsVectorLayer

from .classes import Classes
from .session import PredictionFiles
from .styles import load_style, style_prediction

ROLE = "sparse_al/role"
ITERATION = "sparse_al/iteration"
RASTER = "sparse_al/raster"
GROUP = "sparse_al/group"


def tag(layer: QgsMapLayer, role: str, iteration: int | None = None, raster: str = "") -> QgsMapLayer:
    layer.setCustomProperty(ROLE, role)
    if iteration is not None:
        layer.setCustomProperty(ITERATION, int(iteration))
    if raster:
        layer.setCustomProperty(RASTER, raster)
    return layer


def role_of(layer: QgsMapLayer) -> str:
    return str(layer.customProperty(ROLE, "") or "")


def layers_with_role(role: str, project: QgsProject | None = None) -> list[QgsMapLayer]:
    project = project or QgsProject.instance()
    return [layer for layer in project.mapLayers().values() if role_of(layer) == role]


def iteration_of(layer: QgsMapLayer) -> int:
    return int(layer.customProperty(ITERATION, -1) or -1)


class ResultLayers:
    def __init__(self, project: QgsProject | None = None):
        self.project = project or QgsProject.instance()

    @property
    def root(self) -> QgsLayerTreeGroup:
        return self.project.layerTreeRoot()

    def group(self, number: int) -> QgsLayerTreeGroup:
        for child in self.root.children():
            if isinstance(child, QgsLayerTreeGroup) and child.customProperty(GROUP) == number:
                return child
        group = self.root.insertGroup(self._group_position(number), f"Iteration {number}")
        group.setCustomProperty(GROUP, number)
        return group

    def iteration_groups(self) -> dict[int, QgsLayerTreeGroup]:
        return {int(child.customProperty(GROUP)): child for child in self.root.children()
                if isinstance(child, QgsLayerTreeGroup) and child.customProperty(GROUP) is not None}  # fmt: skip

    def _group_position(self, number: int) -> int:
        """Below the points layer, above older iterations."""
        children = self.root.children()
        position = 0
        for i, child in enumerate(children):
            if (
                isinstance(child, QgsLayerTreeLayer)
                and child.layer() is not None
                and role_of(child.layer()) == "points"
            ):
                position = i + 1
        for i, child in enumerate(children):
            if isinstance(child, QgsLayerTreeGroup) and child.customProperty(GROUP) is not None:
                if int(child.customProperty(GROUP)) < number:
                    return i
                position = i + 1
        return position

    def add_prediction(self, number: int, files: PredictionFiles, classes: Classes,
                       label: str = "") -> tuple[QgsRasterLayer, QgsRasterLayer]:  # fmt: skip
        suffix = f" · {label}" if label else ""
        prediction = QgsRasterLayer(files.prediction, f"prediction{suffix}")
        uncertainty = QgsRasterLayer(files.uncertainty, f"uncertainty{suffix}")
        for layer, path in ((prediction, files.prediction), (uncertainty, files.uncertainty)):
            if not layer.isValid():
                raise OSError(f"the engine's output {path} cannot be opened as a raster")
        style_prediction(prediction, classes)
        load_style(uncertainty, "uncertainty")
        self._replace(number, "uncertainty", files.raster, tag(uncertainty, "uncertainty", number, files.raster))
        self._replace(number, "prediction", files.raster, tag(prediction, "prediction", number, files.raster))
        self._node(uncertainty).setItemVisibilityChecked(False)
        self.show_only(number)
        return prediction, uncertainty

    def add_suggestions(self, number: int, path: str, raster: str, label: str = "") -> QgsVectorLayer:
        suffix = f" · {label}" if label else ""
        superpixels = QgsVectorLayer(f"{path}|layername=superpixels", f"superpixels{suffix}", "ogr")
        suggestions = QgsVectorLayer(f"{path}|layername=suggestions", f"suggestions{suffix}", "ogr")
        if not suggestions.isValid():
            raise OSError(f"the engine's output {path} has no layer named suggestions")
        load_style(suggestions, "suggestions")
        if superpixels.isValid():
            load_style(superpixels, "superpixels")
            self._replace(number, "superpixels", raster, tag(superpixels, "superpixels", number, raster))
            self._node(superpixels).setItemVisibilityChecked(False)
        self._replace(number, "suggestions", raster, tag(suggestions, "suggestions", number, raster), top=True)
        self.show_only(number)
        return suggestions

    def show_only(self, number: int) -> None:
        """The newest iteration's group visible and expanded; the others hidden and collapsed."""
        for n, group in self.iteration_groups().items():
            group.setItemVisibilityChecked(n == number)
            group.setExpanded(n == number)

    def layers(self, role: str, number: int | None = None) -> list[QgsMapLayer]:
        found = [layer for layer in layers_with_role(role, self.project)
                 if number is None or iteration_of(layer) == number]  # fmt: skip
        return found

    def newest(self) -> int | None:
        groups = self.iteration_groups()
        return max(groups) if groups else None

    def _replace(self, number: int, role: str, raster: str, layer: QgsMapLayer, top: bool = False) -> None:
        for old in self.layers(role, number):
            if str(old.customProperty(RASTER, "")) == raster:
                self.project.removeMapLayer(old.id())
        self.project.addMapLayer(layer, False)
        group = self.group(number)
        if top:
            group.insertLayer(0, layer)
        else:
            group.addLayer(layer)

    def _node(self, layer: QgsMapLayer) -> QgsLayerTreeLayer:
        return self.root.findLayer(layer.id())


def path_exists(path: str) -> bool:
    return bool(path) and Path(path).exists()
