"""Datasets of image/label GeoTIFF pairs described by a manifest.json (the format of ../shared/data/*/manifest.json).

```
{"name": "bsb_toy", "classes": ["background", "car", ...], "label_ignore_value": null,
 "items": [{"image": "images/1.tif", "label": "labels/1.tif", "split": "train", "seed_points": "seed_points/1.tif"}]}
```
Paths are relative to the manifest's folder (or absolute). ``split`` is ``train``, ``val`` or anything else (such as
``all``) for items without a split. ``seed_points`` is an optional raster of first clicks: its nodata value (or any
value that is not a class index) marks unlabelled pixels.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.classes import ClassInfo, parse_classes
from engine.errors import InputError, InputFileError
from engine.points import PixelLabels
from engine.raster_io import open_raster


@dataclass(frozen=True)
class ManifestItem:
    image: Path
    label: Path
    split: str
    seed_points: Path | None = None


@dataclass
class Manifest:
    path: Path
    name: str
    classes: list[ClassInfo]
    ignore_value: int | None
    items: list[ManifestItem]

    def split(self, val_fraction: float = 0.2, seed: int = 0) -> tuple[list[ManifestItem], list[ManifestItem]]:
        """(train, val) items. Without a val split, a seeded ``val_fraction`` of the items is held out; with
        ``val_fraction`` 0 the training items are also the validation items."""
        val = [item for item in self.items if item.split == "val"]
        if val:
            train = [item for item in self.items if item.split == "train"] or [i for i in self.items if i not in val]
            return train, val
        items = list(self.items)
        if val_fraction <= 0 or len(items) < 2:
            return items, items
        count = min(len(items) - 1, max(1, round(len(items) * val_fraction)))
        held = set(np.random.default_rng(seed).choice(len(items), size=count, replace=False).tolist())
        return [it for k, it in enumerate(items) if k not in held], [it for k, it in enumerate(items) if k in held]


def read_manifest(path: str | Path, field: str = "manifest") -> Manifest:
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"--{field}: {path} does not exist; check the path", field)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputFileError(f"--{field}: {path} is not readable JSON ({exc})", field) from exc
    if not isinstance(data, dict) or "classes" not in data or "items" not in data:
        raise InputError(
            f"--{field}: {path} needs the fields classes and items (see ../shared/data/*/manifest.json)", field
        )
    classes = parse_classes(data["classes"])
    ignore = data.get("label_ignore_value")
    if ignore is not None and not (isinstance(ignore, int) and 0 <= ignore <= 255):
        raise InputError(f"--{field}: label_ignore_value {ignore!r} in {path} must be null or an integer 0..255", field)
    items = [_item(path, k, entry, field) for k, entry in enumerate(data["items"] or [])]
    if not items:
        raise InputError(f"--{field}: {path} lists no items; add image/label pairs", field)
    return Manifest(path, str(data.get("name", path.parent.name)), classes, ignore, items)


def _item(path: Path, k: int, entry, field: str) -> ManifestItem:
    if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
        raise InputError(f"--{field}: item {k} of {path} needs an image and a label", field)

    def resolve(name: str) -> Path:
        file = Path(name) if Path(name).is_absolute() else path.parent / name
        if not file.exists():
            raise InputFileError(f"--{field}: {file} (item {k} of {path}) does not exist", field)
        return file

    seed = entry.get("seed_points")
    return ManifestItem(
        resolve(entry["image"]), resolve(entry["label"]), str(entry.get("split", "")), resolve(seed) if seed else None
    )


def read_label(item: ManifestItem, manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """The item's reference label (uint8 H x W) and where it holds a class (bool H x W)."""
    with open_raster(item.label, "manifest", need_crs=False) as ds:
        label = ds.read(1)
        mask = ds.read_masks(1) > 0
    num = len(manifest.classes)
    valid = mask & (label >= 0) & (label < num)
    if manifest.ignore_value is not None:
        valid &= label != manifest.ignore_value
    stray = mask & ~valid
    if manifest.ignore_value is not None:
        stray &= label != manifest.ignore_value
    if stray.any():
        bad = sorted(np.unique(label[stray]).tolist())[:5]
        raise InputFileError(
            f"--manifest: {item.label} holds value(s) {bad} that are neither a class index "
            f"0..{num - 1} nor the label_ignore_value; fix the label or the manifest",
            "manifest",
        )
    return label.astype(np.uint8), valid


def read_seed_points(item: ManifestItem, manifest: Manifest) -> PixelLabels:
    """The item's seed clicks: pixels of its seed_points raster holding a class index (nodata is unlabelled)."""
    if item.seed_points is None:
        return PixelLabels()
    with open_raster(item.seed_points, "manifest", need_crs=False) as ds:
        values = ds.read(1)
        labelled = ds.read_masks(1) > 0
    labelled &= (values >= 0) & (values < len(manifest.classes))
    rows, cols = np.nonzero(labelled)
    return PixelLabels(rows.astype(np.int64), cols.astype(np.int64), values[rows, cols].astype(np.int64))
