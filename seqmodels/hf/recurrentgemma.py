"""RecurrentGemmaForCausalLM <-> Griffin as the `lm` backbone: block_types repeated to the layers
(recurrent -> rglru, attention -> attention with RoPE on part of each head, a local window and
multi-query keys/values), Gemma's RMSNorm (x-hat (1 + w): norm rmsnorm1p), a gated GeLU MLP with
biases, the embeddings times sqrt(width) and the logits soft-capped.

  model.embed_tokens.weight                          embed/embedding (times embed_scale:
                                                       sqrt(hidden_size), rounded to bfloat16)
  model.layers.n.temporal_pre_norm.weight            blockn/norm_mixer/scale
  model.layers.n.temporal_block.linear_{x,y,out}     blockn/mixer/linear_{x,y,out} (recurrent)
  model.layers.n.temporal_block.conv_1d [E, 1, K]    blockn/mixer/conv_kernel [K, E], conv_bias
  model.layers.n.temporal_block.rg_lru.
      recurrent_param [E]                            blockn/mixer/Lambda = -recurrent_param
      {input,recurrent}_gate_{weight,bias}           blockn/mixer/gate_{x,a}_{kernel,bias} [H, ...]
  model.layers.n.temporal_block.{q,k,v,o}_proj       blockn/mixer/attn/... (attention)
  model.layers.n.channel_pre_norm.weight             blockn/norm_mlp/scale
  model.layers.n.mlp_block.{gate,up,down}_proj       blockn/mlp/fc [D, 2, F], proj (F is half of
                                                       intermediate_size, as transformers halves it)
  model.final_norm.weight                            norm_f/scale
"""

from __future__ import annotations

import jax.numpy as jnp

from seqmodels.hf import backbone, core
from seqmodels.hf.backbone import VOCAB, StateDict, array, linear_out, refuse, refuse_export
from seqmodels.layers.mixers import MixerConfig, rglru

ARCHITECTURE = 'RecurrentGemmaForCausalLM'
BLOCKS = {'recurrent': 'rglru', 'attention': 'attention'}


def embed_scale(D: int) -> float:
  """transformers' normalizer: sqrt(hidden_size) held in bfloat16."""
  return float(jnp.asarray(D ** 0.5, jnp.bfloat16).astype(jnp.float32))


