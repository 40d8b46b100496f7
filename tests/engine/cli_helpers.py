"""Running the engine as the plugin does: a subprocess with JSON-lines events."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.fixtures import pixel_center, write_points

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--epochs", "1", "--patch-size", "64", "--batch-size", "2", "--patches-per-epoch", "4"]


@dataclass
class Run:
    code: int
    events: list[dict]
    stderr: str

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]


def engine_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def run_engine(*args: str, timeout: float = 300) -> Run:
    proc = subprocess.run(
        [sys.executable, "-m", "engine", *map(str, args), "--events", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=engine_env(),
        timeout=timeout,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return Run(proc.returncode, events, proc.stderr)


def scene_points(folder: Path, label: np.ndarray, per_class: int, seed: int = 0, names=None) -> Path:
    """``per_class`` points of each class of a dense label, at random pixels, as a GeoPackage."""
    rng = np.random.default_rng(seed)
    xy, classes = [], []
    for c in np.unique(label):
        rows, cols = np.nonzero(label == c)
        for i in rng.choice(len(rows), per_class, replace=False):
            xy.append(pixel_center(rows[i], cols[i]))
            classes.append(names[c] if names else int(c))
    return write_points(Path(folder) / "points.gpkg", xy, classes)
