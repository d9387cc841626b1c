"""Greedy decoding with a KV cache: a small transformer LM on jax_mea.decode_attention.

The model is a decoder-only transformer in the usual modern shape (RoPE, RMSNorm,
grouped-query attention, SwiGLU MLP) with deterministic random weights. Its attention
takes the fused QKV projection's output as it comes, packed (decode_attention with key
and value None). It

  1. prefills a batch of prompts of different lengths: ONE jax_mea.decode_attention
     call per layer writes the whole prompt (T = prompt length) into that layer's
     KVCache and attends causally over it;
  2. decodes `--steps` tokens greedily inside a jax.lax.scan, one decode_attention
     call (T = 1) per layer and step, the whole loop jitted and the caches donated
     so that each step appends to the cache in place;
  3. checks itself: it recomputes every sequence from scratch with full causal
     attention (jax.nn.dot_product_attention, implementation="xla", no cache) and
     compares the logits at every generated position. Exit status 1 if they differ
     by more than a tolerance for the dtype.

    python examples/decode.py [--steps 64] [--batch 3] [--prompt-len 48] [--dtype float32]

It runs on the CPU, or on the GPU where jax has one (default dtype bfloat16 there).
"""
import argparse
import dataclasses
import functools
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jax_mea


@dataclasses.dataclass(frozen=True)  # frozen: hashable, so it can be a static jit argument
class Config:
    vocab: int = 256
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 8        # query heads
    n_kv_heads: int = 2     # key/value heads (GQA: 4 query heads share one kv head)
    head_size: int = 32
    d_ff: int = 768         # SwiGLU hidden size
    rope_theta: float = 10000.0


def init_params(cfg, seed, dtype):
    """Random weights, scaled by 1/sqrt(fan_in) so activations and logits stay O(1)."""
    keys = iter(jax.random.split(jax.random.PRNGKey(seed), 2 + 5 * cfg.n_layers))

    def dense(fan_in, fan_out):
        w = jax.random.normal(next(keys), (fan_in, fan_out), jnp.float32) / np.sqrt(fan_in)
        return w.astype(dtype)

    d, hq, hkv = cfg.d_model, cfg.n_heads * cfg.head_size, cfg.n_kv_heads * cfg.head_size
    # wqkv: the query, key and value projections fused into one matrix (one matmul)
    layers = [dict(attn_norm=jnp.ones(d, dtype), wqkv=dense(d, hq + 2 * hkv),
                   wo=dense(hq, d), mlp_norm=jnp.ones(d, dtype),
                   w_gate=dense(d, cfg.d_ff), w_up=dense(d, cfg.d_ff), w_down=dense(cfg.d_ff, d))
              for _ in range(cfg.n_layers)]
    embed = jax.random.normal(next(keys), (cfg.vocab, d), jnp.float32).astype(dtype)
    return dict(embed=embed, layers=layers, final_norm=jnp.ones(d, dtype),
                lm_head=dense(d, cfg.vocab))


def rms_norm(x, w, eps=1e-6):
    xf = x.astype(jnp.float32)
    xf = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + eps)
    return (xf * w.astype(jnp.float32)).astype(x.dtype)


def rope(x, positions, theta, rotated_heads=None):
    """Rotary position embedding. x [B, T, N, H], positions int [B, T] (one per row).
    rotated_heads: only heads [0, rotated_heads) turn (a packed QKV's query and key
    heads); the others pass through."""
    half = x.shape[-1] // 2
    freqs = theta ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions[..., None].astype(jnp.float32) * freqs          # [B, T, half]
    cos, sin = jnp.cos(angles)[:, :, None], jnp.sin(angles)[:, :, None]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    turned = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).astype(x.dtype)
    if rotated_heads is None:
        return turned
    return jnp.where(jnp.arange(x.shape[2])[:, None] < rotated_heads, turned, x)


def decode_step(qkv, cache):
    """forward's attention with a KVCache: jax_mea.decode_attention on the packed QKV
    (key and value None), which reads the three through strides, with no copies."""
    return jax_mea.decode_attention(qkv, None, None, cache)


def split_qkv(qkv, n_kv_heads):
    """Packed [B, T, Nq + 2 Nkv, H] -> q [B, T, Nq, H], k, v [B, T, Nkv, H]."""
    nq = qkv.shape[2] - 2 * n_kv_heads
    return qkv[:, :, :nq], qkv[:, :, nq:nq + n_kv_heads], qkv[:, :, nq + n_kv_heads:]


