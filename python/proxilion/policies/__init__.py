"""Policies: the ``Policy`` base class, the thread-safe registry and built-in policies
(API.md section 2)."""

from __future__ import annotations

from proxilion.policies.base import ActionContext, Policy, PolicyWithScope, Scope
from proxilion.policies.builtin import (
    AllowAllPolicy,
    AttributeBasedPolicy,
    CompositePolicy,
    DenyAllPolicy,
    OwnershipPolicy,
    RoleBasedPolicy,
)
from proxilion.policies.registry import (
    PolicyRegistry,
    get_global_registry,
    reset_global_registry,
)

__all__ = [
    "ActionContext",
    "AllowAllPolicy",
    "AttributeBasedPolicy",
    "CompositePolicy",
    "DenyAllPolicy",
    "OwnershipPolicy",
    "Policy",
    "PolicyRegistry",
    "PolicyWithScope",
    "RoleBasedPolicy",
    "Scope",
    "get_global_registry",
    "reset_global_registry",
]
