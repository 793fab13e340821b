"""A tiny GPT-2 checkpoint made locally, as `save_pretrained` writes a real one: a byte-level BPE
tokenizer trained on the train part of a text file, and a randomly initialised GPT2LMHeadModel,
optionally trained for --steps by transformers' own code (torch).

  python docs/results/hf_gpt2/make_checkpoint.py TEXT_FILE OUT_DIR [--steps=N]
"""

import argparse

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('text')
  parser.add_argument('out')
  parser.add_argument('--steps', type=int, default=0)
  parser.add_argument('--vocab', type=int, default=512)
  args = parser.parse_args()
  text = open(args.text, encoding='utf-8').read()
  train = text[:int(0.9 * len(text))]  # seqmodels' text data validates on the last 10%
  tokenizer = Tokenizer(models.BPE())
  tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tokenizer.decoder = decoders.ByteLevel()
  tokenizer.train_from_iterator(
      [train], trainers.BpeTrainer(vocab_size=args.vocab,
                                   initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  torch.manual_seed(0)
  V = tokenizer.get_vocab_size()
  model = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=128, n_embd=64, n_layer=2,
                                     n_head=4, bos_token_id=None, eos_token_id=None))
  ids = torch.tensor(tokenizer.encode(train).ids)
  optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
  for step in range(args.steps):
    starts = torch.randint(0, len(ids) - 65, (16,))
    batch = torch.stack([ids[s:s + 65] for s in starts])
    loss = model(batch, labels=batch).loss
    optim.zero_grad()
    loss.backward()
    optim.step()
    if step % 50 == 0 or step == args.steps - 1:
      print(f'step {step}: loss {loss.item():.3f}')
  model.eval().save_pretrained(args.out)
  tokenizer.save(f'{args.out}/tokenizer.json')


if __name__ == '__main__':
  main()
