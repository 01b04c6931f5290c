"""The limits module: defaults, environment variables, overrides, the time budget."""

import os
import re
import signal
import time

import numpy as np
import pytest

from symbolic_inversion import InputError, Limits, Network, simulate
from symbolic_inversion.limits import (BudgetExceeded, check, check_int, check_time, current,
                                       override, safe_interrupts, time_budget)


def test_defaults_are_documented_values():
    limits = current()
    assert limits == Limits()
    # below Python's 4300-digit limit on integer text, which mpmath meets on the way in
    assert limits.max_number_digits < 4300 and limits.max_dps < 4300


def test_refusal_names_the_limit_and_how_to_raise_it():
    with pytest.raises(InputError) as error:
        check("max_dps", 5000, "dps")
    text = str(error.value)
    assert "max_dps = 3000" in text and "SYMBOLIC_INVERSION_MAX_DPS=N" in text
    assert "override(max_dps=N)" in text


def test_environment_variable_and_override(monkeypatch):
    monkeypatch.setenv("SYMBOLIC_INVERSION_MAX_DPS", "40")
    assert current().max_dps == 40
    with pytest.raises(InputError, match="max_dps = 40"):
        simulate(Network([1, 1]), [0.6], [0.5], "0.1", 1, init=[0.5, 0.5], dps=41)
    with override(max_dps=50):
        assert current().max_dps == 50
    assert current().max_dps == 40
    monkeypatch.setenv("SYMBOLIC_INVERSION_MAX_DPS", "many")
    with pytest.raises(InputError, match="SYMBOLIC_INVERSION_MAX_DPS: expected a number"):
        current()


def test_override_refuses_unknown_names():
    with pytest.raises(InputError, match="unknown limit 'max_everything'"):
        with override(max_everything=1):
            pass


@pytest.mark.parametrize("value", [np.int64(3), np.int32(3), 3])
def test_check_int_accepts_python_and_numpy_integers(value):
    assert check_int(value, "epochs", minimum=1) == 3 and type(check_int(value, "e")) is int


@pytest.mark.parametrize("value, message", [("2", "expected an integer, got str"),
                                            (2.0, "expected an integer, got float"),
                                            (True, "expected an integer, got True"),
                                            (None, "expected an integer, got NoneType"),
                                            (0, "must be at least 1")])
def test_check_int_refuses_other_types(value, message):
    with pytest.raises(InputError, match=message):
        check_int(value, "steps", minimum=1)


def test_numpy_integers_everywhere_in_simulate():
    trace = simulate(Network([1, 1]), [0.6], [0.5], "0.1", np.int64(2), init=[0.5, 0.5],
                     dps=np.int64(20), seed=np.int64(1))
    assert trace.steps == 2 and trace.digits == 20


def test_cooperative_budget():
    with pytest.raises(BudgetExceeded, match="time budget of 0.05 s exceeded"):
        with time_budget(0.05):
            while True:
                check_time()


def test_timer_interrupts_code_without_checks():
    started = time.monotonic()
    with pytest.raises(BudgetExceeded, match="max_seconds"):
        with time_budget(0.1):
            time.sleep(5)
    assert time.monotonic() - started < 2


def test_no_budget_and_budget_restored():
    with time_budget(0):
        check_time()
    with time_budget(5):
        pass
    check_time()  # nothing left armed
    time.sleep(0.01)


# -- interrupts at safe points ------------------------------------------------------------

@pytest.fixture
def ctrl_c():
    # Python's Ctrl-C handler (a background job, as in .ci/run, starts with SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_held_interrupt_comes_at_the_next_check_or_at_the_end_of_the_block(ctrl_c):
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with safe_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("after the signal")   # not raised where it landed
    assert reached == ["after the signal"]       # ... but at the end of the block
    with safe_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            check_time()
        check_time()                             # delivered once
    with pytest.raises(KeyboardInterrupt):
        with safe_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            try:
                os.kill(os.getpid(), signal.SIGINT)   # a second one: at once
            except KeyboardInterrupt:
                reached.append("at once")
                raise
    assert reached[-1] == "at once"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- issue 27: limits and budgets given wrong values ------------------------------------------

@pytest.mark.parametrize("seconds, message", [
    ("x", "time_budget: expected a number of seconds, got str"),
    (True, "time_budget: expected a number of seconds, got bool"),
    (float("nan"), "time_budget: expected 0 (no budget) to 1e8 seconds, got nan"),
    (float("inf"), "time_budget: expected 0 (no budget) to 1e8 seconds, got inf"),
    (10 ** 30, "time_budget: expected 0 (no budget) to 1e8 seconds, got 1e+30"),
    (-1, "time_budget: expected 0 (no budget) to 1e8 seconds, got -1")])
def test_a_time_budget_that_is_not_a_number_of_seconds_is_refused(seconds, message):
    # -1 used to mean "no budget" here while the command line refused --max-seconds -1
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(InputError) as error:
        with time_budget(seconds):
            pass
    assert str(error.value) == message
    assert signal.getsignal(signal.SIGALRM) is before   # no timer handler left behind
    check_time()


def test_budget_seconds_accept_numpy_numbers():
    with time_budget(np.float64(5)):
        check_time()
    with time_budget(np.int64(0)):     # no budget, as 0
        check_time()


@pytest.mark.parametrize("name, value, message", [
    ("max_dps", float("nan"), "limits.override(max_dps): expected an integer, got float"),
    ("max_dps", -1, "limits.override(max_dps): must be at least 0, got -1"),
    ("max_dps", "5000", "limits.override(max_dps): expected an integer, got str"),
    ("max_seconds", float("nan"), "limits.override(max_seconds): must be a finite, "
                                  "non-negative number, got nan"),
    ("max_seconds", float("inf"), "limits.override(max_seconds): must be a finite"),
    ("max_seconds", None, "limits.override(max_seconds): expected a number, got NoneType")])
def test_override_refuses_values_that_would_disable_a_limit(name, value, message):
    # a NaN limit compares false with everything: max_dps=nan silently let any dps pass
    with pytest.raises(InputError, match="^" + re.escape(message)):
        with override(**{name: value}):
            pass
    with override(max_dps=np.int64(50), max_seconds=np.float32(2.5)):
        assert current().max_dps == 50 and current().max_seconds == 2.5


def test_environment_variables_that_would_disable_a_limit_are_refused(monkeypatch):
    monkeypatch.setenv("SYMBOLIC_INVERSION_MAX_SECONDS", "nan")
    with pytest.raises(InputError, match="^SYMBOLIC_INVERSION_MAX_SECONDS: must be a finite"):
        current()
    monkeypatch.setenv("SYMBOLIC_INVERSION_MAX_SECONDS", "-5")
    with pytest.raises(InputError, match="^SYMBOLIC_INVERSION_MAX_SECONDS: must be a finite"):
        current()
