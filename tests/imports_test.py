"""The house's dependency rules: no import cycles (function-local imports included), and each layer
imports only the layers below it: layers -> models -> train / evals -> analysis / report ->
launch.py."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('seqmodels', 'experiments')

# What each part of the package may import from seqmodels (besides itself and the leaf modules
# errors, cli).
ALLOWED = {
    'seqmodels.layers': (),
    'seqmodels.decoding': (),
    'seqmodels.models': ('seqmodels.layers', 'seqmodels.decoding'),
    'seqmodels.data': (),
    'seqmodels.train': ('seqmodels.layers', 'seqmodels.decoding', 'seqmodels.models',
                        'seqmodels.data', 'seqmodels.evals'),
    'seqmodels.evals': ('seqmodels.layers', 'seqmodels.decoding', 'seqmodels.models',
                        'seqmodels.data'),
    # Hugging Face interop: converters over models, run directories read and written as train
    # and the analyses do
    'seqmodels.hf': ('seqmodels.layers', 'seqmodels.decoding', 'seqmodels.models',
                     'seqmodels.data', 'seqmodels.train', 'seqmodels.evals', 'seqmodels.analysis'),
}
LEAVES = ('seqmodels.errors', 'seqmodels.cli')


def _modules() -> dict[str, str]:
  found = {}
  for package in PACKAGES:
    for directory, _, files in os.walk(os.path.join(ROOT, package)):
      for f in files:
        if f.endswith('.py'):
          path = os.path.join(directory, f)
          name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.').removesuffix('.__init__')
          found[name] = path
  return found


def _imports(modules: dict[str, str]) -> dict[str, set[str]]:
  """module -> the package modules it imports anywhere in its file (a package's __init__ counts as
  the package)."""
  def resolve(name):
    while name and name not in modules:
      name = name.rpartition('.')[0]
    return name
  graph = {}
  for name, path in modules.items():
    package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
    targets = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
      if isinstance(node, ast.Import):
        targets.update(a.name for a in node.names)
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:
          parts = package.split('.')[:len(package.split('.')) - node.level + 1]
          base = '.'.join(parts + ([base] if base else []))
        targets.update(f'{base}.{a.name}' for a in node.names)
    graph[name] = {r for t in targets if (r := resolve(t)) and r != name}
  return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return out


def test_no_module_imports_its_importer():
  assert _cycles(_imports(_modules())) == []


def test_each_layer_imports_only_the_layers_below_it():
  graph = _imports(_modules())
  wrong = []
  for name, targets in graph.items():
    part = next((p for p in ALLOWED if name == p or name.startswith(p + '.')), None)
    if part is None:
      continue
    for t in targets:
      ok = (t == part or t.startswith(part + '.') or t in LEAVES or not t.startswith('seqmodels')
            or any(t == a or t.startswith(a + '.') for a in ALLOWED[part]))
      if not ok:
        wrong.append(f'{name} imports {t}')
  assert wrong == []


def test_the_checker_finds_cycles_and_only_cycles():
  assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
  assert _cycles({'a': {'b'}, 'b': set()}) == []
