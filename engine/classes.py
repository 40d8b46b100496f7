"""Class lists: names with colours, parsed from 'background,car:#ff0000,road' and matched against point values."""

from dataclasses import dataclass

from engine.errors import InputError

# Colour-blind-friendly defaults, in order; background first.
PALETTE = ["#b0b0b0", "#e31a1c", "#505050", "#ff7f00", "#33a02c", "#1f78b4", "#6a3d9a", "#b15928", "#fb9a99", "#a6cee3"]
NAMED_COLORS = {
    "background": "#b0b0b0",
    "car": "#e31a1c",
    "road": "#505050",
    "building": "#ff7f00",
    "permeable_area": "#33a02c",
    "tree": "#1b7837",
    "water": "#1f78b4",
}


@dataclass(frozen=True)
class ClassInfo:
    name: str
    color: str

    def to_dict(self) -> dict:
        return {"name": self.name, "color": self.color}


def parse_classes(text: str | list) -> list[ClassInfo]:
    """'background,car:#ff0000' (or a list of names or {name, color} objects) to ClassInfo, in index order."""
    items = text if isinstance(text, list) else [t for t in str(text).split(",")]
    classes = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            name, color = str(item.get("name", "")).strip(), item.get("color")
        else:
            name, _, color = str(item).strip().partition(":")
        if not name:
            raise InputError(
                f"--classes: class {i} has an empty name; give names such as background,car,road", "classes"
            )
        classes.append(ClassInfo(name, _color(color, name, i)))
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise InputError(f"--classes: class names repeat ({','.join(names)}); give each class once", "classes")
    if len(classes) < 2:
        raise InputError("--classes: give at least two classes, such as background,road", "classes")
    if len(classes) > 254:
        raise InputError("--classes: at most 254 classes are supported", "classes")
    return classes


def _color(color: str | None, name: str, index: int) -> str:
    if not color:
        return NAMED_COLORS.get(name.lower(), PALETTE[index % len(PALETTE)])
    color = color.strip()
    if len(color) != 7 or color[0] != "#" or any(ch not in "0123456789abcdefABCDEF" for ch in color[1:]):
        raise InputError(f"--classes: colour {color!r} of class {name} is not of the form #rrggbb", "classes")
    return color.lower()


def class_index(value, classes: list[ClassInfo], field: str = "class") -> int:
    """A point's class value (name, index or index as text) to the class index; unknown values are errors."""
    names = [c.name for c in classes]
    if isinstance(value, str):
        text = value.strip()
        if text in names:
            return names.index(text)
        if text.lstrip("-").isdigit():
            value = int(text)
        else:
            raise InputError(f"--class-field: class {value!r} of field {field} is not one of {','.join(names)}", field)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 <= value < len(classes):
        return value
    raise InputError(
        f"--class-field: class {value!r} in field {field} is not an index 0..{len(classes) - 1} "
        f"or a name in {','.join(names)}",
        field,
    )
