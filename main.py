"""Face aging with CAAE: `python main.py --model caae --is_train` trains, `--is_train False --testdir DIR` ages faces.

Parses the flags and hands over to the library (face_aging.cli); see docs/flags.md for every flag. The installed
`face-aging` command and `python -m face_aging` run the same function, with the same flags.
"""

from face_aging import cli

if __name__ == "__main__":
    cli.console()
