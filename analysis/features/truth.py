"""The truth for feature methods: where each program variable lives, and who reads it.

``feature_truth(model, inputs)`` returns a :class:`FeatureTruth`: for every planted variable

* its **basis** in the model's residual stream (``Variable.basis`` of the planted circuit,
  ``d_model x k``, already mapped on rotated and compressed variants) and direction labels;
* per **residual site** (``blocks.{l}.hook_resid_pre|mid|post``, forward order) a
  :class:`SiteTruth`: whether the variable is *present* there (every component computing it
  sits before the site, and no other component before the site writes into its directions)
  and whether it is *used* downstream (a component after the site reads its directions,
  from the planted circuit's structural edges), with the readers named (``L3.H0.v``,
  ``L4.MLP``, ``output``);
* per-position **labels** on ``inputs``: the interpreter's value at every real position
  (BOS and PAD left out), flattened input by input: the value's index into ``classes`` for
  a categorical variable (``None`` is the extra last class when the variable can be None),
  the number for a numerical one; ``valid`` marks positions with a label.

``activations(model, truth, site)`` returns the site's activations ``[N, d_model]`` in the
same flattened order, so ``activations(...)[truth.variables[v].valid]`` lines up with
``truth.variables[v].targets[valid]``.

Present and used are read off the circuit's components (their slots and the source labels
they write) and its edges (the directions they share), never off the weights of a variant,
so a rotated or compressed model has its compiled source's truth. An approximate model
(compressed, retrained) carries ``is_exact=False`` and its measured accuracy: its
activations hold its variables only approximately.

Labels come from the reference interpreter when the program is known (``program=``, the
RASP program as written or as compiled). Without one, an *exact* model's labels are read
off its own residual at each variable's write site through the planted basis (equal to the
interpreter on the program's domain by the compiler's guarantee; ``labels_from`` says
which); an approximate model without its program is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from rasplab.compiler.assemble import CompiledProgram
from rasplab.compiler.circuit import PlantedCircuit
from rasplab.compiler.values import same_value

RESID_SITES = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post")


# ---------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class SiteTruth:
    """One variable at one residual site."""

    variable: str
    site: str
    present: bool  # written before the site and not overwritten
    used: bool  # read by a component after the site
    readers: tuple[str, ...] = ()  # those components ("L3.H0.v", "L4.MLP", "output")
    overwritten_by: tuple[str, ...] = ()  # components before the site writing its directions

    @property
    def stale(self) -> bool:
        """Present but read by nothing downstream: decodable, yet not used."""
        return self.present and not self.used


@dataclass(frozen=True, eq=False)
class VariableTruth:
    """A planted variable: its basis, where it is present and used, its labels."""

    name: str
    encoding: str  # "categorical" | "numerical"
    values: tuple  # the value set (sorted, without None)
    can_be_none: bool
    computed_by: tuple[str, ...]
    write_site: str | None  # the first residual site where it is present
    basis: np.ndarray  # [d_model, k] float64, column j labelled labels[j]
    labels: tuple[str, ...]
    targets: np.ndarray  # [N]: class index (int64) or number (float64; nan if none)
    valid: np.ndarray  # [N] bool: the position has a label
    sites: Mapping[str, SiteTruth] = field(default_factory=dict)

    @property
    def categorical(self) -> bool:
        return self.encoding == "categorical"

    @property
    def classes(self) -> tuple:
        """The label classes: ``values``, then ``None`` if the variable can be None."""
        if not self.categorical:
            return ()
        return self.values + ((None,) if self.can_be_none else ())

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def k(self) -> int:
        return int(self.basis.shape[1])

    def at(self, site: str) -> SiteTruth:
        if site not in self.sites:
            raise KeyError(f"no residual site {site!r}; the sites are {list(self.sites)}")
        return self.sites[site]

    @property
    def present_sites(self) -> list[str]:
        return [s for s, t in self.sites.items() if t.present]

    @property
    def used_sites(self) -> list[str]:
        return [s for s, t in self.sites.items() if t.used]

    def value_of(self, target) -> object:
        """The program value a label stands for."""
        if self.categorical:
            return self.classes[int(target)]
        return float(target)


@dataclass(frozen=True, eq=False)
class FeatureTruth:
    """Every planted variable's truth on one set of inputs (see the module docstring)."""

    name: str  # the program or model name
    rung: str  # "compiled" | "rotated" | "compressed" | ...
    is_exact: bool
    model_accuracy: float | None  # measured held-out accuracy of an approximate model
    labels_from: str  # "interpreter" | "model" (an exact model's own write sites)
    inputs: tuple[tuple, ...]
    ids: np.ndarray  # [B, T] int32: BOS, tokens, PAD
    positions: np.ndarray  # [N, 2] (row, position) of every real position, flattened
    sites: tuple[str, ...]  # residual sites in forward order
    variables: Mapping[str, VariableTruth]
    output: str  # the output variable
    d_model: int
    causal: bool = False
    program: object = None  # the RASP program as compiled, when known (for counterfactuals)

    @property
    def n_positions(self) -> int:
        return int(self.positions.shape[0])

    @property
    def mask(self) -> np.ndarray:
        """``[B, T]`` bool: the real (non-BOS, non-PAD) positions."""
        m = np.zeros(self.ids.shape, bool)
        m[self.positions[:, 0], self.positions[:, 1]] = True
        return m

    def variable(self, name: str) -> VariableTruth:
        if name not in self.variables:
            raise KeyError(f"no variable {name!r}; the variables are {list(self.variables)}")
        return self.variables[name]

    def at(self, variable: str, site: str) -> SiteTruth:
        return self.variable(variable).at(site)

    def cells(self, *, present_only: bool = False) -> list[tuple[str, str]]:
        """Every (variable, site) pair in forward order (only where present, if asked)."""
        return [(v, s) for s in self.sites for v, vt in self.variables.items()
                if not present_only or vt.sites[s].present]


