"""The Lambda layer ships only what Lambda runs: the runtime package never imports the
development package (the CLI, the local stack, the fakes, the local DNS server)."""

import ast
import pathlib

import pytest

from mailgate import validate
from mailgate.errors import InvalidInput, PermanentError

RUNTIME = pathlib.Path(__file__).resolve().parents[2] / "layers" / "core" / "mailgate"


def _imported_modules(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_runtime_package_never_imports_the_development_package():
    files = sorted(RUNTIME.rglob("*.py"))
    assert len(files) > 20
    offending = {str(f.relative_to(RUNTIME)): sorted(m for m in _imported_modules(f) if m.split(".")[0] == "mailgate_dev")
                 for f in files}
    assert {f: m for f, m in offending.items() if m} == {}


def test_the_development_modules_are_not_in_the_layer():
    for gone in ("cli", "local", "memory.py", "dnsadvice/localserver.py"):
        assert not (RUNTIME / gone).exists(), gone


@pytest.mark.parametrize("check, value", [
    (validate.domain_name, "not a domain"), (validate.local_part, "a b"),
    (validate.address_parts, "no-at-sign"), (validate.host_name, "bad host!"),
])
def test_a_refused_name_is_a_permanent_value_error_with_one_line(check, value):
    with pytest.raises(InvalidInput) as info:
        check(value)
    assert isinstance(info.value, PermanentError) and isinstance(info.value, ValueError)
    assert repr(value) in str(info.value) and "\n" not in str(info.value)
