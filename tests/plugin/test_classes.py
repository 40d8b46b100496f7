import pytest

from sparse_al_plugin.classes import (
    DEFAULT_CLASSES,
    ClassListError,
    ClassSpec,
    add_class,
    class_shares,
    class_weights,
    classes_from_json,
    classes_to_json,
    recolor_class,
    remove_class,
    rename_class,
    reweight_class,
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


def test_a_weight_travels_with_its_class_through_edits_and_json():
    classes = reweight_class(add_class(DEFAULT_CLASSES, "car"), 2, "x1.5")
    assert classes[2].weight == 1.5 and classes[0].weight == 1.0
    renamed = recolor_class(rename_class(classes, 2, "vehicle"), 2, "#00ff00")
    assert renamed[2] == ClassSpec("vehicle", "#00ff00", 1.5)
    assert classes_to_json(classes)[2] == {"name": "car", "color": classes[2].color, "weight": 1.5}
    assert "weight" not in classes_to_json(classes)[0]  # the session file stays as it was for unweighted classes
    assert classes_from_json(classes_to_json(classes)) == classes
    assert remove_class(classes, 1)[1].weight == 1.5
    assert reweight_class(classes, 0, "0,5")[0].weight == 0.5  # a decimal comma, as a German locale types it


@pytest.mark.parametrize("text", ["0", "-2", "abc", "", "nan", "1000"])
def test_a_bad_weight_says_the_range(text):
    with pytest.raises(ClassListError, match="from 0.01 to 100"):
        reweight_class(DEFAULT_CLASSES, 1, text)
    with pytest.raises(ClassListError, match="from 0.01 to 100"):
        classes_from_json([{"name": "a"}, {"name": "b", "weight": text}])


def test_a_share_replaces_the_weight_and_travels_with_its_class():
    classes = reweight_class(add_class(DEFAULT_CLASSES, "road"), 2, "2")
    shared = reweight_class(classes, 2, "7,5 %")
    assert shared[2].share == 7.5 and shared[2].weight == 1.0 and shared[2].map_setting() == "7.5%"
    assert classes_to_json(shared)[2] == {"name": "road", "color": classes[2].color, "share": 7.5}
    assert classes_from_json(classes_to_json(shared)) == shared
    assert rename_class(shared, 2, "street")[2].share == 7.5
    back = reweight_class(shared, 2, "1.5")  # a weight replaces the share
    assert back[2].share is None and back[2].weight == 1.5 and back[2].map_setting() == "1.5"


@pytest.mark.parametrize("text", ["0%", "100%", "-5%", "few%", "%"])
def test_a_bad_share_says_the_range(text):
    with pytest.raises(ClassListError, match="above 0 and below 100"):
        reweight_class(DEFAULT_CLASSES, 1, text)


def test_shares_may_not_add_up_to_more_than_the_map():
    classes = reweight_class(add_class(DEFAULT_CLASSES, "road"), 2, "60%")
    with pytest.raises(ClassListError, match="add up to 110%"):
        reweight_class(classes, 0, "50%")
    assert reweight_class(reweight_class(classes, 2, "30%"), 0, "50%")[0].share == 50  # its own old share not counted


def test_class_shares_are_the_engine_values_of_the_classes_given_one():
    classes = reweight_class(reweight_class(add_class(DEFAULT_CLASSES, "road"), 2, "7%"), 0, "0.5")
    assert class_shares(classes) == ["road=7"] and class_weights(classes) == ["background=0.5"]
    assert class_shares(classes, ["ground", "x", "street"]) == ["street=7"]  # by position, as the weights
    assert class_shares(classes, ["background", "class_1"]) == []  # a model without road


def test_class_weights_are_the_engine_values_of_the_weighted_classes_the_model_knows():
    classes = reweight_class(reweight_class(add_class(DEFAULT_CLASSES, "car"), 2, 2), 0, 0.25)
    assert class_weights(classes) == ["background=0.25", "car=2"]
    assert class_weights(classes, ["background", "class_1"]) == ["background=0.25"]  # a model without car
    assert class_weights(classes, ["ground", "x", "vehicle"]) == ["ground=0.25", "vehicle=2"]  # by position
    assert class_weights(DEFAULT_CLASSES) == []
