import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
F = torch.nn.functional
torch.manual_seed(0)
q, k, v = (torch.randn(2, 32, 4096, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
           for _ in range(3))
do = torch.randn(2, 32, 4096, 128, device="cuda", dtype=torch.bfloat16)
with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
    for _ in range(3):
        o = F.scaled_dot_product_attention(q, k, v)
        torch.autograd.grad(o, (q, k, v), do)
torch.cuda.synchronize()
