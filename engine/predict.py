"""Tiled prediction: class probabilities (and optionally BALD) over images of any size, in bounded memory.

Two entry points:

- :func:`predict_probabilities` predicts an image held in memory (used by simulate and suggest);
- :func:`predict_tiles` is the engine under it and under ``python -m engine predict``: it reads tiles through a
  callback (a reader thread), runs the network on batches (the calling thread), blends overlapping tiles with smooth
  weights and hands finished output blocks to a callback (a writer thread). Bounded queues link the three, so
  reading, inference and writing overlap and memory stays bounded by the tile and batch size.

MC dropout (``mc_samples`` > 0): smp networks have no dropout layer, so the decoder's output is computed once and
``Dropout2d(p=MC_DROPOUT_P)`` is applied to it before the segmentation head, ``mc_samples`` times. The probabilities
stay those of the deterministic network; BALD is the mutual information of the dropout samples, divided by log C.
"""

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine import cancel
from engine.device import autocast, memory_format, to_layout
from engine.flips import flip_mean, views_of
from engine.forest import ForestModel, forest_probabilities
from engine.hybrid import HybridModel, blend
from engine.models import ModelConfig, output_stride
from engine.prior import KEY as PRIOR_KEY
from engine.prior import adjust
from engine.smoothing import KEY as SMOOTHING_KEY
from engine.smoothing import smooth
from engine.tiling import Blender, Block, Tile, TileGrid

log = logging.getLogger("engine")

MC_DROPOUT_P = 0.25
DEFAULT_TILE_SIZE = 512
DEFAULT_OVERLAP = 64
DEFAULT_BATCH_SIZE = 4


@dataclass
class Prediction:
    """What :func:`predict_probabilities` returns.

    ``probs``: float32 C x H x W class probabilities (softmax of the deterministic network), 0 at invalid pixels.
    ``bald``: float32 H x W BALD mutual information in [0, 1] when ``mc_samples`` > 0, else None; 0 at invalid pixels.
    """

    probs: np.ndarray
    bald: np.ndarray | None = None


@dataclass(frozen=True)
class TileOptions:
    tile_size: int = DEFAULT_TILE_SIZE
    overlap: int = DEFAULT_OVERLAP
    batch_size: int = DEFAULT_BATCH_SIZE
    mc_samples: int = 0
    block: int = 256  # output block side (the GeoTIFF tile)
    queue_size: int = 2  # batches waiting between reader, network and writer
    threaded: bool = True


def predict_probabilities(
    network: nn.Module, config: ModelConfig, image: np.ndarray, valid: np.ndarray, device: torch.device | str,
    *, tile_size: int = DEFAULT_TILE_SIZE, overlap: int = DEFAULT_OVERLAP, batch_size: int = DEFAULT_BATCH_SIZE,
    mc_samples: int = 0, progress: Callable[[int, int], None] | None = None,
) -> Prediction:  # fmt: skip
    """Class probabilities (and BALD with ``mc_samples`` > 0) of an in-memory image, by a network, the random
    forest (engine.forest.ForestModel: its own feature tiles; BALD from its trees) or the hybrid of both (their
    blend, engine/hybrid.py).

    ``image``: bands x H x W raw values (the model's bands, in its order; normalised here with
    ``config.normalization``); ``valid``: H x W bool (False on nodata). Tiles of ``tile_size`` (a multiple of the
    network's output stride) overlap by ``overlap`` pixels and are blended; an image smaller than a tile is padded.
    ``progress(done, total)`` is called after every batch, in tiles. The network runs in eval mode and is put back in
    the mode it was in; on CPU and CUDA it runs in channels-last memory format, on CUDA and on a CPU with native bf16
    under autocast (engine/device.py).
    The probabilities are corrected by the class-prior factor the model was trained with, if any (engine/prior.py).
    """
    prediction = _predict_raw(network, config, image, valid, device, tile_size, overlap, batch_size, mc_samples,
                              progress)  # fmt: skip
    prediction.probs = adjust(prediction.probs, config.trained.get(PRIOR_KEY))
    prediction.probs = smooth(prediction.probs, image, valid, config.trained.get(SMOOTHING_KEY))
    return prediction


