"""NSGA-II through pymoo's ask/tell interface, over the integer genome.

pymoo proposes, we evaluate elsewhere, pymoo learns: the algorithm object never sees an
evaluator. Offspring that decode to an architecture already evaluated are answered from
the archive instead of being evaluated again.

With ``steady_state=True`` (asynchronous search) it takes results in batches of any size:
the first ``pop_size`` proposals are random; from then on every ``tell`` runs pymoo's
rank-and-crowding survival over the population, the newcomers and the first front of
everything told so far (so a member of the final front that crowding once dropped comes back,
and a tell costs the same after 30,000 results as after 300), and every ``ask`` mates
that population with pymoo's own operators (binary tournament, SBX, polynomial mutation).
"""

from __future__ import annotations

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from nas.genome import EvaluationResult, Genome
from nas.strategies.base import Archive, fresh_samples


def integer_nsga2(pop_size: int, sampling=None) -> NSGA2:
    return NSGA2(
        pop_size=pop_size,
        sampling=sampling if sampling is not None else IntegerRandomSampling(),
        crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
        mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )


def space_problem(space, n_obj: int, n_constr: int) -> Problem:
    return Problem(n_var=space.n_var, n_obj=n_obj, n_ieq_constr=n_constr, xl=np.zeros(space.n_var),
                   xu=space.upper_bounds.astype(float), vtype=int)


class NSGA2Strategy:
    name = "nsga2"

    def __init__(self, space, objectives: list[str], constraints: dict[str, float], pop_size: int, seed: int,
                 steady_state: bool = False):
        self.space = space
        self.steady_state = steady_state
        self._rng = np.random.default_rng(seed)
        self._asked: set[Genome] = set()
        self.archive = Archive(objectives, constraints)
        self.pop_size = pop_size
        self.algorithm = integer_nsga2(pop_size)
        self.algorithm.setup(space_problem(space, len(objectives), len(constraints)),
                             termination=("n_gen", 10**9), seed=seed, verbose=False)
        self._pending = None
        self._pending_genomes: list[Genome] = []
        self._pop_genomes: list[Genome] = []  # steady state: the current population
        self._front: list[Genome] = []  # steady state: first front of everything told
        self.max_skips = 50

    def ask(self, n: int) -> list[Genome]:
        if self.steady_state:
            return self._ask_steady(n)
        return self._ask_generation(n)

    def _ask_generation(self, n: int) -> list[Genome]:
        """The next generation's offspring that were never evaluated. A generation made only of
        known architectures is answered from the archive at once and the next one is asked
        (up to ``max_skips`` times), so a converged population never stalls the search."""
        if self._pending is not None:
            raise RuntimeError("ask() called twice without tell()")
        for _ in range(self.max_skips):
            pop = self.algorithm.ask()
            genomes = [self.space.canonical(x) for x in pop.get("X")]
            pop.set("X", np.array([g.values for g in genomes], dtype=float))
            self._pending, self._pending_genomes = pop, genomes
            new: list[Genome] = []
            for g in genomes:
                if g not in self.archive and g not in new:
                    new.append(g)
            if new:
                return new
            self.tell([])
        return []

    # ------------------------------------------------------------------ steady state (async)
    def _ask_steady(self, n: int) -> list[Genome]:
        taken = set(self.archive.results) | self._asked
        alg = self.algorithm
        if alg.pop is None or len(alg.pop) == 0:
            out = fresh_samples(self.space, self._rng, n, taken)  # the initial population
        else:
            out = []
            for _ in range(self.max_skips):
                off = alg.mating.do(alg.problem, alg.pop, max(n - len(out), 2), algorithm=alg,
                                    random_state=alg.random_state)
                for x in off.get("X") if len(off) else []:
                    g = self.space.canonical(x)
                    if g not in taken and g not in out:
                        out.append(g)
                if len(out) >= n:
                    break
            out = out[:n]
            if len(out) < n:
                out += fresh_samples(self.space, self._rng, n - len(out), taken | set(out))
        self._asked.update(out)
        return out

    def _tell_steady(self, results: list[EvaluationResult]) -> None:
        from pymoo.core.population import Population

        for r in results:
            self._asked.discard(r.genome)
        alg = self.algorithm
        self._update_front(results)
        if alg.pop is None or len(alg.pop) == 0:
            if len(self.archive) < self.pop_size:  # still gathering the initial population
                return
            pool = list(self.archive.results)
        elif not results:
            return
        else:
            pool = list(dict.fromkeys([*self._pop_genomes, *(r.genome for r in results), *self._front]))
        # rank-and-crowding survival over the current population, the newcomers and the first front
        # of everything told so far: a front member once dropped by crowding comes back when the
        # members that crowded it out are dominated later, and the cost stays bounded by the
        # population and the front, not the archive (which grows to tens of thousands at scale)
        pop = Population.new(X=np.array([g.values for g in pool], dtype=float),
                             F=np.array([self.archive.F(g) for g in pool]))
        if self.archive.constraints:
            pop.set("G", np.array([self.archive.G(g) for g in pool]))
        alg.pop = alg.survival.do(alg.problem, pop, n_survive=self.pop_size, algorithm=alg,
                                  random_state=alg.random_state)
        self._pop_genomes = [self.space.canonical(x) for x in alg.pop.get("X")]

    def _update_front(self, results: list[EvaluationResult]) -> None:
        """The non-dominated (feasible first) members of everything told, kept incrementally."""
        cand = list(dict.fromkeys([*self._front, *(r.genome for r in results)]))
        if not cand:
            return
        F = np.array([self.archive.ranked_point(g) for g in cand])
        self._front = [cand[i] for i in sorted(NonDominatedSorting().do(F, only_non_dominated_front=True))]

    def tell(self, results: list[EvaluationResult]) -> None:
        self.archive.add(results)
        if self.steady_state:
            self._tell_steady(results)
            return
        if self._pending is None:
            return
        missing = [g for g in self._pending_genomes if g not in self.archive]
        if missing:
            raise RuntimeError(f"tell() is missing results for {len(missing)} asked genome(s)")
        pop = self._pending
        pop.set("F", np.array([self.archive.F(g) for g in self._pending_genomes]))
        if self.archive.constraints:
            pop.set("G", np.array([self.archive.G(g) for g in self._pending_genomes]))
        self.algorithm.tell(infills=pop)
        self._pending, self._pending_genomes = None, []
