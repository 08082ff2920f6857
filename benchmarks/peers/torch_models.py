"""torch_models.py: the PyTorch peer of hyena's benchmark models, written in plain PyTorch.

The same computation as the C++ library (include/hyena/nn, include/hyena/models), layer for layer,
so that benchmarks/peers/torch_bench.py times the same work:

  GPT-NeoX teacher: embedding -> blocks -> final LayerNorm -> untied unembedding (no bias);
    block: y = x + mixer(ln1(x)) + mlp(ln2(x))              (parallel residual)
    mixer: fused qkv (with bias, rows [q heads | k heads | v heads]), rotary on the first 25%
           of each head's dims (rotate_half), causal softmax attention, out projection (bias)
    mlp:   fc_in -> exact-erf GELU -> fc_out, both with bias
  Hyena student: the same with the mixer replaced by HyenaOperator (nn/hyena.hpp):
    p = in_proj(u)  D -> (N+1)D;  s = causal depthwise conv, kernel 3, bias, on all channels
    x_0 .. x_{N-1}, v = D-wide channel blocks of s (v last); h = implicit filter ((N-1)D, L)
    for i = N-1 .. 1:  w = x_i * v;  v = fftconv(w, h_i) + bias_i * w
    y = out_proj(x_0 * v)

Works on (batch, channels, seq) inside the operator, as safari's HyenaOperator does, so the
FFTs run over the last (contiguous) dimension.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    """The shape fields of hyena::models::model_config used by the benchmarks (GPT-NeoX defaults)."""

    def __init__(self, vocab=256, hidden=128, layers=4, heads=4, intermediate=512, max_seq=256,
                 rotary_pct=0.25, rotary_base=10000.0, norm_eps=1e-5, hyena_order=2, hyena_filter_order=64,
                 hyena_emb_dim=33, hyena_filter_layers=2, hyena_short_filter=3, hyena_sin_freq=1.0,
                 attention="eager"):
        self.vocab, self.hidden, self.layers, self.heads = vocab, hidden, layers, heads
        self.intermediate, self.max_seq = intermediate, max_seq
        self.rotary_pct, self.rotary_base, self.norm_eps = rotary_pct, rotary_base, norm_eps
        self.hyena_order, self.hyena_filter_order = hyena_order, hyena_filter_order
        self.hyena_emb_dim, self.hyena_filter_layers = hyena_emb_dim, hyena_filter_layers
        self.hyena_short_filter, self.hyena_sin_freq = hyena_short_filter, hyena_sin_freq
        # "eager": softmax(q k^T) v written out; "sdpa": F.scaled_dot_product_attention (PyTorch >= 2.0,
        # what Hugging Face transformers runs by default).
        self.attention = attention
        if attention not in ("eager", "sdpa"):
            raise ValueError(f"attention must be eager or sdpa, got {attention}")
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) is not a multiple of heads ({heads})")
        if hyena_order < 2:
            raise ValueError(f"hyena_order must be >= 2, got {hyena_order}")


def _linear(i, o, bias=True, std=0.02):
    """nn.Linear with hyena's init: weight normal(std), zero bias."""
    lin = nn.Linear(i, o, bias=bias)
    nn.init.normal_(lin.weight, std=std)
    if bias:
        nn.init.zeros_(lin.bias)
    return lin


# ----------------------------------------------------------------------------- teacher

class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.head_dim = c.heads, c.hidden // c.heads
        r = int(self.head_dim * c.rotary_pct)
        self.rot = r - r % 2  # rotary dims per head, even (rotary_config::dims_for)
        self.sdpa = c.attention == "sdpa"
        if self.sdpa and not hasattr(F, "scaled_dot_product_attention"):
            raise RuntimeError(f"attention='sdpa' needs PyTorch >= 2.0 (this is {torch.__version__})")
        self.qkv = _linear(c.hidden, 3 * c.hidden)
        self.out = _linear(c.hidden, c.hidden)
        inv = c.rotary_base ** (-torch.arange(0, self.rot, 2, dtype=torch.float64) / max(self.rot, 1))
        ang = torch.arange(c.max_seq, dtype=torch.float64)[:, None] * inv[None, :]  # (max_seq, rot/2)
        ang = torch.cat([ang, ang], dim=-1)
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)

    def _rotary(self, t, L):  # t: (B, H, L, hd); rotate_half on the first `rot` dims
        if self.rot == 0:
            return t
        tr, tp = t[..., :self.rot], t[..., self.rot:]
        h = self.rot // 2
        rot_half = torch.cat([-tr[..., h:], tr[..., :h]], dim=-1)
        tr = tr * self.cos[:L] + rot_half * self.sin[:L]
        return torch.cat([tr, tp], dim=-1)

    def forward(self, x):
        B, L, D = x.shape
        qkv = self.qkv(x).view(B, L, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, L, hd)
        q, k, v = self._rotary(qkv[0], L), self._rotary(qkv[1], L), qkv[2]
        if self.sdpa:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.out(o.transpose(1, 2).reshape(B, L, D))
        s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))
        mask = torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)
        p = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
        o = torch.matmul(p, v).transpose(1, 2).reshape(B, L, D)
        return self.out(o)


class GeluMlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc_in = _linear(c.hidden, c.intermediate)
        self.fc_out = _linear(c.intermediate, c.hidden)

    def forward(self, x):
        return self.fc_out(F.gelu(self.fc_in(x)))  # exact erf GELU (approximate='none')


# ----------------------------------------------------------------------------- Hyena

