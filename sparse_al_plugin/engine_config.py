"""Which Python runs the engine, and how: the interpreter, the module and the folder holding the engine package.

Plain Python (no Qt, no QGIS), so discovery and command lines are testable on their own. The plugin never imports
the engine; it only starts ``<python> -m <module> <command> --job JOB --events json`` in a subprocess.
"""

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent
DEFAULT_MODULE = "engine"
# Variables of QGIS's own Python and GDAL that must not leak into the engine's interpreter.
SCRUBBED_ENV = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "GDAL_DRIVER_PATH", "GDAL_DATA", "PROJ_LIB", "PROJ_DATA",
                "VIRTUAL_ENV", "QGIS_PREFIX_PATH")  # fmt: skip


def default_venv_dir() -> Path:
    """Where "Set up engine" builds the engine's environment: outside the plugin folder, kept across updates."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "sparse-al" / "engine-venv"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def engine_package_dir(plugin_dir: Path = PLUGIN_DIR) -> Path | None:
    """The folder to put on the engine's PYTHONPATH: the plugin folder when the engine is bundled in it (an
    installed plugin), else the source checkout the plugin lives in."""
    for folder in (plugin_dir, plugin_dir.parent):
        if (folder / "engine" / "__main__.py").is_file():
            return folder
    return None


def requirements_file(plugin_dir: Path = PLUGIN_DIR) -> Path | None:
    for folder in (plugin_dir, plugin_dir.parent):
        if (folder / "requirements.txt").is_file():
            return folder / "requirements.txt"
    return None


def interpreter_candidates(plugin_dir: Path = PLUGIN_DIR, venv_dir: Path | None = None) -> list[Path]:
    """Interpreters to try, best first: the source checkout's .venv next to the plugin, then the set-up env."""
    return [venv_python(plugin_dir.parent / ".venv"), venv_python(venv_dir or default_venv_dir())]


def find_interpreter(plugin_dir: Path = PLUGIN_DIR, venv_dir: Path | None = None) -> Path | None:
    for candidate in interpreter_candidates(plugin_dir, venv_dir):
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class EngineConfig:
    python: str  # the interpreter of the engine's environment
    module: str = DEFAULT_MODULE  # run as ``python -m module``
    path: str = ""  # prepended to PYTHONPATH: the folder holding the engine package ("" for none)
    device: str = "auto"
    precision: str = "auto"  # the engine's --precision: auto, float32 or bf16

    def command(self, command: str, job: Path) -> list[str]:
        argv = [self.python, "-m", self.module, command, "--job", str(job), "--events", "json"]
        for option, value in (("--device", self.device), ("--precision", self.precision)):
            if value and value != "auto":
                argv += [option, value]
        return argv

    def environment(self, base: dict | None = None) -> dict:
        env = {k: v for k, v in (os.environ if base is None else base).items() if k not in SCRUBBED_ENV}
        if self.path:
            env["PYTHONPATH"] = self.path
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONIOENCODING"] = "utf-8"
        return env

    def problem(self) -> str | None:
        """Why this configuration cannot run, in words for the user, or None."""
        if not self.python:
            return "no Python interpreter for the engine is set; open Sparse AL settings and press Set up engine"
        if not Path(self.python).is_file():
            return f"the engine's Python {self.python} does not exist; open Sparse AL settings and fix or set it up"
        return None


def resolve(python: str = "", module: str = "", path: str = "", device: str = "auto",
            precision: str = "auto") -> EngineConfig:  # fmt: skip
    """The configuration from user settings, with blanks filled in by discovery."""
    if not python:
        found = find_interpreter()
        python = str(found) if found else ""
    if not module:
        module = DEFAULT_MODULE
    if not path and module == DEFAULT_MODULE:
        found_dir = engine_package_dir()
        path = str(found_dir) if found_dir else ""
    return replace(EngineConfig(python, module, path), device=device or "auto", precision=precision or "auto")
