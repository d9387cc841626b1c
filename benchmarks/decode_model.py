"""Decode-step time of the examples/decode.py model: jax_mea against plain jax.

Variants, each a jitted lax.scan of --steps greedy steps with the caches donated:
  jax_mea     jax_mea.decode_attention on jax_mea.KVCache (the example as it is)
  jax-cudnn   the same model with a fixed-size cache [B, L, Nkv, H] that each step
  jax-xla     updates with lax.dynamic_update_slice, and jax.nn.dot_product_attention
              (implementation "cudnn" / "xla") masked by key_value_seq_lengths
All start from the same caches (one jax_mea prefill of a --context-token prompt,
copied into the peers' layout) and the same first token; the table gives ms per step,
tokens/s, the bytes a step must read (weights + valid cache) over its time as a
fraction of the measured copy bandwidth, and the logits' largest difference from the
jax_mea variant's.

    python benchmarks/decode_model.py [--config small|large] [--batch 8] [--context N]
    python benchmarks/decode_model.py --smoke       # tiny, on the CPU
"""
import argparse
import os
import statistics
import time
from typing import NamedTuple

import timing

import jax
import jax.numpy as jnp
import numpy as np

import jax_mea
from common import load_example

ex = load_example("decode")

CONFIGS = {
    "small": ex.Config(),
    "large": ex.Config(vocab=32000, d_model=2048, n_layers=16, n_heads=16, n_kv_heads=4,
                       head_size=128, d_ff=5632),
    "smoke": ex.Config(n_layers=2),
}


class PeerCache(NamedTuple):
    key: jax.Array       # [B, L, Nkv, H], the layout jax.nn.dot_product_attention takes
    value: jax.Array
    lengths: jax.Array   # int32 [B]


def _peer_attend(implementation):
    def attend(q, k, v, cache):
        """One decode step (T = 1). All rows are at the same position here (the prompts
        have one length), so one dynamic_update_slice writes the new token."""
        pos = cache.lengths[0]
        key = jax.lax.dynamic_update_slice(cache.key, k.astype(cache.key.dtype), (0, pos, 0, 0))
        value = jax.lax.dynamic_update_slice(cache.value, v.astype(cache.value.dtype),
                                             (0, pos, 0, 0))
        lengths = cache.lengths + q.shape[1]
        out = jax.nn.dot_product_attention(q, key, value, key_value_seq_lengths=lengths,
                                           implementation=implementation)
        return out, PeerCache(key, value, lengths)
    return attend


ATTEND = {"jax_mea": jax_mea.decode_attention, "jax-cudnn": _peer_attend("cudnn"),
          "jax-xla": _peer_attend("xla")}


