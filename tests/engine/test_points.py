"""Points to pixels: classes by name or index, reprojection across CRSs, points outside or on nodata counted."""

import numpy as np
import pytest
from pyproj import Transformer

from engine.classes import parse_classes
from engine.errors import InputError, InputFileError
from engine.points import points_to_pixels, read_points
from tests.fixtures import UTM_CRS, pixel_center, write_points, write_raster

CLASSES = parse_classes("background,car,road")


def test_point_in_wgs84_lands_on_the_right_pixel_of_a_utm_raster(tmp_path, raster):
    x, y = pixel_center(10, 37)
    lon, lat = Transformer.from_crs(UTM_CRS, "EPSG:4326", always_xy=True).transform(x, y)
    points = write_points(tmp_path / "p.geojson", [(lon, lat)], ["car"], crs="EPSG:4326")
    placed = points_to_pixels(read_points(points, "class", CLASSES), [raster])
    assert (placed.labels[0].rows.tolist(), placed.labels[0].cols.tolist()) == ([10], [37])
    assert placed.labels[0].classes.tolist() == [1]


def test_classes_by_name_index_or_index_text(tmp_path, raster):
    xy = [pixel_center(1, 1), pixel_center(2, 2), pixel_center(3, 3)]
    points = write_points(tmp_path / "p.gpkg", xy, ["road", "1", "background"])
    frame = read_points(points, "class", CLASSES)
    assert frame["class_index"].tolist() == [2, 1, 0]
    points = write_points(tmp_path / "q.gpkg", xy, [2, 0, 1], field="cls")
    assert read_points(points, "cls", CLASSES)["class_index"].tolist() == [2, 0, 1]


def test_unknown_class_is_an_error_naming_the_valid_ones(tmp_path):
    points = write_points(tmp_path / "p.gpkg", [pixel_center(1, 1)], ["tree"])
    with pytest.raises(InputError, match="tree.*background,car,road"):
        read_points(points, "class", CLASSES)
    points = write_points(tmp_path / "q.gpkg", [pixel_center(1, 1)], [3])
    with pytest.raises(InputError, match="0..2"):
        read_points(points, "class", CLASSES)


def test_points_without_crs_missing_field_or_file(tmp_path):
    points = write_points(tmp_path / "p.gpkg", [pixel_center(1, 1)], ["car"], crs=None)
    with pytest.raises(InputError, match="no CRS"):
        read_points(points, "class", CLASSES)
    points = write_points(tmp_path / "q.gpkg", [pixel_center(1, 1)], ["car"])
    with pytest.raises(InputError, match="no field 'label'"):
        read_points(points, "label", CLASSES)
    with pytest.raises(InputFileError, match="does not exist"):
        read_points(tmp_path / "missing.gpkg", "class", CLASSES)


def test_points_outside_and_on_nodata_are_counted_not_dropped(tmp_path):
    data = np.full((1, 20, 20), 7, np.uint8)
    data[0, 5, 5] = 0
    image = write_raster(tmp_path / "nd.tif", data, nodata=0)
    xy = [pixel_center(1, 1), pixel_center(5, 5), pixel_center(-3, 4), pixel_center(40, 40)]
    placed = points_to_pixels(
        read_points(write_points(tmp_path / "p.gpkg", xy, [0, 1, 2, 1]), "class", CLASSES), [image]
    )
    assert (placed.used, placed.nodata, placed.outside, placed.total) == (1, 1, 2, 4)


def test_each_point_goes_to_the_first_raster_it_lies_on(tmp_path):
    left = write_raster(tmp_path / "a.tif", np.ones((1, 10, 10), np.uint8))
    right = write_raster(tmp_path / "b.tif", np.ones((1, 10, 10), np.uint8), origin=(500_010.0, 4_650_000.0))
    xy = [pixel_center(2, 3), pixel_center(4, 15)]
    placed = points_to_pixels(
        read_points(write_points(tmp_path / "p.gpkg", xy, [1, 2]), "class", CLASSES), [left, right]
    )
    assert [len(lab) for lab in placed.labels] == [1, 1]
    assert (placed.labels[1].rows.tolist(), placed.labels[1].cols.tolist()) == ([4], [5])
