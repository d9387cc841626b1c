"""Backward timing probe: B2 S4096 N32 H128 bf16, causal and not.
jax_mea (whatever JAX_MEA_CUDA_BACKWARD says), jax.nn cudnn/xla, torch flash/cudnn."""
import os, sys, functools
sys.path.insert(0, "benchmarks")
import jax, jax.numpy as jnp, numpy as np
import jax_mea, timing

B, S, N, H = [int(x) for x in os.environ.get("SHAPE", "2,4096,32,128").split(",")]
dt = jnp.bfloat16
def inputs(seed):
    ks = jax.random.split(jax.random.PRNGKey(seed), 4)
    return [jax.random.normal(k, (B, S, N, H), dt) for k in ks]

def jfn(impl, causal):
    if impl == "jax_mea":
        return lambda q, k, v: jax_mea.dot_product_attention(q, k, v, is_causal=causal)
    return lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=causal, implementation=impl)

flops = 4 * B * N * S * S * H
label = os.environ.get("LABEL", "")
for causal in (False, True):
    f = flops / (2 if causal else 1)
    for impl in os.environ.get("IMPLS", "jax_mea,cudnn,xla").split(","):
        try:
            fwd = jfn(impl, causal)
            sets = [tuple(inputs(s)) for s in range(2)]
            t_f = timing.time_jax(fwd, [s[:3] for s in sets], repeats=5)
            vjps = []
            for s in sets:
                _, fv = jax.vjp(fwd, *s[:3])
                vjps.append((fv, s[3]))
            t_b = timing.time_jax(lambda fv, do: fv(do), vjps, repeats=5)
            def vg(q, k, v, do):
                out, fv = jax.vjp(fwd, q, k, v)
                return fv(do)
            t_fb = timing.time_jax(vg, sets, repeats=5)
            print(f"{label}{impl:8s} causal={causal!s:5s} fwd {t_f*1e3:7.3f} ms ({f/t_f/1e12:5.0f} TF/s)  "
                  f"bwd {t_b*1e3:7.3f} ms ({2.5*f/t_b/1e12:5.0f} TF/s)  fwd+bwd {t_fb*1e3:7.3f} ms", flush=True)
        except Exception as e:
            print(f"{label}{impl} causal={causal}: {type(e).__name__}: {str(e)[:200]}", flush=True)
if os.environ.get("TORCH", "1") == "1" and not label:
    torch = timing.torch_cuda()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    F = torch.nn.functional
    for causal in (False, True):
        f = flops / (2 if causal else 1)
        for be in ("FLASH_ATTENTION", "CUDNN_ATTENTION"):
            try:
                with sdpa_kernel(getattr(SDPBackend, be)):
                    sets = []
                    for s in range(2):
                        q, k, v, do = [torch.randn(B, N, S, H, device="cuda", dtype=torch.bfloat16, requires_grad=(i < 3)) for i in range(4)]
                        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                        sets.append((out, (q, k, v), do))
                    fn = lambda j: torch.autograd.grad(sets[j][0], sets[j][1], sets[j][2], retain_graph=True)
                    t_b = timing.time_torch(fn, 2)
                print(f"torch-{be[:5].lower():5s} causal={causal!s:5s} bwd {t_b*1e3:7.3f} ms ({2.5*f/t_b/1e12:5.0f} TF/s)", flush=True)
            except Exception as e:
                print(f"torch {be} causal={causal}: {type(e).__name__}: {str(e)[:200]}", flush=True)
