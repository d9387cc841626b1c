# torch SDPA backward alone (flash = FlashAttention-2, cudnn) at B2 S4096 N32 H128 bf16,
# causal and not: CUDA events around torch.autograd.grad of a kept graph, median of 20.
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
F = torch.nn.functional
torch.manual_seed(0)
q, k, v = (torch.randn(2, 32, 4096, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
           for _ in range(3))
do = torch.randn(2, 32, 4096, 128, device="cuda", dtype=torch.bfloat16)
for name, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
    for causal in (False, True):
        with sdpa_kernel(be):
            o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            ts = []
            for i in range(25):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                torch.autograd.grad(o, (q, k, v), do, retain_graph=True)
                b.record()
                torch.cuda.synchronize()
                if i >= 5:
                    ts.append(a.elapsed_time(b))
        ts.sort()
        print(f"torch {name} backward causal={causal}: {ts[len(ts) // 2]:.3f} ms")
