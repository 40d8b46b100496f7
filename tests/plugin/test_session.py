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
