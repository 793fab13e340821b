"""Optimizer: AdamW, or SGD (plain or heavy-ball), with warmup and a cosine or warmup-stable-decay
schedule, gradients clipped by global norm."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import optax


SCHEDULES = ('cosine', 'linear', 'wsd')


def decay_start(optim_cfg, num_steps: int) -> int:
  """The step a wsd schedule's decay begins: the last optim.decay_fraction of the run. Before it
  the rate depends on the peak and warmup only, so every run of a longer budget passes through the
  same states up to here (train.branch_from starts a shorter budget's decay from one of them)."""
  return num_steps - max(1, round(optim_cfg.get('decay_fraction', 0.2) * num_steps))


def learning_rate_schedule(optim_cfg, num_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `lr` over `warmup_steps`, then a cosine decay to `lr * min_lr_ratio`
  at the last step ('cosine'), a linear one ('linear': word2vec's alpha), or 'wsd'
  (warmup-stable-decay, Hägele et al. 2024): `lr` until `decay_start`, then a linear decay to
  `lr * min_lr_ratio` at num_steps."""
  o = optim_cfg
  wsd = o.get('schedule', 'cosine') == 'wsd'
  end = decay_start(o, num_steps) if wsd else num_steps
  warmup = min(o.warmup_steps, max(end - 1, 0))
  if warmup < o.warmup_steps:
    logging.warning('config.optim.warmup_steps=%d is not below the run\'s %d steps%s: the learning '
                    'rate warms up over %d steps instead (lower warmup_steps, or train longer)',
                    o.warmup_steps, num_steps, ' before its decay' if wsd else '', warmup)
  if o.get('schedule', 'cosine') == 'linear':  # word2vec's: alpha falls linearly to min_alpha
    decay = optax.linear_schedule(o.lr, o.lr * o.min_lr_ratio, max(num_steps - warmup, 1))
    return (optax.join_schedules([optax.linear_schedule(0.0, o.lr, warmup), decay], [warmup])
            if warmup else decay)
  if not wsd:
    return optax.warmup_cosine_decay_schedule(0.0, o.lr, warmup, max(num_steps, warmup + 1),
                                              o.lr * o.min_lr_ratio)
  return optax.join_schedules([
      optax.linear_schedule(0.0, o.lr, warmup), optax.constant_schedule(o.lr),
      optax.linear_schedule(o.lr, o.lr * o.min_lr_ratio, num_steps - end)], [warmup, end])


def global_norm(tree) -> jax.Array:
  """sqrt(sum of squares of every leaf), computed without overflow.

  sum(g^2) overflows float32 for gradients above ~1e19 (exploding RNNs reach that) and the norm
  becomes inf. Dividing by the largest |g| first keeps the sum finite.
  """
  leaves = [x.astype(jnp.float32) for x in jax.tree.leaves(tree)]
  if not leaves:  # e.g. the trained part when optim.freeze covers every parameter
    return jnp.zeros((), jnp.float32)
  peak = jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in leaves]))
  peak = jnp.where(peak > 0, peak, 1.0)
  return peak * jnp.sqrt(sum(jnp.sum(jnp.square(x / peak)) for x in leaves))


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
  """optax.clip_by_global_norm on the overflow-safe `global_norm`: with optax's own, an inf norm
  scales every update by 1/inf = 0 and training silently freezes."""
  def update(updates, state, params=None):
    del params
    norm = global_norm(updates)
    scale = jnp.where(norm > max_norm, max_norm / norm, 1.0)
    return jax.tree.map(lambda g: (g * scale).astype(g.dtype), updates), state
  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _decay_mask(params):
  # Weight decay on matrices only: biases, norms' scales and gains are left alone (as in GPT-2 /
  # nanoGPT).
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def _sgd_decayed(schedule: optax.Schedule, o,
                 momentum: float | None) -> optax.GradientTransformation:
  # Weight decay on matrices, added to the gradient before the step: for SGD the same as AdamW's
  # decoupled decay.
  return optax.chain(optax.add_decayed_weights(o.weight_decay, mask=_decay_mask),
                     optax.sgd(schedule, momentum))


# optim.name -> (schedule, optim_cfg) -> the update rule, weight decay (matrices only) included
OPTIMIZERS = {
    'adamw': lambda schedule, o: optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps,
                                             weight_decay=o.weight_decay, mask=_decay_mask),
    'sgd': lambda schedule, o: _sgd_decayed(schedule, o, None),
    # heavy-ball momentum b1 (Polyak 1964)
    'momentum': lambda schedule, o: _sgd_decayed(schedule, o, o.b1),
}


def frozen_prefixes(optim_cfg) -> tuple[str, ...]:
  """The '/'-path prefixes that config.optim.freeze names (comma-separated, e.g.
  'encoder,embed')."""
  return tuple(p.strip().strip('/') for p in optim_cfg.freeze.split(',') if p.strip().strip('/'))


def is_frozen(path: tuple, prefixes: tuple[str, ...]) -> bool:
  """Whether a parameter at `path` (a key path) lies under one of the '/'-joined `prefixes`."""
  name = '/'.join(str(getattr(k, 'key', k)) for k in path)
  return any(name == p or name.startswith(p + '/') for p in prefixes)


def freeze_error(params, prefixes: tuple[str, ...]) -> str:
  """'' when each of the `prefixes` (optim.frozen_prefixes) names parameters of `params`; else the
  one-line error naming those that name none and the parameters there are: a misspelt freeze would
  train everything."""
  paths = [path for path, _ in jax.tree_util.tree_leaves_with_path(params)]
  missing = [p for p in prefixes if not any(is_frozen(path, (p,)) for path in paths)]
  if not missing:
    return ''
  return (f'config.optim.freeze={",".join(prefixes)!r}: {", ".join(missing)} '
          f'{"names" if len(missing) == 1 else "name"} no parameter of this model, whose top-level '
          f'parameters are {", ".join(sorted(params))}: freeze some of those (or a path under one, '
          f'e.g. {sorted(params)[0]}/...), or leave config.optim.freeze empty')


def make_optimizer(optim_cfg,
                   num_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The optax chain of `optim_cfg` and its learning-rate schedule.

  Parameters under `optim_cfg.freeze` (comma-separated '/'-paths, e.g. 'encoder,embed') get no
  update at all: feature extraction with a frozen backbone, via optax.multi_transform (validation
  refuses a path that names no parameter: `freeze_error`).
  """
  o = optim_cfg
  schedule = learning_rate_schedule(o, num_steps)
  parts = [clip_by_global_norm(o.clip_norm)] if o.clip_norm > 0 else []
  parts.append(OPTIMIZERS[o.name](schedule, o))
  tx = optax.chain(*parts)
  prefixes = frozen_prefixes(o)
  if prefixes:
    labels = lambda params: jax.tree_util.tree_map_with_path(
        lambda path, _: 'frozen' if is_frozen(path, prefixes) else 'trained', params)
    tx = optax.multi_transform({'trained': tx, 'frozen': optax.set_to_zero()}, labels)
  return tx, schedule
