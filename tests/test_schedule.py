"""The nightly schedule cannot drift from the job: the README's crontab and ``deploy/``'s CronJob.

The CronJob file must parse as YAML into a CronJob whose pod runs ``ray job submit`` with
``python -m ray_jobs.render`` as the entrypoint; every command of its script and of the README's
crontab lines is checked as ``tests/test_readme.py`` checks the README's shell commands (each long
option is in the program's ``--help``).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.test_readme import README, Command, check_options, shell_commands

CRONJOB = Path(__file__).resolve().parents[1] / "deploy" / "nightly-cronjob.yaml"
CRONTAB_BLOCK = re.compile(r"^```crontab\n(.*?)^```", re.MULTILINE | re.DOTALL)
CHECKED_PROGRAMS = ("python", "ray")
"""The programs whose options are checked; the rest of the script is plain POSIX shell."""


def script_commands(script: str) -> list[Command]:
    """The commands of a shell script of python and ray (the other lines' words are left out)."""
    commands = shell_commands(f"```sh\n{script}\n```\n")
    return [command for command in commands if command.words and command.words[0] in CHECKED_PROGRAMS]


def cronjob_script() -> str:
    cronjob = yaml.safe_load(CRONJOB.read_text(encoding="utf-8"))
    assert (cronjob["apiVersion"], cronjob["kind"]) == ("batch/v1", "CronJob")
    spec = cronjob["spec"]
    assert len(spec["schedule"].split()) == 5 and spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["command"] == ["/bin/sh", "-c"]
    return container["args"][0]


def crontab_commands() -> list[Command]:
    """The commands of the README's crontab lines (the five time fields dropped; variable lines skipped)."""
    (block,) = CRONTAB_BLOCK.findall(README.read_text(encoding="utf-8"))
    entries = [line.split(None, 5)[5] for line in block.splitlines()
               if line.strip() and not line.startswith("#") and not re.match(r"[A-Z_]+=", line)]
    assert entries, "the README's crontab block has no entry"
    assert not any("%" in entry for entry in entries), "cron turns % into a newline: escape it as \\%"
    return [command for entry in entries for command in script_commands(entry)]


def test_the_cronjob_submits_the_render_job_to_a_ray_cluster():
    commands = script_commands(cronjob_script())
    assert [command.words[:3] for command in commands] == [
        ("ray", "job", "submit"), ("python", "-m", "ray_jobs.render"), ("ray", "job", "status")]
    assert "--alert-on-drift" in commands[1].words


def test_every_option_of_the_cronjob_is_in_its_programs_help():
    for command in script_commands(cronjob_script()):
        check_options(command)


def test_the_readme_crontab_renders_then_reports_and_its_options_are_in_the_help():
    commands = crontab_commands()
    assert [command.words[:3] for command in commands] == [("python", "-m", "ray_jobs.render"),
                                                           ("python", "-m", "ray_jobs.report")]
    for command in commands:
        check_options(command)
