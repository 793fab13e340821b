"""GPT-2 (GPT2LMHeadModel) <-> model.name=gpt.

GPT-2's Conv1D layers keep their weight as [in, out] (x @ W, the layout of a flax kernel, unlike
nn.Linear's [out, in]); c_attn is queries, keys and values side by side, each H heads of K. The head
is the token embedding (tied), positions are a learned table of n_positions, every LayerNorm has
layer_norm_epsilon, and the FFN's gelu_new is the tanh approximation (our 'gelu').
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqmodels.hf import core

ARCH = 'GPT2LMHeadModel'
# GPT-2's activation_function -> config.model.activation
ACTIVATIONS = {'gelu_new': 'gelu', 'gelu_pytorch_tanh': 'gelu', 'gelu': 'gelu_erf',
               'relu': 'relu'}


def config_from_hf(h: core.HFConfig) -> core.Overrides:
  act = h.get('activation_function', 'gelu_new')
  if act not in ACTIVATIONS:
    core.unsupported(ARCH, 'activation_function', act, ', '.join(ACTIVATIONS))
  for field, value in (('add_cross_attention', False), ('scale_attn_weights', True),
                       ('scale_attn_by_inverse_layer_idx', False), ('tie_word_embeddings', True)):
    if h.get(field, value) != value:
      core.unsupported(ARCH, field, h[field], f'{field}={value}')
  D = h['n_embd']
  return {'model.name': 'gpt', 'model.width': D, 'model.layers': h['n_layer'],
          'model.heads': h['n_head'], 'model.ffn': h.get('n_inner') or 4 * D,
          'model.positions': h['n_positions'], 'model.norm_eps': h.get('layer_norm_epsilon', 1e-5),
          'model.activation': ACTIVATIONS[act], 'model.dropout': h.get('resid_pdrop', 0.0),
          core.VOCAB: h['vocab_size']}


def config_to_hf(config) -> core.HFConfig:
  m = config.model
  act = {'gelu': 'gelu_new', 'gelu_erf': 'gelu', 'relu': 'relu'}[m.get('activation', 'gelu')]
  return {'architectures': [ARCH], 'model_type': 'gpt2', 'vocab_size': m.vocab_size,
          'n_embd': m.width, 'n_layer': m.layers, 'n_head': m.heads,
          'n_inner': m.ffn or 4 * m.width,
          'n_positions': m.get('positions', 0) or config.data.seq_len,
          'layer_norm_epsilon': m.get('norm_eps', 1e-6), 'activation_function': act,
          'resid_pdrop': m.dropout, 'embd_pdrop': m.dropout, 'attn_pdrop': 0.0,
          'tie_word_embeddings': True, 'bos_token_id': None, 'eos_token_id': None}


def params_from_hf(tensors: core.Tensors, config) -> Any:
  m = config.model
  V, D, H, F = m.vocab_size, m.width, m.heads, m.ffn or 4 * m.width
  K, L = D // H, m.get('positions', 0) or config.data.seq_len
  take = core.Taker(tensors, ARCH)
  t = 'transformer'
  params = {'embed': {'embedding': take(f'{t}.wte.weight', (V, D))},
            'pos': take(f'{t}.wpe.weight', (L, D)), 'ln_f': take.layer_norm(f'{t}.ln_f', D)}
  for n in range(m.layers):
    h = f'{t}.h.{n}'
    params[f'block{n}'] = {
        'ln_attn': take.layer_norm(f'{h}.ln_1', D), 'ln_mlp': take.layer_norm(f'{h}.ln_2', D),
        'attn': {'qkv': {'kernel': take(f'{h}.attn.c_attn.weight', (D, 3 * D)).reshape(D, 3, H, K),
                         'bias': take(f'{h}.attn.c_attn.bias', (3 * D,)).reshape(3, H, K)},
                 'out': {'kernel': take(f'{h}.attn.c_proj.weight', (D, D)).reshape(H, K, D),
                         'bias': take(f'{h}.attn.c_proj.bias', (D,))}},
        'mlp': {'fc': {'kernel': take(f'{h}.mlp.c_fc.weight', (D, F)),
                       'bias': take(f'{h}.mlp.c_fc.bias', (F,))},
                'proj': {'kernel': take(f'{h}.mlp.c_proj.weight', (F, D)),
                         'bias': take(f'{h}.mlp.c_proj.bias', (D,))}}}
  take.done()
  return params


def params_to_hf(params, config) -> core.Tensors:
  a = lambda x: np.asarray(x, np.float32)
  t = 'transformer'
  out = {f'{t}.wte.weight': a(params['embed']['embedding']), f'{t}.wpe.weight': a(params['pos']),
         f'{t}.ln_f.weight': a(params['ln_f']['scale']),
         f'{t}.ln_f.bias': a(params['ln_f']['bias'])}
  for n in range(config.model.layers):
    b, h = params[f'block{n}'], f'{t}.h.{n}'
    qkv, o = b['attn']['qkv'], b['attn']['out']
    D = o['bias'].shape[0]
    out.update({
        f'{h}.ln_1.weight': a(b['ln_attn']['scale']), f'{h}.ln_1.bias': a(b['ln_attn']['bias']),
        f'{h}.ln_2.weight': a(b['ln_mlp']['scale']), f'{h}.ln_2.bias': a(b['ln_mlp']['bias']),
        f'{h}.attn.c_attn.weight': a(qkv['kernel']).reshape(D, 3 * D),
        f'{h}.attn.c_attn.bias': a(qkv['bias']).reshape(3 * D),
        f'{h}.attn.c_proj.weight': a(o['kernel']).reshape(D, D),
        f'{h}.attn.c_proj.bias': a(o['bias']),
        f'{h}.mlp.c_fc.weight': a(b['mlp']['fc']['kernel']),
        f'{h}.mlp.c_fc.bias': a(b['mlp']['fc']['bias']),
        f'{h}.mlp.c_proj.weight': a(b['mlp']['proj']['kernel']),
        f'{h}.mlp.c_proj.bias': a(b['mlp']['proj']['bias'])})
  return out


CONVERTERS = {ARCH: core.Converter(ARCH, 'gpt2', 'gpt', config_from_hf, config_to_hf,
                                   params_from_hf, params_to_hf)}