def apart(attend, n_kv_heads):
    """An attention taking (q, k, v, cache) as forward's attend(qkv, cache)."""
    return lambda qkv, cache: attend(*split_qkv(qkv, n_kv_heads), cache)


def forward(params, cfg, tokens, positions, caches, attend):
    """tokens, positions [B, T] -> final hidden states [B, T, d_model], new caches.

    `attend(qkv, cache) -> (out, cache)` is the attention with its cache, one cache per
    layer in the tuple `caches`; qkv [B, T, Nq + 2 Nkv, H] is the fused projection's
    output, its query and key heads rotated (decode_step; the reference below passes a
    cache-less full attention through `apart`).
    """
    B, T = tokens.shape
    x = params["embed"][tokens]
    new_caches = []
    for layer, cache in zip(params["layers"], caches):
        h = rms_norm(x, layer["attn_norm"])
        qkv = (h @ layer["wqkv"]).reshape(B, T, cfg.n_heads + 2 * cfg.n_kv_heads, cfg.head_size)
        qkv = rope(qkv, positions, cfg.rope_theta, rotated_heads=cfg.n_heads + cfg.n_kv_heads)
        o, cache = attend(qkv, cache)                        # o [B, T, n_heads, head_size]
        x = x + o.reshape(B, T, -1) @ layer["wo"]
        h = rms_norm(x, layer["mlp_norm"])
        x = x + (jax.nn.silu(h @ layer["w_gate"]) * (h @ layer["w_up"])) @ layer["w_down"]
        new_caches.append(cache)
    return x, tuple(new_caches)


def to_logits(params, x):
    """Hidden states [..., d_model] -> logits [..., vocab] (float32)."""
    return (rms_norm(x, params["final_norm"]) @ params["lm_head"]).astype(jnp.float32)


def replace_fields(cache, **fields):
    """A copy of an immutable cache pytree with some fields replaced (e.g. lengths)."""
    if hasattr(cache, "_replace"):                # NamedTuple
        return cache._replace(**fields)
    if dataclasses.is_dataclass(cache):
        return dataclasses.replace(cache, **fields)
    return cache.replace(**fields)


def make_caches(cfg, batch, max_len, dtype):
    return tuple(jax_mea.KVCache.create(batch, max_len, cfg.n_kv_heads, cfg.head_size, dtype=dtype)
                 for _ in range(cfg.n_layers))


@functools.partial(jax.jit, static_argnums=1, donate_argnums=3)
def prefill(params, cfg, prompt, caches, prompt_lens):
    """Run the padded prompts [B, P] through the model, filling the (empty) caches.

    Returns the logits at each row's last prompt token [B, vocab] and the caches.
    """
    B, P = prompt.shape
    positions = jnp.broadcast_to(jnp.arange(P), (B, P))
    x, caches = forward(params, cfg, prompt, positions, caches, decode_step)
    # decode_attention appended all P tokens to every row (lengths = P). A shorter prompt's
    # padding tail is junk that no real token attended to (attention is causal); setting
    # lengths back to the true prompt lengths hides it, and decoding overwrites it.
    caches = tuple(replace_fields(c, lengths=prompt_lens) for c in caches)
    last = jnp.take_along_axis(x, (prompt_lens - 1)[:, None, None], axis=1)[:, 0]
    return to_logits(params, last), caches


@functools.partial(jax.jit, static_argnums=(1, 4, 5), donate_argnums=2)
def generate(params, cfg, caches, first_token, steps, attend=decode_step):
    """Greedy decoding: `steps` single-token steps in a lax.scan.

    Step i feeds token i (first_token for i = 0) at each row's own position, which is its
    cache length. Returns the fed tokens [B, steps], the logits each step produced
    [B, steps, vocab] and the caches. `caches` is donated: the appends happen in place.
    `attend` (static) swaps the attention: benchmarks/decode_model.py passes plain-jax ones.
    """
    def step(carry, _):
        caches, token = carry
        positions = caches[0].lengths[:, None]
        x, caches = forward(params, cfg, token[:, None], positions, caches, attend)
        step_logits = to_logits(params, x[:, 0])
        next_token = jnp.argmax(step_logits, axis=-1).astype(jnp.int32)
        return (caches, next_token), (token, step_logits)

    (caches, _), (fed, all_logits) = jax.lax.scan(step, (caches, first_token), None, length=steps)
    return fed.T, jnp.swapaxes(all_logits, 0, 1), caches


def full_causal_attention(q, k, v, cache):
    """The reference: plain causal attention over the whole sequence, no cache, computed
    in float32 (XLA's CPU dot rejects float16 inputs with float32 accumulation)."""
    f32 = lambda x: x.astype(jnp.float32)
    out = jax.nn.dot_product_attention(f32(q), f32(k), f32(v), is_causal=True, implementation="xla")
    return out.astype(q.dtype), cache


