"""Layer styles: points and predictions take the class colours; uncertainty and suggestions load QML styles."""

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsMarkerSymbol,
    QgsPalettedRasterRenderer,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

from .classes import Classes
from .resources import resource

PREDICTION_OPACITY = 0.65


def points_renderer(classes: Classes) -> QgsCategorizedSymbolRenderer:
    categories = []
    for spec in classes:
        symbol = QgsMarkerSymbol.createSimple({"name": "circle", "color": spec.color, "size": "3.2",
                                               "outline_color": "#ffffff", "outline_width": "0.5"})  # fmt: skip
        categories.append(QgsRendererCategory(spec.name, symbol, spec.name))
    unknown = QgsMarkerSymbol.createSimple({"name": "cross2", "color": "#ff00ff", "size": "3.5",
                                            "outline_color": "#ff00ff", "outline_width": "0.6"})  # fmt: skip
    categories.append(QgsRendererCategory(None, unknown, "other value (not a class)"))
    return QgsCategorizedSymbolRenderer("class", categories)


def style_points(layer: QgsVectorLayer, classes: Classes) -> None:
    layer.setRenderer(points_renderer(classes))
    layer.triggerRepaint()


def style_prediction(layer: QgsRasterLayer, classes: Classes) -> None:
    entries = [QgsPalettedRasterRenderer.Class(k, QColor(spec.color), spec.name) for k, spec in enumerate(classes)]
    renderer = QgsPalettedRasterRenderer(layer.dataProvider(), 1, entries)
    renderer.setOpacity(PREDICTION_OPACITY)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def load_style(layer, name: str) -> None:
    """Apply resources/styles/<name>.qml."""
    message, ok = layer.loadNamedStyle(str(resource(f"styles/{name}.qml")))
    if not ok:
        raise OSError(f"could not load the {name} style: {message}")
    layer.triggerRepaint()
