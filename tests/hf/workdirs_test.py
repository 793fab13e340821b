"""Hugging Face interop against the reference: tiny random GPT-2 and BERT models made by
transformers in the test (no download), imported, compared logit for logit with PyTorch, exported
back and loaded by transformers, fine-tuned in between; and the one-line errors."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (AutoModelForCausalLM, BertConfig, BertForPreTraining,
                          BertForSequenceClassification, GPT2Config, GPT2LMHeadModel)

from experiments.configs import hf as hf_config
from seqmodels import errors
from seqmodels.data import core
from seqmodels.hf import __main__ as hf_cli
from seqmodels.hf import workdirs
from seqmodels.models import registry
from seqmodels.train import checkpoint, loop

ATOL = 1e-5  # float32, same weights, different kernels
TOKENS_BxT = np.random.RandomState(0).randint(1, 40, (2, 12))


def _save(model, directory):
  model.eval().save_pretrained(directory)
  return directory


def _ours(workdir, inputs, kind='lm', classes=2):
  """The imported run's model applied to `inputs` (config.json and checkpoint as written)."""
  with open(os.path.join(workdir, 'config.json')) as f:
    import ml_collections
    config = ml_collections.ConfigDict(json.load(f))
  _, state = checkpoint.restore_saved(workdir)
  data = core.Data(kind, config.model.vocab_size, config.data.seq_len,
                   meta={'num_classes': classes})
  model = registry.build(config.model, data, jnp.float32)
  apply = jax.jit(lambda params, *xs: model.apply({'params': params}, *xs))
  return jax.tree.map(np.asarray, apply(state['params'], *map(jnp.asarray, inputs)))


@pytest.fixture(scope='module')
def gpt2(tmp_path_factory):
  torch.manual_seed(0)
  config = GPT2Config(vocab_size=40, n_positions=24, n_embd=16, n_layer=2, n_head=2,
                      layer_norm_epsilon=1e-5, bos_token_id=None, eos_token_id=None)
  return _save(GPT2LMHeadModel(config), str(tmp_path_factory.mktemp('gpt2')))


def test_gpt2_logits_match_transformers_and_round_trip_exactly(gpt2, tmp_path):
  config = workdirs.import_checkpoint(gpt2, str(tmp_path / 'run'))
  assert (config.model.name, config.model.positions, config.model.norm_eps) == ('gpt', 24, 1e-5)
  assert config.model.activation == 'gelu'  # gelu_new, the tanh approximation
  reference = GPT2LMHeadModel.from_pretrained(gpt2).eval()
  with torch.no_grad():
    expected = reference(torch.as_tensor(TOKENS_BxT)).logits.numpy()
  ours = _ours(str(tmp_path / 'run'), [TOKENS_BxT])
  np.testing.assert_allclose(ours, expected, atol=ATOL)
  # export: transformers loads it (the head tied to wte, none saved), same logits, same tensors
  workdirs.export_run(str(tmp_path / 'run'), str(tmp_path / 'out'))
  saved = load_file(str(tmp_path / 'out' / 'model.safetensors'))
  original = load_file(os.path.join(gpt2, 'model.safetensors'))
  assert 'lm_head.weight' not in saved and set(saved) == set(original)
  for name, value in original.items():
    np.testing.assert_array_equal(saved[name], value, err_msg=name)
  again = AutoModelForCausalLM.from_pretrained(str(tmp_path / 'out')).eval()
  assert again.lm_head.weight.data_ptr() == again.transformer.wte.weight.data_ptr()
  with torch.no_grad():
    np.testing.assert_allclose(again(torch.as_tensor(TOKENS_BxT)).logits.numpy(), expected,
                               atol=ATOL)
  # seqmodels -> HF -> seqmodels is exact
  workdirs.import_checkpoint(str(tmp_path / 'out'), str(tmp_path / 'back'))
  first, back = (checkpoint.restore_saved(str(tmp_path / d))[1]['params'] for d in ('run', 'back'))
  jax.tree.map(np.testing.assert_array_equal, first, back)


