"""The event stream: progress of a command in stages fills one bar."""

import io
import json
from pathlib import Path

from engine.events import Events, plain


def _fractions(stream: io.StringIO) -> list[float]:
    return [json.loads(line)["fraction"] for line in stream.getvalue().splitlines()]


def test_a_span_maps_progress_into_its_part_of_the_bar():
    stream = io.StringIO()
    events = Events("json", stream)
    first, rest = events.span(0.0, 0.25), events.span(0.25, 1.0)
    first.progress("class shares", 1, 2)
    first.progress("class shares", 2, 2)
    rest.progress("predict", 0, 4)
    rest.progress("predict", 2, 4, fraction=0.5)
    rest.span(0.5, 1.0).progress("overviews", 1, 1)  # spans nest
    events.progress("done", 3, 3)
    assert _fractions(stream) == [0.125, 0.25, 0.25, 0.625, 1.0, 1.0]


def test_plain_turns_options_into_json_types_inside_dicts_and_sequences():
    value = {"out": Path("/tmp/run"), "channels": (128, 64), "nested": {"views": [Path("a"), 1.5, None, True]}}

    assert plain(value) == {"out": "/tmp/run", "channels": [128, 64], "nested": {"views": ["a", 1.5, None, True]}}
    assert json.loads(json.dumps(plain(value))) == plain(value)
