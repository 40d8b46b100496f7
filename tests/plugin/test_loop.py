"""Train, predict and suggest through the engine contract, with the fake engine: layers, styles, table, errors."""

import json
from pathlib import Path

import numpy as np
from qgis.core import (
    Qgis,
    QgsLayerTreeGroup,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsSingleBandPseudoColorRenderer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QEvent

from sparse_al_plugin.dock import RunRequest
from sparse_al_plugin.session import LoopOptions
from tests.fixtures import write_raster
from tests.plugin.conftest import click, messages, mouse, open_session, show_raster, wait_for, wait_idle

NEXT = RunRequest(("train", "predict", "suggest"), LoopOptions("entropy", 5, "full"))


def calls(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def group_layers(number: int) -> dict[str, object]:
    root = QgsProject.instance().layerTreeRoot()
    [group] = [g for g in root.children() if isinstance(g, QgsLayerTreeGroup) and g.name() == f"Iteration {number}"]
    return {node.layer().name(): node for node in group.findLayers()}, group


def start_session(plugin, image, tmp_path, n_points: int = 3):
    raster = show_raster(plugin.iface, image)
    open_session(plugin, tmp_path / "session", [raster])
    for i in range(n_points):
        plugin.controller.activate_class(i % 2)
        click(plugin, 100 + 80 * i, 150 + 60 * i)
    return raster


def test_next_iteration_adds_styled_layers_in_a_group_and_a_table_row(plugin, image, tmp_path, fake_engine):
    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(NEXT)
    wait_idle(plugin)

    assert [c["command"] for c in calls(fake_engine)] == ["train", "predict", "suggest"]
    train, predict, suggest = (c["job"] for c in calls(fake_engine))
    assert train["raster"] == [str(image)] and train["points"] == str(tmp_path / "session" / "points.gpkg")
    assert [c["name"] for c in train["classes"]] == ["background", "class_1"] and "init" not in train
    assert predict["model"] == train["out"] and "bbox" not in predict
    assert suggest["strategy"] == "entropy" and suggest["budget"] == 5 and suggest["iteration"] == 1
    assert suggest["raster"] == [str(image)] and suggest["points"] == train["points"]
    assert predict["raster"] == str(image)

    nodes, group = group_layers(1)
    assert set(nodes) == {"prediction", "uncertainty", "suggestions", "superpixels"}
    prediction = nodes["prediction"].layer()
    renderer = prediction.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [(c.value, c.color.name(), c.label) for c in renderer.classes()] == [
        (0, "#b0b0b0", "background"), (1, "#e31a1c", "class_1")]  # fmt: skip
    assert isinstance(nodes["uncertainty"].layer().renderer(), QgsSingleBandPseudoColorRenderer)
    assert nodes["uncertainty"].layer().renderer().classificationMax() == 1.0
    assert nodes["suggestions"].layer().featureCount() == 5
    assert group.isVisible() and nodes["prediction"].isVisible() and not nodes["uncertainty"].isVisible()

    table = plugin.dock.history_table
    assert table.rowCount() == 1 and table.item(0, 0).text() == "1" and table.item(0, 2).text() == "0.250"
    assert table.item(0, 1).text() == "3" and "background 2 · class_1 1" in table.item(0, 1).toolTip()
    saved = json.loads((tmp_path / "session" / "iterations.json").read_text())["iterations"]
    assert saved[0]["number"] == 1 and saved[0]["loss"] == 0.25 and len(saved[0]["predictions"]) == 1
    width = QgsRasterLayer(str(image)).width()  # the fake paints the left half background, the right half class_1
    assert saved[0]["map_shares"] == {"background": (width + 1) // 2 / width, "class_1": width // 2 / width}
    assert "map: background 50.0% · class_1 50.0%" in table.item(0, 0).toolTip()
    assert Path(saved[0]["suggestions"][0]).exists()
    assert messages(plugin.iface, Qgis.MessageLevel.Critical) == []


def test_second_iteration_warm_starts_and_hides_the_first(plugin, image, tmp_path, fake_engine):
    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(NEXT)
    wait_idle(plugin)
    click(plugin, 500, 500)
    plugin.controller.loop.run(NEXT)
    wait_idle(plugin)

    trains = [c["job"] for c in calls(fake_engine) if c["command"] == "train"]
    assert trains[1]["init"] == trains[0]["out"] and trains[1]["out"] != trains[0]["out"]
    _, group1 = group_layers(1)
    _, group2 = group_layers(2)
    assert group2.isVisible() and not group1.isVisible()
    assert plugin.dock.history_table.rowCount() == 2
    points = plugin.controller.store.layer
    assert sorted(f["iteration"] for f in points.getFeatures()) == [1, 1, 1, 2]


def test_a_class_painted_far_beyond_its_former_share_is_pointed_out(plugin, image, tmp_path, fake_engine):
    from dataclasses import replace

    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(RunRequest(("train", "predict"), LoopOptions()))
    wait_idle(plugin)
    [first] = plugin.controller.history
    assert messages(plugin.iface, Qgis.MessageLevel.Warning) == []  # nothing to compare the first map with
    plugin.controller.save_history([replace(first, map_shares={"background": 0.9, "class_1": 0.1})])
    click(plugin, 500, 500)
    plugin.controller.loop.run(RunRequest(("train", "predict"), LoopOptions()))
    wait_idle(plugin)
    warnings = list(messages(plugin.iface, Qgis.MessageLevel.Warning))
    assert any("class_1 now covers 50.0% of the map against 10.0% before" in m for m in warnings), warnings
    assert not any("background now covers" in m for m in warnings)  # 90% to 50%: less than halved
    second = plugin.controller.history[-1]
    other_classes = {"background": 0.9, "class_1": 0.05, "gone": 0.05}
    plugin.controller.save_history([first, replace(second, map_shares=other_classes)])
    click(plugin, 520, 520)
    plugin.controller.loop.run(RunRequest(("train", "predict"), LoopOptions()))
    wait_idle(plugin)
    assert messages(plugin.iface, Qgis.MessageLevel.Warning) == warnings  # another class list: nothing compared


def test_clicking_a_suggestion_accepts_it_as_a_point_of_the_active_class(plugin, image, tmp_path):
    start_session(plugin, image, tmp_path, n_points=1)
    plugin.controller.loop.run(NEXT)
    wait_idle(plugin)
    nodes, _ = group_layers(1)
    suggestions: QgsVectorLayer = nodes["suggestions"].layer()
    target = next(suggestions.getFeatures()).geometry().asPoint()  # same CRS as the canvas here
    pixel = plugin.iface.mapCanvas().getCoordinateTransform().transform(target)
    plugin.controller.activate_class(0)
    click(plugin, round(pixel.x()) + 3, round(pixel.y()) - 2)  # a few pixels off: snaps to the suggestion

    accepted = [f for f in plugin.controller.store.layer.getFeatures() if f["origin"] == "suggestion"]
    assert len(accepted) == 1 and accepted[0]["class"] == "background"
    assert accepted[0].geometry().asPoint().distance(target) < 1e-6
    assert suggestions.featureCount() == 4
    plugin.controller.undo()
    assert suggestions.featureCount() == 5
    assert not [f for f in plugin.controller.store.layer.getFeatures() if f["origin"] == "suggestion"]


def test_predict_visible_extent_sends_a_bbox_in_the_raster_crs(plugin, image, tmp_path, fake_engine):
    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(RunRequest(("train",), LoopOptions()))
    wait_idle(plugin)
    canvas = plugin.iface.mapCanvas()
    from qgis.core import QgsRectangle

    canvas.setExtent(QgsRectangle(500_010, 4_649_950, 500_030, 4_649_970))
    plugin.controller.loop.run(RunRequest(("predict",), LoopOptions(extent="visible")))
    wait_idle(plugin)
    bbox = calls(fake_engine)[-1]["job"]["bbox"].split(",")
    assert plugin.controller.history[-1].map_shares is None  # a part of the map is not compared with whole maps
    assert bbox[-1] == "EPSG:32633"
    xmin, ymin, xmax, ymax = map(float, bbox[:4])
    assert 500_000 <= xmin <= 500_010 and 500_030 <= xmax <= 500_064
    assert 4_649_936 <= ymin <= 4_649_950 and 4_649_970 <= ymax <= 4_650_000


def test_metrics_against_a_reference_raster(plugin, image, tmp_path):
    """The fake predicts class 0 in the left half and 1 in the right; the reference is all class 1."""
    start_session(plugin, image, tmp_path)
    reference = write_raster(tmp_path / "reference.tif", np.ones((64, 64), np.uint8))
    layer = QgsRasterLayer(str(reference), "reference")
    QgsProject.instance().addMapLayer(layer)
    plugin.controller.set_reference(layer.id())
    plugin.controller.loop.run(NEXT)
    wait_idle(plugin)
    metrics = plugin.controller.history[0].metrics
    assert metrics["pixels"] == 64 * 64
    assert abs(metrics["accuracy"] - 0.5) < 1e-9
    assert metrics["iou"] == {"background": 0.0, "class_1": 0.5}
    assert plugin.dock.history_table.item(0, 4).text() == "50.0"


def test_session_reopened_restores_table_and_layers(plugin, image, tmp_path):
    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(NEXT)
    wait_idle(plugin)
    QgsProject.instance().removeAllMapLayers()
    QgsProject.instance().layerTreeRoot().removeAllChildren()
    plugin.controller.open_session(str(tmp_path / "session"))
    assert plugin.dock.history_table.rowCount() == 1
    nodes, group = group_layers(1)
    assert {"prediction", "uncertainty", "suggestions"} <= set(nodes) and group.isVisible()
    assert plugin.controller.store.layer.featureCount() == 3
    assert [layer.source() for layer in plugin.controller.session_rasters()] == [str(image)]


def test_engine_error_reaches_the_message_bar_and_the_log(plugin, image, tmp_path, monkeypatch):
    start_session(plugin, image, tmp_path)
    monkeypatch.setenv("FAKE_ENGINE_MODE", "error")
    plugin.controller.loop.run(NEXT)
    wait_idle(plugin)
    [critical] = messages(plugin.iface, Qgis.MessageLevel.Critical)
    assert "train failed: --points: fake.gpkg has no CRS" in critical
    assert plugin.controller.history == [] and plugin.controller.loop.queue == []
    assert plugin.dock.next_button.isEnabled()
    assert "fake.gpkg has no CRS" in plugin.dock.stage_label.text()


def test_engine_crash_without_an_error_event_is_reported(plugin, image, tmp_path, monkeypatch):
    start_session(plugin, image, tmp_path)
    monkeypatch.setenv("FAKE_ENGINE_MODE", "crash")
    plugin.controller.loop.run(NEXT)
    wait_idle(plugin)
    [critical] = messages(plugin.iface, Qgis.MessageLevel.Critical)
    assert "exit status 1" in critical
    log = (tmp_path / "session" / "iterations" / "001" / "train.log").read_text()
    assert "RuntimeError: fake crash" in log


def test_cancel_stops_the_engine_with_sigterm_and_keeps_earlier_results(plugin, image, tmp_path, monkeypatch):
    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(NEXT)
    wait_idle(plugin)
    marker = tmp_path / "sigterm"
    monkeypatch.setenv("FAKE_ENGINE_MODE", "hang")
    monkeypatch.setenv("FAKE_ENGINE_SIGNAL_FILE", str(marker))
    plugin.controller.loop.run(NEXT)
    wait_for(lambda: plugin.dock.progress_bar.value() >= 1, 30, "the engine's first progress event")
    assert plugin.dock.cancel_button.isEnabled() and not plugin.dock.train_button.isEnabled()
    plugin.controller.loop.cancel()
    wait_idle(plugin)
    assert marker.read_text() == "SIGTERM"
    assert any("cancelled" in m for m in messages(plugin.iface, Qgis.MessageLevel.Info))
    assert messages(plugin.iface, Qgis.MessageLevel.Critical) == []
    assert [r.number for r in plugin.controller.history] == [1]
    nodes, _ = group_layers(1)
    assert nodes["prediction"].layer().isValid()
    assert plugin.controller.loop.queue == [] and plugin.dock.next_button.isEnabled()


def test_predict_before_training_says_to_train_first(plugin, image, tmp_path, fake_engine):
    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(RunRequest(("predict",), LoopOptions()))
    wait_idle(plugin)
    assert any("no trained model yet" in m for m in messages(plugin.iface, Qgis.MessageLevel.Warning))
    assert calls(fake_engine) == []
    assert plugin.dock.predict_button.isEnabled()


def test_renamed_class_renames_points_and_trains_a_fresh_model(plugin, image, tmp_path, fake_engine):
    from sparse_al_plugin.dock import ClassEdit

    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(RunRequest(("train",), LoopOptions()))
    wait_idle(plugin)
    plugin.controller.edit_class(ClassEdit("rename", 1, "car"))
    assert sorted(f["class"] for f in plugin.controller.store.layer.getFeatures()) == [
        "background",
        "background",
        "car",
    ]
    plugin.controller.loop.run(RunRequest(("train",), LoopOptions()))
    wait_idle(plugin)
    job = calls(fake_engine)[-1]["job"]
    assert "init" not in job and [c["name"] for c in job["classes"]] == ["background", "car"]


def test_a_class_weight_typed_in_the_dock_is_saved_and_sent_to_predict_and_suggest(plugin, image, tmp_path,
                                                                                   fake_engine):  # fmt: skip
    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(RunRequest(("train",), LoopOptions()))
    wait_idle(plugin)
    plugin.dock.class_table.item(1, 4).setText("x2.5")  # what editing the cell does
    assert plugin.dock.class_table.item(1, 4).text() == "2.5"
    assert any("class_1 weighs 2.5: press Predict" in m for m in messages(plugin.iface, Qgis.MessageLevel.Info))
    plugin.dock.class_table.item(0, 4).setText("lots")  # refused: the cell goes back to the saved weight
    assert plugin.dock.class_table.item(0, 4).text() == "1"
    assert any("from 0.01 to 100" in m for m in messages(plugin.iface, Qgis.MessageLevel.Warning))
    saved = json.loads((tmp_path / "session" / "session.json").read_text())["classes"]
    assert [c.get("weight", 1) for c in saved] == [1, 2.5]
    plugin.controller.loop.run(RunRequest(("predict", "suggest"), LoopOptions()))
    wait_idle(plugin)
    predict, suggest = (c["job"] for c in calls(fake_engine)[-2:])
    assert predict["class_weight"] == ["class_1=2.5"] == suggest["class_weight"]
    plugin.dock.class_table.item(1, 2).setText("car")  # renamed: the model still calls the class class_1
    plugin.controller.loop.run(RunRequest(("predict",), LoopOptions()))
    wait_idle(plugin)
    assert calls(fake_engine)[-1]["job"]["class_weight"] == ["class_1=2.5"]
    plugin.controller.loop.run(RunRequest(("train",), LoopOptions()))
    wait_idle(plugin)
    assert all("weight" not in c for c in calls(fake_engine)[-1]["job"]["classes"])


def test_a_class_share_typed_in_the_dock_is_saved_and_sent_instead_of_its_weight(plugin, image, tmp_path,
                                                                                  fake_engine):  # fmt: skip
    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(RunRequest(("train",), LoopOptions()))
    wait_idle(plugin)
    plugin.dock.class_table.item(0, 4).setText("2")
    plugin.dock.class_table.item(1, 4).setText("7 %")
    assert plugin.dock.class_table.item(1, 4).text() == "7%"
    assert any("class_1 will cover about 7% of the map: press Predict" in m
               for m in messages(plugin.iface, Qgis.MessageLevel.Info))  # fmt: skip
    plugin.dock.class_table.item(0, 4).setText("95%")  # refused: with class_1's 7% more than the whole map
    assert plugin.dock.class_table.item(0, 4).text() == "2"
    assert any("add up to 102%" in m for m in messages(plugin.iface, Qgis.MessageLevel.Warning))
    saved = json.loads((tmp_path / "session" / "session.json").read_text())["classes"]
    assert saved[1]["share"] == 7 and "weight" not in saved[1] and saved[0]["weight"] == 2
    plugin.controller.loop.run(RunRequest(("predict", "suggest"), LoopOptions()))
    wait_idle(plugin)
    predict, suggest = (c["job"] for c in calls(fake_engine)[-2:])
    assert predict["class_share"] == ["class_1=7"] == suggest["class_share"]
    assert predict["class_weight"] == ["background=2"] == suggest["class_weight"]


def test_the_status_bar_names_the_predicted_class_under_the_cursor(plugin, image, tmp_path):
    """The fake engine predicts background in the raster's left half and class_1 in its right half."""
    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(NEXT)
    wait_idle(plugin)
    canvas = plugin.iface.mapCanvas()
    status = plugin.iface.mainWindow().statusBar()
    for x_map, expected in ((500_010, "background"), (500_050, "class_1")):
        pixel = canvas.getCoordinateTransform().transform(x_map, 4_649_990)
        plugin.tool.canvasMoveEvent(mouse(canvas, round(pixel.x()), round(pixel.y()), kind=QEvent.Type.MouseMove))
        assert status.currentMessage() == f"Sparse AL prediction (iteration 1): {expected}"
    outside = canvas.getCoordinateTransform().transform(499_990, 4_649_990)  # left of the raster
    plugin.tool.canvasMoveEvent(mouse(canvas, round(outside.x()), round(outside.y()), kind=QEvent.Type.MouseMove))
    assert status.currentMessage() == ""


def test_export_after_a_round_writes_the_prediction(plugin, image, tmp_path):
    from osgeo import gdal

    from sparse_al_plugin.export import ExportRequest

    start_session(plugin, image, tmp_path)
    plugin.controller.loop.run(NEXT)
    wait_idle(plugin)
    record = plugin.controller.history[0]
    request = ExportRequest(str(tmp_path / "export" / "map.tif"), polygons=True)
    task = plugin.controller.start_export([p.prediction for p in record.predictions], request)
    wait_for(lambda: plugin.controller.export_task is None, 30, "the export")
    assert task.exception is None
    assert gdal.Open(str(tmp_path / "export" / "map.tif")).RasterXSize == 64
    assert (tmp_path / "export" / "map.gpkg").exists()
    assert any("exported" in m for m in messages(plugin.iface, Qgis.MessageLevel.Success))


def test_removing_a_class_removes_its_points_and_restyles(plugin, image, tmp_path):
    from sparse_al_plugin.dock import ClassEdit

    start_session(plugin, image, tmp_path)
    plugin.controller.edit_class(ClassEdit("add"))
    plugin.controller.activate_class(2)
    click(plugin, 500, 100)
    plugin.controller.edit_class(ClassEdit("remove", 1))  # class_1 and its one point go
    assert [c.name for c in plugin.controller.state.classes] == ["background", "class_2"]
    assert sorted(f["class"] for f in plugin.controller.store.layer.getFeatures()) == ["background", "background",
                                                                                       "class_2"]  # fmt: skip
    categories = [c.value() for c in plugin.controller.store.layer.renderer().categories()]
    assert categories[:2] == ["background", "class_2"]
    saved = json.loads((tmp_path / "session" / "session.json").read_text())
    assert [c["name"] for c in saved["classes"]] == ["background", "class_2"]
