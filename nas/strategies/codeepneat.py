"""CoDeepNEAT (Miikkulainen et al., 2017): modules and blueprints coevolved with NEAT.

Two populations evolve side by side, each with NEAT's mechanics:

* they **start minimal** (a module is one convolution, a blueprint one module slot) and grow
  only by mutation (add/remove layer or slot, add/remove edge, change a layer's type or a
  hyperparameter, point a slot at another species), so complexity is added only when it pays;
* **speciation** by a compatibility distance (:func:`nas.spaces.codeepneat.compatibility`)
  against each species' representative, with the distance threshold adapted towards a
  target number of species;
* **fitness sharing** (each species' offspring are proportional to its members' mean
  fitness), **elitism** (the best ``elitism`` members of each species survive unchanged) and
  **stagnation** culling (a species whose best fitness has not improved for ``stagnation``
  generations is removed, unless it is the best one);
* offspring come from the best ``survival_threshold`` share of a species, by
  Shortest-Edit-Path crossover (:mod:`nas.operators.sep`) of two parents and/or mutation.

``ask`` assembles networks: each takes the least-used blueprint and fills each of its slots
with the least-used module of the slot's species (ties broken by the generator), so every
member gets evaluated. ``tell`` credits every network's fitness to its blueprint and to each
module it used (the mean over the networks that used the member), then evolves both
populations. With several objectives a network's fitness comes from its place in the archive
ordered by feasibility, non-domination rank and crowding distance (1 best, 0 worst).

In generational mode ``tell`` receives a whole generation; in asynchronous mode it receives
the ``M`` results that just returned, and the populations evolve then (elites kept, members
still waiting for an evaluation kept, the rest replaced by offspring), so new networks are
assembled from the updated populations while the other ``K - M`` are in flight. A replaced member
that networks still in flight use is *retired*, not deleted: it is no longer assembled into new
networks and no longer counts towards the population, but it stays until those networks return,
so that their fitness is credited to it. (Keeping such members in the population instead froze it
once ``K`` reached the population size: least-used assembly then keeps every member in flight, so
no member was ever free to be replaced.)
All randomness comes from one seeded generator; nothing here touches torch, Dask or Prefect.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from nas.genome import EvaluationResult, Genome
from nas.spaces.codeepneat import CoDeepNEATSpace, compatibility, inner_nodes, to_dict
from nas.strategies.base import Archive


@dataclass
class Member:
    id: int
    graph: nx.DiGraph
    species: int | None = None
    fitness: float | None = None
    parents: tuple[int, ...] = ()
    born: int = 0


@dataclass
class Species:
    id: int
    representative: nx.DiGraph
    members: list[int] = field(default_factory=list)
    best: float = -math.inf
    last_improved: int = 0


class NEATPopulation:
    """One NEAT population (modules or blueprints) with speciation and reproduction."""

    def __init__(self, kind: str, size: int, target_species: int, distance):
        self.kind, self.size, self.target_species, self.distance = kind, size, target_species, distance
        self.members: dict[int, Member] = {}
        self.retired: dict[int, Member] = {}  # replaced, kept while networks in flight use them
        self.species: dict[int, Species] = {}
        self.threshold = 0.5
        self._next_member = 0
        self._next_species = 0

    def add(self, graph: nx.DiGraph, parents: tuple[int, ...] = (), born: int = 0) -> Member:
        m = Member(self._next_member, graph, parents=parents, born=born)
        self.members[m.id] = m
        self._next_member += 1
        return m

    def speciate(self) -> None:
        """Assign every member to the first species whose representative is closer than the
        threshold (a new species otherwise); then steer the threshold towards the target count."""
        for s in self.species.values():
            s.members = []
        for mid in sorted(self.members):
            m = self.members[mid]
            for sid in sorted(self.species):
                if self.distance(m.graph, self.species[sid].representative) < self.threshold:
                    break
            else:
                sid = self._next_species
                self._next_species += 1
                self.species[sid] = Species(sid, m.graph)
            m.species = sid
            self.species[sid].members.append(mid)
        for sid in [s for s, sp in self.species.items() if not sp.members]:
            del self.species[sid]
        for sp in self.species.values():  # the member closest to the old representative represents it now
            sp.representative = min((self.members[i] for i in sp.members),
                                    key=lambda m: (self.distance(m.graph, sp.representative), m.id)).graph
        n = len(self.species)
        if n > self.target_species:
            self.threshold = min(self.threshold * 1.25, 10.0)
        elif n < self.target_species:
            self.threshold = max(self.threshold / 1.25, 0.02)

    def reproduce(self, rng: np.random.Generator, generation: int, elitism: int, survival: float,
                  stagnation: int, make_child, busy: frozenset[int] = frozenset()) -> None:
        """Replace every evaluated non-elite member by offspring. Members not yet evaluated
        wait. A replaced member that is ``busy`` (used by networks still in flight) is retired:
        out of the population, but kept in :attr:`retired` until those networks return, so that
        their fitness is credited to it; retired members nothing in flight uses are dropped."""
        self.retired = {i: m for i, m in self.retired.items() if i in busy}

        def remove(i: int) -> None:
            m = self.members.pop(i)
            if i in busy:
                self.retired[i] = m

        evaluated = {sid: sorted((self.members[i] for i in sp.members if self.members[i].fitness is not None),
                                 key=lambda m: (-m.fitness, m.id)) for sid, sp in self.species.items()}
        for sid, sp in self.species.items():
            if evaluated[sid] and evaluated[sid][0].fitness > sp.best + 1e-12:
                sp.best, sp.last_improved = evaluated[sid][0].fitness, generation
        ranked = sorted(self.species.values(), key=lambda s: (-s.best, s.id))
        for sp in ranked[1:]:  # the best species is never culled
            if generation - sp.last_improved >= stagnation and evaluated[sp.id]:
                for i in sp.members:
                    remove(i)
                del self.species[sp.id]
                del evaluated[sp.id]
        keep: set[int] = set()
        for sid, sp in self.species.items():
            keep.update(m.id for m in evaluated[sid][:elitism])
            keep.update(i for i in sp.members if self.members[i].fitness is None)
        sids = [sid for sid in sorted(self.species) if evaluated[sid]]
        n_children = max(0, self.size - len(keep))
        if not sids or not n_children:
            return
        share = np.array([np.mean([m.fitness for m in evaluated[sid]]) + 1e-6 for sid in sids])
        quota = share / share.sum() * n_children
        counts = np.floor(quota).astype(int)
        for k in np.argsort(-(quota - counts), kind="stable")[: n_children - counts.sum()]:
            counts[k] += 1
        children = []
        for sid, count in zip(sids, counts):
            pool = evaluated[sid][: max(1, math.ceil(survival * len(evaluated[sid])))]
            for _ in range(int(count)):
                children.append(make_child(pool, rng))
        for i in [i for i in self.members if i not in keep]:
            remove(i)
        for graph, parents in children:
            self.add(graph, parents, generation + 1)

    def snapshot(self) -> dict:
        return {"threshold": self.threshold,
                "species": [{"id": s.id, "members": s.members, "best_fitness": None if s.best == -math.inf else s.best,
                             "last_improved": s.last_improved} for s in self.species.values()],
                "members": [{"id": m.id, "species": m.species, "fitness": m.fitness, "parents": list(m.parents),
                             "born": m.born, "graph": to_dict(m.graph)} for m in self.members.values()],
                "retired": [{"id": m.id, "species": m.species, "fitness": m.fitness}
                            for m in self.retired.values()]}


class CoDeepNEATStrategy:
    name = "codeepneat"

    def __init__(self, space: CoDeepNEATSpace, objectives: list[str], constraints: dict[str, float], seed: int,
                 cfg=None, generation_size: int = 20):
        from nas.config import CoDeepNEATConfig

        self.cfg = cfg or CoDeepNEATConfig()
        self.space = space
        self.archive = Archive(objectives, constraints)
        self.rng = np.random.default_rng(seed)
        self.generation_size = generation_size
        vocab = space.vocab
        dist = lambda a, b: compatibility(a, b, vocab)  # noqa: E731
        self.modules = NEATPopulation("module", self.cfg.module_population, self.cfg.module_species, dist)
        self.blueprints = NEATPopulation("blueprint", self.cfg.blueprint_population, self.cfg.blueprint_species, dist)
        for _ in range(self.cfg.module_population):
            self.modules.add(space.minimal_module(self.rng))
        self.modules.speciate()
        for _ in range(self.cfg.blueprint_population):
            self.blueprints.add(space.minimal_blueprint(self.rng, sorted(self.modules.species)))
        self.blueprints.speciate()
        self.uses: dict[Genome, list[tuple[int, tuple[int, ...]]]] = defaultdict(list)
        self.use_count: Counter = Counter()  # ("m" | "b", member id) -> networks assembled with it
        # ("m" | "b", member id) -> (network's place in ``uses``, use's place in its list, network), sorted:
        # the networks to credit a member with, so an update visits only the living members' networks
        self._used_by: dict[tuple[str, int], list[tuple[int, int, Genome]]] = defaultdict(list)
        self._place: dict[Genome, int] = {}
        self._asked: set[Genome] = set()
        self._told = 0
        self.generation = 0
        self.history: list[dict] = []

    # --- assembling --------------------------------------------------------------------
    def _least_used(self, kind: str, ids: list[int]) -> int:
        counts = np.array([self.use_count[(kind, i)] for i in ids])
        best = [i for i, c in zip(ids, counts) if c == counts.min()]
        return best[int(self.rng.integers(len(best)))]

    def _assemble(self, mutate_module: bool = False) -> tuple[Genome, int, tuple[int, ...]]:
        bp = self.blueprints.members[self._least_used("b", sorted(self.blueprints.members))]
        existing = sorted(self.modules.species)
        chosen: dict[int, int] = {}
        graph = bp.graph.copy()
        for n in inner_nodes(graph):
            s = graph.nodes[n]["attrs"]["species"]
            if s not in self.modules.species:  # that species died out: a slot takes a living one
                s = existing[int(self.rng.integers(len(existing)))]
                graph.nodes[n]["attrs"] = {**graph.nodes[n]["attrs"], "species": s}
                graph.nodes[n]["op"] = f"module:{s}"
            if s not in chosen:
                chosen[s] = self._least_used("m", sorted(self.modules.species[s].members))
        if mutate_module:  # every assembly was a duplicate: vary one module, as a new member of its species
            s = sorted(chosen)[int(self.rng.integers(len(chosen)))]
            parent = self.modules.members[chosen[s]]
            child = self.modules.add(self.space.mutate_module(parent.graph, self.rng, self.cfg.mutation),
                                     (parent.id,), self.generation)
            child.species = s
            self.modules.species[s].members.append(child.id)
            chosen[s] = child.id
        g = self.space.assemble(graph, {s: self.modules.members[i].graph for s, i in chosen.items()})
        return g, bp.id, tuple(sorted(chosen.values()))

    def ask(self, n: int) -> list[Genome]:
        out: list[Genome] = []
        tries = 0
        while len(out) < n and tries < 30 * n:
            tries += 1
            g, bp, mods = self._assemble(mutate_module=tries % 10 == 0)
            self.use_count[("b", bp)] += 1
            for m in mods:
                self.use_count[("m", m)] += 1
            use = (self._place.setdefault(g, len(self._place)), len(self.uses[g]), g)
            for key in (("b", bp), *(("m", m) for m in mods)):  # kept in that order (a repeated
                bisect.insort(self._used_by[key], use)        # network's place is an early one)
            self.uses[g].append((bp, mods))
            if g in self.archive or g in self._asked or g in out:
                continue
            out.append(g)
        self._asked.update(out)
        return out

    # --- learning ------------------------------------------------------------------------
    def tell(self, results: list[EvaluationResult]) -> None:
        self.archive.add(results)
        for r in results:
            self._asked.discard(r.genome)
        self._told += len(results)
        self.generation = self._told // max(1, self.generation_size)
        self._credit()
        c = self.cfg
        busy_m, busy_b = self._in_flight_members()
        self.modules.reproduce(self.rng, self.generation, c.elitism, c.survival_threshold, c.stagnation,
                               self._module_child, busy_m)
        self.modules.speciate()
        self.blueprints.reproduce(self.rng, self.generation, c.elitism, c.survival_threshold, c.stagnation,
                                  self._blueprint_child, busy_b)
        self.blueprints.speciate()
        self.history.append({"evaluated": self._told, "module_species": len(self.modules.species),
                             "blueprint_species": len(self.blueprints.species),
                             "module_threshold": self.modules.threshold,
                             "blueprint_threshold": self.blueprints.threshold})

    def _in_flight_members(self) -> tuple[frozenset[int], frozenset[int]]:
        """Modules and blueprints used by networks asked and not yet told (asynchronous mode)."""
        mods: set[int] = set()
        bps: set[int] = set()
        for g in self._asked:
            for bp, ms in self.uses.get(g, ()):
                bps.add(bp)
                mods.update(ms)
        return frozenset(mods), frozenset(bps)

    def _credit(self) -> None:
        """Network fitness in [0, 1] by place in the ranked archive, credited to members (mean)."""
        ranked = self.archive.ranked()
        n = len(ranked)
        fit = {g: (1.0 - k / (n - 1) if n > 1 else 1.0) for k, g in enumerate(ranked)}
        for g in ranked:
            if not self.archive.results[g].ok:
                fit[g] = 0.0
        alive = set()
        for kind, pop in (("m", self.modules), ("b", self.blueprints)):
            for m in [*pop.members.values(), *pop.retired.values()]:
                alive.add((kind, m.id))
                # in the order the networks were first assembled (the same sum, to the last bit, as
                # visiting every network)
                s = [fit[g] for _, _, g in self._used_by.get((kind, m.id), ()) if g in fit]
                m.fitness = float(np.mean(s)) if s else None
        for key in [k for k in self._used_by if k not in alive]:  # member ids are never reused
            del self._used_by[key]

    def _child(self, pool: list[Member], rng: np.random.Generator, mutate, cross):
        a = pool[int(rng.integers(len(pool)))]
        if self.cfg.crossover == "sep" and len(pool) > 1 and rng.random() < self.cfg.crossover_prob:
            b = pool[int(rng.integers(len(pool) - 1))]
            b = b if b.id != a.id else pool[-1]
            fitter, other = (a, b) if (a.fitness, -a.id) >= (b.fitness, -b.id) else (b, a)
            child = cross(fitter.graph, other.graph, rng)
            if child is not None:
                if rng.random() < 0.5:
                    child = mutate(child)
                return child, (fitter.id, other.id)
        return mutate(a.graph), (a.id,)

    def _module_child(self, pool, rng):
        return self._child(pool, rng, lambda g: self.space.mutate_module(g, rng, self.cfg.mutation),
                           self.space.crossover_module)

    def _blueprint_child(self, pool, rng):
        species = sorted(self.modules.species)
        return self._child(pool, rng, lambda g: self.space.mutate_blueprint(g, rng, self.cfg.mutation, species),
                           self.space.crossover_blueprint)

    def snapshot(self) -> dict:
        """Both populations, readable: every member's graph, species, fitness and parents."""
        return {"generation": self.generation, "evaluated": self._told,
                "modules": self.modules.snapshot(), "blueprints": self.blueprints.snapshot(),
                "history": self.history}
