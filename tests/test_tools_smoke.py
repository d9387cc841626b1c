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


def test_jax_timeline_scan_profiles_each_scan_contender():
    """--scan: each scan contender's program profiled, its span and busy time per step
    and the middle step's kernels (our decode call among them); --trace-timer adds the
    program's busiest host events (what each thunk costs the host)."""
    out = _run("tools/jax_timeline.py", "--scan", "--smoke", "--trace-timer")
    assert "=== jax_mea-scan decode B2 S64" in out and "=== jax-xla-scan decode B2 S64" in out
    ours = out.split("=== jax_mea-scan", 1)[1].split("===", 1)[0]
    assert "device span" in ours and "host clock" in ours
    assert "jax_mea_decode_step" in ours, ours
    host = ours.split("host, busiest events", 1)
    assert len(host) == 2 and "jax_mea_decode_step" in host[1], ours


def test_prefill_rounds_print_one_median_per_contender(tmp_path):
    """--rounds: every contender measured per round, the order reversed every other
    round (a fixed order favours one contender under a power cap), the median kept."""
    out = _run("benchmarks/prefill.py", "--smoke", "--passes", "forward", "--rounds", "2",
               "--only", "N2 H64", "--out", str(tmp_path))
    timed = [line for line in out.splitlines() if line.strip().startswith("prefill ")
             and " ms " in line]
    assert [("jax_mea" in line, "jax-xla" in line) for line in timed] == [
        (True, False), (False, True)], out[-2000:]
    assert "best peer / ours" in out


def test_decode_model_rounds_alternate_and_keep_the_median(tmp_path):
    """--rounds: each variant measured per round, the order reversed every other round,
    each variant's median time kept, jax_mea / best peer printed per round and taken as
    the median of the rounds' (paired) ratios."""
    out = _run("benchmarks/decode_model.py", "--smoke", "--batch", "1", "--rounds", "3",
               "--variants", "jax_mea,jax-xla", "--no-profile", "--out", str(tmp_path))
    timed = [line.split()[3] for line in out.splitlines()
             if line.startswith("  smoke B1 ctx") and "ms/step" in line]
    assert timed == ["jax_mea", "jax-xla", "jax-xla", "jax_mea", "jax_mea", "jax-xla"], out
    by_round = [line for line in out.splitlines() if "best peer by round" in line]
    assert len(by_round) == 1 and len(by_round[0].split("by round")[1].split(",")[0].split()) == 3, out
    import csv
    with open(tmp_path / "decode_model_smoke.csv") as f:
        rows = [r for r in csv.DictReader(line for line in f if not line.startswith("#"))]
    ours = [r for r in rows if r["variant"] == "jax_mea"]
    assert ours and all(len(r["rounds_ms"].split()) == 3 for r in ours), rows
    for r in ours:  # the median of the rounds (printed to 4 digits)
        median = sorted(float(t) for t in r["rounds_ms"].split())[1]
        assert abs(float(r["ms_per_step"]) - median) <= 1e-3 * median, r
        ratio = sorted(float(x) for x in r["rounds_ratio"].split())[1]  # printed to 3
        assert abs(float(r["ours_over_best_peer"]) - ratio) <= 1e-3, r
        assert float(r["ratio_of_medians"]) > 0, r


def test_median_result():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from common import median_result
    assert median_result([(3.0, 1e-3, "a"), (1.0, 2e-3, "b"), (2.0, 3e-3, "c")]) == (
        2.0, 1e-3, "a")
    assert median_result([(None, None, "n/a"), (1.0, 0.0, "")]) == (None, None, "n/a")
    assert median_result([(5.0, 0.0, "")]) == (5.0, 0.0, "")


