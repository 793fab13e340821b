"""GPT speed and quality against nanoGPT, in one run, on the same text and hardware.

  python bench/gpt.py --data=../shared/data/tinyshakespeare.txt [--peer=third_party/nanoGPT] \
      [--recipe=cpu]
  python bench/gpt.py --recipe=gpt2 [--peer=third_party/nanoGPT]  # throughput only (no data needed)
  python bench/gpt.py --recipe=generate                         # KV cache vs recomputing the prefix

Recipes (nanoGPT's README): `cpu` = 4 layers x 128, 4 heads, context 64, batch 12, 2000 iters,
dropout 0, lr 1e-3 cosine to 1e-4, warmup 100, AdamW (0.9, 0.99), weight decay 0.1, clip 1.0; `baby`
= shakespeare_char (6 x 384, context 256, batch 64, dropout 0.2, 5000 iters). `cpu_tuned` = the
`cpu` recipe with its depth, learning rate and length tuned on a 2-core CPU for the time to reach
the `cpu` recipe's validation loss: 1 layer, lr 4e-3 cosine to 4e-4, 1200 iters (same data, context,
batch, optimizer and validation windows; the trials are in bench/README.md); with --peer, nanoGPT
runs it too. Both sides are timed as whole processes (start-up, compilation, periodic evaluation
included). Quality: `val_loss` is the whole validation split (every window of context + 1 characters
once) after the same number of steps, for both (nanoGPT's checkpoint is scored by its own model
code); `periodic_val_loss` is each side's last estimate during training (eval_iters batches). An
`--iters` that eval_interval does not divide evaluates only at the end (so that nanoGPT's last
checkpoint is its final model). `step` = the `cpu` recipe's model and batch (vocabulary 65): its
bare training step, timed as `gpt2` is, with `--dtype` and the XLA_FLAGS of the environment recorded
(for profiling the step, e.g. under XLA flags). `gpt2` = GPT-2 124M (12 x 768, 12 heads, context
1024, batch 32, vocabulary 50304, no dropout): steady-state training steps on random tokens after a
burn-in, as nanoGPT's bench.py times it (`--real_data=False`; its model has no biases, ours has
them: 0.1% more parameters). `generate` = `--new_tokens` tokens (default 1024) greedily from a
one-token prompt with a baby-sized GPT whose context holds them, with the KV cache and by
recomputing the whole prefix every step (the two must give identical tokens).
`--batch`, `--context`, `--iters`, `--layers`, `--lr` override a recipe (e.g. a CPU-sized gpt2 run,
or a trial of the cpu_tuned search), `--seed` sets seqmodels' seed; the command line is recorded.
MFU: training FLOPs per token as every run's summary.json counts them (seqmodels/models/size.py:
6N + 12 L H Q T, PaLM appendix B, as nanoGPT's estimate_mfu, N the weights without embeddings)
against the device's peak (seqmodels/train/mfu.py: a datasheet figure for a known GPU/TPU, else a
timed square matmul in the compute dtype), reported as `peak_tflops` with `peak_source`.
Prints one JSON line per case: case, implementation, device, wall_s, ms_per_step, tokens_per_s,
val_loss, mfu, command, commit, date. `--peer` is a local checkout of karpathy/nanoGPT (kept out of
the repository).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# the process's start (give or take the interpreter's): seqmodels' wall time counts from here
STARTED = time.time()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run from a checkout without installing
RECIPES = {
    'cpu': dict(layers=4, heads=4, width=128, context=64, batch=12, iters=2000, dropout=0.0,
                lr=1e-3, eval_interval=250, eval_iters=20),
    'cpu_tuned': dict(layers=1, heads=4, width=128, context=64, batch=12, iters=1200, dropout=0.0,
                      lr=4e-3, eval_interval=250, eval_iters=20),
    'baby': dict(layers=6, heads=6, width=384, context=256, batch=64, iters=5000, dropout=0.2,
                 lr=1e-3, eval_interval=250, eval_iters=200),
    'gpt2': dict(layers=12, heads=12, width=768, context=1024, batch=32, iters=20, dropout=0.0,
                 vocab=50304, burn_in=10),
    'step': dict(layers=4, heads=4, width=128, context=64, batch=12, iters=60, dropout=0.0,
                 vocab=65, burn_in=10),
    'generate': dict(layers=6, heads=6, width=384, batch=1, new_tokens=1024, vocab=65),
}
OVERRIDES = {'batch': int, 'context': int, 'iters': int, 'layers': int, 'lr': float,
             'new_tokens': int}
COMMAND = ' '.join(['python', *sys.argv])


def _commit() -> str:
  """The commit of the seqmodels that ran, '+dirty' with uncommitted changes (summary.json's
  `commit`)."""
  from seqmodels.train.workdir import code_version  # late: it imports jax
  return code_version()


def _line(case: str, impl: str, device: str, wall_s: float, steps: int, tokens_per_step: int,
          val_loss: float, command: str, **extra) -> dict:
  train_s = extra.pop('train_s', wall_s)
  return {'case': case, 'implementation': impl, 'device': device, 'wall_s': round(wall_s, 2),
          'ms_per_step': round(1000 * train_s / steps, 2),
          'tokens_per_s': round(tokens_per_step * steps / train_s),
          'val_loss': None if math.isnan(val_loss) else round(val_loss, 4), 'command': command,
          'commit': _commit(), 'date': datetime.date.today().isoformat(), **extra}


def flops_per_token(params, recipe: dict) -> float:
  """Training FLOPs per token as every run counts them (seqmodels/models/size.py): 6 per weight,
  12 L T D of attention and 6 V D of the tied output layer (nanoGPT's 6N + 12 L H Q T, less the
  biases and norm scales, which multiply nothing)."""
  import types
  from experiments.configs.base import get_base_config
  from seqmodels.models import size
  m = get_base_config().model
  m.name, m.width, m.layers, m.heads = 'gpt', recipe['width'], recipe['layers'], recipe['heads']
  data = types.SimpleNamespace(vocab_size=params['embed']['embedding'].shape[0],
                               seq_len=recipe['context'], kind='lm')
  return size.count(m, data, params).flops_per_token


def mfu_fields(params, recipe: dict, tokens_per_s: float, dtype: str) -> dict:
  """MFU as every run's summary.json has it (seqmodels/train/mfu.py: the peak looked up for a
  known GPU/TPU, else measured), and the figures it comes from."""
  import jax
  from seqmodels.train import mfu
  achieved = flops_per_token(params, recipe) * tokens_per_s
  fields = mfu.fields(flops_per_token(params, recipe), tokens_per_s, dtype, jax.device_count())
  return {'mfu': round(fields['mfu'], 4), 'model_tflops': round(achieved / 1e12, 3),
          'peak_tflops': round(fields['peak_flops'] / 1e12, 2), 'peak_dtype': dtype,
          'peak_source': fields['peak_flops_source']}


def _gpt_model(recipe: dict, dtype):
  from seqmodels.models.gpt import GPT, GPTConfig
  return GPT(GPTConfig(V=recipe['vocab'], L=recipe['context'], D=recipe['width'],
                       N=recipe['layers'], H=recipe['heads'], F=4 * recipe['width'],
                       dropout=recipe.get('dropout', 0.0), dtype=dtype))


def run_seqmodels_throughput(case: str, recipe: dict) -> dict:
  """Steady-state training steps (the engine's one train step, state donated, batch sharded) on
  random tokens."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from experiments.configs.base import get_base_config
  from seqmodels.models import registry
  from seqmodels.train import host_memory, optim, sharding, state as train_state, steps
  from seqmodels.train.metrics import bound_in_flight
  # as a run's train.dtype: bf16 off CPU
  dtype = registry.compute_dtype(recipe.get('dtype') or 'auto').name
  t_start = time.time()
  malloc = host_memory.keep_freed_memory()  # on CPU, as the training loop does
  model = _gpt_model(recipe, jnp.dtype(dtype))
  optim_cfg = get_base_config().optim
  # nanoGPT bench.py
  optim_cfg.lr, optim_cfg.b1, optim_cfg.b2, optim_cfg.weight_decay = 1e-4, 0.9, 0.95, 1e-2
  tx, schedule = optim.make_optimizer(optim_cfg, 1000)
  mesh = sharding.make_mesh()
  B, T = recipe['batch'], recipe['context']
  rng = np.random.default_rng(1337)
  tokens = rng.integers(0, recipe['vocab'], (B, T + 1)).astype(np.int32)
  batch = sharding.global_batch(
      {'inputs': tokens[:, :-1], 'targets': tokens[:, 1:], 'weights': np.ones((B, T), np.float32)},
      sharding.batch_sharding(mesh))
  state = jax.jit(
      lambda: train_state.create(model, tx, jax.random.key(0), (jnp.zeros((1, T), jnp.int32),)),
      out_shardings=sharding.replicated(mesh))()
  step = jax.jit(steps.make_train_step(model, tx, schedule), donate_argnums=0)
  for _ in range(recipe['burn_in']):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  dispatched = []
  for _ in range(recipe['iters']):
    state, metrics = step(state, batch)
    dispatched.append(metrics)
    bound_in_flight(dispatched)  # as the training loop does (several CPU devices deadlock without)
  float(metrics['loss'])  # waits for the last step
  dt = time.perf_counter() - t0
  return _line(case, 'seqmodels', jax.devices()[0].device_kind, time.time() - t_start,
               recipe['iters'], B * T, float('nan'), COMMAND, train_s=dt, dtype=dtype, batch=B,
               context=T, xla_flags=os.environ.get('XLA_FLAGS', ''), keep_freed_memory=malloc,
               cpu_steps_inline=host_memory.cpu_steps_inline(),
               **mfu_fields(state.params, recipe, B * T * recipe['iters'] / dt, dtype))


def run_nanogpt_throughput(case: str, recipe: dict, peer: str) -> dict:
  """nanoGPT's own bench.py (GPT-2 124M, random tokens: its 10 burn-in and 20 timed iterations)."""
  import torch
  cuda = torch.cuda.is_available()
  args = [f'--batch_size={recipe["batch"]}', f'--block_size={recipe["context"]}',
          '--real_data=False', f'--device={"cuda" if cuda else "cpu"}', f'--compile={cuda}',
          f'--dtype={"bfloat16" if cuda else "float32"}']
  # bench.py calls torch.cuda.synchronize() unconditionally; on a CPU-only torch that is a no-op we
  # supply.
  launcher = ('import sys, torch\n'
              'if not torch.cuda.is_available(): torch.cuda.synchronize = lambda *a: None\n'
              'sys.argv = ["bench.py", *sys.argv[1:]]\nexec(open("bench.py").read())')
  t0 = time.time()
  out = subprocess.run([sys.executable, '-c', launcher, *args], cwd=peer, capture_output=True,
                       text=True)
  wall = time.time() - t0
  if out.returncode:
    raise SystemExit(f'error: nanoGPT bench.py failed: {out.stderr.strip().splitlines()[-1:]}')
  ms = float(re.findall(r'time per iteration: ([0-9.]+)ms', out.stdout)[-1])
  B, T = recipe['batch'], recipe['context']
  return _line(case, 'nanoGPT (PyTorch)', torch.cuda.get_device_name() if cuda else 'cpu', wall, 20,
               B * T, float('nan'), f'python bench.py {" ".join(args)}', train_s=20 * ms / 1000,
               dtype='bfloat16' if cuda else 'float32')


def run_generate(case: str, recipe: dict) -> dict:
  """Greedy generation of `new_tokens` tokens with the KV cache and by recomputing the prefix; same
  tokens."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from seqmodels.models import gpt
  n = recipe['new_tokens']
  r = dict(recipe, context=n, dropout=0.0)
  from seqmodels.models import registry
  dtype = registry.compute_dtype(recipe.get('dtype') or 'auto')
  model = _gpt_model(r, dtype)
  params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, n), jnp.int32))['params']
  prompt = jnp.asarray(np.random.default_rng(0).integers(0, r['vocab'], (r['batch'], 1)), jnp.int32)
  out, ms = {}, {}
  for use_cache in (True, False):
    run = lambda: gpt.generate(model, params, prompt, jax.random.key(1), max_new=n,
                               use_cache=use_cache)
    jax.block_until_ready(run())  # compile
    times = []
    for _ in range(3 if use_cache else 1):
      t0 = time.perf_counter()
      out[use_cache] = jax.block_until_ready(run())
      times.append(time.perf_counter() - t0)
    ms[use_cache] = 1000 * min(times) / n
  same = bool(np.array_equal(np.asarray(out[True]), np.asarray(out[False])))
  return {'case': case, 'implementation': 'seqmodels', 'device': jax.devices()[0].device_kind,
          'dtype': dtype.name, 'layers': r['layers'], 'width': r['width'], 'batch': r['batch'],
          'new_tokens': n, 'ms_per_token_cached': round(ms[True], 3),
          'ms_per_token_recomputed': round(ms[False], 3), 'speedup': round(ms[False] / ms[True], 2),
          'identical_tokens': same, 'command': COMMAND, 'commit': _commit(),
          'date': datetime.date.today().isoformat()}


def seqmodels_config(recipe: dict, data: str):
  from experiments.configs.base import get_base_config
  c = get_base_config()
  c.data.name, c.data.path, c.data.seq_len, c.data.stride = ('text', os.path.abspath(data),
                                                             recipe['context'], 1)
  c.model.name, c.model.layers, c.model.heads, c.model.width = ('gpt', recipe['layers'],
                                                                recipe['heads'], recipe['width'])
  c.model.dropout = recipe['dropout']
  c.optim.lr, c.optim.min_lr_ratio, c.optim.warmup_steps = recipe['lr'], 0.1, 100
  c.optim.b1, c.optim.b2, c.optim.weight_decay, c.optim.clip_norm = 0.9, 0.99, 0.1, 1.0
  c.train.num_steps, c.train.batch_size = recipe['iters'], recipe['batch']
  c.train.eval_every, c.train.eval_batches = recipe['eval_interval'], recipe['eval_iters']
  c.train.checkpoint_every, c.train.log_every = recipe['iters'], recipe['eval_interval']
  c.train.dtype = recipe.get('dtype') or 'auto'
  c.seed = recipe.get('seed', 0)
  return c


def run_seqmodels(case: str, recipe: dict, data: str) -> dict:
  """Our whole run, timed as a process from its start (imports, data preparation, compilation,
  training with periodic eval), as nanoGPT's train.py is; the whole-split score afterwards is not
  timed, on either side."""
  import jax
  from seqmodels.data import registry as datasets
  from seqmodels.models import registry
  from seqmodels.train import evaluate, host_memory, loop, sharding, steps
  config = seqmodels_config(recipe, data)
  dtype = registry.compute_dtype(config.train.dtype)
  workdir = tempfile.mkdtemp(prefix='bench-gpt-')
  summary = loop.train_and_evaluate(config, workdir)
  wall = time.time() - STARTED
  # The final number: the whole validation split, not the periodic estimate.
  data_obj = datasets.load(config.data)
  model = registry.build(config.model, data_obj, dtype)
  mesh = sharding.make_mesh()
  eval_step = jax.jit(steps.make_eval_step(model))
  full = evaluate.evaluate(eval_step, steps.LM, summary['state'].params, data_obj,
                       config.train.batch_size, sharding.batch_sharding(mesh), None)
  shutil.rmtree(workdir, ignore_errors=True)
  return _line(case, 'seqmodels', jax.devices()[0].device_kind, wall, recipe['iters'],
               recipe['batch'] * recipe['context'], full['loss'], COMMAND,
               train_s=summary['train_seconds'],
               periodic_val_loss=round(summary['eval']['loss'], 4), dtype=dtype.name,
               keep_freed_memory=host_memory.applied(),
               cpu_steps_inline=host_memory.cpu_steps_inline(),
               **mfu_fields(
                   summary['state'].params, recipe,
                   recipe['batch'] * recipe['context'] * recipe['iters'] / summary['train_seconds'],
                   dtype.name))


# The whole validation split, every window once (windows of context + 1 characters every `context`),
# scored by a nanoGPT checkpoint: the same windows and the same mean as seqmodels' final number.
# `starts` below restates seqmodels.data.builders.window_starts(len(ids), T + 1, T) (this runs in
# nanoGPT's process, without seqmodels).
_NANOGPT_WHOLE_SPLIT = """
import sys, numpy as np, torch
from model import GPT, GPTConfig
ckpt = torch.load(sys.argv[1], map_location='cpu')
model = GPT(GPTConfig(**ckpt['model_args']))
model.load_state_dict({k.removeprefix('_orig_mod.'): v for k, v in ckpt['model'].items()})
model.eval()
T, B = int(sys.argv[3]), 64
ids = np.fromfile(sys.argv[2], dtype=np.uint16).astype(np.int64)
starts = np.arange(0, len(ids) - T, T)
total = 0.0
with torch.no_grad():
  for i in range(0, len(starts), B):
    w = torch.from_numpy(np.stack([ids[s:s + T + 1] for s in starts[i:i + B]]))
    x, y = w[:, :-1].contiguous(), w[:, 1:].contiguous()
    logits, _ = model(x, y)  # with targets, nanoGPT returns the logits of every position
    total += torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(),
                                               reduction='sum').item()
