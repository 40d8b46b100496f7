"""Shared fixtures: tiny seeded GeoTIFFs with a real CRS, and point layers, written to tmp_path."""

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pytest

from tests.fixtures import write_points, write_raster, write_scene


@pytest.fixture(autouse=True)
def _float32_on_the_cpu(monkeypatch):
    """The engine in float32 on every CPU, so that no result depends on whether the CPU running the tests has native
    bf16 (engine/device.py); tests/engine/test_precision.py sets SPARSE_AL_CPU_BF16 itself. A --precision that a
    test's in-process engine command chose ends with the test."""
    monkeypatch.setenv("SPARSE_AL_CPU_BF16", "0")
    yield
    device = sys.modules.get("engine.device")  # not imported by the plugin's tests
    if device is not None:
        device.reset_precision()


@pytest.fixture
def raster(tmp_path):
    """A 64 x 64 three-band uint8 raster in UTM 33N with 1 m pixels."""
    rng = np.random.default_rng(0)
    return write_raster(tmp_path / "image.tif", rng.integers(0, 255, (3, 64, 64), dtype=np.uint8))


@pytest.fixture
def scene(tmp_path):
    """A small scene of three visually distinct classes with its dense label (see tests/fixtures.py)."""
    return write_scene(tmp_path, size=128, seed=0)


__all__ = ["write_points", "write_raster"]
