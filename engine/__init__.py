"""Sparse AL engine: trains and runs segmentation networks from sparse class points.

Runs as its own process (``python -m engine``); see CONTRACT.md for the interface the QGIS plugin uses.
"""

__version__ = "0.1.0"
SCHEMA_VERSION = 1
