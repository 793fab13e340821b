"""Recurrent char-LM training-step speed: seqmodels' scan cells against PyTorch nn.LSTM/nn.GRU and
flax nn.RNN.

One training step = embedding -> N-layer cell -> softmax over 65 symbols, mean cross-entropy, AdamW
(lr 1e-3, weight decay 0.01), jitted with the (params, opt_state) state donated. Every
implementation of a case runs in the same process on the same shapes; PyTorch (the peer) runs first,
on cuDNN when a GPU is visible to torch.
  seqmodels   seqmodels.models.rnn_lm.RNNLM, `recurrence='scan'`: hoisted input projection + one
              lax.scan (`--unroll` steps per iteration), differentiated by autodiff
  seqmodels-hoisted  `recurrence='hoisted'` (the CPU default): the recurrent weights' gradient as
              one matmul after the backward loop (a custom VJP, as cuDNN does) instead of autodiff's
              per-step accumulation
  seqmodels-cudnn    `recurrence='cudnn'`: the same LM's LSTM layers by cuDNN (jax.experimental.rnn;
              float32 LSTM cases on a CUDA GPU only, skipped elsewhere with a JSON line saying why)
  flax        flax.linen.RNN(OptimizedLSTMCell | GRUCell), the same unroll
  torch       torch.nn.LSTM / nn.GRU (bf16 cases: autocast on CUDA; float32 on CPU)
The `long` case compares minGRU trained by a parallel scan (Feng et al. 2024) and by a sequential
one (the CPU default, `model.min_scan`) with a sequential GRU at T=4096; its peer is the sequential
GRU, run as `model.recurrence=auto` runs it (hoisted on CPU, scan on GPU).

Prints one JSON line per (case, implementation): ms_per_step is the median over timed steps after
warmup, ratio_vs_peer = ms_per_step / peer's ms_per_step (below 1: faster than the peer).
  python bench/recurrent.py --quick      # CPU-sized: quick (2x128, B16) and long (2x64, B4, T=4096)
  python bench/recurrent.py        # GPU: 2x512_b64 (float32), 2x1024_b128 (bf16), long (2x512, B16)
  python bench/recurrent.py --cases=2x512_b64 --T=512 --impls=seqmodels,torch
On a CPU shared with other jobs, torch's OpenMP pool degrades badly (10x measured); compare
single-threaded:
  XLA_FLAGS='--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1' \
    python bench/recurrent.py --quick --torch_threads=1
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from seqmodels.layers.recurrent import default_recurrence, default_unroll
from seqmodels.models.rnn_lm import RNNLM, RNNLMConfig
from seqmodels.train import host_memory, workdir

V = 65  # tiny-shakespeare characters
LR, WD = 1e-3, 0.01


@dataclasses.dataclass(frozen=True)
class Case:
  name: str
  N: int        # layers
  H: int        # units per layer (= embedding width)
  B: int        # batch
  T: int | None  # None: the --T flag
  bf16: bool
  cells: tuple[str, ...] = ('lstm', 'gru')
  long: bool = False  # minGRU (parallel) vs GRU (sequential); --long_T sets T


CASES = {
    'quick': Case('quick', 2, 128, 16, None, False),
    # issue 3: float32 (only the 2x1024 figures are bf16)
    '2x512_b64': Case('2x512_b64', 2, 512, 64, None, False),
    '2x1024_b128': Case('2x1024_b128', 2, 1024, 128, None, True),
    'long_cpu': Case('long_cpu', 2, 64, 4, None, False, ('mingru', 'gru'), long=True),
    'long': Case('long', 2, 512, 16, None, True, ('mingru', 'gru'), long=True),
}


class FlaxRNNLM(nn.Module):
  """The same LM with flax's own cells and driver: Embed -> N x nn.RNN(cell) -> Dense."""
  cell: str
  H: int
  N: int
  unroll: int
  dtype: jnp.dtype

  @nn.compact
  def __call__(self, tokens_BxT, *, train: bool = False):
    x = nn.Embed(V, self.H)(tokens_BxT)
    for n in range(self.N):
      cell_cls = nn.OptimizedLSTMCell if self.cell == 'lstm' else nn.GRUCell
      x = nn.RNN(cell_cls(self.H, dtype=self.dtype), unroll=self.unroll, name=f'rnn{n}')(x)
    return nn.Dense(V, dtype=self.dtype)(x).astype(jnp.float32)


