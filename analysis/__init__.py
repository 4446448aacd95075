"""Interpretability methods run against compiled models, scored against the planted circuit.

Modules (import them directly; this package imports nothing eagerly, so loading one method
does not pull in the others):

* ``interventions``: the component graph as senders/receivers, jitted edge and node
  patching with traced 0/1 (or soft) masks, zero/mean/resample ablation values, vmapped
  sweeps over stacks of masks, and output comparison on decoded values.
* ``ground_truth``: the circuit each ablation can see on an input distribution, found by
  greedy pruning of the structural circuit and verified (faithfulness and minimality).
"""
