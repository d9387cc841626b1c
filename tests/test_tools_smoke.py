"""The profiling tools on the CPU (their --smoke modes): they run end to end and print
what the GPU runs read off them. The GPU numbers themselves come from the device
(benchmarks/RESULTS.md); this only keeps the tools from rotting between device runs."""

import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def _run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def test_jax_timeline_model_side_by_side():
    """--model: per-layer attention kernels of each variant, then the other kernels of
    every variant side by side (how the per-layer lengths copy was found, issue 11)."""
    out = _run("tools/jax_timeline.py", "--model", "smoke", "--smoke", "--variants",
               "jax_mea,jax-xla", "--repeats", "1")
    assert "=== jax_mea smoke" in out and "=== jax-xla smoke" in out
    assert "all attention" in out
    side = out.split("other kernels side by side", 1)
    assert len(side) == 2, out[-2000:]
    header = side[1].splitlines()[1]
    assert "jax_mea" in header and "jax-xla" in header
