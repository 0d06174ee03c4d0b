"""Which status moves each side may make. Pure rules."""

from __future__ import annotations

from .models import Status

SUPPLIER_MOVES: dict[str, tuple[str, ...]] = {
    Status.NEW: (
        Status.ACKNOWLEDGED,
        Status.IN_PROGRESS,
        Status.WAITING_ON_SCHOOL,
        Status.RESOLVED,
    ),
    Status.ACKNOWLEDGED: (Status.IN_PROGRESS, Status.WAITING_ON_SCHOOL, Status.RESOLVED),
    Status.IN_PROGRESS: (Status.WAITING_ON_SCHOOL, Status.RESOLVED),
    Status.WAITING_ON_SCHOOL: (Status.IN_PROGRESS, Status.RESOLVED),
    Status.RESOLVED: (Status.CLOSED, Status.IN_PROGRESS),
    Status.CLOSED: (Status.IN_PROGRESS,),
}

# The school side closes a resolved ticket, or reopens one that was not really solved.
SCHOOL_MOVES: dict[str, tuple[str, ...]] = {
    Status.WAITING_ON_SCHOOL: (Status.IN_PROGRESS,),
    Status.RESOLVED: (Status.CLOSED, Status.IN_PROGRESS),
    Status.CLOSED: (Status.IN_PROGRESS,),
}


def allowed_next(status: str, *, supplier_side: bool) -> list[str]:
    moves = SUPPLIER_MOVES if supplier_side else SCHOOL_MOVES
    return [str(s) for s in moves.get(status, ())]


def is_reopen(from_status: str, to_status: str) -> bool:
    return from_status in (Status.RESOLVED, Status.CLOSED) and to_status == Status.IN_PROGRESS