def test_bert_pretraining_and_classifier_match_transformers(tmp_path):
  torch.manual_seed(0)
  sizes = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=32, max_position_embeddings=24)
  tokens = TOKENS_BxT.copy()
  tokens[1, 9:] = 0  # [PAD] at the end of row 1: attention_mask for transformers
  segments = np.zeros_like(tokens)
  segments[:, 6:] = 1  # token types: sentence B
  torch_inputs = dict(input_ids=torch.as_tensor(tokens), token_type_ids=torch.as_tensor(segments),
                      attention_mask=torch.as_tensor(tokens != 0))
  real = tokens != 0
  reference = BertForPreTraining(BertConfig(**sizes)).eval()
  pretrain = _save(reference, str(tmp_path / 'pre'))
  config = workdirs.import_checkpoint(pretrain, str(tmp_path / 'pre_run'))
  assert (config.model.activation, config.model.norm_eps) == ('gelu_erf', 1e-12)
  mlm, nsp = _ours(str(tmp_path / 'pre_run'), [tokens, segments], kind='mlm')
  with torch.no_grad():
    expected = reference(**torch_inputs)
  np.testing.assert_allclose(mlm[real], expected.prediction_logits.numpy()[real], atol=ATOL)
  np.testing.assert_allclose(nsp, expected.seq_relationship_logits.numpy(), atol=ATOL)

  reference = BertForSequenceClassification(BertConfig(**sizes, num_labels=3)).eval()
  classify = _save(reference, str(tmp_path / 'cls'))
  workdirs.import_checkpoint(classify, str(tmp_path / 'cls_run'))
  logits = _ours(str(tmp_path / 'cls_run'), [tokens, segments], kind='classify', classes=3)
  with torch.no_grad():
    expected = reference(**torch_inputs)
  np.testing.assert_allclose(logits, expected.logits.numpy(), atol=ATOL)
  # exported, the pooler, token types and heads load back into transformers unchanged
  for run, cls in (('pre_run', BertForPreTraining), ('cls_run', BertForSequenceClassification)):
    workdirs.export_run(str(tmp_path / run), str(tmp_path / f'{run}_out'))
    source = pretrain if run == 'pre_run' else classify
    original, saved = (load_file(os.path.join(d, 'model.safetensors'))
                       for d in (source, str(tmp_path / f'{run}_out')))
    assert set(saved) == set(original)
    for name, value in original.items():
      np.testing.assert_array_equal(saved[name], value, err_msg=name)
    cls.from_pretrained(str(tmp_path / f'{run}_out'))


def _edited(source, directory, config_edit=None, tensors_edit=None):
  shutil.copytree(source, directory)
  if config_edit:
    with open(os.path.join(directory, 'config.json')) as f:
      config = json.load(f)
    config_edit(config)
    with open(os.path.join(directory, 'config.json'), 'w') as f:
      json.dump(config, f)
  if tensors_edit:
    path = os.path.join(directory, 'model.safetensors')
    tensors = load_file(path)
    tensors_edit(tensors)
    save_file(tensors, path, metadata={'format': 'pt'})
  return directory


def _tokenizer(vocab_size, directory):
  tokenizer = Tokenizer(models.WordLevel({f'w{i}': i for i in range(vocab_size)}, unk_token='w0'))
  tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
  tokenizer.save(os.path.join(directory, 'tokenizer.json'))


BAD = [  # (config.json edit, tensors edit, words the one line must hold)
    (lambda c: c.update(architectures=['T5ForConditionalGeneration']), None,
     ["'T5ForConditionalGeneration'", 'GPT2LMHeadModel', 'BertForPreTraining']),
    (lambda c: c.update(activation_function='silu'), None,
     ['activation_function=', "'silu'", 'gelu_new']),
    (None, lambda t: t.pop('transformer.h.1.mlp.c_fc.bias'),
     ['lacks 1 tensors', 'transformer.h.1.mlp.c_fc.bias [64]']),
    (lambda c: c.update(n_inner=32), None,
     ['other shapes', 'transformer.h.0.mlp.c_fc.weight is [16, 64], not [16, 32]']),
    (None, lambda t: t.update({'transformer.h.0.attn.extra.weight': np.ones((3, 2), np.float32)}),
     ['1 tensors seqmodels does not know', 'transformer.h.0.attn.extra.weight [3, 2]']),
    (lambda c: c.update(scale_attn_weights=False), None, ['scale_attn_weights=False']),
]


@pytest.mark.parametrize('config_edit, tensors_edit, words', BAD)
def test_bad_checkpoints_are_one_line(gpt2, tmp_path, config_edit, tensors_edit, words):
  source = _edited(gpt2, str(tmp_path / 'ckpt'), config_edit, tensors_edit)
  with pytest.raises(errors.ConfigError) as e:
    workdirs.import_checkpoint(source, str(tmp_path / 'run'))
  message = str(e.value)
  assert '\n' not in message and all(w in message for w in words), message


