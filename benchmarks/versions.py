"""Measure two versions of the package side by side, in one run.

A benchmark names the cases; each version runs them in a worker process of its own,
with that version's ``symbolic_inversion`` first on ``sys.path``.  Cases alternate
between the versions, so both see the same machine load.  The baseline is any git
revision of this repository, unpacked once into a temporary directory with
``git archive`` (no work tree of yours is touched).

    from versions import Versions
    with Versions(baseline="0fc847c") as versions:
        for label, result in versions.call("bench_recover", "run_case", n=4, seed=0):
            ...

The worker imports the benchmark module from *this* checkout's ``benchmarks/`` folder
and calls the named function with JSON arguments; the function must use only API that
both versions have (or try the newer API first and fall back), and return JSON.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)

_SERVE = """
import importlib, json, sys, traceback
sys.path.insert(0, {here!r})
sys.path.insert(0, {root!r})
import symbolic_inversion
assert symbolic_inversion.__file__.startswith({root!r}), symbolic_inversion.__file__
for line in sys.stdin:
    request = json.loads(line)
    try:
        module = importlib.import_module(request["module"])
        result = {{"ok": getattr(module, request["function"])(**request["kwargs"])}}
    except Exception:
        result = {{"error": traceback.format_exc()}}
    sys.stdout.write(json.dumps(result) + "\\n")
    sys.stdout.flush()
"""


def has_module(name):
    """Whether the version this process imports has ``symbolic_inversion.<name>`` (a
    file beside its ``__init__``: an editable install's finder would otherwise supply a
    newer version's module to an older package)."""
    import symbolic_inversion
    folder = os.path.dirname(symbolic_inversion.__file__)
    return os.path.exists(os.path.join(folder, name + ".py")) or \
        os.path.isdir(os.path.join(folder, name))


def unpack_revision(revision, folders=("symbolic_inversion",)):
    """``(root, commit)``: the ``folders`` of git ``revision`` (the package; the
    benchmarks too for ``side_by_side.py``), unpacked once under the temporary
    directory."""
    commit = subprocess.run(["git", "-C", REPOSITORY, "rev-parse", "--short", revision],
                            check=True, capture_output=True, text=True).stdout.strip()
    name = "-".join(["symbolic-inversion", *folders[1:], commit])
    target = os.path.join(tempfile.gettempdir(), name)
    if not all(os.path.isdir(os.path.join(target, folder)) for folder in folders):
        os.makedirs(target, exist_ok=True)
        archive = subprocess.run(["git", "-C", REPOSITORY, "archive", commit, *folders],
                                 check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", target], input=archive.stdout, check=True)
    return target, commit


class Worker:
    """A process that runs benchmark functions against one version of the package."""

    def __init__(self, label, root):
        self.label = label
        code = _SERVE.format(here=HERE, root=root)
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, cwd=root)

    def call(self, module, function, **kwargs):
        self.process.stdin.write(json.dumps({"module": module, "function": function,
                                             "kwargs": kwargs}) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"{self.label}: {answer['error']}")
        return answer["ok"]

    def fastest(self, module, function, repeat=1, long_run=1.0, **kwargs):
        """:meth:`call` up to ``repeat`` times, the result with the least ``"time"``.

        A run of more than ``long_run`` seconds is not repeated: one-off costs (the first
        call's imports and compiled activations, a garbage collection, another process's
        burst) distort a short case and not a long one.  ``"runs"`` says how many ran."""
        best, runs = None, 0
        for runs in range(1, max(1, repeat) + 1):
            result = self.call(module, function, **kwargs)
            if best is None or result["time"] < best["time"]:
                best = result
            if result["time"] > long_run:
                break
        return dict(best, runs=runs)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


class Versions:
    """This checkout (``"current"``) and, if ``baseline`` is given, that git revision."""

    def __init__(self, baseline=None):
        self.workers = [Worker("current", REPOSITORY)]
        if baseline:
            root, commit = unpack_revision(baseline)
            self.workers.insert(0, Worker(f"baseline {commit}", root))

    @property
    def labels(self):
        return [worker.label for worker in self.workers]

    def call(self, module, function, **kwargs):
        """``[(label, result)]`` for every version, in turn."""
        return [(worker.label, worker.call(module, function, **kwargs))
                for worker in self.workers]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for worker in self.workers:
            worker.close()
