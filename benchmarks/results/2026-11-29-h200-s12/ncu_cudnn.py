# One jax.nn cuDNN forward (B2 S4096 N32 H128 bf16, non-causal) after a warm-up: for ncu.
import jax, jax.numpy as jnp
q = jax.random.normal(jax.random.PRNGKey(0), (2, 4096, 32, 128), jnp.bfloat16)
k = jax.random.normal(jax.random.PRNGKey(1), (2, 4096, 32, 128), jnp.bfloat16)
v = jax.random.normal(jax.random.PRNGKey(2), (2, 4096, 32, 128), jnp.bfloat16)
f = jax.jit(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, implementation="cudnn"))
for _ in range(3):
    jax.block_until_ready(f(q, k, v))