print('SCORE', total / (len(starts) * T), ckpt['iter_num'])
"""


def run_nanogpt(case: str, recipe: dict, data: str, peer: str) -> dict:
  """nanoGPT's own train.py with its README recipe, on the same text file; its final model is then
  scored on the whole validation split as seqmodels' is (its own figure is an estimate over
  eval_iters random batches)."""
  work = tempfile.mkdtemp(prefix='bench-nanogpt-')
  shutil.copytree(peer, os.path.join(work, 'nanoGPT'), ignore=shutil.ignore_patterns('.git'))
  repo = os.path.join(work, 'nanoGPT')
  data_dir = os.path.join(repo, 'data', 'shakespeare_char')
  shutil.copy(data, os.path.join(data_dir, 'input.txt'))
  subprocess.run([sys.executable, 'prepare.py'], cwd=data_dir, check=True, capture_output=True)
  import torch
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  out_dir = os.path.join(work, 'out')
  # always_save_checkpoint=True (the recipe says False: save only on a better estimate) so that the
  # checkpoint is the model after all max_iters steps; saving a 0.8M-parameter model 8 times costs
  # well under a second.
  args = ['config/train_shakespeare_char.py', f'--device={device}', f'--compile={device == "cuda"}',
          f'--eval_iters={recipe["eval_iters"]}', '--log_interval=50',
          f'--block_size={recipe["context"]}', f'--batch_size={recipe["batch"]}',
          f'--n_layer={recipe["layers"]}', f'--n_head={recipe["heads"]}',
          f'--n_embd={recipe["width"]}', f'--max_iters={recipe["iters"]}',
          f'--lr_decay_iters={recipe["iters"]}', f'--dropout={recipe["dropout"]}',
          f'--eval_interval={recipe["eval_interval"]}', f'--learning_rate={recipe["lr"]}',
          f'--min_lr={recipe["lr"] / 10}', '--always_save_checkpoint=True', f'--out_dir={out_dir}']
  t0 = time.time()
  out = subprocess.run([sys.executable, 'train.py', *args], cwd=repo, capture_output=True,
                       text=True, check=True)
  wall = time.time() - t0
  vals = [float(v) for v in re.findall(r'val loss ([0-9.]+)', out.stdout)]
  scored = subprocess.run([sys.executable, '-c', _NANOGPT_WHOLE_SPLIT,
                           os.path.join(out_dir, 'ckpt.pt'), os.path.join(data_dir, 'val.bin'),
                           str(recipe['context'])],
                          cwd=repo, capture_output=True, text=True, check=False)
  if scored.returncode:
    raise SystemExit(
        f"error: scoring nanoGPT's checkpoint failed: {scored.stderr.strip().splitlines()[-1:]}")
  scored = scored.stdout.split('SCORE')[-1].split()
  shutil.rmtree(work, ignore_errors=True)
  if int(scored[1]) != recipe['iters']:
    raise SystemExit(
        f'error: nanoGPT\'s last checkpoint is from iteration {scored[1]}, not {recipe["iters"]}')
  return _line(case, 'nanoGPT (PyTorch)',
               torch.cuda.get_device_name() if device == 'cuda' else 'cpu', wall, recipe['iters'],
               recipe['batch'] * recipe['context'], float(scored[0]),
               f'python train.py {" ".join(args)}', checkpoint_iter=int(scored[1]),
               periodic_val_loss=vals[-1], best_val_loss=min(vals))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data', default='',
                      help='a text file (e.g. ../shared/data/tinyshakespeare.txt)')
  parser.add_argument('--recipe', default='cpu', choices=sorted(RECIPES))
  parser.add_argument('--peer', default='',
                      help='a nanoGPT checkout to run beside, e.g. third_party/nanoGPT')
  for name, kind in OVERRIDES.items():
    parser.add_argument(f'--{name}', type=kind, default=0, help=f'override the recipe\'s {name}')
  parser.add_argument('--seed', type=int, default=0,
                      help='seqmodels\' seed (nanoGPT keeps its own, 1337)')
  parser.add_argument('--dtype', default='', choices=['', 'float32', 'bfloat16'],
                      help='compute dtype of seqmodels\' side (default: as train.dtype=auto, '
                      'bfloat16 on GPU/TPU and float32 on CPU)')
  args = parser.parse_args()
  from seqmodels.train import host_memory
  host_memory.run_cpu_steps_inline()  # as launch.py does, before JAX's first computation
  recipe = dict(RECIPES[args.recipe])
  if args.lr and 'lr' not in recipe:
    training = ', '.join(name for name, r in RECIPES.items() if 'lr' in r)
    raise SystemExit(f'error: --lr sets the learning rate of a training recipe ({training}); '
                     f'--recipe={args.recipe} times steps at a fixed one: drop --lr')
  for name in OVERRIDES:
    if getattr(args, name):
      recipe[name] = getattr(args, name)
  recipe['seed'], recipe['dtype'] = args.seed, args.dtype
  if 'eval_interval' in recipe and recipe['iters'] % recipe['eval_interval']:
    recipe['eval_interval'] = recipe['iters']
  if args.peer and not os.path.isfile(os.path.join(args.peer, 'train.py')):
    raise SystemExit(f'error: --peer={args.peer} is not a nanoGPT checkout (no train.py): '
                     'fetch karpathy/nanoGPT')
  if args.recipe == 'generate':
    rows = [run_generate(args.recipe, recipe)]
  elif args.recipe in ('gpt2', 'step'):
    if args.peer and args.recipe == 'step':
      raise SystemExit('error: --recipe=step has no peer (nanoGPT\'s bench.py builds GPT-2 124M '
                       'only): drop --peer')
    rows = [run_seqmodels_throughput(args.recipe, recipe)]
    if args.peer:
      rows.append(run_nanogpt_throughput(args.recipe, recipe, args.peer))
      rows[0]['speedup_vs_peer'] = round(rows[0]['tokens_per_s'] / rows[1]['tokens_per_s'], 3)
  else:
    if not os.path.isfile(args.data):
      raise SystemExit(f'error: --data={args.data!r} is not a file: pass a text file, e.g. '
                       '--data=../shared/data/tinyshakespeare.txt')
    from seqmodels.errors import DataError
    try:
      rows = [run_seqmodels(args.recipe, recipe, args.data)]
    except DataError as e:
      raise SystemExit(f'error: {e}') from None
    if args.peer:
      rows.append(run_nanogpt(args.recipe, recipe, args.data, args.peer))
      rows[0]['speedup_vs_peer'] = round(rows[1]['wall_s'] / rows[0]['wall_s'], 3)
  for r in rows:
    print(json.dumps(r), flush=True)


if __name__ == '__main__':
  main()
