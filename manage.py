#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partnership_crm.settings")
    from django.core.management import execute_from_command_line

    from partnership_crm.var import ensure_dirs

    ensure_dirs()  # var/ and the folders under it: importing settings writes nothing
    execute_from_command_line(sys.argv)
