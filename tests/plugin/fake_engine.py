"""A stand-in for ``python -m engine`` that speaks engine/CONTRACT.md without torch, for the plugin's tests.

Run as ``python -m tests.plugin.fake_engine <command> --job JOB --events json``. FAKE_ENGINE_MODE picks the behaviour:
``ok`` (default: writes small outputs), ``error`` (exit 2 with an error event), ``crash`` (exit 1, no event),
``hang`` (progress, then waits for SIGTERM and exits 130 with a cancelled event). FAKE_ENGINE_RECORD names a file
that gets one JSON line per call (command and job), so tests can check what the plugin asked for.
"""

import json
import os
import signal
import struct
import sys
import time
from pathlib import Path

from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()

# The job keys the real commands accept (CONTRACT.md and `python -m engine <command> --help`).
COMMON = {"events", "device", "seed", "log_level", "job"}
KEYS = {
    "train": {"raster", "points", "classes", "class_field", "out", "init", "bands", "epochs", "batch_size",
              "patch_size", "patches_per_epoch", "lr", "arch", "encoder", "encoder_weights", "loss", "amplification",
              "model", "forest_ensemble", "flip_views"},
    "predict": {"model", "raster", "out", "bbox", "uncertainty", "mc_samples", "probabilities", "cog", "aoi",
                "tile_size", "overlap", "batch_size", "class_weight", "class_share"},
    "suggest": {"model", "raster", "out", "strategy", "budget", "min_distance", "superpixel_size", "compactness",
                "uncertainty", "mc_samples", "points", "class_field", "iteration", "window_size", "tile_size",
                "overlap", "batch_size", "class_weight", "class_share"},
}  # fmt: skip
REQUIRED = {"train": {"raster", "points", "out"}, "predict": {"model", "raster", "out"},
            "suggest": {"model", "raster", "out"}}  # fmt: skip


def emit(event: str, **fields) -> None:
    sys.stdout.write(json.dumps({"v": 1, "event": event, "time": time.time(), **fields}) + "\n")
    sys.stdout.flush()


def fail(code: str, message: str, status: int, field: str | None = None) -> int:
    emit("error", code=code, message=message, **({"field": field} if field else {}))
    return status


def main(argv: list[str]) -> int:
    command = argv[0]
    job = json.loads(Path(argv[argv.index("--job") + 1]).read_text())
    record = os.environ.get("FAKE_ENGINE_RECORD")
    if record:
        with open(record, "a") as f:
            f.write(json.dumps({"command": command, "job": job, "argv": argv}) + "\n")
    mode = os.environ.get("FAKE_ENGINE_MODE", "ok")
    print("fake engine starting", command, file=sys.stderr)
    emit("start", command=command, engine_version="0.0.0-fake", device="cpu")
    unknown = set(job) - KEYS[command] - COMMON
    if unknown:
        return fail("bad_input", f"--job: unknown field(s) {', '.join(sorted(unknown))}", 2, "job")
    missing = REQUIRED[command] - set(job)
    if missing:
        return fail("bad_input", f"--{sorted(missing)[0]} is required", 2, sorted(missing)[0])
    repeatable = command in ("train", "suggest")  # --raster repeats there (a JSON list), not in predict
    if isinstance(job["raster"], list) != repeatable:
        return fail("bad_input", f"--job: raster must be {'a list' if repeatable else 'one path'}", 2, "raster")
    if mode == "error":
        return fail("bad_input", "--points: fake.gpkg has no CRS; assign one in QGIS and save it again", 2, "points")
    if mode == "crash":
        print("Traceback (most recent call last):\nRuntimeError: fake crash", file=sys.stderr)
        return 1
    if mode == "hang":
        return hang(Path(os.environ.get("FAKE_ENGINE_SIGNAL_FILE", os.devnull)))
    for i in range(1, 4):
        emit("progress", stage=command, done=i, total=3, fraction=i / 3)
        emit("log", level="info", message=f"step {i}")
    return {"train": train, "predict": predict, "suggest": suggest}[command](job)


def hang(marker: Path) -> int:
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    emit("progress", stage="train", done=1, total=100, fraction=0.01)
    deadline = time.time() + 60
    while not stop and time.time() < deadline:
        time.sleep(0.05)
    if stop:
        marker.write_text("SIGTERM")
        return fail("cancelled", "cancelled by the user; earlier results are intact", 130)
    return fail("internal", "fake engine was never cancelled", 1)


