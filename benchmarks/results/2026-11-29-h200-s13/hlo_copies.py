"""Copies in the compiled decode_model program (large config) for variants of
decode_attention's lengths update: where do the per-layer memcpys come from."""
import re, sys
sys.path.insert(0, "benchmarks")
import jax, jax.numpy as jnp
import decode_model as dm
import jax_mea, jax_mea.cache as jc
from jax_mea.primitives import bind_decode_step
orig = jc.decode_attention

def variant(mode):
    def attend(q, k, v, cache):
        starts = cache.lengths.astype(jnp.int32)
        if mode == "orig":
            return orig(q, k, v, cache)
        steps = q.shape[1]
        out, nk, nv = bind_decode_step(q, k, v, cache.key, cache.value, starts, starts,
                                       left_window=-1, scale=1.0, softcap=0.0)
        wanted = starts + steps
        ovf = cache.overflowed | (wanted > cache.max_seq_len)
        if mode == "barrier":
            starts, out, ovf = jax.lax.optimization_barrier((starts, out, ovf))
        nl = jnp.minimum(starts + steps, cache.max_seq_len).astype(jnp.int32)
        return out, cache.replace(key=nk, value=nv, lengths=nl, overflowed=ovf)
    return attend

cfg, params = dm.setup("large", "bfloat16")
B, P, steps = 8, 1024, 8
for mode in ["orig", "starts_only", "barrier"]:
    caches = dm.fill_caches("jax_mea", cfg, B, P, P + steps, jnp.bfloat16, 0)
    first = jnp.zeros((B,), jnp.int32)
    prog = dm.program(cfg, dm._in_scope(variant(mode)), steps)
    txt = prog.lower(caches, params, first).compile().as_text()
    cps = [l.strip()[:160] for l in txt.splitlines() if re.search(r"= \S+ copy(-start)?\(", l)]
    print(mode, len(cps), "copies;", ", ".join(sorted({c.split('=')[1].split('copy')[0].strip() for c in cps})))
    del caches
