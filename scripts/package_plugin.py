"""Build the installable QGIS plugin zip (the engine bundled inside the plugin folder), and optionally install it.

    python scripts/package_plugin.py --out dist             # dist/sparse_al_plugin.zip
    python scripts/package_plugin.py --out dist --deploy    # ... and unpack it into the local QGIS profile

The zip holds one folder, sparse_al_plugin/, with the plugin's code, metadata.txt (copied from the top level),
resources/ (icons, styles), engine/ (the engine package, run by the plugin in its own Python) and requirements.txt
(what "Set up engine" installs). The plugin finds the bundled engine and its requirements there.
"""

import argparse
import configparser
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "sparse_al_plugin"
REQUIRED_METADATA = ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "repository")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
log = logging.getLogger("package_plugin")


def default_plugins_dir() -> Path:
    if os.environ.get("QGIS_PLUGINS_DIR"):
        return Path(os.environ["QGIS_PLUGINS_DIR"])
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "QGIS" / "QGIS3"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support" / "QGIS" / "QGIS3"
    else:
        base = Path.home() / ".local" / "share" / "QGIS" / "QGIS3"
    return base / "profiles" / "default" / "python" / "plugins"


def check_metadata(path: Path) -> dict:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep qgisMinimumVersion's case
    parser.read(path, encoding="utf-8")
    if "general" not in parser:
        raise SystemExit(f"{path}: no [general] section")
    general = dict(parser["general"])
    missing = [key for key in REQUIRED_METADATA if not general.get(key, "").strip()]
    if missing:
        raise SystemExit(f"{path}: missing {', '.join(missing)} (the QGIS plugin repository requires them)")
    return general


def files_to_pack(root: Path = ROOT) -> list[tuple[Path, str]]:
    """(source file, path inside the zip) pairs."""
    pairs = [(root / "metadata.txt", f"{PACKAGE}/metadata.txt"),
             (root / "requirements.txt", f"{PACKAGE}/requirements.txt")]  # fmt: skip
    for license_name in ("LICENSE", "LICENSE.txt", "COPYING"):
        if (root / license_name).is_file():
            pairs.append((root / license_name, f"{PACKAGE}/LICENSE"))
    for folder, target in ((root / PACKAGE, PACKAGE), (root / "resources", f"{PACKAGE}/resources"),
                           (root / "engine", f"{PACKAGE}/engine")):  # fmt: skip
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_dir() or SKIP_DIRS & set(relative.parts) or path.suffix in SKIP_SUFFIXES:
                continue
            pairs.append((path, f"{target}/{relative.as_posix()}"))
    return pairs


def build(out_dir: Path, root: Path = ROOT) -> Path:
    metadata = check_metadata(root / "metadata.txt")
    if metadata.get("icon") and not (root / metadata["icon"]).is_file():
        raise SystemExit(f"metadata.txt: icon {metadata['icon']} does not exist")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PACKAGE}.zip"
    fd, tmp = tempfile.mkstemp(suffix=".zip", dir=out_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for source, name in files_to_pack(root):
                archive.write(source, name)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    log.info("built %s (version %s, %d kB)", target, metadata["version"], target.stat().st_size // 1024)
    return target


def deploy(archive: Path, plugins_dir: Path) -> Path:
    """Replace the installed plugin folder with the archive's (the engine's venv lives elsewhere and is kept)."""
    plugins_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sparse_al_", dir=plugins_dir))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)
        installed = plugins_dir / PACKAGE
        if installed.exists():
            shutil.rmtree(installed)
        (staging / PACKAGE).rename(installed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("installed into %s; restart QGIS (or use Plugin Reloader) and enable Sparse AL in Plugins", installed)
    return installed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="dist", help="folder for the zip (default: dist)")
    parser.add_argument("--deploy", action="store_true", help="also install into the QGIS profile's plugins folder")
    parser.add_argument("--plugins-dir", type=Path, help="plugins folder (default: the default profile's, or "
                        "$QGIS_PLUGINS_DIR)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    archive = build(Path(args.out))
    if args.deploy:
        deploy(archive, args.plugins_dir or default_plugins_dir())
    return 0


if __name__ == "__main__":
    sys.exit(main())
