#!/usr/bin/env python3
"""Mutation check: does the CPU test suite catch small deliberate bugs?

Each mutant in MUTANTS is one small edit to one file: a snippet that must occur
exactly once is replaced. For each, on a temporary copy of the tree (the files
git tracks, plus untracked ones it does not ignore), the edit is applied, the
extension rebuilt CPU-only (an incremental ninja build: only what the edit
touches) and the tests named for the mutant run with ``pytest -x``: "caught"
when pytest fails, crashes or times out, "missed" when it passes. Every mutant
must be caught. The tests named are a subset chosen to be fast (the run stays
well under 20 minutes on 2 cores); ``--full`` runs the whole CPU suite instead.

Before the mutants, the same subsets run on the unmutated copy (skip with
--no-baseline): a subset that fails without any bug proves nothing.

A snippet not found (or found twice) is an error, not a "missed": the code
moved, and the mutant must be updated to the new code.

Usage:
  python3 tools/mutants.py                  # every mutant
  python3 tools/mutants.py --only NAME ...  # some (names, or substrings of them)
  python3 tools/mutants.py --list           # the list, nothing run
  python3 tools/mutants.py --full           # the whole CPU suite per mutant (slow)
Exit status: 0 all caught, 1 some missed, 2 a mutant or the baseline is broken.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_TIMEOUT_S = 600

CPU = "cuda/cpu/attention_cpu.cc"
KV_COPY = "cuda/cpu/kv_copy_cpu.cc"
TYPES = "cuda/cpu/cpu_types.h"
PARAMS = "cuda/include/jax_mea/params.h"
SCORE = "cuda/include/jax_mea/score.h"
FFI_PARAMS = "cuda/ffi/params_from_ffi.h"
TILES = "tests/test_tiles_and_edges.py"
DECODE = "tests/test_decode.py"
ONNX = "tests/test_onnx_attention.py"
DPA = "tests/test_dot_product_attention.py"


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    path: str   # file, relative to the repository root
    old: str    # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # pytest arguments (files or node ids) run against it
    k: str = ""             # optional pytest -k expression
    bug: str = ""           # what the edit breaks, in words


MUTANTS = [
    # --- the five the suite missed before (issue 17) -------------------------------
    Mutant("cpu-rescale-dropped", CPU,
           "      Scale(correction, acc, Hv_padded);\n", "",
           (TILES,), k="past_the_tiles",
           bug="the online softmax no longer rescales the accumulator when the max grows"),
    Mutant("cpu-q-block-drops-last-row", CPU,
           "const int q_end = std::min(q_begin + q_block_rows_, p_.q_len);",
           "const int q_end = std::min(q_begin + q_block_rows_ - (q_begin > 0), p_.q_len);",
           (TILES,), k="past_the_tiles",
           bug="query blocks after the first lose their last row"),
    Mutant("kv-length-unclamped", PARAMS,
           "return len < 0 ? 0 : (len > kv_capacity ? kv_capacity : len);",
           "return len < 0 ? 0 : len;",
           (TILES,), k="out_of_range",
           bug="a kv length past the keys given reads past them"),
    Mutant("size1-key-axis-padded", "jax_mea/_checks.py",
           "    if not allow_short and last != kv_len:\n", "    if False:\n",
           (f"{DPA}::test_bias_and_mask",),
           bug="a size-1 key axis of bias/mask is padded (masked) instead of broadcast"),
    # --- CPU attention kernel -------------------------------------------------------
    Mutant("cpu-key-tile-skips-last-key", CPU,
           "const int count = std::min(kKeyTile, block_last - j0);",
           "const int count = std::min(kKeyTile - 1, block_last - j0);",
           (TILES,), k="past_the_tiles",
           bug="the last key of every full key tile is skipped"),
    Mutant("cpu-gqa-wrong-kv-head", CPU,
           "const T* k_base = Ptr(p_.k) + b * p_.k_strides.batch + kv_head * p_.k_strides.head;",
           "const T* k_base = Ptr(p_.k) + b * p_.k_strides.batch + "
           "(kv_head + (group > 1)) % p_.num_kv_heads * p_.k_strides.head;",
           (f"{ONNX}::test_shapes",),
           bug="GQA groups read the keys of the next kv head (values stay right)"),
    Mutant("cpu-softcap-after-mask", CPU,
           "    if (logits_.capped()) {\n"
           "      for (int t = lo; t < hi; ++t) scores[t] = logits_.Capped(scores[t]);\n"
           "    }\n"
           "    if (p_.mask_kind != MaskKind::kNone) {\n"
           "      const int64_t row = MaskRow(p_, b, head, i);\n"
           "      for (int t = lo; t < hi; ++t) scores[t] = MaskLogit<T>(p_, logits_, scores[t], row, j0 + t);\n"
           "    }\n",
           "    if (p_.mask_kind != MaskKind::kNone) {\n"
           "      const int64_t row = MaskRow(p_, b, head, i);\n"
           "      for (int t = lo; t < hi; ++t) scores[t] = MaskLogit<T>(p_, logits_, scores[t], row, j0 + t);\n"
           "    }\n"
           "    if (logits_.capped()) {\n"
           "      for (int t = lo; t < hi; ++t) scores[t] = logits_.Capped(scores[t]);\n"
           "    }\n",
           (f"{ONNX}::test_softcap_and_scale",),
           bug="softcap applied after the mask instead of before"),
    Mutant("cpu-masked-row-nan", CPU,
           "const float inv = s.row_sum[r] > 0.f ? 1.f / s.row_sum[r] : 0.f;",
           "const float inv = 1.f / s.row_sum[r];",
           (f"{ONNX}::test_fully_masked_rows",),
           bug="a fully masked row gives NaN instead of 0"),
    Mutant("bf16-round-half-up", TYPES,
           "u += 0x7fffu + ((u >> 16) & 1u);", "u += 0x8000u;",
           (TILES,), k="round",
           bug="float32 -> bfloat16 rounds ties up instead of to even"),
    Mutant("f16-round-half-up", TYPES,
           "abs += 0xc8000fffu + mant_odd;", "abs += 0xc8001000u;",
           (TILES,), k="round",
           bug="float32 -> float16 rounds ties up instead of to even"),
    # --- visibility (params.h) and the FFI's mask view -----------------------------
    Mutant("window-zero-unbounded", SCORE,
           "  int64_t lo = pos - p.left_window;\n",
           "  int64_t lo = p.left_window == 0 ? 0 : pos - p.left_window;\n",
           (f"{ONNX}::test_window",),
           bug="a left window of 0 is read as unbounded"),
    Mutant("right-window-one-short", SCORE,
           "if (pos + p.right_window + 1 < hi) hi = pos + p.right_window + 1;",
           "if (pos + p.right_window < hi) hi = pos + p.right_window;",
           (f"{ONNX}::test_window",),
           bug="the right window stops one key short"),
    Mutant("offset-of-batch-0", PARAMS,
           "return causal_offsets ? causal_offsets[b] : causal_offset;",
           "return causal_offsets ? causal_offsets[0] : causal_offset;",
           (f"{ONNX}::test_nonpad_kv_seqlen",),
           bug="every sequence takes the causal offset of the first"),
    Mutant("mask-batch-axis-ignored", FFI_PARAMS,
           "p.mask_batch_stride = md[0] == 1 ? 0 : md[1] * md[2] * md[3];",
           "p.mask_batch_stride = 0;",
           (f"{ONNX}::test_masks",),
           bug="every sequence reads the mask of the first"),
    Mutant("mask-query-axis-not-broadcast", FFI_PARAMS,
           "p.mask_q_stride = md[2] == 1 ? 0 : md[3];", "p.mask_q_stride = md[3];",
           (f"{ONNX}::test_masks",),
           bug="a mask with a size-1 query axis is read as if it had Sq rows"),
    # --- KV copy (concat into present, append into a cache) ------------------------
    Mutant("kv-append-one-past-capacity", KV_COPY,
           "std::min(p.num_new, p.dst_capacity - start));",
           "std::min(p.num_new, p.dst_capacity - start + 1));",
           (f"{DECODE}::test_capacity_overflow_drops_tokens_and_flags",),
           bug="an overflowing append writes one token past the cache's capacity"),
    Mutant("kv-concat-past-value-short", KV_COPY,
           "CopyRows(p.past_v, p.past_v_strides, p.dst_v, p.dst_v_strides, b, h, 0, 0, p.past_len,",
           "CopyRows(p.past_v, p.past_v_strides, p.dst_v, p.dst_v_strides, b, h, 0, 0, "
           "p.past_len - 1,",
           (f"{ONNX}::test_shapes",),
           bug="present_value misses the last past token"),
    # --- Python: offsets, masks, batching, decode ------------------------------------
    Mutant("causal-offset-clamped", "jax_mea/attention.py",
           "causal_offsets = kv_lengths - q_len",
           "causal_offsets = jnp.maximum(kv_lengths - q_len, 0)",
           (f"{ONNX}::test_fully_masked_rows", f"{ONNX}::test_nonpad_kv_seqlen"),
           bug="nonpad_kv_seqlen < Sq no longer gives a negative causal offset"),
    Mutant("mask-rank-padded-at-the-end", "jax_mea/_checks.py",
           "full = (1,) * (4 - len(shape)) + shape", "full = shape + (1,) * (4 - len(shape))",
           (f"{DPA}::test_bias_and_mask",),
           bug="a rank 2/3 mask gets its implied axes at the end instead of the front"),
    Mutant("vmap-shared-mask-not-folded", "jax_mea/primitives.py",
           'if params["mask_kind"] != MaskKind.NONE and (md is not None or mask.shape[0] != 1):',
           'if params["mask_kind"] != MaskKind.NONE and md is not None:',
           ("tests/test_transforms.py",), k="shared",
           bug="an unmapped mask with a batch axis is not folded into vmap's batch"),
    Mutant("decode-lengths-not-saturated", "jax_mea/cache.py",
           "new_lengths = jnp.minimum(starts + steps, cache.max_seq_len).astype(jnp.int32)",
           "new_lengths = (starts + steps).astype(jnp.int32)",
           (f"{DECODE}::test_capacity_overflow_drops_tokens_and_flags",),
           bug="cache lengths grow past max_seq_len"),
    Mutant("decode-step-lengths-unbiased", "cuda/ffi/bindings.h",
           "attention->kv_length_bias = attention->q_len;", "attention->kv_length_bias = 0;",
           (f"{DECODE}::test_cache_filled_exactly_to_capacity",),
           bug="a decode step attends over its starts only, not the tokens it appends"),
    Mutant("packed-qkv-key-value-swapped", "cuda/ffi/bindings.h",
           "first_head[3] = {0, nq, nq + nkv};", "first_head[3] = {0, nq + nkv, nq};",
           (f"{DECODE}::test_packed_qkv_step",),
           bug="a packed step stores the value heads as keys and the key heads as values"),
    Mutant("packed-qkv-dense-query-strides", "cuda/ffi/bindings.h",
           "attention->q_strides = append->new_k_strides = append->new_v_strides = views.strides;",
           "append->new_k_strides = append->new_v_strides = views.strides;",
           (f"{DECODE}::test_packed_qkv_step",),
           bug="a packed step reads the query as a dense [B, T, Nq, H] array"),
    Mutant("split-tolerance-loose", "cuda/kernels/decode_plan.h",
           "constexpr double kSplitTolerance = 1.02;", "constexpr double kSplitTolerance = 1.05;",
           ("tests/test_decode_plan.py::test_split_tolerance_keeps_the_sms_busy",),
           bug="the planner takes 15 splits for 16 (120 CTAs on 132 SMs, 5% slower)"),
    Mutant("merge-cost-ignored", "cuda/kernels/decode_plan.cc",
           "static_cast<double>(chunk + costs.cta_overhead) +\n                  merge;",
           "static_cast<double>(chunk + costs.cta_overhead);",
           ("tests/test_decode_plan.py::test_merge_cost_prefers_fewer_splits_merged_in_clusters",),
           bug="33 one-tile splits merged through the workspace where 11 in clusters are faster"),
    Mutant("overflow-flag-not-sticky", PARAMS,
           "if (flags != nullptr && num_new > 0 && static_cast<int64_t>(start) + num_new > capacity) {\n    flags[b] = true;",
           "if (flags != nullptr) {\n    flags[b] = static_cast<int64_t>(start) + num_new > capacity;",
           (f"{DECODE}::test_capacity_overflow_drops_tokens_and_flags",),
           bug="the overflow flag clears on the next step that fits"),
    Mutant("overflow-flag-at-exactly-full", PARAMS,
           "static_cast<int64_t>(start) + num_new > capacity) {",
           "static_cast<int64_t>(start) + num_new >= capacity) {",
           (f"{DECODE}::test_cache_filled_exactly_to_capacity",),
           bug="a step that fills the cache exactly is flagged as overflowing"),
    Mutant("overflow-flags-not-handed-to-the-copy", "cuda/ffi/bindings.h",
           "append->overflowed = static_cast<bool*>(out_overflowed.untyped_data());", "",
           (f"{DECODE}::test_overflow_flags_set_inside_the_call",),
           bug="the decode step never sets the overflow flags"),
    Mutant("reset-ignores-which", "jax_mea/cache.py",
           "return self.replace(lengths=jnp.where(which, 0, self.lengths),",
           "return self.replace(lengths=jnp.zeros_like(self.lengths),",
           (f"{DECODE}::test_capacity_overflow_drops_tokens_and_flags",),
           bug="reset(which) empties every sequence"),
    Mutant("decode-window-right-ignored", "jax_mea/_checks.py",
           "        if right not in (0, None, float(\"inf\")):", "        if False:",
           (f"{DECODE}::test_decode_window_right_side",),
           bug="decode_attention silently ignores a window's right side"),
    # --- the reference (the oracle of 1/3 of the suite) ----------------------------
    Mutant("reference-softcap-ignored", "jax_mea/reference.py",
           "    if softcap > 0:\n        capped = jnp.float32(softcap)",
           "    if softcap < 0:\n        capped = jnp.float32(softcap)",
           ("tests/test_reference.py",), k="softcap",
           bug="the pure-JAX reference ignores softcap"),
]


class Broken(Exception):
    """A mutant that no longer applies, or a baseline that fails: exit 2."""


def run(cmd, cwd, timeout=None, env=None):
    return subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def copy_tree(dst: str) -> None:
    """The working tree's files that git tracks or would track, into dst."""
    files = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT).stdout.split("\0")
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if not os.path.isfile(src):  # deleted in the work tree
            continue
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dst, rel))


