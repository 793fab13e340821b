"""Mamba2ForCausalLM <-> the `lm` backbone of mamba2 blocks (the block around the mixer is
Mamba's: seqmodels/hf/mamba.py), with its groups of heads sharing B and C (model.ssm_groups) and
its gated RMSNorm normalising each group on its own, at the checkpoint's epsilon (transformers'
one layer_norm_epsilon: model.norm_eps and model.gated_norm_eps).

  backbone.layers.n.mixer.in_proj.weight [2E+2GN+H, D]   blockn/mixer/in_proj/kernel (z, x, B, C,
                                                           dt: the same order)
  backbone.layers.n.mixer.conv1d.weight [E+2GN, 1, K]    blockn/mixer/conv_kernel [K, E+2GN], .bias
  backbone.layers.n.mixer.{A_log, dt_bias, D} [H]        blockn/mixer/{A_log, dt_bias, D}
  backbone.layers.n.mixer.norm.weight [E]                blockn/mixer/norm/scale
  backbone.layers.n.mixer.out_proj.weight [D, E]         blockn/mixer/out_proj/kernel
"""

from __future__ import annotations

import math

from seqmodels.hf import backbone, core
from seqmodels.hf.backbone import VOCAB, StateDict, array, linear_out, refuse, refuse_export
from seqmodels.hf.mamba import at, backbone_from_hf, backbone_to_hf, check_exportable
from seqmodels.layers.mixers import MixerConfig

ARCHITECTURE = 'Mamba2ForCausalLM'


def mixer_from_hf(sd: StateDict, prefix: str, m: MixerConfig) -> dict:
  """transformers' Mamba2Mixer at `prefix` as seqmodels' mamba2 mixer's parameters (also what
  bench/references/mamba2.py shares between the two)."""
  D, E, N, G, H, K = m.D, m.expand * m.D, m.d_state, m.groups, m.H, m.conv
  C = E + 2 * G * N
  bias = lambda name, n: ({'bias': sd.take(at(prefix, f'{name}.bias'), (n,))} if m.use_bias
                          else {})
  return {'in_proj': {'kernel': sd.linear(at(prefix, 'in_proj.weight'), D, E + C + H),
                      **bias('in_proj', E + C + H)},
          'conv_kernel': sd.take(at(prefix, 'conv1d.weight'), (C, 1, K))[:, 0, :].T,
          'conv_bias': sd.take(at(prefix, 'conv1d.bias'), (C,)),
          'A_log': sd.take(at(prefix, 'A_log'), (H,)),
          'dt_bias': sd.take(at(prefix, 'dt_bias'), (H,)), 'D': sd.take(at(prefix, 'D'), (H,)),
          'norm': {'scale': sd.take(at(prefix, 'norm.weight'), (E,))},
          'out_proj': {'kernel': sd.linear(at(prefix, 'out_proj.weight'), E, D),
                       **bias('out_proj', D)}}


def mixer_to_hf(p: dict, prefix: str) -> core.Tensors:
  """mixer_from_hf, backwards."""
  out = {at(prefix, 'conv1d.weight'): array(p['conv_kernel']).T[:, None, :].copy(),
         at(prefix, 'conv1d.bias'): array(p['conv_bias']),
         at(prefix, 'norm.weight'): array(p['norm']['scale']),
         **{at(prefix, name): array(p[name]) for name in ('A_log', 'dt_bias', 'D')}}
  for name in ('in_proj', 'out_proj'):
    out[at(prefix, f'{name}.weight')] = linear_out(p[name]['kernel'])
    if 'bias' in p[name]:
      out[at(prefix, f'{name}.bias')] = array(p[name]['bias'])
  return out


def config_from_hf(h: core.HFConfig) -> core.Overrides:
  D, H = h['hidden_size'], h['num_heads']
  expand = h.get('expand', 2)
  act = h.get('hidden_act', 'silu')
  refuse(act == 'silu', ARCHITECTURE, 'hidden_act', act, 'silu')
  refuse(h.get('use_conv_bias', True), ARCHITECTURE, 'use_conv_bias', h.get('use_conv_bias'),
         'a convolution with its bias: true')
  refuse(h.get('rms_norm', True), ARCHITECTURE, 'rms_norm', h.get('rms_norm'),
         'the gated RMSNorm: true')
  limit = list(h.get('time_step_limit', (0.0, math.inf)))
  refuse(limit[0] <= 0 and limit[1] == math.inf, ARCHITECTURE, 'time_step_limit', limit,
         'dt unclamped: [0.0, inf]')
  refuse(h.get('head_dim', expand * D // H) * H == expand * D, ARCHITECTURE, 'head_dim',
         h.get('head_dim'), f'expand * hidden_size / num_heads = {expand * D // H}')
  eps = float(h.get('layer_norm_epsilon', 1e-5))
  return {'model.name': 'lm', 'model.mixer': 'mamba2', 'model.pattern': '', 'model.width': D,
          'model.layers': h['num_hidden_layers'], 'model.heads': H,
          'model.d_state': h.get('state_size', 128), 'model.ssm_groups': h.get('n_groups', 1),
          'model.expand': expand, 'model.conv': h.get('conv_kernel', 4),
          'model.chunk': h.get('chunk_size', 256), 'model.mlp': 'none', 'model.norm': 'rmsnorm',
          'model.norm_eps': eps, 'model.gated_norm_eps': eps, 'model.position': 'none',
          'model.bias': bool(h.get('use_bias', False)),
          'model.tied_head': bool(h.get('tie_word_embeddings', False)), 'model.embed_scale': 1.0,
          'model.logit_cap': 0.0, 'model.dropout': 0.0, VOCAB: h['vocab_size']}


def config_to_hf(config) -> core.HFConfig:
  c = backbone.backbone(config)
  m = c.mixer
  check_exportable(c, 'mamba2', ARCHITECTURE)
  refuse_export(m.norm_eps == c.norm_eps, ARCHITECTURE, f'model.gated_norm_eps={m.norm_eps} '
                f'differs from model.norm_eps={c.norm_eps}, and transformers has one '
                'layer_norm_epsilon: train with the two equal')
  return {'architectures': [ARCHITECTURE], 'model_type': 'mamba2', 'vocab_size': c.V,
          'hidden_size': m.D, 'num_heads': m.H, 'head_dim': m.expand * m.D // m.H,
          'state_size': m.d_state, 'n_groups': m.groups, 'num_hidden_layers': c.N,
          'expand': m.expand, 'conv_kernel': m.conv, 'chunk_size': m.chunk,
          'use_bias': m.use_bias, 'use_conv_bias': True, 'hidden_act': 'silu', 'rms_norm': True,
          'time_step_limit': [0.0, math.inf], 'layer_norm_epsilon': c.norm_eps,
          'tie_word_embeddings': c.tied, 'torch_dtype': 'float32'}


def params_from_hf(tensors: core.Tensors, config):
  return backbone_from_hf(tensors, config, ARCHITECTURE, mixer_from_hf)


def params_to_hf(params, config) -> core.Tensors:
  return backbone_to_hf(params, config, mixer_to_hf)


CONVERTERS = {ARCHITECTURE: core.Converter(
    architecture=ARCHITECTURE, model_type='mamba2', family='lm', config_from_hf=config_from_hf,
    config_to_hf=config_to_hf, params_from_hf=params_from_hf, params_to_hf=params_to_hf)}
