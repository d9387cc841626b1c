"""Decode-step time of the examples/decode.py model: jax_mea against plain jax, on a grid.

Variants, each a jitted lax.scan of --steps greedy steps (examples/decode.py's
generate) with the caches donated:
  jax_mea     jax_mea.decode_attention on jax_mea.KVCache (the example as it is: the
              fused QKV projection's output packed into the call)
  jax-cudnn   the same model with a fixed-size cache [B, L, Nkv, H] that each step
  jax-xla     updates with lax.dynamic_update_slice, and jax.nn.dot_product_attention
              (implementation "cudnn" / "xla") masked by key_value_seq_lengths, on
              q, k, v sliced out of the packed QKV (XLA fuses the slices into their
              consumers: the query's copy and the caches' updates)
The caches are filled synthetically, not by a prefill: every layer's K and V are
random up to the context length (the same values in every variant's layout), and the
capacity is context + steps, larger than what the cache holds, as in a decode loop.
Every variant starts from the same first tokens.

Grid (default): models large (16 layers, d_model 2048, 16/4 heads, H128) and 8b (a
Llama-3-8B layer: d_model 4096, 32/8 heads, H128, d_ff 14336, vocabulary 128256, with
16 of its 32 layers: at batch 32 and context 32k a layer's cache is 4.3 GB, 16 layers
69 GB and 7 GB of weights fit in an H200's 139 GiB with room for the random fill and
XLA's buffers; 32 layers would need 154 GB) x batch {1, 8, 32} x context {1k, 4k, 32k}.
A point whose estimated footprint exceeds the device memory is named as skipped.

--rounds N measures every variant N times per point, in reversed order every other round,
and keeps each variant's median ms/step. jax_mea / best peer is the median of the rounds'
ratios (each round times every variant back to back; the ratio of the medians is printed
too): the spread of one variant between separate runs was about 1.3% on the H200 (session
24), and within one run the device can shift by 7% for every variant at once (session 28,
large B8 ctx1024: jax_mea 0.91 then 0.98 ms, cuDNN 0.96 then 1.06), where a ratio of
medians compares one variant's fast rounds with another's slow ones.

Per point and variant: ms/step (the median over --repeats runs of one compiled program
of --steps steps, run time / steps, after two warm-up runs; --slope: the difference of
programs of steps/4 and steps steps instead, timing.time_steps), tokens/s, the fraction
of the roofline ((weight bytes + cache bytes read) per step / the copy bandwidth measured
in the same run), jax_mea / best peer step time, and attention's share of the step:
one more run under the JAX profiler, the time of the attention kernels (the rule:
kernel_times.py) over that run's device time (first kernel start to last kernel end).
The logits of the first step and the fed tokens are checked against the first
variant's.

    python benchmarks/decode_model.py [--config large,8b] [--batch 1,8,32]
        [--context 1024,4096,32768] [--steps 32] [--budget-s 480] [--out DIR]
    python benchmarks/decode_model.py --smoke       # tiny, on the CPU
tools/jax_timeline.py --model prints a point's attention kernels per layer.
"""
import argparse
import functools
import gc
import os
import time
from typing import NamedTuple

import timing

import jax
import jax.numpy as jnp
import numpy as np

import jax_mea
import kernel_times
from common import filled_cache, load_example, randn

ex = load_example("decode")

CONFIGS = {
    "small": ex.Config(),
    "large": ex.Config(vocab=32000, d_model=2048, n_layers=16, n_heads=16, n_kv_heads=4,
                       head_size=128, d_ff=5632),
    "8b": ex.Config(vocab=128256, d_model=4096, n_layers=16, n_heads=32, n_kv_heads=8,
                    head_size=128, d_ff=14336, rope_theta=500000.0),
    "smoke": ex.Config(n_layers=2),
}
GRID = dict(config="large,8b", batch="1,8,32", context="1024,4096,32768")
SMOKE_GRID = dict(config="smoke", batch="1,2", context="24")


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


def _in_scope(attend):
    """attend inside kernel_times.ATTENTION_SCOPE, where the profile looks for it."""
    @functools.wraps(attend)
    def scoped(*args):
        with jax.named_scope(kernel_times.ATTENTION_SCOPE):
            return attend(*args)
    return scoped


