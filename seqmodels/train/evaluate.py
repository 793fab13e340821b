"""Evaluation passes of a run: a split's metrics (windows, or carried state), the test split, and
the evaluations a model adds after training (its registry entry's `after_training`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from seqmodels import evals
from seqmodels.data import core
from seqmodels.errors import DataError
from seqmodels.models import registry
from seqmodels.train import checkpoint, sharding, steps
from seqmodels.train import state as state_lib


def eval_batch_size(train_cfg) -> int:
  """The global rows of an evaluation batch: train.eval_batch_size, 0 meaning train.batch_size
  (under carry_state: the streams a split is read as)."""
  return train_cfg.get('eval_batch_size', 0) or train_cfg.batch_size


def check_test_split(data: core.Data, name: str) -> None:
  """train.test_eval needs a test split of its own (lm1b's validation split is its test split; a
  local text file has train and validation only), checked before any training."""
  test = data.splits.get('test')
  if test is None or test is data.splits.get('validation'):
    why = (data.meta.get('no_test', 'none') if test is None
           else 'its validation split is its test split')
    raise DataError(f'config.train.test_eval=True, but config.data.name={name} has no test split '
                    f'of its own ({why}): leave test_eval off, its final eval is on '
                    'the validation split')


def evaluate(eval_step, objective, params, data, batch_size_local: int, batch_sharding,
             max_batches: int | None, split: str = 'validation', carry=None) -> dict[str, float]:
  """The objective's metrics over the split (or its first `max_batches` batches), summed over
  batches.

  With `carry` (the zero state, under train.carry_state) the split is read as streams
  (`Data.stream_batches`), each window starting from the state its stream's last one ended in:
  eval_step is (params, carry, batch) -> (sums, carry).
  """
  totals: dict[str, Any] = {}
  read = data.eval_batches if carry is None else data.stream_batches
  for batch in read(batch_size=batch_size_local, split=split, process_index=jax.process_index(),
                    process_count=jax.process_count(), max_batches=max_batches):
    batch = sharding.global_batch(batch, batch_sharding)
    if carry is None:
      sums = eval_step(params, batch)
    else:
      sums, carry = eval_step(params, carry, batch)
    totals = sums if not totals else jax.tree.map(jnp.add, totals, sums)
  metrics = core.with_bits_per_char(objective.finalize(jax.device_get(totals)), data, split)
  return core.with_recall_accuracy(metrics, data)


class Evaluator:
  """The evaluations of one run, compiled once: a split's metrics, the test split, the
  after-training evals."""

  def __init__(self, model, objective: steps.Objective, data: core.Data, config, workdir: str,
               state_sh, batch_sh, params):
    tc = config.train
    self.model, self.objective, self.data, self.config, self.workdir = (model, objective, data,
                                                                        config, workdir)
    self.state_sh, self.batch_sh = state_sh, batch_sh
    self.batch_size = eval_batch_size(tc) // jax.process_count()  # the rows of this process
    self.max_batches = tc.eval_batches or None
    self.carry = None
    replicated = sharding.replicated(batch_sh.mesh)
    if tc.get('carry_state', False):
      self.step = jax.jit(steps.make_eval_step(model, objective, carry_state=True),
                          in_shardings=(state_sh.params, state_sh.carry, batch_sh),
                          out_shardings=(replicated, state_sh.carry))
      rows = self.batch_size * jax.process_count()
      self.carry = jax.jit(lambda p: state_lib.zero_carry(model, p, rows),
                           out_shardings=state_sh.carry)(params)
      # A split too short for its streams is a DataError now, not at the first evaluation.
      for split in ('validation', 'test') if tc.get('test_eval', False) else ('validation',):
        data.stream_batches(batch_size=self.batch_size, split=split,
                            process_count=jax.process_count())
    else:
      self.step = jax.jit(steps.make_eval_step(model, objective),
                          in_shardings=(state_sh.params, batch_sh), out_shardings=replicated)

  def __call__(self, params, split: str = 'validation') -> dict[str, float]:
    """The metrics of `split` under `params`."""
    return evaluate(self.step, self.objective, params, self.data, self.batch_size, self.batch_sh,
                    self.max_batches, split, self.carry)

  def after_training(self, params) -> dict[str, float]:
    """The metrics of the evaluations the model's registry entry adds after training (translation:
    BLEU)."""
    entry = registry.MODELS[self.config.model.name]
    metrics = self.at_lengths(params)
    for name in entry.after_training:
      metrics.update(evals.AFTER_TRAINING[name](self.model, entry.decode_step, params, self.data,
                                                self.config, self.workdir))
    return metrics

  def at_lengths(self, params) -> dict[str, float]:
    """Recall tasks' length generalisation: loss and recall accuracy on each split len<n> of
    data.eval_lens, as `<metric>_len<n>`, in batches of about the training batch's tokens."""
    metrics: dict[str, float] = {}
    per = jax.local_device_count()
    for split, length in self.data.meta.get('eval_lengths', {}).items():
      rows = max(per, self.batch_size * self.data.seq_len // length // per * per)
      m = evaluate(self.step, self.objective, params, self.data, rows, self.batch_sh, None, split)
      metrics.update({f'{k}_{split}': m[k] for k in ('loss', 'recall_accuracy') if k in m})
    return metrics

  def test(self, params) -> dict[str, Any]:
    """The test split's metrics, with the best evaluation's parameters under keep_best, else
    `params`."""
    which = 'final'
    if self.config.train.get('keep_best', False):
      _, saved = checkpoint.restore_saved(self.workdir, which='best')
      params, which = jax.tree.map(jax.device_put, saved['params'], self.state_sh.params), 'best'
    return {**self(params, 'test'), 'parameters': which}
