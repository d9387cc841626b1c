"""jax_mea against jax.nn.dot_product_attention(implementation="xla") on the CPU.

Also forward + backward: value_and_grad of a loss of the output with respect to
q, k, v (--grad: only that, at B1 S1024 N8 H64, causal and not).

float32, both timed in one run; ratio = peer time / jax_mea time (higher: jax_mea
faster). Prefill cases report GFLOP/s, decode cases (one query token over a full cache,
jax_mea.decode_attention appending it) GB/s of q, k, v and out.

    python benchmarks/cpu.py [--quick | --smoke] [--out benchmarks/out]
"""
import argparse
import os

import timing

import jax
import jax.numpy as jnp

import jax_mea

from common import Case, run_cases

PREFILL = [Case(B=1, Nq=8, Nkv=8, H=64, Sq=1024, Skv=1024, causal=True),
           Case(B=2, Nq=8, Nkv=2, H=128, Sq=512, Skv=512),
           Case(B=1, Nq=8, Nkv=8, H=64, Sq=4096, Skv=4096, causal=True)]
DECODE = [Case(B=1, Nq=32, Nkv=8, H=128, Skv=8192),
          Case(B=4, Nq=32, Nkv=8, H=128, Skv=2048)]
SMOKE_PREFILL = [Case(B=1, Nq=4, Nkv=4, H=16, Sq=64, Skv=64, causal=True),
                 Case(B=2, Nq=4, Nkv=2, H=32, Sq=32, Skv=32, Hv=16)]
SMOKE_DECODE = [Case(B=2, Nq=4, Nkv=2, H=32, Skv=128, ragged=True)]


GRAD = [Case(B=1, Nq=8, Nkv=8, H=64, Sq=1024, Skv=1024, causal=c) for c in (False, True)]
SMOKE_GRAD = [Case(B=1, Nq=2, Nkv=1, H=16, Sq=64, Skv=64, causal=True)]


def grad_rows(cases, counts, repeats):
    """Seconds of value_and_grad (forward + backward) of jax_mea and jax.nn xla."""
    impls = {"jax_mea": jax_mea.dot_product_attention,
             "jax-xla": lambda *a, **kw: jax.nn.dot_product_attention(*a, **kw,
                                                                      implementation="xla")}
    rows = []
    for case in cases:
        key = jax.random.split(jax.random.PRNGKey(0), 3)
        q = jax.random.normal(key[0], (case.B, case.Sq, case.Nq, case.H), jnp.float32)
        k, v = (jax.random.normal(kk, (case.B, case.Skv, case.Nkv, case.H), jnp.float32)
                for kk in key[1:])
        row = {"case": case.name, "causal": case.causal}
        for name, fn in impls.items():
            def loss(q, k, v, fn=fn):
                return jnp.sum(fn(q, k, v, is_causal=case.causal) ** 2)
            vg = jax.value_and_grad(loss, (0, 1, 2))
            row[f"{name}_ms"] = 1e3 * timing.time_jax(vg, [(q, k, v)], counts=counts,
                                                     repeats=repeats)
        row["ratio"] = row["jax-xla_ms"] / row["jax_mea_ms"]
        print(f"value_and_grad {case.name}: jax_mea {row['jax_mea_ms']:.1f} ms, jax-xla "
              f"{row['jax-xla_ms']:.1f} ms, ratio {row['ratio']:.2f}")
        rows.append(row)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="skip the S4096 prefill, fewer repeats")
    p.add_argument("--smoke", action="store_true", help="tiny shapes (checks the script)")
    p.add_argument("--grad", action="store_true", help="only value_and_grad (forward + backward)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = p.parse_args()
    prefill, decode = (SMOKE_PREFILL, SMOKE_DECODE) if args.smoke else (PREFILL, DECODE)
    if args.quick:
        prefill = [c for c in prefill if c.Skv < 4096]
    kw = dict(repeats=3, counts=(1, 2)) if (args.quick or args.smoke) else dict(counts=(1, 3))

    if args.grad:
        rows = grad_rows(SMOKE_GRAD if args.smoke else GRAD, kw["counts"], kw.get("repeats", 5))
        timing.write_csv(os.path.join(args.out, "cpu_grad" + "_smoke" * args.smoke + ".csv"),
                         rows, timing.environment())
        return
    env = timing.environment()
    ceil = timing.ceilings(copy_bytes=1 << 26 if args.smoke else 1 << 28,
                           matmul_n=256 if args.smoke else 2048, matmul_dtype="float32")
    print(f"{env['device']} ({env['backend']}), jax {env['jax']}; copy "
          f"{ceil['copy_Bps'] / 1e9:.1f} GB/s, float32 matmul {ceil['matmul_flops'] / 1e9:.0f} "
          f"GFLOP/s (ratio = jax-xla / jax_mea)")
    meta = dict(env, ceilings=ceil)
    contenders = ["jax_mea", "jax-xla"]
    rows = run_cases(prefill, contenders, "float32", metric="flops", unit=1e9,
                     ceiling=ceil["matmul_flops"], **kw)
    rows += run_cases(decode, contenders + ["jax_mea-step"], "float32", metric="bytes", unit=1e9,
                      ceiling=ceil["copy_Bps"], **kw)
    timing.write_csv(os.path.join(args.out, "cpu" + "_smoke" * args.smoke + ".csv"), rows, meta)


if __name__ == "__main__":
    main()
