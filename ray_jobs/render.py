"""The batch command: ``python -m ray_jobs.render MANIFEST --output DIR [options]``.

It is also what ``ray job submit --working-dir . -- python -m ray_jobs.render ...`` runs on a
cluster's head node. Argument parsing lives here and only here; the work is :func:`ray_jobs.job.run_job`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

import ray

from ray_jobs.devices import DECLARED_GPUS_VARIABLE
from ray_jobs.errors import JobError, ManifestError
from ray_jobs.job import JobOptions, JobSummary, plan_run, plan_text, run_job
from ray_jobs.manifest import Manifest, read_manifest
from ray_jobs.plan import plan_file_format, write_plan
from ray_jobs.resources import DEFAULT_CPUS_PER_ACTOR
from stylecore.cli import add_config_arguments, config_from_arguments, use_storage_endpoint
from stylecore.config import TransferConfig
from stylecore.errors import StorageError
from stylecore.storage import absolute, check_reachable, join

SMOKE_CHANGES = {"size": 64, "coarse_scale": 1.0, "stage1_iterations": 5, "stage2_iterations": 5}
"""What ``--smoke`` does to the configuration: tiny images (stage 1 at full size, since SqueezeNet
needs more than 32 px) and a few iterations, to check a cluster and a manifest in a minute."""
SMOKE_ROWS = 4
"""Rows a ``--smoke`` run renders unless ``--limit`` says otherwise."""

DESCRIPTION = """\
Photographic style transfer (stylecore) over a manifest of content/style/mask rows, on Ray.

Each row's two-stage transfer runs on a Ray actor that holds a loaded feature extractor. Under
--output go one image per row (images/<id>.png) and one Parquet file per run
(metadata/run-<run id>.parquet) with a row per item: inputs and their hashes, configuration,
status (ok, error, skipped), error message, mask diagnostics, losses and timings.

Rerunning the same manifest into the same --output skips the rows already done and renders only
new, failed and changed ones (a changed photo, mask or configuration value, new weights or
rendering code, a deleted or altered image); --force redoes all. A rerun reads the output's state
(OUTPUT/state/) and the listings of the input and image folders, and hashes only the files whose
size or modification time changed; --plan says what a run would render and why, starting nothing.

Connects to the Ray cluster named by --address or $RAY_ADDRESS (as under `ray job submit`), else
starts Ray on this machine. Manifest format: see manifests/README.md.

