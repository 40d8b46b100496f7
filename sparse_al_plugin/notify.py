"""Messages to the user (message bar) and to the log panel, and the guard every Qt slot goes through."""

import functools
import traceback

from qgis.core import Qgis, QgsMessageLog

from .classes import ClassListError

TAG = "Sparse AL"


class UserError(Exception):
    """A problem the user can fix; its message says how. Shown as a warning, without a traceback."""


EXPECTED = (UserError, ClassListError, OSError)


def log(message: str, level=Qgis.MessageLevel.Info) -> None:
    QgsMessageLog.logMessage(message, TAG, level)


class Notifier:
    """Pushes to the message bar and mirrors everything into the log panel (tab "Sparse AL")."""

    def __init__(self, iface):
        self.iface = iface

    def _push(self, text: str, level, duration: int) -> None:
        self.iface.messageBar().pushMessage(TAG, text, level, duration)

    def info(self, text: str, duration: int = 4) -> None:
        log(text)
        self._push(text, Qgis.MessageLevel.Info, duration)

    def success(self, text: str, duration: int = 5) -> None:
        log(text, Qgis.MessageLevel.Success)
        self._push(text, Qgis.MessageLevel.Success, duration)

    def warning(self, text: str, details: str = "", duration: int = 10) -> None:
        log(text + (f"\n{details}" if details else ""), Qgis.MessageLevel.Warning)
        self._push(text, Qgis.MessageLevel.Warning, duration)

    def error(self, text: str, details: str = "", duration: int = 0) -> None:
        log(text + (f"\n{details}" if details else ""), Qgis.MessageLevel.Critical)
        self._push(
            text + " (details in the log panel, tab Sparse AL)" if details else text,
            Qgis.MessageLevel.Critical,
            duration,
        )


def guarded(method):
    """Wrap a slot (a method of an object with ``.notifier``) so no exception vanishes: expected ones become a
    warning with their message, others an error with the traceback in the log panel."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except EXPECTED as exc:
            self.notifier.warning(str(exc))
        except Exception as exc:  # a bug: report it, keep QGIS running
            self.notifier.error(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        return None

    return wrapper
