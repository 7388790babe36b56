"""Face aging with CAAE and PAGAN (`python -m face_aging`, the same command line as `python main.py` and the
installed `face-aging` command): `--model caae --is_train` trains, `--is_train False --testdir DIR` ages faces.
See docs/flags.md for every flag.
"""

from face_aging import cli

if __name__ == "__main__":
    cli.console()
