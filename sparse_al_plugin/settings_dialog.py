"""Settings: the engine's Python (found, set up, checked) and the training options."""

from dataclasses import replace

from qgis.core import QgsApplication
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from . import env_setup
from .engine_config import default_venv_dir, find_interpreter, requirements_file, venv_python
from .jobs import TrainOptions
from .notify import Notifier, UserError, guarded
from .settings import PluginSettings
from .tasks import CommandTask

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = {
    "auto": "Automatic (bf16, or float16 on a GPU, where faster; else float32)",
    "float32": "float32",
    "bf16": "bf16 (slower on a CPU without native bf16)",
}
MODELS = {
    "unet": "U-Net with a random forest (most accurate)",
    "network": "U-Net alone (prediction about 1.6x faster on a CPU)",
    "rf": "Random forest (fast on a CPU)",
}
FLIPS = {
    0: "4 flips (the engine's default, most accurate)",
    2: "2 flips",
    1: "Off (prediction about 1.4x faster on a CPU)",
}


class SettingsDialog(QDialog):
    def __init__(self, settings: PluginSettings, notifier: Notifier, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Sparse AL settings")
        self.notifier = notifier
        self.settings = settings
        self.task: CommandTask | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(self._engine_box())
        layout.addWidget(self._train_box())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(560, 520)

    def _engine_box(self) -> QGroupBox:
        box = QGroupBox("Engine")
        form = QFormLayout(box)
        self.python_widget = QgsFileWidget()
        self.python_widget.setStorageMode(QgsFileWidget.StorageMode.GetFile)
        self.python_widget.setFilePath(self.settings.python)
        found = find_interpreter()
        self.python_widget.lineEdit().setPlaceholderText(f"automatic: {found}" if found else "not found: set up")
        form.addRow("Python", self.python_widget)
        self.module_edit = QLineEdit(self.settings.module)
        form.addRow("Module", self.module_edit)
        self.path_widget = QgsFileWidget()
        self.path_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.path_widget.setFilePath(self.settings.path)
        self.path_widget.lineEdit().setPlaceholderText("automatic: the engine bundled with the plugin")
        form.addRow("Engine folder", self.path_widget)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setCurrentText(self.settings.device if self.settings.device in DEVICES else "auto")
        form.addRow("Device", self.device_combo)
        self.precision_combo = _combo(PRECISIONS, self.settings.precision, "The number format the network computes "
                                      "in: bf16 trains and predicts about twice as fast where the processor has "
                                      "it; float32 is the exact reference")  # fmt: skip
        form.addRow("Precision", self.precision_combo)
        row = QHBoxLayout()
        self.setup_button = QPushButton("Set up engine")
        self.setup_button.setToolTip(f"Create a Python environment in {default_venv_dir()} and install the engine's "
                                     "requirements (torch and friends: a large download)")  # fmt: skip
        self.setup_button.clicked.connect(self.set_up)
        self.check_button = QPushButton("Check")
        self.check_button.setToolTip("Run the engine's Python: torch version and device")
        self.check_button.clicked.connect(self.check)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        row.addWidget(self.setup_button)
        row.addWidget(self.check_button)
        row.addWidget(self.stop_button)
        row.addStretch(1)
        form.addRow(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        form.addRow(self.progress)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        form.addRow(self.status_label)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setMaximumBlockCount(2000)
        self.output.setMinimumHeight(100)
        form.addRow(self.output)
        return box

    def _train_box(self) -> QGroupBox:
        box = QGroupBox("Training")
        form = QFormLayout(box)
        t = self.settings.train
        self.epochs_spin = _spin(1, 10000, t.epochs)
        self.patch_spin = _spin(32, 4096, t.patch_size, step=32)
        self.batch_spin = _spin(1, 1024, t.batch_size)
        self.patches_spin = _spin(0, 100000, t.patches_per_epoch)
        self.patches_spin.setSpecialValueText("automatic")
        self.encoder_edit = QLineEdit(t.encoder)
        self.encoder_edit.setPlaceholderText("engine default (resnet18)")
        self.model_combo = _combo(MODELS, t.model, "The network and a random forest averaged learn most from few "
                                  "clicks; the forest alone trains in seconds")  # fmt: skip
        form.addRow("Model", self.model_combo)
        self.flips_combo = _combo(FLIPS, t.flip_views, "The network's predictions averaged over flipped copies of "
                                  "each tile: a little more accurate, a pass of the network per flip")  # fmt: skip
        form.addRow("Flip averaging", self.flips_combo)
        form.addRow("Epochs per iteration", self.epochs_spin)
        form.addRow("Patch size (pixels)", self.patch_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Patches per epoch", self.patches_spin)
        form.addRow("Encoder (new models)", self.encoder_edit)
        return box

    def result_settings(self) -> PluginSettings:
        train = TrainOptions(self.epochs_spin.value(), self.patch_spin.value(), self.batch_spin.value(),
                             self.patches_spin.value(), self.encoder_edit.text().strip(),
                             self.model_combo.currentData() or "unet",
                             int(self.flips_combo.currentData() or 0))  # fmt: skip
        return replace(self.settings, python=self.python_widget.filePath().strip(),
                       module=self.module_edit.text().strip() or "engine", path=self.path_widget.filePath().strip(),
                       device=self.device_combo.currentText(), train=train,
                       precision=self.precision_combo.currentData() or "auto")  # fmt: skip

    @guarded
    def set_up(self, _checked=False) -> None:
        base = env_setup.find_base_python()
        requirements = requirements_file()
        if base is None:
            raise UserError("no Python found to create the engine's environment; install Python 3.10+ and retry")
        if requirements is None:
            raise UserError("the engine's requirements.txt is missing from the plugin; reinstall the plugin")
        venv = default_venv_dir()
        total = env_setup.requirement_count(requirements)
        seen: set[str] = set()
        commands = env_setup.setup_commands(base, venv, requirements)
        self.python_widget.setFilePath(str(venv_python(venv)))
        progress = lambda step, line: env_setup.setup_progress(step, line, total, seen)  # noqa: E731
        self._start(CommandTask("Sparse AL: set up the engine", commands, self._setup_done, progress_of=progress))
        self.status_label.setText(f"Setting up {venv} (a large download; this takes minutes)…")

    @guarded
    def check(self, _checked=False) -> None:
        config = self.result_settings().engine()
        problem = config.problem()
        if problem:
            raise UserError(problem)
        self._start(CommandTask("Sparse AL: check the engine", [env_setup.check_command(config)], self._check_done,
                                env=config.environment()))  # fmt: skip
        self.status_label.setText("Checking (importing torch takes a few seconds)…")

    def stop(self, _checked=False) -> None:
        if self.task is not None:
            self.task.cancel()

    def _start(self, task: CommandTask) -> None:
        if self.task is not None:
            raise UserError("wait for the running setup or check to end, or press Stop")
        self.task = task
        self.output.clear()
        task.lineReceived.connect(self.output.appendPlainText)
        task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        self._set_running(True)
        QgsApplication.taskManager().addTask(task)

    @guarded
    def _setup_done(self, task: CommandTask) -> None:
        self._finish()
        if task.returncode == 0 and not task.isCanceled():
            self.progress.setValue(100)
            self.status_label.setText("The engine's environment is ready; press Check.")
            self.notifier.success("the engine's environment is ready")
        else:
            self.status_label.setText("Setting up failed or was stopped; the output above says why.")
            self.notifier.warning("setting up the engine failed or was stopped", "\n".join(task.output[-30:]))

    @guarded
    def _check_done(self, task: CommandTask) -> None:
        self._finish()
        ok, text = env_setup.describe_check(env_setup.parse_check(task.output))
        self.progress.setValue(100 if ok else 0)
        self.status_label.setText(("✔ " if ok else "✘ ") + text)

    def _finish(self) -> None:
        self.task = None
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.setup_button.setEnabled(not running)
        self.check_button.setEnabled(not running)
        self.stop_button.setEnabled(running)


def _combo(choices: dict, current, tooltip: str) -> QComboBox:
    """A combo box of ``choices`` (data: label), ``current`` selected (the first when it is not a choice)."""
    combo = QComboBox()
    for data, label in choices.items():
        combo.addItem(label, data)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    combo.setToolTip(tooltip)
    return combo


def _spin(low: int, high: int, value: int, step: int = 1) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setValue(int(value))
    return spin
