"""Same program, vocab and length give bit-identical weights, across processes too.

Python randomises string hashing per process, so set iteration order differs between
runs; this test compiles in subprocesses with different hash seeds and compares bytes.
"""

import os
import subprocess
import sys

SCRIPT = r"""
import hashlib, json
from rasplab.compiler import rasp, compile_program
T, I, C = rasp.tokens, rasp.indices, rasp.Comparison
hist = rasp.SelectorWidth(rasp.Select(T, T, C.EQ)).named("hist")
shifted = rasp.Aggregate(rasp.Select(I, I + 1, C.EQ), T).named("prev")
prog = rasp.SequenceMap(lambda a, b: f"{a}{b}", shifted, rasp.Map(str, hist)).named("out")
frac = rasp.numerical(rasp.Aggregate(rasp.Select(I, I, C.LEQ),
                                     rasp.numerical(rasp.Map(lambda t: t in "ab", T)), default=0))
prog2 = rasp.Map(lambda v: round(v, 1), frac).named("rounded")
h = hashlib.sha256()
for p in (prog, prog2):
    m = compile_program(p, {"a", "b", "c", "d"}, 5)
    for k in sorted(m.params):
        h.update(k.encode()); h.update(m.params[k].tobytes())
    h.update(json.dumps(m.residual_labels).encode())
print(h.hexdigest())
"""


def _digest(seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def test_weights_identical_across_processes_and_hash_seeds():
    digests = {_digest(seed) for seed in ("0", "1", "12345")}
    assert len(digests) == 1, digests


def test_compiling_does_not_import_jax():
    code = SCRIPT + "\nimport sys\nassert 'jax' not in sys.modules, 'compiling imported JAX'\n"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
