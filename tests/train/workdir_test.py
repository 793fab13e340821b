"""A run's workdir records: which configs may resume it, and config.json files of older versions."""

import json

import pytest

from seqmodels import errors
from seqmodels.train import workdir
from tests.train.loop_test import tiny_config


def test_resume_refuses_a_changed_config_but_accepts_fields_added_by_newer_code(tmp_path):
  c = tiny_config(tmp_path)
  saved = json.loads(c.to_json_best_effort())
  del saved['optim']['name']  # a config.json written before optim.name existed
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  # a run that failed before its first checkpoint: nothing to resume, nor mix
  early = tmp_path / 'failed_early'
  early.mkdir()
  (early / 'config.json').write_text(json.dumps({**saved, 'seed': 5}))
  # before: refused, and the workdir was locked to the config that failed
  workdir.check_resumable(str(early), c)
  (tmp_path / 'checkpoints' / '4').mkdir(parents=True)  # a run to resume
  workdir.check_resumable(str(tmp_path), c)  # same run: resumes
  c.model.width = 64
  with pytest.raises(errors.WorkdirError, match=r'different config \(config\.model\.width: 32 '
                     r'there, 64 now\): use a new --workdir'):
    workdir.check_resumable(str(tmp_path), c)
  c.model.width, c.train.num_steps = 32, 99
  with pytest.raises(errors.WorkdirError, match=r'config\.train\.num_steps'):
    workdir.check_resumable(str(tmp_path), c)
  # a speed knob: e.g. resumed on a GPU
  c.train.num_steps, c.model.unroll = saved['train']['num_steps'], 8
  workdir.check_resumable(str(tmp_path), c)
  c.model.recurrence = 'scan'  # another speed knob, the same function
  workdir.check_resumable(str(tmp_path), c)
  # a run saved with train.dtype=float32 resumes under 'auto' on CPU, not in bfloat16
  c.train.dtype = 'float32'
  (tmp_path / 'config.json').write_text(c.to_json_best_effort())
  c.train.dtype = 'auto'
  workdir.check_resumable(str(tmp_path), c)
  c.train.dtype = 'bfloat16'
  with pytest.raises(errors.WorkdirError,
                     match=r"config\.train\.dtype: 'float32' there, 'bfloat16' now"):
    workdir.check_resumable(str(tmp_path), c)
  # the whole validation split either way: the same rows
  c.train.dtype, c.train.eval_batch_size = 'float32', 7
  workdir.check_resumable(str(tmp_path), c)
  # the best checkpoint would be chosen by comparing evaluations of other rows
  c.train.eval_batches = 3
  with pytest.raises(errors.WorkdirError, match=r'evaluated on other rows '
                     r'\(config\.train\.eval_batches, eval_batch_size: 0, None there, 3, 7 now\)'):
    workdir.check_resumable(str(tmp_path), c)
  c.train.eval_batches, c.train.eval_batch_size = 0, 0
  workdir.check_resumable(str(tmp_path), c)


def test_a_truncated_config_json_is_named_with_the_fix(tmp_path):
  (tmp_path / 'config.json').write_text('{"seed": 0, "mod')
  (tmp_path / 'summary.json').write_text('{"status": "done"}')
  with pytest.raises(errors.WorkdirError,
                     match=r'unreadable config\.json \(JSONDecodeError: .*delete that file'):
    workdir.check_resumable(str(tmp_path), tiny_config(tmp_path))


@pytest.mark.parametrize('text,what', [
    ('[{"seed": 0}]', 'it holds a list, not a JSON object'),
    ('null', 'it holds null, not a JSON object'), ('3', 'it holds a number, not a JSON object'),
    ('{"seed": 0, "train": [16]}', "its 'train' is a list, not a JSON object")])
def test_a_config_json_that_is_not_an_object_is_named_with_the_fix(tmp_path, text, what):
  (tmp_path / 'config.json').write_text(text)  # before: AttributeError ('list' object has no 'get')
  (tmp_path / 'summary.json').write_text('{"status": "done"}')
  with pytest.raises(errors.WorkdirError) as e:
    workdir.check_resumable(str(tmp_path), tiny_config(tmp_path))
  assert str(e.value) == (f'workdir {tmp_path} has an unreadable config.json ({what}): use a new '
                          '--workdir, or delete that file to resume with this config')


def test_resume_reads_the_tokenizer_of_a_config_json_written_before_text_took_one(tmp_path):
  c = tiny_config(tmp_path)
  c.data.name, c.data.path = 'text', str(tmp_path / 'corpus.txt')
  saved = json.loads(c.to_json_best_effort())
  # the translation default of older versions, meaningless for text
  saved['data']['tokenizer'] = 'unigram'
  del saved['data']['min_count']
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  (tmp_path / 'checkpoints' / '4').mkdir(parents=True)  # a run to resume
  workdir.check_resumable(str(tmp_path), c)  # 'auto' now: characters, as then
  c.data.tokenizer = 'word'
  with pytest.raises(errors.WorkdirError, match=r"different config \(config\.data\.tokenizer: "
                     r"'char' there, 'word' now\)"):
    workdir.check_resumable(str(tmp_path), c)
  c.data.name, c.data.tokenizer = 'toy_translation', 'auto'  # 'auto' is 'unigram' for translation
  saved['data'].update(name='toy_translation', min_count=1)
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  workdir.check_resumable(str(tmp_path), c)
