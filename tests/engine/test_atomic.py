"""Outputs appear whole or not at all."""

import pytest

from engine.atomic import atomic_dir, atomic_file


def test_a_failure_leaves_the_previous_directory(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("first")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "a").write_text("half")
        raise KeyboardInterrupt
    assert (target / "a").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_file_is_replaced_only_when_complete(tmp_path):
    target = tmp_path / "out.tif"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    with atomic_file(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]
