"""The user's class weights (`predict` / `suggest --class-weight`): parsed against the model's classes, multiplied
into its class-prior factor, and followed by the prediction, its uncertainty and the suggestions."""

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from engine.class_weights import parse_class_weights, with_class_weights
from engine.classes import parse_classes
from engine.cli import main
from engine.errors import InputError
from engine.models import ModelConfig
from engine.normalization import Normalization
from engine.prior import KEY as PRIOR_KEY

NAMES = ["background", "car", "road"]


def _config(trained: dict | None = None) -> ModelConfig:
    norm = Normalization([0.0] * 3, [255.0] * 3, [128.0] * 3, [64.0] * 3)
    return ModelConfig("Unet", "resnet18", 3, [1, 2, 3], norm, parse_classes(",".join(NAMES)), 64,
                       trained=dict(trained or {}))  # fmt: skip


def test_parses_the_command_line_in_the_model_class_order_and_the_last_of_a_class_wins():
    assert parse_class_weights(["road=0.5", "car = 2"], NAMES) == {"car": 2.0, "road": 0.5}
    assert list(parse_class_weights(["road=3", "background=0.25", "road=2"], NAMES).items()) == [
        ("background", 0.25), ("road", 2.0)]  # fmt: skip
    assert parse_class_weights(None, NAMES) == {} == parse_class_weights([], NAMES)


def test_command_line_weights_replace_the_job_file_ones(tmp_path):
    from engine.cli import parse

    job = tmp_path / "job.json"
    job.write_text(json.dumps({"model": "m", "raster": "r.tif", "out": "o", "class_weight": ["car=2", "road=3"]}))
    assert parse_class_weights(parse(["predict", "--job", str(job)]).class_weight, NAMES) == {"car": 2.0, "road": 3.0}
    args = parse(["predict", "--job", str(job), "--class-weight", "car=0.5"])
    assert parse_class_weights(args.class_weight, NAMES) == {"car": 0.5}


@pytest.mark.parametrize(
    ("values", "words"),
    [(["tree=2"], "no class 'tree'"), (["car"], "not CLASS=WEIGHT"), (["car=0"], "from 0.01 to 100"),
     (["car=-1"], "from 0.01"), (["car=nan"], "from 0.01"), (["car=lots"], "'lots'"), (["=2"], "not CLASS")],
)  # fmt: skip
def test_a_bad_weight_names_the_option_and_what_to_give(values, words):
    with pytest.raises(InputError, match="^--class-weight: ") as info:
        parse_class_weights(values, NAMES)
    assert words in str(info.value) and info.value.field == "class_weight" and "\n" not in str(info.value)


def test_weights_multiply_the_model_prior_factor_and_leave_the_config_alone():
    config = _config({PRIOR_KEY: [0.5, 1.0, 2.0], "epochs": 3})
    weighted = with_class_weights(config, {"road": 3.0, "background": 0.5})
    np.testing.assert_allclose(weighted.trained[PRIOR_KEY], [0.25, 1.0, 6.0])
    assert weighted.trained["epochs"] == 3
    assert config.trained[PRIOR_KEY] == [0.5, 1.0, 2.0]
    np.testing.assert_allclose(with_class_weights(_config(), {"car": 4.0}).trained[PRIOR_KEY], [1.0, 4.0, 1.0])
    assert with_class_weights(config, {}) is config


def _engine(capsys, *argv) -> tuple[int, list[dict]]:
    code = main([*map(str, argv[:1]), "--events", "json", "--device", "cpu", *map(str, argv[1:])])
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def _predict(capsys, model, raster, out, *weights) -> tuple[np.ndarray, np.ndarray, dict]:
    args = [a for w in weights for a in ("--class-weight", w)]
    code, events = _engine(capsys, "predict", "--model", model, "--raster", raster, "--out", out, "--tile-size", 64,
                           "--overlap", 16, *args)  # fmt: skip
    assert code == 0, events[-1]
    with rasterio.open(out / "prediction.tif") as p, rasterio.open(out / "uncertainty.tif") as u:
        return p.read(1), u.read(1), events[-1]


def test_predict_paints_more_of_a_class_weighted_up_and_less_of_one_weighted_down(
    tmp_path, capsys, untrained_model, noise_raster
):
    plain, plain_unc, result = _predict(capsys, untrained_model, noise_raster, tmp_path / "plain")
    more, more_unc, more_result = _predict(capsys, untrained_model, noise_raster, tmp_path / "more", "car=3")
    less, _, less_result = _predict(capsys, untrained_model, noise_raster, tmp_path / "less", "car=0.3", "road=1")
    car = [int((p == 1).sum()) for p in (less, plain, more)]
    assert car[0] < car[1] < car[2], car
    assert (more[plain == 1] == 1).all()  # a pixel that was car stays car when car weighs more
    assert not np.allclose(more_unc, plain_unc)  # the uncertainty follows the weighted probabilities
    assert result["class_weights"] == {} and more_result["class_weights"] == {"car": 3.0}
    assert less_result["class_weights"] == {"car": 0.3, "road": 1.0}
    assert more_result["class_pixels"]["car"] == car[2]


def test_predict_refuses_an_unknown_class_with_one_line_and_exit_2(tmp_path, capsys, untrained_model, noise_raster):
    code, events = _engine(capsys, "predict", "--model", untrained_model, "--raster", noise_raster, "--out",
                           tmp_path / "out", "--class-weight", "tree=2")  # fmt: skip
    assert code == 2 and events[-1]["event"] == "error" and events[-1]["field"] == "class_weight"
    assert "background, car, road" in events[-1]["message"]
    assert not (tmp_path / "out" / "prediction.tif").exists()


def test_suggestions_follow_the_weighted_uncertainty(tmp_path, capsys, untrained_model, noise_raster):
    def suggest(name, *weights):
        args = [a for w in weights for a in ("--class-weight", w)]
        code, events = _engine(capsys, "suggest", "--model", untrained_model, "--raster", noise_raster, "--out",
                               tmp_path / name, "--strategy", "entropy", "--budget", 10, "--min-distance", 8,
                               "--tile-size", 64, "--overlap", 16, *args)  # fmt: skip
        assert code == 0, events[-1]
        points = gpd.read_file(tmp_path / name, layer="suggestions")
        return {(round(p.x, 2), round(p.y, 2)) for p in points.geometry}, events[-1]

    plain, result = suggest("plain.gpkg")
    weighted, weighted_result = suggest("weighted.gpkg", "background=20")
    assert len(plain) == len(weighted) == 10
    assert plain != weighted
    assert result["class_weights"] == {} and weighted_result["class_weights"] == {"background": 20.0}
