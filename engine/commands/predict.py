"""`python -m engine predict`: placeholder until its issue lands."""

from engine.errors import InputError


def add_arguments(parser) -> None:
    pass


def run(args, events) -> None:
    raise InputError("predict is not available in this version of the engine")