def _predict_raw(network, config, image, valid, device, tile_size, overlap, batch_size, mc_samples, progress):
    """predict_probabilities without the class-prior correction."""
    image = np.asarray(image)
    if isinstance(network, HybridModel):
        tiles = {"tile_size": tile_size, "overlap": overlap, "batch_size": batch_size, "mc_samples": mc_samples}
        net = _predict_raw(network.network, config, image, valid, device, **tiles, progress=progress)
        forest = _predict_raw(network.forest, network.forest_config, image, valid, device, **tiles, progress=None)
        return Prediction(*blend(net.probs, forest.probs, network.weight, net.bald, forest.bald))
    if isinstance(network, ForestModel):  # the random forest: exact features of the whole image, BALD from its trees
        if mc_samples > 0:
            return Prediction(*forest_probabilities(network, config, image, valid, bald=True))
        return Prediction(forest_probabilities(network, config, image, valid))
    if image.ndim != 3 or image.shape[0] != config.in_channels:
        raise ValueError(f"image must be {config.in_channels} x H x W (the model's bands), not {image.shape}")
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != image.shape[1:]:
        raise ValueError(f"valid must be H x W = {image.shape[1:]}, not {valid.shape}")
    height, width = valid.shape
    options = TileOptions(tile_size, overlap, batch_size, mc_samples, threaded=False)
    grid = TileGrid(height, width, tile_size, overlap, output_stride(network))
    probs = np.zeros((len(config.classes), height, width), np.float32)
    bald = np.zeros((height, width), np.float32) if mc_samples > 0 else None

    def read(tile: Tile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        data, ok = _crop(image, valid, tile.row, tile.col, grid.tile_h, grid.tile_w)
        return config.normalization.apply(data, ok), ok, ok

    def write(block: Block) -> None:
        h, w = block.shape
        window = (slice(block.row, block.row + h), slice(block.col, block.col + w))
        values = np.where(block.valid, block.values, 0.0)
        probs[(slice(None), *window)] = values[: probs.shape[0]]
        if bald is not None:
            bald[window] = values[-1]

    was_training = network.training
    try:
        inference = Inference(network, device, mc_samples, views=views_of(config.trained))
        predict_tiles(grid, read, inference, write, options, progress)
    finally:
        network.train(was_training)
    return Prediction(probs, bald)


def _crop(image: np.ndarray, valid: np.ndarray, row: int, col: int, height: int, width: int):
    """A window that may extend past the image: float32 data (0 outside) and validity (False outside)."""
    data = np.zeros((image.shape[0], height, width), np.float32)
    ok = np.zeros((height, width), bool)
    r1, c1 = min(row + height, image.shape[1]), min(col + width, image.shape[2])
    data[:, : r1 - row, : c1 - col] = image[:, row:r1, col:c1]
    ok[: r1 - row, : c1 - col] = valid[row:r1, col:c1]
    return data, ok


class Inference:
    """Runs the network on batches of normalised tiles: eval mode, no autograd, channels-last on CPU and CUDA,
    AMP on CUDA.

    Calling it with a B x bands x h x w float32 array returns (probabilities B x C x h x w, BALD B x h x w or None).
    ``views`` > 1: the probabilities are averaged over that many flips of each tile (engine/flips.py); BALD comes
    from the unflipped view's dropout samples.
    """

    def __init__(
        self, network: nn.Module, device: torch.device | str, mc_samples: int = 0, dropout: float = MC_DROPOUT_P,
        views: int = 1,
    ):  # fmt: skip
        self.device = torch.device(device)
        self.mc_samples, self.dropout, self.views = mc_samples, dropout, views
        self.cuda = self.device.type == "cuda"
        self.network = network.to(self.device, memory_format=memory_format(self.device)).eval()
        if mc_samples > 0 and not isinstance(getattr(network, "segmentation_head", None), nn.Module):
            raise ValueError(
                "MC dropout needs a network with a segmentation_head (any segmentation-models-pytorch one)"
            )

    def to_device(self, images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(images)
        if self.cuda:
            x = x.pin_memory().to(self.device, non_blocking=True)
        return to_layout(x.to(self.device), self.device)

    def __call__(self, images: np.ndarray, valid=None) -> tuple[np.ndarray, np.ndarray | None]:
        """``valid`` (each tile's input validity) is not needed: nodata is 0 after normalisation."""
        x = self.to_device(images)
        with torch.inference_mode(), autocast(self.device):
            if self.mc_samples <= 0:
                return _to_numpy(flip_mean(self.network, x, self.views)), None
            probs, bald = self._mc(x)
            probs = flip_mean(self.network, x, self.views, first=probs)
        return _to_numpy(probs), _to_numpy(bald)

    def _mc(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        head = self.network.segmentation_head
        captured = []
        handle = head.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0]))
        try:
            logits = self.network(x)
        finally:
            handle.remove()
        features = captured[0]
        probs = torch.softmax(logits.float(), dim=1)
        mean_p = torch.zeros_like(probs)
        mean_h = torch.zeros_like(probs[:, 0])
        for _ in range(self.mc_samples):
            p = torch.softmax(head(F.dropout2d(features, self.dropout, training=True)).float(), dim=1)
            mean_p += p / self.mc_samples
            mean_h += _entropy(p) / self.mc_samples
        classes = probs.shape[1]
        bald = ((_entropy(mean_p) - mean_h) / math.log(classes)).clamp_(0.0, 1.0) if classes > 1 else mean_h * 0
        return probs, bald


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.clamp_min(1e-12).log()).sum(dim=1)


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


@dataclass
class _Batch:
    tiles: list[Tile]  # tiles run through the network, in the order of images
    images: np.ndarray | None
    valid: list[np.ndarray]
    skipped: list[Tile]  # tiles with no valid pixel: not run, still counted by the blender
    input_valid: list[np.ndarray] = field(default_factory=list)  # which input pixels hold data (for the forest)


