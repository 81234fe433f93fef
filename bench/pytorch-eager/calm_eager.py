#!/usr/bin/env python3
"""calm4j's reference benchmark: the same CALM, autoencoder and token model as `calm bench all`, in plain PyTorch
eager (Python driving every op), timed the same way, so the two can be run side by side in one window.

Shapes are calm4j's preset `bench` (src/main/resources/calm4j/presets/bench.json): autoencoder d=256, ffn 640, K=4,
latent 128, vocabulary 4096; CALM and token model d=256, ffn 704, 4 layers of 4 heads; energy head of 4 blocks, noise
64, N=8 samples, M=100 targets; batches of 8 x 1024 tokens. Prints one JSON object per measurement.

    apt-get install python3-torch          # Debian's PyTorch (CPU) and its OpenBLAS
    OPENBLAS_NUM_THREADS=1 taskset -c 0 /usr/bin/python3 -B bench/pytorch-eager/calm_eager.py --threads 1
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True


# --- building blocks -------------------------------------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class SwiGLU(nn.Module):
    def __init__(self, d, ffn):
        super().__init__()
        self.gate, self.up = nn.Linear(d, ffn, bias=False), nn.Linear(d, ffn, bias=False)
        self.down = nn.Linear(ffn, d, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


def rotary(head_dim, positions, theta=10000.0):
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2).float() / head_dim)
    freqs = torch.outer(torch.arange(positions).float(), inv)
    emb = torch.cat([freqs, freqs], -1)
    return emb.cos(), emb.sin()


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin


class Block(nn.Module):
    """A Llama block: RMSNorm, causal attention with rotary positions (and a KV cache), RMSNorm, SwiGLU."""

    def __init__(self, d, heads, ffn):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.n1, self.n2, self.mlp = RMSNorm(d), RMSNorm(d), SwiGLU(d, ffn)

    def forward(self, x, cos, sin, cache=None):
        b, t, d = x.shape
        h = self.n1(x)
        q, k, v = (p(h).view(b, t, self.heads, self.hd).transpose(1, 2) for p in (self.q, self.k, self.v))
        start = 0 if cache is None or cache[0] is None else cache[0].shape[2]
        q, k = rotate(q, cos[start:start + t], sin[start:start + t]), rotate(k, cos[start:start + t], sin[start:start + t])
        if cache is not None:
            if cache[0] is not None:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[0], cache[1] = k, v
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.hd)  # PyTorch 1.13 has no scaled_dot_product_attention
        if t > 1:  # new positions see the cached ones and themselves causally
            scores = scores.masked_fill(torch.ones(t, k.shape[2], dtype=torch.bool).triu(start + 1), float("-inf"))
        y = scores.softmax(-1) @ v
        x = x + self.o(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.n2(x))


class Backbone(nn.Module):
    def __init__(self, d, layers, heads, ffn, positions):
        super().__init__()
        self.blocks = nn.ModuleList(Block(d, heads, ffn) for _ in range(layers))
        self.norm = RMSNorm(d)
        cos, sin = rotary(d // heads, positions)
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)

    def forward(self, x, caches=None):
        for i, blk in enumerate(self.blocks):
            x = blk(x, self.cos, self.sin, None if caches is None else caches[i])
        return self.norm(x)


# --- the three models ------------------------------------------------------------------------------------------

class Autoencoder(nn.Module):
    """K tokens <-> one latent: per-token layers, squeeze, layers, (mu, log sigma); the decoder mirrors it, tied."""

    def __init__(self, vocab, d, ffn, k, latent):
        super().__init__()
        self.k, self.d = k, d
        self.emb = nn.Embedding(vocab, d)
        self.enc1, self.enc2 = nn.ModuleList([SwiGLU(d, ffn)]), nn.ModuleList([SwiGLU(d, ffn)])
        self.enc_norms = nn.ModuleList(RMSNorm(d) for _ in range(2))
        self.squeeze, self.enc_norm, self.to_latent = nn.Linear(k * d, d), RMSNorm(d), nn.Linear(d, 2 * latent)
        self.from_latent, self.expand = nn.Linear(latent, d), nn.Linear(d, k * d)
        self.dec1, self.dec2 = nn.ModuleList([SwiGLU(d, ffn)]), nn.ModuleList([SwiGLU(d, ffn)])
        self.dec_norms = nn.ModuleList(RMSNorm(d) for _ in range(2))
        self.dec_norm = RMSNorm(d)

    def encode(self, tokens):  # [n, K] -> mu, log sigma [n, l]
        h = self.emb(tokens)
        h = h + self.enc1[0](self.enc_norms[0](h))
        h = self.squeeze(h.reshape(-1, self.k * self.d))
        h = h + self.enc2[0](self.enc_norms[1](h))
        return self.to_latent(self.enc_norm(h)).chunk(2, -1)

    def logits(self, z):  # [n, l] -> [n, K, V]
        h = self.from_latent(z)
        h = h + self.dec1[0](self.dec_norms[0](h))
        h = self.expand(h).view(-1, self.k, self.d)
        h = h + self.dec2[0](self.dec_norms[1](h))
        return self.dec_norm(h) @ self.emb.weight.t()

    def loss(self, tokens):
        drop = torch.rand(tokens.shape) < 0.15
        mu, log_sigma = self.encode(torch.where(drop, torch.full_like(tokens, 2), tokens))
        z = F.dropout(mu + log_sigma.exp() * torch.randn_like(mu), 0.15)
        rec = F.cross_entropy(self.logits(z).reshape(-1, self.emb.num_embeddings), tokens.reshape(-1)) * self.k
        kl = 0.5 * (mu.pow(2) + (2 * log_sigma).exp() - 1 - 2 * log_sigma)
        return rec + 1e-3 * kl.clamp_min(0.5).sum(-1).mean()


class EnergyHead(nn.Module):
    """One pass from (h, uniform noise) to a latent: noise and h embedded and normalised, residual gated blocks."""

    def __init__(self, d, latent, noise, blocks):
        super().__init__()
        self.noise = noise
        self.noise_in, self.h_in = nn.Linear(noise, d), nn.Linear(d, d)
        self.nn_, self.nh = nn.LayerNorm(d), nn.LayerNorm(d)
        self.blocks = nn.ModuleList(nn.ModuleDict(dict(ln=nn.LayerNorm(d), l0=nn.Linear(2 * d, d), l2=nn.Linear(d, d),
                                                       l4=nn.Linear(d, 2 * d), down=nn.Linear(d, d)))
                                    for _ in range(blocks))
        self.out_ln, self.out0, self.out2 = nn.LayerNorm(d), nn.Linear(d, d), nn.Linear(d, latent)

    def forward(self, h, n):  # h [P, d] -> n samples [n, P, l]
        c = self.nh(self.h_in(h)).expand(n, *h.shape)
        e = self.nn_(self.noise_in(torch.rand(n, h.shape[0], self.noise) - 0.5))
        for b in self.blocks:
            g, u = b["l4"](F.silu(b["l2"](F.silu(b["l0"](torch.cat([b["ln"](e), c], -1)))))).chunk(2, -1)
            e = e + b["down"](F.silu(g) * u)
        return self.out2(F.silu(self.out0(self.out_ln(e))))


def energy_loss(x, y):  # x [N, P, l] model samples, y [M, P, l] targets; alpha = 1
    n, m = x.shape[0], y.shape[0]
    fit = torch.cdist(x.transpose(0, 1), y.transpose(0, 1)).sum((1, 2)) * 2 / (n * m)
    pair = torch.cdist(x.transpose(0, 1), x.transpose(0, 1)).sum((1, 2)) / (n * (n - 1))
    return (fit - pair).mean()


class Calm(nn.Module):
    def __init__(self, ae, vocab, d, layers, heads, ffn, chunks, noise, blocks, samples, targets):
        super().__init__()
        self.ae, self.k, self.d, self.samples, self.targets = ae, ae.k, d, samples, targets
        for p in ae.parameters():
            p.requires_grad_(False)
        self.emb = nn.Embedding(vocab, d)
        self.proj = nn.Sequential(nn.Linear(self.k * d, 2 * d), nn.SiLU(), nn.Linear(2 * d, d), nn.LayerNorm(d))
        self.backbone = Backbone(d, layers, heads, ffn, chunks + 8)
        self.head = EnergyHead(d, ae.to_latent.out_features // 2, noise, blocks)

    def hidden(self, tokens, caches=None):  # [B, S*K] -> [B, S, d]
        b = tokens.shape[0]
        return self.backbone(self.proj(self.emb(tokens).view(b, -1, self.k * self.d)), caches)

    def loss(self, tokens):
        k = self.k
        h = self.hidden(tokens[:, :-k]).reshape(-1, self.d)
        with torch.no_grad():
            mu, log_sigma = self.ae.encode(tokens[:, k:].reshape(-1, k))
            y = mu + log_sigma.exp() * torch.randn(self.targets, *mu.shape)
        return energy_loss(self.head(h, self.samples), y)


class TokenLM(nn.Module):
    def __init__(self, vocab, d, layers, heads, ffn, positions):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.backbone = Backbone(d, layers, heads, ffn, positions)

    def logits(self, tokens, caches=None):
        return self.backbone(self.emb(tokens), caches) @ self.emb.weight.t()

    def loss(self, tokens):
        return F.cross_entropy(self.logits(tokens[:, :-1]).reshape(-1, self.emb.num_embeddings),
                               tokens[:, 1:].reshape(-1))


# --- generation ------------------------------------------------------------------------------------------------

@torch.no_grad()
def calm_generate(model, prompts, new_tokens, temperature, pool=200):
    """T=1: one head sample a step, decoded by argmax. T=1/n: a pool of candidates, the chunks seen at least n
    times weighted by C(count, n)."""
    caches = [[None, None] for _ in model.backbone.blocks]
    h = model.hidden(prompts, caches)[:, -1]
    out = []
    n = round(1 / temperature)
    for _ in range(new_tokens // model.k):
        if temperature == 1:
            chunk = model.ae.logits(model.head(h, 1)[0]).argmax(-1)  # [B, K]
        else:
            latents = model.head(h, pool)                                      # [pool, B, l]
            cands = model.ae.logits(latents.reshape(-1, latents.shape[-1])).argmax(-1).view(pool, -1, model.k)
            chunk = []
            for row in range(h.shape[0]):
                counts = {}
                for c in map(tuple, cands[:, row].tolist()):
                    counts[c] = counts.get(c, 0) + 1
                weights = {c: math.comb(v, n) for c, v in counts.items() if v >= n} or counts
                keys = list(weights)
                pick = torch.multinomial(torch.tensor([float(weights[c]) for c in keys]), 1).item()
                chunk.append(keys[pick])
            chunk = torch.tensor(chunk)
        out.append(chunk)
        h = model.hidden(chunk, caches)[:, -1]
    return torch.cat(out, 1)


@torch.no_grad()
def token_generate(model, prompts, new_tokens, greedy):
    caches = [[None, None] for _ in model.backbone.blocks]
    logits = model.logits(prompts, caches)[:, -1]
    out = []
    for _ in range(new_tokens):
        nxt = logits.argmax(-1, keepdim=True) if greedy else torch.multinomial(logits.softmax(-1), 1)
        out.append(nxt)
        logits = model.logits(nxt, caches)[:, -1]
    return torch.cat(out, 1)


# --- timing ----------------------------------------------------------------------------------------------------

def timed(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return med, (max(times) - min(times)) / 2 / med


def train_step(model, opt, batch):
    def step():
        opt.zero_grad(set_to_none=True)
        model.loss(batch).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return step


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=5, help="timed training steps (after 2 warm-up steps)")
    p.add_argument("--runs", type=int, default=3, help="timed generation runs (after one warm-up)")
    p.add_argument("--gen-batch", type=int, nargs="+", default=[1, 16])
    p.add_argument("--prompt-tokens", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--only", default="matmul,ae,calm,token,generate")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    only = set(a.only.split(","))
    vocab, k, batch, tokens = 4096, 4, 8, 1024

    def emit(**fields):
        print(json.dumps(dict(torch=torch.__version__, threads=a.threads, **fields)), flush=True)

    if "matmul" in only:
        x = torch.randn(2048, 2048)
        sec, spread = timed(lambda: x @ x, 10, 3)
        emit(path="matmul", gflops=2 * 2048 ** 3 / sec / 1e9, spread=spread)
    ae = Autoencoder(vocab, 256, 640, k, 128)
    calm = Calm(Autoencoder(vocab, 256, 640, k, 128), vocab, 256, 4, 4, 704, tokens // k, 64, 4, 8, 100)  # frozen AE
    token = TokenLM(vocab, 256, 4, 4, 704, tokens + 8)
    data = torch.randint(3, vocab, (batch, tokens + k))
    for name, model, b in (("ae", ae, data[:, :tokens].reshape(-1, k)), ("calm", calm, data),
                           ("token", token, data[:, :tokens + 1])):
        if name not in only:
            continue
        opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=3e-4, betas=(0.9, 0.95),
                                weight_decay=0.1)
        sec, spread = timed(train_step(model, opt, b), a.steps, 2)
        emit(path=name + "_train", tokens_per_s=batch * tokens / sec, ms_per_step=1000 * sec, spread=spread)
    if "generate" in only:
        calm.eval()
        token.eval()
        for gb in a.gen_batch:
            prompts = torch.randint(3, vocab, (gb, a.prompt_tokens))
            for path, fn in (("calm_generate T=1", lambda: calm_generate(calm, prompts, a.new_tokens, 1.0)),
                             ("calm_generate T=1/2", lambda: calm_generate(calm, prompts, a.new_tokens, 0.5)),
                             ("token_generate T=1", lambda: token_generate(token, prompts, a.new_tokens, False)),
                             ("token_generate greedy", lambda: token_generate(token, prompts, a.new_tokens, True))):
                sec, spread = timed(fn, a.runs, 1)
                emit(path=path, batch=gb, tokens_per_s=gb * a.new_tokens / sec, spread=spread)


if __name__ == "__main__":
    main()
