"""Shared fixtures: the example pairs of ``data/dpst`` at a small working size, an S3-compatible
object store (moto's server, in this process, on a free port; a test dependency only), and a plain
local Ray (2 CPUs, no GPU) started once for the session, which each module that needs no cluster of
its own connects to (a new Ray costs seconds on this 2-core machine).

The shared folder (example data and SqueezeNet weights) is ``$STYLECORE_SHARED`` when set, else
``../shared`` beside the repository, as on the development and CI machines. It is required: a
test that needs it fails with the reason rather than being skipped.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pyarrow.fs import S3FileSystem

from stylecore.pair import PreparedPair, prepare_pair

SHARED = Path(os.environ.get("STYLECORE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DPST_DATA = SHARED / "data" / "dpst"
WEIGHTS_DIR = SHARED / "weights"
if not DPST_DATA.is_dir() or not WEIGHTS_DIR.is_dir():
    raise RuntimeError(f"the shared folder is incomplete at {SHARED}: set STYLECORE_SHARED to the folder "
                       "holding data/dpst and weights")
os.environ.setdefault("STYLECORE_WEIGHTS_DIR", str(WEIGHTS_DIR))
# One authentication mode for every Ray the tests start or join, here or in a subprocess. ray.init(address="local")
# turns token authentication on in this process's environment when the machine has a token, and leaves it on after
# ray.shutdown(): a driver started afterwards in token mode, joining a cluster started before without it, had every
# actor it created destroyed at once (its owner looked dead to the cluster). The tests that need tokens set them.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


COSTLIEST_FIRST = ("ray_jobs/test_job.py", "ray_jobs/test_cluster_changes.py", "ray_jobs/test_cluster.py",
                   "ray_jobs/test_autoscaling.py", "ray_jobs/test_overlap.py", "ray_jobs/test_object_storage.py",
                   "stylecore/test_cli.py", "ray_jobs/test_run_record.py", "stylecore/test_fallbacks.py",
                   "stylecore/test_label_maps.py", "ray_jobs/test_gpu_actors.py", "stylecore/test_transfer.py")
"""The modules of most of a minute or more (``--durations``), costliest first. pytest-xdist's two workers
(pyproject's ``-n 2 --dist loadfile --no-loadscope-reorder``) take whole modules in collection order, each
the next as it finishes one: the long ones start first, and the two workers end close together."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(COSTLIEST_FIRST)}
    tests = Path(__file__).parent
    items.sort(key=lambda item: rank.get(item.path.relative_to(tests).as_posix(), len(rank)))


def example_pair_paths(number: int) -> dict[str, Path]:
    """The four files of example pair ``number`` (1 to 60): photos and colour-coded masks."""
    return {"content": DPST_DATA / "input" / f"in{number}.png",
            "style": DPST_DATA / "style" / f"tar{number}.png",
            "content_mask": DPST_DATA / "segmentation" / f"in{number}.png",
            "style_mask": DPST_DATA / "segmentation" / f"tar{number}.png"}


@pytest.fixture(scope="session")
def example_pair() -> Callable[[int, int], PreparedPair]:
    """``example_pair(number, long_side)``: example pair ``number`` prepared at ``long_side`` px."""
    def load(number: int, long_side: int) -> PreparedPair:
        return prepare_pair(**example_pair_paths(number), long_side=long_side, min_segment_fraction=0.001)

    return load


@pytest.fixture
def stylecore_cli(capsys) -> Callable[..., subprocess.CompletedProcess]:
    """``stylecore_cli(*arguments)``: the ``stylecore`` command's ``main`` run in this process, its exit
    status and output as a :class:`subprocess.CompletedProcess`.

    For what a command computes, writes and says: the same code as the command a user runs, without a
    new process's seconds of TensorFlow import and tracing. What only a new process shows (TensorFlow's
    own start-up lines, a traceback, the interpreter's exit status) is checked with a real one
    (``tests/stylecore/test_cli.py``).
    """
    from stylecore.cli import main

    def run(*arguments: object) -> subprocess.CompletedProcess:
        capsys.readouterr()
        command = [str(argument) for argument in arguments]
        status = main(command)
        output, errors = capsys.readouterr()
        return subprocess.CompletedProcess(["stylecore", *command], status, output, errors)

    return run


@dataclasses.dataclass(frozen=True)
class ObjectStore:
    """An S3-compatible server for tests (moto, in this process) and how to reach it."""

    endpoint: str
    environment: dict[str, str]
    """The variables a process needs to use it: dummy credentials, region, ``AWS_ENDPOINT_URL``."""

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` (if new); its URI."""
        S3FileSystem(endpoint_override=self.endpoint, allow_bucket_creation=True).create_dir(name)
        return f"s3://{name}"

    def set_auth(self, *, enforced: bool) -> None:
        """Make the server check credentials (unknown keys are refused) or accept any request."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset-auth", method="POST",
                                         data=b"0" if enforced else b"inf", headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture(scope="session")
def object_store() -> Iterator[ObjectStore]:
    """moto's S3 server on a free port, with this process's environment pointed at it for the session.

    The environment is set before any test module starts Ray, so local Ray workers inherit it.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    environment = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                   "AWS_ENDPOINT_URL": endpoint}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        yield ObjectStore(endpoint=endpoint, environment=environment)
    server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_ports() -> dict[str, int]:
    """A free port for each of a node's servers that would otherwise take a fixed default (several
    engineers' tests share this machine, so no test Ray takes Ray's defaults)."""
    return {name: free_port() for name in ("node_manager_port", "object_manager_port", "metrics_export_port",
                                           "metrics_agent_port", "runtime_env_agent_port",
                                           "dashboard_agent_listen_port")}


@pytest.fixture(scope="session")
def local_cluster(object_store) -> Iterator[str]:
    """The GCS address of a local Ray of 2 CPUs and no GPU, up for the rest of the session once a test asks.

    Started after the object store's variables are set, so its workers inherit them (the job does not
    forward credentials). Nothing is connected to it here: see :func:`local_ray`.
    """
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "num_gpus": 0, "object_store_memory": 100 * 2**20, "include_dashboard": False,
        "gcs_server_port": free_port(), **node_ports()})
    yield cluster.address
    cluster.shutdown()


@pytest.fixture(scope="module")
def local_ray(local_cluster) -> Iterator[str]:
    """This process connected to the session's local Ray for the module (its GCS address); disconnected
    after it, so that the modules that build clusters of their own can connect to those."""
    import ray

    ray.init(address=local_cluster, logging_level=logging.WARNING)
    yield local_cluster
    ray.shutdown()
