import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from shapely.geometry import box

from engine.errors import InputError, InputFileError
from engine.predict_window import bounds_window, parse_bbox, region_for
from tests.fixtures import ORIGIN, UTM_CRS, write_raster


@pytest.fixture
def ds(tmp_path):
    path = write_raster(tmp_path / "r.tif", np.zeros((1, 100, 120), np.uint8), pixel=2.0)
    with rasterio.open(path) as dataset:
        yield dataset


def utm_bounds(row0, col0, row1, col1, pixel=2.0, inset=0.0):
    """Map bounds of the pixel window rows row0..row1, cols col0..col1 (end exclusive), shrunk by ``inset`` px."""
    x0, x1 = ORIGIN[0] + (col0 + inset) * pixel, ORIGIN[0] + (col1 - inset) * pixel
    y1, y0 = ORIGIN[1] - (row0 + inset) * pixel, ORIGIN[1] - (row1 - inset) * pixel
    return x0, y0, x1, y1


def test_parse_bbox_with_and_without_crs():
    assert parse_bbox("1,2,3,4") == ((1.0, 2.0, 3.0, 4.0), None)
    bounds, crs = parse_bbox("1, 2, 3, 4, EPSG:4326")
    assert bounds == (1.0, 2.0, 3.0, 4.0) and crs == CRS.from_epsg(4326)


@pytest.mark.parametrize("text", ["1,2,3", "a,2,3,4", "3,2,1,4", "1,2,3,4,EPSG:999999"])
def test_parse_bbox_refuses_bad_text(text):
    with pytest.raises(InputError, match="--bbox"):
        parse_bbox(text)


def test_bbox_on_pixel_edges_gives_exactly_those_pixels(ds):
    window = bounds_window(ds, utm_bounds(10, 20, 30, 70), None, "bbox")
    assert (window.row_off, window.col_off, window.height, window.width) == (10, 20, 20, 50)


def test_bbox_inside_pixels_is_rounded_out_to_whole_pixels(ds):
    window = bounds_window(ds, utm_bounds(10, 20, 30, 70, inset=0.4), None, "bbox")
    assert (window.row_off, window.col_off, window.height, window.width) == (10, 20, 20, 50)


def test_bbox_in_another_crs_lands_on_the_same_pixels(ds):
    lonlat = transform_bounds(UTM_CRS, "EPSG:4326", *utm_bounds(10, 20, 30, 70, inset=0.3))
    window = bounds_window(ds, lonlat, CRS.from_epsg(4326), "bbox")
    assert (window.row_off, window.col_off, window.height, window.width) == (10, 20, 20, 50)


def test_bbox_partly_outside_is_clipped_and_wholly_outside_is_an_error(ds):
    window = bounds_window(ds, utm_bounds(-50, 100, 40, 500), None, "bbox")
    assert (window.row_off, window.col_off, window.height, window.width) == (0, 100, 40, 20)
    with pytest.raises(InputError, match="outside the raster"):
        bounds_window(ds, utm_bounds(200, 200, 300, 300), None, "bbox")


def test_aoi_window_is_the_polygons_extent_and_mask_keeps_their_inside(ds, tmp_path):
    import geopandas as gpd

    poly = box(*utm_bounds(5, 10, 25, 40))
    path = tmp_path / "aoi.geojson"
    gpd.GeoDataFrame(geometry=[poly], crs=UTM_CRS).to_crs("EPSG:4326").to_file(path)
    region = region_for(ds, aoi=path)
    w = region.window
    assert (w.row_off, w.col_off, w.height, w.width) == (5, 10, 20, 30)
    mask = region.mask(ds.window_transform(w), 20, 30)
    assert mask.mean() > 0.97  # a box reprojected twice: all but slivers on the rim
    wider = region.mask(ds.window_transform(w), 40, 60)
    assert not wider[25:, :].any() and not wider[:, 35:].any()


def test_aoi_errors(ds, tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    with pytest.raises(InputFileError, match="does not exist"):
        region_for(ds, aoi=tmp_path / "missing.gpkg")
    points = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[Point(ORIGIN)], crs=UTM_CRS).to_file(points)
    with pytest.raises(InputError, match="no polygon"):
        region_for(ds, aoi=points)


def test_bbox_and_aoi_intersect(ds, tmp_path):
    import geopandas as gpd

    path = tmp_path / "aoi.gpkg"
    gpd.GeoDataFrame(geometry=[box(*utm_bounds(0, 0, 50, 50))], crs=UTM_CRS).to_file(path)
    bbox = ",".join(map(str, utm_bounds(40, 40, 90, 90)))
    w = region_for(ds, bbox=bbox, aoi=path).window
    assert (w.row_off, w.col_off, w.height, w.width) == (40, 40, 10, 10)
