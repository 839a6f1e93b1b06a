"""Sales reps: how many, their hidden traits, and which leads they own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.demo_crm import parameters as P


@dataclass(frozen=True)
class Owners:
    """Rep ``i`` has id ``ids[i]`` (``U001``…), ``skill`` (conversion logit, deal speed),
    ``optimism`` (share of the mean time to win it puts in the expected close date) and
    ``p_move`` (probability it moves a passed close date instead of leaving it)."""

    ids: list[str]
    skill: np.ndarray
    optimism: np.ndarray
    p_move: np.ndarray
    share: np.ndarray  # share of incoming leads

    def __len__(self) -> int:
        return len(self.ids)


def draw_owners(rng: np.random.Generator, n_leads: int) -> Owners:
    """About one rep per 2,000 leads, clamped to [8, 150]."""
    n = int(np.clip(round(n_leads / P.LEADS_PER_REP), P.MIN_REPS, P.MAX_REPS))
    share = rng.gamma(4.0, size=n)
    return Owners(
        ids=[f"U{i:03d}" for i in range(1, n + 1)],
        skill=rng.normal(0.0, P.SKILL_SD, size=n),
        optimism=rng.uniform(*P.OPTIMISM_RANGE, size=n),
        p_move=rng.uniform(*P.MOVE_CLOSE_DATE_RANGE, size=n),
        share=share / share.sum(),
    )


def assign_leads(rng: np.random.Generator, owners: Owners, n: int) -> np.ndarray:
    """Owner index per lead; -1 (unassigned) for about 1% of leads."""
    owner = rng.choice(len(owners), size=n, p=owners.share).astype(np.int32)
    owner[rng.random(n) < P.UNASSIGNED_SHARE] = -1
    return owner
