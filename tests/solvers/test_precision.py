"""precision.py: every working-precision rule in one place, with its measurement."""

import pathlib
import re

from symbolic_inversion import Network, precision, simulate


def test_every_rule_is_documented_and_grows_with_the_problem():
    for name in precision.__all__:
        assert getattr(precision, name).__doc__, name
    small = simulate(Network([1, 1], "tanh"), ["0.6"], ["0.5"], lr="0.1", epochs=2,
                     init=["0.5", "0.5"], dps=30)
    large = simulate(Network([1, 1], "tanh"), ["0.6", "0.2", "0.9"], ["0.5", "0.4", "0.1"],
                     lr="0.1", epochs=6, init=["0.5", "0.5"], dps=60)
    for rule in (precision.default_dps, precision.tracking_dps, precision.refine_dps,
                 precision.certify_dps, precision.resimulate_dps, precision.symmetry_dps):
        assert rule(large) > rule(small), rule.__name__
    assert precision.refine_dps(small, 500) == 500
    assert precision.analysis_dps(10) == 60 and precision.analysis_dps(40) == 150


def test_no_precision_formula_outside_precision_py():
    """No module computes a working precision from a trace or a sample count itself."""
    root = pathlib.Path(precision.__file__).parent
    pattern = re.compile(r"dps\s*=\s*(max\(|int\().*(digits|samples|unknowns)")
    offenders = [f"{path.relative_to(root)}:{number}"
                 for path in root.rglob("*.py") if path.name != "precision.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []
