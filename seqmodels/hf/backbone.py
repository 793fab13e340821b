"""What the converters of the `lm` backbone's families share (llama, mamba, mamba2,
recurrentgemma): a state dict read tensor by tensor, whose missing or misshapen tensors are one
line; torch's layouts beside flax's; the attention and gated MLP both Llama and RecurrentGemma
write; and the backbone config a seqmodels run's config builds.

torch's nn.Linear keeps its weight as [out, in] and flax's Dense its kernel as [in, out]: every
linear map is a transpose, so an import followed by an export gives back the same bits.
"""

from __future__ import annotations

import types
from typing import Any

import jax.numpy as jnp
import numpy as np

from seqmodels import errors
from seqmodels.hf import core
from seqmodels.models import lm


class StateDict:
  """A checkpoint's tensors, taken one by one with the shape the config implies; `done()` raises
  one line naming the first few missing, misshapen and unused tensors."""

  def __init__(self, tensors: core.Tensors, architecture: str, ignore: tuple[str, ...] = ()):
    self.tensors, self.architecture, self.ignore = tensors, architecture, ignore
    self.used: set[str] = set()
    self.missing: list[str] = []
    self.misshapen: list[str] = []

  def take(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The tensor `name` as float32, or zeros of `shape` (recorded) where it is absent or not of
    that shape."""
    self.used.add(name)
    if name not in self.tensors:
      self.missing.append(f'{name} {list(shape)}')
      return np.zeros(shape, np.float32)
    t = np.asarray(self.tensors[name], np.float32)
    if t.shape != tuple(shape):
      self.misshapen.append(f'{name} is {list(t.shape)}, not {list(shape)}')
      return np.zeros(shape, np.float32)
    return t

  def linear(self, name: str, n_in: int, n_out: int) -> np.ndarray:
    """nn.Linear's weight `name` ([out, in]) as a flax kernel [in, out]."""
    return self.take(name, (n_out, n_in)).T

  def done(self) -> None:
    few = lambda names: ', '.join(names[:3]) + (f' and {len(names) - 3} more' if len(names) > 3
                                                else '')
    unused = sorted(n for n in self.tensors if n not in self.used and
                    not any(n.endswith(i) for i in self.ignore))
    problems = [f'{len(v)} {k}: {few(v)}' for k, v in (
        ('missing', self.missing), ('misshapen', self.misshapen),
        ('unexpected', unused)) if v]
    if problems:
      raise errors.CheckpointError(
          f'{self.architecture} checkpoint does not match its config.json ({"; ".join(problems)}): '
          'point at the directory save_pretrained wrote for this config')


def linear_out(kernel: Any) -> np.ndarray:
  """A flax kernel [in, out] as nn.Linear's weight [out, in]."""
  return np.ascontiguousarray(np.asarray(kernel, np.float32).T)


def array(a: Any) -> np.ndarray:
  return np.asarray(a, np.float32)


# Overrides' field for the vocabulary the weights were made for (the framework's core.VOCAB)
VOCAB = 'model.vocab_size'


def backbone(config) -> lm.LMConfig:
  """The LMConfig a seqmodels run's config builds: its vocabulary config.model.vocab_size (an
  imported model's, or the one export fills in from the run's data), else the data's."""
  vocab = config.model.get('vocab_size', 0) or config.data.vocab_size
  data = types.SimpleNamespace(vocab_size=vocab, seq_len=config.data.seq_len)
  return lm.config_from(config.model, data, jnp.float32)


def refuse(ok: bool, architecture: str, field: str, value: Any, supported: str) -> None:
  """One line for a config.json field seqmodels cannot represent: its value and what it can."""
  errors.check(ok, f'{architecture}: config.json {field}={value!r} has no seqmodels counterpart '
               f'(seqmodels supports {supported})')


def refuse_export(ok: bool, architecture: str, what: str) -> None:
  """One line for a seqmodels run that the architecture cannot represent."""
  errors.check(ok, f'{architecture} cannot represent this run: {what}')


def rope_theta(h: core.HFConfig, architecture: str) -> float:
  """RoPE's theta from config.json, as transformers 5 (rope_parameters) or 4 (rope_theta,
  rope_scaling) writes it; a scaled RoPE (linear, dynamic, yarn, llama3, ...) is refused."""
  rope = h.get('rope_parameters') or {}
  scaling = h.get('rope_scaling') or {}
  kind = rope.get('rope_type', scaling.get('rope_type', scaling.get('type', 'default')))
  refuse(kind == 'default', architecture, 'rope_type', kind, "RoPE unscaled ('default')")
  return float(rope.get('rope_theta', h.get('rope_theta', 10000.0)))


def attention_from_hf(sd: StateDict, prefix: str, m: lm.LMConfig, qkv_bias: bool,
                      out_bias: bool) -> dict:
  """q/k/v/o_proj of `prefix` as the attention mixer's parameters: 'qkv' [D, 3, H, K] with as many
  key/value heads as query heads, else 'query' [D, H, K] and 'kv' [D, 2, G, K]; 'out' [H, K, D].
  Head h is rows h K .. (h + 1) K of q_proj on both sides: transformers' Llama checkpoints already
  hold the rotate-half layout of seqmodels.layers.attention.rotary (Meta's interleaved pairs are
  permuted by transformers' conversion script), so no permutation is needed."""
  D, H = m.mixer.D, m.mixer.H
  G, K = m.mixer.kv_heads or H, D // H
  q = sd.linear(f'{prefix}.q_proj.weight', D, H * K).reshape(D, H, K)
  k, v = (sd.linear(f'{prefix}.{n}_proj.weight', D, G * K).reshape(D, G, K) for n in 'kv')
  qb = sd.take(f'{prefix}.q_proj.bias', (H * K,)).reshape(H, K) if qkv_bias else None
  kb, vb = ((sd.take(f'{prefix}.{n}_proj.bias', (G * K,)).reshape(G, K) for n in 'kv')
            if qkv_bias else (None, None))
  out = {'kernel': sd.linear(f'{prefix}.o_proj.weight', H * K, D).reshape(H, K, D)}
  if out_bias:
    out['bias'] = sd.take(f'{prefix}.o_proj.bias', (D,))
  with_bias = lambda kernel, bias: {'kernel': kernel, **({'bias': bias} if qkv_bias else {})}
  if G == H:
    params = {'qkv': with_bias(np.stack([q, k, v], 1),
                               np.stack([qb, kb, vb]) if qkv_bias else None)}
  else:
    params = {'query': with_bias(q, qb),
              'kv': with_bias(np.stack([k, v], 1), np.stack([kb, vb]) if qkv_bias else None)}
  return {'attn': {**params, 'out': out}}


def attention_to_hf(p: dict, prefix: str) -> core.Tensors:
  """attention_from_hf, backwards."""
  a = p['attn']
  if 'qkv' in a:
    kernels = [array(a['qkv']['kernel'])[:, i] for i in range(3)]
    biases = [array(a['qkv']['bias'])[i] for i in range(3)] if 'bias' in a['qkv'] else None
  else:
    kv = array(a['kv']['kernel'])
    kernels = [array(a['query']['kernel']), kv[:, 0], kv[:, 1]]
    biases = ([array(a['query']['bias']), *array(a['kv']['bias'])] if 'bias' in a['query']
              else None)
  out = {}
  for n, kernel in zip('qkv', kernels):
    out[f'{prefix}.{n}_proj.weight'] = linear_out(kernel.reshape(kernel.shape[0], -1))
  for n, bias in zip('qkv', biases or ()):
    out[f'{prefix}.{n}_proj.bias'] = bias.reshape(-1)
  o = array(a['out']['kernel'])
  out[f'{prefix}.o_proj.weight'] = linear_out(o.reshape(-1, o.shape[-1]))
  if 'bias' in a['out']:
    out[f'{prefix}.o_proj.bias'] = array(a['out']['bias'])
  return out


def gated_mlp_from_hf(sd: StateDict, prefix: str, D: int, F: int, bias: bool) -> dict:
  """down(act(gate(x)) * up(x)) as seqmodels' gated Mlp: 'fc' [D, 2, F] (gate, then up), 'proj'."""
  gate, up = (sd.linear(f'{prefix}.{n}_proj.weight', D, F) for n in ('gate', 'up'))
  fc = {'kernel': np.stack([gate, up], 1)}
  proj = {'kernel': sd.linear(f'{prefix}.down_proj.weight', F, D)}
  if bias:
    fc['bias'] = np.stack([sd.take(f'{prefix}.{n}_proj.bias', (F,)) for n in ('gate', 'up')])
    proj['bias'] = sd.take(f'{prefix}.down_proj.bias', (D,))
  return {'fc': fc, 'proj': proj}


def gated_mlp_to_hf(p: dict, prefix: str) -> core.Tensors:
  """gated_mlp_from_hf, backwards."""
  fc = array(p['fc']['kernel'])
  out = {f'{prefix}.gate_proj.weight': linear_out(fc[:, 0]),
         f'{prefix}.up_proj.weight': linear_out(fc[:, 1]),
         f'{prefix}.down_proj.weight': linear_out(p['proj']['kernel'])}
  if 'bias' in p['fc']:
    bias = array(p['fc']['bias'])
    out.update({f'{prefix}.gate_proj.bias': bias[0], f'{prefix}.up_proj.bias': bias[1],
                f'{prefix}.down_proj.bias': array(p['proj']['bias'])})
  return out
