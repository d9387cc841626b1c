"""Attention cases and contenders shared by cpu.py, decode.py and prefill.py.

A Case is one attention shape (Sq == 1: a decode step over a cache of Skv keys, the
last of which the step itself appends). A contender takes (case, dtype, seed), builds
its own inputs in its own layout, checks its output on batch row 0 against a float32
reference (check), and returns (seconds per call, relative error[, note]). run_cases
times every contender on every case, prints a table and returns rows for a CSV.

Passes (PASSES; prefill.py --passes): a contender times the forward, or with
mode='backward' the backward alone (the VJP applied to a cotangent, the forward's
residuals computed before the timed program), or with mode='fwd+bwd' the forward and
backward in one call (a vjp and its application: value_and_grad's work), and then
checks the gradients against the reference's VJP. Those contenders are in
GRAD_CONTENDERS (jax_mea, jax.nn, torch SDPA); jax_mea's rows note which backward
its program calls (jax_mea_backward).

Contenders: jax_mea (jax_mea.dot_product_attention on the inputs jax.nn gets; the
decode kernel where Sq == 1), jax_mea-step (a whole jax_mea.decode_attention step:
append to a donated KVCache, then attend; Sq == 1 only), jax-xla / jax-cudnn
(jax.nn.dot_product_attention), torch-flash / torch-efficient / torch-cudnn (torch
SDPA backends, on jax-made buffers through DLPack). Every contender is timed on the
device side (timing.time_jax / time_torch: many calls per program or CUDA graph,
rotating among input sets where they would fit in L2).

The *-scan contenders (Sq == 1 only) time the same attention as n steps of one
lax.scan instead (timing.time_steps, the method of issue 11): each step's query is the
previous one plus 1e-3 x the previous output, so that no step can be hoisted or
overlapped, and the inputs stay the same (a cache that fits in L2 is served from L2,
as in a decode loop). jax_mea-scan carries a KVCache of capacity case.cap (donated)
and appends a token per step in place; jax-xla-scan / jax-cudnn-scan attend over the
case's Skv keys. Each family (calls, scan) has its own best peer (run_cases).
"""
import dataclasses
import functools
import gc
import importlib.util
import os
import statistics
import sys
import time
import warnings

import timing  # noqa: F401  (before jax: GPU memory settings)

import jax
import jax.numpy as jnp
import numpy as np

import jax_mea

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_example(name):
    """examples/<name>.py as a module (the benchmarks have a decode.py of their own)."""
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", os.path.join(REPO, "examples", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


replace_fields = load_example("decode").replace_fields


