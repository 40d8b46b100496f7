"""The plugin's jobs against the engine's own parser (the contract's other side) and the fake's key lists."""

import json

import pytest

from sparse_al_plugin.classes import DEFAULT_CLASSES, add_class, reweight_class
from sparse_al_plugin.jobs import TrainOptions, bbox_text, predict_job, suggest_job, train_job, warm_start
from tests.plugin import fake_engine


def _engine_parse(command, job, tmp_path):
    cli = pytest.importorskip("engine.cli")
    path = tmp_path / f"{command}.json"
    path.write_text(json.dumps(job))
    return cli.parse([command, "--job", str(path), "--events", "json"])


def _engine_has_options(command, *names):
    cli = pytest.importorskip("engine.cli")
    sub = cli._subparser(cli.build_parser(), command)
    return all(any(a.dest == n for a in sub._actions) for n in names)


def test_train_job_is_accepted_by_the_engine(tmp_path):
    job = train_job(["/a.tif", "/b.tif"], tmp_path / "points.gpkg", DEFAULT_CLASSES, tmp_path / "model",
                    tmp_path / "previous", TrainOptions(epochs=3, patches_per_epoch=8, encoder="resnet34"))  # fmt: skip
    args = _engine_parse("train", job, tmp_path)
    assert args.raster == ["/a.tif", "/b.tif"] and args.epochs == 3 and args.patches_per_epoch == 8
    assert args.init == str(tmp_path / "previous") and args.class_field == "class"
    assert args.encoder == "resnet18"  # a warm start keeps the previous model's encoder: the option is left out
    from engine.classes import parse_classes

    assert [c.name for c in parse_classes(args.classes)] == ["background", "class_1"]


def test_random_forest_train_job_refits_without_network_options(tmp_path):
    job = train_job(["/a.tif"], tmp_path / "points.gpkg", DEFAULT_CLASSES, tmp_path / "model", tmp_path / "previous",
                    TrainOptions(epochs=3, encoder="resnet34", model="rf"))  # fmt: skip
    assert "init" not in job and "epochs" not in job and "encoder" not in job
    args = _engine_parse("train", job, tmp_path)
    assert args.model == "rf" and args.raster == ["/a.tif"] and args.out == str(tmp_path / "model")


def test_network_alone_turns_the_engines_forest_off_and_the_default_leaves_it_on(tmp_path):
    alone = train_job(["/a.tif"], tmp_path / "points.gpkg", DEFAULT_CLASSES, tmp_path / "model", tmp_path / "previous",
                      TrainOptions(epochs=3, model="network"))  # fmt: skip
    args = _engine_parse("train", alone, tmp_path)
    assert args.forest_ensemble is False and args.init == str(tmp_path / "previous") and args.epochs == 3
    default = train_job(["/a.tif"], tmp_path / "points.gpkg", DEFAULT_CLASSES, tmp_path / "model", None,
                        TrainOptions())  # fmt: skip
    assert _engine_parse("train", default, tmp_path).forest_ensemble is True


def test_flip_averaging_setting_reaches_the_engine_and_its_default_is_the_engines(tmp_path):
    def parsed(**options):
        job = train_job(["/a.tif"], tmp_path / "points.gpkg", DEFAULT_CLASSES, tmp_path / "model", None,
                        TrainOptions(**options))  # fmt: skip
        return job, _engine_parse("train", job, tmp_path)

    job, args = parsed()
    assert "flip_views" not in job and args.flip_views == 4
    for views in (1, 2):
        assert parsed(flip_views=views)[1].flip_views == views


@pytest.mark.parametrize("command", ["train", "predict", "suggest"])
def test_fake_engine_knows_only_real_options(command):
    if command != "train" and not _engine_has_options(command, "model"):
        pytest.skip(f"the engine's {command} command has not landed on this branch yet")
    cli = pytest.importorskip("engine.cli")
    sub = cli._subparser(cli.build_parser(), command)
    assert fake_engine.KEYS[command] <= {a.dest for a in sub._actions}


