"""Device kernel times of one run of a jitted program, from the JAX profiler: the one
profiler-reading helper of benchmarks/decode_model.py (attention's share of a step) and
tools/jax_timeline.py (each attention kernel's time per layer against its copy floor).

Which kernels are attention. The program wraps its attention (with its cache append)
in jax.named_scope(ATTENTION_SCOPE); per kernel, the first rule that applies decides:
  1. the kernel's name is one of jax_mea's CUDA kernels (cuda/kernels: Decode*Kernel,
     *Attention*Kernel, KvCopyKernel) or cuDNN's (cudnn / fmha / flash / sdpa in the
     name, e.g. cudnn_generated_fort_native_sdpa_*): attention;
  2. the kernel is one XLA generated, named after its HLO instruction (fusion
     "loop_add_fusion.3" runs as kernel "loop_add_fusion_3"; on the CPU each thunk is
     a host event named after its instruction, with an hlo_op stat): attention if the
     instruction's op_name metadata lies in the scope (a fusion's metadata is its
     root's: a fusion that ends in attention counts, one that only takes attention's
     output as an input, e.g. the output projection, does not), or if it is a
     custom call to jax_mea or cuDNN's attention;
  3. a library kernel (cuBLAS / cuBLASLt gemms, which jax.nn's xla path may use for its
     two einsums) is resolved through the profiler's hlo_op annotation where the event
     carries one, then as 2. Kernels replayed from a CUDA graph (XLA command buffers)
     carry the graph's annotation, not their own, so this may not resolve them;
  4. otherwise the kernel is "unresolved": counted as not attention, and its time
     reported apart (unresolved_ns), so that the share's uncertainty shows.
Control-flow thunks (while, conditional, call) enclose the thunks of their bodies on
the CPU and are left out.
"""
import dataclasses
import os
import re
import shutil
import tempfile

import jax
from jax.profiler import ProfileData

ATTENTION_SCOPE = "attention"
_IN_SCOPE = re.compile(rf"(^|/){ATTENTION_SCOPE}(/|$)")
_OURS = re.compile(r"Decode\w*Kernel|Attention\w*Kernel|KvCopy")
_CUDNN = re.compile(r"cudnn|fmha|flash|sdpa", re.I)
_ATTENTION_TARGETS = re.compile(r"^jax_mea_|cudnn\$fmha|fmha", re.I)
_CONTROL_FLOW = ("while", "conditional", "call")


def trace(run):
    """run() under the JAX profiler; returns its ProfileData."""
    d = tempfile.mkdtemp()
    try:
        jax.profiler.start_trace(d)
        try:
            run()
        finally:
            jax.profiler.stop_trace()
        path = next(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs
                    if f.endswith(".xplane.pb"))
        return ProfileData.from_file(path)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def events(profile, plane_prefix):
    """(start ns, duration ns, name, line name, stats dict) of every event on the planes
    whose name starts with plane_prefix, by start time."""
    out = []
    for plane in profile.planes:
        if plane.name.startswith(plane_prefix):
            for line in plane.lines:
                out += [(ev.start_ns, ev.duration_ns, ev.name, line.name, dict(ev.stats))
                        for ev in line.events]
    return sorted(out, key=lambda e: e[:3])


@dataclasses.dataclass(frozen=True)
class Instruction:
    opcode: str
    op_name: str          # metadata op_name ('' if none); a fusion without: its root's
    target: str = ""      # custom_call_target


