"""Connecting to Temporal and preparing its namespace for Keel."""

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from keel import search_attributes
from keel.encryption import EncryptionCodec, keyring
from keel.errors import KeelUserError
from keel.net import answers
from keel.payloads import FilePayloadStore, data_converter
from keel.settings import Settings
from keel.temporal.plugin import KeelPlugin

__all__ = ["connect", "ensure_search_attributes", "keel_data_converter"]


def keel_data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads (encrypted when a keyring is configured), large ones in the store."""
    store = FilePayloadStore(settings.payload_dir or settings.data_dir / "payloads")
    keys = keyring(settings)
    codec = None if keys is None else EncryptionCodec(keys)
    return data_converter(store, settings.payload_offload_bytes, codec=codec)


async def connect(settings: Settings, plugin: KeelPlugin | None = None) -> Client:
    """A client for Keel's namespace, with Keel's plugin (by default, a client-only one).

    An address nothing listens on is refused before the SDK's runtime starts: a process that
    then exits with that runtime's threads still trying to connect can crash on its way out.
    """
    if not await answers(settings.temporal_address):
        raise KeelUserError(
            f"cannot connect to Temporal at {settings.temporal_address} "
            "(KEEL_TEMPORAL_ADDRESS): nothing answers there"
        )
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            plugins=[plugin or KeelPlugin(data_converter=keel_data_converter(settings))],
        )
    except RuntimeError as err:  # the SDK's connect failure
        raise KeelUserError(
            f"cannot connect to Temporal at {settings.temporal_address} "
            f"(KEEL_TEMPORAL_ADDRESS): {err}"
        ) from err


async def ensure_search_attributes(client: Client) -> None:
    """Register Keel's search attributes in the client's namespace; a no-op when present.

    One request per attribute: a namespace that has the older ones still gets a new one.
    """
    for key in search_attributes.ALL:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=client.namespace,
                    search_attributes={
                        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
                    },
                )
            )
        except RPCError as err:
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
