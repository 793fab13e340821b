"""The samples CLI: every kind of LM continues the same validation prompts (or a --prompt) from its
latest checkpoint, greedy decoding follows the model's own argmax, and seqmodels.report shows the
samples."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from seqmodels import report
from seqmodels.analysis import runs, samples
from tests.analysis.gradient_flow_cli_test import _run

# > data.seq_len = 10: GPT and ELMo slide their window, the recurrent LMs carry their state on
NEW = 25


@pytest.fixture(scope='module')
def text_runs(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp('samples')
  return {name: _run(tmp_path, name, data='text') for name in ('gpt', 'lstm', 'ngram', 'elmo')}


def _read(workdir):
  with open(f'{workdir}/samples.json') as f:
    return json.load(f)


def test_every_lm_continues_the_same_validation_prompts(text_runs, tmp_path, capsys):
  samples.main(sum((['--workdir', w] for w in text_runs.values()), []) +
               ['--new_tokens', str(NEW), '--num_samples', '2', '--prompt_tokens', '4'])
  out = capsys.readouterr().out
  data = runs.load(text_runs['gpt']).data
  batch = next(iter(data.eval_batches(batch_size=2, max_batches=1)))
  text_N = data.tokens['validation']  # running text: a reference is read on past its window
  for name, workdir in text_runs.items():
    record = _read(workdir)
    assert record['model'] == name and record['step'] == (1 if name == 'ngram' else 2)
    # the n-gram has none: counted again
    assert record['checkpoint'] == (None if name == 'ngram' else 'latest')
    assert (record['settings']['new_tokens'] == NEW and record['commit'] and
            'seqmodels.analysis.samples' in (record['command']))
    assert f'=== {workdir}: {name} at step {record["step"]}' in out
    for i, smp in enumerate(record['samples']):
      text_T = np.concatenate([batch['inputs'][i, :1], batch['targets'][i]])
      assert smp['source'] == f'validation example {i}'
      assert smp['prompt'] == data.decode(text_T[:4])
      start = i * data.seq_len
      # as long as the continuation
      assert smp['reference'] == data.decode(text_N[start + 4:start + 4 + NEW])
      assert data.decode(text_N[start + 4:start + 4 + NEW]).startswith(data.decode(text_T[4:]))
      tokens = np.asarray(smp['tokens'])
      # text has no EOS
      assert len(tokens) == NEW and tokens.min() >= 0 and tokens.max() < data.vocab_size
      assert smp['continuation'] == data.decode(tokens)
  rep = report.write_report(list(text_runs.values()), str(tmp_path / 'report'))
  md = open(rep['markdown']).read()
  section = md[md.index('## Samples'):]
  # one per prompt, each run's continuation under it
  assert section.count('### Prompt (validation example') == 2
  for name in text_runs:
    assert section.count(f'**{name}_text** ({name}, step') == 2
  assert section.count('the text itself:') == 2


def test_greedy_samples_are_the_models_argmax_given_all_before(text_runs):
  s = samples.Settings(new_tokens=NEW, num_samples=2, prompt_tokens=3, temperature=0.0)
  for name in ('lstm', 'gpt', 'elmo'):
    record = samples.run_samples(text_runs[name], s)
    run = runs.load(text_runs[name])
    params, _ = runs.latest_params(run, [np.zeros((1, 2), np.int32)])
    for i, smp in enumerate(record['samples']):
      prompt = samples.prompts(run.data, s)[i][1]
      text = np.concatenate([prompt, smp['tokens']])
      # each generated position, and what the model saw before it
      ts = np.arange(len(prompt), len(text))
      if name == 'lstm':  # the state carries everything before t
        logits = run.model.apply({'params': params}, text[None, :-1])[0, ts - 1]
      else:
        # GPT, ELMo: the last seq_len = 10 tokens before t, from position 0 (causal: what follows is
        # unseen)
        windows = np.zeros((len(ts), 10), np.int32)
        for row, t in enumerate(ts):
          windows[row, :min(t, 10)] = text[max(0, t - 10):t]
        out = run.model.apply({'params': params}, windows)
        out = out.fwd_BxTxV if name == 'elmo' else out
        logits = out[np.arange(len(ts)), np.minimum(ts, 10) - 1]
      np.testing.assert_array_equal(text[ts], np.argmax(logits, -1), err_msg=name)


def test_seeds_and_prompts(text_runs):
  lstm = text_runs['lstm']
  draw = lambda **kw: samples.run_samples(
      lstm, samples.Settings(new_tokens=NEW, num_samples=2, **kw))['samples']
  assert draw(seed=0) == draw(seed=0) and draw(seed=0) != draw(seed=1)
  for smp in draw(prompt='ab'):
    assert smp['prompt'] == 'ab' and smp['source'] == '--prompt' and smp['reference'] is None
  with pytest.raises(ValueError, match='--prompt is empty'):
    draw(prompt='')
  top1 = draw(top_k=1, temperature=1.0)
  assert top1 == draw(top_k=1, temperature=1.0, seed=5) == draw(temperature=0.0)  # top-1 is greedy


def test_a_run_trained_through_cudnn_samples_on_a_cpu(text_runs, tmp_path):
  cudnn = str(tmp_path / 'lstm_cudnn')
  shutil.copytree(text_runs['lstm'], cudnn)
  with open(f'{cudnn}/config.json') as f:
    config = json.load(f)
  config['model']['recurrence'] = 'cudnn'  # as a GPU run of the same LSTM would record it
  with open(f'{cudnn}/config.json', 'w') as f:
    json.dump(config, f)
  s = samples.Settings(new_tokens=NEW, num_samples=2)
  assert (samples.run_samples(cudnn, s)['samples'] ==
          samples.run_samples(text_runs['lstm'], s)['samples'])


def test_what_cannot_be_sampled_is_one_line(tmp_path, capsys):
  copy, adding = _run(tmp_path, 'gpt'), _run(tmp_path, 'lstm', data='adding')
  unfinished = tmp_path / 'ngram'
  unfinished.mkdir()
  (unfinished / 'config.json').write_text(json.dumps({'model': {'name': 'ngram'}}))
  cases = [
      (['--workdir', copy, '--prompt', 'a'],
       f'--workdir={copy}: --prompt: this task has no text form: leave --prompt out to continue '
       'its validation examples'),
      (['--workdir', adding],
       f'--workdir={adding}: config.model.name=lstm on config.data.name=adding is a regression '
       'model, not a language model: samples come from LMs'),
      (['--workdir', str(unfinished)],
       f'--workdir={unfinished} has not finished (no summary.json): rerun its launch.py command'),
      (['--workdir', copy, '--top_p', '0'], '--top_p=0.0: choose it in (0, 1]'),
      (['--workdir', copy, '--new_tokens', 'abc'],
       "argument --new_tokens: invalid int value: 'abc' (see --help)"),
      ([], 'the following arguments are required: --workdir (see --help)'),
      (['--workdir', copy, '--checkpoint', 'best'],
       f'--workdir={copy}: no best checkpoint (the run kept none: train.keep_best was off): train '
       'with --config.train.keep_best=True, or read the latest checkpoint'),
      (['--workdir', copy, '--num_samples', '99'], f'--workdir={copy}: --num_samples=99 is more '
       'than the 16 validation examples: pick at most 16'),
  ]
  for argv, message in cases:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
      samples.main(argv)
    assert e.value.code == 2 and capsys.readouterr().err == f'error: {message}\n', argv
  # a synthetic task's prompts
  samples.main(['--workdir', copy, '--new_tokens', '30', '--num_samples', '1'])
  (smp,) = _read(copy)['samples']
  # the task's given part is the prompt (<bos> 4 symbols <sep>), its copy and <eos> the reference
  assert (smp['prompt'].startswith('<bos>') and smp['prompt'].endswith('<sep>') and
          len(smp['prompt'].split()) == 6)
  assert smp['reference'].split()[-1] == '<eos>' and len(smp['reference'].split()) == 5
  assert 1 <= len(smp['tokens']) <= 30
  assert (smp['tokens'][-1] == 3) == (len(smp['tokens']) < 30)  # stopped by EOS, or ran to the end


def test_validation_prompts_keep_a_texts_token_zero():
  """In a character vocabulary id 0 is a character ('\\n' sorts first), not padding: a window ending
  in newlines keeps them, in its prompt and in its reference."""
  from seqmodels.data import core, tokenizers
  from seqmodels.data import text as text_data
  text = 'ab\n\nba\n\n' * 8
  tokenizer = tokenizers.CharTokenizer.from_text(text)
  assert tokenizer.encode('\n')[0] == 0
  windows = text_data._windows(tokenizer.encode(text), 7, 8)  # each window: 'ab\n\nba\n\n'
  data = core.Data('lm', tokenizer.vocab_size, 7, {'validation': windows}, tokenizer.decode,
                   tokenizer.encode)
  for prompt_tokens in (3, 7):
    rows = samples.prompts(data, samples.Settings(num_samples=2, prompt_tokens=prompt_tokens))
    for _, prompt, reference in rows:
      assert tokenizer.decode(prompt) + tokenizer.decode(reference) == 'ab\n\nba\n\n'
      assert len(prompt) == prompt_tokens
  with pytest.raises(ValueError, match=r'--prompt_tokens=8: validation example 0 has 8 tokens, so '
                     r'a prompt of at most 7 leaves some of it to compare a sample with'):
    # before: cut to 7, silently
    samples.prompts(data, samples.Settings(num_samples=2, prompt_tokens=8))
  # the split as running text
  data = dataclasses.replace(data, tokens={'validation': tokenizer.encode(text)})
  rows = samples.prompts(data, samples.Settings(new_tokens=12, num_samples=2, prompt_tokens=7))
  for i, (_, prompt, reference) in enumerate(rows):
    assert (tokenizer.decode(prompt) == text[7 * i:7 * i + 7] and
            tokenizer.decode(reference) == text[7 * i + 7:][:12])
  # past the window
  long = samples.prompts(data, samples.Settings(new_tokens=4, num_samples=1, prompt_tokens=60))
  assert len(long[0][1]) == 60 and tokenizer.decode(long[0][2]) == text[60:]
  with pytest.raises(ValueError, match=r'--prompt_tokens=64: validation example 0 starts 64 tokens '
                     r'before the end of the split, so a prompt of at most 63'):
    samples.prompts(data, samples.Settings(num_samples=1, prompt_tokens=64))
  with pytest.raises(ValueError, match=r'--num_samples=10 is more than the 9 validation examples'):
    samples.prompts(data, samples.Settings(num_samples=10, prompt_tokens=2))
