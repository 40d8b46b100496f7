"""A QGIS project file (.qgs, XML) that opens rasters and GeoPackage layers with styles, written without QGIS.

The engine never imports qgis; this writes the small subset of the project format QGIS 3 reads: the project CRS and
extent, the layer tree, and per layer its source (relative to the project file), CRS and renderer: an RGB raster,
a paletted class raster, a colour ramp for a continuous raster, points by category or with one symbol, outlines.
"""

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from pyproj import CRS

from engine.atomic import atomic_file
from engine.classes import ClassInfo

VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]


@dataclass
class Layer:
    name: str
    source: Path  # absolute or relative to the project's folder
    kind: str  # rgb, paletted, ramp, categorized, marker, outline
    layer_name: str | None = None  # GeoPackage layer
    subset: str | None = None  # an OGR filter on the features, e.g. "suggested" = 1
    classes: list[ClassInfo] = field(default_factory=list)  # paletted, categorized
    field_name: str = "class"  # categorized
    color: str = "#ffff00"  # marker, outline
    ramp: tuple[float, float] = (0.0, 1.0)  # ramp: min and max
    visible: bool = True

    @property
    def is_vector(self) -> bool:
        return self.kind in ("categorized", "marker", "outline")


def write_project(
    path: Path, title: str, crs: str, extent: tuple[float, float, float, float], layers: list[Layer]
) -> Path:
    """Write ``path`` (.qgs); ``layers`` are listed top first (the first is drawn on top)."""
    path = Path(path)
    root = ET.Element("qgis", projectname=title, version="3.22.0-Białowieża")
    ET.SubElement(root, "title").text = title
    _crs(ET.SubElement(root, "projectCrs"), crs)
    ids = [
        f"{_safe(layer.name)}_{uuid.uuid5(uuid.NAMESPACE_URL, str(layer.source) + layer.name).hex}" for layer in layers
    ]
    tree = ET.SubElement(root, "layer-tree-group")
    for layer, layer_id in zip(layers, ids, strict=True):
        ET.SubElement(
            tree,
            "layer-tree-layer",
            id=layer_id,
            name=layer.name,
            source=_source(layer, path),
            providerKey="ogr" if layer.is_vector else "gdal",
            checked="Qt::Checked" if layer.visible else "Qt::Unchecked",
            expanded="1",
        )
    canvas = ET.SubElement(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    ET.SubElement(canvas, "units").text = "meters"
    box = ET.SubElement(canvas, "extent")
    for name, value in zip(("xmin", "ymin", "xmax", "ymax"), extent, strict=True):
        ET.SubElement(box, name).text = repr(float(value))
    _crs(ET.SubElement(canvas, "destinationsrs"), crs)
    project_layers = ET.SubElement(root, "projectlayers")
    for layer, layer_id in zip(layers, ids, strict=True):
        project_layers.append(_map_layer(layer, layer_id, path, crs))
    order = ET.SubElement(root, "layerorder")
    for layer_id in ids:
        ET.SubElement(order, "layer", id=layer_id)
    properties = ET.SubElement(root, "properties")
    paths = ET.SubElement(properties, "Paths")
    ET.SubElement(paths, "Absolute", type="bool").text = "false"
    srs = ET.SubElement(properties, "SpatialRefSys")  # QGIS reads <projectCrs> only when this says so
    ET.SubElement(srs, "ProjectionsEnabled", type="int").text = "1"
    ET.SubElement(srs, "ProjectCrs", type="QString").text = CRS.from_user_input(crs).to_string()
    ET.indent(root)
    text = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode")
    with atomic_file(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return path


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _source(layer: Layer, project: Path) -> str:
    source = Path(layer.source)
    try:
        text = "./" + source.resolve().relative_to(project.resolve().parent).as_posix()
    except ValueError:
        text = source.resolve().as_posix()
    if layer.layer_name:
        text += f"|layername={layer.layer_name}"
    if layer.subset:
        text += f"|subset={layer.subset}"
    return text


def _crs(parent: ET.Element, crs: str) -> None:
    parsed = CRS.from_user_input(crs)
    srs = ET.SubElement(parent, "spatialrefsys")
    ET.SubElement(srs, "wkt").text = parsed.to_wkt()
    authority = parsed.to_authority()
    ET.SubElement(srs, "authid").text = f"{authority[0]}:{authority[1]}" if authority else ""
    ET.SubElement(srs, "description").text = parsed.name
    ET.SubElement(srs, "geographicflag").text = "true" if parsed.is_geographic else "false"


def _map_layer(layer: Layer, layer_id: str, project: Path, crs: str) -> ET.Element:
    if layer.is_vector:
        geometry = {"categorized": "Point", "marker": "Point", "outline": "Polygon"}[layer.kind]
        element = ET.Element("maplayer", type="vector", geometry=geometry)
    else:
        element = ET.Element("maplayer", type="raster")
    ET.SubElement(element, "id").text = layer_id
    ET.SubElement(element, "datasource").text = _source(layer, project)
    ET.SubElement(element, "layername").text = layer.name
    _crs(ET.SubElement(element, "srs"), crs)
    if layer.is_vector:
        ET.SubElement(element, "provider", encoding="UTF-8").text = "ogr"
        element.append(_vector_renderer(layer))
    else:
        ET.SubElement(element, "provider").text = "gdal"
        pipe = ET.SubElement(element, "pipe")
        pipe.append(_raster_renderer(layer))
    return element


def _raster_renderer(layer: Layer) -> ET.Element:
    if layer.kind == "rgb":
        return ET.Element(
            "rasterrenderer",
            type="multibandcolor",
            redBand="1",
            greenBand="2",
            blueBand="3",
            opacity="1",
            alphaBand="-1",
        )
    if layer.kind == "paletted":
        renderer = ET.Element("rasterrenderer", type="paletted", band="1", opacity="1", alphaBand="-1")
        palette = ET.SubElement(renderer, "colorPalette")
        for index, info in enumerate(layer.classes):
            ET.SubElement(palette, "paletteEntry", value=str(index), color=info.color, alpha="255", label=info.name)
        return renderer
    if layer.kind == "ramp":
        low, high = layer.ramp
        renderer = ET.Element(
            "rasterrenderer",
            type="singlebandpseudocolor",
            band="1",
            opacity="1",
            alphaBand="-1",
            classificationMin=repr(low),
            classificationMax=repr(high),
        )
        shader = ET.SubElement(
            ET.SubElement(renderer, "rastershader"),
            "colorrampshader",
            colorRampType="INTERPOLATED",
            classificationMode="1",
            clip="0",
            minimumValue=repr(low),
            maximumValue=repr(high),
        )
        for k, color in enumerate(VIRIDIS):
            value = low + (high - low) * k / (len(VIRIDIS) - 1)
            ET.SubElement(shader, "item", value=repr(value), color=color, alpha="255", label=f"{value:.2f}")
        return renderer
    raise ValueError(f"unknown raster style {layer.kind!r}")


def _rgba(color: str, alpha: int = 255) -> str:
    color = color.lstrip("#")
    return ",".join(str(int(color[i : i + 2], 16)) for i in (0, 2, 4)) + f",{alpha}"


def _options(parent: ET.Element, values: dict[str, str]) -> None:
    options = ET.SubElement(parent, "Option", type="Map")
    for key, value in values.items():
        ET.SubElement(options, "Option", name=key, type="QString", value=value)
    for key, value in values.items():  # the older form, read by any QGIS 3
        ET.SubElement(parent, "prop", k=key, v=value)


def _symbol(name: str, kind: str, color: str, shape: str = "circle", size: float = 2.6) -> ET.Element:
    symbol = ET.Element("symbol", type=kind, name=name, alpha="1", clip_to_extent="1", force_rhr="0")
    if kind == "marker":
        layer = ET.SubElement(
            symbol, "layer", attrib={"class": "SimpleMarker", "enabled": "1", "pass": "0", "locked": "0"}
        )
        _options(
            layer,
            {
                "name": shape,
                "color": _rgba(color),
                "outline_color": "0,0,0,255",
                "outline_width": "0.3",
                "outline_width_unit": "MM",
                "size": str(size),
                "size_unit": "MM",
            },
        )
    else:
        layer = ET.SubElement(
            symbol, "layer", attrib={"class": "SimpleFill", "enabled": "1", "pass": "0", "locked": "0"}
        )
        _options(
            layer,
            {
                "style": "no",
                "color": _rgba(color, 0),
                "outline_color": _rgba(color),
                "outline_style": "solid",
                "outline_width": "0.4",
                "outline_width_unit": "MM",
            },
        )
    return symbol


def _vector_renderer(layer: Layer) -> ET.Element:
    if layer.kind == "categorized":
        renderer = ET.Element(
            "renderer-v2",
            type="categorizedSymbol",
            attr=layer.field_name,
            symbollevels="0",
            enableorderby="0",
            forceraster="0",
        )
        categories = ET.SubElement(renderer, "categories")
        symbols = ET.SubElement(renderer, "symbols")
        for k, info in enumerate(layer.classes):
            ET.SubElement(categories, "category", value=info.name, symbol=str(k), label=info.name, render="true")
            symbols.append(_symbol(str(k), "marker", info.color))
        return renderer
    renderer = ET.Element("renderer-v2", type="singleSymbol", symbollevels="0", enableorderby="0", forceraster="0")
    symbols = ET.SubElement(renderer, "symbols")
    if layer.kind == "marker":
        symbols.append(_symbol("0", "marker", layer.color, shape="star", size=4.0))
    else:
        symbols.append(_symbol("0", "fill", layer.color))
    return renderer
