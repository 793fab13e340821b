"""The model registry: every family's entry, the objective it answers, the compute dtype."""

import jax
import jax.numpy as jnp

from experiments.configs.base import get_base_config
from seqmodels.models import registry
from seqmodels.train import steps


def test_auto_compute_dtype_is_bfloat16_on_accelerators_and_float32_on_cpu(monkeypatch):
  assert get_base_config().train.dtype == 'auto'
  assert registry.compute_dtype('auto') == jnp.float32  # the tests run on CPU
  assert registry.compute_dtype('bfloat16') == jnp.bfloat16
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  assert registry.compute_dtype('auto') == jnp.bfloat16
  assert registry.compute_dtype('float32') == jnp.float32


def test_every_entry_names_task_kinds_and_an_objective_the_steps_know():
  for name, entry in registry.MODELS.items():
    assert entry.kinds, name
    for kind in entry.kinds:
      assert registry.objective(name, kind) in steps.OBJECTIVES, (name, kind)
    assert entry.trained_by in ('gradient', 'counting'), name
    assert entry.tie_embeddings in ('option', 'always', 'never'), name
  assert (registry.objective('elmo', 'lm') == 'bilm' and
          registry.objective('elmo_classifier', 'classify') == 'classify')
  assert registry.objective('gpt', 'lm') == 'lm'


def test_language_models_generate_and_translation_models_decode():
  for name, entry in registry.MODELS.items():
    assert (entry.generate is not None) == ('lm' in entry.kinds), name
    assert (entry.decode_step is not None) == ('seq2seq' in entry.kinds), name
    after = {'seq2seq': ('translation',), 'word2vec': ('word_vectors',)}
    assert entry.after_training == next((after[k] for k in entry.kinds if k in after), ()), name
