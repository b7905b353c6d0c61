"""deploy/ as an operator copies it: the compose file parses and runs every role on one
PostgreSQL and one Redis, HAProxy accepts its configuration, the systemd unit waits longer than
the orderly shutdown. (The compose file cannot run here: no container engine in CI; the cluster
tests run the same topology as processes, with HAProxy started from this very haproxy.cfg.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stekker.config import Settings
from tests.cluster.harness import DEPLOY_HAPROXY, ROOT

pytestmark = pytest.mark.cluster
DEPLOY = ROOT / "deploy"


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML (a dev dependency) reads the compose file")
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def serve_roles(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    if command[:2] != ["serve", "--role"]:
        return []
    return [r.strip() for r in command[2].split(",")]


def test_compose_runs_every_role_against_one_database_and_one_redis() -> None:
    services = compose()["services"]
    roles = {name: serve_roles(s) for name, s in services.items() if serve_roles(s)}
    assert sorted(r for rs in roles.values() for r in rs) == ["api", "api", "gateway", "gateway", "worker"]
    assert {"postgres", "redis", "haproxy", "migrate"} <= set(services)
    urls = {(s["environment"]["STEKKER_DATABASE_URL"], s["environment"]["STEKKER_REDIS_URL"]) for s in
            (services[n] for n in roles)}  # fmt: skip
    assert len(urls) == 1, urls  # one PostgreSQL, one Redis for all
    ((database_url, redis_url),) = urls
    assert database_url.startswith("postgresql+asyncpg://") and redis_url.startswith("redis://")
    node_ids = [services[n]["environment"]["STEKKER_NODE_ID"] for n in roles]
    assert len(set(node_ids)) == len(node_ids), node_ids
    for name in roles:  # nobody serves before the schema is there: no race on migrations
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        grace = services[name]["stop_grace_period"]
        timeout = float(services[name]["environment"]["STEKKER_SHUTDOWN_TIMEOUT"])
        assert float(grace.rstrip("s")) > timeout
    assert services["migrate"]["command"] == ["migrate"]
    # every environment variable is a setting Stekker knows (a typo would be ignored with a warning)
    known = {f"STEKKER_{name.upper()}" for name in Settings.model_fields}
    for name in roles:
        unknown = set(services[name]["environment"]) - known
        assert not unknown, (name, unknown)


def test_haproxy_names_in_compose_and_config_agree() -> None:
    services = compose()["services"]
    config = DEPLOY_HAPROXY.read_text()
    for name, port in re.findall(r"server \S+ (\w+):(\d+)", config):
        assert name in services, name
        environment = services[name]["environment"]
        assert port in (environment.get("STEKKER_OCPP_PORT"), environment.get("STEKKER_HTTP_PORT")), name
    mounted = services["haproxy"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mounted).resolve() == DEPLOY_HAPROXY


def test_haproxy_accepts_the_configuration(tmp_path: Path) -> None:
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        pytest.fail("haproxy is needed (make test installs it: scripts/ensure-cluster-tools)")
    text = DEPLOY_HAPROXY.read_text()
    # its server names resolve on the operator's machines; here they are loopback
    local = re.sub(r"server (\S+) \w+:(\d+)", r"server \1 127.0.0.1:\2", text)
    (tmp_path / "haproxy.cfg").write_text(local)
    check = subprocess.run(
        [binary, "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "WARNING" not in check.stdout + check.stderr, check.stdout + check.stderr
    # what stations need of it
    for line in ("balance leastconn", "timeout tunnel 1h", "timeout client 1h", "timeout server 1h",
                 "on-marked-down shutdown-sessions", "http-check send meth GET uri /ready"):  # fmt: skip
        assert line in text, line
    assert re.search(r"server gateway1 \S+ check port \d+", text)


def test_systemd_unit_waits_longer_than_the_orderly_shutdown() -> None:
    unit = (DEPLOY / "stekker@.service").read_text()
    values = dict(re.findall(r"^(\w+)=(.*)$", unit, re.MULTILINE))
    assert values["KillSignal"] == "SIGTERM" and values["Restart"] == "always"
    assert "serve --role ${ROLE}" in values["ExecStart"]
    assert float(values["TimeoutStopSec"]) > Settings.model_fields["shutdown_timeout"].default
    assert "EnvironmentFile=/etc/stekker/%i.env" in unit
    example = (DEPLOY / "env.example").read_text()
    known = {f"STEKKER_{name.upper()}" for name in Settings.model_fields}
    for name in re.findall(r"^#?\s*(STEKKER_\w+)=", example, re.MULTILINE):
        assert name in known, name


def test_readme_walk_through_makes_a_configuration_haproxy_accepts(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running a cluster", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"^sed .*?> /tmp/haproxy\.cfg$", section, re.MULTILINE | re.DOTALL)
    assert found, "the walk-through's sed command"
    target = tmp_path / "haproxy.cfg"
    command = found.group(0).replace("/tmp/haproxy.cfg", str(target))
    subprocess.run(["bash", "-c", command], cwd=ROOT, check=True, timeout=30)
    text = target.read_text()
    assert not re.search(r"server \S+ (gateway|api)\d:", text), "a server left with its example name"
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    check = subprocess.run([binary, "-c", "-f", str(target)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # the ports of the walk-through's processes
    for port in ("9190 check port 9191", "9290 check port 9291", "9391", "9491"):
        assert f"127.0.0.1:{port}" in text, port
