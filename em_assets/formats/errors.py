"""The error every format reader raises for a file it cannot parse."""


class CorruptFileError(ValueError):
    """A stored file cannot be parsed as the format it claims to be."""
