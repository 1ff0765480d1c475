"""The lock files are not stale: each dependency that pyproject.toml names (runtime, and the dev
extra) is pinned in them at a version it allows, the runtime lock holds nothing that only the
dev extra asks for, and the two locks agree. When one of these fails, run `make lock`.

No network: the locks and pyproject.toml are read as text; the extras of a locked package are
read from its installed metadata (`make install` installs exactly the dev lock; in another
environment that check is skipped)."""

import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
# How uv's annotations name this project as the reason for a pin.
PROJECT = "releaselog (pyproject.toml)"


@dataclass
class Pin:
    name: NormalizedName
    version: Version
    marker: Marker | None
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)

    def applies(self, environment: dict[str, str] | None = None) -> bool:
        return self.marker is None or self.marker.evaluate(environment)


def _read_lock(path: Path) -> list[Pin]:
    """The pins of a `uv pip compile --generate-hashes` file, with their hashes and `# via`."""
    pins: list[Pin] = []
    in_via = False
    for raw in path.read_text().splitlines():
        line = raw.strip().removesuffix("\\").strip()
        if not line:
            continue
        if not raw[0].isspace():
            in_via = False
            if line.startswith("#"):
                continue
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"{path.name}: {line} is not an exact pin"
            pins.append(
                Pin(
                    canonicalize_name(requirement.name),
                    Version(specifier.version),
                    requirement.marker,
                )
            )
        elif line.startswith("--hash="):
            pins[-1].hashes.append(line.removeprefix("--hash="))
        elif line.startswith("# via"):
            reason = line.removeprefix("# via").strip()
            in_via = not reason
            if reason:
                pins[-1].via.append(reason)
        elif in_via and line.startswith("#"):
            pins[-1].via.append(line.lstrip("#").strip())
    return pins


def _pyproject_requirements() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(text) for text in project["dependencies"]]
    dev = [Requirement(text) for text in project["optional-dependencies"]["dev"]]
    return runtime, dev


def _names(requirements: list[Requirement]) -> set[NormalizedName]:
    return {canonicalize_name(requirement.name) for requirement in requirements}


def _pins_here(pins: list[Pin], name: NormalizedName) -> list[Pin]:
    """The pins of `name` that pip would install on this machine."""
    return [pin for pin in pins if pin.name == name and pin.applies()]


RUNTIME, DEV = _pyproject_requirements()
LOCKS = {
    "requirements.lock": (RUNTIME_LOCK, RUNTIME),
    "requirements-dev.lock": (DEV_LOCK, RUNTIME + DEV),
}


@pytest.mark.parametrize("lock_name", LOCKS)
def test_every_dependency_is_pinned_at_a_version_pyproject_allows(lock_name: str) -> None:
    path, requirements = LOCKS[lock_name]
    pins = _read_lock(path)
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        here = _pins_here(pins, name)
        assert here, f"{requirement} is not in {lock_name}: run `make lock`"
        for pin in here:
            assert requirement.specifier.contains(pin.version, prereleases=True), (
                f"{lock_name} pins {name}=={pin.version}, outside `{requirement}`: run `make lock`"
            )


@pytest.mark.parametrize("lock_name", LOCKS)
def test_the_extras_pyproject_asks_for_are_locked(lock_name: str) -> None:
    """E.g. `uvicorn[standard]` brings uvloop: the packages each named extra requires are pinned."""
    path, requirements = LOCKS[lock_name]
    pins = _read_lock(path)
    for requirement in requirements:
        if not requirement.extras:
            continue
        name = canonicalize_name(requirement.name)
        (pin,) = _pins_here(pins, name)
        installed = metadata.distribution(name)
        if Version(installed.version) != pin.version:
            # Not the lock's environment (e.g. a --resolution lowest-direct check of the bounds):
            # this package's extras may differ in the locked version.
            pytest.skip(f"{name} {installed.version} is installed, the lock has {pin.version}")
        for extra in requirement.extras:
            for text in installed.requires or []:
                needed = Requirement(text)
                if needed.marker is None or not needed.marker.evaluate({"extra": extra}):
                    continue  # not part of this extra, or not for this platform
                if needed.marker.evaluate({"extra": ""}):
                    continue  # a plain dependency, not the extra's
                assert _pins_here(pins, canonicalize_name(needed.name)), (
                    f"{lock_name} lacks {needed.name}, which {name}[{extra}] requires: "
                    "run `make lock`"
                )


def test_the_runtime_lock_holds_no_dev_only_package() -> None:
    """Its top-level pins are exactly the runtime dependencies; a package that the dev extra
    also names (e.g. PyYAML) may be in it only because a runtime package requires it."""
    pins = _read_lock(RUNTIME_LOCK)
    top_level = {pin.name for pin in pins if PROJECT in pin.via}
    assert top_level == _names(RUNTIME), "run `make lock`"
    for pin in pins:
        assert pin.via, f"requirements.lock does not say why it has {pin.name}: run `make lock`"
    dev_only = _names(DEV) - _names(RUNTIME)
    for pin in pins:
        if pin.name in dev_only:
            assert PROJECT not in pin.via, pin.name


def test_the_dev_lock_is_the_runtime_lock_plus_the_dev_extra() -> None:
    runtime = _read_lock(RUNTIME_LOCK)
    dev = _read_lock(DEV_LOCK)
    top_level = {pin.name for pin in dev if PROJECT in pin.via}
    assert top_level == _names(RUNTIME) | _names(DEV), "run `make lock`"
    dev_pins = {(pin.name, pin.version, str(pin.marker)) for pin in dev}
    for pin in runtime:
        assert (pin.name, pin.version, str(pin.marker)) in dev_pins, (
            f"requirements.lock pins {pin.name}=={pin.version}, the dev lock does not: "
            "run `make lock`"
        )


@pytest.mark.parametrize("lock_name", LOCKS)
def test_every_pin_is_hash_checked(lock_name: str) -> None:
    path, _ = LOCKS[lock_name]
    pins = _read_lock(path)
    assert pins
    for pin in pins:
        assert pin.hashes, f"{lock_name}: {pin.name} has no --hash"
        assert all(digest.startswith("sha256:") for digest in pin.hashes), pin.name
