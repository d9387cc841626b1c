"""Prefill attention on the GPU: jax_mea.dot_product_attention against its peers.

Shapes (bf16, layout BTNH): B2 S4096 N32 H128, causal and not; causal GQA N32/8;
H192/Hv128, causal and not (jax.nn rejects Hv != H). Peers: jax.nn.dot_product_attention
xla and cudnn, torch SDPA flash / efficient (cutlass MEA) / cudnn. TFLOP/s counts
4*B*N*Sq*Skv*H (2*B*N*Sq*Skv*(H+Hv) for Hv != H), halved for causal, as ANCHORS.md does;
fraction of the bf16 matmul rate measured in the same run; ratio = best peer / jax_mea.

    python benchmarks/prefill.py [--out benchmarks/out]
    python benchmarks/prefill.py --smoke         # tiny shapes, runs on the CPU
"""
import argparse
import os

import timing

from common import CONTENDERS, SCAN_CONTENDERS, Case, available, run_cases


def cases(B=2, S=4096, N=32, smoke=False):
    if smoke:
        B, S, N = 1, 128, 4
    H, HV = (32, 16) if smoke else (128, 128)
    H2 = 48 if smoke else 192
    return [Case(B, N, N, H, S, Sq=S), Case(B, N, N, H, S, Sq=S, causal=True),
            Case(B, N, N // 4, H, S, Sq=S, causal=True),
            Case(B, N, N, H2, S, Sq=S, Hv=HV), Case(B, N, N, H2, S, Sq=S, Hv=HV, causal=True)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny shapes, float32 (CPU check)")
    p.add_argument("--dtype", default=None, help="default bfloat16 (float32 with --smoke)")
    p.add_argument("--seq", type=int, default=4096)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--contenders", default=",".join(
        n for n in CONTENDERS if n != "jax_mea-step" and n not in SCAN_CONTENDERS))
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = p.parse_args()
    dtype = args.dtype or ("float32" if args.smoke else "bfloat16")
    env = timing.environment()
    ceil = timing.ceilings(**(dict(copy_bytes=1 << 24, matmul_n=256) if args.smoke else {}))
    print(f"{env['device']}, jax {env['jax']}, torch {env.get('torch', 'n/a')}, {dtype}; "
          f"bf16 matmul {ceil['matmul_flops'] / 1e12:.0f} TFLOP/s")
    csv_path = os.path.join(args.out, "prefill" + "_smoke" * args.smoke + ".csv")
    run_cases(cases(args.batch, args.seq, smoke=args.smoke),
              available(args.contenders.split(",")), dtype, metric="flops",
              ceiling=ceil["matmul_flops"], csv_path=csv_path, meta=dict(env, ceilings=ceil),
              **(dict(counts=(1, 3), repeats=3) if args.smoke else {}))


if __name__ == "__main__":
    main()