def _batch(B: int, T: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  tokens = np.random.default_rng(seed).integers(0, V, (B, T + 1), dtype=np.int32)
  return tokens[:, :-1], tokens[:, 1:]


def _time(step: Callable[[], object], warmup: int, steps: int) -> float:
  """Median wall time of `step` in ms; `step` must block until its work is done."""
  for _ in range(warmup):
    step()
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
  return 1e3 * float(np.median(times))


def jax_step_ms(model: nn.Module, case: Case, T: int, warmup: int, steps: int) -> float:
  """ms per jitted, state-donating AdamW step of `model`."""
  inputs, targets = (jnp.asarray(a) for a in _batch(case.B, T))
  tx = optax.adamw(LR, weight_decay=WD)
  params = jax.jit(model.init)(jax.random.key(0), inputs[:1])['params']
  state = (params, tx.init(params))

  def train_step(state, inputs, targets):
    params, opt_state = state

    def loss_fn(p):
      logits = model.apply({'params': p}, inputs)
      return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  step = jax.jit(train_step, donate_argnums=0)
  box = [state]

  def run():
    box[0], loss = step(box[0], inputs, targets)
    loss.block_until_ready()

  return _time(run, warmup, steps)


def _difference(model: nn.Module, reference: nn.Module, case: Case, T: int) -> dict:
  """How far `model`'s loss and gradients are from `reference`'s, from the same parameters and
  batch: the check that a speed path computes the same function, on hardware the test suite cannot
  reach (cuDNN)."""
  inputs, targets = (jnp.asarray(a) for a in _batch(case.B, T))
  params = jax.jit(reference.init)(jax.random.key(0), inputs[:1])['params']

  def loss_and_grads(m):
    loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(
        m.apply({'params': p}, inputs), targets).mean()
    return jax.jit(jax.value_and_grad(loss))(params)

  (loss, grads), (ref_loss, ref_grads) = loss_and_grads(model), loss_and_grads(reference)
  diff = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-12)),
                      grads, ref_grads)
  return {'loss': float(loss), 'loss_of_scan': float(ref_loss),
          'max_relative_gradient_difference': max(jax.tree.leaves(diff))}


def torch_step_ms(cell: str, case: Case, T: int, warmup: int, steps: int,
                  args_torch_threads: int = 0) -> tuple[float, str, str]:
  """ms per PyTorch AdamW step, the device it ran on and its compute dtype."""
  import torch

  dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  if args_torch_threads:
    torch.set_num_threads(args_torch_threads)
  rnn_cls = {'lstm': torch.nn.LSTM, 'gru': torch.nn.GRU}[cell]

  class TorchLM(torch.nn.Module):

    def __init__(self):
      super().__init__()
      self.embed = torch.nn.Embedding(V, case.H)
      self.rnn = rnn_cls(case.H, case.H, case.N, batch_first=True)
      self.head = torch.nn.Linear(case.H, V)

    def forward(self, x):
      y = self.rnn(self.embed(x))[0]
      self.rnn_dtype = str(y.dtype).replace('torch.', '')  # what autocast actually ran the RNN in
      return self.head(y)

  model = TorchLM().to(dev)
  opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
  inputs, targets = (torch.from_numpy(a.astype(np.int64)).to(dev) for a in _batch(case.B, T))
  autocast = case.bf16 and dev.type == 'cuda'

  def run():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
      logits = model(inputs)
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, V), targets.reshape(-1))
    loss.backward()
    opt.step()
    if dev.type == 'cuda':
      torch.cuda.synchronize()

  ms = _time(run, warmup, steps)
  name = (torch.cuda.get_device_name() if dev.type == 'cuda'
          else f'cpu ({torch.get_num_threads()} threads)')
  return ms, name, model.rnn_dtype + (' (autocast)' if autocast else '')


