"""``python -m bench.nudges.worker <celery arguments>``: the Celery CLI as the benchmark
starts it, with two switches read from the environment by the benchmark only (the
product's code and settings know nothing of them):

* ``BENCH_CLOCK_OFFSET`` (seconds): shift the wall clock (time-machine, ticking), so that
  a run on a weekend or a bank holiday still finds the schools' send windows open;
* ``BENCH_SENDER=per-email``: the baseline, where the dispatcher's sender posts each
  email as its own SendGrid request (senders.PerEmailSender) instead of one request per
  sender and batch.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def _use_per_email_sender(**_: Any) -> None:
    # After Django is set up (worker_init), before any task runs; a prefork pool's
    # children inherit the patched module.
    from django.conf import settings

    import nudges.dispatch

    from .senders import PerEmailSender

    def per_email_sender() -> PerEmailSender:
        return PerEmailSender(
            api_key=settings.SENDGRID_API_KEY,
            host=settings.SENDGRID_API_HOST,
            timeout=float(settings.SENDGRID_TIMEOUT),
        )

    nudges.dispatch.default_sender = per_email_sender  # type: ignore[assignment]


def main() -> None:
    offset = float(os.environ.get("BENCH_CLOCK_OFFSET") or 0)
    if offset:
        import time_machine

        time_machine.travel(time.time() + offset, tick=True).start()
        time.time()  # time-machine starts the clock ticking at its first reading
    if os.environ.get("BENCH_SENDER") == "per-email":
        from celery.signals import worker_init

        worker_init.connect(_use_per_email_sender, weak=False)
    from celery.__main__ import main as celery_main

    sys.argv[0] = "celery"
    celery_main()


if __name__ == "__main__":
    main()