def build(tree: str) -> None:
    """CPU-only in-tree build (incremental after the first) and the in-tree _ext copy."""
    build_dir = os.path.join(tree, "build", "cpu")
    if not os.path.exists(os.path.join(build_dir, "build.ninja")):
        r = run(["cmake", "-S", tree, "-B", build_dir, "-G", "Ninja", "-DJAX_MEA_CUDA=OFF"],
                cwd=tree)
        if r.returncode:
            raise Broken(f"cmake failed:\n{r.stdout[-3000:]}")
    r = run(["ninja", "-C", build_dir], cwd=tree)
    if r.returncode:  # a mutant must compile: a compile error catches nothing
        raise Broken(f"the build fails:\n{r.stdout[-3000:]}")
    for old in glob.glob(os.path.join(tree, "jax_mea", "_ext*.so")):
        os.remove(old)
    for so in glob.glob(os.path.join(build_dir, "_ext*.so")):
        shutil.copy2(so, os.path.join(tree, "jax_mea"))


def pytest(tree: str, tests, k: str) -> tuple[bool, str]:
    """(passed, the line that says why not)."""
    env = dict(os.environ, PYTHONPATH=tree)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    if k:
        cmd += ["-k", k]
    try:
        r = run(cmd, cwd=tree, timeout=TEST_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {TEST_TIMEOUT_S} s"
    if r.returncode == 0:
        return True, ""
    if r.returncode == 5:
        raise Broken(f"no test selected by {tests} -k {k!r}")
    lines = r.stdout.splitlines()
    failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    if failed:
        return False, failed[0][:160]
    return False, f"pytest exit {r.returncode} (crash?): {(lines or [''])[-1][:120]}"


def apply(tree: str, m: Mutant) -> str:
    """Applies m in tree; returns the original text of the file."""
    path = os.path.join(tree, m.path)
    if not os.path.exists(path):
        raise Broken(f"{m.name}: {m.path} does not exist")
    with open(path) as f:
        text = f.read()
    count = text.count(m.old)
    if count != 1:
        raise Broken(f"{m.name}: the snippet occurs {count} times in {m.path} (must be once): "
                     f"{m.old!r}. Update the mutant to the current code.")
    with open(path, "w") as f:
        f.write(text.replace(m.old, m.new))
    return text


def selections(mutants, full: bool):
    """Distinct (tests, k) pairs, in order."""
    seen = []
    for m in mutants:
        sel = (("tests",), "") if full else (m.tests, m.k)
        if sel not in seen:
            seen.append(sel)
    return seen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="run only the mutants whose name contains one of these")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--full", action="store_true", help="run the whole CPU suite per mutant")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip running the subsets on the unmutated tree first")
    ap.add_argument("--keep", action="store_true", help="keep the temporary tree")
    args = ap.parse_args()

    mutants = [m for m in MUTANTS
               if not args.only or any(o in m.name for o in args.only)]
    if args.list:
        for m in MUTANTS:
            sel = " ".join(m.tests) + (f" -k {m.k!r}" if m.k else "")
            print(f"{m.name:32} {m.path:36} {m.bug}\n{'':32} tests: {sel}")
        return 0
    if not mutants:
        print(f"no mutant matches {args.only}", file=sys.stderr)
        return 2

    tree = tempfile.mkdtemp(prefix="jax-mea-mutants-")
    start = time.time()
    try:
        copy_tree(tree)
        # Every mutant must apply to the current code: check all before any build.
        for m in mutants:
            original = apply(tree, m)
            with open(os.path.join(tree, m.path), "w") as f:
                f.write(original)
        print(f"building the CPU extension in {tree} ...", flush=True)
        build(tree)
        if not args.no_baseline:
            for tests, k in selections(mutants, args.full):
                ok, why = pytest(tree, tests, k)
                if not ok:
                    raise Broken(f"the unmutated tree fails {' '.join(tests)} -k {k!r}: {why}")
            print(f"baseline passes ({time.time() - start:.0f} s)", flush=True)

        missed = []
        for m in mutants:
            t0 = time.time()
            original = apply(tree, m)
            try:
                build(tree)
                ok, why = pytest(tree, ("tests",) if args.full else m.tests,
                                 "" if args.full else m.k)
            except Broken as e:
                raise Broken(f"{m.name}: {e}")
            finally:
                with open(os.path.join(tree, m.path), "w") as f:
                    f.write(original)
            status = "MISSED" if ok else "caught"
            if ok:
                missed.append(m.name)
            print(f"{status:6} {m.name:32} {time.time() - t0:5.0f} s  {why or m.bug}", flush=True)
        build(tree)  # leave the copy unmutated (for --keep)
    except Broken as e:
        print(f"BROKEN: {e}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {tree}")
        else:
            shutil.rmtree(tree, ignore_errors=True)

    total = time.time() - start
    print(f"\n{len(mutants) - len(missed)} of {len(mutants)} mutants caught "
          f"in {total / 60:.1f} min" + (f"; missed: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
