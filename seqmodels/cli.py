"""What every seqmodels command line shares: a one-line error on stderr, exit code 2.

A leaf module (it imports nothing from seqmodels), so any CLI can use it without loading JAX.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Iterator, NoReturn


def fail(message: str) -> NoReturn:
  """A command line's one-line error, exit code 2."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def check_writable(path: str, flag: str, directory: bool = False) -> None:
  """Fails with one line, before any work, unless `path` (a file, or with `directory` a directory
  for files) can be written: where it is a directory (or a file), or read-only storage, or no
  permission."""
  if directory:
    if os.path.exists(path) and not os.path.isdir(path):
      fail(f'{flag}={path} is a file: name a directory for the output')
    target = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path)) or '.'
    while not os.path.exists(target):  # the nearest existing parent, where it would be made
      target = os.path.dirname(target)
  else:
    if os.path.isdir(path):
      fail(f'{flag}: {path} is a directory: name a file')
    target = path if os.path.exists(path) else os.path.dirname(os.path.abspath(path))
  if not os.access(target, os.W_OK):
    fail(f'{flag}: {target} cannot be written (read-only storage, or no permission): name another '
         'place, or make it writable')


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
  """Writes under it that fail (a full disk, read-only storage, I/O errors) are one line."""
  try:
    yield
  except OSError as e:
    fail(f'writing {e.filename or path} failed ({e.strerror or e}): free space or make it '
         'writable, then rerun')


def write_json(path: str, value) -> None:
  """Writes `value` to `path` as indented JSON, a failed write one line (`writing`)."""
  with writing(path), open(path, 'w') as f:
    json.dump(value, f, indent=1)


class ArgumentParser(argparse.ArgumentParser):
  """argparse with its errors (an unknown flag, a value that does not parse) as one line, like every
  other."""

  def error(self, message: str) -> NoReturn:
    fail(f'{message} (see --help)')
