"""The package as pip sees it: pyproject.toml against requirements*.txt, the single-sourced version, the console
command, and what the wheel holds. (CI's .ci/check_wheel also installs the wheel into a clean virtualenv and ages a
face with it.)"""

import fnmatch
import glob
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from helpers import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra brings tomli
    import tomli as tomllib

PROJECT = "face-aging"


def pyproject():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def normalize(requirement):
    """One requirement as a comparable string: PEP 503 name, sorted extras and specifiers, no spaces, one quote kind.
    `name[extras] specifiers ; marker` -> `name[extras]specifiers;marker`."""
    text, _, marker = requirement.partition(";")
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*(.*?)\s*", text)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    name, extras, specifiers = match.groups()
    name = re.sub(r"[-_.]+", "-", name).lower()
    extras = ",".join(sorted(e.strip() for e in (extras or "").split(",") if e.strip()))
    specifiers = ",".join(sorted(s.strip().replace(" ", "") for s in specifiers.split(",") if s.strip()))
    marker = re.sub(r"\s+", "", marker).replace('"', "'")
    return name + (f"[{extras}]" if extras else "") + specifiers + (f";{marker}" if marker else "")


def read_requirements(path):
    """The normalized requirements of a requirements file, `-r FILE` lines followed (relative to the file)."""
    out = set()
    with open(path) as f:
        for line in f:
            line = line.split(" #")[0].strip() if not line.lstrip().startswith("#") else ""
            if not line:
                continue
            if line.startswith(("-r ", "--requirement ")):
                out |= read_requirements(os.path.join(os.path.dirname(path), line.split(None, 1)[1]))
            elif line.startswith("-"):
                raise ValueError(f"{path}: pip option {line!r} has no pyproject.toml counterpart")
            else:
                out.add(normalize(line))
    return out


def expand(requirements, extras, project=PROJECT):
    """Normalized requirements, with the project's own extras (`face-aging[photos]`) replaced by their contents."""
    out = set()
    for requirement in requirements:
        n = normalize(requirement)
        own = re.fullmatch(re.escape(project) + r"\[([^\]]*)\]", n)
        if own:
            for extra in own.group(1).split(","):
                out |= expand(extras[extra], extras, project)
        else:
            out.add(n)
    return out


def disagreements(root):
    """How requirements*.txt in `root` differ from its pyproject.toml: requirements.txt against the dependencies,
    requirements-NAME.txt against the extra NAME, and an extra without its file or a file without its extra."""
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    extras = project.get("optional-dependencies", {})
    problems = []

    def compare(path, declared, where):
        listed = read_requirements(path)
        for r in sorted(declared - listed):
            problems.append(f"{os.path.basename(path)} lacks {r} ({where})")
        for r in sorted(listed - declared):
            problems.append(f"{os.path.basename(path)} has {r}, which {where} does not")

    compare(os.path.join(root, "requirements.txt"), expand(project["dependencies"], extras),
            "pyproject.toml's [project] dependencies")
    files = {os.path.basename(p)[len("requirements-"):-len(".txt")]: p
             for p in glob.glob(os.path.join(root, "requirements-*.txt"))}
    for name in sorted(set(files) | set(extras)):
        if name not in extras:
            problems.append(f"requirements-{name}.txt has no extra {name!r} in pyproject.toml")
        elif name not in files:
            problems.append(f"pyproject.toml's extra {name!r} has no requirements-{name}.txt")
        else:
            compare(files[name], expand(extras[name], extras), f"pyproject.toml's extra {name!r}")
    return problems


def test_requirements_files_agree_with_pyproject():
    assert disagreements(REPO) == [], ("pyproject.toml is the truth for the dependencies; make requirements*.txt "
                                       "list the same")


def test_a_disagreement_is_found(tmp_path):
    """The check itself: a changed bound, a missing package and an extra without its file are each reported."""
    with open(os.path.join(REPO, "pyproject.toml")) as f:
        text = f.read()
    changed = text.replace('"numpy>=1.26,<3"', '"numpy>=1.26,<2"').replace('"pytest>=8,<10",', "")
    changed = changed.replace("[project.optional-dependencies]", '[project.optional-dependencies]\ndocs = ["mkdocs"]')
    assert changed.count("numpy") == text.count("numpy") and "mkdocs" in changed
    (tmp_path / "pyproject.toml").write_text(changed)
    for name in ("requirements.txt", "requirements-photos.txt", "requirements-eval.txt", "requirements-test.txt",
                 "requirements-app.txt", "requirements-video.txt"):
        with open(os.path.join(REPO, name)) as f:
            (tmp_path / name).write_text(f.read())
    problems = disagreements(str(tmp_path))
    assert "requirements.txt lacks numpy<2,>=1.26 (pyproject.toml's [project] dependencies)" in problems
    assert "requirements.txt has numpy<3,>=1.26, which pyproject.toml's [project] dependencies does not" in problems
    assert "requirements-test.txt has pytest<10,>=8, which pyproject.toml's extra 'test' does not" in problems
    assert "pyproject.toml's extra 'docs' has no requirements-docs.txt" in problems
    assert len(problems) == 4, problems


def test_normalize():
    assert normalize('Absl_Py >= 2.0 , <3') == "absl-py<3,>=2.0"
    assert normalize("tomli>=1.1; python_version < \"3.11\"") == "tomli>=1.1;python_version<'3.11'"
    assert normalize("face-aging[test, photos]") == "face-aging[photos,test]"


