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
           "open_regular", "array_size"]


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


def _structure(text):
    """``(data, codes, outside, depth)`` of JSON text: its UTF-8 bytes, the same as an
    array, whether each byte lies outside every string, and the nesting of ``[``/``{``
    after it; ``None`` for text whose quotes do not pair (the parser then says where).

    Linear time and no recursion; about six bytes of memory per byte of text (the
    parsed objects of a trace take some twenty-five).  A quote counts unless an odd run
    of backslashes precedes it: exact on every prefix of valid JSON, which is all that
    the parser reads before it stops.  Depths are counted in 16 bits, and again in 64
    when a count reached a 16-bit bound (it could have wrapped there).
    """
    data = text.encode("utf-8", "replace")
    codes = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(codes == ord('"'))
    backslash = codes == ord("\\")
    if quotes.size and backslash[quotes[quotes > 0] - 1].any():
        last_plain = np.maximum.accumulate(
            np.where(backslash, -1, np.arange(codes.size, dtype=np.int64)))
        before = quotes - 1
        run = np.where(before >= 0, before - last_plain[np.maximum(before, 0)], 0)
        quotes = quotes[run % 2 == 0]
    del backslash
    if quotes.size % 2:
        return None
    toggles = np.zeros(codes.size + 1, dtype=np.int8)
    toggles[quotes[0::2]] = 1
    toggles[quotes[1::2] + 1] -= 1
    outside = np.cumsum(toggles[:-1], dtype=np.int8) == 0
    del toggles
    outside[quotes[1::2]] = False  # a closing quote belongs to its string
    step = (((codes == ord("[")) | (codes == ord("{"))) & outside).astype(np.int8)
    step -= (((codes == ord("]")) | (codes == ord("}"))) & outside).astype(np.int8)
    depth = np.cumsum(step, dtype=np.int16)
    bounds = np.iinfo(np.int16)
    if depth.size and (depth.max() == bounds.max or depth.min() == bounds.min):
        depth = np.cumsum(step, dtype=np.int64)   # nested 32767 deep: a hostile file
    return data, codes, outside, depth


def _depth(text):
    """The deepest nesting of ``[``/``{`` outside strings (linear time, no recursion)."""
    structure = _structure(text)
    if structure is None:
        return 0
    return int(structure[3].max(initial=0))


def array_size(text, key):
    """``(vectors, values)`` of the array of arrays under the top-level ``key`` of JSON
    text, counted without parsing (values: the commas between them plus one per
    vector, an upper bound), or ``None`` when the text has no such array in plain sight
    (the parsed data are checked then).  For refusing a trace of a million steps before
    a million Python objects exist.

    >>> array_size('{"note": "a, b", "parameters": [["1", "2"], [3, 4], [5, 6]]}',
    ...            "parameters")
    (3, 6)
    """
    structure = _structure(text)
    if structure is None:
        return None
    data, codes, outside, depth = structure
    name = json.dumps(key).encode()
    at = data.find(name)
    while at >= 0:
        # the key itself: an opening quote at the top level (depth 1, outside strings
        # just before it), then a colon and the array
        if (at == 0 or outside[at - 1]) and depth[at] == 1:
            match = re.compile(rb"\s*:\s*\[").match(data, at + len(name))
            if match:
                start = match.end() - 1
                closing = np.flatnonzero(depth[start:] < 2)
                end = start + (int(closing[0]) if closing.size else depth.size - start)
                inner = depth[start:end] == 3
                region = codes[start:end]
                plain = outside[start:end]
                vectors = int(np.count_nonzero((region == ord("[")) & plain & inner))
                commas = int(np.count_nonzero((region == ord(",")) & plain & inner))
                return vectors, vectors + commas
        at = data.find(name, at + 1)
    return None


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
