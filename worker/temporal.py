"""Connecting to Temporal and preparing its namespace for Keel."""

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from keel import search_attributes
from keel.errors import KeelUserError
from keel.settings import Settings
from worker.plugin import KeelPlugin

__all__ = ["connect", "ensure_search_attributes"]


async def connect(settings: Settings, plugin: KeelPlugin | None = None) -> Client:
    """A client for Keel's namespace, with Keel's plugin."""
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            plugins=[plugin or KeelPlugin()],
        )
    except RuntimeError as err:  # the SDK's connect failure
        raise KeelUserError(
            f"cannot connect to Temporal at {settings.temporal_address} "
            f"(KEEL_TEMPORAL_ADDRESS): {err}"
        ) from err


async def ensure_search_attributes(client: Client) -> None:
    """Register Keel's search attributes in the client's namespace; a no-op when present."""
    wanted = {key.name: key.indexed_value_type for key in search_attributes.ALL}
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={
                    name: IndexedValueType.ValueType(int(kind)) for name, kind in wanted.items()
                },
            )
        )
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
