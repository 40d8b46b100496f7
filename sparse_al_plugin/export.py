"""Export of a prediction: a GeoTIFF or Cloud Optimized GeoTIFF (colours and class names kept), and optionally
polygons in a GeoPackage. GDAL's Python bindings, as QGIS ships them; outputs appear only when complete."""

import os
from dataclasses import dataclass
from pathlib import Path

from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()
NODATA = 255


@dataclass(frozen=True)
class ExportRequest:
    path: str  # the raster to write (.tif)
    cog: bool = False
    polygons: bool = False  # also write <path stem>.gpkg


def export_prediction(predictions: list[str], request: ExportRequest, class_names: list[str]) -> list[str]:
    """Write the prediction (several rasters on one CRS become one mosaic) and return the files written."""
    if not predictions:
        raise ValueError("there is no prediction to export yet; run Predict first")
    out = Path(request.path)
    if out.suffix.lower() not in (".tif", ".tiff"):
        out = out.with_suffix(".tif")
    out.parent.mkdir(parents=True, exist_ok=True)
    projections = {gdal.Open(p).GetProjection() for p in predictions}
    if len(projections) > 1:
        raise ValueError("the predictions are on rasters of different CRSs; export them one at a time")
    source = gdal.BuildVRT("", predictions) if len(predictions) > 1 else gdal.Open(predictions[0])
    written = [_write_raster(source, out, request.cog, class_names)]
    if request.polygons:
        written.append(_write_polygons(out, out.with_suffix(".gpkg"), class_names))
    return written


def _write_raster(source, out: Path, cog: bool, class_names: list[str]) -> str:
    tmp = out.with_name(f".{out.name}.partial.tif")
    options = ["COMPRESS=DEFLATE"] + ([] if cog else ["TILED=YES"])
    ds = gdal.Translate(str(tmp), source, format="COG" if cog else "GTiff", creationOptions=options, noData=NODATA)
    ds = None
    if not cog:  # the COG driver keeps the colour table; names go into the GeoTIFF's metadata either way
        ds = gdal.Open(str(tmp), gdal.GA_Update)
        ds.GetRasterBand(1).SetCategoryNames(class_names)
        ds = None
    for sidecar in (tmp.with_name(tmp.name + ".aux.xml"),):
        if sidecar.exists():
            os.replace(sidecar, out.with_name(out.name + ".aux.xml"))
    os.replace(tmp, out)
    return str(out)


def _write_polygons(raster: Path, out: Path, class_names: list[str]) -> str:
    tmp = out.with_name(f".{out.name}.partial.gpkg")
    tmp.unlink(missing_ok=True)
    src = gdal.Open(str(raster))
    band = src.GetRasterBand(1)
    srs = osr.SpatialReference(wkt=src.GetProjection()) if src.GetProjection() else None
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
    layer = ds.CreateLayer("prediction", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTString))
    gdal.Polygonize(band, band.GetMaskBand(), layer, 0, [], callback=None)
    cases = " ".join(f"WHEN {k} THEN '{name.replace(chr(39), chr(39) * 2)}'" for k, name in enumerate(class_names))
    ds.ExecuteSQL(f"UPDATE prediction SET class = CASE class_id {cases} ELSE NULL END", dialect="SQLITE")
    ds = None
    os.replace(tmp, out)
    return str(out)
