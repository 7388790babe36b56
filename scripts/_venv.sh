# Sourced (POSIX sh) by scripts/demo and scripts/test from the repository's root: makes sure .venv holds a Python
# 3.10-3.12 with this package installed (editable, so edits take effect) and the extras asked for.
# A .venv that already has them for this pyproject.toml is reused without running pip. PYTHON=/path/to/python3.X
# chooses the interpreter a new .venv is made with.

VENV=.venv
IN_RANGE='import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))'

# Prints the path of the first Python 3.10-3.12: $PYTHON if set, else python3, python3.12, python3.11, python3.10.
find_python() {
    candidates=${PYTHON:-python3 python3.12 python3.11 python3.10}
    for candidate in $candidates; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "$IN_RANGE" 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: no Python 3.10-3.12 found (tried: $candidates); install one, or set PYTHON=/path/to/python3.X" >&2
    return 1
}

# setup_venv EXTRAS: EXTRAS is "" (the package alone) or a pyproject extra such as "test".
setup_venv() {
    extras=$1
    if ! { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$IN_RANGE" 2>/dev/null; }; then
        if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
            echo "error: $VENV exists and is not a virtualenv; move it away" >&2
            return 1
        fi
        python=$(find_python) || return 1
        if [ -e "$VENV" ]; then
            echo "$VENV has no working Python 3.10-3.12: making it again"
            rm -rf "$VENV"
        fi
        echo "Making $VENV with $python ($("$python" --version 2>&1))"
        "$python" -m venv "$VENV" || {
            echo "error: '$python -m venv' failed (Debian and Ubuntu: apt install python3-venv)" >&2
            return 1
        }
    fi
    # One stamp per extra: a copy of the pyproject.toml it was installed from (the test extra includes the core).
    stamp="$VENV/.face_aging-installed${extras:+-$extras}"
    if cmp -s pyproject.toml "$stamp"; then
        return 0
    fi
    if [ -z "$extras" ] && cmp -s pyproject.toml "$VENV/.face_aging-installed-test"; then
        return 0
    fi
    target=.
    [ -n "$extras" ] && target=".[$extras]"
    echo "Installing the package and its dependencies into $VENV (pip install -e \"$target\"; minutes the first time)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e "$target" || return 1
    cp pyproject.toml "$stamp"
}
