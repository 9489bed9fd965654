"""The report's appendix: what every figure in it means, in the words of docs/DESIGN.md §4.

Headline measures are keyed by their registry key (itscm/measures/registry.py); a measure
registered without a definition here fails tests/test_report.py, so the appendix cannot fall
behind the registry. The other figures the report shows follow them.
"""

from __future__ import annotations

HEADLINE_DEFINITIONS: dict[str, str] = {
    "coverage_pct": (
        "Of the live services in the policy's critical tiers, the share that meets every control at the end of "
        "the as-of day: RTO and RPO set; BIA impact cost set; a recovery strategy "
        "other than none; an approved plan; that plan reviewed within the tier's review interval; a passed drill "
        "of at least the tier's minimum type within its test interval; the latest passed drill that recorded a "
        "recovery time achieved (RTA) within the RTO; the RTO within the MTPD where one is set. The period plays "
        "no part: coverage is a snapshot."
    ),
    "attainment_pct": (
        "Of the recovery events of the period whose service has an RTO, the share recovered "
        "within it (RTA at most the RTO). A recovery event is an incident opened in the period and recovered by "
        "the as-of day (RTA = restored, else resolved as an estimate, minus opened) or a drill held in the "
        "period that recorded an RTA, whatever its outcome. Events with no matched service or no RTO are counted "
        "apart, never dropped."
    ),
    "downtime_cost": (
        "Each incident's outage (opened to restored; else to resolved, an estimate; an open "
        "incident counts to the end of the as-of day) clipped to the period, in hours, times its service's BIA "
        "impact cost per hour. Hours of incidents without a matched service or without a cost per hour are "
        "unpriced: counted, never priced. It has no target; it is compared with the previous period."
    ),
    "stale_pct": (
        "Of the plans (drafts included, retired left out) of live services, the share that is "
        "overdue (never reviewed, or the review or the test past due by the tier's intervals) or never tested "
        "(no passed drill of its service for it or for no particular plan)."
    ),
    "inventory_currency_pct": (
        "Of the live assets behind live critical services, the share verified (by audit, discovery or review) on or "
        "before the as-of day and no longer ago than the policy's verification interval for the service's tier "
        "(by default 90 days for the critical tiers); an asset behind several services must meet the strictest of "
        "their intervals. Never verified counts as unverified. At a past date the figure is left out when the "
        "store cannot say: more than a tenth of those assets were verified since, and only the latest "
        "verification is kept."
    ),
}

OTHER_DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("Previous period", "The period of the same length ending the day before this one starts, with the same "
                        "business units and tiers, taken as of its last day. The change is this period's figure "
                        "minus the previous one's, in points for percentages."),
    ("Target states", "A figure is on target when it meets its target, at risk when it misses by at most 5 "
                      "points, breached beyond that. Targets are the organisation's own (Administration page)."),
    ("Gaps of a business unit", "Uncovered critical services + stale plans + live services without a plan; units "
                                "are ranked by gaps, then RTO breaches, then downtime cost."),
    ("RTO breach", "A recovery event whose RTA exceeds its service's RTO. RTA / RTO is how many times the "
                   "objective the recovery took."),
    ("Cost beyond RTO", "The part of an outage after opened + RTO, in hours, times the cost per hour."),
    ("Plan states", "Never tested (no passed drill), overdue (never reviewed or past a due date), due within 30 "
                    "days (the earlier due date within 30 days of the as-of date), current; a live service "
                    "with no draft or approved plan is 'no plan'. A plan's owner is its own, else its service's."),
    ("Annual cost of major ICT incidents", "Per calendar year in the store, up to the as-of date: the incidents "
                                           "with an outage in the year, their outage hours in it, the downtime "
                                           "cost and the cost beyond RTO, for the report's business units, tiers "
                                           "and scope (DORA Art. 11(10) asks for the aggregated annual cost)."),
)
