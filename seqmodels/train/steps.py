"""Jitted train and eval steps, shared by every architecture; one Objective per task kind.

An Objective says how a kind of task feeds a model (which batch arrays, in which order) and how it
scores the output. The train step and the eval step are written once, for every objective.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from seqmodels.models import registry
from seqmodels.train import optim
from seqmodels.train.state import TrainState

Batch = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Objective:
  """The training loss is `from_sums(eval_sums(outputs, batch))`: sums over the batch, then ratios
  of them.

  Every ratio divides a sum of per-token or per-row terms by one of the `counts` (sums of data
  weights, which no parameter changes), so the loss is linear in the other sums once the counts are
  fixed. That is what lets a step accumulate gradients over micro-batches and still take exactly the
  step of the whole batch (make_train_step).
  """
  inputs: Callable[[Batch], tuple]                           # batch -> positional model inputs
  eval_sums: Callable[[Any, Batch], dict[str, jax.Array]]    # (outputs, batch) -> sums over the
                                                             # batch
  from_sums: Callable[[dict], tuple[jax.Array, dict]]        # sums -> (mean loss, mean metrics),
                                                             # jittable
  counts: tuple[str, ...]                                    # the sums that are data weights
                                                             # (denominators)
  finalize: Callable[[dict[str, float]], dict[str, float]]   # summed eval sums -> metrics (on the
                                                             # host)
  # Metrics of from_sums that the train step leaves out (evaluation reports them): a token accuracy
  # is an argmax over the vocabulary, which XLA:CPU does not vectorize: 9% of a 22k-word LSTM LM's
  # CPU step (bench/word_lm.py).
  train_drops: tuple[str, ...] = ()

  def loss(self, outputs, batch: Batch) -> tuple[jax.Array, dict]:
    """(mean loss, mean metrics) of the outputs on the batch."""
    return self.from_sums(self.eval_sums(outputs, batch))


def token_cross_entropy(logits_BxTxV, targets_BxT, weights_BxT):
  """Sums over weighted tokens: (cross-entropy in nats, number of tokens, correct argmax
  predictions)."""
  logits_BxTxV = logits_BxTxV.astype(jnp.float32)
  nll_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV, targets_BxT)
  correct_BxT = (jnp.argmax(logits_BxTxV, -1) == targets_BxT).astype(jnp.float32)
  return (nll_BxT * weights_BxT).sum(), weights_BxT.sum(), (correct_BxT * weights_BxT).sum()


def _lm_from_sums(t):
  n = jnp.maximum(t['tokens'], 1.0)
  return t['nll'] / n, {'accuracy': t['correct'] / n}


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
  metrics = {'loss': loss, 'perplexity': math.exp(min(loss, 700.0)),
             'bits_per_token': loss / math.log(2), 'accuracy': float(t['correct']) / n}
  if 'sequences' in t:
    metrics['sequence_accuracy'] = float(t['sequences_correct']) / max(float(t['sequences']), 1.0)
  return metrics


LM = Objective(inputs=lambda b: (b['inputs'],), eval_sums=_lm_eval_sums, from_sums=_lm_from_sums,
               counts=('tokens', 'sequences'), finalize=token_metrics, train_drops=('accuracy',))



def row_cross_entropy(logits_BxC, labels_B, weights_B):
  """Sums over weighted rows: (cross-entropy in nats, number of rows, correct argmax
  predictions)."""
  logits_BxC = logits_BxC.astype(jnp.float32)
  nll_B = optax.softmax_cross_entropy_with_integer_labels(logits_BxC, labels_B)
  correct_B = (jnp.argmax(logits_BxC, -1) == labels_B).astype(jnp.float32)
  return (nll_B * weights_B).sum(), weights_B.sum(), (correct_B * weights_B).sum()


def _mlm_eval_sums(outputs, batch):
  """BERT pre-training: masked-token sums (weights mark the chosen tokens) and next-sentence sums
  per row."""
  mlm_logits_BxTxV, nsp_logits_Bx2 = outputs
  mlm_nll, tokens, mlm_correct = token_cross_entropy(mlm_logits_BxTxV, batch['targets'],
                                                     batch['weights'])
  nsp_nll, rows, nsp_correct = row_cross_entropy(nsp_logits_Bx2, batch['next'], batch['weight'])
  return {'mlm_nll': mlm_nll, 'tokens': tokens, 'mlm_correct': mlm_correct, 'nsp_nll': nsp_nll,
          'rows': rows, 'nsp_correct': nsp_correct}


def mlm_metrics(t: dict) -> dict:
  """loss = masked-LM loss (nats per chosen token) + next-sentence loss (nats per pair), and both
  parts."""
  n, rows = jnp.maximum(t['tokens'], 1.0), jnp.maximum(t['rows'], 1.0)
  m = {'mlm_loss': t['mlm_nll'] / n, 'nsp_loss': t['nsp_nll'] / rows,
       'mlm_accuracy': t['mlm_correct'] / n, 'nsp_accuracy': t['nsp_correct'] / rows}
  return {'loss': m['mlm_loss'] + m['nsp_loss'], **m}


def _split_loss(metrics: Callable[[dict], dict]) -> Callable[[dict], tuple[jax.Array, dict]]:
  """sums -> (metrics['loss'], the other metrics)."""
  def from_sums(t):
    m = metrics(t)
    return m.pop('loss'), m
  return from_sums


def _classify_eval_sums(logits_BxC, batch):
  nll, rows, correct = row_cross_entropy(logits_BxC, batch['label'], batch['weight'])
  return {'nll': nll, 'rows': rows, 'correct': correct}


def classify_metrics(t: dict) -> dict:
  rows = jnp.maximum(t['rows'], 1.0)
  return {'loss': t['nll'] / rows, 'accuracy': t['correct'] / rows}


_floats = lambda f: (lambda t: {k: float(v) for k, v in f(t).items()})
# BERT pre-training: masked tokens and sentence segments in, (mlm logits, nsp logits) out.
MLM = Objective(inputs=lambda b: (b['inputs'], b['segments']), eval_sums=_mlm_eval_sums,
                from_sums=_split_loss(mlm_metrics), counts=('tokens', 'rows'),
                finalize=_floats(mlm_metrics))
# Sequence (pair) classification: tokens and segments in, logits_BxC out, one label per row.
CLASSIFY = Objective(inputs=lambda b: (b['inputs'], b['segments']), eval_sums=_classify_eval_sums,
                     from_sums=_split_loss(classify_metrics), counts=('rows',),
                     finalize=_floats(classify_metrics))

OBJECTIVES: dict[str, Objective] = {'lm': LM, 'mlm': MLM, 'classify': CLASSIFY}


def _seq2seq_as_lm(outputs, batch):
  """Seq2seq models return logits_BxTxV or (logits, attention weights); score them as next-token
  prediction."""
  logits_BxTxV = outputs[0] if isinstance(outputs, tuple) else outputs
  return logits_BxTxV, {'targets': batch['tgt_out'], 'weights': batch['weights']}


# seq2seq: batches {src [b,S], tgt_in [b,T] (BOS + target), tgt_out [b,T] (target + EOS), weights
# [b,T]}.
SEQ2SEQ = Objective(inputs=lambda b: (b['src'], b['tgt_in']),
                    eval_sums=lambda o, b: _lm_eval_sums(*_seq2seq_as_lm(o, b)),
                    from_sums=_lm_from_sums, counts=LM.counts, finalize=token_metrics,
                    train_drops=LM.train_drops)
OBJECTIVES['seq2seq'] = SEQ2SEQ

# Adding-problem accuracy: a prediction counts as right within this absolute error (Hochreiter &
# Schmidhuber 1997, experiment 4: "absolute error below 0.04").
REGRESSION_TOLERANCE = 0.04


def _regression_eval_sums(pred_B, batch):
  """Sums over real rows (padding rows of eval batches are all zero, mask included): squared error,
  count, hits."""
  w_B = batch['mask'][:, 0].astype(jnp.float32)
  err_B = pred_B.astype(jnp.float32) - batch['target'].astype(jnp.float32)
  return {'squared_error': (w_B * err_B**2).sum(), 'rows': w_B.sum(),
          'within': (w_B * (jnp.abs(err_B) < REGRESSION_TOLERANCE)).sum()}


def regression_metrics(t: dict) -> dict:
  """loss = mse (mean squared error per row); accuracy = fraction of rows within
  REGRESSION_TOLERANCE."""
  rows = jnp.maximum(t['rows'], 1.0)
  mse = t['squared_error'] / rows
  return {'loss': mse, 'mse': mse, 'accuracy': t['within'] / rows}


def _regression_from_sums(t):
  m = regression_metrics(t)
  return m['loss'], {'accuracy': m['accuracy']}


# Many-to-one regression (the adding problem): {values, markers, mask} [b, T] in, prediction_B out,
# one target per row.
REGRESSION = Objective(inputs=lambda b: (b['values'], b['markers'], b['mask']),
                       eval_sums=_regression_eval_sums, from_sums=_regression_from_sums,
                       counts=('rows',), finalize=_floats(regression_metrics))
OBJECTIVES['regression'] = REGRESSION


def _bilm_window(batch):
  """A biLM reads the whole window x_0..x_T (the inputs and the last target); a position is real
  where the target after it is, so x_0 counts with x_1 (text windows: every position; lm1b
  sentences: up to EOS)."""
  tokens_BxL = jnp.concatenate([batch['inputs'][:, :1], batch['targets']], axis=1)
  mask_BxL = jnp.concatenate([batch['weights'][:, :1], batch['weights']], axis=1)
  return tokens_BxL, mask_BxL


def _bilm_eval_sums(outputs, batch):
  """ELMo pre-training: forward predictions of x_1..x_T (the targets), backward ones of x_0..x_{T-1}
  (the inputs), each from positions that never saw the token predicted; both weighted by
  `weights`."""
  fwd_nll, tokens, fwd_correct = token_cross_entropy(outputs.fwd_BxTxV[:, :-1], batch['targets'],
                                                     batch['weights'])
  bwd_nll, _, bwd_correct = token_cross_entropy(outputs.bwd_BxTxV[:, 1:], batch['inputs'],
                                                batch['weights'])
  return {'fwd_nll': fwd_nll, 'bwd_nll': bwd_nll, 'tokens': tokens, 'fwd_correct': fwd_correct,
          'bwd_correct': bwd_correct}


def bilm_metrics(t: dict) -> dict:
  """loss = the mean of the forward and backward LM losses (nats/token), and each direction's loss
  and accuracy."""
  n = jnp.maximum(t['tokens'], 1.0)
  m = {'fwd_loss': t['fwd_nll'] / n, 'bwd_loss': t['bwd_nll'] / n,
       'fwd_accuracy': t['fwd_correct'] / n, 'bwd_accuracy': t['bwd_correct'] / n}
  mean = lambda k: (m[f'fwd_{k}'] + m[f'bwd_{k}']) / 2
  return {'loss': mean('loss'), 'accuracy': mean('accuracy'), **m}


def _bilm_finalize(t: dict) -> dict:
  m = {k: float(v) for k, v in bilm_metrics(t).items()}
  return {**m, 'perplexity': math.exp(min(m['loss'], 700.0)),
          'bits_per_token': m['loss'] / math.log(2),
          'fwd_bits_per_token': m['fwd_loss'] / math.log(2),
          'bwd_bits_per_token': m['bwd_loss'] / math.log(2)}


# A biLM (ELMo) on lm batches: the whole window in, BiLMLogits (fwd_BxTxV, bwd_BxTxV) out; chosen by
# the model's registry entry (Entry.objective), since its data is plain lm data.
BILM = Objective(inputs=_bilm_window, eval_sums=_bilm_eval_sums,
                 from_sums=_split_loss(bilm_metrics), counts=('tokens',), finalize=_bilm_finalize,
                 train_drops=('accuracy', 'fwd_accuracy', 'bwd_accuracy'))
OBJECTIVES['bilm'] = BILM


def negative_sampling_sums(scores, batch=None):
  """word2vec (models/word2vec.py Scores): sums over real pairs of -log sigma(s_true) - sum_k
  log sigma(-s_noise_k) (Mikolov et al. 2013, eq. 4), and the number of pairs."""
  del batch  # the model's Scores carry which pairs are real
  nll_BxP = (jax.nn.softplus(-scores.true_BxP) +
             (jax.nn.softplus(scores.noise_BxPxK) * scores.noise_weights_BxPxK).sum(-1))
  return {'nll': (nll_BxP * scores.weights_BxP).sum(), 'pairs': scores.weights_BxP.sum()}


def _pair_loss(t):
  return t['nll'] / jnp.maximum(t['pairs'], 1.0), {}


# word2vec: (center, context, negatives, weights) in, Scores out; the loss is nats per pair.
WORD2VEC = Objective(inputs=lambda b: (b['center'], b['context'], b['negatives'], b['weights']),
                     eval_sums=negative_sampling_sums, from_sums=_pair_loss, counts=('pairs',),
                     finalize=lambda t: {'loss': float(_pair_loss(t)[0]),
                                         'pairs': float(t['pairs'])})
OBJECTIVES['word2vec'] = WORD2VEC


def _carried(carry, reset_B):
  """The carried state, zero in the rows whose stream starts again (`reset` 1: an epoch's first
  window)."""
  keep_B = 1.0 - reset_B
  return jax.tree.map(lambda c: c * keep_B[:, None].astype(c.dtype), carry)


def layer_of(path) -> str:
  """The layer a parameter belongs to: its path up to the first name that ends in a number
  ('block0', 'rnn/layer1', 'encoder/layers_2'), else its top-level module ('embed', 'norm_f')."""
  names = [str(getattr(k, 'key', k)) for k in path[:-1]] or [str(getattr(path[0], 'key', ''))]
  for i, name in enumerate(names):
    if name[-1:].isdigit():
      return '/'.join(names[:i + 1])
  return names[0]


def per_layer_norms(params, grads, updates) -> dict[str, jax.Array]:
  """{param_norm/L, grad_norm/L, update_norm/L}: the global L2 norm of each layer L's parameters
  (before the update), gradients and updates, for comparing two models' training layer by layer."""
  out = {}
  for kind, tree in (('param_norm', params), ('grad_norm', grads), ('update_norm', updates)):
    squares: dict[str, jax.Array] = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
      layer = layer_of(path)
      squares[layer] = squares.get(layer, 0.0) + jnp.sum(jnp.square(leaf.astype(jnp.float32)))
    out.update({f'{kind}/{layer}': jnp.sqrt(sq) for layer, sq in squares.items()})
  return out


