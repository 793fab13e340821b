"""Training by counting: the n-gram LM (seqmodels/models/ngram.py) fitted in one pass over the
training tokens.

The n-gram has no parameters to descend on, so it skips the gradient loop but keeps its contract:
the same eval sums and metrics as the neural LMs (steps.token_metrics over the validation split),
the same metrics.jsonl and summary.json fields, so seqmodels.report puts it in the same table. In
the summary, `params` is the number of stored n-gram counts (every order), `tokens_per_sec` the
counting throughput, and `unseen_context_fraction` {order k: share of evaluated positions whose
(k-1)-token context never occurs in training} shows the sparsity.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import numpy as np

from seqmodels.data import builders, core
from seqmodels.data import registry as datasets
from seqmodels.models import ngram
from seqmodels.train import sharding, steps
from seqmodels.train import workdir as records
from seqmodels.train.evaluate import check_test_split, eval_batch_size
from seqmodels.train.metrics import MetricWriter, PeakMemory

_CHUNK = 4096


def training_tokens(data: core.Data, data_cfg) -> np.ndarray:
  """The training split as one 1-D token stream, in order.

  Windows of running text are stitched back into the text (each window contributes its first
  `stride` tokens, so overlapping windows count once); independent sequences (synthetic tasks, lm1b
  sentences) are each [first input, targets...] with padding dropped, one after the other.
  """
  examples, streams = data.splits['train'], datasets.DATASETS[data_cfg.name].streams
  rows = [examples.gather(np.arange(i, min(i + _CHUNK, examples.size)))
          for i in range(0, examples.size, _CHUNK)]
  if streams:  # the training rows are windows of one running text
    stride = data_cfg.stride or data_cfg.seq_len
    if stride <= data.seq_len:
      last = rows[-1]
      tail = np.concatenate([last['inputs'][-1, stride:], last['targets'][-1, -1:]])
      return np.concatenate([r['inputs'][:, :stride].ravel() for r in rows] + [tail]).astype(
          np.int64)
  parts = []
  for r in rows:
    seq_BxL = np.concatenate([r['inputs'][:, :1], r['targets']], axis=1)
    parts.append(seq_BxL[seq_BxL != core.PAD] if not streams else seq_BxL.ravel())
  return np.concatenate(parts).astype(np.int64)


def eval_batches(data: core.Data, batch_size: int, max_batches: int | None,
                 split: str = 'validation', context: int = 0):
  """The split's evaluation windows (`Data.eval_batches`). With `context` > 0 (train.carry_state),
  each window's row begins up to `context` tokens of the running text earlier, those positions
  weighted 0: the same targets, each with the whole n-gram context the text before it gives, as a
  state carried from the last window would."""
  ids_N, T = data.tokens.get(split), data.seq_len
  if not context or ids_N is None or len(ids_N) < T + context + 1:
    yield from data.eval_batches(batch_size=batch_size, split=split, max_batches=max_batches)
    return
  starts = builders.window_starts(len(ids_N), T + 1,
                                  T)[:None if max_batches is None else max_batches * batch_size]
  row_starts = np.maximum(starts - context, 0)
  offset_L, j_T = np.arange(T + context + 1), np.arange(T + context)
  for i in range(0, len(starts), batch_size):
    first, batch_starts = row_starts[i:i + batch_size], starts[i:i + batch_size]
    batch = core.format_window(ids_N[first[:, None] + offset_L])
    target_from = (batch_starts - first)[:, None]  # the row's position of the window's first target
    batch['weights'] = ((j_T >= target_from) & (j_T < target_from + T)).astype(np.float32)
    yield batch


def evaluate(model: ngram.NGramLM, data: core.Data, batch_size: int, max_batches: int | None,
             split: str = 'validation',
             carry_state: bool = False) -> tuple[dict[str, float], dict[int, float]]:
  """(steps.token_metrics of the summed eval sums, {order: unseen-context fraction}) over the split;
  with carry_state, contexts reach back across window boundaries (`eval_batches`)."""
  totals: dict[str, float] = {}
  unseen = {k: 0.0 for k in range(2, model.order + 1)}
  positions = dict(unseen)
  for batch in eval_batches(data, batch_size, max_batches, split,
                            max(model.order - 2, 0) if carry_state else 0):
    sums = model.eval_sums(batch)
    totals = {k: totals.get(k, 0.0) + v for k, v in sums.items()}
    w_BxT = np.asarray(batch['weights'], np.float64)
    for k, frac in model.unseen_context_fraction(batch).items():
      # positions t >= k - 2 have a full (k-1)-token context in their row
      n = w_BxT[:, k - 2:].sum()
      if n > 0:
        unseen[k] += frac * n
        positions[k] += n
  fractions = {k: unseen[k] / positions[k] if positions[k] > 0 else float('nan') for k in unseen}
  return core.with_bits_per_char(steps.token_metrics(totals), data, split), fractions


def fit_and_evaluate(config, workdir: str, peak_memory: PeakMemory,
                     digests: dict[str, str]) -> dict[str, Any]:
  """Fits config.model (order, discount) on the training tokens, evaluates it, writes the run's
  files."""
  t_start = time.time()
  os.makedirs(workdir, exist_ok=True)
  records.write_config(workdir, config, digests)
  datasets.prepare(config.data)
  data = datasets.load(config.data)
  if data.kind != 'lm':
    raise ValueError(f'config.model.name={config.model.name!r} models token streams; '
                     f'config.data.name={config.data.name!r} is a {data.kind} task')
  test_eval = config.train.get('test_eval', False)
  if test_eval:
    check_test_split(data, config.data.name)
  m = config.model
  tokens = training_tokens(data, config.data)
  t_fit = time.time()
  model = ngram.fit(tokens, m.order, data.vocab_size, discount=m.discount or None)
  fit_seconds = time.time() - t_fit
  train_metrics = {'tokens': float(tokens.size),
                   'tokens_per_sec': tokens.size / max(fit_seconds, 1e-9),
                   'train_seconds': fit_seconds}
  carry = config.train.get('carry_state', False)
  eval_batch = eval_batch_size(config.train)
  eval_metrics, unseen = evaluate(model, data, eval_batch, config.train.eval_batches or None,
                                  carry_state=carry)
  # counting starts over
  writer = MetricWriter(workdir, enabled=jax.process_index() == 0, resume_step=0)
  writer.write(1, 'train', train_metrics)
  writer.write(1, 'eval', {**eval_metrics, **{f'unseen_context_{k}': v for k, v in unseen.items()}})
  test_metrics = {}
  if test_eval:  # the counts are the model's one set of parameters: 'final'
    test_metrics, test_unseen = evaluate(model, data, eval_batch, config.train.eval_batches or None,
                                         'test', carry)
    writer.write(1, 'test',
                 {**test_metrics, **{f'unseen_context_{k}': v for k, v in test_unseen.items()}})
    test_metrics = {**test_metrics, 'parameters': 'final'}
  writer.close()
  summary = records.summary(
      config, 'done', params=int(sum(t.keys.size for t in model.tables)), step=1, num_steps=1,
      train=train_metrics, eval=eval_metrics, best_eval_loss=eval_metrics['loss'], best_step=1,
      tokens_per_sec=train_metrics['tokens_per_sec'], train_seconds=fit_seconds,
      wall_seconds=time.time() - t_start,
      sessions=[records.session(0, platform='cpu')],  # one counting pass, in NumPy
      platform='cpu', dtype='float64',  # NumPy counts
      peak_memory_bytes=peak_memory.bytes(), order=model.order,
      # the fields of a neural run's size (seqmodels/models/size.py): its counts are its
      # parameters, it has no embedding, and counting does no floating-point work to rate
      params_embedding=0, params_non_embedding=int(sum(t.keys.size for t in model.tables)),
      flops_per_token=0.0, mfu=None, peak_flops=None, peak_flops_source='none: the n-gram counts',
      # as Evaluator.describe names a neural run's: contexts reach back across windows where the
      # run carries state, else each window starts afresh (strided is refused in validation)
      evaluation={'mode': 'carried' if carry else 'windows',
                  'window': data.seq_len},
      discounts={k + 1: list(t.discounts) for k, t in enumerate(model.tables)},
      unseen_context_fraction=unseen, **({'test': test_metrics} if test_metrics else {}))
  # as loop's runs end: a process that failed says so here
  sharding.wait_for_all_processes('the run')
  records.write_summary(workdir, summary)
  return summary
