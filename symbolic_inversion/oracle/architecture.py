r"""The architecture from the loss: depth, widths and biases.

Conventions
===========

*Depth* is the number of weight layers (``len(layers) - 1``); ``layers`` are the widths
from input to output, e.g. ``[3, 2, 1]`` has depth 2.

Why it works
============

On a region of fixed activation pattern the network output is a polynomial in the
parameters in which every monomial takes at most one factor from each weight layer
(a layer's bias counts as that layer).  Hence, along a generic line,

* the loss has degree ``2 * depth`` (read off exactly from finite differences; the
  maximum over a few lines guards against dead paths);
* along a direction supported on the first ``m`` parameters (trace order), the degree
  is twice the number of layers those parameters reach, a step function of ``m``
  whose jumps are the layer boundaries (found by bisection);
* two parameters *interact* (the loss along ``e_p + e_q`` has degree 4 instead of 2)
  exactly when some monomial contains both.  With ``s_l = d_l (d_{l-1} + bias)`` the
  block sizes leave only a few candidate width vectors; interaction tests between
  chosen pairs, whose outcome each candidate predicts, select one, and further tests
  check it for self-consistency.
"""

from ..errors import InputError

__all__ = ["ArchitectureFinding", "discover_architecture", "predicted_interaction",
           "candidate_widths"]


class ArchitectureFinding:
    """What :func:`discover_architecture` found (plain attributes)."""

    def __init__(self, layers, bias, depth, block_sizes, candidates, checks, mismatches,
                 degrees):
        self.layers = layers
        self.bias = bias
        self.depth = depth
        self.block_sizes = block_sizes
        self.candidates = candidates
        self.checks = checks
        self.mismatches = mismatches
        self.degrees = degrees

    @property
    def consistent(self):
        return self.layers is not None and not self.mismatches


def candidate_widths(block_sizes, bias):
    """All width vectors with ``d_l (d_{l-1} + bias) = s_l`` for every weight layer.

    >>> from symbolic_inversion.oracle.architecture import candidate_widths
    >>> candidate_widths([8, 3], bias=True)   # 3-2-1 with biases
    [[3, 2, 1]]
    >>> candidate_widths([6, 2], bias=False)
    [[3, 2, 1], [6, 1, 2]]
    """
    extra = 1 if bias else 0
    found = []
    last = block_sizes[-1]
    for output_width in range(1, last + 1):
        if last % output_width:
            continue
        widths = [output_width]
        for size in reversed(block_sizes):
            if size % widths[0]:
                break
            fan_in = size // widths[0] - extra
            if fan_in < 1:
                break
            widths.insert(0, fan_in)
        else:
            found.append(widths)
    return sorted(found)


def _layout(layers, bias):
    """Per parameter index: (layer, kind, out_neuron, in_neuron) with kind 'W' or 'b'."""
    layout = []
    for layer, (fan_in, fan_out) in enumerate(zip(layers[:-1], layers[1:]), 1):
        layout += [(layer, "W", k, i) for k in range(fan_out) for i in range(fan_in)]
        if bias:
            layout += [(layer, "b", k, None) for k in range(fan_out)]
    return layout


def predicted_interaction(layers, bias, p, q):
    """Whether parameters ``p`` and ``q`` share a monomial of the network output.

    >>> from symbolic_inversion.oracle.architecture import predicted_interaction
    >>> # 3-2-1 with bias: W1[0,0] (index 0) feeds neuron 0, read by W2[0,0] (index 8)
    >>> predicted_interaction([3, 2, 1], True, 0, 8), predicted_interaction([3, 2, 1], True, 3, 8)
    (True, False)
    """
    layout = _layout(layers, bias)
    first, second = sorted((layout[p], layout[q]))
    if first[0] == second[0]:
        return False
    if second[1] == "b":  # a bias starts its monomials: nothing before it can share one
        return False
    if second[0] == first[0] + 1:
        return second[3] == first[2]
    return True


def _random_direction(field, rng, support, num_parameters):
    direction = [field.number(0)] * num_parameters
    for index in support:
        value = field.random(rng)
        while value == 0:
            value = field.random(rng)
        direction[index] = value
    return direction


