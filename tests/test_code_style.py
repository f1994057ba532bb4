"""The package's code rules that a reader relies on (CONTRIBUTING.md): every public function says
what it takes and returns (type hints) and what it is for (a docstring), and stays short."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cifar_helpers"
MAX_FUNCTION_LINES = 40
# Overrides of Keras hooks keep Keras' own signatures and documentation.
KERAS_HOOKS = {"call", "on_epoch_begin", "on_epoch_end"}


def public_functions(tree: ast.Module):
    """Module-level functions and the methods of public classes whose names do not start with _."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            yield node
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            yield from (item for item in node.body if isinstance(item, ast.FunctionDef)
                        and not item.name.startswith("_") and item.name not in KERAS_HOOKS)


def what_is_missing(function: ast.FunctionDef) -> list[str]:
    arguments = function.args
    named = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
    missing = [f"hint for {a.arg}" for a in named
               if a.annotation is None and a.arg not in ("self", "cls")]
    if function.returns is None:
        missing.append("return hint")
    if not ast.get_docstring(function):
        missing.append("docstring")
    return missing


def unhinted_or_undocumented(tree: ast.Module) -> dict[str, list[str]]:
    return {f"{function.name} (line {function.lineno})": missing
            for function in public_functions(tree) if (missing := what_is_missing(function))}


def too_long(tree: ast.Module) -> dict[str, int]:
    lengths = {function.name: function.end_lineno - function.lineno + 1
               for function in ast.walk(tree) if isinstance(function, ast.FunctionDef)}
    return {name: lines for name, lines in lengths.items() if lines > MAX_FUNCTION_LINES}


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_public_functions_have_type_hints_and_a_docstring(path):
    assert unhinted_or_undocumented(ast.parse(path.read_text())) == {}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_functions_are_short(path):
    assert too_long(ast.parse(path.read_text())) == {}


def test_the_rules_catch_a_function_that_breaks_them():
    body = "    y += 1\n" * MAX_FUNCTION_LINES
    tree = ast.parse(f"def helper(x, y: int = 1):\n{body}    return x\n"
                     "class _Private:\n    def method(self, z):\n        return z\n")
    assert unhinted_or_undocumented(tree) == {
        "helper (line 1)": ["hint for x", "return hint", "docstring"]}
    assert too_long(tree) == {"helper": MAX_FUNCTION_LINES + 2}
