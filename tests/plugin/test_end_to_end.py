"""The plugin with the real engine (python -m engine in this environment): a tiny train round, then predict and
suggest when the engine has them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qgis.core import Qgis, QgsPalettedRasterRenderer

from sparse_al_plugin.classes import ClassSpec
from sparse_al_plugin.dock import RunRequest
from sparse_al_plugin.jobs import TrainOptions
from sparse_al_plugin.session import LoopOptions
from sparse_al_plugin.settings import PluginSettings, save_settings
from tests.fixtures import pixel_center, write_scene
from tests.plugin.conftest import ROOT, click, messages, open_session, show_raster, wait_idle

pytestmark = pytest.mark.slow
# The engine under test: this checkout's, or another folder holding an engine package (e.g. a branch's export).
ENGINE_PATH = os.environ.get("SPARSE_AL_TEST_ENGINE_PATH", str(ROOT))
TINY = TrainOptions(epochs=1, patch_size=64, batch_size=4, patches_per_epoch=8, encoder="resnet18")
CLASSES = (ClassSpec("background", "#b0b0b0"), ClassSpec("red", "#e31a1c"), ClassSpec("blue", "#1f78b4"))


@pytest.fixture
def real_engine(plugin, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    save_settings(PluginSettings(python=sys.executable, module="engine", path=ENGINE_PATH, device="cpu", train=TINY))
    return plugin


def _engine_has(command: str) -> bool:
    """Whether the engine under test has ``command`` with a --model option (predict and suggest are landing)."""
    env = dict(os.environ, PYTHONPATH=ENGINE_PATH)
    argv = [sys.executable, "-m", "engine", command, "--help"]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=Path(ENGINE_PATH).parent)
    return result.returncode == 0 and "--model" in result.stdout


def click_scene(plugin, tmp_path):
    scene = write_scene(tmp_path, size=128, seed=0)
    raster = show_raster(plugin.iface, scene.image)
    open_session(plugin, tmp_path / "session", [raster])
    plugin.controller.set_classes(CLASSES, 1)
    rng = np.random.default_rng(0)
    transform = plugin.iface.mapCanvas().getCoordinateTransform()
    for k in range(3):
        rows, cols = np.nonzero(scene.label == k)
        plugin.controller.activate_class(k)
        for i in rng.choice(len(rows), 4, replace=False):
            pixel = transform.transform(*pixel_center(int(rows[i]), int(cols[i])))
            click(plugin, round(pixel.x()), round(pixel.y()))
    return scene


def test_train_round_with_the_real_engine(real_engine, tmp_path):
    plugin = real_engine
    click_scene(plugin, tmp_path)
    assert plugin.controller.store.counts() == {"background": 4, "red": 4, "blue": 4}
    plugin.controller.loop.run(RunRequest(("train",), LoopOptions()))
    wait_idle(plugin, timeout=300)
    assert messages(plugin.iface, Qgis.MessageLevel.Critical) == []
    [record] = plugin.controller.history
    assert record.number == 1 and isinstance(record.loss, float) and record.loss > 0
    assert record.points_per_class == {"background": 4, "red": 4, "blue": 4}
    config = json.loads((Path(record.model_dir) / "config.json").read_text())
    assert [c["name"] for c in config["classes"]] == ["background", "red", "blue"]
    assert (Path(record.model_dir) / "weights.safetensors").stat().st_size > 1000
    assert plugin.dock.history_table.item(0, 2).text() == f"{record.loss:.3f}"

    plugin.controller.loop.run(RunRequest(("train",), LoopOptions()))  # warm start from iteration 1
    wait_idle(plugin, timeout=300)
    assert messages(plugin.iface, Qgis.MessageLevel.Critical) == []
    job = json.loads((tmp_path / "session" / "iterations" / "002" / "train.json").read_text())
    assert job["init"] == record.model_dir
    assert [r.number for r in plugin.controller.history] == [1, 2]


@pytest.mark.parametrize("command", ["predict", "suggest"])
def test_predict_or_suggest_with_the_real_engine(real_engine, tmp_path, command):
    if not _engine_has(command):
        pytest.skip(f"the engine's {command} command has not landed on this branch yet")
    plugin = real_engine
    click_scene(plugin, tmp_path)
    plugin.controller.loop.run(RunRequest(("train", command), LoopOptions("random", 5, "full")))
    wait_idle(plugin, timeout=600)
    assert messages(plugin.iface, Qgis.MessageLevel.Critical) == []
    if command == "predict":
        [prediction] = plugin.controller.results.layers("prediction", 1)
        [uncertainty] = plugin.controller.results.layers("uncertainty", 1)
        renderer = prediction.renderer()
        assert isinstance(renderer, QgsPalettedRasterRenderer)
        assert [c.label for c in renderer.classes()] == ["background", "red", "blue"]
        assert prediction.width() == 128 and uncertainty.isValid()
        assert Path(plugin.controller.history[0].predictions[0].prediction).exists()
    else:
        [suggestions] = plugin.controller.results.layers("suggestions", 1)
        assert 0 < suggestions.featureCount() <= 5
