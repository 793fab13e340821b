"""GPT training speed and quality against nanoGPT, in one run, on the same text and hardware.

  python bench/gpt.py --data=../shared/data/tinyshakespeare.txt [--peer=third_party/nanoGPT] [--recipe=cpu]

Recipes (nanoGPT's README): `cpu` = 4 layers x 128, 4 heads, context 64, batch 12, 2000 iters, dropout 0, lr 1e-3
cosine to 1e-4, warmup 100, AdamW (0.9, 0.99), weight decay 0.1, clip 1.0; `baby` = shakespeare_char (6 x 384,
context 256, batch 64, dropout 0.2, 5000 iters). Both sides are timed as whole processes (start-up, compilation,
periodic evaluation included). Quality: nanoGPT reports its own estimate (eval_iters random batches); seqmodels is
evaluated on the whole validation split (every window once), after the same number of steps.
Prints one JSON line per case: case, implementation, device, wall_s, ms_per_step, tokens_per_s, val_loss,
command, commit, date. `--peer` is a local checkout of karpathy/nanoGPT (kept out of the repository).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run from a checkout without installing
RECIPES = {
    'cpu': dict(layers=4, heads=4, width=128, context=64, batch=12, iters=2000, dropout=0.0, eval_interval=250,
                eval_iters=20),
    'baby': dict(layers=6, heads=6, width=384, context=256, batch=64, iters=5000, dropout=0.2, eval_interval=250,
                 eval_iters=200),
}


def _commit() -> str:
  try:
    return subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'], cwd=ROOT, capture_output=True, text=True,
                          timeout=10).stdout.strip() or 'unknown'
  except OSError:
    return 'unknown'


def _line(case: str, impl: str, device: str, wall_s: float, steps: int, tokens_per_step: int, val_loss: float,
          command: str, **extra) -> dict:
  train_s = extra.pop('train_s', wall_s)
  return {'case': case, 'implementation': impl, 'device': device, 'wall_s': round(wall_s, 2),
          'ms_per_step': round(1000 * train_s / steps, 2), 'tokens_per_s': round(tokens_per_step * steps / train_s),
          'val_loss': round(val_loss, 4), 'command': command, 'commit': _commit(),
          'date': datetime.date.today().isoformat(), **extra}


def seqmodels_config(recipe: dict, data: str, device_dtype: str):
  from experiments.configs.base import get_base_config
  c = get_base_config()
  c.data.name, c.data.path, c.data.seq_len, c.data.stride = 'text', os.path.abspath(data), recipe['context'], 1
  c.model.name, c.model.layers, c.model.heads, c.model.width = 'gpt', recipe['layers'], recipe['heads'], recipe['width']
  c.model.dropout = recipe['dropout']
  c.optim.lr, c.optim.min_lr_ratio, c.optim.warmup_steps = 1e-3, 0.1, 100
  c.optim.b1, c.optim.b2, c.optim.weight_decay, c.optim.clip_norm = 0.9, 0.99, 0.1, 1.0
  c.train.num_steps, c.train.batch_size = recipe['iters'], recipe['batch']
  c.train.eval_every, c.train.eval_batches = recipe['eval_interval'], recipe['eval_iters']
  c.train.checkpoint_every, c.train.log_every = recipe['iters'], recipe['eval_interval']
  c.train.dtype = device_dtype
  return c


def run_seqmodels(case: str, recipe: dict, data: str) -> dict:
  """Our whole run in this process: data preparation, compilation, training with periodic eval."""
  import jax
  from seqmodels.data import pipeline
  from seqmodels.train import loop
  device = jax.devices()[0].platform
  config = seqmodels_config(recipe, data, 'bfloat16' if device == 'gpu' else 'float32')
  workdir = tempfile.mkdtemp(prefix='bench-gpt-')
  t0 = time.time()
  summary = loop.train_and_evaluate(config, workdir)
  wall = time.time() - t0
  # The final number: the whole validation split, not the periodic estimate.
  from seqmodels.models import registry
  from seqmodels.train import sharding, steps
  data_obj = pipeline.load(config.data)
  model = registry.build(config.model, data_obj, loop.DTYPES[config.train.dtype])
  mesh = sharding.make_mesh()
  eval_step = jax.jit(steps.make_eval_step(model))
  full = loop.evaluate(eval_step, steps.LM, summary['state'].params, data_obj, config.train.batch_size,
                       sharding.batch_sharding(mesh), None)
  shutil.rmtree(workdir, ignore_errors=True)
  cmd = f'python bench/gpt.py --data={data} --recipe={case}'
  return _line(case, 'seqmodels', jax.devices()[0].device_kind, wall, recipe['iters'],
               recipe['batch'] * recipe['context'], full['loss'], cmd, train_s=summary['train_seconds'],
               periodic_val_loss=round(summary['eval']['loss'], 4))


def run_nanogpt(case: str, recipe: dict, data: str, peer: str) -> dict:
  """nanoGPT's own train.py with its README recipe, on the same text file."""
  work = tempfile.mkdtemp(prefix='bench-nanogpt-')
  shutil.copytree(peer, os.path.join(work, 'nanoGPT'), ignore=shutil.ignore_patterns('.git'))
  repo = os.path.join(work, 'nanoGPT')
  data_dir = os.path.join(repo, 'data', 'shakespeare_char')
  shutil.copy(data, os.path.join(data_dir, 'input.txt'))
  subprocess.run([sys.executable, 'prepare.py'], cwd=data_dir, check=True, capture_output=True)
  import torch
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  args = ['config/train_shakespeare_char.py', f'--device={device}', f'--compile={device == "cuda"}',
          f'--eval_iters={recipe["eval_iters"]}', '--log_interval=50', f'--block_size={recipe["context"]}',
          f'--batch_size={recipe["batch"]}', f'--n_layer={recipe["layers"]}', f'--n_head={recipe["heads"]}',
          f'--n_embd={recipe["width"]}', f'--max_iters={recipe["iters"]}', f'--lr_decay_iters={recipe["iters"]}',
          f'--dropout={recipe["dropout"]}', f'--eval_interval={recipe["eval_interval"]}', '--always_save_checkpoint=False']
  t0 = time.time()
  out = subprocess.run([sys.executable, 'train.py', *args], cwd=repo, capture_output=True, text=True, check=True)
  wall = time.time() - t0
  vals = [float(v) for v in re.findall(r'val loss ([0-9.]+)', out.stdout)]
  shutil.rmtree(work, ignore_errors=True)
  return _line(case, 'nanoGPT (PyTorch)', torch.cuda.get_device_name() if device == 'cuda' else 'cpu', wall,
               recipe['iters'], recipe['batch'] * recipe['context'], vals[-1], f'python train.py {" ".join(args)}',
               best_val_loss=min(vals))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data', required=True, help='a text file (e.g. ../shared/data/tinyshakespeare.txt)')
  parser.add_argument('--recipe', default='cpu', choices=sorted(RECIPES))
  parser.add_argument('--peer', default='', help='a nanoGPT checkout to run beside, e.g. third_party/nanoGPT')
  args = parser.parse_args()
  if not os.path.isfile(args.data):
    raise SystemExit(f'error: --data={args.data} does not exist: pass a text file')
  recipe = RECIPES[args.recipe]
  rows = [run_seqmodels(args.recipe, recipe, args.data)]
  if args.peer:
    rows.append(run_nanogpt(args.recipe, recipe, args.data, args.peer))
    rows[0]['speedup_vs_peer'] = round(rows[1]['wall_s'] / rows[0]['wall_s'], 3)
  for r in rows:
    print(json.dumps(r), flush=True)


if __name__ == '__main__':
  main()
