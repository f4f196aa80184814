"""The job on a cluster scaled to zero: Ray's fake multi-node autoscaler (provider ``fake_multinode``)
with a head that offers no CPU for work and worker node types started on demand, 0 to 2 nodes each.

The pip wheel lacks the example config that ``ray.cluster_utils.AutoscalingCluster`` reads, so the
config is written here. The head is started with ``ray start --head`` on free ports, in a temporary
folder of its own, and stopped by ending the processes whose command lines name that folder (the
head's servers and the worker nodes the autoscaler started): ``ray stop`` would end every Ray
cluster on the machine. One cluster for the module; each test waits for the scale-down.

``ray start`` needs token authentication here (``RAY_AUTH_MODE=token``, with the machine's token in
``~/.ray/auth_token``, which every local Ray uses). A process reads the mode once, when it imports
Ray, so everything that talks to this cluster runs in a fresh process started with it: the job, and
the queries of the cluster's nodes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import socket
import tempfile
import time
from pathlib import Path

import pytest
from local_clusters import copy_example_pair, free_port, read_rows, wait_for, write_manifest

from ray_jobs.devices import DECLARED_GPU_DEVICE, DECLARED_GPUS_VARIABLE

pytestmark = pytest.mark.slow  # the nodes' start and the scale-down the autoscaler times are the floor
ROWS = ("a1", "a2", "a3", "a4")
HEAD_NODE_TYPE = "ray.head.default"
NODE_TYPES = {"gpu_worker": {"CPU": 1, "GPU": 1}, "cpu_worker": {"CPU": 1}}
FAKE_HEAD_NODE_ID = "f" * 51 + "00000"
"""The fake provider names the head fff...f00000 and the nodes it starts fff...f00001, fff...f00002."""
IDLE_MINUTES = 0.1
"""The autoscaler removes a node idle this long (6 s): the scale-down is seen within a test."""


def autoscaling_config(gcs_address: str) -> dict:
    workers = {name: {"resources": {**resources, "object_store_memory": 100 * 2**20}, "node_config": {},
                      "min_workers": 0, "max_workers": 2} for name, resources in NODE_TYPES.items()}
    return {"cluster_name": "ray-jobs-test", "max_workers": 4, "idle_timeout_minutes": IDLE_MINUTES,
            "upscaling_speed": 2.0, "head_node_type": HEAD_NODE_TYPE,
            "provider": {"type": "fake_multinode", "gcs_address": gcs_address, "launch_multiple": True,
                         # no SSH to run setup commands over: the nodes are ready when their raylet is
                         "disable_node_updaters": True, "disable_launch_config_check": True,
                         # the nodes share this machine's address: the autoscaler must tell them apart
                         # by id, or it never sees one idle and never removes it
                         "use_node_id_as_ip": True},
            "available_node_types": {HEAD_NODE_TYPE: {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
                                     **workers},
            "auth": {"ssh_user": "ray"}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [],
            "file_mounts_sync_continuously": False, "initialization_commands": [], "setup_commands": [],
            "head_setup_commands": [], "worker_setup_commands": [], "head_start_ray_commands": [],
            "worker_start_ray_commands": []}


def processes_naming(text: str) -> list[int]:
    """Ids of the processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def end_processes_naming(text: str) -> None:
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_naming(text):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + 10
        while processes_naming(text) and time.monotonic() < deadline:
            time.sleep(0.5)


def ray_environment() -> dict[str, str]:
    """This process's environment, with Ray's token authentication on (module docstring)."""
    return {**os.environ, "RAY_AUTH_MODE": "token"}


def ray_command(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.fixture(scope="module")
def autoscaling_cluster(tmp_path_factory):
    """The GCS address of a fake autoscaling cluster."""
    subprocess.run([ray_command("ray"), "get-auth-token", "--generate"], check=True, capture_output=True)
    folder = Path(tempfile.mkdtemp(prefix="rj", dir="/tmp"))  # short: Ray's socket paths have a length limit
    port = free_port()
    address = f"{socket.gethostbyname(socket.gethostname())}:{port}"
    config = tmp_path_factory.mktemp("autoscaling") / "config.json"
    config.write_text(json.dumps(autoscaling_config(address)), encoding="utf-8")
    command = [ray_command("ray"), "start", "--head", f"--port={port}", "--num-cpus=0",
               f"--autoscaling-config={config}", f"--temp-dir={folder}", "--include-dashboard=false",
               "--object-store-memory=80000000", "--disable-usage-stats",
               *(f"--{name}={free_port()}" for name in ("ray-client-server-port", "node-manager-port",
                                                        "object-manager-port", "metrics-export-port",
                                                        "runtime-env-agent-port", "dashboard-agent-listen-port",
                                                        "dashboard-agent-grpc-port"))]
    try:
        subprocess.run(command, check=True, capture_output=True, env={**ray_environment(), "RAY_FAKE_CLUSTER": "1"},
                       timeout=120)
        yield address
    finally:
        end_processes_naming(str(folder))
        shutil.rmtree(folder, ignore_errors=True)


def on_cluster(address: str, expression: str):
    """The value of the Python ``expression`` (JSON-able) evaluated in a fresh process connected to ``address``."""
    code = f"import json, ray; ray.init(address={address!r}); print('value:', json.dumps({expression}))"
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              env=ray_environment(), check=True)
    # Ray prints its own lines (the autoscaler's events) on the same stdout
    [value] = [line.removeprefix("value: ") for line in finished.stdout.splitlines() if line.startswith("value: ")]
    return json.loads(value)


