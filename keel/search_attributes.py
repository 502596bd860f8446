"""Keel's custom search attributes: how operators find runs in the Temporal UI."""

from temporalio.common import SearchAttributeKey

__all__ = ["ALL", "KEEL_AGENT", "KEEL_COST_USD", "KEEL_STATUS", "KEEL_SUBMITTER"]

KEEL_AGENT = SearchAttributeKey.for_keyword("KeelAgent")
KEEL_STATUS = SearchAttributeKey.for_keyword("KeelStatus")
KEEL_COST_USD = SearchAttributeKey.for_float("KeelCostUsd")
KEEL_SUBMITTER = SearchAttributeKey.for_keyword("KeelSubmitter")
"""The principal that started the run (absent when the API ran open); on runs started before
principals, the id of the key, which is also that key's principal's id (`keel.keys`)."""
ALL = (KEEL_AGENT, KEEL_STATUS, KEEL_COST_USD, KEEL_SUBMITTER)
