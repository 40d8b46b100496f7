import numpy as np
import pytest
from osgeo import gdal, ogr

from sparse_al_plugin.export import ExportRequest, export_prediction
from tests.fixtures import write_raster

NAMES = ["background", "car"]


def prediction(path, data, origin=(500_000.0, 4_650_000.0)):
    write_raster(path, data, origin=origin, nodata=255)
    ds = gdal.Open(str(path), gdal.GA_Update)
    table = gdal.ColorTable()
    table.SetColorEntry(0, (176, 176, 176, 255))
    table.SetColorEntry(1, (227, 26, 28, 255))
    ds.GetRasterBand(1).SetRasterColorTable(table)
    ds = None
    return str(path)


def left_right(size=32):
    data = np.zeros((size, size), np.uint8)
    data[:, size // 2 :] = 1
    return data


def read(path):
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    data = np.frombuffer(band.ReadRaster(buf_type=gdal.GDT_Byte), np.uint8).reshape(ds.RasterYSize, ds.RasterXSize)
    return ds, band, data


def test_geotiff_keeps_grid_colours_and_class_names_and_polygonizes(tmp_path):
    source = prediction(tmp_path / "p.tif", left_right())
    written = export_prediction([source], ExportRequest(str(tmp_path / "out" / "map.tif"), polygons=True), NAMES)
    assert written == [str(tmp_path / "out" / "map.tif"), str(tmp_path / "out" / "map.gpkg")]
    ds, band, data = read(written[0])
    assert ds.GetGeoTransform() == gdal.Open(source).GetGeoTransform()
    np.testing.assert_array_equal(data, left_right())
    assert band.GetColorTable().GetColorEntry(1)[:3] == (227, 26, 28)
    assert band.GetCategoryNames()[:2] == NAMES
    polygons = ogr.Open(written[1])  # kept: a layer outlives its data source only in C
    layer = polygons.GetLayer("prediction")
    rows = sorted((f.GetField("class_id"), f.GetField("class"), round(f.GetGeometryRef().GetArea())) for f in layer)
    assert rows == [(0, "background", 16 * 32), (1, "car", 16 * 32)]
    assert not list((tmp_path / "out").glob(".*partial*"))


def test_cog_layout(tmp_path):
    source = prediction(tmp_path / "p.tif", left_right())
    [out] = export_prediction([source], ExportRequest(str(tmp_path / "map.tif"), cog=True), NAMES)
    ds, band, data = read(out)
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    np.testing.assert_array_equal(data, left_right())
    assert band.GetNoDataValue() == 255


def test_several_predictions_become_one_mosaic(tmp_path):
    a = prediction(tmp_path / "a.tif", np.zeros((16, 16), np.uint8))
    b = prediction(tmp_path / "b.tif", np.ones((16, 16), np.uint8), origin=(500_016.0, 4_650_000.0))
    [out] = export_prediction([a, b], ExportRequest(str(tmp_path / "mosaic")), NAMES)
    assert out.endswith("mosaic.tif")
    _, _, data = read(out)
    assert data.shape == (16, 32) and data[:, :16].max() == 0 and data[:, 16:].min() == 1


def test_nothing_to_export_says_so(tmp_path):
    with pytest.raises(ValueError, match="run Predict first"):
        export_prediction([], ExportRequest(str(tmp_path / "x.tif")), NAMES)
