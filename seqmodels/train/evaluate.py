"""Evaluation passes of a run: a split's metrics, the test split, and the evaluations a model adds
after training (its registry entry's `after_training`).

Running text is scored in one of three modes (train.eval_mode), named in summary.json: 'windows'
(non-overlapping windows: a token sees on average half a window of context), 'strided' (windows
every train.eval_stride tokens, each token scored once with at least seq_len - eval_stride tokens
of context) and 'carried' (the split read as streams, a recurrent LM's state carried through it).
After training, the loss by position within the window is recorded at the training length and at
the multiples of it in train.eval_lengths (context.json), where the model can read longer windows.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seqmodels import evals
from seqmodels.data import core
from seqmodels.errors import DataError
from seqmodels.models import registry
from seqmodels.train import checkpoint, sharding, steps
from seqmodels.train import state as state_lib
from seqmodels.train import workdir as records

MODES = ('auto', 'windows', 'strided', 'carried')


def eval_mode(train_cfg) -> str:
  """train.eval_mode as a run applies it: 'auto' is 'carried' under carry_state, else 'windows'."""
  mode = train_cfg.get('eval_mode', 'auto')
  if mode == 'auto':
    return 'carried' if train_cfg.get('carry_state', False) else 'windows'
  return mode


def eval_stride(train_cfg, seq_len: int) -> int:
  """train.eval_stride, 0 meaning a quarter window (each token with >= 3/4 window of context)."""
  return train_cfg.get('eval_stride', 0) or max(1, seq_len // 4)


def eval_lengths(train_cfg) -> list[int]:
  """The multiples of the training window that train.eval_lengths names ('2,4,8' -> [2, 4, 8])."""
  text = str(train_cfg.get('eval_lengths', '')).strip()
  return [int(v) for v in text.split(',') if v.strip()] if text else []


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
             max_batches: int | None, split: str = 'validation', carry=None,
             stride: int = 0) -> dict[str, float]:
  """The objective's metrics over the split (or its first `max_batches` batches), summed over
  batches.

  With `carry` (the zero state, under train.carry_state) the split is read as streams
  (`Data.stream_batches`), each window starting from the state its stream's last one ended in:
  eval_step is (params, carry, batch) -> (sums, carry). With `stride` > 0 the split's running text
  is read as strided windows (`core.strided_windows`).
  """
  totals: dict[str, Any] = {}
  if carry is not None:
    read = data.stream_batches
  elif stride:
    windows = core.strided_windows(data.tokens[split], data.seq_len, stride)
    read = lambda split, **kw: core.examples_batches(windows, **kw)
  else:
    read = data.eval_batches
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
    self.mode = eval_mode(tc)
    self.stride = eval_stride(tc, data.seq_len) if self.mode == 'strided' else 0
    self.lengths = eval_lengths(tc)
    replicated = sharding.replicated(batch_sh.mesh)
    if self.mode == 'carried':
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
                    self.max_batches, split, self.carry, self.stride)

  def describe(self) -> dict[str, Any]:
    """How the splits were scored, for summary.json and the report."""
    described = {'mode': self.mode, 'window': self.data.seq_len}
    if self.mode == 'strided':
      described.update(stride=self.stride, min_context=self.data.seq_len - self.stride)
    if self.mode == 'carried':
      described['streams'] = self.batch_size * jax.process_count()
    return described

  def context(self, params, split: str = 'validation') -> dict[str, Any]:
    """The loss by position within non-overlapping windows of the training length and of each
    multiple in train.eval_lengths, over `split`'s running text: {length: {'loss', 'bits_per_token',
    'tokens', 'by_position': [nats at each position]}}; {} for data that is not running text or a
    model that takes no plain windows (the LM objective only)."""
    if split not in self.data.tokens or self.objective is not steps.LM:
      return {}
    step = jax.jit(steps.make_position_step(self.model),
                   in_shardings=(self.state_sh.params, self.batch_sh),
                   out_shardings=sharding.replicated(self.batch_sh.mesh))
    ids_N, out = self.data.tokens[split], {}
    for m in [1, *self.lengths]:
      length = m * self.data.seq_len
      if len(ids_N) < length + 1:
        raise DataError(f'config.train.eval_lengths={",".join(map(str, self.lengths))}: the '
                        f'{split} split has {len(ids_N)} tokens, fewer than one window of {m} x '
                        f'config.data.seq_len + 1 = {length + 1}: drop {m} from eval_lengths')
      windows = core.strided_windows(ids_N, length, length)
      nll_T, tokens_T = np.zeros(length), np.zeros(length)
      for batch in core.examples_batches(windows, batch_size=self.batch_size,
                                         process_index=jax.process_index(),
                                         process_count=jax.process_count(),
                                         max_batches=self.max_batches):
        sums = jax.device_get(step(params, sharding.global_batch(batch, self.batch_sh)))
        nll_T, tokens_T = nll_T + sums['nll'], tokens_T + sums['tokens']
      loss = float(nll_T.sum() / max(tokens_T.sum(), 1.0))
      out[str(length)] = {'loss': loss, 'bits_per_token': loss / math.log(2),
                          'tokens': int(tokens_T.sum()),
                          'by_position': (nll_T / np.maximum(tokens_T, 1.0)).tolist()}
    return out

  def record_context(self, params, workdir: str) -> dict[str, float]:
    """Writes context.json (the validation split's `context`, process 0) and returns what the
    summary keeps: {'eval_by_length': {length: bits/token}}, {} where there is none."""
    context = self.context(params)
    if not context:
      return {}
    if jax.process_index() == 0:
      records.write_json(os.path.join(workdir, 'context.json'), {
          'split': 'validation', 'train_length': self.data.seq_len, 'lengths': context})
    return {'eval_by_length': {k: v['bits_per_token'] for k, v in context.items()}}

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
