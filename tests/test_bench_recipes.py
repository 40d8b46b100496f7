"""The recipe benchmark's bookkeeping: a finished run with the same options is reused, and the table compares the
default recipe with its peers iteration by iteration."""

import json
import logging
from dataclasses import asdict

import pytest

from benchmarks import bench_recipes
from engine.cli import build_parser
from engine.commands.simulate import options_from
from engine.events import plain


def _argv(folder, *extra):
    return ["simulate", "--manifest", "m.json", "--out", str(folder), *bench_recipes.BUDGET, "--seed", "0", *extra]


def _write(folder, argv, rows):
    options = plain(asdict(options_from(build_parser().parse_args(argv))))
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"options": options, "rows": rows, "dense_miou": None}))


def _rows(mious):
    return [{"iteration": i, "miou": m, "labeled_pixels": 100 * (i + 1), "labeled_percent": 0.01 * (i + 1)}
            for i, m in enumerate(mious)]  # fmt: skip


def test_a_finished_run_with_the_same_options_is_reused(tmp_path, monkeypatch):
    argv = _argv(tmp_path / "rf", "--model", "rf")
    _write(tmp_path / "rf", argv, _rows([0.3] * bench_recipes.ITERATIONS))
    monkeypatch.setattr(bench_recipes, "_run_engine", lambda *a: pytest.fail("ran again"))
    assert bench_recipes._run_or_reuse(argv, tmp_path / "rf")["rows"][0]["miou"] == 0.3


def test_a_run_from_before_an_option_existed_counts_it_at_its_default(tmp_path, monkeypatch):
    argv = _argv(tmp_path / "plain", "--consistency", "0")
    _write(tmp_path / "plain", argv, _rows([0.3] * bench_recipes.ITERATIONS))
    summary = json.loads((tmp_path / "plain" / "results.json").read_text())
    del summary["options"]["train"]["forest_prior"]  # an option added after that run
    (tmp_path / "plain" / "results.json").write_text(json.dumps(summary))
    monkeypatch.setattr(bench_recipes, "_run_engine", lambda *a: pytest.fail("ran again"))
    bench_recipes._run_or_reuse(argv, tmp_path / "plain")  # reused: no run
    ran = []
    monkeypatch.setattr(bench_recipes, "_run_engine", lambda argv_sim, path: ran.append(argv_sim))
    bench_recipes._run_or_reuse(_argv(tmp_path / "plain", "--consistency", "0", "--forest-prior"), tmp_path / "plain")
    assert len(ran) == 1  # the option asked at another value than its default: run again


@pytest.mark.parametrize(
    ("recipe", "option"),
    [("network", "forest_ensemble"),  # arrived on by default; runs stored before it trained the network alone
     ("fast_warm_start", "warm_lr"),  # arrived at 3e-4; runs stored before it warm-started at --lr (1e-3)
     ("heavy_decoder", "decoder_channels")],  # arrived lighter; runs stored before it had smp's U-Net decoder
)  # fmt: skip
def test_a_run_from_before_an_option_counts_as_the_behaviour_before_it_not_as_the_default(
    tmp_path, monkeypatch, recipe, option
):
    argv = _argv(tmp_path / "old", *bench_recipes.RECIPES[recipe])
    _write(tmp_path / "old", argv, _rows([0.3] * bench_recipes.ITERATIONS))
    summary = json.loads((tmp_path / "old" / "results.json").read_text())
    del summary["options"]["train"][option]
    (tmp_path / "old" / "results.json").write_text(json.dumps(summary))
    ran = []
    monkeypatch.setattr(bench_recipes, "_run_engine", lambda argv_sim, path: ran.append(argv_sim))
    bench_recipes._run_or_reuse(argv, tmp_path / "old")
    assert ran == []  # reused as the recipe that keeps the old behaviour
    default = _argv(tmp_path / "old", *bench_recipes.RECIPES["default"])
    bench_recipes._run_or_reuse(default, tmp_path / "old")
    assert ran == [default]  # not as the default