def hlo_instructions(hlo_text):
    """{instruction name: Instruction} of an optimized HLO module's text
    (compiled.as_text())."""
    instrs, roots, calls = {}, {}, {}
    comp = None
    for line in hlo_text.splitlines():
        head = re.match(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s*\(.*\{\s*$", line)
        if head:
            comp = head.group(1)
            continue
        m = re.match(r"^\s*(ROOT\s+)?%?([\w.\-$]+)\s*=\s*(.*)$", line)
        if not m:
            continue
        root, name, rest = m.groups()
        op = re.search(r"\s([a-z][a-z0-9\-]*)\(", " " + rest)
        meta = re.search(r'op_name="([^"]*)"', rest)
        target = re.search(r'custom_call_target="([^"]*)"', rest)
        called = re.search(r"calls=%?([\w.\-]+)", rest)
        instrs[name] = Instruction(op.group(1) if op else "", meta.group(1) if meta else "",
                                   target.group(1) if target else "")
        if root and comp:
            roots[comp] = name
        if called:
            calls[name] = called.group(1)
    for name, comp in calls.items():   # a fusion without metadata: its root's
        root = instrs.get(roots.get(comp, ""))
        if not instrs[name].op_name and root is not None:
            instrs[name] = dataclasses.replace(instrs[name], op_name=root.op_name)
    return instrs


def _sanitized(name):
    """The kernel name XLA gives an instruction's kernel (llvm_ir::SanitizeFunctionName)."""
    return re.sub(r"[^A-Za-z0-9_$]", "_", name)


def group_name(kernel):
    """A kernel's name without namespaces, template arguments, parameters and instance
    number, so that one kind of kernel groups over layers and instantiations
    ("void jax_mea::cuda::(anonymous namespace)::DecodeCombineKernel<128>(...)":
    DecodeCombineKernel; fusion_12 and fusion_37: fusion)."""
    name = kernel.replace("(anonymous namespace)", "")
    while True:
        shorter = re.sub(r"<[^<>]*>", "", name)
        if shorter == name:
            break
        name = shorter
    name = re.sub(r"\(.*\)\s*$", "", name).strip()       # the parameters
    name = name.split()[-1] if name else name               # the return type
    name = name.split("::")[-1]
    generic = re.fullmatch(r"[Kk]ernel\d*", name) and re.search(r"<([\w:]+)", kernel)
    if generic:    # cutlass::Kernel2<cutlass_80_..._gemm_...>: the argument names it
        name = generic.group(1).split("::")[-1]
    return re.sub(r"([._]\d+)+$", "", name) or kernel


@dataclasses.dataclass(frozen=True)
class Kernel:
    name: str
    group: str
    start_ns: int
    duration_ns: int
    attention: bool
    how: str               # 'name', 'hlo', 'annotation' or 'unresolved' (the rules above)


def _hlo_op_of(stats):
    """The HLO instruction named by a profiler event's stats, if any."""
    if "hlo_op" in stats:
        return str(stats["hlo_op"])
    for v in stats.values():
        m = re.search(r"hlo_op=([\w.\-]+)", str(v)) if isinstance(v, str) else None
        if m:
            return m.group(1)
    return None


def program_kernels(profile, hlo_text):
    """The device work of a traced run of the program whose optimized HLO is hlo_text:
    a Kernel per GPU kernel (or memcpy / memset) on the streams of GPU 0, or on the
    CPU per thunk of the program; attention decided by the rules in the docstring."""
    instrs = hlo_instructions(hlo_text)
    by_kernel_name = {_sanitized(n): i for n, i in instrs.items()}
    module = re.search(r"HloModule\s+([\w.\-]+)", hlo_text)
    module = module.group(1) if module else None
    gpu = any(p.name.startswith("/device:GPU") for p in profile.planes)
    out = []
    for start, dur, name, line, stats in events(profile, "/device:GPU:0" if gpu else "/host:CPU"):
        if gpu and "stream" not in line.lower():
            continue    # derived lines (XLA Ops, XLA Modules, Steps) repeat the streams' events
        hlo_op = _hlo_op_of(stats)
        if not gpu and (hlo_op is None or stats.get("hlo_module") not in (None, module)):
            continue    # on the CPU: only the program's thunks
        instr, how = None, "unresolved"
        if gpu and (_OURS.search(name) or _CUDNN.search(name)):
            how = "name"
        elif name in instrs or name in by_kernel_name:
            instr, how = instrs.get(name) or by_kernel_name[name], "hlo"
        elif hlo_op in instrs:
            instr, how = instrs[hlo_op], "annotation"
        if instr is not None and instr.opcode in _CONTROL_FLOW:
            if not gpu:
                continue    # a CPU thunk that encloses its body's thunks
            instr, how = None, "unresolved"   # a command buffer's annotation, not the kernel's
        attention = how == "name" or (instr is not None and (
            bool(_IN_SCOPE.search(instr.op_name)) or bool(_ATTENTION_TARGETS.search(instr.target))))
        out.append(Kernel(name, group_name(name), start, dur, attention, how))
    return out


def summarize(kernels):
    """[(group, attention, count, total ns)] over kernels, the longest first."""
    acc = {}
    for k in kernels:
        c = acc.setdefault((k.group, k.attention), [0, 0])
        c[0] += 1
        c[1] += k.duration_ns
    return sorted(((g, a, c, ns) for (g, a), (c, ns) in acc.items()), key=lambda r: -r[3])


def totals(kernels):
    """{'span_ns', 'kernel_ns', 'attention_ns', 'unresolved_ns'}: from the first
    kernel's start to the last one's end, all kernels' time, attention's, and the
    unresolved kernels' (rule 4)."""
    return {"span_ns": (max(k.start_ns + k.duration_ns for k in kernels) -
                        min(k.start_ns for k in kernels)) if kernels else 0,
            "kernel_ns": sum(k.duration_ns for k in kernels),
            "attention_ns": sum(k.duration_ns for k in kernels if k.attention),
            "unresolved_ns": sum(k.duration_ns for k in kernels if k.how == "unresolved")}