def test_version_is_single_sourced():
    import face_aging
    project = pyproject()
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "face_aging.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", face_aging.__version__)


def test_python_range_matches_the_readme():
    assert pyproject()["project"]["requires-python"] == ">=3.10,<3.13"
    with open(os.path.join(REPO, "README.md")) as f:
        assert "Python 3.10-3.12" in f.read()


def _flag_lines(output):
    """The flag lines of absl's --helpfull (`  --name: ...` and their continuations), without the usage text above."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("--"))
    return [line for line in lines[start:] if "main.py" not in line and "face-aging" not in line]


def test_console_command_takes_main_pys_flags():
    """The [project.scripts] entry point, called the way pip's generated `face-aging` script calls it, lists exactly
    the flags of `python main.py`, and reports a bad flag the same way."""
    target = pyproject()["project"]["scripts"]["face-aging"]
    module, function = target.split(":")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    script = (f"import sys; from {module} import {function} as entry; sys.argv[0] = 'face-aging'; "
              f"sys.exit(entry())")

    def both(*args):
        console = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, env=env, capture_output=True,
                                 text=True, timeout=120)
        main = subprocess.run([sys.executable, os.path.join(REPO, "main.py"), *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        return console, main

    console, main = both("--helpfull")
    assert console.returncode == main.returncode, console.stderr + main.stderr  # absl's help exits with 1
    assert "--testdir" in console.stdout and "--is_train" in console.stdout
    assert _flag_lines(console.stdout) == _flag_lines(main.stdout)
    assert console.stdout.startswith("Face aging with CAAE and PAGAN")  # its usage text, not an empty one

    console, main = both("--model", "nope")
    assert console.returncode == main.returncode == 2
    assert console.stderr == main.stderr.replace("main.py:", "face-aging:")
    assert console.stderr.startswith("face-aging: error: --model=nope")


def test_python_dash_m_runs_the_same_command():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, "-m", "face_aging", "--is_train", "False"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().endswith("python -m face_aging: error: --testdir is required in test mode "
                                        "(--is_train False) and with --eval: a folder of face images")


def _package_files():
    """Every file of the face_aging package in this tree, relative to REPO (caches left out)."""
    out = []
    for root, dirs, files in os.walk(os.path.join(REPO, "face_aging")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        out += [os.path.relpath(os.path.join(root, f), REPO).replace(os.sep, "/") for f in files
                if not f.endswith(".pyc")]
    return sorted(out)


def test_package_data_covers_every_data_file():
    """Fast: every non-Python file of the package (the bundled model, its card) matches a package-data pattern."""
    patterns = pyproject()["tool"]["setuptools"]["package-data"]["face_aging"]
    data = [f[len("face_aging/"):] for f in _package_files() if not f.endswith(".py")]
    assert "pretrained/caae_utkface64/model.data-00000-of-00001" in data
    unmatched = [f for f in data if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert unmatched == [], f"add them to [tool.setuptools.package-data] in pyproject.toml: {unmatched}"


@pytest.mark.slow
def test_the_wheel_holds_the_package_the_bundled_model_and_the_command(tmp_path):
    """`pip wheel .` (a few seconds): the wheel has every file of face_aging (modules and the bundled model, byte for
    byte) and nothing else of the clone, the metadata's dependencies and extras, and the console command."""
    pytest.importorskip("pip")
    source = tmp_path / "source"  # what setuptools reads, as in a fresh clone (no stale build/ of this tree)
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, name), source / name)
    shutil.copytree(os.path.join(REPO, "face_aging"), source / "face_aging",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
                            "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=600,
                           cwd=str(tmp_path))
    assert built.returncode == 0, built.stdout + built.stderr
    import face_aging
    (wheel,) = glob.glob(str(tmp_path / f"face_aging-{face_aging.__version__}-py3-none-any.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        dist_info = f"face_aging-{face_aging.__version__}.dist-info/"
        shipped = sorted(n for n in names if not n.startswith(dist_info))
        assert shipped == _package_files()
        with open(os.path.join(REPO, "face_aging/pretrained/caae_utkface64/model.data-00000-of-00001"), "rb") as f:
            assert z.read("face_aging/pretrained/caae_utkface64/model.data-00000-of-00001") == f.read()
        entry_points = z.read(dist_info + "entry_points.txt").decode()
        metadata = z.read(dist_info + "METADATA").decode()
    assert "[console_scripts]\nface-aging = face_aging.cli:console" in entry_points
    assert "Requires-Python: <3.13,>=3.10" in metadata
    for extra in ("photos", "eval", "test"):
        assert f"Provides-Extra: {extra}" in metadata
    assert "Requires-Dist: tensorflow<2.22,>=2.16" in metadata


@pytest.mark.parametrize("cwd_inside", [True, False])
def test_bundled_card_path(tmp_path, monkeypatch, cwd_inside):
    """The model card's path in the console line: relative in a clone run from its root, absolute from elsewhere (an
    installed package)."""
    from face_aging.models.caae import bundled
    monkeypatch.chdir(REPO if cwd_inside else tmp_path)
    shown = bundled.card_path()
    if cwd_inside:
        assert shown == os.path.join("face_aging", "pretrained", "caae_utkface64", "MODEL_CARD.md")
    else:
        assert shown == bundled.CARD and os.path.isabs(shown) and os.path.isfile(shown)
    assert shown in bundled.describe()
