"""Sharding on several devices, run in subprocesses: jax's device count is fixed
when it starts, and the rest of the suite runs on one device.

* tests/multidevice/sharded_checks.py: the three functions on 8 CPU devices
  under batch, heads and 2x4 meshes (no collectives, outputs and the donated
  cache keep their sharding, a cache shard holds 1/n of the bytes, sharded export).
* tests/multidevice/multiprocess_worker.py: 2 processes of 4 CPU devices each
  (jax.distributed, gloo) run a sharded decode step on the global 2x4 mesh.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    # CPU devices, also on a GPU machine (where jax would default to its one GPU).
    env["JAX_PLATFORMS"] = "cpu"
    env.update(extra)
    return env


def _report(what: str, proc) -> str:
    return f"{what} exited with {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"


def test_eight_device_checks():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE / "multidevice" / "sharded_checks.py"), "-q",
         "-p", "no:cacheprovider"],
        cwd=ROOT, env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=8"),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, _report("the 8-device checks", proc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_multiprocess_decode_step():
    worker = str(HERE / "multidevice" / "multiprocess_worker.py")
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, worker, str(i), "2", str(port)], cwd=ROOT,
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    deadline = time.monotonic() + 180
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(deadline - time.monotonic(), 1))
            results.append((p.returncode, out, err))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail("the 2-process decode step did not finish in 180 s")
    for i, (rc, out, err) in enumerate(results):
        assert rc == 0 and f"process {i}: OK" in out, (
            f"process {i} exited with {rc}:\n{out[-4000:]}\n{err[-6000:]}")
