"""Keel's custom search attributes: how operators find runs in the Temporal UI."""

from temporalio.common import SearchAttributeKey

__all__ = ["ALL", "KEEL_AGENT", "KEEL_COST_USD", "KEEL_STATUS"]

KEEL_AGENT = SearchAttributeKey.for_keyword("KeelAgent")
KEEL_STATUS = SearchAttributeKey.for_keyword("KeelStatus")
KEEL_COST_USD = SearchAttributeKey.for_float("KeelCostUsd")
ALL = (KEEL_AGENT, KEEL_STATUS, KEEL_COST_USD)
