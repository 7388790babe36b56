"""The layout's promises (docs/layout.md), checked on the source: the models never import inference, no package
module imports itself back through others, and no consumer of a trained model branches on which model it is."""

import ast
import os
import re

import pytest

from helpers import REPO

PACKAGE = os.path.join(REPO, "face_aging")


def modules():
    """{dotted name: path} of every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                found[dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted] = path
    return found


def imports(path, known):
    """The package modules `path` imports, at its top or inside a function (a lazy import is still a dependency)."""
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        out |= {name for name in names if name in known}
    return out


def graph():
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_the_models_never_import_inference_or_evaluation():
    for name, targets in graph().items():
        if name.startswith(("face_aging.models.caae", "face_aging.models.pagan", "face_aging.models", "face_aging.models.estimator")):
            wrong = sorted(t for t in targets if t.startswith(("face_aging.inference", "face_aging.eval",
                                                               "face_aging.cli")))
            assert not wrong, f"{name} imports {wrong}"


def test_no_import_cycle_between_modules():
    edges = graph()
    # A package's __init__ importing its own modules is how packages re-export; it is no cycle of design.
    edges = {name: {t for t in targets if not name.startswith(t + ".") and not t.startswith(name + ".")}
             for name, targets in edges.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("folder", ["eval", "inference"])
def test_no_model_name_branch_outside_the_models_and_the_picker(folder):
    branch = re.compile(r"""(==|!=|\bin\b)\s*\(?\s*["'](caae|pagan|combined)["']|["'](caae|pagan)["']\s*(==|!=)""")
    for root, _, files in os.walk(os.path.join(PACKAGE, folder)):
        for name in files:
            if not name.endswith(".py") or name == "agers.py":
                continue
            text = open(os.path.join(root, name)).read()
            found = [line.strip() for line in text.splitlines() if branch.search(line)]
            assert not found, f"{folder}/{name} branches on a model's name: {found}"
