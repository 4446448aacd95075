"""Slow: DAS on the tracr library programs (compiled), against what the sweep in
results/das.md measured (``experiments/das_sae.py``, read-space DAS, the same seed and
inputs, so the same numbers on CPU).

The issue's target, IIA 1.0 with overlap >= 0.99 for every variable, holds for only part of
the identifiable variables; the rest are listed in ``KNOWN`` with what they are:

* ``illusion``: IIA >= 0.99 with overlap < 0.9 (the learned span mixes the variable with an
  unread copy of it, e.g. the token one-hot a boolean ``Map`` of the tokens was computed
  from, or with other variables that the same-length pairs seldom tell apart);
* ``low-overlap``: IIA >= 0.98, overlap in [0.9, 0.99);
* ``miss``: DAS did not reach IIA 0.99 (training did not converge).

Variables that never differ between same-length pairs (``indices``, ``length`` and what
is computed from them alone) are not identifiable by interchange and are skipped.
Values: (kind, IIA, overlap, read overlap) as measured.
"""

from __future__ import annotations

import pytest

from rasplab import programs

SWEPT = [
    'frac_prevs',
    'length',
    'hist',
    'shift_by_1',
    'shift_by_2',
    'count_a',
    'reverse',
    'detect_pattern_aba',
    'detect_pattern_abc',
    'sort_unique',
    'pair_balance',
    'count_less_freq_2',
    'position_checksum',
    'sort',
    'sort_freq',
    'shuffle_dyck',
    'shuffle_dyck2',
]

KNOWN = {
    ('detect_pattern_aba', 'map_4'): ('low-overlap', 1.0, 0.971, 0.971),
    ('detect_pattern_aba', 'shift_by(2)'): ('miss', 0.113, 0.308, 0.308),
    ('detect_pattern_aba', 'map_7'): ('low-overlap', 1.0, 0.968, 0.968),
    ('detect_pattern_aba', 'shift_by(1)'): ('miss', 0.133, 0.343, 0.343),
    ('detect_pattern_aba', 'sequence_map_9'): ('miss', 0.168, 0.361, 0.361),
    ('detect_pattern_aba', 'map_10'): ('low-overlap', 1.0, 0.96, 0.96),
    ('detect_pattern_abc', 'map_4'): ('miss', 0.957, 0.481, 0.481),
    ('detect_pattern_abc', 'shift_by(2)'): ('miss', 0.164, 0.286, 0.286),
    ('detect_pattern_abc', 'map_7'): ('miss', 0.949, 0.483, 0.483),
    ('detect_pattern_abc', 'shift_by(1)'): ('miss', 0.301, 0.356, 0.356),
    ('detect_pattern_abc', 'sequence_map_9'): ('miss', 0.266, 0.392, 0.392),
    ('detect_pattern_abc', 'map_10'): ('miss', 0.863, 0.506, 0.506),
    ('sort_unique', 'target_pos'): ('illusion', 1.0, 0.805, 0.805),
    ('pair_balance', 'bools_open'): ('miss', 0.0, 0.691, 0.691),
    ('pair_balance', 'bools_close'): ('miss', 0.0, 0.844, 0.844),
    ('pair_balance', 'closes'): ('miss', 0.035, 0.988, 0.988),
    ('sort', 'unique_keys'): ('miss', 0.0, 0.668, 0.668),
    ('sort', 'target_pos'): ('low-overlap', 1.0, 0.95, 0.95),
    ('sort_freq', 'hist'): ('miss', 0.0, 0.479, 0.479),
    ('sort_freq', 'neg_hist'): ('miss', 0.0, 0.569, 0.569),
    ('sort_freq', 'unique_keys'): ('miss', 0.0, 0.715, 0.715),
    ('sort_freq', 'target_pos'): ('illusion', 1.0, 0.692, 0.692),
    ('shuffle_dyck', 'bools_open'): ('miss', 0.703, 0.5, 0.5),
    ('shuffle_dyck', 'opens'): ('miss', 0.875, 0.428, 0.428),
    ('shuffle_dyck', 'bools_close'): ('miss', 0.703, 0.5, 0.5),
    ('shuffle_dyck', 'closes'): ('miss', 0.875, 0.45, 0.45),
    ('shuffle_dyck', 'all_zero'): ('miss', 0.973, 0.492, 0.492),
    ('shuffle_dyck', 'last_zero'): ('miss', 0.984, 0.425, 0.425),
    ('shuffle_dyck', 'any_negative'): ('miss', 0.031, 0.418, 0.418),
    ('shuffle_dyck', 'has_neg'): ('miss', 0.695, 0.962, 0.962),
    ('shuffle_dyck', 'not_has_neg'): ('miss', 0.938, 0.501, 0.501),
    ('shuffle_dyck2', 'bools_open_()'): ('miss', 0.824, 0.396, 0.396),
    ('shuffle_dyck2', 'opens_()'): ('miss', 0.34, 0.464, 0.464),
    ('shuffle_dyck2', 'bools_close_()'): ('miss', 0.766, 0.075, 0.075),
    ('shuffle_dyck2', 'closes_()'): ('miss', 0.828, 0.038, 0.038),
    ('shuffle_dyck2', 'balance_()'): ('miss', 0.652, 0.658, 0.658),
    ('shuffle_dyck2', 'map_14'): ('miss', 0.875, 0.513, 0.513),
    ('shuffle_dyck2', 'bools_open_{}'): ('miss', 0.629, 0.286, 0.286),
    ('shuffle_dyck2', 'opens_{}'): ('miss', 0.785, 0.301, 0.301),
    ('shuffle_dyck2', 'bools_close_{}'): ('miss', 0.812, 0.139, 0.139),
    ('shuffle_dyck2', 'closes_{}'): ('miss', 0.82, 0.025, 0.025),
    ('shuffle_dyck2', 'balance_{}'): ('miss', 0.348, 0.21, 0.21),
    ('shuffle_dyck2', 'map_22'): ('miss', 0.895, 0.483, 0.483),
    ('shuffle_dyck2', 'all_zero'): ('miss', 0.988, 0.491, 0.491),
    ('shuffle_dyck2', 'last_zero'): ('miss', 0.895, 0.336, 0.336),
    ('shuffle_dyck2', 'map_26'): ('miss', 0.105, 0.046, 0.046),
    ('shuffle_dyck2', 'map_27'): ('miss', 0.352, 0.006, 0.006),
    ('shuffle_dyck2', 'sequence_map_28'): ('miss', 0.949, 0.367, 0.367),
    ('shuffle_dyck2', 'any_negative'): ('miss', 0.41, 0.046, 0.046),
    ('shuffle_dyck2', 'has_neg'): ('miss', 0.586, 0.405, 0.405),
    ('shuffle_dyck2', 'not_has_neg'): ('illusion', 1.0, 0.509, 0.509),
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
            assert s["iia"] < 0.99, f"{v.name} now reaches IIA {s['iia']}: update KNOWN"
        else:
            assert s["iia"] >= 0.98 and 0.9 <= s["overlap"] < 0.99, (v.name, s)
