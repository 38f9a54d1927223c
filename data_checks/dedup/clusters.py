"""From verified pairs and exact-text groups to clusters, and which records a clean copy drops."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Union

import numpy as np

from data_checks.dedup.config import DedupResult


def exact_groups(keys: np.ndarray, has_words: np.ndarray) -> tuple[np.ndarray, dict[int, list[int]]]:
    """The representatives (the first record of each distinct normalised text, ascending) and, for each text
    held by several records, first record -> all its records (ascending). Records without words are neither."""
    present = np.flatnonzero(has_words)
    _, first, inverse, counts = np.unique(keys[present], return_index=True, return_inverse=True,
                                          return_counts=True)
    reps = np.sort(present[first])
    groups: dict[int, list[int]] = {}
    if (counts > 1).any():
        by_group = present[np.argsort(inverse, kind="stable")]  # members of each group, ascending
        ends = np.cumsum(counts)
        for group in np.flatnonzero(counts > 1).tolist():
            members = by_group[ends[group] - counts[group]:ends[group]].tolist()
            groups[members[0]] = members
    return reps, groups


def components(edges: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """Union-find: root -> members, for the nodes touched by `edges`."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    for i, j in edges:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
        parent.setdefault(i, i)
        parent.setdefault(j, j)
    groups: dict[int, list[int]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    return groups


def clusters_of(verified: list[tuple[int, int, float]], exact: dict[int, list[int]]) -> list[list[int]]:
    """Connected components of the verified pairs between representatives, each representative expanded to
    its exact copies, plus the exact groups linked to nothing; largest first, then by first member."""
    groups = list(components((i, j) for i, j, _ in verified).values())
    linked = {rep for members in groups for rep in members}
    groups += [[rep] for rep in exact if rep not in linked]
    clusters = [sorted(x for rep in members for x in exact.get(rep, [rep])) for members in groups]
    clusters.sort(key=lambda c: (-len(c), c[0]))
    return clusters


def dropped_indices(result_or_clusters: Union[DedupResult, Sequence[Sequence[int]]]) -> set[int]:
    """The record indices a clean copy leaves out: in each cluster (every one, not only the listed ones),
    every member but the first (lowest index)."""
    clusters = result_or_clusters.clusters if isinstance(result_or_clusters, DedupResult) else result_or_clusters
    return {x for cluster in clusters for x in sorted(cluster)[1:]}


def keep_indices(result_or_clusters: Union[DedupResult, Sequence[Sequence[int]]], n: int) -> list[int]:
    """The record indices to keep when writing a clean copy: all of range(n) except, in each cluster,
    every member but the first (lowest index). Uses every cluster, not only the listed ones."""
    drop = dropped_indices(result_or_clusters)
    return [i for i in range(n) if i not in drop]