def _apart(attend):
    """A peer's attend(q, k, v, cache) as the model's attend(qkv, cache): the packed
    QKV split outside the attention scope (jax_mea takes it packed)."""
    return lambda qkv, cache: attend(*ex.split_qkv(qkv, cache.key.shape[2]), cache)


ATTEND = {"jax_mea": _in_scope(ex.decode_step),
          "jax-cudnn": _apart(_in_scope(_peer_attend("cudnn"))),
          "jax-xla": _apart(_in_scope(_peer_attend("xla")))}


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _random_kv(key, shape, capacity, bnsh, dtype):
    """Random K and V of shape [B, P, Nkv, H] (BSNH), padded with zeros to `capacity`
    positions, in BNSH when bnsh: the same values in either layout."""
    B, P, N, H = shape
    pad = ((0, 0), (0, capacity - P), (0, 0), (0, 0))
    out = []
    for k in jax.random.split(key):
        x = jnp.pad(randn(k, shape, dtype), pad)
        out.append(jnp.swapaxes(x, 1, 2) if bnsh else x)
    return tuple(out)


def fill_caches(variant, cfg, B, P, capacity, dtype, seed):
    """Every layer's cache for the variant: P random keys and values, lengths P (an
    array per layer: the program donates each)."""
    caches = []
    for layer in range(cfg.n_layers):
        lengths = jnp.full((B,), P, jnp.int32)
        key = jax.random.fold_in(jax.random.PRNGKey(seed + 2), layer)
        k, v = _random_kv(key, (B, P, cfg.n_kv_heads, cfg.head_size), capacity,
                          variant == "jax_mea", jnp.dtype(dtype))
        caches.append(filled_cache(k, v, lengths) if variant == "jax_mea" else
                      PeerCache(k, v, lengths))
        del k, v
    return tuple(caches)


def program(cfg, attend, n):
    """The timed program: n steps of generate, then the caches' lengths set back, so
    that every run decodes the same positions. Returns (caches, (fed tokens [B, n], the
    first step's logits [B, vocab]))."""
    def run(caches, params, first):
        fed, logits, caches = ex.generate(params, cfg, caches, first, n, attend)
        caches = tuple(ex.replace_fields(c, lengths=c.lengths - n) for c in caches)
        return caches, (fed, logits[:, 0])
    return jax.jit(run, donate_argnums=0)


def weight_bytes(params):
    """Bytes of weights a step reads: all but the embedding table (B rows of it)."""
    return sum(x.nbytes for x in jax.tree_util.tree_leaves(params)) - params["embed"].nbytes


def kv_bytes_per_layer(cfg, B, positions, dtype):
    return B * cfg.n_kv_heads * positions * 2 * cfg.head_size * jnp.dtype(dtype).itemsize


def footprint(cfg, params, B, P, steps, dtype):
    """Estimated peak device bytes of a point: weights, one variant's caches, the
    stacked logits, the random fill of one layer (f32 draws, padded copy) and 2 GB for
    XLA's buffers."""
    cache = cfg.n_layers * kv_bytes_per_layer(cfg, B, P + steps, dtype)
    fill = 4 * kv_bytes_per_layer(cfg, B, P + steps, dtype)
    logits = 2 * B * steps * cfg.vocab * 4
    return weight_bytes(params) + params["embed"].nbytes + cache + fill + logits + 2e9


def setup(config, dtype, seed=0):
    cfg = CONFIGS[config]
    return cfg, ex.init_params(cfg, seed, jnp.dtype(dtype))


def first_line(e):
    return (str(e).strip().splitlines() or [""])[0][:120]


