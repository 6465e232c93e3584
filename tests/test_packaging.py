"""The package as a user installs it: a wheel built from the repository, installed (not editable) into a fresh
venv outside the checkout, must carry its themes and the demo fleet and run the demo console and the simulator.
The sdist must carry them too. `pip install -e .` hides a missing package-data file; this test does not."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.test_e2e_tmux import demo_counts, header, table_has_keys
from tests.tmux_support import EXITED, Tmux, console_env, require_tmux

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ("wsam_tui/themes/wsam-dark.toml", "wsam_tui/themes/wsam-light.toml",
                "wsam_tui/themes/wsam-ansi.toml", "wsam_tui/themes/wsam-high-contrast.toml",
                "wsam_tui/sim/fleets/demo-fleet.json", "wsam_tui/sim/fleets/hostile-fleet.json", "wsam_tui/py.typed")

pytestmark = pytest.mark.slow


def _pip(python: Path, *args: str, cwd: Path) -> None:
    done = subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(wheel, sdist) built from the repository with the project's own build backend."""
    out = tmp_path_factory.mktemp("dist")
    _pip(Path(sys.executable), "wheel", "--no-deps", "-q", "-w", str(out), str(REPO), cwd=out)
    sdist = out / "sdist"
    done = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                           "print(b.build_sdist(sys.argv[1]))", str(sdist)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)
    if done.returncode != 0 and "No module named 'setuptools'" in done.stderr:
        _pip(Path(sys.executable), "install", "-q", "setuptools>=68", cwd=out)
        done = subprocess.run(done.args, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("wsam_tui-*.whl")
    return wheel, sdist / done.stdout.strip().splitlines()[-1]


def test_the_wheel_and_the_sdist_carry_the_package_data(built):
    wheel, sdist = built
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [f for f in PACKAGE_DATA if f not in names] == []
    with tarfile.open(sdist) as tar:
        members = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert [f for f in PACKAGE_DATA if f not in members] == []


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed from its file, as `pip install dist/*.whl` does: its bin dir."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    _pip(venv / "bin" / "python", "install", "-q", str(built[0]), cwd=venv)
    return venv / "bin"


def _outside_the_checkout(bin_dir: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(home)
    return env


def test_the_installed_package_is_not_the_checkout(installed, tmp_path):
    done = subprocess.run([str(installed / "python"), "-c", "import wsam_tui; print(wsam_tui.__file__)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
                          env=_outside_the_checkout(installed, tmp_path))
    assert not Path(done.stdout.strip()).is_relative_to(REPO), done.stdout
    version = subprocess.run([str(installed / "wsam-tui"), "--version"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, check=False, env=_outside_the_checkout(installed, tmp_path))
    assert version.returncode == 0 and version.stdout.startswith("wsam-tui "), version


def test_the_installed_simulator_serves_a_generated_fleet(installed, tmp_path):
    sim = subprocess.Popen([str(installed / "wsam-tui"), "sim", "--size", "100", "--port", "0"], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=_outside_the_checkout(installed, tmp_path))
    try:
        assert sim.stdout is not None
        announced = ""
        while "Serving until interrupted" not in announced and (line := sim.stdout.readline()):
            announced += line
        assert "100 servers" in announced, announced
        settings = dict(line.split("=", 1) for line in announced.splitlines() if "=" in line)
        reply = httpx.get(f"{settings['BASE_URL']}/metadata/endpoints?api-version=2022-09-01",
                          verify=ssl.create_default_context(cafile=settings["CA_BUNDLE"]), timeout=30)
        assert reply.status_code == 200 and reply.json(), reply.text
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def test_the_installed_demo_console_paints_filters_and_quits(installed, tmp_path):
    require_tmux()
    total, arcs = demo_counts()
    tmux = Tmux(tmp_path, "wheel")
    try:
        env = console_env(tmp_path) | {"PATH": f"{installed}{os.pathsep}{os.environ.get('PATH', '')}"}
        tmux.start([str(installed / "wsam-tui"), "--demo"], env)
        tmux.wait(lambda s: f"{total:,} total" in header(s) and "│ online │" in header(s), "the demo fleet", 90)
        tmux.keys("/")
        tmux.wait_text("filter: words")
        tmux.type("kind:arc")
        tmux.keys("Enter")
        tmux.wait(lambda s: f"{arcs:,} shown" in header(s) and table_has_keys(s), "the filtered table")
        screen = tmux.quit_console()
        assert f"{EXITED}0" in screen, screen
    finally:
        tmux.stop()
