"""Whether a SLURM partition can hold a job's shape, from `sinfo`: CPUs, GPUs and memory per node, node count.

SLURM accepts a job no node of its partition can ever run and leaves it `PENDING (PartitionConfig)` (or
`Resources`) forever; `scripts/submit.py` asks `sinfo` first and refuses such a request with the key to change.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from gatetune.errors import ConfigError

_GPU = re.compile(r"gpu(?::[^:,(]+)?:(\d+)")
_MEM = re.compile(r"^(\d+)([KMGT]?)$", re.IGNORECASE)
_MB_PER = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024, "": 1}


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    memory_mb: int
    gpus: int


def gpu_count(gres: str) -> int:
    """GPUs in a `sinfo %G` field: `gpu:8`, `gpu:h100:4(S:0-1)`, `gpu:a100:2,gpu:h100:2`; `(null)`: none."""
    return sum(int(n) for n in _GPU.findall(gres))


def memory_mb(value: str) -> int:
    """`--mem` as SLURM reads it (a number of MB, or with a K/M/G/T suffix), in MB."""
    match = _MEM.match(value.strip())
    if match is None:
        raise ConfigError("slurm.mem", f"{value!r} is not a SLURM memory size (e.g. 500G, 64000, or 0 for all of it)")
    return int(int(match.group(1)) * _MB_PER[match.group(2).upper()])


def parse_sinfo(text: str) -> dict[str, list[Node]]:
    """Nodes per partition from `sinfo -h -N -o '%P|%N|%c|%m|%G'`; the default partition is also under ''."""
    partitions: dict[str, list[Node]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        partition, name, cpus, memory, gres = line.split("|")
        node = Node(name, int(cpus.rstrip("+")), int(memory.rstrip("+")), gpu_count(gres))
        for key in {partition.rstrip("*"), *([""] if partition.endswith("*") else [])}:
            partitions.setdefault(key, []).append(node)
    return partitions


def query_sinfo() -> str | None:
    """What `sinfo` says of the cluster's nodes; None where it cannot be asked (then nothing is checked)."""
    try:
        done = subprocess.run(["sinfo", "-h", "-N", "-o", "%P|%N|%c|%m|%G"], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def check_fits(partition: str | None, nodes: int, cpus_per_task: int, gpus_per_node: int, mem: str | None,
               sinfo: str) -> None:
    """Raise ConfigError naming the slurm key when no set of `nodes` nodes of the partition can hold the job (one
    task per node with `cpus_per_task` CPUs, `gpus_per_node` GPUs and `mem` memory each)."""
    label = f"partition {partition!r}" if partition else "the default partition"
    available = parse_sinfo(sinfo)
    members = list({n.name: n for n in available.get(partition or "", [])}.values())
    if not members:
        known = ", ".join(sorted(p for p in available if p)) or "none"
        raise ConfigError("slurm.partition", f"{label} has no nodes in sinfo (partitions: {known})")
    need_mb = memory_mb(mem) if mem is not None else 0
    fits = [n for n in members if n.cpus >= cpus_per_task and n.gpus >= gpus_per_node
            and (need_mb == 0 or n.memory_mb >= need_mb)]
    if len(fits) >= nodes:
        return
    largest = max(members, key=lambda n: (n.cpus, n.gpus, n.memory_mb))
    for key, wanted, have, unit in (("cpus_per_task", cpus_per_task, max(n.cpus for n in members), "CPUs"),
                                    ("gpus_per_node", gpus_per_node, max(n.gpus for n in members), "GPUs"),
                                    ("mem", need_mb, max(n.memory_mb for n in members), "MB of memory")):
        if wanted > have:
            raise ConfigError(f"slurm.{key}", f"{wanted} {unit} a node, but no node of {label} has more than "
                              f"{have} (largest: {largest.name}); set slurm.{key} to at most {have}"
                              + (" (0 trains on CPU processes over gloo)" if key == "gpus_per_node" else ""))
    raise ConfigError("slurm.nodes", f"{nodes} nodes asked, but {label} has {len(fits)} node(s) that can hold "
                      f"{cpus_per_task} CPUs, {gpus_per_node} GPUs" + (f" and {mem} memory" if mem else "")
                      + f" each (of {len(members)})")
