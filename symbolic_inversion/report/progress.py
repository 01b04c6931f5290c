"""Progress of long work: one event (a dict) per phase and per path, never on stdout.

``recover(trace, progress=...)`` and the command line's ``--progress`` accept:

* ``None`` or ``False``: silent (the default);
* ``True``: a bar on stderr (tqdm, the ``progress`` extra, when installed; otherwise one
  plain line per event on stderr);
* a callable: called with one dict per event, e.g.
  ``{"phase": "path", "attempt": 2, "of": 6, "kind": "moments", "status": "converged",
  "elapsed": 1.2}``.

Phases of a recovery, in order: ``count`` (equations against unknowns), ``search`` (a
path starts), ``path`` (it ended), ``split`` (a path of the split endgame starts from a
stalled path's end), ``refine`` and ``judge`` (a candidate is polished and judged against
the whole trace), ``done`` (the final status).  Every event carries
``elapsed`` (seconds since the reporter was created).
"""

import sys
import time

__all__ = ["Progress"]


class Progress:
    """A progress reporter: :meth:`create` it from what the user passed, send
    :meth:`event`\\ s, :meth:`close` it (or use it as a context manager).

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
    """

    def __init__(self, callback=None, bar=False, description="", stream=None, unit="paths"):
        self.callback = callback
        self.unit = unit
        self.description = description
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()
        self.bar = None
        self.plain = False
        self.total = None
        if bar:
            try:
                from tqdm import tqdm
            except ImportError:
                self.plain = True
            else:
                # no count until an event says how many paths ("of"): elapsed time only
                self.bar = tqdm(total=None, desc=description, file=self.stream, leave=True,
                                bar_format="{desc} [{elapsed}{postfix}]",
                                dynamic_ncols=True)

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
        return self.callback is not None or self.bar is not None or self.plain

    def event(self, phase, **fields):
        """Report ``phase`` with ``fields``; returns the event dict (``None`` if silent)."""
        if not self.active:
            return None
        event = dict(phase=phase, **fields)
        event["elapsed"] = round(time.perf_counter() - self.started, 3)
        if self.callback is not None:
            self.callback(event)
        if self.bar is not None:
            self._update_bar(event)
        elif self.plain:
            self._write_line(event)
        return event

    def _summary(self, event):
        shown = {k: v for k, v in event.items() if k not in ("phase", "elapsed", "attempt",
                                                               "of")}
        return " ".join(f"{k}={v}" for k, v in shown.items())

    def _update_bar(self, event):
        if event.get("of") and self.bar.total != event["of"]:
            self.bar.total = event["of"]
            self.bar.bar_format = ("{l_bar}{bar}| {n_fmt}/{total_fmt} " + self.unit +
                                   " [{elapsed}{postfix}]")
        if self.unit == "cells" and "attempt" in event:  # cells done (a rerun starts at
            self.bar.n = event["attempt"]                 # those already on disk)
            self.bar.refresh()
        elif event["phase"] == "path":
            self.bar.update(1)
        if event["phase"] == "done" and self.bar.total:
            self.bar.total = self.bar.n  # finished: the paths not needed are not pending
        self.bar.set_postfix_str(f"{event['phase']} {self._summary(event)}".strip()[:60])

    def _write_line(self, event):
        where = f" {event['attempt']}/{event['of']}" if "attempt" in event else ""
        print(f"{self.description}: {event['phase']}{where} {self._summary(event)} "
              f"[{event['elapsed']:.1f} s]", file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
