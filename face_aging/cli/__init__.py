"""The command line: flags (flags.py), their checks (validate.py), and what each command runs (commands.py).

`console` is the entry point of `python main.py`, the `face-aging` command and `python -m face_aging`.
"""

from face_aging.cli.commands import console

__all__ = ["console"]
