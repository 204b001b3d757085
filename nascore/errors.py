"""User-facing errors.

Every problem caused by what a user typed or supplied (a name, a file, a value) raises
:class:`UserError` with a one-line message that names the offending value. The command-line
entry points print that line and exit with status 2; nothing is written or overwritten.
Operating-system errors (a read-only or full disk, an ``--output`` that is a file) are not
``UserError``: the entry points print them in one line too and exit with status 3
(:mod:`nascore.oserror`).
"""


class UserError(ValueError):
    """Bad input from the user: one line that names the file, field or value at fault.

    >>> raise UserError("unknown space 'nb999' (choose from: darts, nb101, nb201)")
    Traceback (most recent call last):
    ...
    nascore.errors.UserError: unknown space 'nb999' (choose from: darts, nb101, nb201)
    """


class DataMissingError(UserError):
    """A dataset or benchmark file is not where it was looked for; the message says how to get it."""


class NonFiniteError(UserError):
    """A NaN or infinite number was about to be written to a JSON file (:mod:`nascore.jsonsafe`);
    the message names the file and the place of the value."""
