"""Training through jax_mea: the decode example's transformer learns a small sequence task.

The model is examples/decode.py's (RoPE, RMSNorm, grouped-query attention, SwiGLU),
smaller, with jax_mea.dot_product_attention (causal) as its attention. The task: each
sequence counts in steps, token[t] = (start + stride * t) mod vocab, with a random start
and stride per sequence, so a token is predictable from the two before it, which the
model can only read through attention. The script

  1. checks the gradients: jax.value_and_grad of the loss with respect to every weight,
     through jax_mea, against the same model with jax.nn.dot_product_attention
     (implementation="xla"), at the initial weights;
  2. trains `--steps` steps of Adam on fresh batches, the whole step jitted
     (value_and_grad through the attention's backward: the C++ kernel on the CPU, the
     CUDA kernel for bfloat16 / float16 on a GPU);
  3. checks that the loss fell: the last steps' mean below `--target` times the first
     step's (exit status 1 otherwise, or if the gradients differ).

    python examples/train.py [--steps 300] [--batch 16] [--seq-len 64] [--attn-dtype float32]

It runs on the CPU, or on the GPU where jax has one: the weights stay float32, and the
attention's inputs are cast to `--attn-dtype` (default float32 on the CPU, bfloat16 on
a GPU), where jax_mea's CUDA backward takes them.
"""
import argparse
import dataclasses
import functools
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jax_mea

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decode as model  # noqa: E402  (the same model the decode example runs)

CONFIG = dataclasses.replace(model.Config(), vocab=64, d_model=128, n_layers=2, n_heads=4,
                             n_kv_heads=2, head_size=32, d_ff=384)
# max |difference| / max |reference| over each weight's gradient, by attention dtype
GRAD_TOLERANCE = {"float32": 2e-4, "bfloat16": 5e-2, "float16": 1e-2}


def attention(impl, dtype):
    """`attend(q, k, v, cache)` for model.forward (through model.apart): causal
    attention with q, k, v cast to `dtype`, the output cast back; no cache (training
    sees whole sequences)."""
    def attend(q, k, v, cache):
        cast = lambda x: x.astype(dtype)  # noqa: E731
        if impl == "jax_mea":
            out = jax_mea.dot_product_attention(cast(q), cast(k), cast(v), is_causal=True)
        else:
            out = jax.nn.dot_product_attention(cast(q), cast(k), cast(v), is_causal=True,
                                               implementation="xla")
        return out.astype(q.dtype), cache
    return attend


def batch_of(key, batch, seq_len, vocab):
    """Counting sequences [batch, seq_len + 1]: (start + stride * t) mod vocab."""
    k1, k2 = jax.random.split(key)
    start = jax.random.randint(k1, (batch, 1), 0, vocab)
    stride = jax.random.randint(k2, (batch, 1), 1, vocab)
    return (start + stride * jnp.arange(seq_len + 1)[None, :]) % vocab


def loss_fn(params, tokens, attend):
    """Mean next-token cross-entropy, from the third token on (the first two carry the
    sequence's start and stride and are not predictable)."""
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    B, T = inputs.shape
    x, _ = model.forward(params, CONFIG, inputs, jnp.broadcast_to(jnp.arange(T), (B, T)),
                         (None,) * CONFIG.n_layers, model.apart(attend, CONFIG.n_kv_heads))
    logp = jax.nn.log_softmax(model.to_logits(params, x), axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return jnp.mean(nll[:, 1:])


def adam(lr, b1=0.9, b2=0.99, eps=1e-8):
    """A minimal Adam (init, update), so that the example needs no optimizer library."""
    def init(params):
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731  (m and v: two buffers)
        return zeros(), zeros(), jnp.zeros((), jnp.int32)

    def update(params, grads, state):
        m, v, t = state
        t = t + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        scale = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        params = jax.tree.map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + eps), params, m, v)
        return params, (m, v, t)
    return init, update


def grad_difference(params, tokens, dtype):
    """The largest max |difference| / max |reference| over the weights' gradients, jax_mea
    against jax.nn (xla), and the two losses. The reference's attention runs in `dtype`,
    or in float32 where XLA's CPU dot takes no float16 (as examples/decode.py's)."""
    ref_dtype = "float32" if jax.default_backend() == "cpu" and dtype == "float16" else dtype
    grad = lambda impl, dt: jax.jit(jax.value_and_grad(  # noqa: E731
        functools.partial(loss_fn, attend=attention(impl, dt))))(params, tokens)
    (loss, got), (want_loss, want) = grad("jax_mea", dtype), grad("xla", ref_dtype)
    worst = max(float(jnp.max(jnp.abs(g - w)) / jnp.maximum(jnp.max(jnp.abs(w)), 1e-30))
                for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)))
    return worst, float(loss), float(want_loss)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--attn-dtype", choices=sorted(GRAD_TOLERANCE), default=None,
                   help="default: float32 on the CPU, bfloat16 on a GPU")
    p.add_argument("--target", type=float, default=0.5,
                   help="the last tenth of the steps' mean loss must be below this times "
                        "the first step's")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    dtype = args.attn_dtype or ("float32" if jax.default_backend() == "cpu" else "bfloat16")
    print(f"device {jax.devices()[0].device_kind} ({jax.default_backend()}), attention in "
          f"{dtype}, {CONFIG}")

    params = model.init_params(CONFIG, args.seed, jnp.float32)
    key = jax.random.PRNGKey(args.seed + 1)
    worst, loss, want_loss = grad_difference(
        params, batch_of(key, args.batch, args.seq_len, CONFIG.vocab), dtype)
    grads_ok = worst <= GRAD_TOLERANCE[dtype]
    print(f"gradients at the initial weights, jax_mea against jax.nn (xla): worst "
          f"max|diff|/max|ref| {worst:.2e} (tolerance {GRAD_TOLERANCE[dtype]:.0e}); "
          f"loss {loss:.4f} against {want_loss:.4f}")

    init, update = adam(args.lr)
    value_and_grad = jax.value_and_grad(
        functools.partial(loss_fn, attend=attention("jax_mea", dtype)))

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, opt_state, key):
        loss, grads = value_and_grad(params, batch_of(key, args.batch, args.seq_len, CONFIG.vocab))
        params, opt_state = update(params, grads, opt_state)
        return params, opt_state, loss

    opt_state = init(params)
    losses, t0 = [], time.perf_counter()
    for step, step_key in enumerate(jax.random.split(key, args.steps)):
        params, opt_state, loss = train_step(params, opt_state, step_key)
        losses.append(float(loss))
        if step == 0:
            t0 = time.perf_counter()  # the first step compiled
        if step % max(1, args.steps // 10) == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {losses[-1]:.4f}")
    per_step = (time.perf_counter() - t0) / max(1, args.steps - 1) * 1e3
    tail = float(np.mean(losses[-max(1, args.steps // 10):]))
    learned = tail < args.target * losses[0]
    print(f"{per_step:.1f} ms per step after compiling; loss {losses[0]:.4f} -> {tail:.4f} "
          f"(must fall below {args.target} x the first)")
    ok = grads_ok and learned
    print("OK" if ok else "FAILED: " + ", ".join(
        m for m, bad in (("gradients differ", not grads_ok), ("loss did not fall", not learned))
        if bad))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
