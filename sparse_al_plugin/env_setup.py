"""Setting up and checking the engine's Python environment: command lines and how to read their output.

Plain Python. The plugin runs these commands in a QgsTask when the user asks (settings dialog); it never installs
anything on its own, and never when it loads.
"""

import json
import shutil
import sys
from pathlib import Path

from .engine_config import EngineConfig, venv_python

CHECK_MARK = "SPARSE_AL_CHECK "
CHECK_SCRIPT = f"""
import json, sys
info = {{"python": sys.version.split()[0], "executable": sys.executable}}
try:
    import torch
    info["torch"] = torch.__version__
    if torch.cuda.is_available():
        info["device"] = "cuda (" + torch.cuda.get_device_name(0) + ")"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        info["device"] = "mps (Apple GPU)"
    else:
        info["device"] = "cpu"
except Exception as exc:
    info["torch_error"] = repr(exc)
try:
    import engine
    info["engine"] = engine.__version__
except Exception as exc:
    info["engine_error"] = repr(exc)
try:
    import engine.device
    if info.get("device") == "cpu":
        if hasattr(engine.device, "set_precision"):  # the precision the settings ask for (sys.argv[1])
            engine.device.set_precision(sys.argv[1] if len(sys.argv) > 1 else "auto", "cpu")
        info["device"] = engine.device.describe(torch.device("cpu"))  # 'cpu (bf16 autocast)' where bf16 runs
except Exception as exc:  # an engine older than its precision choice keeps the plain name; a bad setting is said
    if type(exc).__name__ == "InputError":
        info["precision_error"] = str(exc)
print({CHECK_MARK!r} + json.dumps(info))
"""


def base_python_candidates() -> list[Path]:
    """Interpreters that can create the engine's venv. Inside QGIS sys.executable is often QGIS itself."""
    names = ("python.exe",) if sys.platform == "win32" else ("bin/python3", "bin/python")
    found = [Path(sys.exec_prefix) / name for name in names]
    if "python" in Path(sys.executable).name.lower():
        found.insert(0, Path(sys.executable))
    for name in ("python3", "python"):
        which = shutil.which(name)
        if which:
            found.append(Path(which))
    return found


def find_base_python() -> Path | None:
    return next((p for p in base_python_candidates() if p.is_file()), None)


def setup_commands(base_python: Path, venv: Path, requirements: Path) -> list[list[str]]:
    python = str(venv_python(venv))
    return [
        [str(base_python), "-m", "venv", str(venv)],
        [python, "-m", "pip", "install", "--upgrade", "pip"],
        [python, "-m", "pip", "install", "--progress-bar", "off", "-r", str(requirements)],
    ]


def requirement_count(requirements: Path) -> int:
    lines = Path(requirements).read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#"))


def setup_progress(step: int, line: str, total_requirements: int, seen: set[str]) -> float | None:
    """Progress of "Set up engine" (0..100) from its output: venv 0-10, pip 10-15, requirements 15-95 by the
    packages pip has started to collect (dependencies included, so it is an estimate), installing 95."""
    if step == 0:
        return 5.0
    if step == 1:
        return 12.0
    text = line.strip()
    if text.startswith("Collecting "):
        seen.add(text.split()[1])
        expected = max(total_requirements * 4, len(seen) + 1)  # dependencies roughly triple the list
        return 15.0 + 80.0 * min(len(seen) / expected, 1.0)
    if text.startswith("Installing collected packages"):
        return 95.0
    return None


def check_command(config: EngineConfig) -> list[str]:
    return [config.python, "-c", CHECK_SCRIPT, config.precision or "auto"]


def parse_check(output: list[str]) -> dict:
    for line in reversed(output):
        if line.startswith(CHECK_MARK):
            return json.loads(line[len(CHECK_MARK) :])
    return {"error": "\n".join(output[-5:]) or "no output"}


def describe_check(info: dict) -> tuple[bool, str]:
    """(usable, one line for the user)."""
    if "error" in info:
        return False, f"the engine's Python did not run: {info['error']}"
    parts = [f"Python {info.get('python', '?')}"]
    ok = True
    if "torch" in info:
        parts.append(f"torch {info['torch']} on {info.get('device', '?')}")
    else:
        ok = False
        parts.append(f"torch missing ({info.get('torch_error', '?')}); press Set up engine")
    if "engine" in info:
        parts.append(f"engine {info['engine']}")
    else:
        ok = False
        parts.append(f"engine not importable ({info.get('engine_error', '?')})")
    if "precision_error" in info:  # every run would fail on it
        ok = False
        parts.append(f"but {info['precision_error']}")
    return ok, ", ".join(parts)
