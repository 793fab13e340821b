"""LlamaForCausalLM <-> the `lm` backbone as Transformer++: attention blocks with RoPE, RMSNorm and
a gated MLP (SwiGLU), no biases; grouped-query attention (model.kv_heads), RoPE's theta
(model.rope_base), the norms' epsilon (model.norm_eps) and an untied lm_head (model.tied_head)
as the checkpoint says.

  model.embed_tokens.weight [V, D]                    embed/embedding
  model.layers.n.input_layernorm.weight               blockn/norm_mixer/scale
  model.layers.n.self_attn.{q,k,v,o}_proj.weight      blockn/mixer/attn/{qkv | query, kv}, out
  model.layers.n.post_attention_layernorm.weight      blockn/norm_mlp/scale
  model.layers.n.mlp.{gate,up,down}_proj.weight       blockn/mlp/fc [D, 2, F], proj
  model.norm.weight                                   norm_f/scale
  lm_head.weight [V, D]                               head [D, V] (absent when tied)
"""

from __future__ import annotations

from seqmodels.hf import backbone, core
from seqmodels.hf.backbone import VOCAB, StateDict, array, linear_out, refuse, refuse_export

ARCHITECTURE = 'LlamaForCausalLM'
# transformers' activation names -> the gated MLP of seqmodels that applies it to the gate
# (gelu_pytorch_tanh and gelu_new are the tanh approximation, jax.nn.gelu's default)
ACTIVATIONS = {'silu': 'swiglu', 'swish': 'swiglu', 'gelu_pytorch_tanh': 'geglu',
               'gelu_new': 'geglu'}


def config_from_hf(h: core.HFConfig) -> core.Overrides:
  D, H = h['hidden_size'], h['num_attention_heads']
  G = h.get('num_key_value_heads') or H
  act = h.get('hidden_act', 'silu')
  refuse(act in ACTIVATIONS, ARCHITECTURE, 'hidden_act', act, ', '.join(ACTIVATIONS))
  refuse(h.get('head_dim') in (None, D // H), ARCHITECTURE, 'head_dim', h.get('head_dim'),
         f'hidden_size / num_attention_heads = {D // H}')
  bias = bool(h.get('attention_bias', False))
  refuse(bool(h.get('mlp_bias', False)) == bias, ARCHITECTURE, 'mlp_bias', h.get('mlp_bias'),
         f'the same as attention_bias={bias}')
  return {'model.name': 'lm', 'model.mixer': 'attention', 'model.pattern': '',
          'model.width': D, 'model.layers': h['num_hidden_layers'], 'model.heads': H,
          'model.kv_heads': 0 if G == H else G, 'model.ffn': h['intermediate_size'],
          'model.mlp': ACTIVATIONS[act], 'model.norm': 'rmsnorm',
          'model.norm_eps': float(h.get('rms_norm_eps', 1e-6)), 'model.position': 'rope',
          'model.rope_base': backbone.rope_theta(h, ARCHITECTURE), 'model.rope_fraction': 1.0,
          'model.window': 0, 'model.bias': bias, 'model.qkv_bias': True,
          'model.tied_head': bool(h.get('tie_word_embeddings', False)),
          'model.embed_scale': 1.0, 'model.logit_cap': 0.0, 'model.dropout': 0.0,
          VOCAB: h['vocab_size']}


def config_to_hf(config) -> core.HFConfig:
  c = backbone.backbone(config)
  m = c.mixer
  refuse_export(set(c.pattern) == {'attention'} and c.position == 'rope' and not m.window,
                ARCHITECTURE, f'its blocks must all be attention with RoPE, no window (pattern '
                f'{",".join(c.pattern)}, position {c.position}, window {m.window})')
  refuse_export(c.norm == 'rmsnorm' and c.mlp in ('swiglu', 'geglu'), ARCHITECTURE,
                f'it needs norm rmsnorm and mlp swiglu or geglu (not {c.norm}, {c.mlp})')
  refuse_export(c.embed_scale == 1.0 and not c.logit_cap and m.rope_fraction == 1.0 and
                m.qkv_bias, ARCHITECTURE, 'embed_scale, logit_cap, rope_fraction and qkv_bias '
                'must be their defaults')
  return {'architectures': [ARCHITECTURE], 'model_type': 'llama', 'vocab_size': c.V,
          'hidden_size': m.D, 'intermediate_size': c.F, 'num_hidden_layers': c.N,
          'num_attention_heads': m.H, 'num_key_value_heads': m.kv_heads or m.H,
          'head_dim': m.D // m.H,
          'hidden_act': 'silu' if c.mlp == 'swiglu' else 'gelu_pytorch_tanh',
          'rms_norm_eps': c.norm_eps, 'max_position_embeddings': c.L,
          'rope_parameters': {'rope_type': 'default', 'rope_theta': m.rope_base},
          'attention_bias': m.use_bias, 'mlp_bias': m.use_bias,
          'tie_word_embeddings': c.tied, 'torch_dtype': 'float32'}


def params_from_hf(tensors: core.Tensors, config):
  c = backbone.backbone(config)
  D, V = c.mixer.D, c.V
  sd = StateDict(tensors, ARCHITECTURE, ignore=('rotary_emb.inv_freq',) +
                 (('lm_head.weight',) if c.tied else ()))
  params = {'embed': {'embedding': sd.take('model.embed_tokens.weight', (V, D))},
            'norm_f': {'scale': sd.take('model.norm.weight', (D,))}}
  for n in range(c.N):
    p = f'model.layers.{n}'
    params[f'block{n}'] = {
        'norm_mixer': {'scale': sd.take(f'{p}.input_layernorm.weight', (D,))},
        'mixer': backbone.attention_from_hf(sd, f'{p}.self_attn', c, c.mixer.use_bias,
                                            c.mixer.use_bias),
        'norm_mlp': {'scale': sd.take(f'{p}.post_attention_layernorm.weight', (D,))},
        'mlp': backbone.gated_mlp_from_hf(sd, f'{p}.mlp', D, c.F, c.mixer.use_bias)}
  if not c.tied:
    params['head'] = sd.linear('lm_head.weight', D, V)
  sd.done()
  return params


def params_to_hf(params, config) -> core.Tensors:
  c = backbone.backbone(config)
  out = {'model.embed_tokens.weight': array(params['embed']['embedding']),
         'model.norm.weight': array(params['norm_f']['scale'])}
  for n in range(c.N):
    p, b = f'model.layers.{n}', params[f'block{n}']
    out[f'{p}.input_layernorm.weight'] = array(b['norm_mixer']['scale'])
    out[f'{p}.post_attention_layernorm.weight'] = array(b['norm_mlp']['scale'])
    out.update(backbone.attention_to_hf(b['mixer'], f'{p}.self_attn'))
    out.update(backbone.gated_mlp_to_hf(b['mlp'], f'{p}.mlp'))
  if not c.tied:
    out['lm_head.weight'] = linear_out(params['head'])
  return out


CONVERTERS = {ARCHITECTURE: core.Converter(
    architecture=ARCHITECTURE, model_type='llama', family='lm', config_from_hf=config_from_hf,
    config_to_hf=config_to_hf, params_from_hf=params_from_hf, params_to_hf=params_to_hf)}