@pytest.mark.parametrize("change", ["other_options", "unfinished"])
def test_a_different_or_unfinished_run_runs_again(tmp_path, monkeypatch, change):
    argv = _argv(tmp_path / "rf", "--model", "rf")
    if change == "other_options":
        _write(tmp_path / "rf", _argv(tmp_path / "rf"), _rows([0.3] * bench_recipes.ITERATIONS))
    else:
        _write(tmp_path / "rf", argv, _rows([0.3] * (bench_recipes.ITERATIONS - 1)))
    ran = []
    monkeypatch.setattr(bench_recipes, "_run_engine", lambda argv_sim, path: ran.append(argv_sim))
    bench_recipes._run_or_reuse(argv, tmp_path / "rf")
    assert ran == [argv]


def test_the_table_counts_where_the_default_wins(tmp_path, caplog):
    results = {
        "default": {"rows": _rows([0.30, 0.40, 0.50, 0.52, 0.55, 0.57]), "train_images": 3, "val_images": 1},
        "rf": {"rows": _rows([0.35, 0.38, 0.45, 0.50, 0.50, 0.50])},
        "plain_dwcd": {"rows": _rows([0.20, 0.30, 0.40, 0.45, 0.50, 0.52])},
        "dense": {"rows": [], "dense_miou": 0.6},
    }
    with caplog.at_level(logging.INFO, logger="benchmarks"):
        bench_recipes._report("toy", results, tmp_path)
    text = caplog.text
    assert "default beats rf at 5 of 6 iterations" in text
    assert "default beats plain_dwcd at 6 of 6 iterations" in text
    assert "| 5 | 600 | 0.0600 | 0.570 | 0.500 | 0.520 | 95.0 |" in text
    assert "default at iteration 5: 95.0% of dense" in text
    assert (tmp_path / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_the_forest_and_the_dense_run_ignore_the_options_they_do_not_use(tmp_path, monkeypatch):
    forest = _argv(tmp_path / "rf", "--model", "rf")
    _write(tmp_path / "rf", [*forest, "--consistency", "1", "--no-expand-clicks"], _rows([0.3] * 6))
    dense = _argv(tmp_path / "dense", "--strategy", "dense")
    _write(tmp_path / "dense", [*dense, "--consistency", "1", "--loss", "dwcd"], _rows([0.6]))
    monkeypatch.setattr(bench_recipes, "_run_engine", lambda *a: pytest.fail("ran again"))
    bench_recipes._run_or_reuse(forest, tmp_path / "rf")
    bench_recipes._run_or_reuse(dense, tmp_path / "dense")
    ran = []
    monkeypatch.setattr(bench_recipes, "_run_engine", lambda argv_sim, path: ran.append(argv_sim))
    bench_recipes._run_or_reuse([*dense, "--epochs", "3"], tmp_path / "dense")  # the dense run's length changed
    assert len(ran) == 1


def test_across_seeds_the_means_lowest_iterations_and_wins_are_counted_over_all_runs(caplog):
    def results(default, rf):
        return {"default": {"rows": _rows(default)}, "rf": {"rows": _rows(rf)}, "dense": {"rows": [], "dense_miou": 1}}

    by_seed = {0: results([0.3, 0.4, 0.5, 0.5, 0.5, 0.6], [0.35, 0.35, 0.4, 0.4, 0.4, 0.4]),
               1: results([0.2, 0.4, 0.4, 0.4, 0.4, 0.4], [0.3, 0.3, 0.3, 0.5, 0.5, 0.3])}  # fmt: skip
    with caplog.at_level(logging.INFO, logger="benchmarks"):
        bench_recipes._across_seeds("toy", by_seed)
    text = caplog.text
    assert "| default | 0.467 | 0.367 | 0.417 | 0.200 |" in text
    assert "| rf | 0.383 | 0.367 | 0.375 | 0.300 |" in text
    assert "default beats rf at 8 of 12 iterations over 2 seeds" in text
    assert "plain_dwcd" not in text


@pytest.mark.parametrize(("argv", "seeds"), [([], "0"), (["--seed", "1"], "1"), (["--seeds", "0,1,2"], "0,1,2")])
def test_one_seed_or_several_are_one_option(argv, seeds):
    assert bench_recipes._parse(argv).seeds == seeds
