"""MambaForCausalLM <-> the `lm` backbone of mamba blocks: x + mixer(RMSNorm(x)), no MLP, no
positions, the final RMSNorm and the head tied to the embedding (unless the checkpoint unties it).

  backbone.embeddings.weight [V, D]                   embed/embedding
  backbone.layers.n.norm.weight                       blockn/norm_mixer/scale
  backbone.layers.n.mixer.in_proj.weight [2E, D]      blockn/mixer/in_proj/kernel [D, 2E] (x, z)
  backbone.layers.n.mixer.conv1d.weight [E, 1, K]     blockn/mixer/conv_kernel [K, E] (tap j
                                                        multiplies x_{t-(K-1-j)} in both), .bias
  backbone.layers.n.mixer.x_proj.weight [R+2N, E]     blockn/mixer/x_proj/kernel (dt, B, C)
  backbone.layers.n.mixer.dt_proj.{weight, bias}      blockn/mixer/dt_proj/{kernel [R, E], bias}
                                                        (dt = softplus(dt_proj(.)), bias included)
  backbone.layers.n.mixer.A_log [E, N], D [E]         blockn/mixer/A_log (A = -exp(A_log)), D
  backbone.layers.n.mixer.out_proj.weight [D, E]      blockn/mixer/out_proj/kernel
  backbone.norm_f.weight                              norm_f/scale
  lm_head.weight                                      head [D, V] (absent when tied)
"""

from __future__ import annotations

import math
from typing import Callable

from seqmodels.hf import backbone, core
from seqmodels.hf.backbone import VOCAB, StateDict, array, linear_out, refuse, refuse_export
from seqmodels.layers.mixers import MixerConfig
from seqmodels.layers.mixers import mamba as mamba_mixer
from seqmodels.models import lm

ARCHITECTURE = 'MambaForCausalLM'


def at(prefix: str, name: str) -> str:
  return f'{prefix}.{name}' if prefix else name


def mixer_from_hf(sd: StateDict, prefix: str, m: MixerConfig) -> dict:
  """transformers' MambaMixer at `prefix` as seqmodels' mamba mixer's parameters (also what
  bench/references/mamba.py shares between the two)."""
  D, E, N, K, R = m.D, m.expand * m.D, m.d_state, m.conv, mamba_mixer.dt_rank(m.D)
  bias = lambda name, n: ({'bias': sd.take(at(prefix, f'{name}.bias'), (n,))} if m.use_bias
                          else {})
  return {'in_proj': {'kernel': sd.linear(at(prefix, 'in_proj.weight'), D, 2 * E),
                      **bias('in_proj', 2 * E)},
          'conv_kernel': sd.take(at(prefix, 'conv1d.weight'), (E, 1, K))[:, 0, :].T,
          'conv_bias': sd.take(at(prefix, 'conv1d.bias'), (E,)),
          'x_proj': {'kernel': sd.linear(at(prefix, 'x_proj.weight'), E, R + 2 * N)},
          'dt_proj': {'kernel': sd.linear(at(prefix, 'dt_proj.weight'), R, E),
                      'bias': sd.take(at(prefix, 'dt_proj.bias'), (E,))},
          'A_log': sd.take(at(prefix, 'A_log'), (E, N)), 'D': sd.take(at(prefix, 'D'), (E,)),
          'out_proj': {'kernel': sd.linear(at(prefix, 'out_proj.weight'), E, D),
                       **bias('out_proj', D)}}


def mixer_to_hf(p: dict, prefix: str) -> core.Tensors:
  """mixer_from_hf, backwards."""
  out = {at(prefix, 'conv1d.weight'): array(p['conv_kernel']).T[:, None, :].copy(),
         at(prefix, 'conv1d.bias'): array(p['conv_bias']),
         at(prefix, 'dt_proj.bias'): array(p['dt_proj']['bias']),
         at(prefix, 'A_log'): array(p['A_log']), at(prefix, 'D'): array(p['D'])}
  for name in ('in_proj', 'x_proj', 'dt_proj', 'out_proj'):
    out[at(prefix, f'{name}.weight')] = linear_out(p[name]['kernel'])
    if name in ('in_proj', 'out_proj') and 'bias' in p[name]:
      out[at(prefix, f'{name}.bias')] = array(p[name]['bias'])
  return out


def backbone_from_hf(tensors: core.Tensors, config, architecture: str,
                     mixer: Callable[[StateDict, str, MixerConfig], dict]) -> dict:
  """The parameters of an lm of one recurrent mixer per block, as transformers' Mamba and Mamba-2
  name them ('backbone.'...): `mixer` reads each block's."""
  c = backbone.backbone(config)
  D = c.mixer.D
  sd = StateDict(tensors, architecture, ignore=('lm_head.weight',) if c.tied else ())
  params = {'embed': {'embedding': sd.take('backbone.embeddings.weight', (c.V, D))},
            'norm_f': {'scale': sd.take('backbone.norm_f.weight', (D,))}}
  for n in range(c.N):
    params[f'block{n}'] = {
        'norm_mixer': {'scale': sd.take(f'backbone.layers.{n}.norm.weight', (D,))},
        'mixer': mixer(sd, f'backbone.layers.{n}.mixer', c.mixer)}
  if not c.tied:
    params['head'] = sd.linear('lm_head.weight', D, c.V)
  sd.done()
  return params