def profile_run(prog, n, state, params, first, n_layers, kv_layer, copy_Bps):
    """One more run of the compiled n-step program under the JAX profiler (the caches
    in and back into state['caches']): attention's kernel time per step and per layer,
    its share of the traced run's device time (first kernel start to last kernel end:
    the profiler's overhead, small on the GPU, large on the CPU, is on both sides), and
    the '_kernels' for tools/jax_timeline.py."""
    def run():
        state["caches"], out = prog(state["caches"], params, first)
        jax.block_until_ready((state["caches"], out))
    kernels = kernel_times.program_kernels(kernel_times.trace(run), prog.as_text())
    tot = kernel_times.totals(kernels)
    per_step = lambda ns: ns / n / 1e6    # ms per step
    attn_us = per_step(tot["attention_ns"]) * 1e3 / n_layers
    return dict(attn_ms_per_step=per_step(tot["attention_ns"]),
                attn_share=tot["attention_ns"] / tot["span_ns"] if tot["span_ns"] else None,
                traced_ms_per_step=per_step(tot["span_ns"]), attn_us_per_layer=attn_us,
                kernel_ms_per_step=per_step(tot["kernel_ns"]),
                unresolved_ms_per_step=per_step(tot["unresolved_ns"]),
                # a layer's K+V at copy speed over attention's time per layer
                attn_frac_copy=kv_layer / copy_Bps * 1e6 / attn_us if attn_us else None,
                _kernels=kernels, _steps=n)


