"""seqmodels' mLSTM mixer against NX-AI/xlstm's mLSTMLayer (PyTorch, CPU), on shared weights.

Builds a tiny xlstm mLSTMLayer (D=32, 4 heads, proj_factor 2: E=64, which xlstm's rounding of E up
to a multiple of 64 leaves alone; conv 4, q/k/v blocks of 4, no biases), moves its parameters away
from their initialisation (the gates' weights start at zero), copies them into
seqmodels.layers.mixers.mlstm.MLSTM and runs both on the same random input in float32:
  parallel    the reference's forward (parallel_stabilized_simple) against each of our training
              forms (sequential; chunked, 4 steps a chunk);
  recurrent   the reference's `step` (recurrent_step_stabilized_simple) token by token, against our
              decoding from the cache token by token.
Prints one JSON line: the largest absolute difference of the outputs over those comparisons, the
largest relative one (to the largest output), and pass = relative difference below 1e-4.
  pip install xlstm torch==2.13.0   # not dependencies of seqmodels
  python bench/references/mlstm.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax
import jax.numpy as jnp
import torch
import xlstm
from xlstm.blocks.mlstm.layer import mLSTMLayer, mLSTMLayerConfig

from seqmodels.layers.mixers.base import MixerConfig
from seqmodels.layers.mixers.mlstm import MLSTM

D, H, B, T, CONV = 32, 4, 2, 12, 4


def reference() -> mLSTMLayer:
  torch.manual_seed(0)
  config = mLSTMLayerConfig(embedding_dim=D, num_heads=H, proj_factor=2.0, conv1d_kernel_size=CONV,
                            qkv_proj_blocksize=4, context_length=T, bias=False)
  assert config._inner_embedding_dim == 2 * D, config._inner_embedding_dim
  layer = mLSTMLayer(config)
  with torch.no_grad():  # away from the init: gate weights, norm weight and skip all matter
    for p in layer.parameters():
      p.add_(0.3 * torch.randn_like(p))
  return layer.eval()


def params_of(layer: mLSTMLayer) -> dict:
  """The reference's parameters in MLSTM's tree."""
  n = lambda t: jnp.asarray(t.detach().numpy())
  cell = layer.mlstm_cell
  return {
      'up': {'kernel': n(layer.proj_up.weight.T)},
      'conv_kernel': n(layer.conv1d.conv.weight[:, 0, :].T),  # [C, 1, W] -> [W, C], same tap order
      'conv_bias': n(layer.conv1d.conv.bias),
      **{f'{x}_kernel': n(getattr(layer, f'{x}_proj').weight.transpose(1, 2)) for x in 'qkv'},
      'igate': {'kernel': n(cell.igate.weight.T), 'bias': n(cell.igate.bias)},
      'fgate': {'kernel': n(cell.fgate.weight.T), 'bias': n(cell.fgate.bias)},
      'norm_scale': n(cell.outnorm.weight_proxy),  # 1 + weight
      'skip': n(layer.learnable_skip),
      'down': {'kernel': n(layer.proj_down.weight.T)},
  }


def main() -> None:
  layer = reference()
  params = params_of(layer)
  x = np.random.default_rng(0).normal(size=(B, T, D)).astype(np.float32)
  with torch.no_grad():
    want_parallel = layer(torch.from_numpy(x)).numpy()
    state, steps = {'mlstm_state': None, 'conv_state': None}, []
    for t in range(T):
      y_t, state = layer.step(torch.from_numpy(x[:, t:t + 1]), **state)
      steps.append(y_t.numpy())
    want_recurrent = np.concatenate(steps, 1)

  cfg = MixerConfig(D=D, H=H, expand=2, conv=CONV, chunk=4, use_bias=False)
  diffs = {}
  for scan in ('sequential', 'chunked'):
    ours = MLSTM(dataclasses.replace(cfg, scan=scan))
    got = jax.jit(ours.apply)({'params': params}, x)
    diffs[f'parallel_vs_{scan}'] = float(np.max(np.abs(np.asarray(got) - want_parallel)))
  ours = MLSTM(dataclasses.replace(cfg, scan='sequential'))
  shapes = jax.eval_shape(lambda: ours.init(jax.random.PRNGKey(0), x, decode_position=0))['cache']
  cache = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  step = jax.jit(lambda cache, x_t, t: ours.apply({'params': params, 'cache': cache}, x_t,
                                                   decode_position=t, mutable=['cache']))
  got = []
  for t in range(T):
    y_t, mutated = step(cache, x[:, t:t + 1], t)
    cache = mutated['cache']
    got.append(np.asarray(y_t))
  diffs['recurrent_vs_decoding'] = float(np.max(np.abs(np.concatenate(got, 1) - want_recurrent)))
  scale = float(max(np.max(np.abs(want_parallel)), np.max(np.abs(want_recurrent))))
  max_abs = max(diffs.values())
  print(json.dumps({
      'reference': 'xlstm.blocks.mlstm.layer.mLSTMLayer',
      'xlstm': getattr(xlstm, '__version__', None), 'torch': torch.__version__,
      'jax': jax.__version__, 'shapes': dict(B=B, T=T, D=D, H=H, E=2 * D),
      'dtype': 'float32', 'max_abs_output': scale, 'max_abs_diff': max_abs, 'diffs': diffs,
      'max_rel_diff': max_abs / scale, 'pass': max_abs / scale < 1e-4}))


if __name__ == '__main__':
  main()
