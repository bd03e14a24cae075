"""An optional sandbox for a project's test command: bubblewrap (``bwrap``).

With ``AUTOPACK_TEST_SANDBOX=bwrap`` the command runs in new network, PID, IPC and UTS namespaces
(no network at all, not even the host's loopback services; it sees only its own processes), with
the whole filesystem mounted read-only except the workspace (and the folder its JUnit report is
written to), a private ``/tmp``, and fresh ``/dev`` and ``/proc``. A test can then neither call
out (exfiltrate, download, reach the database) nor write anywhere but its workspace, whatever the
model wrote into it. What it does not cover: CPU and memory limits (the deployment's container or
cgroup), and reading files the Autopack process can read (they are visible, read-only).

A machine where bwrap is missing or cannot create namespaces (some containers forbid them) makes
an enabled sandbox fail loudly — the run ends DONE_FAILED_ENVIRONMENT with bwrap's reason —
rather than run the tests unsandboxed.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autopack.errors import AutopackError

SANDBOX_KINDS = ("off", "bwrap")


class SandboxUnavailableError(AutopackError):
    code = "sandbox_unavailable"


@dataclass(frozen=True)
class BwrapSandbox:
    """Wraps a command line in bwrap; ``writable`` paths are bound read-write at the same place."""

    executable: str

    def wrap(self, argv: Sequence[str], *, cwd: Path, writable: Sequence[Path]) -> list[str]:
        args = [
            self.executable,
            "--ro-bind", "/", "/",
            "--dev", "/dev",
            "--proc", "/proc",
            "--tmpfs", "/tmp",  # noqa: S108 - a private, empty /tmp inside the sandbox
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            # If Autopack dies, nothing it started in the sandbox keeps running.
            "--die-with-parent",
        ]  # fmt: skip
        for path in writable:
            resolved = str(Path(path).resolve())
            args += ["--bind", resolved, resolved]
        return [*args, "--chdir", str(Path(cwd).resolve()), "--", *argv]


def bwrap_problem() -> str | None:
    """Why bwrap cannot sandbox here (None when it can): not installed, or namespaces refused."""
    return _probe()


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def _probe() -> str | None:
    executable = find_bwrap()
    if executable is None:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = BwrapSandbox(executable).wrap(["true"], cwd=Path("/"), writable=())
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not be run: {exc}"
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()
        return f"bwrap cannot create its namespaces here: {reason[-1] if reason else result}"
    return None


def build_sandbox(kind: str) -> BwrapSandbox | None:
    """The sandbox a setting asks for; SandboxUnavailableError, with the reason, when it cannot
    work on this machine."""
    if kind == "off":
        return None
    if kind != "bwrap":
        raise SandboxUnavailableError(
            f"unknown test sandbox {kind!r}; expected one of {', '.join(SANDBOX_KINDS)}"
        )
    problem = bwrap_problem()
    if problem is not None:
        raise SandboxUnavailableError(f"AUTOPACK_TEST_SANDBOX=bwrap, but {problem}")
    executable = find_bwrap()
    assert executable is not None  # the probe found it
    return BwrapSandbox(executable)