def test_sass_stats_reads_and_compares_ncu_tables(tmp_path):
    """tools/sass_stats.py on two small tables in ncu's source-page CSV shape: opcodes
    without predicates or modifiers, stall reasons summed, the loop body's mix, and the
    reasons side by side in thousands of samples."""
    header = ["Address", "Source", "Warp Stall Sampling (All Samples)",
              "Instructions Executed", "stall_wait", "stall_mio", "stall_mio (Not Issued)"]
    rows = [["0x0", "  HMMA.16816.F32.BF16 R0, R4, R8, R0", 3000, 2000000, 2000, 1000, 900],
            ["0x10", "@!P0 LDSM.16.MT88.4 R4, [R2]", 500, 2000000, 100, 400, 400],
            ["0x20", "IMAD R1, R2, R3, RZ", 100, 10, 100, 0, 0]]
    paths = []
    for name, scale in (("ours", 1), ("theirs", 2)):
        path = tmp_path / f"{name}.csv"
        lines = ['"Kernel Name","k"', ",".join(f'"{c}"' for c in header)] + [
            ",".join(f'"{c}"' for c in r[:2] + [v * scale for v in r[2:]]) for r in rows]
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    out = _run("tools/sass_stats.py", *paths, "--loop-min", "1e6")
    assert "4.0 M instructions, 3600 stall samples" in out   # wait 2200 + mio 1400
    assert "loop body: 2 instructions: HMMA 1 LDSM 1" in out
    assert "wait=61.1%" in out and "mio=38.9%" in out
    wait = next(line for line in out.splitlines() if line.strip().startswith("wait "))
    assert wait.split()[1:3] == ["2.2", "4.4"] and "HMMA 2.0/4.0" in wait


def test_sass_stats_regions_between_barriers(tmp_path):
    """--regions splits the table at barriers and ranks the pieces by stall samples,
    with the instruction-fetch samples beside them (the cold code hunt of session 21)."""
    header = ["Address", "Source", "Warp Stall Sampling (All Samples)",
              "Instructions Executed", "stall_wait", "stall_no_instructions"]
    rows = [["0x00", "IMAD R1, R2, R3, RZ", 10, 1024, 4, 6],
            ["0x10", "BAR.SYNC.DEFER_BLOCKING 0x0", 5, 1024, 5, 0],
            ["0x20", "HMMA.16816.F32.BF16 R0, R4, R8, R0", 30, 8192, 30, 0],
            ["0x30", "@P0 BRA 0x20", 2, 8192, 2, 0],
            ["0x40", "SYNCS.PHASECHK.TRANS64.TRYWAIT P1, [R3], R4", 1, 8192, 1, 0],
            ["0x50", "STG.E [R2.64], R4", 50, 1024, 10, 40],
            ["0x60", "EXIT", 0, 1024, 0, 0]]
    path = tmp_path / "t.csv"
    path.write_text("\n".join([",".join(f'"{c}"' for c in header)] +
                               [",".join(f'"{c}"' for c in r) for r in rows]) + "\n")
    out = _run("tools/sass_stats.py", str(path), "--regions")
    lines = out[out.index("regions between barriers: 3"):].splitlines()[1:4]
    assert lines[0].split() == ["0x50", "2", "1024", "50", "40"]
    assert lines[1].split() == ["0x20", "3", "8192", "33", "0"]
    assert lines[2].split() == ["0x00", "2", "1024", "15", "6"]


def test_decode_scan_rounds_print_one_median_per_contender(tmp_path):
    """decode.py --rounds: the scan line's contenders interleaved per shape, one median
    result each (the small caches moved ~10% between two sessions' single runs)."""
    out = _run("benchmarks/decode.py", "--smoke", "--scan", "--rounds", "2",
               "--contenders", "jax_mea", "--only", "B2 S192 N8/2 H32 cap256",
               "--out", str(tmp_path))
    name = "  decode B2 S192 N8/2 H32 cap256"
    timed = [line[len(name):].split()[0] for line in out.splitlines()
             if line.startswith(name + " ") and " ms " in line]
    assert len(timed) == len(set(timed)) >= 2, out[-2000:]
    assert "jax_mea-scan" in timed and "best peer / scan" in out, out[-2000:]
