"""Errors that mean "the user named something that is not there", reported by the tools in one line."""

__all__ = ['InputNotFoundError']


class InputNotFoundError(FileNotFoundError):
    """A config, checkpoint, data root or look-up table that the user (or the config) named does not
    exist. The tools print its message alone; any other ``FileNotFoundError`` keeps its traceback,
    since it comes from deeper code and its origin matters."""