# ---------------------------------------------------------------------------------------
# Sites and slots


def residual_sites(model: CompiledProgram) -> list[str]:
    """The residual sites of the model in forward order (TransformerLens hook names)."""
    return [f"blocks.{layer}.{s}" for layer in range(model.config.num_layers)
            for s in RESID_SITES]


def site_slot(site: str) -> float:
    """Where a residual site sits among component slots (embed/pos -1, heads of layer
    ``l`` ``2l``, its MLP ``2l + 1``): components with a smaller slot wrote into it."""
    parts = site.split(".")
    if site in ("hook_embed", "hook_pos_embed"):
        return -0.5
    if len(parts) != 3 or parts[0] != "blocks" or parts[2] not in RESID_SITES:
        raise ValueError(f"{site!r} is not a residual site (blocks.L.hook_resid_pre|mid|post)")
    layer = int(parts[1])
    return 2 * layer + {"hook_resid_pre": -0.5, "hook_resid_mid": 0.5,
                        "hook_resid_post": 1.5}[parts[2]]


def _slots(circuit: PlantedCircuit) -> dict[str, int]:
    return {c.name: c.slot for c in circuit.components}


def _site_truths(circuit: PlantedCircuit, name: str, sites: Sequence[str]
                 ) -> tuple[dict[str, SiteTruth], str | None]:
    var = circuit.variables[name]
    slots = _slots(circuit)
    mine = set(var.labels)
    written_at = max((slots[c] for c in var.computed_by if c in slots), default=None)
    intruders = [(c.slot, c.name) for c in circuit.components
                 if c.name not in var.computed_by and mine & set(c.writes)]
    reads: list[tuple[int, str]] = []
    for e in circuit.edges:
        if e.constant or not (mine & set(e.directions)):
            continue
        label = e.receiver if e.input is None else f"{e.receiver}.{e.input}"
        if (slots[e.receiver], label) not in reads:
            reads.append((slots[e.receiver], label))
    out, first = {}, None
    for site in sites:
        at = site_slot(site)
        written = written_at is not None and written_at < at
        over = tuple(n for s, n in intruders if written_at is not None and written_at < s < at)
        readers = tuple(label for s, label in reads if s > at)
        present = written and not over
        if present and first is None:
            first = site
        out[site] = SiteTruth(name, site, present, bool(readers) and written, readers, over)
    return out, first


# ---------------------------------------------------------------------------------------
# Inputs, labels, activations


