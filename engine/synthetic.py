"""A synthetic, georeferenced aerial scene with a dense reference label, for the demo and for tests.

The scene imitates a 0.25 m orthophoto of a city block grid: asphalt roads with dashed lane markings and cars,
concrete sidewalks and paved yards, buildings with pitched roofs casting shadows, trees, grass and bare soil.
Its classes are the seed paper's: background (sidewalks, paved yards), car, road, building and permeable_area
(grass, trees, bare soil). Shadows darken whatever they fall on without changing its class.

``make_scene`` draws it in memory; ``write_scene`` writes the scene, its label and a manifest of tiles with a
train/val split in the format of ../shared/data/*/manifest.json, so ``simulate`` can run on it.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window
from scipy.ndimage import gaussian_filter
from skimage.draw import disk, polygon

from engine.atomic import atomic_file

CLASSES = ["background", "car", "road", "building", "permeable_area"]
BACKGROUND, CAR, ROAD, BUILDING, PERMEABLE = range(5)
CRS = "EPSG:31983"  # SIRGAS 2000 / UTM zone 23S: Brasilia, where the seed paper's imagery comes from
ORIGIN = (190_000.0, 8_250_000.0)  # top-left corner in metres
PIXEL_SIZE = 0.25

GRASS = (96, 128, 62)
SOIL = (156, 126, 92)
TREE = (48, 80, 40)
ASPHALT = (74, 75, 80)
MARKING = (226, 226, 214)
SIDEWALK = (182, 178, 168)
PAVED = (150, 148, 142)
ROOFS = [(168, 86, 62), (200, 198, 192), (112, 112, 118), (92, 112, 138), (190, 150, 100)]
CARS = [(200, 30, 30), (235, 235, 235), (30, 30, 35), (40, 70, 160), (160, 162, 168), (220, 180, 40)]


@dataclass
class SyntheticScene:
    image: np.ndarray  # uint8, 3 x H x W (RGB)
    label: np.ndarray  # uint8, H x W, index into CLASSES


class _Canvas:
    """The image being painted (float RGB), its label, and textures shared by the painters."""

    def __init__(self, size: int, rng: np.random.Generator):
        self.size, self.rng = size, rng
        self.rgb = np.zeros((3, size, size), np.float32)
        self.label = np.zeros((size, size), np.uint8)
        self.fine = rng.normal(0, 1, (size, size)).astype(np.float32)
        self.medium = _smooth_noise(rng, size, 3)
        self.coarse = _smooth_noise(rng, size, 24)

    def paint(self, where, color, cls: int | None, fine: float = 6, medium: float = 8, coarse: float = 6):
        """Colour ``where`` (a mask, or a tuple of slices or index arrays) with ``color`` plus texture; set its
        label to ``cls`` (None keeps the label)."""
        texture = fine * self.fine[where] + medium * self.medium[where] + coarse * self.coarse[where]
        for band in range(3):
            self.rgb[band][where] = color[band] + texture
        if cls is not None:
            self.label[where] = cls

    def shade(self, where, factor: float) -> None:
        self.rgb[_all_bands(where)] *= factor

    def mask_of_polygon(self, rows, cols) -> np.ndarray:
        mask = np.zeros((self.size, self.size), bool)
        rr, cc = polygon(np.asarray(rows), np.asarray(cols), shape=mask.shape)
        mask[rr, cc] = True
        return mask


def _all_bands(where):
    return (slice(None), *where) if isinstance(where, tuple) else (slice(None), where)


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    field = gaussian_filter(rng.normal(0, 1, (size, size)).astype(np.float32), sigma)
    return field / max(float(field.std()), 1e-6)


@dataclass(frozen=True)
class _Road:
    horizontal: bool
    center: int
    width: int


def make_scene(size: int = 2048, seed: int = 0) -> SyntheticScene:
    """Draw a scene of ``size`` x ``size`` pixels (at least 128); the same seed gives the same scene."""
    if size < 128:
        raise ValueError(f"synthetic scene size {size} is too small; use at least 128 pixels")
    rng = np.random.default_rng(seed)
    canvas = _Canvas(size, rng)
    _ground(canvas)
    roads = _road_grid(size, rng)
    road_mask, sidewalk_mask = _roads(canvas, roads)
    free = ~(road_mask | sidewalk_mask)
    building_mask = _blocks(canvas, free)
    tree_mask = _trees(canvas, free & ~building_mask)  # _trees marks the space it takes
    _shadows(canvas, building_mask, tree_mask)
    _cars(canvas, roads)
    light = 1.0 + 0.06 * canvas.coarse  # uneven illumination across the flight
    image = gaussian_filter(canvas.rgb * light[None], (0, 0.7, 0.7)) + rng.normal(0, 2.5, canvas.rgb.shape)
    return SyntheticScene(np.clip(image, 0, 255).astype(np.uint8), canvas.label)


def _ground(canvas: _Canvas) -> None:
    everywhere = np.ones((canvas.size, canvas.size), bool)
    canvas.paint(everywhere, GRASS, PERMEABLE, fine=9, medium=10, coarse=8)
    soil = _smooth_noise(canvas.rng, canvas.size, canvas.size / 40) > 1.0
    canvas.paint(soil, SOIL, PERMEABLE, fine=8, medium=9, coarse=6)


def _road_grid(size: int, rng: np.random.Generator) -> list[_Road]:
    roads = []
    for horizontal in (True, False):
        low = min(380, max(150, size // 3))  # blocks of 40 to 140 m, smaller in small scenes
        spacing = int(rng.integers(low, low + max(60, low // 2)))
        position = int(rng.integers(spacing // 3, spacing))
        while position < size - 40:
            roads.append(_Road(horizontal, position, int(rng.choice([28, 36, 44]))))
            position += spacing + int(rng.integers(-spacing // 5, spacing // 5 + 1))
    return roads


def _roads(canvas: _Canvas, roads: list[_Road]) -> tuple[np.ndarray, np.ndarray]:
    size = canvas.size
    coords = np.arange(size)
    road_mask = np.zeros((size, size), bool)
    sidewalk_mask = np.zeros((size, size), bool)
    for road in roads:
        band = np.abs(coords - road.center) <= road.width // 2
        walk = np.abs(coords - road.center) <= road.width // 2 + 10
        road_mask |= band[:, None] if road.horizontal else band[None, :]
        sidewalk_mask |= walk[:, None] if road.horizontal else walk[None, :]
    sidewalk_mask &= ~road_mask
    canvas.paint(sidewalk_mask, SIDEWALK, BACKGROUND, fine=5, medium=4, coarse=4)
    canvas.paint(road_mask, ASPHALT, ROAD, fine=5, medium=3, coarse=5)
    markings = np.zeros((size, size), bool)
    dashes = (coords // 24) % 2 == 0
    for road in roads:
        line = np.abs(coords - road.center) <= 1
        edge = np.abs(np.abs(coords - road.center) - (road.width // 2 - 3)) <= 0
        if road.horizontal:
            markings |= (line[:, None] & dashes[None, :]) | edge[:, None]
        else:
            markings |= (line[None, :] & dashes[:, None]) | edge[None, :]
    markings &= road_mask
    canvas.paint(markings, MARKING, ROAD, fine=4, medium=2, coarse=2)
    return road_mask, sidewalk_mask


def _blocks(canvas: _Canvas, free: np.ndarray) -> np.ndarray:
    """Paved yards and buildings inside the blocks between roads; returns the building mask."""
    rng, size = canvas.rng, canvas.size
    buildings = np.zeros((size, size), bool)
    attempts = max(8, size * size // 9000)
    lots: list[tuple[int, int, int, int]] = []
    for _ in range(attempts):
        h, w = int(rng.integers(28, 110)), int(rng.integers(28, 110))
        r, c = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
        margin = 8
        window = free[max(0, r - margin) : r + h + margin, max(0, c - margin) : c + w + margin]
        if (
            not window.all()
            or buildings[max(0, r - margin) : r + h + margin, max(0, c - margin) : c + w + margin].any()
        ):
            continue
        if rng.random() < 0.15 and h >= 40 and w >= 40:
            _parking_lot(canvas, r, c, h, w)
            buildings[r : r + h, c : c + w] = True  # keeps later buildings off the lot (cleared below)
            lots.append((r, c, h, w))
            continue
        if rng.random() < 0.5:  # a paved yard around the house
            yard = (slice(max(0, r - margin), r + h + margin), slice(max(0, c - margin), c + w + margin))
            canvas.paint(yard, PAVED, BACKGROUND, fine=5, medium=4, coarse=4)
        roof = (slice(r, r + h), slice(c, c + w))
        canvas.paint(roof, ROOFS[int(rng.integers(len(ROOFS)))], BUILDING, fine=4, medium=3, coarse=3)
        # a pitched roof: one side in the sun, one in the shade
        canvas.shade(
            (slice(r, r + h), slice(c, c + w // 2)) if h > w else (slice(r, r + h // 2), slice(c, c + w)), 0.82
        )
        buildings[roof] = True
    for r, c, h, w in lots:
        buildings[r : r + h, c : c + w] = False
        free[r : r + h, c : c + w] = False  # no trees on the lots
    return buildings


def _parking_lot(canvas: _Canvas, r: int, c: int, h: int, w: int) -> None:
    """A paved lot with painted stalls in rows, most of them holding a car."""
    rng = canvas.rng
    canvas.paint((slice(r, r + h), slice(c, c + w)), PAVED, BACKGROUND, fine=5, medium=4, coarse=3)
    vertical = h >= w  # stalls are 12 px wide and 22 px deep, in rows across the longer side
    length, across = (h, w) if vertical else (w, h)
    for row_start in range(2, across - 22, 26):
        for stall in range(2, length - 12, 12):
            if vertical:
                line = (slice(r + stall, r + stall + 1), slice(c + row_start, c + row_start + 22))
                car = (slice(r + stall + 2, r + stall + 10), slice(c + row_start + 2, c + row_start + 20))
            else:
                line = (slice(r + row_start, r + row_start + 22), slice(c + stall, c + stall + 1))
                car = (slice(r + row_start + 2, r + row_start + 20), slice(c + stall + 2, c + stall + 10))
            canvas.paint(line, MARKING, BACKGROUND, fine=3, medium=1, coarse=1)
            if rng.random() < 0.65:
                canvas.paint(car, CARS[int(rng.integers(len(CARS)))], CAR, fine=4, medium=2, coarse=1)


def _trees(canvas: _Canvas, free: np.ndarray) -> np.ndarray:
    rng, size = canvas.rng, canvas.size
    trees = np.zeros((size, size), bool)
    for _ in range(size * size // 6000):
        radius = int(rng.integers(6, 18))
        r, c = int(rng.integers(radius, size - radius)), int(rng.integers(radius, size - radius))
        rr, cc = disk((r, c), radius, shape=(size, size))
        if not free[rr, cc].all():
            continue
        canvas.paint((rr, cc), TREE, PERMEABLE, fine=12, medium=14, coarse=4)
        lit = np.hypot(rr - r + radius / 3, cc - c + radius / 3) < radius / 2  # the crown's sunny side
        canvas.shade((rr[lit], cc[lit]), 1.18)
        trees[rr, cc] = True
        free[max(0, r - radius - 2) : r + radius + 3, max(0, c - radius - 2) : c + radius + 3] = False
    return trees


def _shadows(canvas: _Canvas, buildings: np.ndarray, trees: np.ndarray) -> None:
    """Sun from the north-west: objects cast shadows towards the south-east; labels stay as they are."""
    shadow = np.zeros_like(buildings)
    for source, reach in ((buildings, 12), (trees, 6)):
        shifted = source.copy()
        for step in range(1, reach + 1):
            shifted[step:, step:] |= source[:-step, :-step]
        shadow |= shifted & ~source
    shadow &= ~buildings
    canvas.shade(shadow, 0.48)


def _cars(canvas: _Canvas, roads: list[_Road]) -> None:
    rng, size = canvas.rng, canvas.size
    for road in roads:
        count = int(rng.integers(size // 100, size // 40))
        lanes = (road.center - road.width // 4, road.center + road.width // 4)
        placed: list[int] = []
        for _ in range(count):
            along = int(rng.integers(10, size - 30))
            if any(abs(along - p) < 26 for p in placed) or _near_crossing(along, road, roads):
                continue
            placed.append(along)
            lane = lanes[int(rng.integers(2))]
            length, width = int(rng.integers(16, 21)), int(rng.integers(7, 9))
            r0, c0 = (lane - width // 2, along) if road.horizontal else (along, lane - width // 2)
            h, w = (width, length) if road.horizontal else (length, width)
            canvas.shade((slice(r0 + 2, r0 + h + 2), slice(c0 + 2, c0 + w + 2)), 0.55)  # its shadow
            body = (slice(r0, r0 + h), slice(c0, c0 + w))
            canvas.paint(body, CARS[int(rng.integers(len(CARS)))], CAR, fine=4, medium=2, coarse=1)
            if road.horizontal:
                glass = (slice(r0 + 1, r0 + h - 1), slice(c0 + w // 4, c0 + w // 4 + 3))
            else:
                glass = (slice(r0 + h // 4, r0 + h // 4 + 3), slice(c0 + 1, c0 + w - 1))
            canvas.rgb[_all_bands(glass)] = 40


def _near_crossing(along: int, road: _Road, roads: list[_Road]) -> bool:
    return any(other.horizontal != road.horizontal and abs(along - other.center) < other.width for other in roads)


def transform_of(row: int = 0, col: int = 0):
    return from_origin(ORIGIN[0] + col * PIXEL_SIZE, ORIGIN[1] - row * PIXEL_SIZE, PIXEL_SIZE, PIXEL_SIZE)


def write_geotiff(path: Path, data: np.ndarray, transform, nodata=None) -> Path:
    """Write bands x H x W (or H x W) uint8 as a tiled, compressed GeoTIFF in the scene's CRS, atomically."""
    data = data[None] if data.ndim == 2 else data
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": CRS,
        "transform": transform,
        "compress": "deflate",
    }
    if data.shape[1] >= 256 and data.shape[2] >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if nodata is not None:
        profile["nodata"] = nodata
    with atomic_file(Path(path)) as tmp, rasterio.open(tmp, "w", **profile) as ds:
        ds.write(data)
    return Path(path)


