"""What goes wrong that the user can fix: one error type, rendered alike by the CLI, serve and MCP.

A :class:`UserError` carries what is wrong (``message``) and what to do about it (``fix``), and
a :class:`Problem` saying which kind of problem it is, which each interface maps to its own
terms (the CLI's exit status, an HTTP status, an MCP tool error). Anything else that escapes
the library is a bug and is reported as one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Problem(StrEnum):
    """Which kind of problem a :class:`UserError` is; serve answers 400, 404, 503 and 503."""

    INPUT = "input"  # the request or the command line asks for something that cannot be done
    NOT_FOUND = "not found"  # it names something that is not there (a paper id to cite)
    UNAVAILABLE = "unavailable"  # the index or the model cannot serve as they are
    BUSY = "busy"  # someone else holds what is needed: try again shortly


class UserError(Exception):
    """A problem the user can fix: ``message`` (what is wrong) and ``fix`` (what to do)."""

    problem: ClassVar[Problem] = Problem.INPUT

    def __init__(self, message: str, fix: str = ""):
        self.message = " ".join(message.split())  # one line, whatever it quotes
        self.fix = " ".join(fix.split())
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.message}: {self.fix}" if self.fix else self.message


class QueryError(UserError):
    """A query that cannot be run as given: empty, too long, a bad k, mode or paper id."""


class NotFoundError(UserError):
    """A paper (or other thing) that is asked for by name and does not exist."""

    problem = Problem.NOT_FOUND


class UnavailableError(UserError):
    """The index or the model cannot be used as they are (missing, damaged, another model)."""

    problem = Problem.UNAVAILABLE


class BusyError(UserError):
    """Another process or too many requests hold what this one needs: try again shortly."""

    problem = Problem.BUSY


class SettingsError(UserError):
    """A setting outside its bounds, or an environment variable that cannot be read."""


class ReadOnlyHomeError(UserError):
    """A command that writes was given a data home it cannot write to."""


def first_line(error: BaseException) -> str:
    """An exception as one line: a UserError's own text, else the first line of any other."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
