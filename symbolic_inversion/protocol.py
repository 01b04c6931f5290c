r"""The protocol the paper attacks: Boer & Kramer's secure sum, and its attacking party.

Boer and Kramer (2020) train a network on data horizontally partitioned among parties:
every epoch each party computes the gradient sum of its own samples, a *secure sum*
reveals only the total, and the updated parameters are broadcast to everyone.  Summing
the parties' gradient sums gives exactly the full-batch gradient of the union, so the
broadcast parameters are a full-batch GD trace of all ``n`` samples
(:func:`secure_sum_training`).

An attacking party knows its own samples.  It subtracts their contribution from every
step's right-hand side and solves for the other ``n - k`` samples
(:func:`attacker_view`, then :func:`~symbolic_inversion.recover`; the same as
``recover(trace, known=own)`` or ``recover TRACE --known own.csv``).  What it gets is the
*multiset* of the other parties' samples: the secure sum hides which party contributed
which sample, and so does the trace (:func:`known_report` says so in the result).

Examples
========

Three parties, the attacker (party 0) holding 2 of 5 samples:

>>> from symbolic_inversion import Network, recover
>>> from symbolic_inversion.protocol import secure_sum_training, attacker_view
>>> parties = [(["0.6", "0.2"], ["0.5", "0.4"]), (["0.1"], ["0.3"]),
...            (["0.9", "0.7"], ["0.6", "0.2"])]
>>> trace = secure_sum_training(Network([1, 1], "tanh"), parties, lr="0.1", epochs=6,
...                             init=["0.5", "0.5"], dps=60)
>>> trace.samples
5
>>> view = attacker_view(trace, parties[0])
>>> len(view.known)
2
"""

from .errors import InputError
from .network import Network
from .samples import sample_columns

__all__ = ["secure_sum_training", "attacker_view", "known_report"]


def _party(network, party, k):
    try:
        inputs, labels = party
    except (TypeError, ValueError):
        raise InputError(f"parties[{k}]: expected a pair (inputs, labels)") from None
    X = sample_columns(inputs, network.input_width, f"parties[{k}].x")
    Y = sample_columns(labels, network.output_width, f"parties[{k}].y", count=len(X))
    return X, Y


def secure_sum_training(network, parties, lr, epochs, init=None, dps=50, dtype=None,
                        loss_reduction=None, seed=None):
    """Train ``network`` by Boer & Kramer's protocol and return what every party sees.

    Parameters
    ==========

    network : Network
    parties : list of (inputs, labels)
        Disjoint parts of the data, one pair per party (inputs and labels as for
        :func:`~symbolic_inversion.simulate.simulate`).
    lr, epochs, init, dps, dtype, loss_reduction, seed :
        As for :func:`~symbolic_inversion.simulate.simulate`.  Full-batch gradient descent
        on the union, one broadcast per epoch.

    Returns
    =======

    Trace
        The broadcast parameters (samples in party order; the trace does not record the
        parties).

    Examples
    ========

    >>> from symbolic_inversion import Network
    >>> trace = secure_sum_training(Network([1, 1]), [([0.5], [0.1]), ([0.2], [0.3])],
    ...                             lr="0.1", epochs=2, init=[0.5, 0.5], dps=20)
    >>> trace.samples, trace.steps
    (2, 2)
    >>> secure_sum_training(Network([1, 1]), [], lr="0.1", epochs=2)
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: parties: expected a non-empty list of (inputs, labels) pairs
    """
    from .simulate import simulate
    if not isinstance(network, Network):
        raise InputError("network: expected a Network")
    if not isinstance(parties, (list, tuple)) or not parties:
        raise InputError("parties: expected a non-empty list of (inputs, labels) pairs")
    inputs, labels = [], []
    for k, party in enumerate(parties):
        X, Y = _party(network, party, k)
        inputs += X
        labels += Y
    # the secure sum of the parties' gradient sums is the union's full-batch gradient
    return simulate(network, inputs, labels, lr=lr, epochs=epochs, init=init, dps=dps,
                    seed=seed, dtype=dtype, loss_reduction=loss_reduction)


def attacker_view(trace, own):
    """The trace as the attacking party sees it: ``own`` = ``(inputs, labels)`` (its
    samples) recorded as :attr:`~symbolic_inversion.trace.Trace.known`.

    >>> from symbolic_inversion import Network, Trace
    >>> trace = Trace(Network([1, 1]), "0.1", 3, [[1, 1], [0.9, 0.9]])
    >>> attacker_view(trace, ([0.5], [0.1])).known
    [([Decimal('0.5'), Decimal('0.1')], 2)]
    """
    X, Y = _party(trace.network, own, 0)
    return trace.with_known([(x, y) for x, y in zip(X, Y)])


def known_report(trace, solution):
    """Mark a recovery of the unknown samples of ``trace`` (which has :attr:`known`
    samples): the known ones are excluded from the result, and which party holds which
    recovered sample is not identifiable.  Returns ``solution`` (updated in place)."""
    k = len(trace.known)
    solution.stats.update(known=k, recovered_samples=trace.samples - k)
    note = (f"{k} known samples excluded (their contribution subtracted from every step); "
            f"the {trace.samples - k} others are a multiset: which party holds which "
            f"sample is not identifiable")
    solution.detail = f"{solution.detail}; {note}" if solution.detail else note
    return solution
