"""Keel's custom search attributes: how operators find runs in the Temporal UI."""

from temporalio.common import SearchAttributeKey

__all__ = ["ALL", "KEEL_AGENT", "KEEL_STATUS"]

KEEL_AGENT = SearchAttributeKey.for_keyword("KeelAgent")
KEEL_STATUS = SearchAttributeKey.for_keyword("KeelStatus")
ALL = (KEEL_AGENT, KEEL_STATUS)
