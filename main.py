"""Face aging with CAAE: `python main.py --model caae --is_train` trains, `--is_train False --testdir DIR` ages faces.

Parses the flags and hands over to the library (face_aging.cli); see README.md for every flag.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter hides the run's own output

from absl import app  # noqa: E402

from face_aging import cli  # noqa: E402

if __name__ == "__main__":
    cli.define_flags()
    app.run(cli.main, flags_parser=cli.parse_flags)
