"""BERT (BertForPreTraining, BertForSequenceClassification) <-> model.name=bert.

nn.Linear keeps its weight as [out, in]: every kernel is its transpose. Queries, keys and values
are three Linears, our one fused [D, 3, H, K] kernel; each block is post-LN (attention.output's
LayerNorm is our ln_attn, output's our ln_mlp). Token types are our two segments, the pooler
tanh(W h_[CLS]) feeds next-sentence prediction (cls.seq_relationship) or the classifier, and the
masked-LM head (cls.predictions: transform, then the tied word embeddings plus a bias) is ours.
BERT's hidden_act 'gelu' is the exact (erf) one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqmodels.hf import core

PRETRAIN, CLASSIFY = 'BertForPreTraining', 'BertForSequenceClassification'
ACTIVATIONS = {'gelu': 'gelu_erf', 'gelu_new': 'gelu', 'gelu_pytorch_tanh': 'gelu',
               'relu': 'relu'}


def _config_from_hf(architecture: str):
  def config_from_hf(h: core.HFConfig) -> core.Overrides:
    act = h.get('hidden_act', 'gelu')
    if act not in ACTIVATIONS:
      core.unsupported(architecture, 'hidden_act', act, ', '.join(ACTIVATIONS))
    for field, value in (('type_vocab_size', 2), ('position_embedding_type', 'absolute'),
                         ('is_decoder', False), ('add_cross_attention', False),
                         ('tie_word_embeddings', True)):
      if h.get(field, value) != value:
        core.unsupported(architecture, field, h[field], f'{field}={value!r}')
    overrides = {'model.name': 'bert', 'model.width': h['hidden_size'],
                 'model.layers': h['num_hidden_layers'], 'model.heads': h['num_attention_heads'],
                 'model.ffn': h['intermediate_size'],
                 'model.positions': h['max_position_embeddings'],
                 'model.norm_eps': h.get('layer_norm_eps', 1e-12),
                 'model.activation': ACTIVATIONS[act], 'model.pool': 'cls',
                 'model.dropout': h.get('hidden_dropout_prob', 0.1), core.VOCAB: h['vocab_size']}
    if architecture == CLASSIFY:
      overrides['model.classes'] = len(h.get('id2label') or {}) or h.get('num_labels', 2)
    return overrides
  return config_from_hf


def _config_to_hf(architecture: str):
  def config_to_hf(config) -> core.HFConfig:
    m = config.model
    act = {'gelu': 'gelu_new', 'gelu_erf': 'gelu', 'relu': 'relu'}[m.get('activation', 'gelu')]
    h = {'architectures': [architecture], 'model_type': 'bert', 'vocab_size': m.vocab_size,
         'hidden_size': m.width, 'num_hidden_layers': m.layers, 'num_attention_heads': m.heads,
         'intermediate_size': m.ffn or 4 * m.width,
         'max_position_embeddings': m.get('positions', 0) or config.data.seq_len,
         'layer_norm_eps': m.get('norm_eps', 1e-6), 'hidden_act': act, 'type_vocab_size': 2,
         'hidden_dropout_prob': m.dropout, 'attention_probs_dropout_prob': 0.0,
         'pad_token_id': 0, 'tie_word_embeddings': True}
    if architecture == CLASSIFY:
      C = m.get('classes', 2)
      h['id2label'] = {str(i): f'LABEL_{i}' for i in range(C)}
      h['label2id'] = {f'LABEL_{i}': i for i in range(C)}
    return h
  return config_to_hf


def _dense(take, name: str, n_in: int | None, n_out: int | None) -> dict[str, np.ndarray]:
  """An nn.Linear [out, in] as a flax Dense {kernel [in, out], bias}."""
  return {'kernel': take(f'{name}.weight', (n_out, n_in)).T, 'bias': take(f'{name}.bias', (n_out,))}


def _params_from_hf(architecture: str):
  def params_from_hf(tensors: core.Tensors, config) -> Any:
    m = config.model
    V, D, H, F = m.vocab_size, m.width, m.heads, m.ffn or 4 * m.width
    K, L = D // H, m.get('positions', 0) or config.data.seq_len
    take = core.Taker(tensors, architecture)
    e = 'bert.embeddings'
    bert = {'embed': {'embedding': take(f'{e}.word_embeddings.weight', (V, D))},
            'pos': {'pos': take(f'{e}.position_embeddings.weight', (L, D))},
            'segment': {'segment': take(f'{e}.token_type_embeddings.weight', (2, D))},
            'ln': take.layer_norm(f'{e}.LayerNorm', D),
            'pooler': _dense(take, 'bert.pooler.dense', D, D)}
    for n in range(m.layers):
      b = f'bert.encoder.layer.{n}'
      qkv = [_dense(take, f'{b}.attention.self.{x}', D, D) for x in ('query', 'key', 'value')]
      out = _dense(take, f'{b}.attention.output.dense', D, D)
      bert[f'blocks_{n}'] = {
          'attn': {'qkv': {'kernel': np.stack([p['kernel'] for p in qkv], 1).reshape(D, 3, H, K),
                           'bias': np.stack([p['bias'] for p in qkv]).reshape(3, H, K)},
                   'out': {'kernel': out['kernel'].reshape(H, K, D), 'bias': out['bias']}},
          'ln_attn': take.layer_norm(f'{b}.attention.output.LayerNorm', D),
          'mlp': {'fc': _dense(take, f'{b}.intermediate.dense', D, F),
                  'proj': _dense(take, f'{b}.output.dense', F, D)},
          'ln_mlp': take.layer_norm(f'{b}.output.LayerNorm', D)}
    params = {'bert': bert}
    if architecture == PRETRAIN:
      params.update({'mlm_dense': _dense(take, 'cls.predictions.transform.dense', D, D),
                     'mlm_ln': take.layer_norm('cls.predictions.transform.LayerNorm', D),
                     'mlm_bias': take('cls.predictions.bias', (V,)),
                     'nsp': _dense(take, 'cls.seq_relationship', D, 2)})
    else:
      params['classifier'] = _dense(take, 'classifier', D, m.get('classes', None))
    take.done()
    return params
  return params_from_hf


def _linear(prefix: str, dense) -> core.Tensors:
  return {f'{prefix}.weight': np.asarray(dense['kernel'], np.float32).T,
          f'{prefix}.bias': np.asarray(dense['bias'], np.float32)}


def _layer_norm(prefix: str, ln) -> core.Tensors:
  return {f'{prefix}.weight': np.asarray(ln['scale'], np.float32),
          f'{prefix}.bias': np.asarray(ln['bias'], np.float32)}


def params_to_hf(params, config) -> core.Tensors:
  a = lambda x: np.asarray(x, np.float32)
  bert, e = params['bert'], 'bert.embeddings'
  out = {f'{e}.word_embeddings.weight': a(bert['embed']['embedding']),
         f'{e}.position_embeddings.weight': a(bert['pos']['pos']),
         f'{e}.token_type_embeddings.weight': a(bert['segment']['segment']),
         **_layer_norm(f'{e}.LayerNorm', bert['ln']),
         **_linear('bert.pooler.dense', bert['pooler'])}
  for n in range(config.model.layers):
    blk, b = bert[f'blocks_{n}'], f'bert.encoder.layer.{n}'
    qkv, o = blk['attn']['qkv'], blk['attn']['out']
    D = o['bias'].shape[0]
    for i, x in enumerate(('query', 'key', 'value')):
      out.update(_linear(f'{b}.attention.self.{x}', {'kernel': a(qkv['kernel'])[:, i].reshape(D, D),
                                                      'bias': a(qkv['bias'])[i].reshape(D)}))
    out.update({**_linear(f'{b}.attention.output.dense', {'kernel': a(o['kernel']).reshape(D, D),
                                                          'bias': o['bias']}),
                **_layer_norm(f'{b}.attention.output.LayerNorm', blk['ln_attn']),
                **_linear(f'{b}.intermediate.dense', blk['mlp']['fc']),
                **_linear(f'{b}.output.dense', blk['mlp']['proj']),
                **_layer_norm(f'{b}.output.LayerNorm', blk['ln_mlp'])})
  if 'nsp' in params:
    out.update({**_linear('cls.predictions.transform.dense', params['mlm_dense']),
                **_layer_norm('cls.predictions.transform.LayerNorm', params['mlm_ln']),
                'cls.predictions.bias': a(params['mlm_bias']),
                **_linear('cls.seq_relationship', params['nsp'])})
  else:
    out.update(_linear('classifier', params['classifier']))
  return out


CONVERTERS = {arch: core.Converter(arch, 'bert', 'bert', _config_from_hf(arch), _config_to_hf(arch),
                                   _params_from_hf(arch), params_to_hf)
              for arch in (PRETRAIN, CLASSIFY)}
