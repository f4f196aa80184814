"""README.md cannot drift from the code: its commands are checked against the programs they run.

Every command in the README's shell code blocks and in its tables (quoted as code, starting
``python`` or ``make``) is taken apart (line continuations joined,
comments dropped, ``&&``/``;``/``|`` and a ``--`` entrypoint separating commands) and checked by
its program:

- ``python -m MODULE ...``, ``python SCRIPT.py ...`` and the console scripts of ``pyproject.toml`` (``stylecore``,
  ``stylecore-batch``, ``stylecore-report``), and ``ray``: the command's leading words (a
  subcommand, a positional path) followed by ``--help`` must exit 0, list every long option the
  command uses, and, where the help lists an option's choices (``--opt {a,b}``), include the value
  the README gives it;
- ``make``: every target is a rule of the Makefile and every variable one it uses;
- ``NAME=value`` before a command: the variable is read somewhere in the code or the Makefile.

A command of any other program fails the test, so a new kind of command gets a check before it
gets into the guide. The manifest builder's example on the example data is also run for real and
must write exactly the manifest the repository ships, and the README's links and picture must exist.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ray_jobs.manifest import read_manifest
from stylecore.config import TransferConfig
from tests.conftest import SHARED

REPOSITORY = Path(__file__).resolve().parents[1]
README = REPOSITORY / "README.md"
CODE_FOLDERS = ("stylecore", "ray_jobs")
SHELL_BLOCK = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
TABLE_COMMAND = re.compile(r"`((?:python|make) [^`]+)`")
"""A command quoted in a table cell (the measured figures' ``printed by`` column)."""
SEPARATORS = frozenset({"&&", "||", ";", "|", "&"})
README_SHARED = "../shared"
"""Where the README (like the Makefile) expects the shared folder; the tests use ``$STYLECORE_SHARED``."""


@dataclasses.dataclass(frozen=True)
class Command:
    """One command of the README: the variables set before it and its words, as the shell splits them."""

    environment: tuple[str, ...]
    words: tuple[str, ...]

    def __str__(self) -> str:
        return shlex.join(self.words)

    def long_options(self) -> list[tuple[str, str | None]]:
        """Each ``--option`` the command uses, with the word after it when that is not an option."""
        options = []
        for index, word in enumerate(self.words):
            if word.startswith("--") and len(word) > 2:
                name, equals, value = word.partition("=")
                following = self.words[index + 1] if index + 1 < len(self.words) else None
                value = value if equals else (following if following and not following.startswith("-") else None)
                options.append((name, value))
        return options

    def leading_words(self, skip: int) -> list[str]:
        """The words after the program's first ``skip`` ones, up to the first option."""
        leading = []
        for word in self.words[skip:]:
            if word.startswith("-"):
                break
            leading.append(word)
        return leading


def shell_commands(markdown: str) -> list[Command]:
    """Every command in ``markdown``'s shell code blocks, then those quoted in its tables, in order."""
    lines = [line for block in SHELL_BLOCK.findall(markdown) for line in block.replace("\\\n", " ").splitlines()]
    lines += [span for row in markdown.splitlines() if row.startswith("|") for span in TABLE_COMMAND.findall(row)]
    commands = []
    for line in lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        commands += _split_commands(list(lexer))
    return commands


def _split_commands(words: list[str]) -> list[Command]:
    commands, current = [], []
    for word in [*words, ";"]:
        if word in SEPARATORS or word == "--":
            if current:
                environment = []
                while current and ASSIGNMENT.match(current[0]):
                    environment.append(current.pop(0).split("=", 1)[0])
                commands.append(Command(environment=tuple(environment), words=tuple(current)))
            current = []
        else:
            current.append(word)
    return commands


def console_scripts() -> dict[str, str]:
    """``pyproject.toml``'s console scripts: name to ``module:function``."""
    with open(REPOSITORY / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["scripts"]


def help_command(command: Command) -> list[str] | None:
    """The argv that prints the help of the program and subcommand ``command`` runs; None for ``make``."""
    program = command.words[0]
    scripts = console_scripts()
    if program in ("python", "python3") and command.words[1:2] == ("-m",):
        return [sys.executable, "-m", command.words[2], *command.leading_words(3), "--help"]
    if program in ("python", "python3") and command.words[1].endswith(".py"):
        return [sys.executable, command.words[1], "--help"]
    if program in scripts:
        module, function = scripts[program].split(":")
        launcher = f"import sys; from {module} import {function}; sys.argv[0] = {program!r}; sys.exit({function}())"
        return [sys.executable, "-c", launcher, *command.leading_words(1), "--help"]
    if program == "ray":
        return [str(Path(sys.executable).with_name("ray")), *command.leading_words(1), "--help"]
    if program == "make":
        return None
    raise AssertionError(f"README command of an unchecked program: {command}; teach tests/test_readme.py "
                         "how to check it")


@functools.cache
def help_text(argv: tuple[str, ...]) -> str:
    """What ``argv`` prints, run from the repository root with its code first on the path; it must exit 0."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    completed = subprocess.run(argv, cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, f"{shlex.join(argv)} failed: {completed.stderr[-2000:]}"
    return completed.stdout


def option_choices(help_output: str, option: str) -> list[str] | None:
    """The choices the help lists for ``option`` (``--opt {a,b}``), or None."""
    match = re.search(rf"(?<![\w-]){re.escape(option)} \{{([^}}]*)\}}", help_output)
    return match.group(1).split(",") if match else None


def check_make_command(command: Command) -> None:
    """Every target of a ``make`` command is a rule of the Makefile, every ``NAME=value`` a variable it uses."""
    makefile = (REPOSITORY / "Makefile").read_text(encoding="utf-8")
    rules = set(re.findall(r"^([A-Za-z][\w.-]*):", makefile, re.MULTILINE))
    for word in command.words[1:]:
        if "=" in word:
            assert f"$({word.split('=')[0]})" in makefile, f"{word} is not a variable of the Makefile: {command}"
        else:
            assert word in rules, f"make target {word!r} is not in the Makefile: {command}"


COMMANDS = shell_commands(README.read_text(encoding="utf-8"))


def test_the_readme_has_commands_of_each_kind() -> None:
    programs = {command.words[0] for command in COMMANDS}
    assert {"make", "stylecore", "python", "ray"} <= programs
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_command_options_are_in_its_help(command: Command) -> None:
    check_options(command)


def check_options(command: Command) -> None:
    """Every long option of ``command`` is in its program's help, with a value among the choices listed."""
    argv = help_command(command)
    if argv is None:
        check_make_command(command)
        return
    output = help_text(tuple(argv))
    missing = [option for option, _ in command.long_options()
               if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", output)]
    assert not missing, f"{missing} not in the help of: {command}"
    for option, value in command.long_options():
        choices = option_choices(output, option)
        if choices is not None and value is not None:
            assert value in choices, f"{option} {value}: the help offers {choices}: {command}"


@pytest.mark.parametrize("command", [command for command in COMMANDS if command.environment], ids=str)
def test_environment_variables_are_read_by_the_code(command: Command) -> None:
    sources = [(REPOSITORY / "Makefile").read_text(encoding="utf-8")]
    for folder in CODE_FOLDERS:
        sources += [path.read_text(encoding="utf-8") for path in (REPOSITORY / folder).rglob("*.py")]
    for name in command.environment:
        assert any(name in source for source in sources), f"{name} is read nowhere in the code: {command}"


def test_manifest_builder_example_writes_the_shipped_manifest(tmp_path: Path) -> None:
    examples = [command for command in COMMANDS if "--root" in command.words
                and command.words[command.words.index("--root") + 1] == f"{README_SHARED}/data/dpst"]
    assert examples, "the README has no manifest builder example on the example data"
    for number, command in enumerate(examples):
        words = [word.replace(README_SHARED, str(SHARED)) for word in command.words]
        shipped = REPOSITORY / words[words.index("--output") + 1]
        written = tmp_path / f"{number}{shipped.suffix}"
        words[words.index("--output") + 1] = str(written)
        completed = subprocess.run([sys.executable, *words[1:]], cwd=REPOSITORY, capture_output=True, text=True,
                                   env={**os.environ, "PYTHONPATH": str(REPOSITORY)}, timeout=300)
        assert completed.returncode == 0, completed.stderr
        assert written.read_bytes() == shipped.read_bytes()
        rows = read_manifest(written, data_root=SHARED / "data" / "dpst", config=TransferConfig())
        assert [row.id for row in rows] == [f"pair{n:02d}" for n in range(1, 61)]
        assert all(Path(path).is_file() for row in rows
                   for path in (row.content, row.style, row.content_mask, row.style_mask))


def test_links_and_the_picture_exist() -> None:
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)\)", text)
    assert "docs/pipeline.svg" in targets
    for target in targets:
        assert (REPOSITORY / target).is_file(), f"README links to {target}, which is not in the repository"
    picture = (REPOSITORY / "docs" / "pipeline.svg").read_text(encoding="utf-8")
    assert picture.startswith("<svg") and "<image" not in picture and len(picture) < 20_000
