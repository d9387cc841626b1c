"""Prefill attention on the GPU: jax_mea.dot_product_attention against its peers.

Shapes (bf16, layout BTNH): B2 S4096 N32 H128, causal and not; causal GQA N32/8;
H192/Hv128, causal and not (jax.nn rejects Hv != H). Peers: jax.nn.dot_product_attention
xla and cudnn, torch SDPA flash / efficient (cutlass MEA) / cudnn. TFLOP/s counts
4*B*N*Sq*Skv*H (2*B*N*Sq*Skv*(H+Hv) for Hv != H), halved for causal, as ANCHORS.md does;
fraction of the bf16 matmul rate measured in the same run; ratio = best peer / jax_mea.

--passes adds the backward alone (the VJP applied to a cotangent, the forward's
residuals computed outside the timed program; torch: autograd.grad of a kept forward
graph) and forward + backward (a vjp and its application in one call: value_and_grad's
work). Their TFLOP/s count the backward as 2.5x the forward's flops (fwd+bwd 3.5x), as
FlashAttention does; they check dq, dk, dv against the reference's VJP. jax_mea's rows
note which backward ran: its kernel (the CPU one; on CUDA the tensor-core one unless
JAX_MEA_CUDA_BACKWARD=0 in the environment) or XLA's unfused computation (calls the
kernel does not take); the CSV's .json says whether the kernel was enabled. One CSV and table per pass
and dtype; --seqs sweeps the sequence length (every shape at each).

    python benchmarks/prefill.py [--out benchmarks/out]
    python benchmarks/prefill.py --passes all [--dtypes bfloat16,float16]
        [--seqs 512,1024,2048,4096,8192,16384] [--only "N32 H128"] [--budget-s 500]
    JAX_MEA_CUDA_BACKWARD=0 python benchmarks/prefill.py --passes backward  # XLA's
    python benchmarks/prefill.py --smoke         # tiny shapes, all passes, on the CPU
"""
import argparse
import os
import time

import timing

import jax_mea

from common import CONTENDERS, PASSES, SCAN_CONTENDERS, Case, available, run_cases


def cases(B=2, S=4096, N=32, smoke=False):
    """Issue 15's table: H128 (causal and not, GQA N/4 causal), H192/Hv128 (causal and
    not), H64 at twice the batch and H256 at half the heads (the same flops per case)."""
    if smoke:
        B, N = 1, 4
    H, HV = (32, 16) if smoke else (128, 128)
    H2 = 48 if smoke else 192
    H_SMALL, H_LARGE = (16, 64) if smoke else (64, 256)
    return [Case(B, N, N, H, S, Sq=S), Case(B, N, N, H, S, Sq=S, causal=True),
            Case(B, N, N // 4, H, S, Sq=S, causal=True),
            Case(B, N, N, H2, S, Sq=S, Hv=HV), Case(B, N, N, H2, S, Sq=S, Hv=HV, causal=True),
            Case(2 * B, N, N, H_SMALL, S, Sq=S), Case(B, N // 2, N // 2, H_LARGE, S, Sq=S)]


def csv_name(mode, dtype, several_dtypes, only, smoke):
    """prefill.csv for the forward (as before the passes), prefill_backward.csv,
    prefill_fwd_bwd.csv; the dtype added where a run has several, _only where --only
    kept some cases."""
    suffix = "" if mode == "forward" else "_" + mode.replace("+", "_")
    return ("prefill" + suffix + f"_{dtype}" * several_dtypes + "_only" * only +
            "_smoke" * smoke + ".csv")


def comma_list(parse=str):
    return lambda text: [parse(x) for x in text.split(",") if x]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true",
                   help="tiny shapes, float32, all passes unless --passes (CPU check)")
    p.add_argument("--passes", type=comma_list(), default=None,
                   help=f"comma list of {', '.join(PASSES)}, or all (default forward)")
    p.add_argument("--dtypes", "--dtype", type=comma_list(), default=None,
                   help="comma list, e.g. bfloat16,float16 (default bfloat16; float32 "
                        "with --smoke)")
    p.add_argument("--seqs", "--seq", type=comma_list(int), default=None,
                   help="comma list of sequence lengths (default 4096; 128 with --smoke)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--only", type=comma_list(), default=None,
                   help="comma list of parts of case names to keep (e.g. 'N32 H128': "
                        "the MHA H128 cases, causal and not)")
    p.add_argument("--contenders", default=",".join(
        n for n in CONTENDERS if n != "jax_mea-step" and n not in SCAN_CONTENDERS))
    p.add_argument("--budget-s", type=float, default=None,
                   help="start no case after this many seconds (the rest are named)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure each contender this many times per case, the order "
                        "reversed every other round, and report the median (default 1)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = p.parse_args()
    passes = args.passes or (["all"] if args.smoke else ["forward"])
    passes = list(PASSES) if passes == ["all"] else passes
    unknown = [m for m in passes if m not in PASSES]
    if unknown:
        p.error(f"--passes: unknown {unknown}; expected {', '.join(PASSES)} or all")
    dtypes = args.dtypes or ["float32" if args.smoke else "bfloat16"]
    seqs = args.seqs or [128 if args.smoke else 4096]
    deadline = None if args.budget_s is None else time.monotonic() + args.budget_s

    env = timing.environment()
    ceil = timing.ceilings(**(dict(copy_bytes=1 << 24, matmul_n=256) if args.smoke else {}))
    kernel_on = jax_mea._ffi.cuda_backward_kernel
    print(f"{env['device']}, jax {env['jax']}, torch {env.get('torch', 'n/a')}; "
          f"bf16 matmul {ceil['matmul_flops'] / 1e12:.0f} TFLOP/s; jax_mea CUDA backward "
          f"kernel {'on' if kernel_on else 'off'} (JAX_MEA_CUDA_BACKWARD)")
    contenders = available(args.contenders.split(","))
    shapes = [c for S in seqs for c in cases(args.batch, S, smoke=args.smoke)
              if not args.only or any(part in c.name for part in args.only)]
    for dtype in dtypes:
        for mode in passes:
            print(f"\n== {mode}, {dtype}" + (
                "" if mode == "forward" else f" (TFLOP/s: {PASSES[mode]} x the forward's)"))
            csv_path = os.path.join(args.out, csv_name(mode, dtype, len(dtypes) > 1,
                                                       bool(args.only), args.smoke))
            meta = dict(env, ceilings=ceil, dtype=dtype, **{"pass": mode},
                        flops_over_forward=PASSES[mode],
                        jax_mea_cuda_backward_kernel=kernel_on)
            run_cases(shapes, contenders, dtype, metric="flops", mode=mode,
                      ceiling=ceil["matmul_flops"], csv_path=csv_path, meta=meta,
                      deadline=deadline, rounds=args.rounds,
                      **(dict(counts=(1, 3), repeats=3) if args.smoke else {}))


if __name__ == "__main__":
    main()