def train(job: dict) -> int:
    out = Path(job["out"])
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    classes = job.get("classes")
    if classes is None and job.get("init"):
        classes = json.loads((Path(job["init"]) / "config.json").read_text())["classes"]
    config = {"schema_version": 1, "kind": "smp", "classes": classes, "patch_size": job.get("patch_size", 256)}
    (tmp / "config.json").write_text(json.dumps(config))
    (tmp / "weights.safetensors").write_bytes(b"fake")
    tmp.rename(out)
    ds = ogr.Open(job["points"])
    layer = ds.GetLayer(0)
    counts: dict[str, int] = {}
    for feature in layer:
        counts[str(feature.GetField("class"))] = counts.get(str(feature.GetField("class")), 0) + 1
    emit("metric", name="loss", value=0.5, epoch=1)
    emit("result", command="train", model_dir=str(out), epochs=job.get("epochs", 20), final_loss=0.25,
         seconds=0.1, points_used=sum(counts.values()), points_per_class=counts,
         points_dropped={"outside": 0, "nodata": 0})  # fmt: skip
    return 0


def _classes(model: str) -> list[dict]:
    return json.loads((Path(model) / "config.json").read_text())["classes"]


def _raster(job: dict) -> str:
    raster = job["raster"]
    return raster[0] if isinstance(raster, list) else raster  # suggest: the first raster is enough here


def predict(job: dict) -> int:
    """Vertical stripes of the classes (class k in the k-th of n column bands); uncertainty grows with the row."""
    src = gdal.Open(_raster(job))
    width, height = src.RasterXSize, src.RasterYSize
    classes = _classes(job["model"])
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    driver = gdal.GetDriverByName("GTiff")
    pred = driver.Create(str(out / "prediction.tif"), width, height, 1, gdal.GDT_Byte)
    unc = driver.Create(str(out / "uncertainty.tif"), width, height, 1, gdal.GDT_Float32)
    for ds in (pred, unc):
        ds.SetGeoTransform(src.GetGeoTransform())
        ds.SetProjection(src.GetProjection())
    row = bytes(min(col * len(classes) // width, len(classes) - 1) for col in range(width))
    pred.GetRasterBand(1).WriteRaster(0, 0, width, height, row * height)
    table = gdal.ColorTable()
    for k, c in enumerate(classes):
        h = c["color"].lstrip("#")
        table.SetColorEntry(k, (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255))
    pred.GetRasterBand(1).SetRasterColorTable(table)
    pred.GetRasterBand(1).SetNoDataValue(255)
    values = b"".join(struct.pack("<f", r / max(height - 1, 1)) * width for r in range(height))
    unc.GetRasterBand(1).WriteRaster(0, 0, width, height, values)
    pred = unc = None
    class_pixels = {c["name"]: row.count(k) * height for k, c in enumerate(classes)}
    emit("result", command="predict", prediction=str(out / "prediction.tif"), uncertainty=str(out / "uncertainty.tif"),
         seconds=0.1, class_pixels=class_pixels)  # fmt: skip
    return 0


def suggest(job: dict) -> int:
    """``budget`` points on the raster's diagonal, scores falling; one square superpixel around each."""
    src = gdal.Open(_raster(job))
    gt = src.GetGeoTransform()
    srs = osr.SpatialReference(wkt=src.GetProjection())
    out = Path(job["out"])
    budget = int(job.get("budget", 10))
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(out))
    points = ds.CreateLayer("suggestions", srs, ogr.wkbPoint)
    for name, kind in (("score", ogr.OFTReal), ("strategy", ogr.OFTString), ("predicted_class", ogr.OFTString),
                       ("iteration", ogr.OFTInteger)):  # fmt: skip
        points.CreateField(ogr.FieldDefn(name, kind))
    cells = ds.CreateLayer("superpixels", srs, ogr.wkbPolygon)
    cells.CreateField(ogr.FieldDefn("score", ogr.OFTReal))
    classes = _classes(job["model"])
    for i in range(budget):
        col = row = (i + 0.5) * min(src.RasterXSize, src.RasterYSize) / budget
        x, y = gt[0] + col * gt[1], gt[3] + row * gt[5]
        feature = ogr.Feature(points.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x} {y})"))
        feature.SetField("score", 1.0 - i / budget)
        feature.SetField("strategy", job.get("strategy", "superpixel"))
        feature.SetField("predicted_class", classes[i % len(classes)]["name"])
        feature.SetField("iteration", int(job.get("iteration", 0)))
        points.CreateFeature(feature)
        d = abs(gt[1]) * 2
        cell = ogr.Feature(cells.GetLayerDefn())
        ring = f"{x - d} {y - d},{x + d} {y - d},{x + d} {y + d},{x - d} {y + d},{x - d} {y - d}"
        cell.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON (({ring}))"))
        cell.SetField("score", 1.0 - i / budget)
        cells.CreateFeature(cell)
    ds = None
    emit("result", command="suggest", path=str(out), layers=["suggestions", "superpixels"], suggestions=budget,
         strategy=job.get("strategy", "superpixel"))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
