import sys

from sparse_al_plugin.engine_config import (
    EngineConfig,
    engine_package_dir,
    find_interpreter,
    interpreter_candidates,
    requirements_file,
    resolve,
    venv_python,
)


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def test_source_checkout_venv_comes_before_the_set_up_env(tmp_path):
    plugin_dir = tmp_path / "repo" / "sparse_al_plugin"
    plugin_dir.mkdir(parents=True)
    setup_env = tmp_path / "env"
    assert find_interpreter(plugin_dir, setup_env) is None
    _touch(venv_python(setup_env))
    assert find_interpreter(plugin_dir, setup_env) == venv_python(setup_env)
    _touch(venv_python(tmp_path / "repo" / ".venv"))
    assert find_interpreter(plugin_dir, setup_env) == venv_python(tmp_path / "repo" / ".venv")
    assert interpreter_candidates(plugin_dir, setup_env)[0] == venv_python(tmp_path / "repo" / ".venv")


def test_engine_folder_bundled_or_next_to_the_plugin(tmp_path):
    checkout = tmp_path / "repo" / "sparse_al_plugin"
    checkout.mkdir(parents=True)
    assert engine_package_dir(checkout) is None
    _touch(tmp_path / "repo" / "engine" / "__main__.py")
    _touch(tmp_path / "repo" / "requirements.txt")
    assert engine_package_dir(checkout) == tmp_path / "repo"
    assert requirements_file(checkout) == tmp_path / "repo" / "requirements.txt"
    _touch(checkout / "engine" / "__main__.py")  # an installed plugin bundles it
    assert engine_package_dir(checkout) == checkout


def test_command_and_environment():
    config = EngineConfig("/env/bin/python", "engine", "/plugin", device="cuda")
    argv = config.command("train", "/s/train.json")
    assert argv == ["/env/bin/python", "-m", "engine", "train", "--job", "/s/train.json", "--events", "json",
                    "--device", "cuda"]  # fmt: skip
    assert EngineConfig("/p", precision="float32").command("predict", "j.json")[-2:] == ["--precision", "float32"]
    assert "--precision" not in EngineConfig("/p", precision="auto").command("predict", "j.json")
    env = config.environment({"PATH": "/bin", "PYTHONHOME": "/qgis", "PYTHONPATH": "/qgis/python", "GDAL_DATA": "x"})
    assert env["PYTHONPATH"] == "/plugin" and env["PATH"] == "/bin"
    assert "PYTHONHOME" not in env and "GDAL_DATA" not in env


def test_resolve_fills_blanks_and_names_problems(tmp_path):
    config = resolve(sys.executable, "tests.plugin.fake_engine", str(tmp_path))
    assert (config.python, config.module, config.path) == (sys.executable, "tests.plugin.fake_engine", str(tmp_path))
    assert config.problem() is None
    assert "does not exist" in EngineConfig(str(tmp_path / "nope")).problem()
    assert "Set up engine" in EngineConfig("").problem()
    auto = resolve()
    assert auto.module == "engine" and auto.path  # this checkout: engine/ next to the plugin
