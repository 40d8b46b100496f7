"""Screenshots of the plugin in a real QGIS, for docs/plugin.md. Runs inside QGIS (``qgis --code``), under Xvfb:

    python scripts/package_plugin.py --out dist --deploy --plugins-dir /tmp/sparse-al-qgis/plugins
    QGIS_PLUGINPATH=/tmp/sparse-al-qgis/plugins SPARSE_AL_ENGINE_PYTHON=$PWD/.venv/bin/python \\
      xvfb-run -a -s "-screen 0 1280x900x24" qgis --nologo --noversioncheck \\
      --profiles-path /tmp/sparse-al-qgis/profiles --code scripts/plugin_screenshots.py

It opens a bsb_toy image and its label (as the reference), clicks points of each class where the label says, runs
the loop with the real engine, and writes docs/images/plugin_dock.png and docs/images/plugin_prediction.png (Qt's
screen grab, reduced to 256 colours by ImageMagick's ``convert`` where it is installed). SPARSE_AL_SHOT_STEPS
(default train,predict,suggest; empty: only the screenshots of an existing SPARSE_AL_SHOT_SESSION) and
SPARSE_AL_SHOT_EPOCHS pick the work; SPARSE_AL_SHOT_SESSION is the session folder (default: a fresh temporary one);
SPARSE_AL_ENGINE_PATH a folder holding another engine package; SPARSE_AL_SHOT_MODEL=rf trains the random forest
instead of the network.
"""

import logging
import os
import random
import subprocess
import tempfile
from pathlib import Path

import qgis.utils
from osgeo import gdal
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt, QTimer
from qgis.PyQt.QtWidgets import QDockWidget

DATA = Path(os.environ.get("SPARSE_AL_DATA", "/work/shared/data/bsb_toy"))
IMAGE = Path(os.environ.get("SPARSE_AL_SHOT_IMAGE", DATA / "images" / "1.tif"))
LABEL = Path(os.environ.get("SPARSE_AL_SHOT_LABEL", DATA / "labels" / IMAGE.name))
OUT = Path(os.environ.get("SPARSE_AL_SHOT_OUT", Path.cwd() / "docs" / "images"))
SESSION = Path(os.environ.get("SPARSE_AL_SHOT_SESSION") or tempfile.mkdtemp(prefix="sparse-al-shot-"))
STEPS = tuple(s for s in os.environ.get("SPARSE_AL_SHOT_STEPS", "train,predict,suggest").split(",") if s)
EPOCHS = int(os.environ.get("SPARSE_AL_SHOT_EPOCHS", "30"))
MODEL = os.environ.get("SPARSE_AL_SHOT_MODEL", "unet")  # or rf: the random forest
POINTS_PER_CLASS = int(os.environ.get("SPARSE_AL_SHOT_POINTS", "8"))
CLASSES = (
    ("background", "#b0b0b0", 1.0, 15.0),  # image 1's background covers 14.5% of it
    ("car", "#e31a1c", 1.0, None),
    ("road", "#505050", 1.0, None),
    ("building", "#ff7f00", 1.0, None),
    ("permeable_area", "#33a02c", 1.0, None),
)  # (name, colour, map weight, share of the map in percent)


def main() -> None:
    from sparse_al_plugin.classes import ClassSpec
    from sparse_al_plugin.dock import RunRequest
    from sparse_al_plugin.jobs import TrainOptions
    from sparse_al_plugin.session import LoopOptions
    from sparse_al_plugin.settings import PluginSettings, save_settings

    iface = qgis.utils.iface
    window = iface.mainWindow()
    window.move(0, 0)
    for dock in window.findChildren(QDockWidget):
        if dock.objectName() == "Browser":
            dock.hide()
    window.resize(
        int(os.environ.get("SPARSE_AL_SHOT_WIDTH", "1280")), int(os.environ.get("SPARSE_AL_SHOT_HEIGHT", "900"))
    )
    save_settings(PluginSettings(python=os.environ["SPARSE_AL_ENGINE_PYTHON"], device="cpu",
                                 path=os.environ.get("SPARSE_AL_ENGINE_PATH", ""),
                                 train=TrainOptions(epochs=EPOCHS, patch_size=128, batch_size=4,
                                                    patches_per_epoch=16, model=MODEL)))  # fmt: skip
    plugin = qgis.utils.plugins["sparse_al_plugin"]
    plugin.dock_action.setChecked(True)
    window.resizeDocks([plugin.dock], [330], Qt.Orientation.Horizontal)
    image = QgsRasterLayer(str(IMAGE), f"image {IMAGE.stem}")
    reference = QgsRasterLayer(str(LABEL), f"label {LABEL.stem} (reference)")
    project = QgsProject.instance()
    project.addMapLayer(image)
    project.addMapLayer(reference)
    project.layerTreeRoot().findLayer(reference.id()).setItemVisibilityChecked(False)
    project.setCrs(image.crs())
    iface.mapCanvas().setExtent(image.extent())
    iface.mapCanvas().refresh()

    controller = plugin.controller
    controller.open_session(str(SESSION))
    controller.set_classes(tuple(ClassSpec(*spec) for spec in CLASSES), 1)
    controller.set_rasters([image.id()])
    controller.set_reference(reference.id())
    controller.dock.set_reference(reference)
    controller.refresh_rasters()
    plugin.tool_action.setChecked(True)
    iface.setActiveLayer(image)
    if STEPS:  # else: only the screenshots of a session done before (SPARSE_AL_SHOT_SESSION)
        QTimer.singleShot(1500, lambda: click_points(plugin))
        controller.dock.set_loop_options(LoopOptions("superpixel", 15, "full"))
        QTimer.singleShot(3000, lambda: controller.loop.run(RunRequest(STEPS, controller.dock.loop_options())))
    QTimer.singleShot(5000, lambda: wait_then(plugin, lambda: finish(plugin)))


