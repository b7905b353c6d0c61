"""The `stekker` command as the demo's banner and our hints name it works when typed as it is,
from where the person is: `.venv/bin/stekker` in the project's root after `make demo` (it is not
on the PATH), the absolute path elsewhere, plain `stekker` once the venv is activated."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_shutdown_signal import free_port

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def without_venv_on_path() -> dict[str, str]:
    """The environment of a fresh shell: the venv not activated, no STEKKER_* of the test run."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("STEKKER_")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != VENV_BIN.resolve()
    )
    return env


def command_named(cwd: Path, env: dict[str, str]) -> str:
    code = "from stekker.invocation import stekker_command; print(stekker_command())"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def venv_command() -> Path:
    script = VENV_BIN / "stekker"
    if not script.is_file():
        pytest.skip(f"no {script}: the tests run outside the project's venv")
    return script


def test_named_as_it_is_typed_from_where_one_is(venv_command: Path, tmp_path: Path) -> None:
    fresh_shell = without_venv_on_path()
    if venv_command.parent.parent.parent == ROOT:  # the project's own .venv (make test, CI)
        assert command_named(ROOT, fresh_shell) == ".venv/bin/stekker"
    assert command_named(tmp_path, fresh_shell) == str(venv_command)  # not below: absolute
    activated = {**fresh_shell, "PATH": f"{VENV_BIN}{os.pathsep}{fresh_shell['PATH']}"}
    assert command_named(tmp_path, activated) == "stekker"
    for cwd, env in ((ROOT, fresh_shell), (tmp_path, fresh_shell), (tmp_path, activated)):
        named = command_named(cwd, env)
        done = subprocess.run(f"{named} --help", shell=True, cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0 and "serve" in done.stdout, (named, done.stderr)


async def test_every_command_the_demo_banner_names_works_verbatim(venv_command: Path, tmp_path: Path) -> None:
    ocpp_port, http_port = free_port(), free_port()
    env = {
        **without_venv_on_path(),
        "STEKKER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/demo.db",  # not a stekker.db in the root
        "STEKKER_OCPP_PORT": str(ocpp_port),
        "STEKKER_HTTP_PORT": str(http_port),
        "COLUMNS": "250",  # the banner's lines unwrapped
    }
    demo = await asyncio.create_subprocess_exec(
        str(venv_command), "demo", "--stations", "1",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    banner: list[str] = []
    try:
        assert demo.stdout is not None
        while not banner or not banner[-1].startswith("Starting"):
            line = await asyncio.wait_for(demo.stdout.readline(), 120)
            assert line, f"the demo ended early: {banner}"
            banner.append(line.decode().rstrip())
        text = "\n".join(banner)
        tried = re.search(r"try, in another shell: (.+)", text)
        first_user = re.search(r"\(first: (.+?) user add NAME --role admin\)", text)
        activate = re.search(r"\(or first `(source [^`]+)`", text)
        assert tried and first_user and activate, text
        commands = [c.strip() for c in tried.group(1).split("|")]
        assert len(commands) == 3
        for command in commands:
            assert command.startswith(first_user.group(1) + " ")
            done = await asyncio.create_subprocess_shell(
                command, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
            )
            _, err = await asyncio.wait_for(done.communicate(), 120)
            assert done.returncode == 0, (command, err.decode())
        after_activate = await asyncio.create_subprocess_exec(
            "bash", "-c", f"{activate.group(1)} && stekker station list",
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(after_activate.communicate(), 120)
        assert after_activate.returncode == 0, err.decode()
        assert "SIM001" in out.decode()
    finally:
        if demo.returncode is None:
            demo.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(demo.wait(), 60)
            except TimeoutError:
                demo.kill()
                await demo.wait()


def test_a_command_without_a_server_names_the_serve_command_as_typed_here(venv_command: Path) -> None:
    env = {**without_venv_on_path(), "STEKKER_HTTP_PORT": str(free_port()), "COLUMNS": "250"}
    done = subprocess.run(
        [str(venv_command), "station", "list"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    named = command_named(ROOT, without_venv_on_path())
    assert f"(is `{named} serve` running? STEKKER_API_URL?)" in done.stderr