def backbone_to_hf(params, config, mixer: Callable[[dict, str], core.Tensors]) -> core.Tensors:
  """backbone_from_hf, backwards."""
  c = backbone.backbone(config)
  out = {'backbone.embeddings.weight': array(params['embed']['embedding']),
         'backbone.norm_f.weight': array(params['norm_f']['scale'])}
  for n in range(c.N):
    b = params[f'block{n}']
    out[f'backbone.layers.{n}.norm.weight'] = array(b['norm_mixer']['scale'])
    out.update(mixer(b['mixer'], f'backbone.layers.{n}.mixer'))
  if not c.tied:
    out['lm_head.weight'] = linear_out(params['head'])
  return out


def check_exportable(c: lm.LMConfig, mixer: str, architecture: str) -> None:
  """A run of one recurrent mixer, RMSNorm, no MLP and no positions, which both Mamba LMs are."""
  refuse_export(c.pattern == (mixer,) and c.mlp == 'none' and c.norm == 'rmsnorm' and
                c.position == 'none' and c.embed_scale == 1.0 and not c.logit_cap, architecture,
                f'it needs pattern {mixer}, mlp none, norm rmsnorm, position none, embed_scale 1 '
                f'and no logit_cap (has pattern {",".join(c.pattern)}, mlp {c.mlp}, norm {c.norm},'
                f' position {c.position})')


def config_from_hf(h: core.HFConfig) -> core.Overrides:
  D = h['hidden_size']
  act = h.get('hidden_act', 'silu')
  refuse(act == 'silu', ARCHITECTURE, 'hidden_act', act, 'silu')
  refuse(h.get('use_conv_bias', True), ARCHITECTURE, 'use_conv_bias', h.get('use_conv_bias'),
         'a convolution with its bias: true')
  rank = h.get('time_step_rank', 'auto')
  refuse(rank in ('auto', math.ceil(D / 16)), ARCHITECTURE, 'time_step_rank', rank,
         f'ceil(hidden_size / 16) = {math.ceil(D / 16)}')
  expand = h.get('expand', 2)
  inner = h.get('intermediate_size', expand * D)
  refuse(inner == expand * D, ARCHITECTURE, 'intermediate_size', inner,
         f'expand * hidden_size = {expand * D}')
  return {'model.name': 'lm', 'model.mixer': 'mamba', 'model.pattern': '', 'model.width': D,
          'model.layers': h['num_hidden_layers'], 'model.d_state': h.get('state_size', 16),
          'model.expand': expand, 'model.conv': h.get('conv_kernel', 4), 'model.mlp': 'none',
          'model.norm': 'rmsnorm', 'model.norm_eps': float(h.get('layer_norm_epsilon', 1e-5)),
          'model.position': 'none', 'model.bias': bool(h.get('use_bias', False)),
          'model.tied_head': bool(h.get('tie_word_embeddings', True)), 'model.embed_scale': 1.0,
          'model.logit_cap': 0.0, 'model.dropout': 0.0, VOCAB: h['vocab_size']}


def config_to_hf(config) -> core.HFConfig:
  c = backbone.backbone(config)
  m = c.mixer
  check_exportable(c, 'mamba', ARCHITECTURE)
  return {'architectures': [ARCHITECTURE], 'model_type': 'mamba', 'vocab_size': c.V,
          'hidden_size': m.D, 'state_size': m.d_state, 'num_hidden_layers': c.N,
          'expand': m.expand, 'intermediate_size': m.expand * m.D, 'conv_kernel': m.conv,
          'use_bias': m.use_bias, 'use_conv_bias': True, 'hidden_act': 'silu',
          'time_step_rank': mamba_mixer.dt_rank(m.D), 'layer_norm_epsilon': c.norm_eps,
          'tie_word_embeddings': c.tied, 'torch_dtype': 'float32'}


def params_from_hf(tensors: core.Tensors, config):
  return backbone_from_hf(tensors, config, ARCHITECTURE, mixer_from_hf)


def params_to_hf(params, config) -> core.Tensors:
  return backbone_to_hf(params, config, mixer_to_hf)


CONVERTERS = {ARCHITECTURE: core.Converter(
    architecture=ARCHITECTURE, model_type='mamba', family='lm', config_from_hf=config_from_hf,
    config_to_hf=config_to_hf, params_from_hf=params_from_hf, params_to_hf=params_to_hf)}
