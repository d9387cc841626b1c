"""Sustained prefill forward, B2 S4096 N32 H128 bf16: time per call of back-to-back
calls in one program, with the SM clock and power that nvidia-smi samples meanwhile,
for jax_mea and jax.nn's cuDNN; then jax_mea's calls one at a time with idle gaps
(the way sm90_check --bench times the kernel alone)."""
import subprocess, sys, threading, time
import jax, jax.numpy as jnp
import jax_mea

B, S, N, H = 2, 4096, 32, 128
causal = "causal" in sys.argv
keys = jax.random.split(jax.random.PRNGKey(0), 12)
sets = [tuple(jax.random.normal(keys[3 * i + j], (B, S, N, H), jnp.bfloat16) for j in range(3))
        for i in range(4)]
variants = {
    "jax_mea": lambda q, k, v: jax_mea.dot_product_attention(q, k, v, is_causal=causal),
    "jax-cudnn": lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=causal,
                                                               implementation="cudnn"),
}
only = [a for a in sys.argv[1:] if a in variants] or list(variants)


def sampler(stop, out):
    while not stop.is_set():
        r = subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,power.draw,temperature.gpu",
                            "--format=csv,noheader,nounits"], capture_output=True, text=True)
        out.append([float(x) for x in r.stdout.strip().split(",")])
        time.sleep(0.1)


def program(fn, n):
    # each call's arguments are parameters of their own: XLA cannot merge two calls
    def run(args):
        return [fn(*args[i]) for i in range(n)]
    return jax.jit(run)


flops = 4 * B * N * S * S * H / (2 if causal else 1)
for name in only:
    fn = variants[name]
    n = 40
    prog = program(fn, n)
    args = [sets[i % len(sets)] for i in range(n)]
    jax.block_until_ready(prog(args))
    samples, stop = [], threading.Event()
    th = threading.Thread(target=sampler, args=(stop, samples)); th.start()
    t0, calls = time.perf_counter(), 0
    while time.perf_counter() - t0 < 6.0:
        jax.block_until_ready(prog(args)); calls += n
    dt = (time.perf_counter() - t0) / calls
    stop.set(); th.join()
    tail = samples[len(samples) // 3:]
    clk = sum(s[0] for s in tail) / len(tail); pw = sum(s[1] for s in tail) / len(tail)
    print(f"{name:10s} sustained  {dt * 1e3:.3f} ms/call {flops / dt / 1e12:6.1f} TFLOP/s  "
          f"SM clock {clk:.0f} MHz  power {pw:.0f} W  temp {tail[-1][2]:.0f} C  ({len(tail)} samples)")
    r = subprocess.run(["nvidia-smi", "--query-gpu=clocks_event_reasons.active,clocks_event_reasons.sw_power_cap,clocks_event_reasons.hw_slowdown",
                        "--format=csv,noheader"], capture_output=True, text=True)
    print(f"{name:10s} clock event reasons at the end: {r.stdout.strip() or r.stderr.strip()[:120]}")
    # after 0.5 s idle: programs of 1 and 5 calls (host-timed; the difference / 4)
    p1, p5 = program(fn, 1), program(fn, 5)
    jax.block_until_ready(p1(args[:1])); jax.block_until_ready(p5(args[:5]))
    per = []
    for i in range(7):
        time.sleep(0.5)
        t = time.perf_counter(); jax.block_until_ready(p1(args[:1])); t1 = time.perf_counter() - t
        time.sleep(0.5)
        t = time.perf_counter(); jax.block_until_ready(p5(args[:5])); t5 = time.perf_counter() - t
        per.append((t5 - t1) / 4)
    per.sort()
    print(f"{name:10s} after idle: {per[3] * 1e3:.3f} ms/call {flops / per[3] / 1e12:6.1f} TFLOP/s")
