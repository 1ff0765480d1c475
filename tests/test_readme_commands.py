"""The README's two commands exist, and CI runs exactly the README's test command."""

import re

from tests.conftest import ROOT


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "the Quick start section has a ```sh block with the commands"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.MULTILINE))


def test_readme_documents_the_two_commands() -> None:
    assert _quick_start_commands() == ["make run", "make test"]
    assert {"run", "test"} <= _make_targets()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = _quick_start_commands()[1]
    script = (ROOT / ".ci" / "run").read_text()
    commands = [
        line.strip()
        for line in script.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    make_lines = [line for line in commands if re.search(r"(^|[\s;&|(])make(\s|$)", line)]
    assert make_lines == [test_command]
