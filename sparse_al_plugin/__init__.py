"""Sparse AL QGIS plugin. QGIS calls classFactory; nothing heavy happens on import."""


def classFactory(iface):  # noqa: N802 - QGIS's name
    from sparse_al_plugin.plugin import SparseAlPlugin

    return SparseAlPlugin(iface)
