"""Files the plugin ships besides code (icons, QML styles): inside the plugin folder once packaged, next to it in a
source checkout."""

from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent


def resource(name: str) -> Path:
    for folder in (PLUGIN_DIR / "resources", PLUGIN_DIR.parent / "resources"):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"the plugin's resource {name} is missing; reinstall the plugin")


def icon_path(name: str) -> str:
    return str(resource(f"icons/{name}.svg"))