class ImplicitFilter(nn.Module):
    """h ((N-1)D, L) from a trainable positional table through a sin FFN and a decay window."""

    def __init__(self, channels, emb_dim, width, inner, max_seq, sin_freq=1.0,
                 fast_decay_pct=0.3, slow_decay_pct=1.5, target=1e-2):
        super().__init__()
        if emb_dim < 3 or emb_dim % 2 == 0:
            raise ValueError(f"emb_dim must be odd and >= 3, got {emb_dim}")
        self.max_seq = max_seq
        K = (emb_dim - 1) // 2
        n = torch.arange(max_seq, dtype=torch.float64)
        t = n / (max_seq - 1) if max_seq > 1 else n * 0
        w = 2 * math.pi * n / max_seq
        f = torch.linspace(1e-4, K - 1, K, dtype=torch.float64) if K > 1 else torch.full((1,), 1e-4, dtype=torch.float64)
        z = torch.cat([t[:, None], torch.cos(f[None] * w[:, None]), -torch.sin(f[None] * w[:, None])], dim=-1)
        self.pos = nn.Parameter(z.float())                      # (max_seq, emb_dim)
        self.freq = nn.Parameter(torch.full((width,), float(sin_freq)))  # shared by every sin layer
        # Linears keep nn.Linear's default init (uniform +-1/sqrt(fan_in)), as hyena does here.
        self.mlp = nn.ModuleList([nn.Linear(emb_dim, width)] + [nn.Linear(width, width) for _ in range(inner)] +
                                 [nn.Linear(width, channels, bias=False)])
        delta = torch.linspace(math.log(target) / fast_decay_pct, math.log(target) / slow_decay_pct, channels)
        self.register_buffer("delta", delta.abs(), persistent=False)   # fixed, not trained
        self.register_buffer("t", t.float(), persistent=False)

    def forward(self, L):
        a = self.pos[:L]
        for lin in self.mlp[:-1]:
            a = torch.sin(self.freq * lin(a))
        k = self.mlp[-1](a)                                      # (L, channels)
        return (k * torch.exp(-self.t[:L, None] * self.delta[None, :])).t()  # (channels, L)


def fftconv(u, h):
    """Causal convolution along the last axis: u (B, C, L), h (C, L) -> (B, C, L), FFT at 2L."""
    L = u.shape[-1]
    n = 2 * L
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(h, n=n), n=n)
    return y[..., :L]


class HyenaOperator(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, N = c.hidden, c.hyena_order
        self.D, self.N, self.max_seq = D, N, c.max_seq
        self.in_proj = _linear(D, (N + 1) * D)
        # PyTorch's Conv1d default init, as hyena's short_conv.
        self.short_conv = nn.Conv1d((N + 1) * D, (N + 1) * D, c.hyena_short_filter, groups=(N + 1) * D,
                                    padding=c.hyena_short_filter - 1)
        self.filter = ImplicitFilter((N - 1) * D, c.hyena_emb_dim, c.hyena_filter_order, c.hyena_filter_layers,
                                     c.max_seq, c.hyena_sin_freq)
        self.bias = nn.Parameter(torch.randn(N - 1, D))  # the D skip term of each long convolution
        self.out_proj = _linear(D, D)

    def forward(self, u):
        B, L, D = u.shape
        if L > self.max_seq:
            raise ValueError(f"sequence length {L} exceeds max_seq {self.max_seq}")
        p = self.in_proj(u).transpose(1, 2)                   # (B, (N+1)D, L)
        s = self.short_conv(p)[..., :L]                       # causal: keep the first L outputs
        blocks = s.split(D, dim=1)                            # x_0 .. x_{N-1}, v
        h = self.filter(L).view(self.N - 1, D, L)
        v = blocks[self.N]
        for i in range(self.N - 1, 0, -1):
            w = blocks[i] * v
            v = fftconv(w, h[i - 1]) + self.bias[i - 1][None, :, None] * w
        return self.out_proj((blocks[0] * v).transpose(1, 2))


# ----------------------------------------------------------------------------- models

class Block(nn.Module):
    def __init__(self, c, mixer):
        super().__init__()
        self.norm1 = nn.LayerNorm(c.hidden, eps=c.norm_eps)
        self.mixer = Attention(c) if mixer == "attention" else HyenaOperator(c)
        self.norm2 = nn.LayerNorm(c.hidden, eps=c.norm_eps)
        self.mlp = GeluMlp(c)

    def forward(self, x):
        return x + self.mixer(self.norm1(x)) + self.mlp(self.norm2(x))


class CausalLM(nn.Module):
    """mixer: "attention" (the GPT-NeoX teacher) or "hyena" (its Hyena student)."""

    def __init__(self, c, mixer="attention"):
        super().__init__()
        self.embed = nn.Embedding(c.vocab, c.hidden)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = nn.ModuleList([Block(c, mixer) for _ in range(c.layers)])
        self.final_norm = nn.LayerNorm(c.hidden, eps=c.norm_eps)
        self.unembed = _linear(c.hidden, c.vocab, bias=False)

    def forward(self, tokens):
        x = self.embed(tokens)
        for b in self.blocks:
            x = b(x)
        return self.unembed(self.final_norm(x))


def no_decay(name):
    """hyena::train::default_no_decay: biases, norms and the filter's pos/freq skip weight decay."""
    return name == "bias" or name.endswith(".bias") or "norm" in name or "filter.pos" in name or "filter.freq" in name


def adamw(model, lr=1e-4, weight_decay=0.1):
    """torch.optim.AdamW with hyena's parameter groups (train/adamw.hpp defaults)."""
    decay = [p for n, p in model.named_parameters() if not no_decay(n)]
    rest = [p for n, p in model.named_parameters() if no_decay(n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.999), eps=1e-8)
