"""A blanket upgrade's grants by state, counted where they move (BlanketUpgradeTally).

Every service that inserts a blanket grant or changes its state calls ``count_grants`` in
the same transaction with what it did; the operator's pages read the sums.
"""

import random

from django.db.models import F, OuterRef, QuerySet, Subquery, Sum

from upgrades.models import BlanketUpgradeTally, SpeedGrant

# A grant's state to the tally's column.
COLUMN = {
    SpeedGrant.State.PENDING: "pending",
    SpeedGrant.State.ACTIVE: "confirmed",
    SpeedGrant.State.DECLINED: "declined",
    SpeedGrant.State.REVERTED: "reverted",
    SpeedGrant.State.ENDED: "ended",
}


def count_grants(*, blanket_id: int, moves: dict[tuple[str | None, str], int]) -> None:
    """Add ``moves`` — {(from state or None for a new grant, to state): grants} — to one
    of the blanket's tally rows. One UPDATE (two statements more the first time a
    blanket is counted: its rows are made then)."""
    deltas: dict[str, int] = {}
    for (from_state, to_state), count in moves.items():
        if not count:
            continue
        if from_state is not None:
            deltas[COLUMN[from_state]] = deltas.get(COLUMN[from_state], 0) - count
        deltas[COLUMN[to_state]] = deltas.get(COLUMN[to_state], 0) + count
    deltas = {column: delta for column, delta in deltas.items() if delta}
    if not deltas:
        return
    slot = random.randrange(BlanketUpgradeTally.SLOTS)  # noqa: S311 (spreads, not secret)
    change = {column: F(column) + delta for column, delta in deltas.items()}
    rows = BlanketUpgradeTally.objects.filter(blanket_upgrade_id=blanket_id, slot=slot)
    if not rows.update(**change):
        BlanketUpgradeTally.objects.bulk_create(
            [
                BlanketUpgradeTally(blanket_upgrade_id=blanket_id, slot=n)
                for n in range(BlanketUpgradeTally.SLOTS)
            ],
            ignore_conflicts=True,
        )
        rows.update(**change)


def _grants_in(columns) -> Sum:
    """The sum of these tally columns over a blanket's rows."""
    first, *rest = columns
    return Sum(sum((F(column) for column in rest), F(first)))


def with_grants_in(blankets: QuerySet, states) -> QuerySet:
    """``blankets`` that have grants in one of ``states``: read from their tally rows (a
    few each), not from the grants, whose (blanket, state) index a run moving them
    would read again and again past the entries it has just left behind."""
    grants = (
        BlanketUpgradeTally.objects.filter(blanket_upgrade_id=OuterRef("pk"))
        .order_by()
        .values("blanket_upgrade_id")
        .annotate(grants=_grants_in(COLUMN[state] for state in states))
        .values("grants")
    )
    return blankets.annotate(grants_in_states=Subquery(grants)).filter(grants_in_states__gt=0)


def grants_of(blanket_id: int) -> int:
    """All of a blanket upgrade's grants, whatever their state."""
    rows = BlanketUpgradeTally.objects.filter(blanket_upgrade_id=blanket_id)
    return rows.aggregate(grants=_grants_in(BlanketUpgradeTally.STATES))["grants"] or 0
