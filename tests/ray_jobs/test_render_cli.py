"""The command line: a help text that explains, and bad input refused with one sentence and
status 2 before Ray starts. (A full run through the command line is in test_job.py.)"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import pytest
import ray

from ray_jobs.render import TOKEN_NOTICE, main
from stylecore.config import TransferConfig


def test_help_explains_the_job_and_offers_every_configuration_field(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for phrase in ("MANIFEST", "--output", "--data-root", "--address", "RAY_ADDRESS", "--actors", "--limit",
                   "--force", "--smoke", "skipped", "exit status", "ray job submit", "--max-retries",
                   "--start-timeout", "--row-timeout", "SIGTERM", "--gpus-per-actor", "--memory-per-actor",
                   "--min-actors", "RAY_JOBS_DECLARED_GPUS=1", "--plan", "--plan-output", "--rehash",
                   "--rebuild-state", "OUTPUT/state/"):
        assert phrase in text
    for field in dataclasses.fields(TransferConfig):
        assert f"--{field.name.replace('_', '-')}" in text


@pytest.mark.parametrize("arguments, message", [
    (["--limit", "0"], "error: --limit must be at least 1."),
    (["--size", "8"], "error: invalid configuration: size x coarse_scale must be at least 32 px, got 8 x 0.5"),
    (["--max-retries", "-1"], "error: --max-retries must not be negative."),
    (["--row-timeout", "0"], "error: --start-timeout and --row-timeout must be positive."),
    (["--min-actors", "0"], "error: --min-actors must be at least 1 and at most --actors."),
    (["--actors", "2", "--min-actors", "3"], "error: --min-actors must be at least 1 and at most --actors."),
    (["--alert-on-drift", "0"], "error: --alert-on-drift must be a positive fraction, e.g. 0.05 for 5 %."),
    (["--no-gpus", "--gpus-per-actor", "1"],
     "error: --no-gpus and --gpus-per-actor ask for different actors; give one of them."),
])
def test_bad_options_are_refused_in_one_sentence(tmp_path, capsys, arguments, message):
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,content,style\na,x.png,y.png\n", encoding="utf-8")
    assert main([str(manifest), "--output", str(tmp_path / "out"), *arguments]) == 2
    assert capsys.readouterr().err.strip() == message
    assert not ray.is_initialized() and not (tmp_path / "out").exists()


def test_a_malformed_manifest_is_refused_with_its_line_and_no_traceback(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,content,style\na,x.png,y.png\nb,x.png,y.png\na,z.png,y.png\n", encoding="utf-8")
    finished = subprocess.run([sys.executable, "-m", "ray_jobs.render", str(manifest), "--output",
                               str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    lines = [line for line in finished.stderr.splitlines() if line.startswith("error: ")]
    assert lines == [f"error: {manifest}, line 4: duplicate id 'a' (first used on line 2)."]
    assert "Traceback" not in finished.stderr
    assert not (tmp_path / "out").exists()


def test_rays_token_authentication_notice_is_kept_off_the_jobs_console(tmp_path):
    # A token and no RAY_AUTH_MODE: Ray turns token authentication on for a new local cluster and says so.
    environment = {name: value for name, value in os.environ.items() if name not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    environment["RAY_AUTH_TOKEN"] = "0123456789abcdef" * 4
    script = textwrap.dedent("""
        import logging, sys
        import ray
        from ray_jobs.render import _connect
        if sys.argv[1] == "plain":
            ray.init(address="local", logging_level=logging.WARNING)
        else:
            _connect(None)
        print("connected", ray.is_initialized())
        """)
    started = {way: subprocess.run([sys.executable, "-c", script, way], capture_output=True, text=True,
                                   timeout=180, env=environment) for way in ("plain", "job")}
    assert "connected True" in started["plain"].stdout and TOKEN_NOTICE in started["plain"].stderr
    assert "connected True" in started["job"].stdout and TOKEN_NOTICE not in started["job"].stderr, \
        started["job"].stderr


def test_plan_says_what_a_run_would_render_and_why_without_starting_ray(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(b"photo")
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,content,style\na,x.png,x.png\nb,x.png,missing.png\n", encoding="utf-8")
    arguments = [str(manifest), "--data-root", str(tmp_path), "--output", str(tmp_path / "out")]
    assert main([*arguments, "--plan-output", str(tmp_path / "plan.csv")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["plan: 2 rows, 2 to render, 0 skipped as already done; why: new 2; hashed 1 new or changed "
                       "input file(s), 0.0 MiB", f"plan: 2 row(s) written to {tmp_path / 'plan.csv'}"]
    assert (tmp_path / "plan.csv").read_text().splitlines()[1:] == [
        f'"a","new","{tmp_path / "x.png"}","{tmp_path / "x.png"}",,', f'"b","new","{tmp_path / "x.png"}",'
        f'"{tmp_path / "missing.png"}",,']
    assert not ray.is_initialized() and not (tmp_path / "out").exists()
    assert main([*arguments, "--plan-output", str(tmp_path / "plan.txt")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --plan-output {tmp_path / 'plan.txt'}: give a file ending " \
                                              "in .parquet or .csv."
