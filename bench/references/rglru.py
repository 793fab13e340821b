"""seqmodels' RG-LRU mixer beside google-deepmind/recurrentgemma's RecurrentBlock on shared weights.

Builds a tiny recurrentgemma RecurrentBlock (its JAX module and, where PyTorch is installed, its
PyTorch one), randomises every weight (biases and the convolution too, so that none is a zero of
its init), copies them into seqmodels' mixer and runs both on the same random input in float32:
the training form's outputs (each scan form), the final state (h and the convolution's inputs) and
one decoding step after it. Prints one JSON line: the largest absolute difference of each, its size
relative to the largest reference value, and pass when every relative difference is <= 1e-4.

  pip install --no-deps recurrentgemma==1.0.1 jaxtyping wadler_lindig 'typeguard<3'
  PYTHONPATH=. python bench/references/rglru.py   # in the repository root: its seqmodels

(--no-deps: recurrentgemma 1.0.1 asks for numpy < 2.4 and absl-py < 2, which it runs without.)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json

import jax
import jax.numpy as jnp
import numpy as np
from recurrentgemma.jax import modules as rg_jax

from seqmodels.layers.mixers import MixerConfig, rglru

TOLERANCE = 1e-4


def randomised(params, seed: int):
  """Every weight drawn anew, N(0, 0.5^2) (the RG-LRU's a_param kept: its ring init)."""
  rng = np.random.default_rng(seed)
  flat = jax.tree_util.tree_flatten_with_path(params)
  leaves = [v if 'a_param' in jax.tree_util.keystr(path) else
            jnp.asarray(rng.normal(0.0, 0.5, v.shape), jnp.float32) for path, v in flat[0]]
  return jax.tree.unflatten(flat[1], leaves)


def ours_from(ref) -> dict:
  """recurrentgemma's RecurrentBlock parameters as the mixer's (its a_param is -Lambda)."""
  lru = ref['rg_lru']
  return {'linear_x': ref['linear_x'], 'linear_y': ref['linear_y'], 'linear_out': ref['linear_out'],
          'conv_kernel': ref['conv_1d']['w'], 'conv_bias': ref['conv_1d']['b'],
          'gate_a_kernel': lru['a_gate']['w'], 'gate_a_bias': lru['a_gate']['b'],
          'gate_x_kernel': lru['input_gate']['w'], 'gate_x_bias': lru['input_gate']['b'],
          'Lambda': -lru['a_param']}


def ours(params, cfg: MixerConfig, x_BxTxD, x_Bx1xD):
  """(training-form outputs, h, conv inputs, the next step's output) of the mixer."""
  mixer = rglru.RGLRU(cfg)
  out = mixer.apply({'params': params}, x_BxTxD)
  cache = mixer.init(jax.random.PRNGKey(0), x_BxTxD, decode_position=0)['cache']
  _, mutated = mixer.apply({'params': params, 'cache': cache}, x_BxTxD, decode_position=0,
                           mutable=['cache'])
  step, _ = mixer.apply({'params': params, 'cache': mutated['cache']}, x_Bx1xD,
                        decode_position=x_BxTxD.shape[1], mutable=['cache'])
  return out, mutated['cache']['h'], mutated['cache']['conv_state'], step


def torch_reference(ref, a: argparse.Namespace, x_BxTxD, pos_BxT, x_Bx1xD):
  """The same weights in recurrentgemma's PyTorch RecurrentBlock: its outputs, as `ours` gives."""
  import torch
  from recurrentgemma.torch import modules as rg_torch
  block = rg_torch.RecurrentBlock(width=a.width, num_heads=a.heads, lru_width=a.width,
                                  conv1d_temporal_width=a.conv)
  t = lambda v: torch.tensor(np.asarray(v))
  state = {f'{n}.weight': t(ref[n]['kernel']).T for n in ('linear_x', 'linear_y', 'linear_out')}
  state.update({f'{n}.bias': t(ref[n]['bias']) for n in ('linear_x', 'linear_y', 'linear_out')})
  state.update({'conv_1d.w': t(ref['conv_1d']['w']), 'conv_1d.b': t(ref['conv_1d']['b']),
                'rg_lru.a_param': t(ref['rg_lru']['a_param'])})
  for gate in ('a_gate', 'input_gate'):
    state.update({f'rg_lru.{gate}.{k}': t(ref['rg_lru'][gate][k]) for k in ('w', 'b')})
  block.load_state_dict(state)
  with torch.no_grad():
    out, cache = block(t(x_BxTxD), t(pos_BxT))
    step, _ = block(t(x_Bx1xD), t(pos_BxT[:, -1:] + 1), cache=cache)
  return out.numpy(), cache.rg_lru_state.numpy(), cache.conv1d_state.numpy(), step.numpy()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--width', type=int, default=64)
  parser.add_argument('--heads', type=int, default=4)
  parser.add_argument('--conv', type=int, default=4)
  parser.add_argument('--batch', type=int, default=2)
  parser.add_argument('--length', type=int, default=32)
  parser.add_argument('--seed', type=int, default=0)
  a = parser.parse_args()
  B, T, D = a.batch, a.length, a.width
  rng = np.random.default_rng(a.seed + 1)
  x_BxTxD = jnp.asarray(rng.normal(size=(B, T, D)), jnp.float32)
  x_Bx1xD = jnp.asarray(rng.normal(size=(B, 1, D)), jnp.float32)
  pos_BxT = jnp.broadcast_to(jnp.arange(T), (B, T))

  block = rg_jax.RecurrentBlock(width=D, num_heads=a.heads, lru_width=D,
                                conv1d_temporal_width=a.conv)
  ref = randomised(block.init(jax.random.PRNGKey(a.seed), x_BxTxD, pos_BxT)['params'], a.seed)
  out, cache = block.apply({'params': ref}, x_BxTxD, pos_BxT)
  step, _ = block.apply({'params': ref}, x_Bx1xD, pos_BxT[:, -1:] + 1, cache=cache)
  references = {'jax': (out, cache.rg_lru_state, cache.conv1d_state, step)}
  try:
    references['torch'] = torch_reference(ref, a, x_BxTxD, pos_BxT, x_Bx1xD)
  except ImportError:
    pass

  params = ours_from(ref)
  result = {'mixer': 'rglru', 'shape': [B, T, D], 'heads': a.heads, 'conv': a.conv,
            'dtype': 'float32', 'recurrentgemma': importlib.metadata.version('recurrentgemma'),
            'jax': jax.__version__}
  if 'torch' in references:
    result['torch'] = importlib.metadata.version('torch')
  worst = 0.0
  for form in rglru.FORMS:
    cfg = MixerConfig(D=D, H=a.heads, conv=a.conv, use_bias=True, scan=form)
    mine = ours(params, cfg, x_BxTxD, x_Bx1xD)
    for peer, theirs in references.items():
      for what, m, r in zip(('out', 'h', 'conv_state', 'step'), mine, theirs):
        diff = float(np.max(np.abs(np.asarray(m) - np.asarray(r))))
        rel = diff / float(np.max(np.abs(np.asarray(r))))
        result[f'{peer}_{form}_{what}_max_abs_diff'] = diff
        worst = max(worst, rel)
  result['max_relative_diff'] = worst
  result['pass'] = worst <= TOLERANCE
  print(json.dumps(result))


if __name__ == '__main__':
  main()
