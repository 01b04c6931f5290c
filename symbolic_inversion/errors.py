"""The one exception type users see.

Everything that reads user input (trace files, command-line options, arrays passed to
the Python API) validates it at the boundary and raises :class:`InputError` with a
message that names the offending field.  Deeper code asserts invariants instead.
"""

__all__ = ["InputError", "NotSupportedError", "boundary"]


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


def boundary(name):
    """Decorator of a user-facing function: any exception that bad input can provoke
    below it (a wrong Python type, a number too long for Python's integer conversion, a
    structure nested past the interpreter's stack, memory exhausted) leaves as one
    :class:`InputError` line that names ``name``; :class:`InputError` passes unchanged.

    >>> @boundary("double")
    ... def double(x):
    ...     return x * 2 + 0
    >>> try:
    ...     double(None)
    ... except InputError as error:
    ...     print(error)
    double: unsupported operand type(s) for *: 'NoneType' and 'int'
    """
    import functools

    def decorate(function):
        @functools.wraps(function)
        def guarded(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except InputError:
                raise
            except (TypeError, AttributeError) as error:  # an argument of the wrong type
                raise InputError(f"{name}: {_one_line(error)}") from None
            except RecursionError:
                raise InputError(f"{name}: input nested or sized past Python's recursion "
                                 f"limit (see the limits in symbolic_inversion.limits)") \
                    from None
            except MemoryError:
                raise InputError(f"{name}: out of memory: the input is too large (see the "
                                 f"limits in symbolic_inversion.limits)") from None
            except ValueError as error:
                if "integer string conversion" in str(error):
                    raise InputError(f"{name}: a number has more digits than Python converts "
                                     f"(the limit max_number_digits guards files)") from None
                raise
        return guarded
    return decorate


def _one_line(error):
    text = " ".join(str(error).split())
    return text if len(text) <= 200 else text[:197] + "..."