def encode(model: CompiledProgram, inputs: Sequence[Sequence]) -> np.ndarray:
    """``[B, max_seq_len + 1]`` int32 ids: BOS, the tokens, PAD."""
    ids_of = model.token_ids
    width = model.config.max_seq_len + 1
    out = np.full((len(inputs), width), ids_of[model.pad], np.int32)
    out[:, 0] = ids_of[model.bos]
    for b, xs in enumerate(inputs):
        if len(xs) > model.config.max_seq_len:
            raise ValueError(f"input {b} has {len(xs)} tokens; the model takes at most "
                             f"{model.config.max_seq_len}")
        out[b, 1: 1 + len(xs)] = [ids_of[t] for t in xs]
    return out


def _positions(inputs: Sequence[Sequence]) -> np.ndarray:
    rows = [(b, t) for b, xs in enumerate(inputs) for t in range(1, len(xs) + 1)]
    return np.asarray(rows, np.int64).reshape(-1, 2)


def _class_index(values: tuple, can_be_none: bool, value) -> int | None:
    if value is None:
        return len(values) if can_be_none else None
    for j, v in enumerate(values):
        if type(v) is type(value) and v == value:
            return j
    for j, v in enumerate(values):
        if same_value(v, value):
            return j
    return None


def _labels_from_values(var, per_input: Sequence[list | None], lengths: Sequence[int]
                        ) -> tuple[np.ndarray, np.ndarray]:
    cat = var.encoding == "categorical"
    targets, valid = [], []
    for vals, n in zip(per_input, lengths, strict=True):
        for t in range(n):
            x = None if vals is None or t >= len(vals) else vals[t]
            if vals is None:
                targets.append(0 if cat else np.nan)
                valid.append(False)
            elif cat:
                j = _class_index(var.values, var.can_be_none, x)
                targets.append(-1 if j is None else j)
                valid.append(j is not None)
            else:
                ok = x is not None and not isinstance(x, str)
                targets.append(float(x) if ok else np.nan)
                valid.append(ok)
    dtype = np.int64 if cat else np.float64
    return np.asarray(targets, dtype), np.asarray(valid, bool)


def _interpreted(program, inputs: Sequence[Sequence], causal: bool) -> list[dict]:
    from rasplab.compiler.trace import interpret

    return [interpret(program, list(xs), causal=causal)[0] for xs in inputs]


