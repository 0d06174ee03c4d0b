"""``python -m bench.chaos.worker <celery arguments>``: the Celery CLI as the chaos script
may start it to measure a broker setting without editing settings.py: the wall clock
shifted by CRM_TEST_CLOCK_OFFSET seconds (as the tests' launcher does), and
CHAOS_BROKER_TRANSPORT_OPTIONS (JSON) merged into broker_transport_options."""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    offset = float(os.environ.get("CRM_TEST_CLOCK_OFFSET") or 0)
    if offset:
        import time_machine

        time_machine.travel(time.time() + offset, tick=True).start()
        time.time()  # time-machine starts the clock ticking at its first reading
    extra = os.environ.get("CHAOS_BROKER_TRANSPORT_OPTIONS")
    if extra:
        from partnership_crm.celery import app

        app.conf.broker_transport_options = {
            **(app.conf.broker_transport_options or {}),
            **json.loads(extra),
        }
    from celery.__main__ import main as celery_main

    sys.argv[0] = "celery"
    sys.exit(celery_main())


if __name__ == "__main__":
    main()
