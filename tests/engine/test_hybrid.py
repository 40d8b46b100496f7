"""The default model: the network and a random forest fit on the same clicks, their probabilities averaged."""

import io
import json

import numpy as np
import pytest
import rasterio
import torch

from engine.classes import parse_classes
from engine.cli import main
from engine.errors import InputFileError
from engine.events import Events
from engine.hybrid import FOREST_DIR, HybridModel, blend
from engine.predict import predict_probabilities
from engine.predictor import load_any, stride
from engine.prior import KEY as PRIOR_KEY
from engine.prior import adjust
from engine.raster_io import open_raster, read_window
from engine.smoothing import KEY as SMOOTHING_KEY
from engine.smoothing import smooth
from engine.train import TrainOptions, train
from tests.fixtures import clicks_per_class

CLASSES = parse_classes("background,red,blue")
TINY = {"epochs": 1, "patch_size": 64, "batch_size": 2, "patches_per_epoch": 4}


def _entropy(p: np.ndarray, axis: int) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis)


def test_blend_averages_and_its_bald_is_the_mutual_information_of_both_ensembles_together():
    rng = np.random.default_rng(0)
    classes, weight = 4, 0.3
    net_members = rng.dirichlet(np.ones(classes), (6, 5, 7)).transpose(0, 3, 1, 2)  # 6 dropout samples, C x 5 x 7
    forest_members = rng.dirichlet(np.ones(classes) * 0.5, (9, 5, 7)).transpose(0, 3, 1, 2)  # 9 trees
    log_c = np.log(classes)

    def mean_and_bald(members):
        mean = members.mean(0)
        return mean, (_entropy(mean, 0) - _entropy(members, 1).mean(0)) / log_c

    net_p, net_bald = mean_and_bald(net_members)
    forest_p, forest_bald = mean_and_bald(forest_members)
    probs, bald = blend(net_p, forest_p, weight, net_bald, forest_bald)

    mixture = (1 - weight) * net_p + weight * forest_p
    members_h = (1 - weight) * _entropy(net_members, 1).mean(0) + weight * _entropy(forest_members, 1).mean(0)
    np.testing.assert_allclose(probs, mixture, atol=1e-6)
    np.testing.assert_allclose(bald, (_entropy(mixture, 0) - members_h) / log_c, atol=1e-5)
    # the two models disagree, so the mixture is more uncertain than the mean of their own BALDs
    assert (bald > (1 - weight) * net_bald + weight * forest_bald - 1e-6).all()
    assert blend(net_p, forest_p, weight)[1] is None  # no BALD unless both give one


def _train(scene, out, clicks, init=None, **options):
    return train([scene.image], [clicks], [1, 2, 3], CLASSES, TrainOptions(**{**TINY, **options}),
                 torch.device("cpu"), Events("json", io.StringIO()), init, out)  # fmt: skip


@pytest.fixture
def hybrid_dir(tmp_path, scene):
    _train(scene, tmp_path / "model", clicks_per_class(scene.label, 6))
    return tmp_path / "model"


def _image(scene):
    with open_raster(scene.image) as ds:
        return read_window(ds, [1, 2, 3], 0, 0, ds.height, ds.width)


