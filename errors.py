"""User-facing errors: one line, naming the problem, and the exit code the CLI uses."""

from __future__ import annotations


class PlacecellError(RuntimeError):
    """An expected failure the user can act on. The CLI prints `error: <message>` and exits.

    A RuntimeError so that the LangGraph server (Studio, the SDK) passes the message on: it hides
    the messages of exception classes it does not know ("An internal error occurred"), and these
    messages are written for the user."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(PlacecellError):
    """Bad user input: a file, a flag value, a malformed record."""

    exit_code = 2


class ModelError(PlacecellError):
    """A model that is missing, corrupt, unknown or fails to load."""

    exit_code = 3


class NoDataError(PlacecellError):
    """An operation that needs ingested data found none."""

    exit_code = 4
