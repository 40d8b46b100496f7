"""The plugin with the real engine (python -m engine in this environment): a tiny train round, then predict and
suggest when the engine has them."""

import json
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
TINY = TrainOptions(epochs=1, patch_size=64, batch_size=4, patches_per_epoch=8, encoder="resnet18")
CLASSES = (ClassSpec("background", "#b0b0b0"), ClassSpec("red", "#e31a1c"), ClassSpec("blue", "#1f78b4"))


@pytest.fixture
def real_engine(plugin, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    save_settings(PluginSettings(python=sys.executable, module="engine", path=str(ROOT), device="cpu", train=TINY))
    return plugin


def _engine_has(command: str) -> bool:
    cli = pytest.importorskip("engine.cli")
    return any(a.dest == "model" for a in cli._subparser(cli.build_parser(), command)._actions)


def click_scene(plugin, tmp_path):
    scene = write_scene(tmp_path, size=128, seed=0)
    raster = show_raster(plugin.iface, scene.image)
    open_session(plugin, tmp_path / "session", [raster])
    plugin.controller._set_classes(CLASSES, 1)
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
    plugin.controller.run(RunRequest(("train",), LoopOptions()))
    wait_idle(plugin, timeout=300)
    assert messages(plugin.iface, Qgis.MessageLevel.Critical) == []
    [record] = plugin.controller.history
    assert record.number == 1 and isinstance(record.loss, float) and record.loss > 0
    assert record.points_per_class == {"background": 4, "red": 4, "blue": 4}
    config = json.loads((Path(record.model_dir) / "config.json").read_text())
    assert [c["name"] for c in config["classes"]] == ["background", "red", "blue"]
    assert (Path(record.model_dir) / "weights.safetensors").stat().st_size > 1000
    assert plugin.dock.history_table.item(0, 2).text() == f"{record.loss:.3f}"

    plugin.controller.run(RunRequest(("train",), LoopOptions()))  # warm start from iteration 1
    wait_idle(plugin, timeout=300)
    assert messages(plugin.iface, Qgis.MessageLevel.Critical) == []
    job = json.loads((tmp_path / "session" / "iterations" / "002" / "train.json").read_text())
    assert job["init"] == record.model_dir
    assert [r.number for r in plugin.controller.history] == [1, 2]


def test_predict_and_suggest_with_the_real_engine(real_engine, tmp_path):
    if not (_engine_has("predict") and _engine_has("suggest")):
        pytest.skip("the engine's predict and suggest commands have not landed on this branch yet")
    plugin = real_engine
    click_scene(plugin, tmp_path)
    plugin.controller.run(RunRequest(("train", "predict", "suggest"), LoopOptions("random", 5, "full")))
    wait_idle(plugin, timeout=600)
    assert messages(plugin.iface, Qgis.MessageLevel.Critical) == []
    layers = {role: plugin.controller.results.layers(role, 1) for role in ("prediction", "uncertainty", "suggestions")}
    assert all(len(found) == 1 for found in layers.values()), layers
    assert isinstance(layers["prediction"][0].renderer(), QgsPalettedRasterRenderer)
    assert layers["suggestions"][0].featureCount() > 0