def measure_point(config, cfg, params, B, P, *, steps, variants, copy_Bps, dtype,
                  repeats=5, slope=False, profile=True, seed=0):
    """Every variant at one grid point: a row (dict) each, with '_kernels' (the
    profiled run's kernel_times.Kernel list) where profiled. A variant that fails
    (OOM, cuDNN refusing) gets a row with its note; the others go on."""
    counts = (max(1, steps // 4), steps) if slope else (steps,)
    first = jax.random.randint(jax.random.PRNGKey(seed + 1), (B,), 0, cfg.vocab, jnp.int32)
    kv_layer = kv_bytes_per_layer(cfg, B, P + steps / 2, dtype)   # the average step's
    step_bytes = weight_bytes(params) + cfg.n_layers * kv_layer
    rows, ref = [], None
    for variant in variants:
        row = {"config": config, "variant": variant, "batch": B, "context": P,
               "capacity": P + steps, "steps": steps, "dtype": str(jnp.dtype(dtype)),
               "kv_MB_per_layer": kv_layer / 1e6}
        t0 = time.monotonic()
        state = {}
        try:
            state["caches"] = fill_caches(variant, cfg, B, P, P + steps, dtype, seed)
            progs = {n: program(cfg, ATTEND[variant], n).lower(
                state["caches"], params, first).compile() for n in counts}
            t, state["caches"], (fed, logits) = timing.time_steps(
                progs, state.pop("caches"), (params, first), repeats=repeats)
            row.update(ms_per_step=t * 1e3, tokens_per_s=B / t, GBps=step_bytes / t / 1e9,
                       frac_roofline=step_bytes / t / copy_Bps)
            if ref is None:
                ref = (fed, logits)
            row.update(max_logit_diff=float(jnp.max(jnp.abs(logits - ref[1]))),
                       tokens_agree=float(np.mean(np.asarray(fed == ref[0]))))
            if profile:
                try:
                    row.update(profile_run(progs[counts[-1]], counts[-1], state, params, first,
                                           cfg.n_layers, kv_layer, copy_Bps))
                except Exception as e:  # the timing above stands
                    row["note"] = f"profile: {type(e).__name__}: {first_line(e)}"
        except Exception as e:  # OOM, cuDNN refusing a shape: this variant only
            row["note"] = f"{type(e).__name__}: {first_line(e)}"
        finally:
            state.clear()
            gc.collect()
        row["seconds"] = time.monotonic() - t0
        print(f"  {config} B{B} ctx{P} {variant:9s} " + (
            f"{row['ms_per_step']:8.4f} ms/step  {row['frac_roofline']:4.0%} of roofline"
            + (f"  attention {row['attn_share']:4.0%} of the step"
               if row.get("attn_share") is not None else "")
            if "ms_per_step" in row else f"n/a ({row['note']})")
            + f"  [{row['seconds']:.1f} s]", flush=True)
        rows.append(row)
    _ratio_to_best_peer(rows)
    return rows


def _ratio_to_best_peer(rows):
    """Sets jax_mea's row's 'ours_over_best_peer' from the rows of one point."""
    ok = [r for r in rows if "ms_per_step" in r]
    peers = [r["ms_per_step"] for r in ok if r["variant"] != "jax_mea"]
    for r in ok:
        if r["variant"] == "jax_mea" and peers:
            r["ours_over_best_peer"] = r["ms_per_step"] / min(peers)


def combine_rounds(rounds):
    """One row per variant from several rounds of measure_point at one point: the
    first round's row (the profiled one) with the median ms/step over the rounds
    (the rates scaled to it), each round's ms/step in 'rounds_ms', and jax_mea's
    ratio to the best peer: the median of each round's (paired: a round times every
    variant back to back), each round's in 'rounds_ratio', and the ratio of the
    medians in 'ratio_of_medians'."""
    if len(rounds) == 1:
        return rounds[0]
    rows = []
    for first in rounds[0]:
        same = [r for rnd in rounds for r in rnd if r["variant"] == first["variant"]]
        times = [r["ms_per_step"] for r in same if "ms_per_step" in r]
        row = dict(first)
        if times:
            ms = float(np.median(times))
            if "ms_per_step" in first:
                scale = first["ms_per_step"] / ms
                for key in ("tokens_per_s", "GBps", "frac_roofline"):
                    if key in row:
                        row[key] = row[key] * scale
            row["ms_per_step"] = ms
            row["rounds_ms"] = " ".join(f"{t:.4g}" for t in times)
        rows.append(row)
    _ratio_to_best_peer(rows)
    ours = [r for r in rows if r["variant"] == "jax_mea" and "ours_over_best_peer" in r]
    if ours:  # (measure_point set each round's ratio)
        per_round = [r["ours_over_best_peer"] for rnd in rounds for r in rnd
                     if "ours_over_best_peer" in r]
        ours[0]["rounds_ratio"] = " ".join(f"{x:.3f}" for x in per_round)
        ours[0]["ratio_of_medians"] = ours[0]["ours_over_best_peer"]
        if per_round:
            ours[0]["ours_over_best_peer"] = float(np.median(per_round))
        print(f"  {rows[0]['config']} B{rows[0]['batch']} ctx{rows[0]['context']}: jax_mea / "
              f"best peer by round {ours[0]['rounds_ratio']}, their median "
              f"{ours[0]['ours_over_best_peer']:.3f}, of the medians "
              f"{ours[0]['ratio_of_medians']:.3f}", flush=True)
    return rows


def usable(variants):
    """The variants that can run here (jax-cudnn needs a GPU; dropped with the reason)."""
    if "jax-cudnn" in variants and jax.default_backend() != "gpu":
        print("(jax's cudnn attention needs a GPU: skipping jax-cudnn)")
        return [v for v in variants if v != "jax-cudnn"]
    return variants


def ints(text):
    return [int(x) for x in text.split(",")]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=None, help=f"comma separated of {', '.join(CONFIGS)} "
                   f"(default {GRID['config']})")
    p.add_argument("--batch", default=None, help=f"comma separated (default {GRID['batch']})")
    p.add_argument("--context", default=None,
                   help=f"tokens in the cache, comma separated (default {GRID['context']})")
    p.add_argument("--steps", type=int, default=None, help="decode steps per run (default 32)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per variant (median)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every variant this many times per point, the order reversed "
                        "every other round (a block per variant favours one under drift); "
                        "the median round is kept, the profile taken in the first")
    p.add_argument("--slope", action="store_true",
                   help="per step from programs of steps/4 and steps steps (two compiles)")
    p.add_argument("--no-profile", action="store_true", help="skip attention's share")
    p.add_argument("--variants", default=",".join(ATTEND))
    p.add_argument("--dtype", default=None, help="default bfloat16 (float32 with --smoke)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="start no point after this many seconds (the table covers the rest)")
    p.add_argument("--memory-gb", type=float, default=None,
                   help="device memory to fit in (default: the device's limit; none on the CPU)")
    p.add_argument("--smoke", action="store_true", help="tiny model and contexts (CPU check)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = p.parse_args()
    deadline = time.monotonic() + args.budget_s if args.budget_s else None
    grid = SMOKE_GRID if args.smoke else GRID
    configs = (args.config or grid["config"]).split(",")
    batches, contexts = ints(args.batch or grid["batch"]), ints(args.context or grid["context"])
    steps = args.steps or (4 if args.smoke else 32)
    dtype = jnp.dtype(args.dtype or ("float32" if args.smoke else "bfloat16"))
    variants = usable(args.variants.split(","))
    stats = jax.devices()[0].memory_stats() or {}
    memory = args.memory_gb * 1e9 if args.memory_gb else stats.get("bytes_limit")

    env = timing.environment()
    ceil = timing.ceilings(**(dict(copy_bytes=1 << 24, matmul_n=256) if args.smoke else {}))
    print(f"{env['device']}, jax {env['jax']}, {dtype}; copy {ceil['copy_Bps'] / 1e12:.3f} TB/s; "
          f"{steps} steps, {', '.join(variants)}"
          + (f"; {memory / 2**30:.0f} GiB" if memory else ""))
    name = "decode_model_smoke" if args.smoke else "decode_model_" + "_".join(configs) + (
        "" if (args.batch, args.context) == (None, None) else "_points")
    csv_path = os.path.join(args.out, name + ".csv")
    meta = dict(env, ceilings=ceil, steps=steps, slope=args.slope,
                configs={c: str(CONFIGS[c]) for c in configs})
    rows, skipped = [], []
    points = [(c, B, P) for c in configs for B in batches for P in contexts]
    for i, (config, B, P) in enumerate(points):
        if deadline is not None and time.monotonic() > deadline:
            skipped += [f"{c} B{b} ctx{p} (time budget)" for c, b, p in points[i:]]
            print(f"(time budget spent: {len(points) - i} points not run)")
            break
        if config != (points[i - 1][0] if i else None):
            params = None
            cfg, params = setup(config, dtype, args.seed)
            print(f"{config}: {cfg}, weights {weight_bytes(params) / 1e9:.2f} GB per step")
        need = footprint(cfg, params, B, P, steps, dtype)
        if memory and need > memory:
            skipped.append(f"{config} B{B} ctx{P} (needs ~{need / 1e9:.0f} GB)")
            print(f"  {config} B{B} ctx{P}: skipped, needs ~{need / 1e9:.0f} GB of "
                  f"{memory / 1e9:.0f}")
            continue
        rounds = [measure_point(config, cfg, params, B, P, steps=steps,
                                variants=variants if r % 2 == 0 else variants[::-1],
                                copy_Bps=ceil["copy_Bps"], dtype=dtype, repeats=args.repeats,
                                slope=args.slope, profile=not args.no_profile and r == 0,
                                seed=args.seed)
                  for r in range(max(1, args.rounds))]
        rows += combine_rounds(rounds)
        timing.write_csv(csv_path, [{k: v for k, v in r.items() if not k.startswith("_")}
                                    for r in rows], meta, quiet=True)
    print_summary(rows, variants)
    if skipped:
        print("skipped: " + "; ".join(skipped))
    timing.write_csv(csv_path, [{k: v for k, v in r.items() if not k.startswith("_")}
                                for r in rows], dict(meta, skipped=skipped))


def print_summary(rows, variants):
    """One line per point: each variant's ms/step and attention share, jax_mea's tokens/s
    and fraction of the roofline, jax_mea / best peer."""
    points = {}
    for r in rows:
        w = points.setdefault((r["config"], r["batch"], r["context"]), {
            "point": f"{r['config']} B{r['batch']} ctx{r['context']}"})
        v = r["variant"]
        w[f"ms {v}"], w[f"share {v}"] = r.get("ms_per_step"), r.get("attn_share")
        if v == "jax_mea":
            w.update(tps=r.get("tokens_per_s"), roof=r.get("frac_roofline"),
                     ratio=r.get("ours_over_best_peer"), diff=r.get("max_logit_diff"))
    cols = [("point", "point", "<s")] + [(f"ms {v}", f"{v} ms/step", ".4g") for v in variants]
    cols += [("ratio", "jax_mea / best peer", ".3f"), ("tps", "jax_mea tokens/s", ".4g"),
             ("roof", "of roofline", ".0%")]
    cols += [(f"share {v}", f"attn {v}", ".0%") for v in variants]
    print()
    timing.print_table(list(points.values()), cols)


if __name__ == "__main__":
    main()