def rglru_from_hf(sd: StateDict, prefix: str, m: MixerConfig) -> dict:
  """transformers' RecurrentGemmaRecurrentBlock at `prefix` as seqmodels' rglru mixer."""
  D, E, H, K = m.D, rglru.lru_width(m), m.H, m.conv
  linear = lambda name, n_in, n_out: {'kernel': sd.linear(f'{prefix}.{name}.weight', n_in, n_out),
                                      'bias': sd.take(f'{prefix}.{name}.bias', (n_out,))}
  params = {'linear_x': linear('linear_x', D, E), 'linear_y': linear('linear_y', D, E),
            'linear_out': linear('linear_out', E, D),
            'conv_kernel': sd.take(f'{prefix}.conv_1d.weight', (E, 1, K))[:, 0, :].T,
            'conv_bias': sd.take(f'{prefix}.conv_1d.bias', (E,)),
            'Lambda': -sd.take(f'{prefix}.rg_lru.recurrent_param', (E,))}
  for ours, theirs in (('gate_x', 'input_gate'), ('gate_a', 'recurrent_gate')):
    params[f'{ours}_kernel'] = sd.take(f'{prefix}.rg_lru.{theirs}_weight', (H, E // H, E // H))
    params[f'{ours}_bias'] = sd.take(f'{prefix}.rg_lru.{theirs}_bias', (H, E // H))
  return params


def rglru_to_hf(p: dict, prefix: str) -> core.Tensors:
  """rglru_from_hf, backwards."""
  out = {f'{prefix}.conv_1d.weight': array(p['conv_kernel']).T[:, None, :].copy(),
         f'{prefix}.conv_1d.bias': array(p['conv_bias']),
         f'{prefix}.rg_lru.recurrent_param': -array(p['Lambda'])}
  for name in ('linear_x', 'linear_y', 'linear_out'):
    out[f'{prefix}.{name}.weight'] = linear_out(p[name]['kernel'])
    out[f'{prefix}.{name}.bias'] = array(p[name]['bias'])
  for ours, theirs in (('gate_x', 'input_gate'), ('gate_a', 'recurrent_gate')):
    out[f'{prefix}.rg_lru.{theirs}_weight'] = array(p[f'{ours}_kernel'])
    out[f'{prefix}.rg_lru.{theirs}_bias'] = array(p[f'{ours}_bias'])
  return out


def config_from_hf(h: core.HFConfig) -> core.Overrides:
  D, H = h['hidden_size'], h['num_attention_heads']
  G = h.get('num_key_value_heads') or H
  act = h.get('hidden_activation', 'gelu_pytorch_tanh')
  refuse(act in ('gelu_pytorch_tanh', 'gelu_new'), ARCHITECTURE, 'hidden_activation', act,
         'gelu_pytorch_tanh')
  blocks = list(h.get('block_types') or ('recurrent', 'recurrent', 'attention'))
  for block in blocks:
    refuse(block in BLOCKS, ARCHITECTURE, 'block_types', blocks, ', '.join(BLOCKS))
  rope = h.get('rope_parameters') or {}
  fraction = float(rope.get('partial_rotary_factor', h.get('partial_rotary_factor', 0.5)))
  lru = h.get('lru_width') or D
  return {'model.name': 'lm', 'model.mixer': 'attention',
          'model.pattern': ','.join(BLOCKS[b] for b in blocks), 'model.width': D,
          'model.layers': h['num_hidden_layers'], 'model.heads': H,
          'model.kv_heads': 0 if G == H else G,
          'model.window': h.get('attention_window_size', 2048),
          'model.conv': h.get('conv1d_width', 4), 'model.lru_width': 0 if lru == D else lru,
          'model.ffn': h['intermediate_size'] // 2, 'model.mlp': 'geglu',
          'model.norm': 'rmsnorm1p', 'model.norm_eps': float(h.get('rms_norm_eps', 1e-6)),
          'model.position': 'rope', 'model.rope_base': backbone.rope_theta(h, ARCHITECTURE),
          'model.rope_fraction': fraction, 'model.bias': True,
          'model.qkv_bias': bool(h.get('attention_bias', False)),
          'model.tied_head': bool(h.get('tie_word_embeddings', True)),
          'model.embed_scale': embed_scale(D),
          'model.logit_cap': float(h.get('logits_soft_cap') or 0.0), 'model.dropout': 0.0,
          VOCAB: h['vocab_size']}


def config_to_hf(config) -> core.HFConfig:
  c = backbone.backbone(config)
  m = c.mixer
  types = {v: k for k, v in BLOCKS.items()}
  refuse_export(set(c.pattern) <= set(types), ARCHITECTURE,
                f'its pattern must be of rglru and attention blocks (has {",".join(c.pattern)})')
  refuse_export(c.norm == 'rmsnorm1p' and c.mlp == 'geglu' and c.position == 'rope' and
                m.use_bias and c.embed_scale == embed_scale(m.D) and c.logit_cap > 0, ARCHITECTURE,
                'it needs norm rmsnorm1p, mlp geglu, position rope, bias, embed_scale '
                f'{embed_scale(m.D)} and a logit_cap')
  return {'architectures': [ARCHITECTURE], 'model_type': 'recurrent_gemma', 'vocab_size': c.V,
          'hidden_size': m.D, 'intermediate_size': 2 * c.F, 'num_hidden_layers': c.N,
          'num_attention_heads': m.H, 'num_key_value_heads': m.kv_heads or m.H,
          'lru_width': rglru.lru_width(m), 'attention_window_size': m.window,
          'conv1d_width': m.conv, 'logits_soft_cap': c.logit_cap, 'rms_norm_eps': c.norm_eps,
          'hidden_activation': 'gelu_pytorch_tanh', 'block_types': [types[p] for p in c.pattern],
          'rope_parameters': {'rope_type': 'default', 'rope_theta': m.rope_base,
                              'partial_rotary_factor': m.rope_fraction},
          'attention_bias': m.qkv_bias, 'tie_word_embeddings': c.tied, 'torch_dtype': 'float32'}


def params_from_hf(tensors: core.Tensors, config):
  c = backbone.backbone(config)
  D, V, m = c.mixer.D, c.V, c.mixer
  sd = StateDict(tensors, ARCHITECTURE, ignore=('lm_head.weight',) if c.tied else ())
  params = {'embed': {'embedding': sd.take('model.embed_tokens.weight', (V, D))},
            'norm_f': {'scale': sd.take('model.final_norm.weight', (D,))}}
  for n, mixer in enumerate(c.mixers):
    p = f'model.layers.{n}'
    params[f'block{n}'] = {
        'norm_mixer': {'scale': sd.take(f'{p}.temporal_pre_norm.weight', (D,))},
        'mixer': (rglru_from_hf(sd, f'{p}.temporal_block', m) if mixer == 'rglru' else
                  backbone.attention_from_hf(sd, f'{p}.temporal_block', c, m.qkv_bias, True)),
        'norm_mlp': {'scale': sd.take(f'{p}.channel_pre_norm.weight', (D,))},
        'mlp': backbone.gated_mlp_from_hf(sd, f'{p}.mlp_block', D, c.F, True)}
  if not c.tied:
    params['head'] = sd.linear('lm_head.weight', D, V)
  sd.done()
  return params


def params_to_hf(params, config) -> core.Tensors:
  c = backbone.backbone(config)
  out = {'model.embed_tokens.weight': array(params['embed']['embedding']),
         'model.final_norm.weight': array(params['norm_f']['scale'])}
  for n, mixer in enumerate(c.mixers):
    p, b = f'model.layers.{n}', params[f'block{n}']
    out[f'{p}.temporal_pre_norm.weight'] = array(b['norm_mixer']['scale'])
    out[f'{p}.channel_pre_norm.weight'] = array(b['norm_mlp']['scale'])
    out.update(rglru_to_hf(b['mixer'], f'{p}.temporal_block') if mixer == 'rglru' else
               backbone.attention_to_hf(b['mixer'], f'{p}.temporal_block'))
    out.update(backbone.gated_mlp_to_hf(b['mlp'], f'{p}.mlp_block'))
  if not c.tied:
    out['lm_head.weight'] = linear_out(params['head'])
  return out


CONVERTERS = {ARCHITECTURE: core.Converter(
    architecture=ARCHITECTURE, model_type='recurrent_gemma', family='lm',
    config_from_hf=config_from_hf, config_to_hf=config_to_hf, params_from_hf=params_from_hf,
    params_to_hf=params_to_hf)}