def make_train_step(model, tx: optax.GradientTransformation, schedule: optax.Schedule,
                    objective: Objective = LM, grad_accum: int = 1,
                    carry_state: bool = False, layer_norms: bool = False) -> Callable:
  """(state, batch) -> (state, metrics): one optimizer update on the objective's mean loss over the
  batch.

  With grad_accum = k > 1 the batch's rows are split into k micro-batches (rows j, j + k, j + 2k,
  ...: each device keeps its own rows), run one after another under lax.scan, so only one
  micro-batch's activations are live at a time; their gradients add up to the whole batch's. Each
  micro-batch's loss divides its sums by the whole batch's counts (Objective), so the loss, the
  metrics and the update equal those of one pass over the whole batch, padding and all
  (tests/train/steps_test.py); only dropout draws other masks.

  With carry_state (a recurrent LM on `Data.stream_batches`), the model starts from `state.carry`,
  zeroed in rows whose `reset` is 1, and the new state.carry is its final state: truncated
  backpropagation through time, the gradient stopping at the window's start. Micro-batches carry
  their own rows' states.

  With layer_norms, the metrics also hold each layer's parameter, gradient and update norms
  (`layer_norms`); without, the step computes none of them.
  """

  def forward(params, batch: Batch, rng, counts=None, carry=None):
    # 'sample': e.g. scheduled sampling
    rngs = {'dropout': rng, 'sample': jax.random.fold_in(rng, 1)}
    inputs = objective.inputs(batch)
    if carry is None:
      outputs = model.apply({'params': params}, *inputs, train=True, rngs=rngs)
    else:
      outputs, carry = model.apply({'params': params}, *inputs, train=True, rngs=rngs,
                                   carry0=_carried(carry, batch['reset']), return_carry=True)
      carry = jax.lax.stop_gradient(carry)
    loss, metrics = objective.from_sums({**objective.eval_sums(outputs, batch), **(counts or {})})
    return loss, ({k: v for k, v in metrics.items() if k not in objective.train_drops}, carry)

  def accumulated(params, batch: Batch, rng, carry):
    # The counts are sums of data weights: eval_sums of stand-in outputs gives them, and XLA drops
    # the rest.
    stand_in = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(
        lambda p: model.apply({'params': p}, *objective.inputs(batch), train=False), params))
    sums = objective.eval_sums(stand_in, batch)
    counts = {k: sums[k] for k in objective.counts if k in sums}
    split = lambda x: jnp.swapaxes(
        x.reshape(x.shape[0] // grad_accum, grad_accum, *x.shape[1:]), 0, 1)
    merge = lambda x: jnp.swapaxes(x, 0, 1).reshape(-1, *x.shape[2:])

    def body(grads, inputs):
      micro_batch, micro_carry, i = inputs
      (loss, (metrics, micro_carry)), g = jax.value_and_grad(forward, has_aux=True)(
          params, micro_batch, jax.random.fold_in(rng, i), counts, micro_carry)
      return jax.tree.map(jnp.add, grads, g), (loss, metrics, micro_carry)

    grads, (losses, metrics, carries) = jax.lax.scan(
        body, jax.tree.map(jnp.zeros_like, params),
        (jax.tree.map(split, batch), jax.tree.map(split, carry), jnp.arange(grad_accum)))
    return (losses.sum(),
            (jax.tree.map(lambda m: m.sum(0), metrics), jax.tree.map(merge, carries))), grads

  def train_step(state: TrainState, batch: Batch):
    rng = jax.random.fold_in(state.rng, state.step)
    carry = state.carry if carry_state else None
    if grad_accum == 1:
      (loss, (metrics, carry)), grads = jax.value_and_grad(forward, has_aux=True)(
          state.params, batch, rng, carry=carry)
    else:
      (loss, (metrics, carry)), grads = accumulated(state.params, batch, rng, carry)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    lr = schedule(state.step)
    # optim.plateau_decay: the learning rate times lr_scale, weight decay included
    if state.lr_scale is not None:
      updates, lr = (jax.tree.map(lambda u: (u * state.lr_scale).astype(u.dtype), updates),
                     lr * state.lr_scale)
    params = optax.apply_updates(state.params, updates)
    metrics = {'loss': loss, **metrics, 'grad_norm': optim.global_norm(grads), 'lr': lr}
    if layer_norms:
      metrics.update(per_layer_norms(state.params, grads, updates))
    new = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    return (new.replace(carry=carry) if carry_state else new), metrics

  return train_step


def make_eval_step(model, objective: Objective = LM, carry_state: bool = False) -> Callable:
  """(params, batch) -> the objective's sums over the batch (padding rows carry zero weight).

  With carry_state: (params, carry, batch) -> (sums, final carry), the model starting from `carry`:
  the state a stream's earlier windows ended in (`Data.stream_batches`).
  """

  def eval_step(params, batch: Batch):
    outputs = model.apply({'params': params}, *objective.inputs(batch), train=False)
    return objective.eval_sums(outputs, batch)

  def carried_eval_step(params, carry, batch: Batch):
    outputs, carry = model.apply({'params': params}, *objective.inputs(batch), train=False,
                                 carry0=carry, return_carry=True)
    return objective.eval_sums(outputs, batch), carry

  return carried_eval_step if carry_state else eval_step


def make_position_step(model) -> Callable:
  """(params, batch) -> {'nll': [T], 'tokens': [T]}: an LM's weighted cross-entropy summed over the
  batch at each position of the window (the loss by position: how much context helps)."""

  def position_step(params, batch: Batch):
    logits_BxTxV = model.apply({'params': params}, batch['inputs'], train=False)
    nll_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV.astype(jnp.float32),
                                                              batch['targets'])
    return {'nll': (nll_BxT * batch['weights']).sum(0), 'tokens': batch['weights'].sum(0)}

  return position_step


def objective_for(model_name: str, data_kind: str) -> Objective:
  """The Objective a model trains with on data of `data_kind` (its registry entry decides)."""
  return OBJECTIVES[registry.objective(model_name, data_kind)]
