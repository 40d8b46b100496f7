"""Fixtures of the engine's class weight and share tests."""

import numpy as np
import pytest
import torch

from engine.models import build_network, save_model
from tests.engine.test_class_weights import _config
from tests.fixtures import write_raster


@pytest.fixture(scope="session")
def untrained_model(tmp_path_factory):
    """An untrained (seeded) network: its classes' probabilities are close, so a weight moves many pixels."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "model"
    save_model(path, build_network("Unet", "resnet18", 3, 3), _config())
    return path


@pytest.fixture(scope="session")
def noise_raster(tmp_path_factory):
    rng = np.random.default_rng(4)
    image = rng.integers(1, 255, (3, 96, 128), dtype=np.uint8)
    return write_raster(tmp_path_factory.mktemp("raster") / "r.tif", image, crs="EPSG:31983", pixel=0.5)