def test_sharded_and_bfloat16_checkpoints_read_and_pytorch_only_weights_are_named(gpt2, tmp_path):
  GPT2LMHeadModel.from_pretrained(gpt2).save_pretrained(str(tmp_path / 'sharded'),
                                                        max_shard_size='8KB')
  assert os.path.isfile(tmp_path / 'sharded' / 'model.safetensors.index.json')
  workdirs.import_checkpoint(str(tmp_path / 'sharded'), str(tmp_path / 'a'))
  workdirs.import_checkpoint(gpt2, str(tmp_path / 'b'))
  a, b = (checkpoint.restore_saved(str(tmp_path / d))[1]['params'] for d in 'ab')
  jax.tree.map(np.testing.assert_array_equal, a, b)
  # bfloat16 weights (numpy has no such type) read as float32, unchanged
  GPT2LMHeadModel.from_pretrained(gpt2).to(torch.bfloat16).save_pretrained(str(tmp_path / 'bf16'))
  workdirs.import_checkpoint(str(tmp_path / 'bf16'), str(tmp_path / 'h'))
  h = checkpoint.restore_saved(str(tmp_path / 'h'))[1]['params']
  rounded = jax.tree.map(lambda x: np.asarray(jnp.asarray(x, jnp.bfloat16), np.float32), b)
  jax.tree.map(np.testing.assert_array_equal, h, rounded)
  bin_only = _edited(gpt2, str(tmp_path / 'bin'))
  os.rename(os.path.join(bin_only, 'model.safetensors'),
            os.path.join(bin_only, 'pytorch_model.bin'))
  with pytest.raises(errors.ConfigError,
                     match=r'holds no \*.safetensors \(only pytorch_model.bin\)'):
    workdirs.import_checkpoint(bin_only, str(tmp_path / 'c'))


def test_a_tokenizer_of_another_vocabulary_is_refused(gpt2, tmp_path):
  source = _edited(gpt2, str(tmp_path / 'ckpt'))
  _tokenizer(39, source)
  with pytest.raises(errors.ConfigError, match='has 39 tokens and the model a vocabulary of 40'):
    workdirs.import_checkpoint(source, str(tmp_path / 'run'))


def test_imported_gpt2_fine_tunes_on_text_with_its_tokenizer_and_exports(gpt2, tmp_path, capsys):
  """import (the CLI) -> a short fine-tuning run on local text, its ids from the checkpoint's
  tokenizer.json -> export: transformers scores the fine-tuned model as seqmodels does."""
  source = _edited(gpt2, str(tmp_path / 'ckpt'))
  _tokenizer(40, source)
  rng = np.random.RandomState(1)
  text = tmp_path / 'text.txt'
  text.write_text('\n'.join(' '.join(f'w{i}' for i in rng.randint(1, 40, 12)) for _ in range(60)))
  hf_cli.main(['import', source, f'--workdir={tmp_path / "imported"}', f'--text={text}',
               '--seq_len=16'])
  assert 'fine-tune it' in capsys.readouterr().out
  c = hf_config.get_config(str(tmp_path / 'imported'))
  c.data.data_dir = str(tmp_path / 'tfds')
  c.train.num_steps, c.train.eval_every, c.train.checkpoint_every = 3, 3, 3
  c.optim.lr, c.optim.warmup_steps = 1e-2, 1
  c.model.vocab_size = 0  # as a run trained here from scratch: export reads the data's vocabulary
  result = loop.train_and_evaluate(c, str(tmp_path / 'tuned'))
  assert result['status'] == 'done' and result['step'] == 3
  before = workdirs.score(str(tmp_path / 'imported'))
  after = workdirs.score(str(tmp_path / 'tuned'))
  for scores in (before, after):  # every validation window
    assert scores['seqmodels'] == pytest.approx(scores['transformers'], abs=1e-5)
  assert after['seqmodels'] == pytest.approx(result['eval']['loss'], abs=1e-5)
  assert after['seqmodels'] < before['seqmodels']  # fine-tuning on the text lowers its loss
  assert os.path.isfile(tmp_path / 'tuned' / 'summary.json')
  # data of another vocabulary than the imported model's is refused before the model is built
  with pytest.raises(errors.DataError, match='vocabulary of 41 tokens.*vocab_size=40'):
    registry.check_vocab(hf_config.get_config(str(tmp_path / 'imported')).model,
                         core.Data('lm', 41, 16))
