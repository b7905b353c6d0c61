"""constraints.txt is what a fresh machine installs: it must pin every dependency, within the
bounds pyproject.toml declares (the bounds exclude releases with public advisories), and it
must be what this run actually tests."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    return [Requirement(line) for line in lines]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in (ROOT / "constraints.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {raw!r} is not an exact pin (name==version)"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_dependency_is_pinned_within_its_bounds() -> None:
    pins = _pins()
    for req in _declared():
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is declared in pyproject.toml but not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]}, outside pyproject.toml's {req.specifier}"
        )


def test_the_environment_is_the_pinned_one() -> None:
    """The run tests what a fresh machine gets (make installs with -c constraints.txt)."""
    differing = []
    for name, version in _pins().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue  # a platform-only package (uvloop off Windows is pinned, not always present)
        if installed != version:
            differing.append(f"{name}: installed {installed}, pinned {version}")
    assert not differing, "rebuild .venv (make clean test) or refresh the pins: " + "; ".join(differing)
