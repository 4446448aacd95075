"""Slow: DAS on the tracr library programs (compiled), against what the sweep in
results/das.md measured (``experiments/das_sae.py``, the same seed and inputs, so the same
numbers on CPU).

The issue's target, IIA 1.0 with overlap >= 0.99 for every variable, holds for only part of
the identifiable variables; the rest are listed in ``KNOWN`` with what they are:

* ``illusion``: IIA >= 0.99 with overlap < 0.9 (the learned span mixes the variable with an
  unread copy of it, e.g. the token one-hot a boolean ``Map`` of the tokens was computed
  from, or with other variables that the same-length pairs seldom tell apart);
* ``low-overlap``: IIA >= 0.98, overlap in [0.9, 0.99);
* ``miss``: DAS did not reach IIA 0.98 (training did not converge).

Variables that never differ between same-length pairs (``indices``, ``length`` and what
is computed from them alone) are not identifiable by interchange and are skipped.
Values: (kind, IIA, overlap, read overlap) as measured.
"""

from __future__ import annotations

import pytest

from rasplab import programs

SWEPT = [
    'frac_prevs', 'length', 'hist', 'shift_by_1', 'shift_by_2', 'count_a', 'reverse',
    'detect_pattern_aba', 'sort_unique', 'pair_balance', 'detect_pattern_abc',
    'count_less_freq_2', 'position_checksum', 'sort',
]

KNOWN = {
    ('frac_prevs', 'map_4'): ('illusion', 1.0, 0.43, 0.999),
    ('hist', 'hist'): ('low-overlap', 0.988, 0.989, 1.0),
    ('count_a', 'count_a'): ('illusion', 1.0, 0.667, 1.0),
    ('detect_pattern_aba', 'map_4'): ('illusion', 1.0, 0.502, 0.996),
    ('detect_pattern_aba', 'shift_by(2)'): ('illusion', 1.0, 0.335, 0.345),
    ('detect_pattern_aba', 'map_7'): ('illusion', 1.0, 0.516, 0.981),
    ('detect_pattern_aba', 'shift_by(1)'): ('illusion', 1.0, 0.495, 0.503),
    ('detect_pattern_aba', 'sequence_map_9'): ('illusion', 1.0, 0.795, 0.849),
    ('detect_pattern_aba', 'map_10'): ('illusion', 1.0, 0.504, 0.99),
    ('sort_unique', 'target_pos'): ('illusion', 1.0, 0.883, 0.93),
    ('sort_unique', 'sort'): ('low-overlap', 1.0, 0.974, 1.0),
    ('pair_balance', 'bools_open'): ('miss', 0.012, 0.22, 0.854),
    ('pair_balance', 'opens'): ('low-overlap', 1.0, 0.918, 0.992),
    ('pair_balance', 'bools_close'): ('miss', 0.004, 0.201, 0.778),
    ('pair_balance', 'closes'): ('low-overlap', 1.0, 0.966, 0.999),
    ('pair_balance', 'pair_balance'): ('illusion', 1.0, 0.753, 1.0),
    ('detect_pattern_abc', 'map_4'): ('illusion', 1.0, 0.292, 0.493),
    ('detect_pattern_abc', 'shift_by(2)'): ('miss', 0.434, 0.002, 0.008),
    ('detect_pattern_abc', 'map_7'): ('illusion', 1.0, 0.291, 0.488),
    ('detect_pattern_abc', 'shift_by(1)'): ('illusion', 1.0, 0.328, 0.356),
    ('detect_pattern_abc', 'sequence_map_9'): ('illusion', 1.0, 0.789, 0.871),
    ('detect_pattern_abc', 'map_10'): ('illusion', 1.0, 0.574, 0.994),
    ('count_less_freq_2', 'hist'): ('illusion', 1.0, 0.703, 1.0),
    ('count_less_freq_2', 'count_less_freq'): ('miss', 0.871, 0.653, 1.0),
    ('position_checksum', 'sequence_map_3'): ('illusion', 1.0, 0.833, 1.0),
    ('position_checksum', 'sequence_map_6'): ('low-overlap', 1.0, 0.943, 0.994),
    ('position_checksum', 'position_checksum'): ('low-overlap', 1.0, 0.959, 1.0),
    ('sort', 'unique_keys'): ('miss', 0.0, 0.668, 0.672),
    ('sort', 'target_pos'): ('illusion', 1.0, 0.844, 0.99),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", SWEPT)
def test_das_on_the_tracr_library(name):
    pytest.importorskip("jax")
    from rasplab.analysis.features import das, feature_truth
    from rasplab.compiler import compile_program

    spec = programs.get(name)
    c = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    truth = feature_truth(c, spec.sample_clean(0, 512), program=spec.build())
    rep = das.run(c, truth, seed=0, dormant=False)
    for v in rep.variables:
        s = v.scores
        if not s["identifiable"]:
            assert s["k"] == 0
            continue
        known = KNOWN.get((name, v.name))
        if known is None:
            assert s["iia"] >= 0.98 and s["overlap"] >= 0.99, (v.name, s)
        elif known[0] == "illusion":
            assert s["illusion"], (v.name, s)
        elif known[0] == "miss":
            assert s["iia"] < 0.98, f"{v.name} now reaches IIA {s['iia']}: update KNOWN"
        else:
            assert s["iia"] >= 0.98 and 0.9 <= s["overlap"] < 0.99, (v.name, s)
