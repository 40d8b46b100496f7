"""`make package` / `make deploy`: the zip, its metadata, the bundled engine, the install into a plugins folder."""

import configparser
import importlib.util
import os
import subprocess
import sys
import zipfile

import pytest

from tests.plugin.conftest import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("package_plugin", ROOT / "scripts" / "package_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    package = _script()
    out = tmp_path_factory.mktemp("dist")
    archive = package.build(out)
    plugins = tmp_path_factory.mktemp("plugins")
    (plugins / "sparse_al_plugin").mkdir()
    (plugins / "sparse_al_plugin" / "stale.py").write_text("old version")
    installed = package.deploy(archive, plugins)
    return archive, installed


def test_zip_holds_one_plugin_folder_with_the_engine_and_no_caches(built):
    archive, _ = built
    names = zipfile.ZipFile(archive).namelist()
    assert {n.split("/")[0] for n in names} == {"sparse_al_plugin"}
    for required in ("metadata.txt", "__init__.py", "plugin.py", "requirements.txt", "resources/icon.svg",
                     "resources/styles/uncertainty.qml", "engine/__main__.py", "engine/CONTRACT.md",
                     "engine/commands/train.py"):  # fmt: skip
        assert f"sparse_al_plugin/{required}" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n]


def test_metadata_is_complete_and_copied_from_the_top_level(built):
    archive, _ = built
    text = zipfile.ZipFile(archive).read("sparse_al_plugin/metadata.txt").decode()
    assert text == (ROOT / "metadata.txt").read_text()
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    general = parser["general"]
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "repository"):
        assert general[key].strip(), key
    assert general["qgisMinimumVersion"] == "3.22"


def test_deploy_replaces_the_installed_folder_and_the_plugin_finds_its_engine(built):
    _, installed = built
    assert not (installed / "stale.py").exists()
    code = (
        "from sparse_al_plugin.engine_config import engine_package_dir, requirements_file, PLUGIN_DIR\n"
        "from sparse_al_plugin.resources import resource\n"
        "print(PLUGIN_DIR, engine_package_dir(), requirements_file(), resource('styles/suggestions.qml'))"
    )
    env = {"PATH": os.environ["PATH"], "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], cwd=installed.parent, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(installed), str(installed), str(installed / "requirements.txt"),
                                  str(installed / "resources" / "styles" / "suggestions.qml")]  # fmt: skip


def test_check_metadata_names_what_is_missing(tmp_path):
    (tmp_path / "metadata.txt").write_text("[general]\nname=x\nversion=1\n")
    with pytest.raises(SystemExit, match="qgisMinimumVersion"):
        _script().check_metadata(tmp_path / "metadata.txt")


@pytest.mark.slow
def test_bundled_engine_runs_from_the_installed_plugin(built):
    _, installed = built
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(installed)}
    argv = [sys.executable, "-m", "engine", "--version"]
    out = subprocess.run(argv, cwd=installed.parent, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("sparse-al engine")
