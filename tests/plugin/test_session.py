from sparse_al_plugin.classes import ClassSpec, add_class
from sparse_al_plugin.session import (
    IterationRecord,
    LoopOptions,
    PredictionFiles,
    Session,
    SessionState,
    latest,
    map_shares,
    points_summary,
    share_jumps,
    shares_summary,
    upsert,
    with_prediction,
)


def test_state_round_trip(tmp_path):
    session = Session(tmp_path / "s")
    state = SessionState(add_class(SessionState().classes, "car"), ("/a.tif",), "/ref.tif", 2,
                         LoopOptions("margin", 7, "visible"))  # fmt: skip
    session.save_state(state)
    assert Session(tmp_path / "s").load_state() == state
    assert Session(tmp_path / "other").load_state() == SessionState()


def test_history_round_trip_and_upsert(tmp_path):
    session = Session(tmp_path)
    one = IterationRecord(1, "/m1", loss=0.5, points_per_class={"background": 3})
    two = IterationRecord(2, "/m2", metrics={"miou": 0.4})
    records = upsert(upsert([], two), one)
    assert [r.number for r in records] == [1, 2]
    files = PredictionFiles("/a.tif", "/p.tif", "/u.tif")
    records = upsert(records, with_prediction(one, [files]))
    session.save_history(records)
    loaded = session.load_history()
    assert loaded == records and loaded[0].predictions == (files,)
    assert latest(loaded).number == 2
    newer = with_prediction(loaded[0], [PredictionFiles("/a.tif", "/p2.tif", "/u2.tif")])
    assert [p.prediction for p in newer.predictions] == ["/p2.tif"]


def test_run_dirs_never_collide(tmp_path):
    session = Session(tmp_path)
    first, second = session.run_dir(1, "predict"), session.run_dir(1, "predict")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.parent == session.iteration_dir(1) == tmp_path / "iterations" / "001"


def test_points_summary_follows_class_order():
    classes = add_class(SessionState().classes, "car")
    assert points_summary({"car": 2, "background": 5, "class_1": 0}, classes) == "background 5 · car 2"


def test_map_shares_add_up_the_rasters_and_follow_class_order():
    shares = map_shares([{"road": 30, "background": 70}, {"road": 10, "background": 90}, None])
    assert shares == {"road": 0.2, "background": 0.8}
    assert map_shares([None, {}]) is None and map_shares([{"road": 0}]) is None
    classes = (ClassSpec("background", "#000000"), ClassSpec("road", "#ffffff"))
    assert shares_summary(shares, classes) == "background 80.0% · road 20.0%"


def test_share_jumps_name_a_class_that_suddenly_covers_far_more_or_less_of_the_map():
    before = {"background": 0.93, "road": 0.07}
    [note] = share_jumps(before, {"background": 0.774, "road": 0.226})  # massachusetts_roads' collapse of session 8
    assert note.startswith("road now covers 22.6% of the map against 7.0% before") and "lower its weight" in note
    [note] = share_jumps({"a": 0.5, "b": 0.5}, {"a": 0.8, "b": 0.2})
    assert note.startswith("b now covers 20.0%") and "raise its weight" in note
    assert share_jumps(before, {"background": 0.9, "road": 0.1}) == []  # a small move
    assert share_jumps({"a": 0.01, "b": 0.99}, {"a": 0.04, "b": 0.96}) == []  # 4 times, but 3 points
    assert share_jumps(None, before) == [] == share_jumps(before, None)
    assert share_jumps({"a": 1.0}, {"a": 0.5, "new": 0.5}) == []  # halved: not more than twice
    assert share_jumps({"a": 1.0}, {"a": 0.4, "new": 0.6}) == ["a now covers 40.0% of the map against 100.0% before: "
                                                               "if that is too little, raise its weight in the class "
                                                               "table or click where it is missed (or type the share "
                                                               "you expect, such as 7%, as its weight)"]  # fmt: skip
