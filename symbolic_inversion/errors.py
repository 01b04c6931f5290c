"""The one exception type users see.

Everything that reads user input (trace files, command-line options, arrays passed to
the Python API) validates it at the boundary and raises :class:`InputError` with a
message that names the offending field.  Deeper code asserts invariants instead.
"""

__all__ = ["InputError", "NotSupportedError"]


class InputError(ValueError):
    """Bad input: wrong shapes, non-finite numbers, malformed files, bad options.

    Examples
    ========

    >>> from symbolic_inversion import Network, InputError
    >>> try:
    ...     Network([2, 0, 1])
    ... except InputError as error:
    ...     print(error)
    network.layers: every width must be a positive integer, got [2, 0, 1]
    """


class NotSupportedError(InputError):
    """A well-formed request that this version of the toolkit cannot serve."""
