"""Sparse AL QGIS plugin. QGIS calls classFactory; nothing heavy happens on import (and torch never does)."""


def classFactory(iface):  # QGIS's name
    from .plugin import SparseAlPlugin

    return SparseAlPlugin(iface)