@functools.partial(jax.jit, static_argnums=1)
def reference_logits(params, cfg, prompt, prompt_lens, fed):
    """Recompute each row's sequence (its prompt, then the fed tokens) from scratch and
    return the logits at the positions where the cached run produced logits [B, N+1, V]."""
    (B, P), N = prompt.shape, fed.shape[1]
    j = jnp.arange(P + N)[None, :]
    after = jnp.take_along_axis(fed, jnp.clip(j - prompt_lens[:, None], 0, N - 1), axis=1)
    seq = jnp.where(j < prompt_lens[:, None], jnp.pad(prompt, ((0, 0), (0, N))), after)
    x, _ = forward(params, cfg, seq, jnp.broadcast_to(j, seq.shape),
                   (None,) * cfg.n_layers, apart(full_causal_attention, cfg.n_kv_heads))
    idx = prompt_lens[:, None] - 1 + jnp.arange(N + 1)[None, :]      # last prompt token onwards
    return to_logits(params, jnp.take_along_axis(x, idx[..., None], axis=1))


TOLERANCE = {"float32": 2e-3, "bfloat16": 0.15, "float16": 0.05}   # max |logit difference|


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=64, help="decode steps (tokens per row)")
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--prompt-len", type=int, default=48, help="longest prompt; others shorter")
    p.add_argument("--dtype", choices=sorted(TOLERANCE), default=None,
                   help="default: float32 on the CPU, bfloat16 on a GPU")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    dtype = args.dtype or ("float32" if jax.default_backend() == "cpu" else "bfloat16")
    cfg, B, P, N = Config(), args.batch, args.prompt_len, args.steps
    print(f"device {jax.devices()[0].device_kind} ({jax.default_backend()}), dtype {dtype}, "
          f"{cfg}")

    params = init_params(cfg, args.seed, jnp.dtype(dtype))
    rng = np.random.default_rng(args.seed)
    prompt = jnp.asarray(rng.integers(0, cfg.vocab, (B, P)), jnp.int32)
    # Ragged prompts: the first row is P tokens long, the others between P/2 and P.
    prompt_lens = jnp.asarray([P] + list(rng.integers(max(1, P // 2), P + 1, B - 1)), jnp.int32)
    caches = make_caches(cfg, B, P + N, jnp.dtype(dtype))

    # Compile ahead of time, so that the timings below exclude compilation.
    t0 = time.perf_counter()
    prefill_c = prefill.lower(params, cfg, prompt, caches, prompt_lens).compile()
    first = jnp.zeros((B,), jnp.int32)
    generate_c = generate.lower(params, cfg, caches, first, N).compile()
    print(f"compiled in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    last_logits, caches = jax.block_until_ready(prefill_c(params, prompt, caches, prompt_lens))
    t_prefill = time.perf_counter() - t0
    first = jnp.argmax(last_logits, axis=-1).astype(jnp.int32)
    t0 = time.perf_counter()
    fed, step_logits, caches = jax.block_until_ready(generate_c(params, caches, first))
    t_decode = time.perf_counter() - t0
    print(f"prefill: {int(prompt_lens.sum())} tokens in {t_prefill * 1e3:.1f} ms; decode: "
          f"{B} x {N} tokens in {t_decode * 1e3:.1f} ms = {B * N / t_decode:.0f} tokens/s "
          f"({t_decode / N * 1e3:.2f} ms/step)")
    print(f"cache lengths after decoding: {np.asarray(caches[0].lengths)} (prompts + {N})")

    ours = jnp.concatenate([last_logits[:, None], step_logits], axis=1)      # [B, N+1, vocab]
    ref = reference_logits(params, cfg, prompt, prompt_lens, fed)
    diff = float(jnp.max(jnp.abs(ours - ref)))
    agree = np.asarray(jnp.argmax(ours, -1) == jnp.argmax(ref, -1))
    print(f"row 0 generates: {np.asarray(fed[0, 1:min(N, 17)]).tolist()} ...")
    print(f"vs full recompute with jax.nn.dot_product_attention: max |logit diff| {diff:.3g} "
          f"(tolerance {TOLERANCE[dtype]}, logits up to {float(jnp.max(jnp.abs(ref))):.3g}); "
          f"greedy tokens agree at {agree.sum()}/{agree.size} positions")
    if not diff <= TOLERANCE[dtype]:                                       # NaN fails too
        print("FAIL: logits differ beyond tolerance")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
