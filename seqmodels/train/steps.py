"""Jitted train and eval steps, one per task kind, shared by every architecture."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from seqmodels.train.state import TrainState


def token_cross_entropy(logits_BxTxV, targets_BxT, weights_BxT):
  """Sums over weighted tokens: (cross-entropy in nats, number of tokens, correct argmax predictions)."""
  logits_BxTxV = logits_BxTxV.astype(jnp.float32)
  nll_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV, targets_BxT)
  correct_BxT = (jnp.argmax(logits_BxTxV, -1) == targets_BxT).astype(jnp.float32)
  return (nll_BxT * weights_BxT).sum(), weights_BxT.sum(), (correct_BxT * weights_BxT).sum()


def global_norm(tree) -> jax.Array:
  """sqrt of the sum of squares of every leaf (what clip_by_global_norm clips)."""
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)))


def make_lm_train_step(model, tx: optax.GradientTransformation, schedule: optax.Schedule) -> Callable:
  """(state, batch) -> (state, metrics) for next-token prediction; the loss is the mean over weighted tokens."""

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)

    def loss_fn(params):
      logits_BxTxV = model.apply({'params': params}, batch['inputs'], train=True, rngs={'dropout': rng})
      nll, n, correct = token_cross_entropy(logits_BxTxV, batch['targets'], batch['weights'])
      n = jnp.maximum(n, 1.0)
      return nll / n, correct / n

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {'loss': loss, 'accuracy': accuracy, 'grad_norm': global_norm(grads),
               'lr': schedule(state.step)}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  return train_step


def make_lm_eval_step(model) -> Callable:
  """(params, batch) -> sums of nll, tokens, correct tokens and exactly-right sequences."""

  def eval_step(params, batch):
    logits_BxTxV = model.apply({'params': params}, batch['inputs'], train=False)
    nll, n, correct = token_cross_entropy(logits_BxTxV, batch['targets'], batch['weights'])
    w_BxT = batch['weights']
    right_BxT = jnp.argmax(logits_BxTxV, -1) == batch['targets']
    seq_has_tokens_B = w_BxT.sum(-1) > 0
    seq_right_B = jnp.all(right_BxT | (w_BxT == 0), axis=-1) & seq_has_tokens_B
    return {'nll': nll, 'tokens': n, 'correct': correct, 'sequences': seq_has_tokens_B.sum(),
            'sequences_correct': seq_right_B.sum()}

  return eval_step
