"""The session's points: a GeoPackage layer (class, iteration, origin, time) written through at every edit.

Edits go straight to the data provider, so each click is on disk at once and the layer stays editable with QGIS's
own tools. An undo stack of the plugin's own edits backs Ctrl+Z.
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureRequest,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsVectorFileWriter,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QVariant

LAYER_NAME = "points"
FIELDS = (("class", QVariant.Type.String), ("iteration", QVariant.Type.Int), ("origin", QVariant.Type.String),
          ("time", QVariant.Type.String))  # fmt: skip


class PointsFileError(OSError):
    """The points file cannot be created, opened or written; the message names it."""


def create_points_file(path: Path, crs: QgsCoordinateReferenceSystem) -> None:
    fields = QgsFields()
    for name, kind in FIELDS:
        fields.append(QgsField(name, kind))
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = LAYER_NAME
    writer = QgsVectorFileWriter.create(str(path), fields, QgsWkbTypes.Type.Point, crs,
                                        QgsProject.instance().transformContext(), options)  # fmt: skip
    error = writer.hasError()
    message = writer.errorMessage()
    del writer  # closes the file
    if error != QgsVectorFileWriter.WriterError.NoError:
        raise PointsFileError(f"could not create the points file {path}: {message}")


def open_points_layer(path: Path, name: str = "Sparse AL points") -> QgsVectorLayer:
    layer = QgsVectorLayer(f"{path}|layername={LAYER_NAME}", name, "ogr")
    if not layer.isValid():
        raise PointsFileError(f"could not open the points file {path}; check it is a GeoPackage with a layer "
                              f"named {LAYER_NAME}")  # fmt: skip
    missing = [n for n, _ in FIELDS if layer.fields().indexOf(n) < 0]
    if missing:
        raise PointsFileError(f"{path} lacks the field(s) {', '.join(missing)}; choose another session folder")
    return layer


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def nearest_feature(layer: QgsVectorLayer, center: QgsPointXY, radius: float,
                    to_layer: QgsCoordinateTransform) -> QgsFeature | None:  # fmt: skip
    """The layer's point nearest to ``center`` within ``radius`` (both in the map CRS of ``to_layer``'s source)."""
    box = QgsRectangle(center.x() - radius, center.y() - radius, center.x() + radius, center.y() + radius)
    request = QgsFeatureRequest().setFilterRect(to_layer.transformBoundingBox(box))
    best, best_d2 = None, radius * radius
    for feature in layer.getFeatures(request):
        if not feature.hasGeometry():
            continue
        p = to_layer.transform(feature.geometry().asPoint(), Qgis.TransformDirection.Reverse)
        d2 = center.sqrDist(p)
        if d2 <= best_d2:
            best, best_d2 = feature, d2
    return best


@dataclass(frozen=True)
class Snapshot:
    """A point as it was, to restore it."""

    wkt: str
    attributes: dict
    fid: int | None = None

    @classmethod
    def of(cls, feature: QgsFeature) -> "Snapshot":
        names = feature.fields().names()
        return cls(feature.geometry().asWkt(), {n: feature[n] for n in names if n != "fid"}, feature.id())

    def feature(self, layer: QgsVectorLayer) -> QgsFeature:
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromWkt(self.wkt))
        for name, value in self.attributes.items():
            if layer.fields().indexOf(name) >= 0:
                feature[name] = value
        return feature


class PointStore:
    """Adds, removes and undoes points on the session's points layer; every edit is written to disk at once."""

    def __init__(self, layer: QgsVectorLayer):
        self.layer = layer
        self._undo: list[tuple] = []  # ("add", fid) | ("remove", Snapshot) | ("accept", fid, layer, Snapshot)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def add(self, point: QgsPointXY, class_name: str, iteration: int, origin: str = "user") -> int:
        """Write a point (in the layer's CRS) and return its feature id."""
        fid = self._write(self._new_feature(point, class_name, iteration, origin))
        self._undo.append(("add", fid))
        return fid

    def accept_suggestion(self, suggestions: QgsVectorLayer, suggestion: QgsFeature, to_points: QgsCoordinateTransform,
                          class_name: str, iteration: int) -> int:  # fmt: skip
        """The suggestion becomes a point of ``class_name`` (origin "suggestion") and leaves the suggestions layer."""
        point = to_points.transform(suggestion.geometry().asPoint())
        fid = self._write(self._new_feature(point, class_name, iteration, "suggestion"))
        snapshot = Snapshot.of(suggestion)
        _delete(suggestions, suggestion.id())
        self._undo.append(("accept", fid, suggestions, snapshot))
        return fid

    def remove(self, feature: QgsFeature) -> None:
        snapshot = Snapshot.of(feature)
        _delete(self.layer, feature.id())
        self._undo.append(("remove", snapshot))

    def undo(self) -> str | None:
        """Reverse the last edit; returns what was undone (for the status bar), or None if nothing was left."""
        if not self._undo:
            return None
        entry = self._undo.pop()
        if entry[0] == "add":
            _delete(self.layer, entry[1])
            return "removed the last point"
        if entry[0] == "remove":
            new_fid = self._write(entry[1].feature(self.layer))
            self._remap(entry[1], new_fid)
            return "restored the removed point"
        _delete(self.layer, entry[1])
        suggestions, snapshot = entry[2], entry[3]
        if suggestions is not None and not _is_deleted(suggestions):
            _write(suggestions, snapshot.feature(suggestions))
        return "returned the point to the suggestions"

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for feature in self.layer.getFeatures():
            name = str(feature["class"])
            counts[name] = counts.get(name, 0) + 1
        return counts

    def rename_class(self, old: str, new: str) -> int:
        index = self.layer.fields().indexOf("class")
        changes = {f.id(): {index: new} for f in self._features_of(old)}
        if changes and not self.layer.dataProvider().changeAttributeValues(changes):
            raise PointsFileError(f"could not rename class {old} in {self.layer.source()}")
        self._refresh()
        return len(changes)

    def remove_class(self, name: str) -> int:
        fids = [f.id() for f in self._features_of(name)]
        if fids and not self.layer.dataProvider().deleteFeatures(fids):
            raise PointsFileError(f"could not delete the points of class {name} from {self.layer.source()}")
        self._undo.clear()  # older entries may refer to the deleted points
        self._refresh()
        return len(fids)

    def _features_of(self, name: str):
        expression = QgsFeatureRequest().setFilterExpression(f"\"class\" = '{name.replace(chr(39), chr(39) * 2)}'")
        return list(self.layer.getFeatures(expression))

    def _new_feature(self, point: QgsPointXY, class_name: str, iteration: int, origin: str) -> QgsFeature:
        feature = QgsFeature(self.layer.fields())
        feature.setGeometry(QgsGeometry.fromPointXY(point))
        feature["class"] = class_name
        feature["iteration"] = int(iteration)
        feature["origin"] = origin
        feature["time"] = now_iso()
        return feature

    def _write(self, feature: QgsFeature) -> int:
        fid = _write(self.layer, feature)
        self._refresh()
        return fid

    def _remap(self, snapshot: Snapshot, new_fid: int) -> None:
        """Undo entries that pointed at the removed point's old id now point at its new one."""
        if snapshot.fid is None:
            return
        self._undo = [(e[0], new_fid, *e[2:]) if e[0] in ("add", "accept") and e[1] == snapshot.fid else e
                      for e in self._undo]  # fmt: skip

    def _refresh(self) -> None:
        self.layer.updateExtents()
        self.layer.triggerRepaint()


def _write(layer: QgsVectorLayer, feature: QgsFeature) -> int:
    ok, written = layer.dataProvider().addFeatures([feature])
    if not ok or not written:
        raise PointsFileError(f"could not write a point to {layer.source()}: "
                              f"{layer.dataProvider().lastError() or 'the file is read-only or locked'}")  # fmt: skip
    layer.updateExtents()
    layer.triggerRepaint()
    return written[0].id()


def _delete(layer: QgsVectorLayer, fid: int) -> None:
    if not layer.dataProvider().deleteFeatures([fid]):
        raise PointsFileError(f"could not delete a point from {layer.source()}")
    layer.triggerRepaint()


def _is_deleted(layer: QgsVectorLayer) -> bool:
    return sip.isdeleted(layer)
