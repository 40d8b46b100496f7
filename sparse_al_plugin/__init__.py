"""Sparse AL QGIS plugin. QGIS calls classFactory; nothing heavy happens on import."""


def classFactory(iface):
    from sparse_al_plugin.plugin import SparseAlPlugin

    return SparseAlPlugin(iface)
