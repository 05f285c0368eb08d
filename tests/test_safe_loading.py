"""No code path can run code hidden in a file: the package and benchmarks load data safely.

Every `.py` file under `src/siamkit` and `benchmarks` is parsed with `ast`
and checked for what can execute a file's contents or a string:

- importing or naming `pickle` (and its relatives `cPickle`, `dill`,
  `cloudpickle`, `shelve`, `marshal`);
- calling `eval` or `exec` (the built-ins, not methods such as `model.eval()`);
- `np.load` without an explicit `allow_pickle=False`, and any
  `allow_pickle=` other than `False`;
- `safe_mode=` other than `True` (Keras model loading);
- `yaml.load` without a safe loader, and `yaml.unsafe_load` / `full_load`;
- `torch.load` without `weights_only=True`.

A finding fails the test with its `file:line`.
"""

import ast
import pathlib
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SCANNED = [REPO / "src" / "siamkit", REPO / "benchmarks"]
_PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal"}
_SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader"}


def _dotted(node):
    """`a.b.c` for a Name/Attribute chain, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _is_const(node, value):
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_calls(source):
    """`(line, what)` for each unsafe construct in Python `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"imports {a.name}") for a in node.names if a.name.split(".")[0] in _PICKLERS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _PICKLERS:
            found.append((node.lineno, f"imports from {node.module}"))
        elif isinstance(node, ast.Name) and node.id in _PICKLERS:
            found.append((node.lineno, f"uses {node.id}"))
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in ("eval", "exec", "builtins.eval", "builtins.exec"):
                found.append((node.lineno, f"calls {name}()"))
            if "allow_pickle" in keywords and not _is_const(keywords["allow_pickle"], False):
                found.append((node.lineno, "allow_pickle is not False"))
            elif name in ("np.load", "numpy.load") and "allow_pickle" not in keywords:
                found.append((node.lineno, f"{name}() without allow_pickle=False"))
            if "safe_mode" in keywords and not _is_const(keywords["safe_mode"], True):
                found.append((node.lineno, "safe_mode is not True"))
            if name in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all"):
                found.append((node.lineno, f"calls {name}()"))
            if name in ("yaml.load", "yaml.load_all"):
                loader = keywords.get("Loader", node.args[1] if len(node.args) > 1 else None)
                if _dotted(loader).split(".")[-1] not in _SAFE_YAML_LOADERS:
                    found.append((node.lineno, f"{name}() without a safe loader"))
            if name == "torch.load" and not _is_const(keywords.get("weights_only"), True):
                found.append((node.lineno, "torch.load() without weights_only=True"))
    return found


def test_the_scanner_finds_every_unsafe_construct():
    source = textwrap.dedent(
        """
        import pickle
        from dill import loads
        eval("1")
        exec("x = 1")
        np.load(path)
        np.load(path, allow_pickle=True)
        keras.saving.load_model(path, safe_mode=False)
        yaml.load(text)
        yaml.load(text, Loader=yaml.FullLoader)
        torch.load(path)
        """
    )
    assert sorted(line for line, _ in unsafe_calls(source)) == list(range(2, 12))
    safe = textwrap.dedent(
        """
        model.eval()
        ast.literal_eval("1")
        np.load(path, allow_pickle=False)
        keras.saving.load_model(path, safe_mode=True)
        yaml.load(text, Loader=yaml.SafeLoader)
        yaml.safe_load(text)
        torch.load(path, weights_only=True)
        # pickle in a comment, "pickle" in a string
        """
    )
    assert unsafe_calls(safe) == []


@pytest.mark.parametrize("folder", SCANNED, ids=lambda p: p.name)
def test_no_unsafe_loading_in_the_code(folder):
    findings = [
        f"{path.relative_to(REPO)}:{line}: {what}"
        for path in sorted(folder.rglob("*.py"))
        for line, what in unsafe_calls(path.read_text(encoding="utf-8"))
    ]
    assert not findings, "unsafe loading:\n" + "\n".join(findings)


def test_npz_inputs_with_python_objects_are_refused_by_name(tmp_path):
    import numpy as np

    from siamkit.index.inputs import read_npz
    from siamkit.errors import DataError

    path = tmp_path / "embeddings.npz"
    np.savez(path, embeddings=np.eye(2, dtype="float32"), paths=np.array([{"evil": 1}, None], dtype=object))
    with pytest.raises(DataError, match="array 'paths' holds Python objects"):
        read_npz(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataError, match="embeddings.npz: not a readable .npz file"):
        read_npz(path)
