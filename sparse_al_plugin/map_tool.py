"""The clicking tool: a small state machine over canvas events that emits typed requests; the controller acts."""

from dataclasses import dataclass

from qgis.core import QgsPointXY
from qgis.gui import QgsMapCanvas, QgsMapMouseEvent, QgsMapTool
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QCursor, QKeyEvent, QPainter, QPen, QPixmap

_CTRL_ALT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
PICK_RADIUS_PX = 6  # right click removes the nearest point within this many screen pixels
ACCEPT_RADIUS_PX = 10  # a left click this close to a suggestion accepts it


@dataclass(frozen=True)
class MapClick:
    """A click in map (canvas) coordinates; ``radius`` is the pick radius in map units."""

    action: str  # "add" (left button) or "remove" (right button)
    point: QgsPointXY
    radius: float
    accept_radius: float


class PointTool(QgsMapTool):
    clicked = pyqtSignal(object)  # MapClick
    hovered = pyqtSignal(object)  # QgsPointXY in map coordinates
    classKeyPressed = pyqtSignal(int)
    undoRequested = pyqtSignal()

    def __init__(self, canvas: QgsMapCanvas):
        super().__init__(canvas)
        self.set_color("#e31a1c")

    def set_color(self, color: str) -> None:
        """The cursor: a crosshair in the active class's colour."""
        self.setCursor(_crosshair(QColor(color)))

    def canvasReleaseEvent(self, event: QgsMapMouseEvent) -> None:
        button = event.button()
        if button == Qt.MouseButton.LeftButton:
            self._emit_click("add", event)
        elif button == Qt.MouseButton.RightButton:
            self._emit_click("remove", event)

    def canvasMoveEvent(self, event: QgsMapMouseEvent) -> None:
        self.hovered.emit(event.mapPoint())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier and key == Qt.Key.Key_Z:
            self.undoRequested.emit()
            event.accept()
        elif Qt.Key.Key_1 <= key <= Qt.Key.Key_9 and not event.modifiers() & (
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
        ):
            self.classKeyPressed.emit(key - Qt.Key.Key_1)
            event.accept()
        else:
            event.ignore()

    def _emit_click(self, action: str, event: QgsMapMouseEvent) -> None:
        units = self.canvas().mapUnitsPerPixel()
        self.clicked.emit(MapClick(action, event.mapPoint(), PICK_RADIUS_PX * units, ACCEPT_RADIUS_PX * units))


def _crosshair(color: QColor) -> QCursor:
    size = 25
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(0, 0, 0, 0))
    painter = QPainter(pixmap)
    mid = size // 2
    for pen_color, width in ((QColor(255, 255, 255), 4), (color, 2)):
        painter.setPen(QPen(pen_color, width))
        painter.drawLine(mid, 1, mid, mid - 4)
        painter.drawLine(mid, mid + 4, mid, size - 2)
        painter.drawLine(1, mid, mid - 4, mid)
        painter.drawLine(mid + 4, mid, size - 2, mid)
    painter.end()
    return QCursor(pixmap, mid, mid)