def discover_architecture(probe, rng, max_depth=8, base_points=3, checks=6):
    """Depth, widths and bias of the network behind ``probe`` (a :class:`LossProbe`).

    Returns an :class:`ArchitectureFinding`; ``layers`` is ``None`` when no width
    vector is consistent with the measurements.

    Every measurement is repeated at ``base_points`` parameter points and the largest
    degree counts: a dead neuron only ever lowers a degree.  The first points have all
    parameters positive, which keeps every neuron beyond the first layer alive (positive
    weights of non-negative activations plus a positive bias); the others are random,
    for first-layer neurons that positive weights switch off (e.g. all inputs negative).
    """
    field, count = probe.field, probe.num_parameters
    positive = min(2, base_points - 1)
    bases = [[field.positive(rng) for _ in range(count)] for _ in range(positive)]
    bases += [[field.random(rng) for _ in range(count)] for _ in range(base_points - positive)]
    everything = range(count)

    degrees = []
    for base in bases:
        for _ in range(2):
            direction = _random_direction(field, rng, everything, count)
            degrees.append(probe.degree_along(base, direction, 2 * max_depth + 2))
    measured = [d for d in degrees if d is not None]
    if not measured:
        raise InputError("loss: not piecewise polynomial along lines (is it a ReLU "
                         "network's loss? with dps, are there enough digits for the "
                         "finite differences?)")
    top = max(measured)
    if top % 2 or top == 0:
        return ArchitectureFinding(None, None, None, [], [], 0,
                                   [f"degree {top} along generic lines is not positive "
                                    f"and even"], degrees)
    depth = top // 2
    bound = 2 * depth + 2

    def degree(support, base, limit=bound):
        return probe.degree_along(base, _random_direction(field, rng, support, count), limit)

    def reached_layers(prefix):
        return max((degree(range(prefix), base) or 0) for base in bases) // 2

    # Bisect the step function "layers reached by the first m parameters".
    boundaries, low = [0], 1
    for layer in range(2, depth + 1):
        lo, hi = low, count
        while lo < hi:
            middle = (lo + hi) // 2
            if reached_layers(middle) >= layer:
                hi = middle
            else:
                lo = middle + 1
        boundaries.append(lo - 1)
        low = lo
    boundaries.append(count)
    blocks = [b - a for a, b in zip(boundaries, boundaries[1:])]
    if any(size <= 0 for size in blocks):
        return ArchitectureFinding(None, None, depth, blocks, [], 0,
                                   ["empty layer block"], degrees)

    def interacts(p, q):
        # Along e_p + e_q the output has degree at most 2, the loss at most 4.
        return any((degree([p, q], base, 4) or 0) >= 4 for base in bases)

    candidates = [(w, b) for b in (True, False) for w in candidate_widths(blocks, b)]
    # Pairs in later layers first: first-layer weights on an input coordinate that is
    # zero for every sample interact with nothing, which must not decide the widths.
    pairs = [(p, boundaries[layer]) for layer in range(depth - 1, 0, -1)
             for p in range(boundaries[layer - 1], boundaries[layer])]
    pairs += [(p, boundaries[layer + 1] - 1) for layer in range(depth - 1, 0, -1)
              for p in range(boundaries[layer - 1], boundaries[layer])]
    pairs = sorted(set(pairs), key=lambda pq: (-pq[0], pq[1]))
    tested = 0
    while len(candidates) > 1:
        splitting = None
        for p, q in pairs:
            outcomes = {predicted_interaction(w, b, p, q) for w, b in candidates}
            if len(outcomes) == 2:
                splitting = (p, q)
                break
        if splitting is None:
            break
        observed = interacts(*splitting)
        tested += 1
        candidates = [(w, b) for w, b in candidates
                      if predicted_interaction(w, b, *splitting) == observed]
    if len(candidates) != 1:
        reason = ("no width vector fits the layer blocks " + str(blocks) if not candidates
                  else f"several width vectors fit: {[w for w, _ in candidates]}")
        return ArchitectureFinding(None, None, depth, blocks, candidates, tested, [reason],
                                   degrees)

    layers, bias = candidates[0]
    # Self-consistency: random adjacent-layer pairs beyond the first layer's weights,
    # plus one pair for each layer boundary, must interact exactly as predicted.
    mismatches = []
    layout = _layout(layers, bias)
    later = [p for p in range(count) if not (layout[p][0] == 1 and layout[p][1] == "W")]
    for _ in range(checks):
        p = rng.choice(later)
        partners = ([q for q in later if abs(layout[q][0] - layout[p][0]) == 1]
                    or [q for q in range(count) if abs(layout[q][0] - layout[p][0]) == 1])
        if not partners:
            continue
        q = rng.choice(partners)
        expected, observed = predicted_interaction(layers, bias, p, q), interacts(p, q)
        tested += 1
        if expected != observed:
            mismatches.append(f"parameters {p} and {q}: predicted "
                              f"{'an' if expected else 'no'} interaction, observed "
                              f"{'one' if observed else 'none'}")
    return ArchitectureFinding(layers, bias, depth, blocks, [w for w, _ in candidates],
                               tested, mismatches, degrees)
