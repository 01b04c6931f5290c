"""Reading and writing user files: bounded, non-blocking, data only.

Every file the toolkit reads (trace, CSV samples, oracle file, ``recover --json``
output) goes through :func:`read_text`: only a regular file is opened (a FIFO, a device
such as ``/dev/zero`` or a directory is refused before it is opened, so nothing blocks
or fills memory), at most :attr:`Limits.max_file_bytes
<symbolic_inversion.limits.Limits.max_file_bytes>` bytes, strict UTF-8.  JSON goes
through :func:`loads`: nesting depth bounded, duplicate keys refused (JSON leaves their
meaning open; Python would silently keep the last), integers and decimals no longer than
the digit limit, no ``NaN``/``Infinity``.  Writes (:func:`write_text`) that fail say
which path and why.

>>> loads('{"a": [1, "2"], "b": 0.5}', "trace")
{'a': [1, '2'], 'b': Decimal('0.5')}
>>> loads('{"a": 1, "a": 2}', "trace")
Traceback (most recent call last):
...
symbolic_inversion.errors.InputError: trace: duplicate key 'a' in one JSON object
"""

import json
import os
import re
import stat
from decimal import Decimal

import numpy as np

from .errors import InputError
from .limits import check, current

__all__ = ["read_text", "loads", "read_json", "write_text", "check_path", "check_output",
           "open_regular"]


def check_path(path, field):
    """``path`` as a string; anything but a ``str`` or ``os.PathLike`` is refused."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise InputError(f"{field}: expected a file path, got {type(path).__name__}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        raise InputError(f"{field}: expected a file path as text, got bytes")
    if not path or "\x00" in path:
        raise InputError(f"{field}: not a file path: {path!r}")
    return path


def _kind(mode):
    """What a file that is not a regular one is, in words."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def check_output(path, field, what="an output"):
    """``path`` as a file to write and read back: a regular file, or nothing yet.

    Anything else is refused before it is opened: reading a device such as
    ``/dev/zero`` never ends, a FIFO blocks its reader or writer until the other side
    comes, and ``/dev/null`` loses what is written (a study's cells; ``os.fsync`` even
    fails on it).

    >>> check_output("no-such-file.jsonl", "output")
    'no-such-file.jsonl'
    >>> check_output("/", "output", "a study's output")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: output: cannot use /: a directory (a study's output must be a regular file or not exist yet)
    """
    path = check_path(path, field)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return path
    except OSError as error:
        raise InputError(f"{field}: cannot use {path}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{field}: cannot use {path}: {_kind(info.st_mode)} ({what} must "
                         f"be a regular file or not exist yet)")
    return path


def open_regular(path, flags, field, what="an output"):
    """A file descriptor of the regular file ``path`` opened with ``flags``, never
    blocking on a FIFO that replaced it since it was checked (``O_NONBLOCK``, then
    ``fstat``); the caller closes it."""
    try:
        descriptor = os.open(path, flags | getattr(os, "O_NONBLOCK", 0), 0o666)
    except OSError as error:
        raise InputError(f"{field}: cannot use {path}: {error.strerror}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise InputError(f"{field}: cannot use {path}: {_kind(mode)} ({what} must be a "
                         f"regular file or not exist yet)")
    if hasattr(os, "set_blocking"):
        os.set_blocking(descriptor, True)  # (a regular file never blocks anyway)
    return descriptor


def read_text(path, field):
    """The text of a regular file, at most ``max_file_bytes``, strict UTF-8."""
    path = check_path(path, field)
    try:
        info = os.stat(path)
    except OSError as error:
        raise InputError(f"{field}: cannot read {path}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else \
            "a FIFO" if stat.S_ISFIFO(info.st_mode) else "not a regular file"
        raise InputError(f"{field}: cannot read {path}: {kind} (only regular files are read)")
    limit = current().max_file_bytes
    check("max_file_bytes", info.st_size, f"{field}: size of {path} in bytes", None)
    try:
        # O_NONBLOCK: should the path have been swapped for a FIFO since the stat, the
        # open does not wait for a writer
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise InputError(f"{field}: cannot read {path}: not a regular file")
            data = handle.read(limit + 1)
    except OSError as error:
        raise InputError(f"{field}: cannot read {path}: {error.strerror}") from None
    check("max_file_bytes", len(data), f"{field}: size of {path} in bytes", None)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{field}: {path} is not UTF-8 text (byte {error.start}: "
                         f"{error.reason})") from None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _depth(text):
    """The deepest nesting of ``[``/``{`` outside strings (linear time, no recursion)."""
    bare = _STRING.sub("", text).encode("utf-8", "replace")
    codes = np.frombuffer(bare, dtype=np.uint8)
    if not codes.size:
        return 0
    step = np.isin(codes, (ord("["), ord("{"))).astype(np.int64) - \
        np.isin(codes, (ord("]"), ord("}"))).astype(np.int64)
    return int(np.cumsum(step).max(initial=0))


def loads(text, field, parse_float=Decimal):
    """JSON text as Python data (decimals as :class:`Decimal` by default), bounded."""
    if not isinstance(text, str):
        raise InputError(f"{field}: expected JSON text, got {type(text).__name__}")
    limits = current()
    depth = _depth(text)
    if depth > limits.max_json_depth:
        check("max_json_depth", depth, f"{field}: JSON nesting depth")
    digits = limits.max_number_digits

    def number(kind, convert):
        def parse(token):
            if len(token) > digits + 8:  # sign, point and exponent besides the digits
                raise InputError(f"{field}: a JSON {kind} of {len(token)} characters exceeds "
                                 f"the limit max_number_digits = {digits} (raise it with "
                                 f"SYMBOLIC_INVERSION_MAX_NUMBER_DIGITS=N)")
            return convert(token)
        return parse

    def refuse_constant(name):
        raise InputError(f"{field}: {name} is not a finite number")

    def unique(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                shown = key if len(key) < 40 else key[:37] + "..."
                raise InputError(f"{field}: duplicate key {shown!r} in one JSON object")
            seen[key] = value
        return seen
    try:
        return json.loads(text, parse_float=number("number", parse_float),
                          parse_int=number("integer", int), parse_constant=refuse_constant,
                          object_pairs_hook=unique)
    except json.JSONDecodeError as error:
        raise InputError(f"{field}: not valid JSON ({error.msg}, line {error.lineno} "
                         f"column {error.colno})") from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise InputError(f"{field}: JSON nested too deeply") from None


def read_json(path, field, parse_float=Decimal):
    """:func:`loads` of :func:`read_text`."""
    return loads(read_text(path, field), field, parse_float)


def write_text(path, text, field="-o"):
    """Write ``text`` to ``path``; a failure (a directory, a missing folder, a full disk,
    no permission) is an :class:`InputError` naming the path and the reason."""
    path = check_path(path, field)
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        reason = error.strerror or str(error)
        raise InputError(f"{field}: cannot write {path}: {reason}") from None
