"""jax_mea.dot_product_attention next to jax.nn.dot_product_attention.

Same call, same layout ([batch, seq, heads, head_size]): on a few shapes, the two
outputs' relative difference and each one's time; then a value head size different
from the query/key head size, which jax.nn rejects and jax_mea computes.

    python examples/compare.py [--dtype bfloat16]
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import jax_mea


def median_ms(fn, *args, calls=10):
    jax.block_until_ready(fn(*args))                      # compile and warm up
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def rel_diff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dtype", default=None, help="default float32 on the CPU, else bfloat16")
    args = p.parse_args()
    on_cpu = jax.default_backend() == "cpu"
    dtype = jnp.dtype(args.dtype or ("float32" if on_cpu else "bfloat16"))
    S = 512 if on_cpu else 4096
    print(f"{jax.devices()[0].device_kind}, {dtype}")
    keys = iter(jax.random.split(jax.random.PRNGKey(0), 64))
    rand = lambda *shape: jax.random.normal(next(keys), shape, dtype)

    # (description, B, Sq, Skv, Nq, Nkv, H, keyword arguments for both functions)
    cases = [("self-attention", 2, S, S, 8, 8, 64, {}),
             ("causal", 2, S, S, 8, 8, 64, dict(is_causal=True)),
             ("causal, GQA 8 query / 2 kv heads", 2, S, S, 8, 2, 128, dict(is_causal=True)),
             ("ragged kv lengths", 4, S // 4, S, 8, 8, 64,
              dict(key_value_seq_lengths=jnp.array([S, S // 2, S // 3, 7], jnp.int32))),
             ("one query over a long kv", 4, 1, 4 * S, 16, 4, 128, {})]
    print(f"{'case':34s} {'shape':32s} {'rel diff':>9s} {'jax.nn ms':>10s} {'jax_mea ms':>10s}")
    for desc, B, Sq, Skv, Nq, Nkv, H, kw in cases:
        q, k, v = rand(B, Sq, Nq, H), rand(B, Skv, Nkv, H), rand(B, Skv, Nkv, H)
        ours = jax.jit(lambda q, k, v: jax_mea.dot_product_attention(q, k, v, **kw))
        peer = jax.jit(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, **kw))
        shape = f"B{B} Sq{Sq} Skv{Skv} N{Nq}/{Nkv} H{H}"
        print(f"{desc:34s} {shape:32s} {rel_diff(ours(q, k, v), peer(q, k, v)):9.1e} "
              f"{median_ms(peer, q, k, v):10.3f} {median_ms(ours, q, k, v):10.3f}")

    # Value head size != key head size (e.g. MLA-style 192/128): jax.nn refuses it.
    B, Sq, N, H, Hv = 2, 256, 8, 192, 128
    q, k, v = rand(B, Sq, N, H), rand(B, Sq, N, H), rand(B, Sq, N, Hv)
    try:
        jax.nn.dot_product_attention(q, k, v, is_causal=True)
        print("jax.nn.dot_product_attention accepted H != Hv")
    except ValueError as e:
        print(f"\njax.nn.dot_product_attention, H={H} Hv={Hv}: ValueError: {e}")
    out = jax_mea.dot_product_attention(q, k, v, is_causal=True)
    # the reference, spelled out in float32: softmax(q k^T / sqrt(H) + causal mask) v
    f32 = lambda x: x.astype(jnp.float32)
    s = jnp.einsum("bqnh,bknh->bnqk", f32(q), f32(k), precision="highest") / np.sqrt(H)
    s = jnp.where(jnp.tril(jnp.ones((Sq, Sq), bool)), s, -jnp.inf)
    ref = jnp.einsum("bnqk,bknh->bqnh", jax.nn.softmax(s, -1), f32(v), precision="highest")
    print(f"jax_mea.dot_product_attention: out {out.shape} {out.dtype}, "
          f"rel diff from a float32 reference {rel_diff(out, ref):.1e}")


if __name__ == "__main__":
    main()
