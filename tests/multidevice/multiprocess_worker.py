"""One process of tests/test_sharding.py::test_multiprocess_decode_step: 2 processes
on localhost with 4 CPU devices each (jax.distributed, gloo collectives) run a
sharded decode step on the global 2x4 (data x model) mesh; each compares the
result with the same step run unsharded on one of its own devices.

    python multiprocess_worker.py PROCESS_ID NUM_PROCESSES PORT
"""

import os
import re
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"

import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

import jax_mea  # noqa: E402

COLLECTIVES = re.compile(r"all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter")


def main(process_id: int, num_processes: int, port: int) -> None:
    jax.distributed.initialize(coordinator_address=f"localhost:{port}",
                               num_processes=num_processes, process_id=process_id,
                               initialization_timeout=60)
    assert jax.device_count() == 8 and jax.local_device_count() == 4
    mesh = jax.make_mesh((2, 4), ("data", "model"))
    batch, steps, heads, kv_heads, size, capacity = 4, 2, 8, 4, 16, 32
    rng = np.random.default_rng(0)  # the same data in both processes
    q = rng.standard_normal((batch, steps, heads, size), np.float32)
    k = rng.standard_normal((batch, steps, kv_heads, size), np.float32)
    v = rng.standard_normal((batch, steps, kv_heads, size), np.float32)
    past = rng.standard_normal((2, batch, kv_heads, capacity, size), np.float32)
    lengths = np.array([3, 0, 17, 30], np.int32)
    overflowed = np.zeros(batch, bool)

    def global_array(x, *spec):
        sharding = NamedSharding(mesh, P(*spec))
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    tokens = P("data", None, "model")
    cache = jax_mea.KVCache(key=global_array(past[0], "data", "model"),
                            value=global_array(past[1], "data", "model"),
                            lengths=global_array(lengths, "data"),
                            overflowed=global_array(overflowed, "data"))
    step = jax.jit(jax_mea.decode_attention, donate_argnums=3)
    args = (global_array(q, *tokens), global_array(k, *tokens), global_array(v, *tokens), cache)
    hlo = step.lower(*args).compile().as_text()
    assert not COLLECTIVES.search(hlo), COLLECTIVES.findall(hlo)
    out, new_cache = step(*args)
    assert tuple(out.sharding.spec)[:3] == tuple(tokens), out.sharding
    assert tuple(new_cache.key.sharding.spec)[:2] == ("data", "model"), new_cache.key.sharding
    shard = new_cache.key.addressable_shards[0].data
    assert shard.nbytes * 8 == new_cache.key.nbytes, shard.shape
    out, key, value = (np.asarray(multihost_utils.process_allgather(x, tiled=True))
                       for x in (out, new_cache.key, new_cache.value))

    local = jax.local_devices()[0]
    ref_cache = jax_mea.KVCache(*(jax.device_put(x, local) for x in (past[0], past[1], lengths,
                                                                    overflowed)))
    ref_out, ref_cache = jax.jit(jax_mea.decode_attention)(
        *(jax.device_put(x, local) for x in (q, k, v)), ref_cache)
    np.testing.assert_array_equal(out, np.asarray(ref_out))
    np.testing.assert_array_equal(key, np.asarray(ref_cache.key))
    np.testing.assert_array_equal(value, np.asarray(ref_cache.value))
    print(f"process {process_id}: OK", flush=True)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
