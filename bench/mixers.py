"""Sequence mixers side by side in the one LM backbone (seqmodels/models/lm.py): training and
decoding cost.

For each mixer of seqmodels/layers/mixers (or --mixers), an LM of --layers blocks of that mixer at
--width:
  train   one training step (forward, backward, AdamW) at each --T: median ms over timed steps,
          tokens/s, and the compiled step's temporary memory (XLA's memory analysis: what the
          activations need), which grows linearly with T where the form never materialises T x T or
          T x state;
  decode  ms per generated token from the cache (after a prefill of --prefill tokens) and the bytes
          of state the mixer carries: a KV cache grows with the length decoded, a recurrent state
          does not.
Prints one JSON line per (mixer, phase, T) with the command, commit, device and jax version.

  python bench/mixers.py --quick                 # CPU-sized: width 64, 2 layers, T in 128, 256, 512
  python bench/mixers.py --width=512 --layers=4 --T=1024,2048,4096,8192 --batch=8   # a GPU
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.configs.base import get_base_config
from seqmodels.layers.mixers import MIXERS
from seqmodels.models import lm, registry
from seqmodels.train import host_memory, workdir

V = 256


def _model(mixer: str, args, T: int):
  c = get_base_config()
  c.model.name, c.model.mixer, c.model.width, c.model.layers, c.model.heads = (
      'lm', mixer, args.width, args.layers, args.heads)
  c.model.scan = args.scan
  data = types.SimpleNamespace(vocab_size=V, seq_len=T, kind='lm', meta={})
  return registry.build(c.model, data, registry.compute_dtype(args.dtype))


def median_ms(fn, warmup: int, steps: int) -> float:
  """Median ms of `fn()` over `steps` calls after `warmup`, each waited for."""
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append((time.perf_counter() - t0) * 1e3)
  return statistics.median(times)


def train_case(mixer: str, args, T: int) -> dict:
  model = _model(mixer, args, T)
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, V, (args.batch, T + 1)), jnp.int32)
  params = model.init(jax.random.PRNGKey(0), tokens[:, :-1])['params']
  tx = optax.adamw(1e-3)
  state = (params, tx.init(params))

  def step(state, tokens):
    params, opt = state
    def loss(p):
      logits = model.apply({'params': p}, tokens[:, :-1])
      return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt = tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), opt), value

  compiled = jax.jit(step, donate_argnums=0).lower(state, tokens).compile()
  memory = compiled.memory_analysis()
  box = [state]

  def run():
    box[0], value = compiled(box[0], tokens)
    return value
  ms = median_ms(run, args.warmup, args.steps)
  return {'phase': 'train', 'ms_per_step': round(ms, 3),
          'tokens_per_sec': round(args.batch * T / ms * 1e3),
          'temp_bytes': getattr(memory, 'temp_size_in_bytes', None),
          'params': int(sum(p.size for p in jax.tree.leaves(params)))}


def decode_case(mixer: str, args, T: int) -> dict:
  model = _model(mixer, args, T)
  prompt = jnp.asarray(np.random.default_rng(1).integers(0, V, (args.batch, args.prefill)),
                       jnp.int32)
  params = model.init(jax.random.PRNGKey(0), prompt)['params']
  step, cache, first = lm.step_function(model, params, prompt)  # the prefill, once
  step = jax.jit(step)
  box = [first, cache]

  def run():
    logits, box[1] = step(box[0], box[1], jnp.int32(0))
    box[0] = jnp.argmax(logits, -1).astype(jnp.int32)
    return logits
  ms = median_ms(run, args.warmup, args.steps)
  mixer_cfg = model.cfg.mixer
  return {'phase': 'decode', 'ms_per_token': round(ms, 3), 'prefill': args.prefill,
          'state_bytes_per_block': MIXERS[mixer].state_bytes(mixer_cfg, args.batch, T)}


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--mixers', default='', help='comma-separated (default: every registered mixer)')
  p.add_argument('--width', type=int, default=256)
  p.add_argument('--layers', type=int, default=4)
  p.add_argument('--heads', type=int, default=4)
  p.add_argument('--batch', type=int, default=8)
  p.add_argument('--T', default='')
  p.add_argument('--prefill', type=int, default=16)
  p.add_argument('--dtype', default='auto')
  p.add_argument('--scan', default='auto', help="model.scan: a mixer's form (auto: the platform's)")
  p.add_argument('--warmup', type=int, default=2)
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--quick', action='store_true',
                 help='CPU-sized: width 64, 2 layers, batch 4, T 128..512')
  args = p.parse_args(argv)
  if args.quick:  # the sizes, where not given
    args.width, args.layers, args.batch, args.steps = 64, 2, 4, 3
  args.T = args.T or ('128,256,512' if args.quick else '1024,2048,4096')
  mixers = args.mixers.split(',') if args.mixers else sorted(MIXERS)
  unknown = [m for m in mixers if m not in MIXERS]
  if unknown:
    raise SystemExit(f'error: --mixers: unknown {unknown}; choose from {sorted(MIXERS)}')
  host_memory.run_cpu_steps_inline()
  common = {'command': ' '.join([os.path.basename(sys.executable)] + sys.argv),
            'commit': workdir.code_version(), 'device': jax.devices()[0].device_kind,
            'jax': jax.__version__, 'width': args.width, 'layers': args.layers, 'batch': args.batch,
            'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}
  for mixer in mixers:
    for T in (int(t) for t in args.T.split(',')):
      for case in (train_case, decode_case):
        try:
          record = case(mixer, args, T)
        except Exception as e:
          # one case's failure (out of memory at a long T) must not end the others
          record = {'phase': case.__name__.removesuffix('_case'), 'error': f'{type(e).__name__}: '
                    f'{str(e).splitlines()[0][:200] if str(e) else ""}'}
        print(json.dumps({'mixer': mixer, 'T': T, **record, **common}), flush=True)


if __name__ == '__main__':
  main()