@pytest.mark.parametrize("command", ["predict", "suggest"])
def test_predict_and_suggest_jobs_are_accepted_by_the_engine(command, tmp_path):
    if not _engine_has_options(command, "model", "raster", "out"):
        pytest.skip(f"the engine's {command} command has not landed on this branch yet")
    job = (predict_job(tmp_path / "m", "/a.tif", tmp_path / "out", "1,2,3,4,EPSG:32633") if command == "predict"
           else suggest_job(tmp_path / "m", ["/a.tif", "/b.tif"], tmp_path / "s.gpkg", "superpixel", 12, 3,
                            tmp_path / "points.gpkg"))  # fmt: skip
    args = _engine_parse(command, job, tmp_path)
    assert args.model == str(tmp_path / "m")
    if command == "predict":
        assert args.raster == "/a.tif" and args.bbox == "1,2,3,4,EPSG:32633"
    else:
        assert args.raster == ["/a.tif", "/b.tif"] and args.budget == 12 and args.iteration == 3
        assert args.points == str(tmp_path / "points.gpkg") and args.strategy == "superpixel"


def test_class_weights_reach_predict_and_suggest_and_never_training(tmp_path):
    weights = ["background=0.5", "class_1=2"]
    predict = _engine_parse("predict", predict_job(tmp_path / "m", "/a.tif", tmp_path / "o", None, weights), tmp_path)
    suggest = _engine_parse("suggest", suggest_job(tmp_path / "m", ["/a.tif"], tmp_path / "s.gpkg", "entropy", 3, 1,
                                                   None, weights), tmp_path)  # fmt: skip
    assert predict.class_weight == weights == suggest.class_weight
    shares = ["class_1=7"]
    predict = _engine_parse(
        "predict", predict_job(tmp_path / "m", "/a.tif", tmp_path / "o", None, [], shares), tmp_path
    )
    suggest = _engine_parse("suggest", suggest_job(tmp_path / "m", ["/a.tif"], tmp_path / "s.gpkg", "entropy", 3, 1,
                                                   None, [], shares), tmp_path)  # fmt: skip
    assert predict.class_share == shares == suggest.class_share and predict.class_weight is None
    assert "class_weight" not in predict_job(tmp_path / "m", "/a.tif", tmp_path / "o")
    weighted = reweight_class(DEFAULT_CLASSES, 1, 2)
    job = train_job(["/a.tif"], tmp_path / "p.gpkg", weighted, tmp_path / "model", None, TrainOptions())
    assert job["classes"] == [{"name": c.name, "color": c.color} for c in DEFAULT_CLASSES]


def test_jobs_use_only_contract_keys(tmp_path):
    assert set(predict_job(tmp_path, "/a.tif", tmp_path, "b", ["a=2"], ["b=7"])) <= fake_engine.KEYS["predict"]
    suggest = suggest_job(tmp_path, ["/a.tif"], tmp_path, "entropy", 3, 1, tmp_path, ["a=2"], ["b=7"])
    assert set(suggest) <= fake_engine.KEYS["suggest"]
    assert bbox_text(1, 2, 3.5, 4, "EPSG:3857") == "1.000000,2.000000,3.500000,4.000000,EPSG:3857"


def test_warm_start_only_with_the_same_classes(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"classes": [{"name": "background"}, {"name": "class_1"}]}))
    assert warm_start(model, DEFAULT_CLASSES) == model
    assert warm_start(model, add_class(DEFAULT_CLASSES, "car")) is None
    assert warm_start(tmp_path / "missing", DEFAULT_CLASSES) is None
    assert warm_start(None, DEFAULT_CLASSES) is None
    assert warm_start(model, DEFAULT_CLASSES, kind="rf") is None  # the forest refits on every point
    assert warm_start(model, DEFAULT_CLASSES, kind="network") == model  # the network alone continues it too


def test_no_warm_start_of_a_network_from_a_forest(tmp_path):
    forest = tmp_path / "forest"
    forest.mkdir()
    config = {"kind": "random_forest", "classes": [{"name": "background"}, {"name": "class_1"}]}
    (forest / "config.json").write_text(json.dumps(config))
    assert warm_start(forest, DEFAULT_CLASSES) is None
