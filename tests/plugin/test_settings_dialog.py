"""The settings dialog: its values, "Set up engine" with visible progress, "Check"."""

import sys

import pytest
from qgis.core import Qgis

from sparse_al_plugin import settings_dialog as dialog_module
from sparse_al_plugin.jobs import TrainOptions
from sparse_al_plugin.notify import Notifier
from sparse_al_plugin.settings import PluginSettings
from sparse_al_plugin.settings_dialog import SettingsDialog
from tests.plugin.conftest import ROOT, wait_for


def test_dialog_returns_what_was_entered(iface):
    dialog = SettingsDialog(PluginSettings(train=TrainOptions(epochs=7)), Notifier(iface))
    assert dialog.epochs_spin.value() == 7
    dialog.python_widget.setFilePath("/env/bin/python")
    dialog.patch_spin.setValue(128)
    dialog.patches_spin.setValue(0)
    dialog.device_combo.setCurrentText("cuda")
    assert dialog.precision_combo.currentData() == "auto"
    dialog.precision_combo.setCurrentIndex(dialog.precision_combo.findData("float32"))
    assert dialog.model_combo.currentData() == "unet"
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("rf"))
    assert dialog.flips_combo.currentData() == 0  # the engine's default
    dialog.flips_combo.setCurrentIndex(dialog.flips_combo.findData(1))
    result = dialog.result_settings()
    assert result.python == "/env/bin/python" and result.device == "cuda" and result.module == "engine"
    assert result.precision == "float32" and result.engine().precision == "float32"
    assert result.train == TrainOptions(epochs=7, patch_size=128, batch_size=8, patches_per_epoch=0, encoder="",
                                        model="rf", flip_views=1)  # fmt: skip
    again = SettingsDialog(PluginSettings(train=TrainOptions(flip_views=2)), Notifier(iface))
    assert again.flips_combo.currentData() == 2


def test_set_up_engine_runs_its_commands_with_progress(iface, tmp_path, monkeypatch):
    venv = tmp_path / "engine-venv"
    monkeypatch.setattr(dialog_module, "default_venv_dir", lambda: venv)
    script = "print('Collecting torch', flush=True); print('Installing collected packages: torch', flush=True)"
    monkeypatch.setattr(dialog_module.env_setup, "setup_commands",
                        lambda base, target, requirements: [[sys.executable, "-c", script]])  # fmt: skip
    dialog = SettingsDialog(PluginSettings(), Notifier(iface))
    dialog.set_up()
    assert not dialog.setup_button.isEnabled() and dialog.stop_button.isEnabled()
    wait_for(lambda: dialog.task is None, 30, "the setup task")
    assert dialog.progress.value() == 100 and "ready" in dialog.status_label.text()
    assert "Collecting torch" in dialog.output.toPlainText()
    assert dialog.python_widget.filePath().startswith(str(venv))
    assert any("ready" in m for m in iface.messageBar().get_messages(Qgis.MessageLevel.Success))


def test_check_with_a_missing_interpreter_says_so(iface, tmp_path):
    dialog = SettingsDialog(PluginSettings(python=str(tmp_path / "nope")), Notifier(iface))
    dialog.check()
    assert dialog.task is None
    assert any("does not exist" in m for m in iface.messageBar().get_messages(Qgis.MessageLevel.Warning))


@pytest.mark.slow
def test_check_reports_torch_and_the_device(iface):
    dialog = SettingsDialog(PluginSettings(python=sys.executable, path=str(ROOT)), Notifier(iface))
    dialog.check()
    wait_for(lambda: dialog.task is None, 300, "the check")
    text = dialog.status_label.text()
    assert text.startswith("✔") and "torch 2." in text and "engine 0." in text
