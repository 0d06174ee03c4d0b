#!/usr/bin/env python
import os
import sys


def _settings_from_argv(argv: list[str]) -> str | None:
    """The --settings option, read before Django parses the command line: the folders
    are made from the settings the command will run with."""
    for i, arg in enumerate(argv):
        if arg.startswith("--settings="):
            return arg.split("=", 1)[1]
        if arg == "--settings" and i + 1 < len(argv):
            return argv[i + 1]
    return None


if __name__ == "__main__":
    os.environ["DJANGO_SETTINGS_MODULE"] = _settings_from_argv(sys.argv) or os.environ.get(
        "DJANGO_SETTINGS_MODULE", "partnership_crm.settings"
    )
    from django.core.management import execute_from_command_line

    from partnership_crm.var import ensure_dirs

    ensure_dirs()  # var/ and the folders under it: importing settings writes nothing
    execute_from_command_line(sys.argv)
