"""The `lm` backbone's Hugging Face families (seqmodels/hf/{llama,mamba,mamba2,recurrentgemma}.py)
against transformers on the same weights: a tiny randomly initialised transformers model, imported,
gives its logits within float32 tolerance; exported and loaded into a fresh transformers model, the
same logits again; the round trip seqmodels -> HF -> seqmodels is exact; and decoding the imported
model from its caches gives the training form's logits. Nothing is downloaded."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from experiments.configs.base import get_base_config
from seqmodels import errors
from seqmodels.hf import llama, mamba, mamba2, recurrentgemma
from seqmodels.models import lm, registry

V, B, T = 19, 2, 11


def _perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
  """Every parameter moved off its init (norm weights of 1, zero biases, equal A_logs would hide a
  swapped or dropped tensor)."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for p in model.parameters():
      p.add_(0.2 * torch.randn(p.shape, generator=g))
  return model.eval()


def _seqmodels_config(overrides):
  c = get_base_config()
  c.data.seq_len = T
  for key, value in overrides.items():
    section, field = key.split('.')
    c[section][field] = value
  return c


def _logits(hf_model, tokens) -> np.ndarray:
  with torch.no_grad():
    return hf_model(torch.from_numpy(np.asarray(tokens))).logits.numpy()


def _compare(hf_model, converter, seed: int = 1):
  """Import `hf_model`, check logits, export, reload and round trip; returns (model, params)."""
  hf_model = _perturbed(hf_model, seed)
  h = hf_model.config.to_dict()
  overrides = converter.config_from_hf(h)
  config = _seqmodels_config(overrides)
  tensors = {k: v.numpy() for k, v in hf_model.state_dict().items()}
  params = converter.params_from_hf(tensors, config)
  model = registry.build(config.model, types.SimpleNamespace(vocab_size=V, seq_len=T, kind='lm',
                                                             meta={}), jnp.float32)
  tokens = np.random.default_rng(seed).integers(0, V, (B, T))
  want = _logits(hf_model, tokens)
  got = np.asarray(jax.jit(lambda p, x: model.apply({'params': p}, x))(params, tokens))
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())

  exported = converter.params_to_hf(params, config)
  hf_config = converter.config_to_hf(config)
  assert hf_config['architectures'] == [converter.architecture]
  assert converter.config_from_hf(hf_config) == overrides  # the config round trip
  fresh = type(hf_model)(type(hf_model.config).from_dict(hf_config)).eval()
  missing, unexpected = fresh.load_state_dict(
      {k: torch.from_numpy(v) for k, v in exported.items()}, strict=False)
  assert not unexpected and set(missing) <= {'lm_head.weight'}  # tied: save_pretrained omits it
  if missing:
    fresh.tie_weights()
  np.testing.assert_array_equal(_logits(fresh, tokens), want)
  again = converter.params_from_hf(exported, config)
  jax.tree.map(np.testing.assert_array_equal, again, params)  # the round trip is exact
  return model, params, tokens, got


def _decodes_as_it_trains(model, params, tokens, full):
  """One token at a time from the caches (one compiled step): the training form's logits."""
  decode = jax.jit(lambda p, cache, x, position: model.apply(
      {'params': p, 'cache': cache}, x, decode_position=position, mutable=['cache']))
  cache, steps = lm.init_cache(model, B), []
  for t in range(T):
    logits, mutated = decode(params, cache, tokens[:, t:t + 1], jnp.int32(t))
    cache = mutated['cache']
    steps.append(logits)
  np.testing.assert_allclose(jnp.concatenate(steps, 1), full, rtol=1e-4, atol=1e-4)


def _llama(**fields):
  return transformers.LlamaForCausalLM(transformers.LlamaConfig(**{
      'vocab_size': V, 'hidden_size': 16, 'intermediate_size': 24, 'num_hidden_layers': 1,
      'num_attention_heads': 4, 'num_key_value_heads': 2, 'rms_norm_eps': 0.05,
      'rope_parameters': {'rope_type': 'default', 'rope_theta': 300.0},
      'tie_word_embeddings': False, **fields}))


def test_llama_grouped_query_untied_matches_transformers():
  torch.manual_seed(0)
  model, params, _, _ = _compare(_llama(attention_bias=True, mlp_bias=True),
                                 llama.CONVERTERS['LlamaForCausalLM'])
  c = model.cfg
  # The details a re-implementation gets wrong, read from the checkpoint: RoPE's theta (a wrong
  # one, or the interleaved pairing, moves the logits), the RMSNorm epsilon, two queries per
  # key/value head, the untied head; and the biases Llama may have.
  assert (c.mixer.rope_base, c.norm_eps, c.mixer.kv_heads, c.tied) == (300.0, 0.05, 2, False)
  assert params['block0']['mixer']['attn']['kv']['kernel'].shape == (16, 2, 2, 4)
  assert params['block0']['mlp']['fc']['bias'].shape == (2, 24) and params['head'].shape == (16, V)


def _mamba(**fields):
  return transformers.MambaForCausalLM(transformers.MambaConfig(**{
      'vocab_size': V, 'hidden_size': 16, 'state_size': 4, 'num_hidden_layers': 1, 'expand': 2,
      'conv_kernel': 3, 'layer_norm_epsilon': 0.05, 'use_mambapy': False, **fields}))