@dataclasses.dataclass(frozen=True)
class Case:
    B: int
    Nq: int
    Nkv: int
    H: int
    Skv: int
    Sq: int = 1              # 1: a decode step
    Hv: int | None = None    # value head size, default H
    causal: bool = False
    ragged: bool = False     # per-row kv lengths, drawn in [Skv/8, Skv]
    capacity: int | None = None  # KV cache capacity (default Skv): a decode loop's cache
    #                              is larger than what it holds (jax_mea-step, -scan)

    @property
    def cap(self):
        return self.Skv if self.capacity is None else self.capacity

    @property
    def hv(self):
        return self.H if self.Hv is None else self.Hv

    @property
    def name(self):
        kind = "decode" if self.Sq == 1 else "prefill"
        s = f"S{self.Skv}" if self.Sq in (1, self.Skv) else f"Sq{self.Sq} Skv{self.Skv}"
        n = f"N{self.Nq}" if self.Nq == self.Nkv else f"N{self.Nq}/{self.Nkv}"
        h = f"H{self.H}" if self.hv == self.H else f"H{self.H}/{self.hv}"
        extra = (" causal" if self.causal else "") + (" ragged" if self.ragged else "")
        extra += f" cap{self.cap}" if self.cap != self.Skv else ""
        return f"{kind} B{self.B} {s} {n} {h}{extra}"

    def kv_lengths(self):
        if not self.ragged:
            return np.full(self.B, self.Skv, np.int32)
        rng = np.random.default_rng(self.B * 7919 + self.Skv)
        return rng.integers(max(1, self.Skv // 8), self.Skv + 1, self.B).astype(np.int32)

    def nbytes(self, itemsize):
        """Fewest bytes moved: q, the valid k and v, out, each once."""
        qo = self.B * self.Sq * self.Nq * (self.H + self.hv)
        kv = int(self.kv_lengths().sum()) * self.Nkv * (self.H + self.hv)
        return itemsize * (qo + kv)

    def flops(self):
        """2 * B * N * Sq * Skv * (H + Hv) (= 4 B N Sq Skv H), halved for causal."""
        f = 2 * self.Nq * self.Sq * int(self.kv_lengths().sum()) * (self.H + self.hv)
        return f / 2 if self.causal else f

    def cache_bytes(self, itemsize):
        return itemsize * self.B * self.Nkv * self.cap * (self.H + self.hv)


@functools.partial(jax.jit, static_argnums=(1, 2))
def randn(key, shape, dtype):
    """Standard normal array drawn row by row (a row has < 2**32 elements), in one jit:
    no intermediate the size of the output, however large."""
    rows = jax.random.split(key, shape[0])
    return jax.vmap(lambda k: jax.random.normal(k, shape[1:], dtype))(rows)


def make_inputs(case, dtype, seed, kv_layout):
    """Random q [B, Sq, Nq, H] and k, v in kv_layout 'BSNH' or 'BNSH' (never zeros)."""
    kq, kk, kv = jax.random.split(jax.random.PRNGKey(seed), 3)
    c, dtype = case, jnp.dtype(dtype)
    shape = (lambda h: (c.B, c.Skv, c.Nkv, h)) if kv_layout == "BSNH" else (
        lambda h: (c.B, c.Nkv, c.Skv, h))
    return (randn(kq, (c.B, c.Sq, c.Nq, c.H), dtype), randn(kk, shape(c.H), dtype),
            randn(kv, shape(c.hv), dtype))


def reference(q, k, v, kv_len, causal, kv_layout):
    """float32 attention; q BTNH, k/v per kv_layout, kv_len int [B]; causal is
    bottom-right (query i sees key j <= i + kv_len - Sq). Returns [B, T, Nq, Hv]."""
    f32 = lambda x: x.astype(jnp.float32)
    if kv_layout == "BNSH":
        k, v = jnp.swapaxes(k, 1, 2), jnp.swapaxes(v, 1, 2)
    (B, T, Nq, H), (S, Nkv) = q.shape, k.shape[1:3]
    hi = jax.lax.Precision.HIGHEST
    s = jnp.einsum("btkgh,bskh->bkgts", f32(q).reshape(B, T, Nkv, Nq // Nkv, H), f32(k),
                   precision=hi) / np.sqrt(H)
    L = jnp.asarray(kv_len)[:, None, None, None, None]
    i, j = jnp.arange(T)[:, None], jnp.arange(S)[None, :]
    ok = (j < L) & ((j <= i + L - T) if causal else True)
    p = jax.nn.softmax(jnp.where(ok, s, -jnp.inf), axis=-1)
    return jnp.einsum("bkgts,bskh->btkgh", p, f32(v), precision=hi).reshape(B, T, Nq, -1)


def rel_error(out, ref):
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(out - ref) / np.linalg.norm(ref))


# The float32 reference that a contender is checked against holds its scores [Nq, Sq,
# Skv] under this many bytes (with the gradients' several such buffers): all of batch
# row 0 at B2 S4096 N32, not at S16384, where it would not fit beside them.
CHECK_SCORE_BYTES = 1 << 31


def checked_kv_heads(case):
    """How many kv heads (each with its group of query heads) of batch row 0 are
    checked: all while the reference's float32 scores fit CHECK_SCORE_BYTES, else as
    many as fit, at least one."""
    per_kv_head = 4 * (case.Nq // case.Nkv) * case.Sq * case.Skv
    return max(1, min(case.Nkv, CHECK_SCORE_BYTES // per_kv_head))


def check(case, kv_layout, inputs, got, dout=None):
    """Relative error of a contender's result against `reference`, on batch row 0 and
    its first checked_kv_heads kv heads with their query heads (attention does not mix
    kv-head groups, so that part is a smaller attention of its own).

    inputs: (q BTNH, k, v in kv_layout), as the contender got them. got: the output
    BTNH; or, with dout (the cotangent, BTNH), the gradients (dq BTNH, dk, dv in
    kv_layout), compared with the reference's VJP: the largest of the three errors."""
    n = checked_kv_heads(case)
    part_q = lambda x: x[:1, :, :n * case.Nq // case.Nkv]
    part_kv = (lambda x: x[:1, :, :n]) if kv_layout == "BSNH" else (lambda x: x[:1, :n])
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    q, k, v = f32(part_q(inputs[0])), f32(part_kv(inputs[1])), f32(part_kv(inputs[2]))
    ref = lambda q, k, v: reference(q, k, v, case.kv_lengths()[:1], case.causal, kv_layout)
    if dout is None:
        return rel_error(part_q(got), ref(q, k, v))
    _, vjp = jax.vjp(ref, q, k, v)
    want = vjp(f32(part_q(dout)))
    return max(rel_error(part(g), w) for part, g, w in zip((part_q, part_kv, part_kv), got, want))


def _sets(case, dtype):
    return timing.n_input_sets(case.nbytes(jnp.dtype(dtype).itemsize))


# The passes a contender can time, and each one's work in units of the forward's
# flops: the backward recomputes the scores and runs four matmuls (dv, dp, dq, dk) to
# the forward's two, counted as 2.5x the forward as FlashAttention counts it.
PASSES = {"forward": 1.0, "backward": 2.5, "fwd+bwd": 3.5}


def cotangent(case, dtype, seed):
    """A random cotangent of the output, [B, Sq, Nq, Hv]."""
    return randn(jax.random.PRNGKey(seed + 10**6), (case.B, case.Sq, case.Nq, case.hv),
                 jnp.dtype(dtype))


def jax_mea_backward(lowered):
    """The backward that a lowered jax_mea gradient program runs: jax_mea's kernel
    (the CPU one; on CUDA the tensor-core one where it takes the dtype and head sizes,
    unless JAX_MEA_CUDA_BACKWARD=0 at import) or XLA's unfused computation."""
    kernel = jax_mea._ffi.ATTENTION_BWD_TARGET in lowered.as_text()
    return "backward: " + ("jax_mea kernel" if kernel else "XLA (unfused)")


def run_dot_product_attention(attention, **options):
    """A contender calling attention(q, k, v, is_causal=..., key_value_seq_lengths=...,
    **options) on BSNH inputs: jax_mea.dot_product_attention (for Sq == 1 the decode
    kernel, attention alone, as every peer is timed) or jax.nn.dot_product_attention.
    mode: a pass of PASSES."""
    def run(case, dtype, seed, mode="forward", **timing_kw):
        lens = case.kv_lengths()
        sets = [make_inputs(case, dtype, seed + s, "BSNH") + (jnp.asarray(lens),)
                for s in range(_sets(case, dtype))]
        fn = lambda q, k, v, lens: attention(
            q, k, v, is_causal=case.causal,
            key_value_seq_lengths=lens if case.ragged else None, **options)
        qkv = sets[0][:3]
        if mode == "forward":
            err = check(case, "BSNH", qkv, jax.jit(fn)(*sets[0]))
            return timing.time_jax(fn, sets, **timing_kw), err
        douts = [cotangent(case, dtype, seed + s) for s in range(len(sets))]

        def fwd_bwd(q, k, v, lens, dout):
            out, vjp = jax.vjp(lambda q, k, v: fn(q, k, v, lens), q, k, v)
            return out, vjp(dout)

        if mode == "fwd+bwd":
            step, sets = fwd_bwd, [s + (d,) for s, d in zip(sets, douts)]
            grads = lambda result: result[1]
        elif mode == "backward":    # the forward's residuals (in vjp) are inputs, untimed
            step, grads = (lambda vjp, dout: vjp(dout)), (lambda result: result)
            sets = [(jax.vjp(lambda q, k, v: fn(q, k, v, s[3]), *s[:3])[1], d)
                    for s, d in zip(sets, douts)]
        else:
            raise ValueError(f"mode {mode!r}: expected one of {list(PASSES)}")
        err = check(case, "BSNH", qkv, grads(jax.jit(step)(*sets[0])), douts[0])
        t = timing.time_jax(step, sets, **timing_kw)
        if attention is not jax_mea.dot_product_attention:
            return t, err
        return t, err, jax_mea_backward(jax.jit(step).lower(*sets[0]))
    return run


def _decode_state(case, dtype, seed):
    """What a jax_mea decode step starts from: (q, the new token's k and v [B, 1, Nkv, H],
    a KVCache of capacity case.cap holding the first kv_lengths() - 1 keys)."""
    if case.Sq != 1:
        raise ValueError("decode steps only")
    q, kc, vc = make_inputs(case, dtype, seed, "BNSH")
    kn, vn = (randn(key, (case.B, 1, case.Nkv, h), jnp.dtype(dtype)) for key, h in
              zip(jax.random.split(jax.random.PRNGKey(seed + 10**6)), (case.H, case.hv)))
    return q, kn, vn, filled_cache(kc, vc, case.kv_lengths() - 1, case.cap)


def _decode_error(case, step, cache, q, *args):
    """Runs step(cache, q, *args) -> (out, cache) once, the cache donated; returns (the
    relative error of out's row 0 against the reference over the cache it attended to,
    the cache)."""
    out, cache = jax.jit(step, donate_argnums=0)(cache, q, *args)
    return rel_error(out[:1], reference(q[:1], cache.key[:1], cache.value[:1],
                                        case.kv_lengths()[:1], False, "BNSH")), cache


def run_jax_mea_step(case, dtype, seed, **timing_kw):
    """A whole decode step, jax_mea.decode_attention: the cache (BNSH, capacity case.cap,
    donated) holds lens - 1 tokens, the step appends the lens-th in place and attends
    over lens. The cache comes back with its lengths reset, so that every call does the
    same work."""
    def step(cache, q, k, v):
        out, new = jax_mea.decode_attention(q, k, v, cache)
        return out, replace_fields(new, lengths=cache.lengths)

    caches, sets = [], []
    for s in range(_sets(case, dtype)):
        q, kn, vn, cache = _decode_state(case, dtype, seed + s)
        caches.append(cache)
        sets.append((q, kn, vn))
    err, caches[0] = _decode_error(case, step, caches[0], *sets[0])
    return timing.time_jax(step, sets, carries=caches, **timing_kw), err


def next_query(q, out):
    """The next scan step's query: q plus 1e-3 x the first channel of each head's output,
    so that a step depends on the one before it (none can be hoisted or overlapped)."""
    return q + (out[..., :1] * 1e-3).astype(q.dtype)


def jax_mea_scan_setup(case, dtype, seed):
    """jax_mea.decode_attention as a scan step: the cache (capacity case.cap, carried
    and donated) holds lens - 1 tokens; each step sets its lengths back and appends the
    lens-th token in place, then attends over lens. Returns (step(carry, *consts) ->
    carry, carry, consts, relative error of one step's output)."""
    q, kn, vn, cache = _decode_state(case, dtype, seed)
    lengths = jnp.asarray(case.kv_lengths() - 1)   # its own buffer: the cache is donated

    def attend(cache, q, kn, vn, lengths):
        return jax_mea.decode_attention(q, kn, vn, replace_fields(cache, lengths=lengths))

    def step(carry, kn, vn, lengths):
        q, cache = carry
        out, cache = attend(cache, q, kn, vn, lengths)
        return next_query(q, out), cache

    err, cache = _decode_error(case, attend, cache, q, kn, vn, lengths)
    return step, (q, cache), (kn, vn, lengths), err


def peer_scan_setup(implementation):
    """jax.nn.dot_product_attention as a scan step over the case's Skv keys
    [B, Skv, Nkv, H] (key_value_seq_lengths for ragged rows): the peers' best case, no
    larger cache to mask and no append. Returns a setup as jax_mea_scan_setup's."""
    def setup(case, dtype, seed):
        if case.Sq != 1:
            raise ValueError("decode steps only")
        lens = case.kv_lengths()
        q, k, v = make_inputs(case, dtype, seed, "BSNH")
        kv_lens = jnp.asarray(lens) if case.ragged else None
        attend = lambda q, k, v, kv_lens: jax.nn.dot_product_attention(
            q, k, v, key_value_seq_lengths=kv_lens, implementation=implementation)
        err = rel_error(jax.jit(attend)(q, k, v, kv_lens)[:1],
                        reference(q[:1], k[:1], v[:1], lens[:1], False, "BSNH"))
        step = lambda q, k, v, kv_lens: next_query(q, attend(q, k, v, kv_lens))
        return step, q, (k, v, kv_lens), err
    return setup


# The scan contenders' steps (tools/jax_timeline.py --scan profiles the same programs).
SCAN_SETUPS = {"jax_mea-scan": jax_mea_scan_setup,
               "jax-xla-scan": peer_scan_setup("xla"),
               "jax-cudnn-scan": peer_scan_setup("cudnn")}


def run_scan(setup):
    """A scan contender: setup's step, n steps in one lax.scan (timing.time_steps)."""
    def run(case, dtype, seed, counts=timing.SCAN_COUNTS, repeats=5, **_):
        step, carry, consts, err = setup(case, dtype, seed)
        t, _, _ = timing.time_steps(timing.scan_programs(step, counts), carry, consts,
                                    repeats=repeats)
        return t, err
    return run


def filled_cache(k, v, lengths, capacity=None):
    """A jax_mea.KVCache holding k, v (BNSH) and lengths, of the given capacity (default
    the keys' length; positions past the keys are zeros)."""
    B, Nkv, L, H = k.shape
    capacity = L if capacity is None else capacity
    if capacity > L:
        pad = ((0, 0), (0, 0), (0, capacity - L), (0, 0))
        k, v = jnp.pad(k, pad), jnp.pad(v, pad)
    template = jax.eval_shape(lambda: jax_mea.KVCache.create(
        B, capacity, Nkv, H, v_head_size=v.shape[-1], dtype=k.dtype))
    cache = replace_fields(template, key=k, value=v, lengths=jnp.asarray(lengths, jnp.int32))
    # any other field (e.g. a flag array) as KVCache.create makes it: zeros
    return jax.tree_util.tree_map(
        lambda x: jnp.zeros(x.shape, x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x, cache)


def run_torch(backend):
    """A torch SDPA backend on jax-made buffers (through DLPack); mode: a pass of PASSES.
    The backward alone keeps each input set's forward graph (retain_graph) and times
    torch.autograd.grad of its output; fwd+bwd times the call and autograd.grad."""
    def run(case, dtype, seed, mode="forward", **_):
        torch = timing.torch_cuda()
        if torch is None:
            raise RuntimeError("no torch with CUDA")
        if mode not in PASSES:
            raise ValueError(f"mode {mode!r}: expected one of {list(PASSES)}")
        from torch.nn.attention import SDPBackend, sdpa_kernel
        F = torch.nn.functional
        warnings.filterwarnings("ignore", category=UserWarning)
        lens = case.kv_lengths()
        mask = None
        if case.ragged:
            tl = torch.as_tensor(lens, device="cuda")
            mask = (torch.arange(case.Skv, device="cuda")[None] < tl[:, None])[:, None, None]
        sets = []
        for s in range(_sets(case, dtype)):
            q, k, v = jax.block_until_ready(make_inputs(case, dtype, seed + s, "BNSH"))
            tq = torch.from_dlpack(q).transpose(1, 2).contiguous()    # [B, Nq, Sq, H]
            tensors = (tq, torch.from_dlpack(k), torch.from_dlpack(v))
            sets.append(tuple(t.requires_grad_(mode != "forward") for t in tensors) +
                        ((q, k, v),))
        attend = lambda j: F.scaled_dot_product_attention(
            *sets[j][:3], attn_mask=mask, is_causal=case.causal,
            enable_gqa=case.Nq != case.Nkv)
        host = lambda x: x[:1].detach().float().cpu().numpy()
        with sdpa_kernel(getattr(SDPBackend, backend)):
            if mode == "forward":
                err = check(case, "BNSH", sets[0][3], host(attend(0).transpose(1, 2)))
                return timing.time_torch(attend, len(sets)), err
            douts = jax.block_until_ready(
                [cotangent(case, dtype, seed + s) for s in range(len(sets))])
            tdouts = [torch.from_dlpack(d).transpose(1, 2).contiguous() for d in douts]
            stream = None
            if mode == "backward":     # each set's forward graph, kept for every call,
                stream = torch.cuda.Stream()    # on the stream its backward will run on
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    outs = [attend(j) for j in range(len(sets))]
                torch.cuda.current_stream().wait_stream(stream)
                step = lambda j: torch.autograd.grad(outs[j], sets[j][:3], tdouts[j],
                                                     retain_graph=True)
            else:
                step = lambda j: torch.autograd.grad(attend(j), sets[j][:3], tdouts[j])
            dq, dk, dv = step(0)
            err = check(case, "BNSH", sets[0][3],
                        (host(dq.transpose(1, 2)), host(dk), host(dv)), douts[0])
            return timing.time_torch(step, len(sets), stream=stream), err
    return run


CONTENDERS = {
    "jax_mea": run_dot_product_attention(jax_mea.dot_product_attention),
    "jax_mea-step": run_jax_mea_step,
    "jax-xla": run_dot_product_attention(jax.nn.dot_product_attention, implementation="xla"),
    "jax-cudnn": run_dot_product_attention(jax.nn.dot_product_attention,
                                           implementation="cudnn"),
    "torch-flash": run_torch("FLASH_ATTENTION"),
    "torch-efficient": run_torch("EFFICIENT_ATTENTION"),
    "torch-cudnn": run_torch("CUDNN_ATTENTION"),
    **{name: run_scan(setup) for name, setup in SCAN_SETUPS.items()},
}
SCAN_CONTENDERS = [n for n in CONTENDERS if n.endswith("-scan")]
# The contenders that time every pass of PASSES (the others, the forward alone).
GRAD_CONTENDERS = ("jax_mea", "jax-xla", "jax-cudnn", "torch-flash", "torch-efficient",
                   "torch-cudnn")
# The contenders whose result depends on Case.capacity; the others are measured once
# per case without it (run_cases reuses their result).
USES_CAPACITY = ("jax_mea-step", "jax_mea-scan")


def measure(name, case, dtype, seed=0, mode="forward", **timing_kw):
    """(seconds, rel. error, note): seconds None where the contender cannot run it
    (the note says why), else the contender's note if it gives one."""
    try:
        if mode != "forward" and name not in GRAD_CONTENDERS:
            raise ValueError(f"{name} times the forward only, not {mode}")
        kw = dict(timing_kw, mode=mode) if name in GRAD_CONTENDERS else timing_kw
        t, err, *note = CONTENDERS[name](case, dtype, seed, **kw)
        return t, err, "".join(note)
    except Exception as e:  # unsupported shape / backend: reported as n/a
        msg = str(e).strip().splitlines()
        return None, None, f"{type(e).__name__}: {msg[0][:100] if msg else ''}"
    finally:
        gc.collect()
        torch = timing.torch_cuda() if name.startswith("torch") else None
        if torch is not None:
            torch.cuda.empty_cache()


def available(contenders):
    """The contenders that can run here: no torch ones without torch + CUDA, no cuDNN
    ones without a GPU (each dropped with a printed reason)."""
    drop = {}
    if timing.torch_cuda() is None:
        drop.update((n, "no torch with CUDA here") for n in contenders if n.startswith("torch"))
    if jax.default_backend() != "gpu":
        drop.update((n, "jax's cudnn attention needs a GPU")
                    for n in contenders if n.startswith("jax-cudnn"))
    for reason in dict.fromkeys(drop.values()):
        print(f"({reason}: skipping {', '.join(n for n, r in drop.items() if r == reason)})")
    return [n for n in contenders if n not in drop]


def is_ours(name):
    """jax_mea's own rows (the kernel, the decode step) are never peers."""
    return name.startswith("jax_mea")


def family(name):
    """How a contender is timed: 'scan' (timing.time_steps) or 'calls' (time_jax,
    time_torch). Ours are compared with the best peer of their own family."""
    return "scan" if name.endswith("-scan") else "calls"


def median_result(results):
    """One (time, err, note) of several measurements of a contender: the median time
    (the first measurement whole if any had no time), the first one's other fields."""
    if len(results) == 1 or any(not r[0] for r in results):
        return results[0]
    return (statistics.median(r[0] for r in results),) + tuple(results[0][1:])


def run_cases(cases, contenders, dtype, *, metric, ceiling, unit=1e12, csv_path=None,
              meta=None, verbose=True, deadline=None, mode="forward", rounds=1, **timing_kw):
    """Time contenders on cases. metric 'bytes' (TB/s, fraction of copy bandwidth
    `ceiling`) or 'flops' (TFLOP/s, fraction of matmul rate `ceiling`); unit 1e9 for
    GB/s, GFLOP/s. mode: the pass of PASSES timed, whose work is PASSES[mode] x the
    forward's flops. Every row gets ratio = best peer time / its time, the peers being
    the contenders that are not jax_mea's (is_ours) of the row's family (calls or scan).
    A contender that ignores Case.capacity (not in USES_CAPACITY) is measured once per
    case without it and its result reused. deadline (time.monotonic()): no case starts
    after it; the ones left are named. rounds > 1: every contender is measured that many
    times per case, in the given order, then reversed, and so on; its time is the median
    (under a power cap the GPU's clock drifts with what ran just before, and a fixed
    order favours one contender; one session measured the same kernel 8% apart in two
    device calls).
    Prints one line per result as it comes and a table per case at the end; writes the
    CSV (rewritten after every case, so that a cut-off run keeps what it measured)."""
    itemsize = jnp.dtype(dtype).itemsize
    rate_name = {1e9: "G", 1e12: "T"}[unit] + ("B/s" if metric == "bytes" else "FLOP/s")
    rows, table, memo = [], [], {}
    for ci, case in enumerate(cases):
        if deadline is not None and time.monotonic() > deadline:
            print(f"(time budget spent: {len(cases) - ci} cases not run, from {case.name})")
            break
        t_case = time.monotonic()
        work = case.nbytes(itemsize) if metric == "bytes" else case.flops() * PASSES[mode]
        keys = {n: (n, case if n in USES_CAPACITY else dataclasses.replace(case, capacity=None))
                for n in contenders}
        todo = [n for n in contenders if keys[n] not in memo]
        measured = {n: [] for n in todo}
        for r in range(rounds):
            for n in (todo if r % 2 == 0 else todo[::-1]):
                measured[n].append(measure(n, case, dtype, mode=mode, **timing_kw))
        for n in todo:
            memo[keys[n]] = median_result(measured[n])
        results = {n: memo[keys[n]] for n in contenders}
        best_peer = {}
        for n, r in results.items():
            if not is_ours(n) and r[0]:
                best_peer[family(n)] = min(r[0], best_peer.get(family(n), r[0]))
        wide = {"case": case.name}
        for n, (t, err, note) in results.items():
            rate = work / t / unit if t else None
            best = best_peer.get(family(n))
            row = {"case": case.name, "contender": n, "B": case.B, "Sq": case.Sq,
                   "Skv": case.Skv, "capacity": case.cap, "Nq": case.Nq, "Nkv": case.Nkv,
                   "H": case.H, "Hv": case.hv, "causal": case.causal, "ragged": case.ragged,
                   "dtype": str(jnp.dtype(dtype)), "time_ms": t * 1e3 if t else None,
                   rate_name.replace("/", "p"): rate,
                   "frac_ceiling": rate * unit / ceiling if t else None,
                   "best_peer_over_this": best / t if (t and best) else None,
                   "rel_err": err, "note": note}
            rows.append(row)
            wide[n] = row["time_ms"]
            wide[f"ratio {n}"] = row["best_peer_over_this"]
            wide[f"frac {n}"] = row["frac_ceiling"]
            if n == contenders[0]:
                wide.update(rate=rate, err=err)
            if verbose:
                print(f"  {case.name:44s} {n:16s} " + (
                    f"{t * 1e3:9.4f} ms  {rate:8.3f} {rate_name}"
                    f"  err {err:.1e}" + f"  {note}" * bool(note) if t else f"n/a  {note}"),
                      flush=True)
        if verbose:
            print(f"  ({time.monotonic() - t_case:.1f} s)")
        table.append(wide)
        if csv_path:
            timing.write_csv(csv_path, rows, meta, quiet=True)
    frac_name = "of copy" if metric == "bytes" else "of matmul"
    ours = [n for n in contenders if is_ours(n)]
    cols = [("case", "case", "<s"), (contenders[0], f"{contenders[0]} ms", ".4g"),
            ("rate", rate_name, ".3g"), (f"frac {contenders[0]}", frac_name, ".0%"),
            ("err", "rel err", ".1e")]
    for n in contenders[1:]:
        cols += [(n, f"{n} ms", ".4g")]
        if is_ours(n):
            cols += [(f"frac {n}", frac_name, ".0%")]
    short = lambda n: n.replace("jax_mea-", "").replace("jax_mea", "ours")
    cols += [(f"ratio {n}", f"best peer / {short(n)}", ".2f") for n in ours]
    print()
    timing.print_table(table, cols)
    if rows and csv_path:
        timing.write_csv(csv_path, rows, meta)
    return rows
