"""seqmodels' gla and retnet mixers beside flash-linear-attention's GatedLinearAttention and
MultiScaleRetention layers on shared weights.

Builds a tiny instance of each fla layer (expand_k 0.5, expand_v 1, fla's other defaults), draws
every weight anew (the gate's bias and the norm's scale too, so that none is a zero or one of its
init), copies them into seqmodels' mixer and runs both on the same random input in float32. fla's
layers run their own forward code; only the Triton kernels, which need a GPU, are replaced by fla's
own PyTorch references: naive_recurrent_gla and naive_retention for the recurrences,
layernorm_gated.rms_norm_ref for the fused RMSNorm-swish gate, rotary_embedding_ref for the rotary
positions. Compares the outputs (each scan form of seqmodels) and, for GLA, the final state S
(naive_recurrent_gla's, seqmodels' cache after a prefill). Prints one JSON line: the largest
absolute difference of each, relative to the largest reference value, and pass when every
relative difference is <= 1e-4.

  pip install torch==2.13.0 flash-linear-attention triton   # triton: only for fla's imports
  PYTHONPATH=. python bench/references/gla.py                # in the repository root
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import torch

from seqmodels.layers.mixers import MixerConfig, gla

TOLERANCE = 1e-4
FORMS = ('sequential', 'chunked')


def fla_on_cpu() -> dict:
  """fla's layer classes with their Triton kernels replaced by fla's PyTorch references; the final
  GLA state of the last call is left in the returned dict under 'state'."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # "Triton is not supported on current platform"
    layers = importlib.import_module('fla.layers')
  fla_gla = importlib.import_module('fla.layers.gla')
  fla_ret = importlib.import_module('fla.layers.multiscale_retention')
  naive_gla = importlib.import_module('fla.ops.gla.naive').naive_recurrent_gla
  naive_ret = importlib.import_module('fla.ops.retention.naive').naive_retention
  norm_gate = importlib.import_module('fla.modules.norm.fused_norm_gate')
  norm_ref = importlib.import_module('fla.modules.norm.layernorm_gated').rms_norm_ref
  rot = importlib.import_module('fla.modules.rotary.ops')
  out = {'GatedLinearAttention': layers.GatedLinearAttention,
         'MultiScaleRetention': layers.MultiScaleRetention}

  def gla_kernel(q, k, v, gk=None, g=None, initial_state=None, **_):
    o, out['state'] = naive_gla(q, k, v, gk if gk is not None else g, initial_state,
                                output_final_state=True)
    return o, None

  def retention_kernel(q, k, v, **_):  # naive_retention takes and gives [B, H, T, .]
    o = naive_ret(*(x.transpose(1, 2) for x in (q, k, v)))
    return o.transpose(1, 2), None

  def norm_gate_kernel(x, g, weight, bias, activation='swish', eps=1e-6, **_):
    assert activation in ('swish', 'silu')
    return norm_ref(x, weight, bias, z=g, eps=eps, norm_before_gate=True)

  def rotary_kernel(x, cos, sin, interleaved=False, seqlen_offsets=0, **_):
    T = x.shape[1]
    return rot.rotary_embedding_ref(x, cos[seqlen_offsets:seqlen_offsets + T],
                                    sin[seqlen_offsets:seqlen_offsets + T], interleaved)

  fla_gla.fused_recurrent_gla = fla_gla.chunk_gla = fla_gla.fused_chunk_gla = gla_kernel
  for name in ('chunk_retention', 'fused_chunk_retention', 'fused_recurrent_retention',
               'parallel_retention'):
    setattr(fla_ret, name, retention_kernel)
  norm_gate.rms_norm_gated = norm_gate_kernel
  rot.rotary_embedding = rotary_kernel
  return out


def randomise(layer: torch.nn.Module, seed: int) -> None:
  """Every weight drawn anew, N(0, 0.5^2)."""
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for p in layer.parameters():
      p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def params_of(layer: torch.nn.Module, retnet: bool) -> dict:
  """fla's weights in seqmodels' names: a Linear's weight [out, in] is a Dense kernel [in, out]."""
  w = lambda m: jnp.asarray(m.weight.detach().numpy().T)
  params = {name: {'kernel': w(getattr(layer, f'{name}_proj'))} for name in ('q', 'k', 'v', 'g')}
  params['out'] = {'kernel': w(layer.o_proj)}
  params['norm_scale'] = jnp.asarray(layer.g_norm_swish_gate.weight.detach().numpy())
  if not retnet:
    params['gate_down'] = {'kernel': w(layer.gk_proj[0])}
    params['gate_up'] = {'kernel': w(layer.gk_proj[1]),
                         'bias': jnp.asarray(layer.gk_proj[1].bias.detach().numpy())}
  return params


def compare(fla: dict, retnet: bool, args) -> dict:
  cls = fla['MultiScaleRetention' if retnet else 'GatedLinearAttention']
  layer = cls(hidden_size=args.D, num_heads=args.H, expand_k=0.5, expand_v=1.0,
              norm_eps=gla.NORM_EPS)
  randomise(layer, args.seed)
  x = np.random.default_rng(args.seed).normal(size=(args.B, args.T, args.D)).astype(np.float32)
  with torch.no_grad():
    want = layer(torch.from_numpy(x))[0].numpy()
  want_state = fla.get('state') if not retnet else None
  params = params_of(layer, retnet)
  scale = float(np.abs(want).max())
  result = {'reference': f'fla.layers.{cls.__name__}', 'B': args.B, 'T': args.T, 'D': args.D,
            'H': args.H, 'max_abs_ref': scale}
  ok = True
  for form in FORMS:
    cfg = MixerConfig(D=args.D, H=args.H, chunk=args.chunk, scan=form)
    mixer = gla.GLA(cfg, retnet=retnet)
    y = np.asarray(mixer.apply({'params': params}, jnp.asarray(x)))
    diff = float(np.abs(y - want).max())
    result[f'max_abs_diff_{form}'] = diff
    ok &= diff <= TOLERANCE * scale
    if want_state is not None:
      cache = mixer.init(jax.random.PRNGKey(0), jnp.asarray(x), decode_position=0)['cache']
      _, mutated = mixer.apply({'params': params, 'cache': cache}, jnp.asarray(x),
                               decode_position=0, mutable=['cache'])
      s = want_state.numpy()
      state_diff = float(np.abs(np.asarray(mutated['cache']['state']) - s).max())
      result[f'max_abs_diff_state_{form}'] = state_diff
      result['max_abs_state_ref'] = float(np.abs(s).max())
      ok &= state_diff <= TOLERANCE * float(np.abs(s).max())
  result['pass'] = bool(ok)
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--B', type=int, default=2)
  parser.add_argument('--T', type=int, default=37)
  parser.add_argument('--D', type=int, default=32)
  parser.add_argument('--H', type=int, default=2)
  parser.add_argument('--chunk', type=int, default=8)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  fla = fla_on_cpu()
  cases = {name: compare(fla, name == 'retnet', args) for name in ('gla', 'retnet')}
  versions = {p: importlib.metadata.version(p) for p in ('flash-linear-attention', 'fla-core',
                                                         'torch', 'jax', 'flax')}
  print(json.dumps({**cases, 'tolerance_relative': TOLERANCE, 'versions': versions,
                    'pass': all(c['pass'] for c in cases.values())}))


if __name__ == '__main__':
  main()
