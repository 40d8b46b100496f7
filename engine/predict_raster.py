"""Predicting a raster file of any size into GeoTIFFs on its grid, reading and writing by windows.

A reader thread reads and normalises tiles, the calling thread runs the network, a writer thread blends the tiles and
writes finished 256 x 256 blocks (engine.predict.predict_tiles); memory is bounded by the tile and batch size and a
band of about ``overlap + 512`` rows of the predicted window's width, never by its height.
"""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from engine import __version__
from engine.class_shares import SAMPLE_PIXELS, fit_shares
from engine.errors import InputError, InputFileError
from engine.events import Events
from engine.geotiff_out import BLOCK, GDAL_ENV, OutputSpec, PredictionWriter
from engine.models import ModelConfig
from engine.predict import DEFAULT_BATCH_SIZE, DEFAULT_OVERLAP, DEFAULT_TILE_SIZE, TileOptions, predict_tiles
from engine.predict_window import Region
from engine.predictor import Model, make_inference, stride
from engine.probability_store import ProbabilityStore
from engine.raster_io import open_raster, read_window
from engine.tiling import Tile, TileGrid

log = logging.getLogger("engine")

PREDICT_SHARE = 0.95  # of the overall progress; the rest is overviews / COG
STORE_SHARE = 0.85  # of PREDICT_SHARE, with class shares: predicting into the store; the rest is writing from it


@dataclass
class RasterPredictOptions:
    tile_size: int = DEFAULT_TILE_SIZE
    overlap: int = DEFAULT_OVERLAP
    batch_size: int = DEFAULT_BATCH_SIZE
    uncertainty: str = "entropy"
    mc_samples: int = 8  # used by uncertainty "bald"
    probabilities: bool = False
    cog: bool = False
    threaded: bool = True


def check_options(options: RasterPredictOptions, model: Model) -> None:
    side = stride(model)
    if options.tile_size < side or options.tile_size % side:
        raise InputError(f"--tile-size: {options.tile_size} must be a multiple of {side} (the model's output "
                         f"stride), e.g. 512", "tile_size")  # fmt: skip
    if not 0 <= options.overlap <= options.tile_size // 2:
        raise InputError(f"--overlap: {options.overlap} must be between 0 and half the tile size "
                         f"({options.tile_size // 2})", "overlap")  # fmt: skip
    if options.batch_size < 1:
        raise InputError(f"--batch-size: {options.batch_size} must be at least 1", "batch_size")
    if options.uncertainty == "bald" and options.mc_samples < 2:
        raise InputError(f"--mc-samples: {options.mc_samples} is too few for --uncertainty bald; use 2 or more "
                         "(8 is a good start)", "mc_samples")  # fmt: skip


def check_bands(ds, config: ModelConfig, raster: Path, model: Path | str, events: Events) -> None:
    """The model's bands must exist in the raster; a raster with more bands than the model reads gets a warning."""
    if ds.count < max(config.bands):
        raise InputError(f"--raster: {raster} has {ds.count} band(s) but the model {model} was trained on bands "
                         f"{config.bands} ({config.in_channels} bands); use a raster like the training rasters or "
                         f"a model trained on this one", "raster")  # fmt: skip
    if ds.count != config.in_channels:
        events.warning(f"{raster} has {ds.count} bands; the model reads bands {config.bands} of them")