MANIFEST, --data-root, --output and the paths in the manifest may be local paths or object-store
URIs (s3://bucket/prefix, gs://, hdfs://); workers read their inputs from the store and write their
images to it, so the nodes need no shared disk. Credentials come from the standard chain of each
node (for S3: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the instance role);
--storage-endpoint (or AWS_ENDPOINT_URL) names an S3-compatible store."""

EPILOG = """\
exit status: 0 every row ok or skipped; 1 some rows failed (see their error_message);
2 the job was refused or stopped (bad manifest, bad option, manifest or output unreachable, output
folder in use by a live run, workers cannot start, no actor up within --start-timeout, a metadata file cannot be written);
3 no row failed but --alert-on-drift flagged the medians (see the run record);
130 interrupted by Ctrl-C, 143 by SIGTERM (`ray job stop`): the rows finished so far are in the
metadata and the actors are stopped; rerun the same command to render the rest.

Every run that reaches its rows ends by writing its run record, metadata/_summary-<run id>.json:
its counts by status and by reason rendered, seconds, the medians of the output metrics over the
rows it rendered and their change against the last run that rendered rows (ray_jobs/README.md).

A row whose worker process or node died is rendered again on a live worker, up to --max-retries
times; a row that fails by itself (bad input, NaN) is not retried.

On an autoscaling cluster, say the actors' shape (--gpus-per-actor, --memory-per-actor) and how many
(--actors): the actors the nodes up now cannot hold wait as requests the autoscaler starts nodes for,
and rows go to each actor as it comes up. RAY_JOBS_DECLARED_GPUS=1 lets an actor given a GPU that
exists only as a declared resource (a fake provider, a test) run on its CPU (device column
"CPU (declared GPU)"); without it such an actor stops the job.

examples:
  python -m ray_jobs.render manifests/dpst-smoke.csv --data-root ../shared/data/dpst --output runs/smoke --smoke
  python -m ray_jobs.render manifests/dpst-all.jsonl --data-root ../shared/data/dpst --output runs/dpst
  ray job submit --working-dir . -- python -m ray_jobs.render manifests/dpst-all.jsonl \\
      --data-root /shared/dpst --output /shared/runs/dpst
  python -m ray_jobs.render s3://photos/manifests/nightly.csv --data-root s3://photos/dpst \\
      --output s3://renders/nightly
  python -m ray_jobs.render s3://photos/manifests/nightly.csv --data-root s3://photos/dpst \\
      --output s3://renders/nightly --gpus-per-actor 1 --actors 8 --start-timeout 900   # GPU nodes on demand"""


def build_parser() -> argparse.ArgumentParser:
    defaults = JobOptions(output=".")
    parser = argparse.ArgumentParser(prog="python -m ray_jobs.render", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", metavar="MANIFEST", help="manifest file (path or URI): .jsonl, .csv or .parquet")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder or URI prefix for images/ and metadata/; reuse it to resume or re-render")
    parser.add_argument("--data-root", default=".", metavar="DIR",
                        help="folder or URI prefix the manifest's relative paths start from (default: the current "
                             "folder; under `ray job submit` give an absolute path or a URI)")
    parser.add_argument("--storage-endpoint", metavar="URL",
                        help="S3-compatible endpoint for s3:// locations (MinIO, Ceph, R2), e.g. http://minio:9000 "
                             "(default: $AWS_ENDPOINT_URL, else AWS); passed on to the workers")
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a new local Ray)")
    parser.add_argument("--actors", type=int, metavar="N",
                        help="number of actors to keep while rows remain; those the nodes up now cannot hold are "
                             "requests an autoscaler sees and starts nodes for (default: one per GPU of the nodes up "
                             "at start; without GPUs, their CPUs divided by --cpus-per-actor)")
    parser.add_argument("--min-actors", type=int, default=defaults.min_actors, metavar="N",
                        help="start rendering once this many actors are up (default: %(default)s); the others "
                             "join as they come up")
    parser.add_argument("--cpus-per-actor", type=int, metavar="N",
                        help=f"CPUs (and TensorFlow threads) per actor (default: {DEFAULT_CPUS_PER_ACTOR} "
                             "for CPU actors, an equal share for GPU actors)")
    parser.add_argument("--gpus-per-actor", type=int, metavar="N",
                        help="GPUs per actor whatever nodes are up at start, 0 for CPU actors; give it on a cluster "
                             "that starts GPU nodes on demand (default: 1 where a node up at start has a GPU, else 0)")
    parser.add_argument("--memory-per-actor", type=float, metavar="GIB",
                        help="GiB of Ray memory each actor reserves, 0 for none, as an autoscaler whose node types "
                             "declare no memory needs (default: 1 GiB + 3 KiB per working pixel)")
    parser.add_argument("--no-gpus", action="store_true", help="run CPU actors even where the cluster has GPUs "
                        "(the same as --gpus-per-actor 0)")
    parser.add_argument("--weights", metavar="FILE", help="weights file of the extractor (default: SqueezeNet from "
                        "$STYLECORE_WEIGHTS_DIR or ~/.cache/stylecore/weights); for vgg19 also 'random'")
    parser.add_argument("--max-retries", type=int, default=defaults.max_retries, metavar="N",
                        help="times a row whose worker process or node died is rendered again "
                             f"(default: {defaults.max_retries})")
    parser.add_argument("--start-timeout", type=float, default=defaults.start_timeout, metavar="SECONDS",
                        help="give up when no actor is up after this long, e.g. on a cluster without room "
                             f"for one (default: {defaults.start_timeout:g})")
    parser.add_argument("--row-timeout", type=float, default=defaults.row_timeout, metavar="SECONDS",
                        help="a row running longer becomes an error row and its actor is replaced "
                             f"(default: {defaults.row_timeout:g})")
    parser.add_argument("--alert-on-drift", type=float, metavar="FRACTION",
                        help="flag the run (in its record, on the console, and with exit status 3 when no row "
                             "failed) when a median of the output metrics moved by more than FRACTION, e.g. 0.05 "
                             "for 5 %%, in either direction, against the last run that rendered rows")
    parser.add_argument("--limit", type=int, metavar="N", help="render only the manifest's first N rows")
    parser.add_argument("--force", action="store_true", help="redo every row, even those already done")
    parser.add_argument("--plan", action="store_true",
                        help="say what a run would render and why (counts by reason), then stop: reads the "
                             "manifest, the output's state and the file listings, starts no Ray, writes nothing")
    parser.add_argument("--plan-output", metavar="FILE",
                        help="with --plan (implied): write the rows a run would render, each with its reason and "
                             "inputs, to FILE (.parquet or .csv; a path or URI)")
    parser.add_argument("--rehash", action="store_true",
                        help="hash every input file, not only those whose size or modification time changed: for "
                             "files rewritten with their size and time restored, which a listing cannot see")
    parser.add_argument("--rebuild-state", action="store_true",
                        help="build the output's state (OUTPUT/state/) anew from its run history in metadata/, "
                             "for a state file that is damaged; nothing done is rendered again")
    parser.add_argument("--smoke", action="store_true",
                        help=f"smoke test: size {SMOKE_CHANGES['size']}, {SMOKE_CHANGES['stage1_iterations']}+"
                             f"{SMOKE_CHANGES['stage2_iterations']} iterations, first {SMOKE_ROWS} rows "
                             "(configuration options and --limit still apply); use its own --output")
    add_config_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, check the manifest, connect to Ray, run the job; the process's exit status."""
    arguments = build_parser().parse_args(argv)
    try:
        use_storage_endpoint(arguments.storage_endpoint)
        entries = _entries(arguments)
        check_reachable(arguments.output)
        options = JobOptions(output=absolute(arguments.output), actors=arguments.actors,
                             min_actors=arguments.min_actors, cpus_per_actor=arguments.cpus_per_actor,
                             gpus_per_actor=0 if arguments.no_gpus else arguments.gpus_per_actor,
                             memory_per_actor=arguments.memory_per_actor, use_gpus=not arguments.no_gpus,
                             force=arguments.force, rehash=arguments.rehash, rebuild_state=arguments.rebuild_state,
                             weights=arguments.weights, max_retries=arguments.max_retries,
                             start_timeout=arguments.start_timeout, row_timeout=arguments.row_timeout,
                             alert_on_drift=arguments.alert_on_drift, require_visible_gpu=os.environ.get(DECLARED_GPUS_VARIABLE) != "1")
        _check_limits(options, arguments)
        if arguments.plan or arguments.plan_output:
            return _plan(entries, options, arguments.plan_output)
        _connect(arguments.address)
        signal.signal(signal.SIGTERM, _interrupt)
        summary = run_job(entries, options=options)
    except (ManifestError, JobError, StorageError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        name = "SIGTERM" if _TERMINATED else "Ctrl-C"
        print(f"interrupted by {name}: the rows finished so far are in {join(arguments.output, 'metadata')} and the "
              "workers are stopped; rerun the same command to render the rest.", file=sys.stderr)
        return 128 + (signal.SIGTERM if _TERMINATED else signal.SIGINT)
    finally:
        ray.shutdown()
    return exit_status(summary)


def exit_status(summary: JobSummary) -> int:
    """0 every row ok or skipped, 1 some rows failed, 3 none failed but the medians drifted (the epilog)."""
    if summary.failed:
        return 1
    return 3 if summary.record is not None and summary.record.drifted else 0


_TERMINATED: list[int] = []
"""The SIGTERM received, if any (Ray may re-raise the interrupt without its arguments)."""


def _interrupt(signum: int, _frame: object) -> None:
    """SIGTERM (what ``ray job stop`` sends) ends the run the way Ctrl-C does: metadata written, actors stopped."""
    _TERMINATED.append(signum)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _check_limits(options: JobOptions, arguments: argparse.Namespace) -> None:
    if arguments.no_gpus and arguments.gpus_per_actor:
        raise ValueError("--no-gpus and --gpus-per-actor ask for different actors; give one of them.")
    if options.min_actors < 1 or options.actors is not None and options.min_actors > options.actors:
        raise ValueError("--min-actors must be at least 1 and at most --actors.")
    if options.max_retries < 0:
        raise ValueError("--max-retries must not be negative.")
    if options.start_timeout <= 0 or options.row_timeout <= 0:
        raise ValueError("--start-timeout and --row-timeout must be positive.")
    if options.alert_on_drift is not None and not options.alert_on_drift > 0:
        raise ValueError("--alert-on-drift must be a positive fraction, e.g. 0.05 for 5 %.")


def _plan(manifest: Manifest, options: JobOptions, plan_output: str | None) -> int:
    """``--plan``: print what a run would render and why; write the rows to ``plan_output`` if given."""
    if plan_output is not None:
        plan_file_format(plan_output)
    _, plan = plan_run(manifest, options=options, stream=sys.stdout)
    print(f"plan: {plan_text(plan)}")
    if plan_output is not None:
        write_plan(plan, plan_output)
        print(f"plan: {len(plan.render)} row(s) written to {plan_output}")
    return 0


def _entries(arguments: argparse.Namespace) -> Manifest:
    base = TransferConfig().replace(**SMOKE_CHANGES) if arguments.smoke else TransferConfig()
    config = config_from_arguments(arguments, base)
    if arguments.limit is not None and arguments.limit < 1:
        raise ValueError("--limit must be at least 1.")
    entries = read_manifest(arguments.manifest, data_root=arguments.data_root, config=config)
    limit = arguments.limit if arguments.limit is not None else (SMOKE_ROWS if arguments.smoke else None)
    return entries[:limit]


TOKEN_NOTICE = "Token authentication is enabled"
"""The start of the warning Ray logs when it turns token authentication on by itself (a token in
``~/.ray/auth_token`` and ``RAY_AUTH_MODE`` unset): news about Ray's set-up, not the job's, and a
safe state, so it is kept off the job's console. The warning that authentication is *disabled*
is left alone."""


def _connect(address: str | None) -> None:
    # Without an address Ray would join the latest cluster `ray start` left on this machine, which
    # may be someone else's: "local" starts a new one, as the help says.
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(
        lambda record: not record.getMessage().startswith(TOKEN_NOTICE))
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as error:
        raise JobError(f"cannot join the Ray cluster at {address or '$RAY_ADDRESS'}: "
                       f"{' '.join(str(error).split())}") from None


if __name__ == "__main__":
    sys.exit(main())
