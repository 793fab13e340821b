"""Jitted train and eval steps, shared by every architecture; one Objective per task kind.

An Objective says how a kind of task feeds a model (which batch arrays, in which order) and how it scores the
output. The train step and the eval step are written once, for every objective.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from seqmodels.train.state import TrainState

Batch = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Objective:
  inputs: Callable[[Batch], tuple]                           # batch -> positional model inputs
  loss: Callable[[Any, Batch], tuple[jax.Array, dict]]       # (outputs, batch) -> (mean loss, mean metrics)
  eval_sums: Callable[[Any, Batch], dict[str, jax.Array]]    # (outputs, batch) -> sums over the batch
  finalize: Callable[[dict[str, float]], dict[str, float]]   # summed eval sums -> metrics
  # Optional evaluation after training that needs more than one forward pass (e.g. decoding + BLEU):
  # (model, params, data, config, workdir) -> metrics merged into the final eval metrics.
  final_eval: Callable[..., dict[str, float]] | None = None


def token_cross_entropy(logits_BxTxV, targets_BxT, weights_BxT):
  """Sums over weighted tokens: (cross-entropy in nats, number of tokens, correct argmax predictions)."""
  logits_BxTxV = logits_BxTxV.astype(jnp.float32)
  nll_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV, targets_BxT)
  correct_BxT = (jnp.argmax(logits_BxTxV, -1) == targets_BxT).astype(jnp.float32)
  return (nll_BxT * weights_BxT).sum(), weights_BxT.sum(), (correct_BxT * weights_BxT).sum()


def _lm_loss(logits_BxTxV, batch):
  nll, n, correct = token_cross_entropy(logits_BxTxV, batch['targets'], batch['weights'])
  n = jnp.maximum(n, 1.0)
  return nll / n, {'accuracy': correct / n}


def _lm_eval_sums(logits_BxTxV, batch):
  nll, n, correct = token_cross_entropy(logits_BxTxV, batch['targets'], batch['weights'])
  w_BxT = batch['weights']
  right_BxT = jnp.argmax(logits_BxTxV, -1) == batch['targets']
  has_tokens_B = w_BxT.sum(-1) > 0
  all_right_B = jnp.all(right_BxT | (w_BxT == 0), axis=-1) & has_tokens_B
  return {'nll': nll, 'tokens': n, 'correct': correct, 'sequences': has_tokens_B.sum(),
          'sequences_correct': all_right_B.sum()}


def token_metrics(t: dict[str, float]) -> dict[str, float]:
  """Loss (nats/token), perplexity, bits per token and accuracies from summed token statistics."""
  n = max(float(t['tokens']), 1.0)
  loss = float(t['nll']) / n
  metrics = {'loss': loss, 'perplexity': math.exp(min(loss, 700.0)), 'bits_per_token': loss / math.log(2),
             'accuracy': float(t['correct']) / n}
  if 'sequences' in t:
    metrics['sequence_accuracy'] = float(t['sequences_correct']) / max(float(t['sequences']), 1.0)
  return metrics


LM = Objective(inputs=lambda b: (b['inputs'],), loss=_lm_loss, eval_sums=_lm_eval_sums, finalize=token_metrics)

OBJECTIVES: dict[str, Objective] = {'lm': LM}


def _seq2seq_as_lm(outputs, batch):
  """Seq2seq models return logits_BxTxV or (logits, attention weights); score them as next-token prediction."""
  logits_BxTxV = outputs[0] if isinstance(outputs, tuple) else outputs
  return logits_BxTxV, {'targets': batch['tgt_out'], 'weights': batch['weights']}


def _seq2seq_final_eval(model, params, data, config, workdir):
  from seqmodels.models import seq2seq  # decoding, BLEU and attention maps; imported late, steps stay light
  return seq2seq.final_eval(model, params, data, config, workdir)


# seq2seq: batches {src [b,S], tgt_in [b,T] (BOS + target), tgt_out [b,T] (target + EOS), weights [b,T]}.
SEQ2SEQ = Objective(inputs=lambda b: (b['src'], b['tgt_in']), loss=lambda o, b: _lm_loss(*_seq2seq_as_lm(o, b)),
                    eval_sums=lambda o, b: _lm_eval_sums(*_seq2seq_as_lm(o, b)), finalize=token_metrics,
                    final_eval=_seq2seq_final_eval)
OBJECTIVES['seq2seq'] = SEQ2SEQ


def global_norm(tree) -> jax.Array:
  """sqrt of the sum of squares of every leaf (what clip_by_global_norm clips)."""
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)))


def make_train_step(model, tx: optax.GradientTransformation, schedule: optax.Schedule,
                    objective: Objective = LM) -> Callable:
  """(state, batch) -> (state, metrics): one optimizer update on the objective's mean loss."""

  def train_step(state: TrainState, batch: Batch):
    rng = jax.random.fold_in(state.rng, state.step)

    def loss_fn(params):
      rngs = {'dropout': rng, 'sample': jax.random.fold_in(rng, 1)}  # 'sample': e.g. scheduled sampling
      outputs = model.apply({'params': params}, *objective.inputs(batch), train=True, rngs=rngs)
      return objective.loss(outputs, batch)

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {'loss': loss, **metrics, 'grad_norm': global_norm(grads), 'lr': schedule(state.step)}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  return train_step


def make_eval_step(model, objective: Objective = LM) -> Callable:
  """(params, batch) -> the objective's sums over the batch (padding rows carry zero weight)."""

  def eval_step(params, batch: Batch):
    outputs = model.apply({'params': params}, *objective.inputs(batch), train=False)
    return objective.eval_sums(outputs, batch)

  return eval_step