def test_mamba_matches_transformers_with_its_dt_a_log_and_conv_layout():
  torch.manual_seed(2)
  hf_model = _mamba()
  model, params, _, _ = _compare(hf_model, mamba.CONVERTERS['MambaForCausalLM'])
  mixer, theirs = params['block0']['mixer'], hf_model.backbone.layers[0].mixer
  # conv1d [E, 1, K] -> [K, E]: tap j multiplies x_{t - (K - 1 - j)} on both sides
  np.testing.assert_array_equal(mixer['conv_kernel'][:, 5], theirs.conv1d.weight[5, 0].detach())
  # A_log, not A (A = -exp(A_log)); dt_proj keeps its bias, softplus applied after it
  np.testing.assert_array_equal(mixer['A_log'], theirs.A_log.detach())
  np.testing.assert_array_equal(mixer['dt_proj']['bias'], theirs.dt_proj.bias.detach())
  assert model.cfg.tied and model.cfg.mixers == ('mamba',) and model.cfg.mlp == 'none'


def _mamba2(**fields):
  return transformers.Mamba2ForCausalLM(transformers.Mamba2Config(**{
      'vocab_size': V, 'hidden_size': 16, 'num_heads': 4, 'head_dim': 8, 'state_size': 4,
      'n_groups': 2, 'num_hidden_layers': 1, 'expand': 2, 'conv_kernel': 3, 'chunk_size': 4,
      'layer_norm_epsilon': 0.05, 'tie_word_embeddings': True, **fields}))


def test_mamba2_with_groups_matches_transformers():
  torch.manual_seed(3)
  model, _, _, _ = _compare(_mamba2(), mamba2.CONVERTERS['Mamba2ForCausalLM'])
  # two groups of two heads, each with its B and C, and the gated norm over each group's channels
  assert (model.cfg.mixer.groups, model.cfg.mixer.norm_eps) == (2, 0.05)


def _recurrentgemma(**fields):
  return transformers.RecurrentGemmaForCausalLM(transformers.RecurrentGemmaConfig(**{
      'vocab_size': V, 'hidden_size': 32, 'intermediate_size': 40, 'num_hidden_layers': 3,
      'num_attention_heads': 4, 'num_key_value_heads': 1, 'lru_width': 24,
      'attention_window_size': 4, 'conv1d_width': 3, 'logits_soft_cap': 3.0, 'rms_norm_eps': 0.05,
      'block_types': ['recurrent', 'attention'], **fields}))


def test_recurrentgemma_matches_transformers_block_pattern_and_all_and_decodes():
  torch.manual_seed(4)
  model, params, tokens, logits = _compare(
      _recurrentgemma(), recurrentgemma.CONVERTERS['RecurrentGemmaForCausalLM'])
  c = model.cfg
  # block_types repeated to the layers; a local window of 4 (T = 11), one key/value head, RoPE on
  # half of each head, Gemma's 1 + w norm, sqrt(32) in bfloat16, and logits capped at 3
  assert c.mixers == ('rglru', 'attention', 'rglru') and c.mixer.window == 4
  assert (c.mixer.kv_heads, c.mixer.rope_fraction, c.norm, c.logit_cap) == (1, 0.5, 'rmsnorm1p', 3)
  assert c.embed_scale == 5.65625 and np.abs(logits).max() < 3
  assert params['block0']['mixer']['gate_a_kernel'].shape == (4, 6, 6)  # lru_width 24, 4 blocks
  _decodes_as_it_trains(model, params, tokens, logits)


@pytest.mark.parametrize('converter,hf,change,message', [
    (llama, _llama, {'hidden_act': 'relu'}, "LlamaForCausalLM: config.json hidden_act='relu' has "
     'no seqmodels counterpart \\(seqmodels supports silu, swish, gelu_pytorch_tanh, gelu_new\\)'),
    (llama, _llama, {'rope_parameters': {'rope_type': 'linear', 'rope_theta': 1e4, 'factor': 2.0}},
     "rope_type='linear' has no seqmodels counterpart"),
    (llama, _llama, {'head_dim': 8}, 'head_dim=8 has no seqmodels counterpart'),
    (llama, _llama, {'attention_bias': True}, 'mlp_bias=False has no seqmodels counterpart'),
    (mamba, _mamba, {'time_step_rank': 3}, 'time_step_rank=3 has no seqmodels counterpart'),
    (mamba, _mamba, {'use_conv_bias': False}, 'use_conv_bias=False has no seqmodels counterpart'),
    (recurrentgemma, _recurrentgemma, {'block_types': ['recurrent', 'mlp']},
     "block_types=\\['recurrent', 'mlp'\\] has no seqmodels counterpart \\(seqmodels supports "
     'recurrent, attention\\)'),
    (mamba2, _mamba2, {'time_step_limit': [0.0, 0.5]},
     'time_step_limit=\\[0.0, 0.5\\] has no seqmodels counterpart'),
])
def test_config_fields_seqmodels_cannot_represent_are_one_line(converter, hf, change, message):
  h = hf().config.to_dict()
  h.update(change)
  (converter_,) = converter.CONVERTERS.values()
  with pytest.raises(errors.ConfigError, match=message):
    converter_.config_from_hf(h)


def test_missing_and_misshapen_tensors_are_named_in_one_line():
  hf_model = _llama()
  converter = llama.CONVERTERS['LlamaForCausalLM']
  config = _seqmodels_config(converter.config_from_hf(hf_model.config.to_dict()))
  tensors = {k: v.numpy() for k, v in hf_model.state_dict().items()}
  del tensors['model.layers.0.mlp.up_proj.weight']
  tensors['model.norm.weight'] = np.zeros(7, np.float32)
  tensors['model.extra'] = np.zeros(1, np.float32)
  with pytest.raises(errors.CheckpointError) as e:
    converter.params_from_hf(tensors, config)
  assert str(e.value) == (
      'LlamaForCausalLM checkpoint does not match its config.json (1 missing: '
      'model.layers.0.mlp.up_proj.weight [24, 16]; 1 misshapen: model.norm.weight is [7], not '
      '[16]; 1 unexpected: model.extra): point at the directory save_pretrained wrote for this '
      'config')