def _why_no_cudnn(cell: str, case: Case) -> str:
  """'' where `recurrence='cudnn'` runs (a float32 LSTM on a CUDA GPU), else why not."""
  if cell != 'lstm' or case.bf16:
    return 'cuDNN through jax.experimental.rnn runs float32 LSTMs only'
  if jax.default_backend() != 'gpu':
    return f'cuDNN needs a CUDA GPU; this run computes on {jax.default_backend()}'
  return ''


def run_case(case: Case, args, emit: Callable[[dict], None]) -> None:
  """Runs every implementation of `case`, the peer first, and emits one record per implementation.

  The peer is torch (same cell) for the char-LM cases and the sequential GRU for the long case.
  """
  T = args.long_T if case.long else args.T
  jax_dtype = jnp.bfloat16 if case.bf16 else jnp.float32
  dtype_name = jnp.dtype(jax_dtype).name
  jax_device = jax.devices()[0].device_kind
  impls = args.impls.split(',')
  rnnlm = lambda cell, parallel=None, recurrence='scan': RNNLM(RNNLMConfig(
      V, cell=cell, E=case.H, H=case.H, N=case.N, unroll=args.unroll, parallel_scan=parallel,
      dtype=jax_dtype, recurrence=recurrence))
  # gru (the peer) first
  groups = [case.cells[::-1]] if case.long else [(cell,) for cell in case.cells]
  for group in groups:
    rows = []  # (cell, implementation, ms, device, dtype)
    for cell in group:
      if case.long:  # every side is seqmodels' RNNLM: only the cell (and minGRU's scan) differs
        for name, parallel in ([('seqmodels-mingru-parallel', True),
                                ('seqmodels-mingru-sequential', False)]
                               if cell == 'mingru' else [('seqmodels-gru-sequential', None)]):
          # The GRU runs as training runs it here (model.recurrence=auto): the fastest sequential
          # GRU on CPU.
          rnn = rnnlm(cell, parallel, recurrence=default_recurrence())
          rows.append((cell, name, jax_step_ms(rnn, case, T, args.warmup, args.steps), jax_device,
                       dtype_name))
        continue
      if 'torch' in impls:
        try:
          ms, dev, dt = torch_step_ms(cell, case, T, args.warmup, args.steps, args.torch_threads)
          rows.append((cell, 'torch', ms, dev, dt))
        except ImportError:
          print(json.dumps({'case': case.name, 'implementation': 'torch',
                            'error': 'torch not installed'}))
      if 'seqmodels' in impls:
        rows.append((cell, 'seqmodels', jax_step_ms(rnnlm(cell), case, T, args.warmup, args.steps),
                     jax_device, dtype_name))
      if 'seqmodels-hoisted' in impls:
        rows.append((cell, 'seqmodels-hoisted', jax_step_ms(rnnlm(cell, recurrence='hoisted'), case,
                                                            T, args.warmup, args.steps),
                     jax_device, dtype_name))
      if 'seqmodels-cudnn' in impls:
        why = _why_no_cudnn(cell, case)
        if why:
          print(json.dumps({'case': case.name, 'implementation': 'seqmodels-cudnn', 'cell': cell,
                            'skipped': why}))
        else:
          # measured here first: a failure is reported as a line, and the other implementations
          # still run
          try:
            print(json.dumps({'case': case.name, 'implementation': 'seqmodels-cudnn', 'cell': cell,
                              'same_function_as_scan': _difference(
                                  rnnlm(cell, recurrence='cudnn'), rnnlm(cell), case, T)}))
            rows.append((cell, 'seqmodels-cudnn', jax_step_ms(rnnlm(cell, recurrence='cudnn'), case,
                                                              T, args.warmup, args.steps),
                         jax_device, dtype_name))
          except Exception as e:
            print(json.dumps({'case': case.name, 'implementation': 'seqmodels-cudnn', 'cell': cell,
                              'error': f'{type(e).__name__}: '
                                       f'{str(e).splitlines()[0] if str(e) else ""}'}))
      if 'flax' in impls:
        model = FlaxRNNLM(cell, case.H, case.N, args.unroll, jax_dtype)
        rows.append((cell, 'flax-nn.RNN', jax_step_ms(model, case, T, args.warmup, args.steps),
                     jax_device, dtype_name))
    peer = rows[0] if rows and rows[0][1] in ('torch', 'seqmodels-gru-sequential') else None
    for cell, impl, ms, device, dtype in rows:
      emit({'case': case.name, 'implementation': impl, 'cell': cell, 'device': device,
            'dtype': dtype, 'N': case.N, 'H': case.H, 'B': case.B, 'T': T,
            'unroll': None if impl == 'torch' else args.unroll, 'ms_per_step': round(ms, 3),
            'tokens_per_s': round(case.B * T / ms * 1e3, 1), 'peer': peer[1] if peer else None,
            'ratio_vs_peer': round(ms / peer[2], 3) if peer else None})


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--quick', action='store_true', help='CPU-sized cases: quick and long_cpu')
  p.add_argument('--cases', default=None, help=f'comma-separated subset of {",".join(CASES)}')
  p.add_argument('--impls', default='torch,seqmodels,seqmodels-hoisted,seqmodels-cudnn,flax',
                 help='which implementations to run')
  p.add_argument('--T', type=int, default=256, help='sequence length of the char-LM cases')
  p.add_argument('--long_T', type=int, default=4096,
                 help='sequence length of the minGRU-vs-GRU cases')
  p.add_argument('--unroll', type=int, default=None,
                 help='lax.scan unroll (default: 8 on GPU, 1 on CPU)')
  p.add_argument('--torch_threads', type=int, default=0,
                 help='torch.set_num_threads on CPU (0: its default)')
  p.add_argument('--warmup', type=int, default=3, help='untimed steps first (the first compiles)')
  p.add_argument('--steps', type=int, default=20, help='timed steps; the median is reported')
  args = p.parse_args(argv)
  host_memory.run_cpu_steps_inline()  # as launch.py does, before JAX's first computation
  # As the training loop does on CPU; process-wide, so the in-process PyTorch peer runs under it
  # too.
  malloc = host_memory.keep_freed_memory()
  if args.unroll is None:
    args.unroll = default_unroll()  # the training default: 8 on GPU/TPU, 1 on CPU
  names = args.cases.split(',') if args.cases else (['quick', 'long_cpu'] if args.quick
                                                    else ['2x512_b64', '2x1024_b128', 'long'])
  unknown = [n for n in names if n not in CASES]
  if unknown:
    raise SystemExit(f'--cases: unknown {unknown}; choose from {list(CASES)}')
  common = {'command': ' '.join([os.path.basename(sys.executable)] + sys.argv),
            'commit': workdir.code_version(), 'xla_flags': os.environ.get('XLA_FLAGS', ''),
            'keep_freed_memory': malloc, 'cpu_steps_inline': host_memory.cpu_steps_inline(),
            # float32 cases: None is XLA's default (TF32 on recent NVIDIA GPUs); PyTorch's cuDNN
            # RNNs allow TF32 too
            'jax_default_matmul_precision': jax.config.jax_default_matmul_precision,
            'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}
  for n in names:
    run_case(CASES[n], args, lambda rec: print(json.dumps({**rec, **common}), flush=True))


if __name__ == '__main__':
  main()
