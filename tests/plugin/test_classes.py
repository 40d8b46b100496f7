import pytest

from sparse_al_plugin.classes import (
    DEFAULT_CLASSES,
    ClassListError,
    ClassSpec,
    add_class,
    classes_from_json,
    classes_to_json,
    recolor_class,
    remove_class,
    rename_class,
)


def test_add_gives_a_fresh_name_and_an_unused_colour():
    classes = add_class(DEFAULT_CLASSES)
    assert classes[-1].name == "class_2"
    assert classes[-1].color not in {c.color for c in DEFAULT_CLASSES}
    assert add_class(classes, "road").__getitem__(-1) == ClassSpec("road", "#505050")  # the engine's colour for road


def test_rename_recolor_remove():
    classes = add_class(DEFAULT_CLASSES, "car", "#FF0000")
    assert classes[2] == ClassSpec("car", "#ff0000")
    classes = rename_class(classes, 1, "road")
    assert [c.name for c in classes] == ["background", "road", "car"]
    classes = recolor_class(classes, 0, "#123456")
    assert classes[0].color == "#123456"
    classes = remove_class(classes, 1)
    assert [c.name for c in classes] == ["background", "car"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: rename_class(c, 1, "background"), "already a class named"),
        (lambda c: rename_class(c, 1, "  "), "needs a name"),
        (lambda c: recolor_class(c, 0, "red"), "#rrggbb"),
        (lambda c: remove_class(c, 0), "at least two classes"),
        (lambda c: rename_class(c, 5, "x"), "no class number 6"),
    ],
)
def test_bad_edits_say_what_to_change(edit, message):
    with pytest.raises(ClassListError, match=message):
        edit(DEFAULT_CLASSES)


def test_json_round_trip_and_model_config_classes():
    classes = add_class(DEFAULT_CLASSES, "car")
    assert classes_from_json(classes_to_json(classes)) == classes
    assert classes_from_json([{"name": "a"}, {"name": "b", "color": "#00ff00"}])[1].color == "#00ff00"
    with pytest.raises(ClassListError):
        classes_from_json([{"name": "only"}])
