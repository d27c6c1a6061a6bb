"""Observability: usage and cost tracking (the original's ``proxilion.observability``)."""

from __future__ import annotations

from proxilion.observability.cost_tracker import (
    DEFAULT_PRICING,
    BudgetPolicy,
    CostSummary,
    CostTracker,
    ModelPricing,
    UsageRecord,
    create_cost_tracker,
)

__all__ = [
    "DEFAULT_PRICING",
    "BudgetPolicy",
    "CostSummary",
    "CostTracker",
    "ModelPricing",
    "UsageRecord",
    "create_cost_tracker",
]