def predict_raster(
    network: Model, config: ModelConfig, raster: Path, out_dir: Path, region: Region | None,
    device: torch.device, options: RasterPredictOptions, events: Events, model_name: str = "",
    shares: dict[str, float] | None = None,
) -> dict:  # fmt: skip
    """Write prediction.tif, uncertainty.tif (and probabilities.tif) for ``region`` of ``raster`` into ``out_dir``.

    ``shares`` ({class: fraction}, engine/class_shares.py): the area is predicted into a ProbabilityStore first, the
    stated classes' weights are fitted on those probabilities (all of them, or an even grid of SAMPLE_PIXELS of them),
    and the outputs are written from the store with those weights applied: the map has the stated shares. Returns
    the summary for the result event (with ``shares``, ``share_weights`` too). Outputs appear only when all are
    complete.
    """
    start = time.perf_counter()
    check_options(options, network)
    with rasterio.Env(**GDAL_ENV), open_raster(raster) as ds:
        check_bands(ds, config, raster, model_name, events)
        region = region or Region(Window(0, 0, ds.width, ds.height))
        win = region.window
        row0, col0, height, width = int(win.row_off), int(win.col_off), int(win.height), int(win.width)
        grid = TileGrid(height, width, options.tile_size, options.overlap, stride(network))
        mc = options.mc_samples if options.uncertainty == "bald" else 0
        inference = make_inference(network, config, device, mc)
        spec = OutputSpec(
            Path(out_dir), ds.crs, ds.window_transform(win), width, height, config.classes, options.uncertainty,
            options.probabilities, options.cog, tags={"MODEL": model_name, "SOURCE": str(raster),
                                                      "ENGINE": f"sparse-al {__version__}"},
        )  # fmt: skip

        def read(tile: Tile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            r, c = row0 + tile.row, col0 + tile.col
            try:
                data, valid = read_window(ds, config.bands, r, c, grid.tile_h, grid.tile_w)
            except RasterioIOError as exc:
                raise InputFileError(f"--raster: {raster} could not be read at rows {r}.., columns {c}.. ({exc}); "
                                     "the file may be damaged or incomplete", "raster") from exc  # fmt: skip
            out_valid = valid.copy()
            out_valid[height - tile.row :, :] = False  # outside the window (padding of a small window)
            out_valid[:, width - tile.col :] = False
            aoi = region.mask(ds.window_transform(Window(c, r, grid.tile_w, grid.tile_h)), grid.tile_h, grid.tile_w)
            if aoi is not None:
                out_valid &= aoi
            return config.normalization.apply(data, valid), valid, out_valid

        predicting = events.span(0.0, STORE_SHARE * PREDICT_SHARE if shares else PREDICT_SHARE)

        def progress(done: int, total: int) -> None:
            predicting.progress("predict", done, total)

        def finishing(done: int, total: int) -> None:
            events.progress("overviews", done, total, PREDICT_SHARE + (1 - PREDICT_SHARE) * done / total)

        tile_options = TileOptions(options.tile_size, options.overlap, options.batch_size, mc, BLOCK,
                                   threaded=options.threaded)  # fmt: skip
        fitted = {}
        with PredictionWriter(spec) as writer:
            if shares:
                channels = len(config.classes) + (1 if mc else 0)  # BALD last
                with ProbabilityStore(Path(out_dir), channels, height, width, BLOCK) as store:
                    timing = predict_tiles(grid, read, inference, store.write, tile_options, progress)
                    factor, fitted = _fit(store, config, shares, events)
                    writing = events.span(STORE_SHARE * PREDICT_SHARE, PREDICT_SHARE)
                    blocks = store.block_count()
                    for done, block in enumerate(store.blocks(factor), start=1):
                        writer.write(block)
                        writing.progress("write", done, blocks)
            else:
                timing = predict_tiles(grid, read, inference, writer.write, tile_options, progress)
            paths = writer.finish(finishing)
    seconds = time.perf_counter() - start
    valid_pixels = int(writer.class_pixels.sum())
    if valid_pixels == 0:
        events.warning(f"every pixel of the predicted area of {raster} is nodata or outside the AOI")
    return {
        "prediction": str(paths["prediction"]), "uncertainty": str(paths["uncertainty"]),
        "probabilities": str(paths["probabilities"]) if "probabilities" in paths else None,
        "uncertainty_method": options.uncertainty, "width": width, "height": height,
        "window": {"col_off": col0, "row_off": row0, "width": width, "height": height},
        "tiles": timing["tiles"], "seconds": round(seconds, 3),
        "megapixels_per_second": round(width * height / 1e6 / max(seconds, 1e-9), 3),
        "valid_pixels": valid_pixels,
        "class_pixels": {c.name: int(n) for c, n in zip(config.classes, writer.class_pixels, strict=True)},
        "mean_uncertainty": writer.uncertainty_sum / valid_pixels if valid_pixels else None,
        **({"share_weights": fitted} if shares else {}),
    }  # fmt: skip


def _fit(store: ProbabilityStore, config: ModelConfig, shares: dict[str, float], events: Events):
    """(factor over all classes, {stated class: weight}) that give the stored map the stated shares."""
    events.info(f"fitting the weights of {', '.join(shares)} to the shares asked for, on the predicted map")
    values, valid = store.sample(SAMPLE_PIXELS)
    return fit_shares([values[: len(config.classes)]], [valid], config.class_names, shares, events)
