"""The class list of a session: names with colours and map weights or shares, as immutable tuples (no Qt or QGIS)."""

import math
from dataclasses import dataclass, replace

# The engine's defaults (engine/classes.py), repeated here because the plugin never imports the engine.
PALETTE = ("#b0b0b0", "#e31a1c", "#505050", "#ff7f00", "#33a02c", "#1f78b4", "#6a3d9a", "#b15928", "#fb9a99", "#a6cee3")
NAMED_COLORS = {"background": "#b0b0b0", "car": "#e31a1c", "road": "#505050", "building": "#ff7f00",
                "permeable_area": "#33a02c", "tree": "#1b7837", "water": "#1f78b4"}  # fmt: skip
MAX_CLASSES = 254
WEIGHT_LIMITS = (0.01, 100.0)  # the engine's --class-weight range (engine/class_weights.py)
# --class-share (engine/class_shares.py): a percentage above 0 and below 100, the shares adding up to at most 100


class ClassListError(ValueError):
    """An edit that would make the class list invalid; the message says what to change."""


@dataclass(frozen=True)
class ClassSpec:
    name: str
    color: str  # "#rrggbb"
    weight: float = 1.0  # multiplies the class's probabilities at prediction (the engine's --class-weight)
    share: float | None = None  # or: the percentage of the map the class should cover (the engine's --class-share)

    def to_dict(self) -> dict:
        out = {"name": self.name, "color": self.color}
        if self.share is not None:
            return out | {"share": self.share}
        return out | ({"weight": self.weight} if self.weight != 1.0 else {})

    def map_setting(self) -> str:
        """The weight, or the share as "7%": how the class table shows them, and what reweight_class reads."""
        return f"{self.share:g}%" if self.share is not None else f"{self.weight:g}"


Classes = tuple[ClassSpec, ...]
DEFAULT_CLASSES: Classes = (ClassSpec("background", PALETTE[0]), ClassSpec("class_1", PALETTE[1]))


def default_color(name: str, index: int, used: set[str] = frozenset()) -> str:
    """The engine's colour for a known name, else the first palette colour not in use."""
    if name.lower() in NAMED_COLORS:
        return NAMED_COLORS[name.lower()]
    for k in range(len(PALETTE)):
        color = PALETTE[(index + k) % len(PALETTE)]
        if color not in used:
            return color
    return PALETTE[index % len(PALETTE)]


def check_color(color: str) -> str:
    color = color.strip().lower()
    if len(color) != 7 or color[0] != "#" or any(ch not in "0123456789abcdef" for ch in color[1:]):
        raise ClassListError(f"colour {color!r} is not of the form #rrggbb")
    return color