def test_default_training_saves_the_network_with_a_forest_fit_on_the_clicks(tmp_path, scene, hybrid_dir):
    model, config = load_any(hybrid_dir)
    assert isinstance(model, HybridModel) and stride(model) == stride(model.network) == 32
    assert model.forest_config.trained["points"] == model.forest_config.trained["pixels"] == 18  # the clicks alone
    assert model.forest_config.normalization == config.normalization  # both read the same normalised tiles
    assert json.loads((hybrid_dir / "config.json").read_text())["trained"]["forest"]["weight"] == model.weight
    image, valid = _image(scene)
    torch.manual_seed(0)  # the same dropout masks in both network passes
    hybrid = predict_probabilities(model, config, image, valid, "cpu", tile_size=64, overlap=16, mc_samples=4)
    factor = config.trained.pop(PRIOR_KEY)  # the parts alone, uncorrected (engine/prior.py) and unsmoothed
    smoothing = config.trained.pop(SMOOTHING_KEY)
    torch.manual_seed(0)
    net = predict_probabilities(model.network, config, image, valid, "cpu", tile_size=64, overlap=16, mc_samples=4)
    forest = predict_probabilities(model.forest, model.forest_config, image, valid, "cpu", mc_samples=4)
    expected, expected_bald = blend(net.probs, forest.probs, model.weight, net.bald, forest.bald)
    np.testing.assert_allclose(hybrid.probs, smooth(adjust(expected, factor), image, valid, smoothing), atol=1e-5)
    np.testing.assert_allclose(hybrid.bald, expected_bald, atol=1e-5)
    # one epoch leaves the network near chance; the forest carries the blend
    assert (hybrid.probs.argmax(0) == scene.label).mean() > (net.probs.argmax(0) == scene.label).mean()

    _train(scene, tmp_path / "spread", clicks_per_class(scene.label, 6), forest_expansion=True)
    spread = load_any(tmp_path / "spread")[0].forest_config.trained
    assert spread["points"] == 18 and spread["pixels"] > 18  # and the pixels the clicks spread to
    _train(scene, tmp_path / "alone", clicks_per_class(scene.label, 6), forest_ensemble=False)
    alone, _ = load_any(tmp_path / "alone")
    assert isinstance(alone, torch.nn.Module) and not (tmp_path / "alone" / FOREST_DIR).exists()


@pytest.mark.slow
def test_warm_start_continues_the_network_and_refits_the_forest_on_all_clicks(tmp_path, scene, hybrid_dir):
    first, _ = load_any(hybrid_dir)
    _train(scene, tmp_path / "next", clicks_per_class(scene.label, 10, seed=1), init=hybrid_dir)
    second, config = load_any(tmp_path / "next")
    assert second.forest_config.trained["points"] == 30
    assert config.trained["iterations"] == 2
    assert second.forest.n_nodes != first.forest.n_nodes


@pytest.mark.slow
def test_predict_command_with_a_hybrid_matches_the_whole_image_prediction(tmp_path, scene, hybrid_dir, capsys):
    stored = json.loads((hybrid_dir / "config.json").read_text())
    stored["trained"].pop(SMOOTHING_KEY)  # smoothed per 64 px tile here, whole in memory: see test_smoothing
    (hybrid_dir / "config.json").write_text(json.dumps(stored))
    out = tmp_path / "pred"
    code = main(["predict", "--model", str(hybrid_dir), "--raster", str(scene.image), "--out", str(out),
                 "--tile-size", "64", "--overlap", "32", "--uncertainty", "bald", "--events", "json"])  # fmt: skip
    assert code == 0, capsys.readouterr().out[-2000:]
    model, config = load_any(hybrid_dir)
    image, valid = _image(scene)
    expected = predict_probabilities(model, config, image, valid, "cpu", tile_size=64, overlap=32, mc_samples=8)
    with rasterio.open(out / "prediction.tif") as ds:
        predicted = ds.read(1)
    with rasterio.open(out / "uncertainty.tif") as ds:
        uncertainty = ds.read(1)
    # the forest's features see each tile only, and the blended overlaps hide the difference almost everywhere
    assert (predicted == expected.probs.argmax(0)).mean() > 0.97
    assert np.corrcoef(uncertainty.ravel(), expected.bald.ravel())[0, 1] > 0.8


def test_a_damaged_forest_names_its_file(hybrid_dir):
    (hybrid_dir / FOREST_DIR / "weights.safetensors").write_bytes(b"not a forest")
    with pytest.raises(InputFileError, match="forest/weights.safetensors"):
        load_any(hybrid_dir)


def test_a_hybrid_whose_forest_went_missing_is_damaged_not_a_network_alone(hybrid_dir):
    (hybrid_dir / FOREST_DIR / "config.json").unlink()
    with pytest.raises(InputFileError, match="forest/config.json is missing.*damaged"):
        load_any(hybrid_dir)