@dataclass
class SceneFiles:
    image: Path
    label: Path
    manifest: Path
    scene: SyntheticScene


def write_scene(
    folder: Path, size: int = 2048, seed: int = 0, tile_size: int = 256, val_fraction: float = 0.2
) -> SceneFiles:
    """Write scene.tif, scene_label.tif and tiles/ with manifest.json (train/val split, seeded) under ``folder``."""
    if tile_size < 32 or tile_size > size:
        raise ValueError(f"tile size {tile_size} must be between 32 and the scene size {size}")
    folder = Path(folder)
    (folder / "tiles").mkdir(parents=True, exist_ok=True)
    scene = make_scene(size, seed)
    image = write_geotiff(folder / "scene.tif", scene.image, transform_of())
    label = write_geotiff(folder / "scene_label.tif", scene.label, transform_of())
    per_side = size // tile_size
    count = per_side * per_side
    rng = np.random.default_rng(seed + 1)
    val = set(
        rng.choice(count, size=max(1, math.ceil(count * val_fraction)) if count > 1 else 0, replace=False).tolist()
    )
    items = []
    for k in range(count):
        r, c = (k // per_side) * tile_size, (k % per_side) * tile_size
        window = Window(c, r, tile_size, tile_size)
        name = f"tile_{r // tile_size:02d}_{c // tile_size:02d}"
        rows, cols = window.toslices()
        write_geotiff(folder / "tiles" / f"{name}.tif", scene.image[:, rows, cols], transform_of(r, c))
        write_geotiff(folder / "tiles" / f"{name}_label.tif", scene.label[rows, cols], transform_of(r, c))
        items.append(
            {"image": f"tiles/{name}.tif", "label": f"tiles/{name}_label.tif", "split": "val" if k in val else "train"}
        )
    manifest = {
        "name": f"synthetic_{size}_{seed}",
        "crs": CRS,
        "pixel_size_m": PIXEL_SIZE,
        "classes": CLASSES,
        "label_ignore_value": None,
        "license": "generated by engine/synthetic.py",
        "items": items,
    }
    path = folder / "manifest.json"
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return SceneFiles(image, label, path, scene)
