"""`python -m engine suggest`: placeholder until its issue lands."""

from engine.errors import InputError


def add_arguments(parser) -> None:
    pass


def run(args, events) -> None:
    raise InputError("suggest is not available in this version of the engine")
