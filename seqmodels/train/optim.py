"""Optimizer: AdamW with linear warmup and cosine decay, gradients clipped by global norm."""

from __future__ import annotations

import jax
import optax


def learning_rate_schedule(optim_cfg, num_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `lr` over `warmup_steps`, then cosine decay to `lr * min_lr_ratio`."""
  o = optim_cfg
  warmup = min(o.warmup_steps, max(num_steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(0.0, o.lr, warmup, max(num_steps, warmup + 1), o.lr * o.min_lr_ratio)


def _decay_mask(params):
  # Weight decay on matrices only: biases, norms' scales and gains are left alone (as in GPT-2 / nanoGPT).
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(optim_cfg, num_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The optax chain of `optim_cfg` and its learning-rate schedule."""
  o = optim_cfg
  schedule = learning_rate_schedule(o, num_steps)
  parts = [optax.clip_by_global_norm(o.clip_norm)] if o.clip_norm > 0 else []
  parts.append(optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay, mask=_decay_mask))
  return optax.chain(*parts), schedule
