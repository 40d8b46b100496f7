"""A session folder: its layout, its settings (session.json) and its iteration table (iterations.json).

Plain Python: no Qt, no QGIS. Everything in it is a file a user can open.
"""

import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .atomic import read_json, write_json
from .classes import DEFAULT_CLASSES, Classes, classes_from_json, classes_to_json

SCHEMA_VERSION = 1
STRATEGIES = ("superpixel", "entropy", "margin", "random")


@dataclass(frozen=True)
class LoopOptions:
    """What the Predict and Suggest buttons do."""

    strategy: str = "superpixel"
    budget: int = 20
    extent: str = "full"  # "full" raster or the "visible" map extent


@dataclass(frozen=True)
class SessionState:
    classes: Classes = DEFAULT_CLASSES
    rasters: tuple[str, ...] = ()
    reference: str | None = None
    active_class: int = 1
    loop: LoopOptions = LoopOptions()

    def to_json(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "classes": classes_to_json(self.classes),
                "rasters": list(self.rasters), "reference": self.reference, "active_class": self.active_class,
                "loop": asdict(self.loop)}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> "SessionState":
        loop = LoopOptions(**{k: v for k, v in data.get("loop", {}).items() if k in LoopOptions.__dataclass_fields__})
        classes = classes_from_json(data["classes"]) if data.get("classes") else DEFAULT_CLASSES
        active = min(max(int(data.get("active_class", 1)), 0), len(classes) - 1)
        return cls(classes, tuple(data.get("rasters", ())), data.get("reference"), active, loop)


@dataclass(frozen=True)
class PredictionFiles:
    raster: str  # the input raster
    prediction: str
    uncertainty: str


@dataclass(frozen=True)
class IterationRecord:
    """One row of the iteration table."""

    number: int
    model_dir: str
    finished: str = ""  # ISO time the training finished
    seconds: float | None = None
    loss: float | None = None
    points_per_class: dict = field(default_factory=dict)
    predictions: tuple[PredictionFiles, ...] = ()
    suggestions: tuple[str, ...] = ()
    metrics: dict | None = None  # {"accuracy": .., "miou": .., "iou": {class: ..}, "pixels": ..}
    map_shares: dict | None = None  # each class's share of the pixels the last prediction painted

    def to_json(self) -> dict:
        data = asdict(self)
        data["predictions"] = [asdict(p) for p in self.predictions]
        data["suggestions"] = list(self.suggestions)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "IterationRecord":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["predictions"] = tuple(PredictionFiles(**p) for p in data.get("predictions", ()))
        known["suggestions"] = tuple(data.get("suggestions", ()))
        return cls(**known)


class Session:
    """The files of one session folder. Creating one creates the folder; nothing else is written until saved."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder).expanduser().resolve()
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def state_file(self) -> Path:
        return self.folder / "session.json"

    @property
    def history_file(self) -> Path:
        return self.folder / "iterations.json"

    @property
    def points_file(self) -> Path:
        return self.folder / "points.gpkg"

    def iteration_dir(self, number: int) -> Path:
        return self.folder / "iterations" / f"{number:03d}"

    def model_dir(self, number: int) -> Path:
        return self.iteration_dir(number) / "model"

    def run_dir(self, number: int, command: str) -> Path:
        """A fresh folder for one engine run (a prediction or suggestion never overwrites a file a layer shows)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = self.iteration_dir(number) / f"{command}-{stamp}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        path.mkdir(parents=True)
        return path

    def load_state(self) -> SessionState:
        data = read_json(self.state_file)
        return SessionState.from_json(data) if data else SessionState()

    def save_state(self, state: SessionState) -> None:
        write_json(self.state_file, state.to_json())

    def load_history(self) -> list[IterationRecord]:
        data = read_json(self.history_file, default={"iterations": []})
        return [IterationRecord.from_json(item) for item in data.get("iterations", [])]

    def save_history(self, records: list[IterationRecord]) -> None:
        write_json(self.history_file, {"schema_version": SCHEMA_VERSION,
                                       "iterations": [r.to_json() for r in records]})  # fmt: skip


def latest(records: list[IterationRecord]) -> IterationRecord | None:
    return max(records, key=lambda r: r.number) if records else None


def upsert(records: list[IterationRecord], record: IterationRecord) -> list[IterationRecord]:
    """The table with ``record`` replacing the one of the same number (or appended), sorted by number."""
    others = [r for r in records if r.number != record.number]
    return sorted([*others, record], key=lambda r: r.number)


def with_prediction(record: IterationRecord, files: list[PredictionFiles]) -> IterationRecord:
    """New predictions replace earlier ones of the same raster."""
    kept = tuple(p for p in record.predictions if p.raster not in {f.raster for f in files})
    return replace(record, predictions=kept + tuple(files))


def map_shares(class_pixels: list[dict]) -> dict | None:
    """Each class's share of the pixels painted, over the ``class_pixels`` of one or more predict results (engine
    result events); None when none of them gives any."""
    total: dict[str, int] = {}
    for counts in class_pixels:
        for name, n in (counts or {}).items():
            total[name] = total.get(name, 0) + int(n)
    pixels = sum(total.values())
    return {name: n / pixels for name, n in total.items()} if pixels else None


def share_jumps(previous: dict | None, current: dict | None, ratio: float = 2.0, points: float = 0.05) -> list[str]:
    """Classes whose share of the map moved by more than ``ratio`` times and ``points`` (a fraction) since the previous
    prediction, in words: a model that suddenly paints a class far beyond (or below) its former share has often
    collapsed, and a class weight or a few clicks undo it."""
    notes = []
    for name, now in (current or {}).items():
        before = (previous or {}).get(name)
        if before is None or max(now, before) <= ratio * min(now, before) or abs(now - before) <= points:
            continue
        more = now > before
        advice = ("too much, lower its weight in the class table or click where it is wrong" if more
                  else "too little, raise its weight in the class table or click where it is missed")  # fmt: skip
        notes.append(f"{name} now covers {100 * now:.1f}% of the map against {100 * before:.1f}% before: if that is "
                     f"{advice} (or type the share you expect, such as 7%, as its weight)")  # fmt: skip
    return notes


def shares_summary(shares: dict, classes: Classes | None = None) -> str:
    """ "background 77.4% · road 22.6%" in class order."""
    return " · ".join(f"{name} {100 * shares[name]:.1f}%" for name in _class_order(shares, classes))


def safe_name(text: str) -> str:
    """A file-name-safe version of a layer or raster name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "raster"


def points_summary(points_per_class: dict, classes: Classes | None = None) -> str:
    names = _class_order(points_per_class, classes)
    return " · ".join(f"{name} {points_per_class[name]}" for name in names if points_per_class[name])


def _class_order(values: dict, classes: Classes | None) -> list[str]:
    """The keys of ``values`` in the order of ``classes``, then the others in their own order."""
    order = [c.name for c in classes or () if c.name in values]
    return order + [k for k in values if k not in order]