def started_by_the_autoscaler(node_id: str) -> bool:
    return node_id[:51] == FAKE_HEAD_NODE_ID[:51] and node_id != FAKE_HEAD_NODE_ID


def autoscaled_nodes(address: str) -> list[dict]:
    """The live nodes the autoscaler started (all but the head), with their resources."""
    return [node for node in on_cluster(address, "[node for node in ray.nodes() if node['Alive']]")
            if node["NodeID"] != FAKE_HEAD_NODE_ID]


@pytest.fixture
def data_root(tmp_path) -> Path:
    return copy_example_pair(tmp_path)


def render(address: str, data_root: Path, folder: Path, *options: str) -> subprocess.CompletedProcess:
    """``python -m ray_jobs.render`` of rows :data:`ROWS` at smoke size on the cluster, into ``folder/out``."""
    command = [sys.executable, "-m", "ray_jobs.render", str(write_manifest(folder, ROWS)), "--data-root",
               str(data_root), "--output", str(folder / "out"), "--address", address, "--smoke",
               "--stage1-iterations", "2", "--stage2-iterations", "2", "--memory-per-actor", "0", *options]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              env={**ray_environment(), DECLARED_GPUS_VARIABLE: "1"})
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def test_gpu_actors_asked_of_a_cluster_scaled_to_zero_make_it_start_gpu_nodes(autoscaling_cluster, data_root,
                                                                                tmp_path):
    assert autoscaled_nodes(autoscaling_cluster) == []
    finished = render(autoscaling_cluster, data_root, tmp_path, "--gpus-per-actor", "1", "--actors", "2")
    [metadata] = (tmp_path / "out" / "metadata").glob("*.parquet")
    rows = read_rows(metadata)
    assert {row["status"] for row in rows.values()} == {"ok"}
    # the head declares no GPU (and no CPU): a row holding GPU 0 ran on a node the autoscaler started for it
    assert {(row["device"], tuple(row["gpu_ids"])) for row in rows.values()} == {(DECLARED_GPU_DEVICE, ("0",))}
    assert "starting 2 actor(s) on 1 node(s): 2 x (1 CPU(s), 1 GPU(s) and 0.0 GiB" in finished.stdout
    started = on_cluster(autoscaling_cluster, "[(n['NodeID'], n['Resources'].get('GPU', 0)) for n in ray.nodes()]")
    assert any(started_by_the_autoscaler(node_id) and gpus == 1 for node_id, gpus in started), "the autoscaler started no node"
    wait_for(lambda: not autoscaled_nodes(autoscaling_cluster), 180, "the scale-down after the job")


def test_cpu_actors_of_the_default_shape_are_spread_over_the_nodes_started_for_them(autoscaling_cluster,
                                                                                     data_root, tmp_path):
    wait_for(lambda: not autoscaled_nodes(autoscaling_cluster), 180, "the scale-down of earlier tests' nodes")
    before = {node["NodeID"] for node in on_cluster(autoscaling_cluster, "ray.nodes()")}
    # rows start once both actors are up, so each gets rows (one could render all four small rows alone)
    render(autoscaling_cluster, data_root, tmp_path, "--actors", "2", "--min-actors", "2")
    [metadata] = (tmp_path / "out" / "metadata").glob("*.parquet")
    rows = read_rows(metadata)
    assert {row["status"] for row in rows.values()} == {"ok"}
    assert len({row["worker"] for row in rows.values()}) == 2
    assert {row["device"] for row in rows.values()} == {"CPU"}
    # two nodes started for the job, by the autoscaler, of the CPU-only type: the GPU type was not needed
    started = [node for node in on_cluster(autoscaling_cluster, "ray.nodes()") if node["NodeID"] not in before]
    assert len(started) == 2 and all(started_by_the_autoscaler(node["NodeID"]) for node in started)
    assert {node["Resources"].get("GPU", 0) for node in started} == {0}
    wait_for(lambda: not autoscaled_nodes(autoscaling_cluster), 180, "the scale-down after the job")