def click_points(plugin) -> None:
    """Clicks where the label has each class (seeded), through the map tool, as a user would."""
    ds = gdal.Open(str(LABEL))
    width, height = ds.RasterXSize, ds.RasterYSize
    label = ds.GetRasterBand(1).ReadRaster()
    gt = ds.GetGeoTransform()
    rng = random.Random(0)
    canvas = plugin.iface.mapCanvas()
    transform = canvas.getCoordinateTransform()
    for k in range(len(CLASSES)):
        pixels = [i for i, v in enumerate(label) if v == k and _interior(label, i, width, height)]
        plugin.controller.activate_class(k)
        for i in rng.sample(pixels, min(POINTS_PER_CLASS, len(pixels))):
            row, col = divmod(i, width)
            x, y = gt[0] + (col + 0.5) * gt[1], gt[3] + (row + 0.5) * gt[5]
            screen = transform.transform(x, y)
            event = QgsMapMouseEvent(canvas, QEvent.Type.MouseButtonRelease, QPoint(round(screen.x()),
                                     round(screen.y())), Qt.MouseButton.LeftButton)  # fmt: skip
            plugin.tool.canvasReleaseEvent(event)
    plugin.controller.activate_class(1)


def _interior(label: bytes, i: int, width: int, height: int, r: int = 3) -> bool:
    row, col = divmod(i, width)
    if not (r <= row < height - r and r <= col < width - r):
        return False
    return all(label[(row + dr) * width + col + dc] == label[i] for dr in (-r, 0, r) for dc in (-r, 0, r))


def wait_then(plugin, then) -> None:
    controller = plugin.controller
    if not controller.loop.busy:
        then()
    else:
        QTimer.singleShot(1000, lambda: wait_then(plugin, then))


def finish(plugin) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    results = plugin.controller.results
    root = QgsProject.instance().layerTreeRoot()
    for layer in results.layers("suggestions"):
        root.findLayer(layer.id()).setItemVisibilityChecked(False)
    for layer in results.layers("prediction"):
        root.findLayer(layer.id()).setItemVisibilityChecked(False)
    plugin.iface.mapCanvas().refresh()
    QTimer.singleShot(3000, lambda: shoot("plugin_dock.png", lambda: show_prediction(plugin)))


def show_prediction(plugin) -> None:
    root = QgsProject.instance().layerTreeRoot()
    for role in ("prediction", "suggestions"):
        for layer in plugin.controller.results.layers(role):
            root.findLayer(layer.id()).setItemVisibilityChecked(True)
    plugin.iface.mapCanvas().refresh()
    QTimer.singleShot(3000, lambda: shoot("plugin_prediction.png", quit_qgis))


def quit_qgis() -> None:
    os._exit(0)  # QGIS 3.22 can crash tearing a project down at exit; the screenshots are written


def shoot(name: str, then) -> None:
    qgis.utils.iface.messageBar().clearWidgets()
    QgsApplication.processEvents()
    raw = OUT / f".{name}"
    if not QgsApplication.primaryScreen().grabWindow(0).save(str(raw), "PNG"):  # the whole (virtual) screen
        raise OSError(f"could not write the screenshot {raw}")
    # 256 colours keep a full-window screenshot of imagery under 300 kB and look the same at README size
    argv = ["convert", str(raw), "+dither", "-colors", "256", "-define", "png:exclude-chunks=date,time"]
    try:
        subprocess.run([*argv, f"PNG8:{OUT / name}"], check=True, capture_output=True)
        raw.unlink()
    except (OSError, subprocess.CalledProcessError):  # no ImageMagick: the full-colour PNG, larger
        logging.warning("ImageMagick's convert failed; %s keeps all its colours", name)
        raw.replace(OUT / name)
    then()


QTimer.singleShot(500, lambda: qgis.utils.loadPlugin("sparse_al_plugin") and qgis.utils.startPlugin("sparse_al_plugin"))
QTimer.singleShot(2500, main)
