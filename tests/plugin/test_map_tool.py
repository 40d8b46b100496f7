"""Clicking on the map: points of the active class where clicked, removal, undo, class keys, on disk at once."""

from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import Qt

from sparse_al_plugin.points_store import LAYER_NAME
from tests.plugin.conftest import click, key, open_session, show_raster

UTM = QgsCoordinateReferenceSystem("EPSG:32633")


def canvas_point(plugin, x, y):
    return plugin.iface.mapCanvas().getCoordinateTransform().toMapCoordinates(x, y)


def features_on_disk(path):
    """The points as a fresh reader of the file sees them (not through the plugin's layer)."""
    layer = QgsVectorLayer(f"{path}|layername={LAYER_NAME}", "check", "ogr")
    assert layer.isValid()
    return sorted(((f["class"], f["iteration"], f["origin"], f.geometry().asPoint()) for f in layer.getFeatures()),
                  key=lambda t: (t[3].x(), t[3].y()))  # fmt: skip


def test_left_click_adds_a_point_of_the_active_class_where_clicked(plugin, image, tmp_path):
    raster = show_raster(plugin.iface, image)
    open_session(plugin, tmp_path / "session", [raster])
    plugin.controller.activate_class(1)
    click(plugin, 100, 200)
    key(plugin, Qt.Key.Key_1)  # class 1 = background
    click(plugin, 400, 300)

    points = features_on_disk(tmp_path / "session" / "points.gpkg")
    assert [(c, i, o) for c, i, o, _ in points] == [("class_1", 1, "user"), ("background", 1, "user")]
    for (_, _, _, p), (x, y) in zip(points, [(100, 200), (400, 300)], strict=True):
        expected = canvas_point(plugin, x, y)
        assert abs(p.x() - expected.x()) < 1e-6 and abs(p.y() - expected.y()) < 1e-6
    # inside the raster (its top-left corner is 500000, 4650000; 64 m wide)
    assert all(500_000 < p.x() < 500_064 and 4_649_936 < p.y() < 4_650_000 for *_, p in points)
    assert plugin.controller.store.layer.crs() == UTM
    assert plugin.dock.class_table.item(0, 3).text() == "1"


def test_click_with_project_crs_different_from_the_raster(plugin, image, tmp_path):
    """Canvas in Web Mercator, raster and points in UTM: the point lands on the UTM spot under the cursor."""
    raster = show_raster(plugin.iface, image, project_crs="EPSG:3857")
    open_session(plugin, tmp_path / "session", [raster])
    canvas = plugin.iface.mapCanvas()
    # the canvas pixel under the centre of raster pixel (row 10, col 20), found through an independent transform
    utm_target = (500_000 + 20.5, 4_650_000 - 10.5)
    from osgeo import osr

    utm, merc = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32633)
    merc.ImportFromEPSG(3857)
    utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    merc.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    mx, my, _ = osr.CoordinateTransformation(utm, merc).TransformPoint(*utm_target)
    pixel = canvas.getCoordinateTransform().transform(mx, my)
    click(plugin, round(pixel.x()), round(pixel.y()))

    [(name, _, _, p)] = features_on_disk(tmp_path / "session" / "points.gpkg")
    assert name == "class_1"
    assert plugin.controller.store.layer.crs() == UTM  # the raster's CRS, not the project's
    size = canvas.mapUnitsPerPixel() * 1.5  # rounding to a whole screen pixel, in metres (Mercator ~ 1.3x at 42N)
    assert abs(p.x() - utm_target[0]) < size and abs(p.y() - utm_target[1]) < size


def test_right_click_removes_the_nearest_point_within_a_few_pixels(plugin, image, tmp_path):
    raster = show_raster(plugin.iface, image)
    open_session(plugin, tmp_path / "session", [raster])
    click(plugin, 100, 100)
    click(plugin, 300, 300)
    click(plugin, 110, 100, Qt.MouseButton.RightButton)  # 10 px away: too far
    assert len(features_on_disk(tmp_path / "session" / "points.gpkg")) == 2
    click(plugin, 303, 298, Qt.MouseButton.RightButton)
    points = features_on_disk(tmp_path / "session" / "points.gpkg")
    assert len(points) == 1
    expected = canvas_point(plugin, 100, 100)
    assert abs(points[0][3].x() - expected.x()) < 1e-6


def test_ctrl_z_undoes_adds_and_removals_in_order(plugin, image, tmp_path):
    raster = show_raster(plugin.iface, image)
    open_session(plugin, tmp_path / "session", [raster])
    path = tmp_path / "session" / "points.gpkg"
    click(plugin, 100, 100)
    click(plugin, 200, 200)
    click(plugin, 100, 100, Qt.MouseButton.RightButton)
    assert len(features_on_disk(path)) == 1
    key(plugin, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the removal comes back
    restored = features_on_disk(path)
    assert len(restored) == 2
    key(plugin, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the second add goes
    [(_, _, _, p)] = features_on_disk(path)
    assert abs(p.x() - canvas_point(plugin, 100, 100).x()) < 1e-6
    key(plugin, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the first add (restored under a new id) goes
    assert features_on_disk(path) == []
    key(plugin, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # nothing left: no error
    assert features_on_disk(path) == []


def test_points_stay_in_the_file_after_the_layer_is_closed_and_come_back(plugin, image, tmp_path):
    raster = show_raster(plugin.iface, image)
    open_session(plugin, tmp_path / "session", [raster])
    for x in (50, 150, 250):
        click(plugin, x, 100)
    QgsProject.instance().removeMapLayer(plugin.controller.store.layer.id())
    assert len(features_on_disk(tmp_path / "session" / "points.gpkg")) == 3
    click(plugin, 350, 100)  # a click after the layer was closed opens the file again
    assert plugin.controller.store.layer.featureCount() == 4
    assert QgsProject.instance().mapLayer(plugin.controller.store.layer.id()) is not None
    plugin.controller.open_session(str(tmp_path / "session"))  # reopened: the layer is back with its points
    assert plugin.controller.store.layer.featureCount() == 4


def test_number_keys_pick_the_active_class_and_ignore_missing_ones(plugin, image, tmp_path):
    raster = show_raster(plugin.iface, image)
    open_session(plugin, tmp_path / "session", [raster])
    key(plugin, Qt.Key.Key_1)
    assert plugin.controller.state.active_class == 0
    key(plugin, Qt.Key.Key_9)  # only two classes
    assert plugin.controller.state.active_class == 0
    assert plugin.dock.class_table.currentRow() == 0


def test_clicking_without_a_session_says_what_to_do(plugin, iface):
    from qgis.core import Qgis

    click(plugin, 10, 10)
    assert any("open a session folder" in m for m in iface.messageBar().get_messages(Qgis.MessageLevel.Warning))


def test_points_are_transformed_into_the_points_layer_crs():
    """The helper the controller uses: canvas CRS to the layer's CRS, both ways (sanity of the test's premise)."""
    t = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:3857"), UTM, QgsProject.instance())
    assert t.isValid()
