"""Progress of long work: one event (a dict) per phase and per path, never on stdout.

``recover(trace, progress=...)`` and the command line's ``--progress`` accept:

* ``None`` or ``False``: silent (the default);
* ``True``: a bar (the ``progress`` extra, tqdm: text on stderr in a terminal, and in
  Jupyter a widget when ipywidgets is installed, the ``notebook`` extra; without tqdm,
  one plain line per event on stderr);
* a callable: called with one dict per event, e.g.
  ``{"phase": "path", "attempt": 2, "of": 6, "kind": "moments", "status": "converged",
  "elapsed": 1.2}``.

Phases of a recovery, in order: ``count`` (equations against unknowns), ``search`` (a
path starts), ``path`` (it ended), ``split`` (a path of the split endgame starts from a
stalled path's end), ``refine`` and ``judge`` (a candidate is polished and judged against
the whole trace), ``done`` (the final status).  Every event carries
``elapsed`` (seconds since the reporter was created).

What ``"of"`` means depends on what is counted.  A search stops at the first dataset
the judge accepts, so the ``"of"`` of its paths is a *budget*, the most paths it may
take (``attempts x rounds``, e.g. 48), not how many it will take (often 1 or 2).  A
study runs every cell, so the ``"of"`` of its cells is their *number*.  The bar is built
on that difference, so that its total never changes once drawn: paths are counted
against no total, with the budget in the text (``recover: 2 of at most 48 paths``); cells
fill a bar whose total is the number of cells.
"""

import sys
import time
import warnings

__all__ = ["Progress", "COUNTED"]

#: What a bar counts, per unit: the phase of the events it counts, and whether their
#: ``"of"`` is the exact number of such events (``"total"``) or only the most there may
#: be (``"budget"``, shown as text: a total that could shrink when the work stops early
#: is not a total).
COUNTED = {"paths": ("path", "budget"), "cells": ("cell", "total")}


def _bar_class(stream):
    """tqdm's bar class for ``stream``, or ``None`` without tqdm.

    On the default stream (stderr), ``tqdm.auto``: a widget in Jupyter (with ipywidgets),
    text in a terminal.  A stream the caller chose gets the text bar it asked for.
    """
    try:
        if stream is not None:
            from tqdm.std import tqdm
            return tqdm
        with warnings.catch_warnings():
            # in Jupyter without ipywidgets tqdm.auto falls back to text with a warning
            # ("IProgress not found"); the text bar on stderr is what we want there
            warnings.filterwarnings("ignore", message=".*IProgress not found.*")
            from tqdm.auto import tqdm
        return tqdm
    except ImportError:
        return None


