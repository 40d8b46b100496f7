import csv
import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from engine.cli import main
from engine.synthetic import write_scene

TINY = [
    "--iterations",
    "2",
    "--epochs",
    "1",
    "--patch-size",
    "64",
    "--patches-per-epoch",
    "8",
    "--batch-size",
    "4",
    "--tile-size",
    "128",
    "--overlap",
    "16",
    "--mc-samples",
    "2",
    "--superpixel-size",
    "16",
]


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory):
    """Four 128-pixel tiles of a synthetic scene: three to train on, one to score."""
    folder = tmp_path_factory.mktemp("tiny")
    return write_scene(folder, size=256, seed=1, tile_size=128, val_fraction=0.25).manifest


def _simulate(capsys, manifest, out, *extra) -> dict:
    code = main(
        [
            "simulate",
            "--events",
            "json",
            "--device",
            "cpu",
            "--manifest",
            str(manifest),
            "--out",
            str(out),
            *TINY,
            *map(str, extra),
        ]
    )
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0, events[-1]
    return events


@pytest.mark.slow
def test_two_iterations_end_to_end_with_the_csv_columns(tmp_path, capsys, tiny_manifest):
    out = tmp_path / "run"
    events = _simulate(capsys, tiny_manifest, out, "--strategy", "error,random", "--dense")
    result = events[-1]
    assert result["event"] == "result" and result["rows"] == 5 and result["scored_on"] == "val"
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    columns = {
        "strategy",
        "iteration",
        "labeled_pixels",
        "labeled_percent",
        "miou",
        "seconds",
        "percent_of_dense",
        "iou_background",
        "iou_car",
        "iou_road",
        "iou_building",
        "iou_permeable_area",
    }
    assert columns <= set(rows[0])
    assert [(r["strategy"], r["iteration"]) for r in rows] == [
        ("dense", "1"),
        ("error", "0"),
        ("error", "1"),
        ("random", "0"),
        ("random", "1"),
    ]
    error = [r for r in rows if r["strategy"] == "error"]
    assert int(error[1]["labeled_pixels"]) > int(error[0]["labeled_pixels"]) > 0
    # labelled share: of the 3 x 128 x 128 training pixels
    share = 100 * int(error[0]["labeled_pixels"]) / (3 * 128 * 128)
    assert float(error[0]["labeled_percent"]) == pytest.approx(share, rel=1e-5)
    for r in rows:
        assert 0 <= float(r["miou"]) <= 1 and float(r["seconds"]) > 0
        assert float(r["percent_of_dense"]) == pytest.approx(100 * float(r["miou"]) / float(rows[0]["miou"]), rel=1e-3)
    # both strategies start from the same points, the other strategies get the error strategy's click budget
    random = [r for r in rows if r["strategy"] == "random"]
    assert random[0]["labeled_pixels"] == error[0]["labeled_pixels"]
    assert int(random[1]["labeled_pixels"]) - int(random[0]["labeled_pixels"]) == 1 * 5 * 3
    summary = json.loads((out / "results.json").read_text())
    manifest = json.loads(tiny_manifest.read_text())
    [val] = [item for item in manifest["items"] if item["split"] == "val"]
    with rasterio.open(tiny_manifest.parent / val["label"]) as ds:
        reference = np.bincount(ds.read(1).ravel(), minlength=5) / ds.width / ds.height
    np.testing.assert_allclose(list(summary["reference_shares"].values()), reference, atol=1e-6)
    for r in summary["rows"]:  # the predictions' class shares: they sum to 1, and a sparse model's are its own
        shares = np.array([r[f"share_{c}"] for c in summary["reference_shares"]])
        assert abs(shares.sum() - 1) < 1e-6
    assert not np.allclose([summary["rows"][1][f"share_{c}"] for c in summary["reference_shares"]], reference)
    assert len(summary["rows"]) == 5 and summary["dense_miou"] == pytest.approx(float(rows[0]["miou"]), rel=1e-4)
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    points = gpd.read_file(out / "error" / "points.gpkg")
    assert len(points) == int(error[1]["labeled_pixels"]) and set(points.iteration) == {0, 1}
    assert points.crs.to_epsg() == 31983
    assert (out / "error" / "model" / "config.json").exists()
    miou_metrics = [e for e in events if e["event"] == "metric" and e["name"] == "miou"]
    assert len(miou_metrics) == 5


@pytest.mark.slow
def test_superpixel_regions_label_whole_superpixels(tmp_path, capsys, tiny_manifest):
    out = tmp_path / "sp"
    _simulate(capsys, tiny_manifest, out, "--strategy", "superpixel", "--label-regions", "--budget", "4")
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    added_clicks = int(rows[1]["clicks"]) - int(rows[0]["clicks"])
    added_pixels = int(rows[1]["labeled_pixels"]) - int(rows[0]["labeled_pixels"])
    assert 1 <= added_clicks <= 4
    assert added_pixels > 10 * added_clicks  # whole superpixels of about 16 x 16 pixels


def test_bad_strategy_is_a_one_line_error(tmp_path, capsys, tiny_manifest):
    code = main(
        [
            "simulate",
            "--events",
            "json",
            "--manifest",
            str(tiny_manifest),
            "--out",
            str(tmp_path / "x"),
            "--strategy",
            "error,nope",
        ]
    )
    event = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 2 and event["field"] == "strategy" and "nope" in event["message"]
    assert not (tmp_path / "x").exists()