def check_name(name: str, classes: Classes, ignore_index: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ClassListError("a class needs a name")
    if any(c.name == name for i, c in enumerate(classes) if i != ignore_index):
        raise ClassListError(f"there is already a class named {name!r}; choose another name")
    return name


def add_class(classes: Classes, name: str | None = None, color: str | None = None) -> Classes:
    if len(classes) >= MAX_CLASSES:
        raise ClassListError(f"at most {MAX_CLASSES} classes are supported")
    if name is None:
        n = len(classes)
        while any(c.name == f"class_{n}" for c in classes):
            n += 1
        name = f"class_{n}"
    name = check_name(name, classes)
    color = check_color(color) if color else default_color(name, len(classes), {c.color for c in classes})
    return (*classes, ClassSpec(name, color))


def check_weight(value) -> float:
    """A map weight from a number or its text ("2", "0,5", "x2"); a ClassListError says the range otherwise."""
    low, high = WEIGHT_LIMITS
    weight = _number(str(value).strip().lstrip("x×"))
    if not low <= weight <= high:  # NaN fails too
        raise ClassListError(f"a class weight is a number from {low:g} to {high:g} (1: as the model predicts), or a "
                             f"share of the map such as 7%, not {value!r}")  # fmt: skip
    return weight


def check_share(value) -> float:
    """A share of the map in percent from its text ("7%", "2,5 %"); a ClassListError says the range otherwise."""
    share = _number(str(value).strip().rstrip("%"))
    if not 0 < share < 100:  # NaN fails too
        raise ClassListError(f"a class's share of the map is a percentage above 0 and below 100, not {value!r}")
    return share


def _number(text: str) -> float:
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        return math.nan


def rename_class(classes: Classes, index: int, name: str) -> Classes:
    _check_index(classes, index)
    name = check_name(name, classes, ignore_index=index)
    return _replace(classes, index, replace(classes[index], name=name))


def recolor_class(classes: Classes, index: int, color: str) -> Classes:
    _check_index(classes, index)
    return _replace(classes, index, replace(classes[index], color=check_color(color)))


def reweight_class(classes: Classes, index: int, value) -> Classes:
    """Set a class's map weight ("1.5"), or its share of the map ("7%": the engine fits the weight)."""
    _check_index(classes, index)
    if not str(value).strip().endswith("%"):
        return _replace(classes, index, replace(classes[index], weight=check_weight(value), share=None))
    share = check_share(value)
    others = sum(c.share for i, c in enumerate(classes) if i != index and c.share is not None)
    if others + share > 100:
        raise ClassListError(f"the classes' shares would add up to {others + share:g}%, more than the whole map; "
                             "lower one")  # fmt: skip
    return _replace(classes, index, replace(classes[index], weight=1.0, share=share))


def remove_class(classes: Classes, index: int) -> Classes:
    if len(classes) <= 2:
        raise ClassListError("a session needs at least two classes (for example background and one object class)")
    _check_index(classes, index)
    return classes[:index] + classes[index + 1 :]


def classes_from_json(items: list) -> Classes:
    """[{"name": .., "color": .., "weight": ..}] (as in session.json or a model's config.json, where the weight is
    optional) to a validated tuple."""
    result: Classes = ()
    for item in items:
        result = add_class(result, str(item["name"]), item.get("color"))
        if item.get("share") is not None:
            result = reweight_class(result, len(result) - 1, f"{item['share']}%")
        elif item.get("weight", 1.0) != 1.0:
            result = reweight_class(result, len(result) - 1, item["weight"])
    if len(result) < 2:
        raise ClassListError("a session needs at least two classes")
    return result


def classes_to_json(classes: Classes) -> list[dict]:
    return [c.to_dict() for c in classes]


def class_weights(classes: Classes, known: list[str] | None = None) -> list[str]:
    """The engine's --class-weight values ("name=weight") of the classes weighted away from 1. With ``known`` (the
    model's class names): a model with as many classes as the session gets the weights by position, as its map gets
    the session's colours (a class renamed since the model was trained keeps its weight); another model only those of
    the classes it has by name."""
    return _engine_values(classes, known, lambda c: f"{c.weight:g}" if c.share is None and c.weight != 1.0 else None)


def class_shares(classes: Classes, known: list[str] | None = None) -> list[str]:
    """The engine's --class-share values ("name=percent") of the classes given a share, as class_weights."""
    return _engine_values(classes, known, lambda c: f"{c.share:g}" if c.share is not None else None)


def _engine_values(classes: Classes, known: list[str] | None, value_of) -> list[str]:
    if known is not None and len(known) == len(classes):
        pairs = zip(known, classes, strict=True)
    else:
        pairs = ((c.name, c) for c in classes if known is None or c.name in known)
    return [f"{name}={value}" for name, c in pairs if (value := value_of(c)) is not None]


def _replace(classes: Classes, index: int, spec: ClassSpec) -> Classes:
    _check_index(classes, index)
    return (*classes[:index], spec, *classes[index + 1 :])


def _check_index(classes: Classes, index: int) -> None:
    if not 0 <= index < len(classes):
        raise ClassListError(f"there is no class number {index + 1}")
