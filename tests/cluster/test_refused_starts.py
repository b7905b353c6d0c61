"""A cluster role that cannot work is refused at start, in one line that says why, before
anything is written: a gateway without Redis (two gateways would each think they hold every
station), a cluster process on SQLite (one file cannot be shared by processes on two machines)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.harness import base_env
from tests.redis_server import free_port

pytestmark = pytest.mark.cluster


def refused(tmp_path: Path, roles: str, **env: str) -> tuple[int, str]:
    """Run `stekker serve --role ROLES` that must not start: exit code and stderr."""
    environment = base_env() | {"STEKKER_HTTP_PORT": str(free_port()), "STEKKER_OCPP_PORT": str(free_port())}
    environment.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "stekker.cli", "serve", "--role", roles],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode, done.stderr


def test_gateway_without_redis_is_refused_naming_the_setting(tmp_path: Path, pg_database: str) -> None:
    code, err = refused(tmp_path, "gateway", STEKKER_DATABASE_URL=pg_database)
    assert code == 2, err
    assert err.startswith("stekker cannot start: ") and err.count("\n") == 1, err
    assert "STEKKER_REDIS_URL" in err and "--role gateway" in err, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written here


def test_cluster_role_on_sqlite_is_refused(tmp_path: Path, redis_url: str) -> None:
    database = tmp_path / "stekker.db"
    for roles in ("gateway",):
        code, err = refused(
            tmp_path,
            roles,
            STEKKER_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
            STEKKER_REDIS_URL=redis_url,
        )
        assert code == 2, err
        assert err.startswith("stekker cannot start: ") and err.count("\n") == 1, err
        assert "PostgreSQL" in err and "STEKKER_REDIS_URL" in err, err
        assert not database.exists(), "a refused start created the SQLite file"


def test_hostile_role_names_are_refused_with_the_list(tmp_path: Path, pg_database: str) -> None:
    for roles in ("GATEWAY;rm -rf /",):
        code, err = refused(tmp_path, roles, STEKKER_DATABASE_URL=pg_database)
        assert code == 2, (roles, err)
        assert err.count("\n") == 1 and "gateway, api, worker" in err, (roles, err)
