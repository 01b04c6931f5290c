"""How a path ended: :class:`PathCode` and :class:`PathResult` (HomotopyContinuation.jl's
``path_result.jl``), shared by the tracker and its endgame."""

import enum
from dataclasses import dataclass

__all__ = ["PathCode", "PathResult", "STALLED_NEAR_END", "DIVERGED"]

# a path stopped past this t is next to its endpoint (refinement can finish it)
STALLED_NEAR_END = 0.999
# far outside any data a network is trained on: the path heads for a root at infinity
DIVERGED = 1e6


class PathCode(enum.Enum):
    """How a path ended."""

    SUCCESS = "success"                # a real endpoint at t = 1
    COMPLEX_END = "complex_end"        # converged at t = 1 to a non-real root
    AT_INFINITY = "at_infinity"        # |u| grew without bound
    STALLED = "stalled"                # the step size fell below its minimum
    SINGULAR = "singular"              # the Jacobian on the path is singular
    ENDGAME_FAILED = "endgame_failed"  # Newton did not converge at t = 1
    MAX_STEPS = "max_steps"
    NO_START = "no_start"              # the homotopy could not give a start point
    NO_ROOT = "no_root"                # a least-squares search settled at no root

    @property
    def ended_at_root(self):
        return self in (PathCode.SUCCESS, PathCode.COMPLEX_END)


@dataclass
class PathResult:
    """The end of one path.

    ``u``: the endpoint (arithmetic numbers) or ``None``; ``real``: its real part as
    mpmath numbers when the endpoint is real; ``last`` / ``t``: where a failed path
    stopped (near ``t = 1`` usually next to a root the tracking precision cannot resolve);
    ``imaginary``: the largest imaginary part of a converged endpoint.
    """

    code: PathCode
    u: object = None
    steps: int = 0
    newton: int = 0
    reason: str = ""
    t: float = None
    last: object = None
    real: list = None
    imaginary: float = None
    endgame_jump: bool = False
    winding: int = None

    @property
    def ok(self):
        return self.code is PathCode.SUCCESS

    @property
    def stalled_near_end(self):
        return (not self.code.ended_at_root and self.code is not PathCode.AT_INFINITY
                and self.last is not None and self.t is not None
                and self.t >= STALLED_NEAR_END)
