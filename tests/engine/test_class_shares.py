"""The user's expected class shares (`predict` / `suggest --class-share`): parsed against the model's classes and
weights, fitted to a weight on a sample of the map, and followed by the prediction."""

import json
import shutil

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from engine.class_shares import argmax_shares, fit_weights, parse_class_shares
from engine.errors import InputError
from engine.prior import KEY as PRIOR_KEY
from engine.smoothing import KEY as SMOOTHING_KEY
from engine.smoothing import settings as smoothing_settings
from tests.engine.test_class_weights import NAMES, _engine
from tests.fixtures import write_raster


def test_parses_percentages_in_the_model_class_order():
    assert parse_class_shares(["road=7", "car = 2.5%"], NAMES, {}) == {"car": 0.025, "road": 0.07}
    assert list(parse_class_shares(["road=7", "background=60,5"], NAMES, {})) == ["background", "road"]
    assert parse_class_shares(None, NAMES, {}) == {} == parse_class_shares([], NAMES, {})


@pytest.mark.parametrize(
    ("values", "weights", "words"),
    [(["tree=5"], {}, "no class 'tree'"), (["road"], {}, "not CLASS=PERCENT"), (["road=0"], {}, "above 0 and below"),
     (["road=100"], {}, "below 100"), (["road=few"], {}, "'few'"), (["road=60", "car=50"], {}, "add up to 110%"),
     (["road=7"], {"road": 2.0}, "also has a --class-weight")],
)  # fmt: skip
def test_a_bad_share_names_the_option_and_what_to_give(values, weights, words):
    with pytest.raises(InputError, match="^--class-share: ") as info:
        parse_class_shares(values, NAMES, weights)
    assert words in str(info.value) and info.value.field == "class_share" and "\n" not in str(info.value)


def _probabilities(seed: int) -> list[np.ndarray]:
    """Two 3-class maps of random probabilities whose class 2 is seldom the largest."""
    rng = np.random.default_rng(seed)
    probs = []
    for shape in [(40, 50), (30, 30)]:
        p = rng.random((3, *shape)) * np.array([1.0, 1.0, 0.4])[:, None, None]
        probs.append(p / p.sum(0))
    return probs


@pytest.mark.parametrize("seed", [0, 1])
def test_fitted_weights_give_the_stated_shares_and_leave_unstated_classes_at_1(seed):
    probs = _probabilities(seed)
    masks = [np.ones(p.shape[1:], bool) for p in probs]
    masks[1][:10] = False  # pixels outside the mask do not count
    assert argmax_shares(probs, masks, np.ones(3))[2] < 0.1
    factor = fit_weights(probs, masks, np.array([np.nan, np.nan, 0.30]))
    assert factor[0] == factor[1] == 1.0 and factor[2] > 1.5
    assert abs(argmax_shares(probs, masks, factor)[2] - 0.30) < 0.01
    both = fit_weights(probs, masks, np.array([0.5, np.nan, 0.2]))
    np.testing.assert_allclose(argmax_shares(probs, masks, both)[[0, 2]], [0.5, 0.2], atol=0.01)


def _predict(capsys, model, raster, out, *args) -> tuple[np.ndarray, dict, list[dict]]:
    """engine predict in one tile (128 px, the test rasters' size), so the fit sees exactly the map (this untrained
    network's argmax flips where tiles are blended; how close the fit gets on real models: docs/benchmarks.md)."""
    code, events = _engine(capsys, "predict", "--model", model, "--raster", raster, "--out", out, "--tile-size", 128,
                           "--overlap", 16, *args)  # fmt: skip
    assert code == 0, events[-1]
    with rasterio.open(out / "prediction.tif") as p:
        return p.read(1), events[-1], events


@pytest.mark.parametrize("percent", [10, 60])
def test_predict_paints_a_class_on_about_the_share_asked_for(tmp_path, capsys, untrained_model, noise_raster, percent):
    plain, _, _ = _predict(capsys, untrained_model, noise_raster, tmp_path / "plain")
    shared, result, events = _predict(
        capsys, untrained_model, noise_raster, tmp_path / "shared", "--class-share", f"car={percent}"
    )
    share = (shared == 1).mean()
    assert abs(share - percent / 100) < 0.02, (share, (plain == 1).mean())
    assert abs((plain == 1).mean() - percent / 100) > 0.1  # the untrained_model alone was far from it
    assert result["class_shares"] == {"car": percent} and set(result["class_weights"]) == {"car"}
    weight = result["class_weights"]["car"]
    assert (weight > 1) == ((plain == 1).mean() < percent / 100)
    assert any(e.get("message", "").startswith(f"car: weight {weight:g} for {percent}% of the map") for e in events)


def test_the_map_is_predicted_once_and_written_with_the_fitted_weight(tmp_path, capsys, untrained_model, noise_raster):
    code, events = _engine(capsys, "predict", "--model", untrained_model, "--raster", noise_raster, "--out", tmp_path,
                           "--tile-size", 64, "--overlap", 16, "--batch-size", 1,
                           "--class-share", "car=10")  # fmt: skip
    assert code == 0, events[-1]
    progress = [(e["stage"], e["done"], e["total"], e["fraction"]) for e in events if e["event"] == "progress"]
    predicted = [done for stage, done, total, _ in progress if stage == "predict"]
    assert predicted == sorted(predicted) and predicted[-1] == progress[0][2] == events[-1]["tiles"]  # once
    assert [stage for stage, *_ in progress].count("write") == 1  # one 256 px block: 128 x 96 px
    fractions = [fraction for *_, fraction in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # one bar through both
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the stored probabilities are removed


def test_a_share_and_a_weight_of_other_classes_go_together(tmp_path, capsys, untrained_model, noise_raster):
    both, result, _ = _predict(capsys, untrained_model, noise_raster, tmp_path / "out", "--class-share", "car=30",
                               "--class-weight", "road=2")  # fmt: skip
    alone, _, _ = _predict(capsys, untrained_model, noise_raster, tmp_path / "alone", "--class-share", "car=30")
    assert result["class_shares"] == {"car": 30} and list(result["class_weights"]) == ["car", "road"]
    assert result["class_weights"]["road"] == 2.0
    assert abs((both == 1).mean() - 0.30) < 0.02  # the share is fitted with road's weight in place
    assert (both == 2).mean() > (alone == 2).mean()  # and road's weight is applied


def test_predict_inside_a_bbox_fits_the_share_there(tmp_path, capsys, untrained_model):
    rng = np.random.default_rng(5)
    image = rng.integers(1, 120, (3, 96, 384), dtype=np.uint8)
    image[:, :, 192:] += 130  # a bright right half, which the untrained network paints otherwise
    raster = write_raster(tmp_path / "halves.tif", image, crs="EPSG:31983", pixel=0.5)
    with rasterio.open(raster) as ds:
        left, top = ds.bounds.left, ds.bounds.top
    bbox = f"{left},{top - 32},{left + 32},{top}"  # 64 x 64 px of 0.5 m in the dark half, its context dark too
    shared, _, _ = _predict(
        capsys, untrained_model, raster, tmp_path / "box", "--bbox", bbox, "--class-share", "car=40"
    )
    assert shared.shape == (64, 64)
    assert abs((shared == 1).mean() - 0.40) < 0.02


def test_predict_refuses_a_bad_share_with_one_line_and_exit_2(tmp_path, capsys, untrained_model, noise_raster):
    code, events = _engine(capsys, "predict", "--model", untrained_model, "--raster", noise_raster, "--out",
                           tmp_path / "out", "--class-share", "road=7", "--class-weight", "road=2")  # fmt: skip
    assert code == 2 and events[-1]["event"] == "error" and events[-1]["field"] == "class_share"
    assert not (tmp_path / "out" / "prediction.tif").exists()


def test_suggestions_show_the_classes_at_their_fitted_weight(tmp_path, capsys, untrained_model, noise_raster):
    def suggest(name, *args):
        code, events = _engine(capsys, "suggest", "--model", untrained_model, "--raster", noise_raster, "--out",
                               tmp_path / name, "--strategy", "entropy", "--budget", 20, "--min-distance", 4,
                               "--tile-size", 64, "--overlap", 16, *args)  # fmt: skip
        assert code == 0, events[-1]
        return gpd.read_file(tmp_path / name, layer="suggestions"), events[-1]

    plain, _ = suggest("plain.gpkg")
    shared, result = suggest(
        "shared.gpkg", "--class-share", "car=20"
    )  # the untrained untrained_model paints car almost everywhere
    assert result["class_shares"] == {"car": 20.0} and result["class_weights"]["car"] < 1
    assert (shared["predicted_class"] == "car").mean() < (plain["predicted_class"] == "car").mean()


def test_predict_inside_an_aoi_fits_the_share_on_the_aoi(tmp_path, capsys, untrained_model, noise_raster):
    from shapely.geometry import Polygon

    with rasterio.open(noise_raster) as ds:
        x0, y0, crs = ds.bounds.left, ds.bounds.top, ds.crs
    triangle = Polygon([(x0, y0), (x0 + 48, y0), (x0, y0 - 40)])  # 96 x 80 px of 0.5 m, half of them inside
    gpd.GeoDataFrame(geometry=[triangle], crs=crs).to_file(tmp_path / "aoi.gpkg")
    shared, _, _ = _predict(capsys, untrained_model, noise_raster, tmp_path / "aoi", "--aoi", tmp_path / "aoi.gpkg",
                            "--class-share", "car=40")  # fmt: skip
    inside = shared != 255
    assert 0.4 < inside.mean() < 0.6
    assert abs((shared[inside] == 1).mean() - 0.40) < 0.02


def test_a_small_area_is_fitted_whole_and_a_large_one_on_windows_inside_it(monkeypatch):
    from rasterio.windows import Window

    from engine import class_shares

    areas = [Window(10, 20, 100, 100), Window(0, 0, 50, 30)]
    assert class_shares._sample(["a.tif", "b.tif"], areas, 0) == list(zip(["a.tif", "b.tif"], areas, strict=True))
    monkeypatch.setattr(class_shares, "SAMPLE_PIXELS", 2 * 40 * 40)
    monkeypatch.setattr(class_shares, "SAMPLE_SIDE", 40)
    sample = class_shares._sample(["a.tif", "b.tif"], areas, 0)
    assert len(sample) == 2 and len(set(sample)) == 2
    for path, window in sample:
        area = areas[["a.tif", "b.tif"].index(path)]
        assert window.height <= 40 and window.width <= 40
        assert area.row_off <= window.row_off and window.row_off + window.height <= area.row_off + area.height
        assert area.col_off <= window.col_off and window.col_off + window.width <= area.col_off + area.width


@pytest.fixture(scope="module")
def smoothed_model(tmp_path_factory, untrained_model):
    """The untrained network with superpixel smoothing and a class-prior factor, as trained models have them."""
    path = tmp_path_factory.mktemp("smoothed") / "model"
    shutil.copytree(untrained_model, path)
    config = json.loads((path / "config.json").read_text())
    config["trained"] |= {SMOOTHING_KEY: smoothing_settings(region=8), PRIOR_KEY: [1.3, 0.8, 0.9]}
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("percent", [10, 40])
def test_a_smoothed_model_in_many_tiles_paints_the_share_asked_for(tmp_path, capsys, smoothed_model, noise_raster,
                                                                    percent):  # fmt: skip
    """The map's tiles are corrected and smoothed one by one before they are blended: the fit must see the same
    probabilities, and weigh them where the map does, or its share misses."""
    code, events = _engine(capsys, "predict", "--model", smoothed_model, "--raster", noise_raster, "--out",
                           tmp_path / "out", "--tile-size", 64, "--overlap", 16,
                           "--class-share", f"car={percent}")  # fmt: skip
    assert code == 0, events[-1]
    with rasterio.open(tmp_path / "out" / "prediction.tif") as p:
        share = (p.read(1) == 1).mean()
    assert abs(share - percent / 100) < 0.003, share


def test_a_fit_without_a_pixel_to_count_is_bad_input():
    from engine.class_shares import fit_shares
    from engine.events import Events

    probs = [np.full((3, 4, 4), 1 / 3, np.float32)]
    with pytest.raises(InputError, match="--class-share: .* no valid pixels"):
        fit_shares(probs, [np.zeros((4, 4), bool)], NAMES, {"car": 0.1}, Events("text"))