def run_variant(attend, params, cfg, caches, first, steps, repeats):
    """(median seconds per step, fed tokens and logits of the first run)."""
    gen = ex.generate.lower(params, cfg, caches, first, steps, attend).compile()
    times, result = [], None
    for r in range(repeats + 1):                         # the first run is a warm-up
        t0 = time.perf_counter()
        fed, logits, caches = jax.block_until_ready(gen(params, caches, first))
        times.append((time.perf_counter() - t0) / steps)
        result = result or (fed, logits)
        # back to the prompt's length: every run decodes the same positions
        caches = tuple(ex.replace_fields(c, lengths=c.lengths - steps) for c in caches)
    return statistics.median(times[1:]), result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", choices=("small", "large"), default="small")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--context", type=int, default=None,
                   help="prompt length (default 1024 small, 8192 large)")
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", default=",".join(ATTEND))
    p.add_argument("--dtype", default=None, help="default bfloat16 (float32 with --smoke)")
    p.add_argument("--smoke", action="store_true", help="tiny model and context (CPU check)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = p.parse_args()
    name = "smoke" if args.smoke else args.config
    cfg = CONFIGS[name]
    B, steps = args.batch, (8 if args.smoke else args.steps)
    P = args.context or {"small": 1024, "large": 8192, "smoke": 32}[name]
    dtype = jnp.dtype(args.dtype or ("float32" if args.smoke else "bfloat16"))

    env = timing.environment()
    ceil = timing.ceilings(**(dict(copy_bytes=1 << 24, matmul_n=256) if args.smoke else {}))
    print(f"{env['device']}, jax {env['jax']}, {dtype}; copy {ceil['copy_Bps'] / 1e12:.3f} "
          f"TB/s\n{name} {cfg}\nbatch {B}, context {P}, {steps} steps")

    params = ex.init_params(cfg, args.seed, dtype)
    prompt = jax.random.randint(jax.random.PRNGKey(args.seed + 1), (B, P), 0, cfg.vocab)
    lens = jnp.full((B,), P, jnp.int32)
    caches = ex.make_caches(cfg, B, P + steps, dtype)
    last_logits, caches = ex.prefill(params, cfg, prompt, caches, lens)
    first = jnp.argmax(last_logits, axis=-1).astype(jnp.int32)

    # Bytes one step must read: every weight but the embedding table (B rows of it are
    # read), and the valid cache (P + steps/2 tokens on average).
    weights = sum(x.nbytes for x in jax.tree_util.tree_leaves(params)) - params["embed"].nbytes
    kv = cfg.n_layers * B * cfg.n_kv_heads * (P + steps / 2) * 2 * cfg.head_size * dtype.itemsize
    rows, ref = [], None
    for variant in args.variants.split(","):
        row = {"variant": variant, "config": name, "batch": B, "context": P, "steps": steps,
               "dtype": str(dtype)}
        # each variant gets caches of its own (generate donates them)
        own = (tuple(jax.tree_util.tree_map(jnp.copy, c) for c in caches)
               if variant == "jax_mea" else tuple(
                   PeerCache(jnp.swapaxes(c.key, 1, 2), jnp.swapaxes(c.value, 1, 2), jnp.copy(c.lengths))
                   for c in caches))
        try:
            t, (fed, logits) = run_variant(ATTEND[variant], params, cfg, own, first, steps,
                                           args.repeats)
        except Exception as e:  # e.g. cudnn absent or unsupported
            msg = (str(e).strip().splitlines() or [""])[0][:100]
            print(f"  {variant}: n/a ({type(e).__name__}: {msg})")
            rows.append(dict(row, note=msg))
            continue
        ref = ref if ref is not None else logits
        row.update(ms_per_step=t * 1e3, tokens_per_s=B / t, GBps=(weights + kv) / t / 1e9,
                   frac_copy=(weights + kv) / t / ceil["copy_Bps"],
                   max_logit_diff=float(jnp.max(jnp.abs(logits - ref))),
                   greedy_agree=float(np.mean(np.asarray(jnp.argmax(logits, -1) ==
                                                         jnp.argmax(ref, -1)))))
        rows.append(row)
        del own
    print(f"(reads per step: weights {weights / 1e9:.3f} GB + cache {kv / 1e9:.3f} GB; "
          f"logit diff and agreement are against the first variant)")
    timing.print_table(rows, [("variant", "variant", "<s"), ("ms_per_step", "ms/step", ".4g"),
                              ("tokens_per_s", "tokens/s", ".4g"), ("GBps", "GB/s", ".4g"),
                              ("frac_copy", "of copy", ".0%"),
                              ("max_logit_diff", "max |dlogit|", ".2g"),
                              ("greedy_agree", "tokens agree", ".0%")])
    ok = [r for r in rows if "ms_per_step" in r]
    if len(ok) > 1 and ok[0]["variant"] == "jax_mea":
        best = min(r["ms_per_step"] for r in ok[1:])
        print(f"best peer / jax_mea step time: {best / ok[0]['ms_per_step']:.2f}")
    timing.write_csv(os.path.join(args.out, f"decode_model_{name}.csv"), rows,
                     dict(env, ceilings=ceil, config=str(cfg)))


if __name__ == "__main__":
    main()