class Progress:
    """A progress reporter: :meth:`create` it from what the user passed, send
    :meth:`event`\\ s, :meth:`close` it (or use it as a context manager).

    The bar (``bar=True``) is drawn at the first event, counts the events of its unit's
    phase (:data:`COUNTED`) and never changes its total: see the module's text.

    Examples
    ========

    >>> from symbolic_inversion.report import Progress
    >>> seen = []
    >>> with Progress.create(seen.append, "recover") as progress:
    ...     _ = progress.event("count", equations=8, unknowns=8)
    ...     _ = progress.event("path", attempt=1, of=6, status="converged")
    >>> [(e["phase"], e.get("attempt")) for e in seen]
    [('count', None), ('path', 1)]
    >>> Progress.create(None).active
    False

    A text bar on a stream of one's own; the budget of paths is text, not a total:

    >>> import io
    >>> stream = io.StringIO()
    >>> with Progress(bar=True, description="recover", stream=stream) as progress:
    ...     _ = progress.event("path", attempt=1, of=48, status="real root")
    ...     _ = progress.event("done", status="converged")
    >>> progress.totals
    [None, None]
    >>> stream.getvalue().splitlines()[-1].startswith("recover: 1 of at most 48 paths [")
    True
    """

    def __init__(self, callback=None, bar=False, description="", stream=None, unit="paths"):
        if unit not in COUNTED:
            raise ValueError(f"unit: expected one of {', '.join(COUNTED)}, got {unit!r}")
        self.callback = callback
        self.unit = unit
        self.counted_phase, self.of_means = COUNTED[unit]
        self.description = description
        self.bar_class = _bar_class(stream) if bar else None
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()
        self.bar = None
        self.wants_bar = self.bar_class is not None
        self.plain = bool(bar) and not self.wants_bar
        self.budget = None  # the latest "of" of a budget unit, shown as text
        #: the bar's total after every event (``None``: a count without a total): what
        #: a user saw; it never changes once the bar is drawn
        self.totals = []

    @classmethod
    def create(cls, progress, description="", unit="paths"):
        """A reporter from ``None``/``False``, ``True``, a callable, or a ``Progress``
        (returned unchanged, so that callers can hand one reporter down).  The bar counts
        ``path`` events (``unit="paths"``) or ``cell`` events (a study's, ``"cells"``)."""
        if isinstance(progress, Progress):
            return progress
        if progress is None or progress is False:
            return cls(description=description, unit=unit)
        if progress is True:
            return cls(bar=True, description=description, unit=unit)
        if callable(progress):
            return cls(callback=progress, description=description, unit=unit)
        from ..errors import InputError
        raise InputError(f"progress: expected None, True, False or a callable, "
                         f"got {type(progress).__name__}")

    @property
    def active(self):
        """Whether anyone listens (events can be skipped when not)."""
        return self.callback is not None or self.wants_bar or self.plain

    def event(self, phase, **fields):
        """Report ``phase`` with ``fields``; returns the event dict (``None`` if silent)."""
        if not self.active:
            return None
        event = dict(phase=phase, **fields)
        event["elapsed"] = round(time.perf_counter() - self.started, 3)
        if self.callback is not None:
            self.callback(event)
        if self.wants_bar:
            self._update_bar(event)
        elif self.plain:
            self._write_line(event)
        return event

    def _summary(self, event):
        shown = {k: v for k, v in event.items() if k not in ("phase", "elapsed", "attempt",
                                                               "of")}
        return " ".join(f"{k}={v}" for k, v in shown.items())

    def _draw(self, event):
        """The bar, drawn at the first event with its total for good (a widget's length
        is fixed when it is displayed)."""
        exact = self.of_means == "total" and event.get("of")
        total = event["of"] if exact else None
        self.bar = self.bar_class(total=total, desc=self.description, file=self.stream,
                                  leave=True, dynamic_ncols=bool(total),
                                  bar_format=self._layout(total), unit=self.unit)

    def _layout(self, total):
        """The bar's text: a fraction of the total; else the count, against the budget
        when one is known; no count at all while nothing is counted (the loss oracle's
        phases, a recovery before its first path)."""
        if total:
            count = "{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} " + self.unit
        elif self.budget:
            count = "{n_fmt} of at most " + str(self.budget) + " " + self.unit
        elif self.bar is not None and self.bar.n:
            count = "{n_fmt} " + self.unit
        else:
            return "{desc} [{elapsed}{postfix}]"
        return "{desc}: " + count + " [{elapsed}{postfix}]"

    def _update_bar(self, event):
        if self.bar is None:
            self._draw(event)
        if self.of_means == "budget" and event.get("of"):
            self.budget = event["of"]
        if self.of_means == "total" and "attempt" in event:  # cells done (a rerun starts
            self.bar.n = event["attempt"]                    # at those already on disk)
            self.bar.refresh()
        elif event["phase"] == self.counted_phase:
            self.bar.update(1)
        self.bar.bar_format = self._layout(self.bar.total)
        self.bar.set_postfix_str(f"{event['phase']} {self._summary(event)}".strip()[:60])
        self.totals.append(self.bar.total)

    def _write_line(self, event):
        where = f" {event['attempt']}/{event['of']}" if "attempt" in event else ""
        print(f"{self.description}: {event['phase']}{where} {self._summary(event)} "
              f"[{event['elapsed']:.1f} s]", file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.wants_bar = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
