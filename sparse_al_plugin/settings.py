"""The plugin's settings (QgsSettings, per user profile): the engine's interpreter and training options."""

from dataclasses import dataclass, field, fields

from qgis.core import QgsSettings

from .engine_config import DEFAULT_MODULE, EngineConfig, resolve
from .jobs import TrainOptions

PREFIX = "sparse_al/"


@dataclass(frozen=True)
class PluginSettings:
    python: str = ""  # "" = find automatically
    module: str = DEFAULT_MODULE
    path: str = ""  # "" = the engine bundled with (or next to) the plugin
    device: str = "auto"
    train: TrainOptions = field(default_factory=TrainOptions)
    precision: str = "auto"  # the engine's --precision

    def engine(self) -> EngineConfig:
        return resolve(self.python, self.module, self.path, self.device, self.precision)


def load_settings(store: QgsSettings | None = None) -> PluginSettings:
    store = store or QgsSettings()
    default = TrainOptions()
    train = {f.name: type(getattr(default, f.name))(store.value(PREFIX + "train/" + f.name, getattr(default, f.name)))
             for f in fields(TrainOptions)}  # fmt: skip
    return PluginSettings(
        python=str(store.value(PREFIX + "python", "") or ""),
        module=str(store.value(PREFIX + "module", DEFAULT_MODULE) or DEFAULT_MODULE),
        path=str(store.value(PREFIX + "path", "") or ""),
        device=str(store.value(PREFIX + "device", "auto") or "auto"),
        train=TrainOptions(**train),
        precision=str(store.value(PREFIX + "precision", "auto") or "auto"),
    )


def save_settings(settings: PluginSettings, store: QgsSettings | None = None) -> None:
    store = store or QgsSettings()
    for key in ("python", "module", "path", "device", "precision"):
        store.setValue(PREFIX + key, getattr(settings, key))
    for f in fields(TrainOptions):
        store.setValue(PREFIX + "train/" + f.name, getattr(settings.train, f.name))
