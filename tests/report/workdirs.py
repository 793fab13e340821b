"""Run directories as launch.py and the analysis CLIs write them, for the report's tests."""

import json
import math

import numpy as np

PNG = b'\x89PNG\r\n\x1a\n'


def lm_run(root, name, model, seed, max_len, bits, tokens_per_sec, steps=(100, 200),
           seconds_per_step=None):
  """A copy-task LM run as seqmodels/train/loop.py writes it, metrics.jsonl's last line torn."""
  d = root / name
  d.mkdir(parents=True)
  loss = bits * math.log(2)
  (d / 'config.json').write_text(json.dumps({'seed': seed, 'model': {'name': model, 'width': 8},
                                             'data': {'name': 'copy', 'max_len': max_len}}))
  lines = []
  for s in steps:
    lines.append({'step': s, 'split': 'train', 'loss': loss * 2 * steps[-1] / s,
                  'tokens_per_sec': tokens_per_sec,
                  **({'train_seconds': s * seconds_per_step} if seconds_per_step else {})})
    lines.append({'step': s, 'split': 'eval', 'loss': loss * steps[-1] / s,
                  'sequence_accuracy': 0.1 * s / steps[-1]})
  # torn last line
  (d / 'metrics.jsonl').write_text(''.join(json.dumps(l) + '\n' for l in lines) + '{"step": 3')
  (d / 'summary.json').write_text(json.dumps({
      'status': 'done', 'model': model, 'params': 1000,
      'eval': {'loss': loss, 'bits_per_token': bits, 'sequence_accuracy': 0.1},
      'best_eval_loss': loss, 'tokens_per_sec': tokens_per_sec, 'train_seconds': 10.0,
      'wall_seconds': 12.0, 'peak_memory_bytes': 2**20 * 100}))


def analysis_files(d):
  """cost.json, gradient_flow.json and attention_maps.npz in `d`, as the analysis CLIs write."""
  T = 12
  (d / 'gradient_flow.json').write_text(
      json.dumps({'series': [{'model': 'rnn', 'site': 'layer0/h', 'step': 0,
                              'norms': (0.5 ** np.arange(T)[::-1]).tolist()},
                             {'model': 'gpt', 'site': 'block0/output', 'norms': [1.0] * T}]}))
  (d / 'cost.json').write_text(json.dumps({'device': 'cpu', 'entries': [
      {'model': m, 'seq_len': t, 'batch_size': 8, 'step_ms': t * k,
       'peak_memory_bytes': t * t * k * 1e3}
      for m, k in (('lstm', 1.0), ('gpt', 0.1)) for t in (64, 128, 256)]}))
  att = np.random.default_rng(0).random((2, 6, 6))
  att = att / att.sum(-1, keepdims=True)
  np.savez(d / 'attention_maps.npz', layer0=att, layer1=att[0], tokens=np.array(list('abcdef')))


def adding_run(root, name, model, seed, max_len, mse, status='done', clip_norm=1.0):
  """An adding-problem (regression) run as seqmodels/train/loop.py writes it: loss = mse, grad_norm
  logged."""
  d = root / name
  d.mkdir(parents=True)
  (d / 'config.json').write_text(
      json.dumps({'seed': seed, 'model': {'name': model, 'width': 8},
                  'data': {'name': 'adding', 'max_len': max_len, 'min_len': max_len},
                  'optim': {'clip_norm': clip_norm}}))
  lines = [{'step': s, 'split': 'train', 'loss': mse * 400 / s, 'mse': mse * 400 / s,
            'grad_norm': 10.0 ** (s / 100), 'accuracy': 0.1} for s in (100, 200, 300, 400)]
  lines.append({'step': 400, 'split': 'eval', 'loss': mse, 'mse': mse, 'accuracy': 0.5})
  (d / 'metrics.jsonl').write_text(''.join(json.dumps(l) + '\n' for l in lines))
  if status == 'failed':
    (d / 'failed.json').write_text(
        json.dumps({'error': 'NonFiniteLossError: loss became nan at step 401'}))
    return
  (d / 'summary.json').write_text(json.dumps({
      'status': 'done', 'model': model, 'data': 'adding', 'params': 100,
      'eval': {'loss': mse, 'mse': mse, 'accuracy': 0.5}, 'best_eval_loss': mse * 0.9,
      'tokens_per_sec': 1.0}))
