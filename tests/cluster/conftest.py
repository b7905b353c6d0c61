"""The cluster tests' shared fixture and their failure reports (every process's log tail)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tests.cluster.harness import Cluster


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        # `cluster` and `empty_cluster` are one object: its logs once
        clusters = {id(v): v for v in getattr(item, "funcargs", {}).values() if isinstance(v, Cluster)}
        for cluster in clusters.values():
            report.sections.append(("cluster logs", cluster.logs()))


@pytest.fixture(scope="module")
def empty_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """An empty cluster (database, Redis, no process yet) for the module; closed at its end."""
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start_backends()
        yield cluster
    finally:
        cluster.close()
