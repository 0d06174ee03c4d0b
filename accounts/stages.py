"""The partnership stage machine. Pure rules: no queries except the readiness gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .models import Stage

if TYPE_CHECKING:
    from .models import Partnership

ACTIVE = (
    Stage.ENQUIRY,
    Stage.TECHNICAL_REVIEW,
    Stage.PILOT,
    Stage.EXPANSION,
    Stage.WHOLE_SCHOOL,
    Stage.RENEWAL,
)

# Forward along the roll-out, one step back where a school may need it, and pause or end
# from anywhere. Paused resumes to the stage it was paused from (see allowed_next).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    Stage.ENQUIRY: (Stage.TECHNICAL_REVIEW, Stage.PAUSED, Stage.ENDED),
    Stage.TECHNICAL_REVIEW: (Stage.PILOT, Stage.ENQUIRY, Stage.PAUSED, Stage.ENDED),
    Stage.PILOT: (Stage.EXPANSION, Stage.TECHNICAL_REVIEW, Stage.PAUSED, Stage.ENDED),
    Stage.EXPANSION: (Stage.WHOLE_SCHOOL, Stage.PILOT, Stage.PAUSED, Stage.ENDED),
    Stage.WHOLE_SCHOOL: (Stage.RENEWAL, Stage.PAUSED, Stage.ENDED),
    Stage.RENEWAL: (Stage.WHOLE_SCHOOL, Stage.PAUSED, Stage.ENDED),
    Stage.PAUSED: (Stage.ENDED,),
    Stage.ENDED: (),
}

# Apps that hold evidence of technical readiness (visits) register a check here, so that
# accounts imports no other app. A partnership is ready when any check says so.
ReadinessCheck = Callable[["Partnership"], bool]
_readiness_checks: list[ReadinessCheck] = []


def register_readiness_check(check: ReadinessCheck) -> None:
    if check not in _readiness_checks:
        _readiness_checks.append(check)


def is_technically_ready(partnership: Partnership) -> bool:
    return any(check(partnership) for check in _readiness_checks)


def allowed_next(partnership: Partnership) -> list[str]:
    allowed = list(TRANSITIONS[partnership.stage])
    if partnership.stage == Stage.PAUSED and partnership.stage_before_pause:
        allowed.insert(0, partnership.stage_before_pause)
    return [str(s) for s in allowed]


PILOT_GATE_MESSAGE = (
    "A partnership enters the pilot only after a completed technical survey with an "
    "outcome of 'ready' or 'ready with conditions'. A supplier admin may override with a reason."
)