ReadTile = Callable[[Tile], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _batches(grid: TileGrid, read: ReadTile, batch_size: int) -> Iterator[_Batch]:
    """Tiles in row-major order, ``batch_size`` run tiles a batch; all-invalid tiles travel as skipped ones."""
    batch = _Batch([], None, [], [])
    images = []
    for tile in grid:
        image, in_valid, out_valid = read(tile)
        if not out_valid.any():
            batch.skipped.append(tile)
            continue
        batch.tiles.append(tile)
        images.append(image)
        batch.valid.append(out_valid)
        batch.input_valid.append(in_valid)
        if len(batch.tiles) == batch_size:
            batch.images = np.stack(images)
            yield batch
            batch, images = _Batch([], None, [], []), []
    if batch.tiles or batch.skipped:
        batch.images = np.stack(images) if images else None
        yield batch


def predict_tiles(
    grid: TileGrid, read: ReadTile, inference: Inference, write: Callable[[Block], None], options: TileOptions,
    progress: Callable[[int, int], None] | None = None,
) -> dict:  # fmt: skip
    """Predict every tile of ``grid`` and hand each finished block to ``write``.

    ``read(tile)`` returns (normalised image bands x tile_h x tile_w, input validity, output validity); a tile whose
    output validity is all False is not run. Blocks carry C probability channels, plus a BALD channel with MC
    dropout. Cancel (engine.cancel) is checked between batches; any error stops all threads and is raised here.
    Returns timings: seconds in total and in the network.
    """
    channels = None  # known after the first batch
    blender: Blender | None = None
    done_tiles = 0
    network_seconds = 0.0
    start = time.perf_counter()

    def infer(batch: _Batch):
        nonlocal network_seconds
        if batch.images is None:
            return batch, None, None
        t0 = time.perf_counter()
        probs, bald = inference(batch.images, batch.input_valid)
        network_seconds += time.perf_counter() - t0
        return batch, probs, bald

    def consume(item) -> None:
        nonlocal blender, channels
        batch, probs, bald = item
        if blender is None:
            channels = (probs.shape[1] if probs is not None else 1) + (1 if bald is not None else 0)
            blender = Blender(grid, channels, options.block)
        for k, tile in enumerate(batch.tiles):
            values = probs[k] if bald is None else np.concatenate([probs[k], bald[k][None]])
            for block in blender.add(tile, values, batch.valid[k]):
                write(block)
        for tile in batch.skipped:
            for block in blender.add(tile, None, None):
                write(block)

    def after_batch(item) -> None:
        nonlocal done_tiles
        done_tiles += len(item[0].tiles) + len(item[0].skipped)
        if progress is not None:
            progress(done_tiles, len(grid))

    batches = _batches(grid, read, options.batch_size)
    if options.threaded:
        _run_threaded(batches, infer, consume, after_batch, options.queue_size)
    else:
        for batch in batches:
            cancel.check()
            item = infer(batch)
            consume(item)
            after_batch(item)
    return {"seconds": time.perf_counter() - start, "network_seconds": network_seconds, "tiles": len(grid)}


_DONE = object()


class _Stopped(Exception):
    """Another stage failed or a cancel arrived: this stage gives up quietly."""


def _put(q: queue.Queue, item, stop: threading.Event, check: Callable[[], None] = lambda: None) -> None:
    while True:
        check()
        if stop.is_set():
            raise _Stopped
        try:
            q.put(item, timeout=0.05)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event, check: Callable[[], None] = lambda: None):
    while True:
        check()
        if stop.is_set():
            raise _Stopped
        try:
            return q.get(timeout=0.05)
        except queue.Empty:
            continue


def _run_threaded(batches: Iterator[_Batch], infer, consume, after_batch, queue_size: int) -> None:
    """Reader thread -> network (this thread) -> writer thread, linked by bounded queues."""
    stop = threading.Event()
    to_network: queue.Queue = queue.Queue(maxsize=queue_size)
    to_writer: queue.Queue = queue.Queue(maxsize=queue_size)
    errors: list[BaseException] = []

    def guarded(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except _Stopped:
                pass
            except BaseException as exc:  # handed to the calling thread, which raises it
                errors.append(exc)
                stop.set()

        return run

    def reader() -> None:
        for batch in batches:
            _put(to_network, batch, stop)
        _put(to_network, _DONE, stop)

    def writer() -> None:
        while (item := _get(to_writer, stop)) is not _DONE:
            consume(item)
            after_batch(item)

    threads = [threading.Thread(target=guarded(f), name=f"predict-{f.__name__}", daemon=True) for f in (reader, writer)]
    for thread in threads:
        thread.start()
    try:
        while (batch := _get(to_network, stop, cancel.check)) is not _DONE:
            _put(to_writer, infer(batch), stop, cancel.check)
        _put(to_writer, _DONE, stop, cancel.check)
        while threads[1].is_alive():
            cancel.check()
            threads[1].join(timeout=0.05)
    except _Stopped:
        pass
    except BaseException:
        stop.set()
        for thread in threads:
            thread.join()
        raise
    stop.set()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
