"""Domain exceptions. Each maps to an exit status and a one-line message for the user."""


class EngineError(Exception):
    """Base class. ``field`` names the option or file at fault, when there is one."""

    exit_code = 1
    code = "engine_error"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InputError(EngineError, ValueError):
    """Bad input from the user: a file, an option or a field. The message says what to do."""

    exit_code = 2
    code = "bad_input"


class InputFileError(InputError, OSError):
    """A missing or unreadable input file."""

    code = "bad_file"


class Cancelled(EngineError):
    """SIGTERM or SIGINT arrived; the command stopped at a safe point."""

    exit_code = 130
    code = "cancelled"

    def __init__(self, message: str = "cancelled by the user; earlier results are intact"):
        super().__init__(message)


class OutOfMemory(EngineError, MemoryError):
    exit_code = 3
    code = "out_of_memory"