def _labels_from_model(model: CompiledProgram, var, site: str, acts: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    coords = acts.astype(np.float64) @ np.linalg.pinv(var.basis).T  # [N, k]
    if var.encoding == "numerical":
        return coords[:, 0].copy(), np.ones(len(coords), bool)
    best, top = coords.argmax(axis=1), coords.max(axis=1)
    none = len(var.values) if var.can_be_none else -1
    targets = np.where(top > 0.5, best, none).astype(np.int64)
    return targets, targets >= 0


def _rung(model: CompiledProgram) -> str:
    return str(model.meta.get("variant", {}).get("rung", "compiled"))


def model_accuracy(model: CompiledProgram) -> float | None:
    """The measured held-out accuracy an approximate model carries (None when exact)."""
    if model.is_exact:
        return None
    v = model.meta.get("variant", {})
    heldout = v.get("heldout")
    if isinstance(heldout, dict) and isinstance(heldout.get("inputs"), int | float):
        return float(heldout["inputs"])  # the fraction of held-out inputs read out right
    for key in ("accuracy", "heldout_accuracy", "held_out_accuracy"):
        if isinstance(v.get(key), int | float):
            return float(v[key])
    return None


def feature_truth(
    model: CompiledProgram, inputs: Sequence[Sequence], *, program=None,
    variables: Sequence[str] | None = None,
) -> FeatureTruth:
    """The truth for every planted variable (or those named) on ``inputs`` (token lists
    without BOS). ``program``: the RASP program (as written or as compiled) whose
    interpreter gives the labels; without it an exact model's labels are read off its own
    write sites, and an approximate model is refused."""
    from rasplab.compiler.interchange import as_compiled

    inputs = tuple(tuple(xs) for xs in inputs)
    if not inputs:
        raise ValueError("feature_truth needs at least one input")
    circuit = model.planted
    names = list(circuit.variables) if variables is None else list(variables)
    unknown = [v for v in names if v not in circuit.variables]
    if unknown:
        raise ValueError(f"no variable {unknown[0]!r}; the variables are "
                         f"{sorted(circuit.variables)}")
    names = [v for v in names if circuit.variables[v].basis.shape[1] > 0]
    sites = residual_sites(model)
    ids = encode(model, inputs)
    positions = _positions(inputs)
    lengths = [len(xs) for xs in inputs]
    causal = bool(model.config.causal)
    compiled_program = None
    if program is not None:
        compiled_program = as_compiled(program, model.vocab, model.config.max_seq_len)
        interp = _interpreted(compiled_program, inputs, causal)
        labels_from = "interpreter"
    elif model.is_exact:
        interp, labels_from = None, "model"
        acts_at = {}
    else:
        raise ValueError("an approximate model's labels need its program (pass program=): "
                         "its own activations hold the variables only approximately")
    out: dict[str, VariableTruth] = {}
    for name in names:
        var = circuit.variables[name]
        per_site, first = _site_truths(circuit, name, sites)
        if interp is not None:
            targets, valid = _labels_from_values(var, [vals.get(name) for vals in interp],
                                                 lengths)
        else:
            site = first or (sites[0] if sites else None)
            if site is None:
                raise ValueError("a model without layers has no residual site to label from")
            if site not in acts_at:
                acts_at[site] = activations(model, ids, site, positions=positions)
            targets, valid = _labels_from_model(model, var, site, acts_at[site])
        out[name] = VariableTruth(
            name=name, encoding=var.encoding, values=tuple(var.values),
            can_be_none=var.can_be_none, computed_by=tuple(var.computed_by),
            write_site=first, basis=np.asarray(var.basis, np.float64),
            labels=tuple(var.labels), targets=targets, valid=valid, sites=per_site)
    return FeatureTruth(
        name=str(model.meta.get("name", model.output)), rung=_rung(model),
        is_exact=bool(model.is_exact), model_accuracy=model_accuracy(model),
        labels_from=labels_from, inputs=inputs, ids=ids, positions=positions,
        sites=tuple(sites), variables=out, output=circuit.output,
        d_model=int(model.config.d_model), causal=causal, program=compiled_program)


def _ids_and_positions(model: CompiledProgram, inputs, positions):
    if isinstance(inputs, FeatureTruth):
        return inputs.ids, inputs.positions
    arr = np.asarray(inputs) if isinstance(inputs, np.ndarray) else None
    if arr is not None and arr.ndim == 2 and np.issubdtype(arr.dtype, np.integer):
        if positions is None:
            ids_of = model.token_ids
            real = (arr != ids_of[model.bos]) & (arr != ids_of[model.pad])
            positions = np.argwhere(real)
        return arr, np.asarray(positions, np.int64)
    seqs = [list(xs) for xs in inputs]
    return encode(model, seqs), _positions(seqs)


def all_activations(model: CompiledProgram, inputs, *, params: dict | None = None,
                    sites: Sequence[str] | None = None,
                    positions: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every residual site's activations (or the named sites'), ``[N, d_model]`` float32,
    positions flattened as in :func:`feature_truth`. ``inputs``: a ``FeatureTruth``, token
    lists, or ``[B, T]`` ids. One jitted forward pass."""
    from rasplab.analysis.sites import SiteConfig, capture

    ids, pos = _ids_and_positions(model, inputs, positions)
    wanted = list(sites) if sites is not None else residual_sites(model)
    cache = capture(params if params is not None else model.params, ids, SiteConfig.of(model))
    missing = [s for s in wanted if s not in cache]
    if missing:
        raise ValueError(f"no activation site {missing[0]!r}; the residual sites are "
                         f"{residual_sites(model)}")
    return {s: np.asarray(cache[s])[pos[:, 0], pos[:, 1]] for s in wanted}


def activations(model: CompiledProgram, inputs, site: str, *, params: dict | None = None,
                positions: np.ndarray | None = None) -> np.ndarray:
    """The activations at ``site`` (any activation site with a ``[batch, pos, ...]``
    layout), ``[N, ...]`` at the real positions, aligned with the truth's labels."""
    return all_activations(model, inputs, params=params, sites=[site],
                           positions=positions)[site]


__all__ = [
    "RESID_SITES", "SiteTruth", "VariableTruth", "FeatureTruth", "feature_truth",
    "activations", "all_activations", "residual_sites", "site_slot", "encode",
    "model_accuracy",
]
