"""SGCTR ("Infer As You Train", arXiv 2511.14403) at CPU scale, in PyTorch (training and export only).

What the paper's abstract states: a generative objective learns feature dependencies in training, and
the same generator refines the input features at inference. The details below are a reconstruction
(see the method notes; marked [inferred] where no source gives them):

- Backbone: one embedding table for all fields; head = per-value first-order weights + FM pairwise
  term + MLP over the concatenated field embeddings after two DCN-v2 cross layers (+ a linear term
  on them). Values seen fewer than `embed_min_count` (10) times in training share their field's
  unseen embedding row but keep their own first-order weight. [design choice, measured] On
  MovieLens the pairwise / MLP terms of item ids with ~5 ratings overfit within 2 epochs (an FM
  without the item-id embedding beat the full FM by 0.004 AUC on a temporal dev split); with the
  shared row, the cross layers, early stopping on validation AUC and a 5x learning rate for the
  first-order weights (train.py) the model trains ~8 epochs instead of 2.
- Generator G: an MLP over the concatenated field embeddings with a per-field output projection.
  Its first layer is a sum of per-field terms W_f e_f, so "field k masked, all others observed" is
  `total - W_k e_k + W_k m_k`: all F leave-one-out generations cost one batched pass. [inferred]
- Training: noise a share lambda of the fields (half replaced by a [MASK] vector, half by another row's
  value, i.e. masked + uniform-transition discrete diffusion [inferred]); lambda = lambda_max(progress) *
  (1 - cos(pi/2 * t/T)), t ~ U{1..T}, with lambda_max growing over training. G predicts each noised
  field's true value by a softmax over the cosine to the distinct in-batch values of that field
  (sampled softmax with in-batch negatives, as the notes describe). The generation loss does not
  back-propagate into the shared embedding table (`gen_detach`): G learns the dependencies between
  the CTR model's own field embeddings, which is what refinement needs, without the contrastive
  objective reshaping that table. Letting it through cost about 0.011 test AUC on goodbooks_399
  (seed 0, K = 0 and best K alike) and moved MovieLens by < 0.002. [design choice, measured]
- Inference (the symmetric part): K passes; in each pass every field k is regenerated from the others,
  g_k = G_k(x_{-k}); the observed embedding is kept with weight a_k = sigmoid(s_k * (cos(e_k, g_k) - b_k))
  and replaced by g_k (rescaled to |e_k|) with 1 - a_k; a field's first-order weight is blended the
  same way with a learned per-field prior (by the product of its keep weights over the passes); then
  the head predicts. [inferred formula]
  K = 0 is the plain discriminative model. The gates are trained through a CTR loss on refined,
  noised inputs (one pass), so refinement is trained the way it is used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class SGCTRConfig:
    dim: int = 16
    gen_hidden: int = 64
    mlp_hidden: tuple[int, ...] = (128, 64)
    temperature: float = 0.1  # of the cosine softmax
    gen_weight: float = 0.2  # mu: weight of the masked-feature loss
    steps_t: int = 10  # T of the noise schedule
    noise_start: float = 0.1  # lambda_max at the start of training ...
    noise_end: float = 0.5  # ... and at the end
    max_passes: int = 3  # K exported to ONNX (outputs K = 0..max_passes)
    wide: bool = True  # a linear term on the concatenated embeddings
    first_order: bool = True  # DeepFM's per-value weights; refinement blends them with a per-field prior
    init_std: float = 0.01  # of the embedding table (the usual FM init; 0.05 cost 0.005 AUC on goodbooks)
    gen_detach: bool = True  # the masked-feature loss trains the generator, not the shared embedding table
    # Values seen fewer times than this in training share their field's unseen embedding row (they keep
    # their own first-order weight): the pairwise/MLP terms of ~5-rating item ids overfit within 2 epochs.
    embed_min_count: int = 10
    cross_layers: int = 2  # DCN-v2 cross layers (x_{l+1} = x0 * (W x_l + b) + x_l) under the MLP; 0 = DeepFM

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class SGCTR(nn.Module):
    def __init__(self, field_sizes: list[int], config: SGCTRConfig | None = None, value_counts=None):
        super().__init__()
        cfg = config or SGCTRConfig()
        self.config = cfg
        n_fields, dim, hidden = len(field_sizes), cfg.dim, cfg.gen_hidden
        self.n_fields = n_fields
        self.embedding = nn.Embedding(sum(field_sizes), dim)
        index = torch.arange(sum(field_sizes))
        if value_counts is not None and cfg.embed_min_count > 1:
            counts = torch.as_tensor(value_counts)
            field_start = torch.repeat_interleave(torch.cumsum(torch.tensor([0] + list(field_sizes[:-1])), 0), torch.tensor(field_sizes))
            index = torch.where(counts >= cfg.embed_min_count, index, field_start)
        self.register_buffer("embed_index", index)
        nn.init.normal_(self.embedding.weight, std=cfg.init_std)
        self.mask_token = nn.Parameter(torch.randn(n_fields, dim) * 0.05)
        self.gen_in = nn.Parameter(torch.randn(n_fields, dim, hidden) / math.sqrt(n_fields * dim))
        self.gen_in_bias = nn.Parameter(torch.zeros(hidden))
        self.gen_mid = nn.Linear(hidden, hidden)
        self.gen_out = nn.Parameter(torch.randn(n_fields, hidden, dim) / math.sqrt(hidden))
        self.gen_out_bias = nn.Parameter(torch.zeros(n_fields, dim))
        # Gates start near "keep the observed value" (a ~ 0.9 at zero agreement).
        self.gate_scale = nn.Parameter(torch.full((n_fields,), 5.0))
        self.gate_shift = nn.Parameter(torch.full((n_fields,), -0.45))
        self.cross = nn.ModuleList(nn.Linear(n_fields * dim, n_fields * dim) for _ in range(cfg.cross_layers))
        for layer in self.cross:
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)
        layers: list[nn.Module] = []
        width = n_fields * dim
        for size in cfg.mlp_hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        self.wide = nn.Linear(n_fields * dim, 1) if cfg.wide else None
        self.first_order = nn.Embedding(sum(field_sizes), 1) if cfg.first_order else None
        if self.first_order is not None:
            nn.init.zeros_(self.first_order.weight)
        self.field_prior = nn.Parameter(torch.zeros(n_fields))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.embed_index[ids])

    # -- generator ---------------------------------------------------------------------------
    def _gen_hidden(self, pre: torch.Tensor) -> torch.Tensor:
        return F.relu(self.gen_mid(F.relu(pre)))

    def generate_noised(self, emb_noised: torch.Tensor) -> torch.Tensor:
        """Generate every field from one noised input (training): (B, F, d) -> (B, F, d).

        The input is the same for every target field here, so the hidden layers run once per row.
        """
        pre = torch.einsum("bfd,fdh->bh", emb_noised, self.gen_in) + self.gen_in_bias
        return torch.einsum("bh,fhd->bfd", self._gen_hidden(pre), self.gen_out) + self.gen_out_bias

    def generate_leave_one_out(self, emb: torch.Tensor) -> torch.Tensor:
        """g_k = G_k(x with only field k masked), for all k in one pass: (B, F, d) -> (B, F, d)."""
        parts = torch.einsum("bfd,fdh->bfh", emb, self.gen_in)
        mask_parts = torch.einsum("fd,fdh->fh", self.mask_token, self.gen_in)
        pre = parts.sum(1, keepdim=True) - parts + mask_parts.unsqueeze(0) + self.gen_in_bias
        return torch.einsum("bfh,fhd->bfd", self._gen_hidden(pre), self.gen_out) + self.gen_out_bias

    # -- inference-time refinement -------------------------------------------------------------
    def refine_once(self, emb: torch.Tensor, trust: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass: every field re-weighted against its regeneration from the other fields.

        `trust` (B, F) is the running product of the keep weights; the first-order term uses it to
        move a distrusted field's weight towards that field's learned prior.
        """
        gen = self.generate_leave_one_out(emb)
        agreement = F.cosine_similarity(emb, gen, dim=-1, eps=1e-6)
        keep = torch.sigmoid(self.gate_scale * (agreement - self.gate_shift))
        scale = emb.norm(dim=-1, keepdim=True) / gen.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        k = keep.unsqueeze(-1)
        return k * emb + (1 - k) * gen * scale, trust * keep

    def head(self, emb: torch.Tensor, ids: torch.Tensor, trust: torch.Tensor) -> torch.Tensor:
        """CTR logit from field embeddings (B, F, d) -> (B,)."""
        summed = emb.sum(1)
        fm = 0.5 * (summed.pow(2) - emb.pow(2).sum(1)).sum(-1)
        flat = emb.flatten(1)
        crossed = flat
        for layer in self.cross:
            crossed = flat * layer(crossed) + crossed
        logit = self.mlp(crossed).squeeze(-1) + fm
        if self.wide is not None:
            logit = logit + self.wide(flat).squeeze(-1)
        if self.first_order is not None:
            weights = self.first_order(ids).squeeze(-1)
            logit = logit + (trust * weights + (1 - trust) * self.field_prior).sum(1)
        return logit

    def logits(self, ids: torch.Tensor, passes: int = 0) -> torch.Tensor:
        emb, trust = self.embed(ids), torch.ones(ids.shape, dtype=torch.float32)
        for _ in range(passes):
            emb, trust = self.refine_once(emb, trust)
        return self.head(emb, ids, trust)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Click probabilities for K = 0..max_passes: (B, F) int64 -> (B, K+1). This is what ONNX gets."""
        emb = self.embed(ids)
        trust = torch.ones_like(ids, dtype=torch.float32)
        outs = [self.head(emb, ids, trust)]
        for _ in range(self.config.max_passes):
            emb, trust = self.refine_once(emb, trust)
            outs.append(self.head(emb, ids, trust))
        return torch.sigmoid(torch.stack(outs, dim=1))

    # -- training objective ----------------------------------------------------------------------
    def noise_share(self, progress: float, generator: torch.Generator) -> float:
        cfg = self.config
        lam_max = cfg.noise_start + (cfg.noise_end - cfg.noise_start) * progress
        t = int(torch.randint(1, cfg.steps_t + 1, (1,), generator=generator))
        return lam_max * (1 - math.cos(math.pi / 2 * t / cfg.steps_t))

    def _swap_rows(self, ids: torch.Tensor, where: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Replace the cells in `where` by the same field's value in a random row of the batch."""
        donors = torch.randint(0, ids.shape[0], ids.shape, generator=generator)
        return torch.where(where, torch.gather(ids, 0, donors), ids)

    def generation_loss(self, ids: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
        ids = self.embed_index[ids]  # the generator works on embedding rows (rare values share one)
        noised = torch.rand(ids.shape, generator=generator) < share
        if not noised.any():
            return ids.new_zeros((), dtype=torch.float32)
        masked = noised & (torch.rand(ids.shape, generator=generator) < 0.5)
        table = self.embedding.weight.detach() if self.config.gen_detach else self.embedding.weight
        emb_in = F.embedding(self._swap_rows(ids, noised & ~masked, generator), table)
        emb_in = torch.where(masked.unsqueeze(-1), self.mask_token.expand_as(emb_in), emb_in)
        gen = F.normalize(self.generate_noised(emb_in), dim=-1)
        losses = []
        for f in range(self.n_fields):
            rows = noised[:, f].nonzero().squeeze(1)
            if len(rows) == 0:
                continue
            # Candidates = the distinct values of this field in the batch (in-batch sampled softmax).
            values, target = torch.unique(ids[:, f], return_inverse=True)
            cands = F.normalize(F.embedding(values, table), dim=-1)
            logits = gen[rows, f] @ cands.t() / self.config.temperature
            losses.append(F.cross_entropy(logits, target[rows], reduction="sum"))
        return torch.stack(losses).sum() / noised.sum()

    def loss(self, ids: torch.Tensor, labels: torch.Tensor, progress: float, generator: torch.Generator) -> torch.Tensor:
        share = self.noise_share(progress, generator)
        clean = F.binary_cross_entropy_with_logits(self.logits(ids), labels)
        noisy_ids = self._swap_rows(ids, torch.rand(ids.shape, generator=generator) < share, generator)
        refined = F.binary_cross_entropy_with_logits(self.logits(noisy_ids, passes=1), labels)
        return clean + refined + self.config.gen_weight * self.generation_loss(ids, share, generator)
