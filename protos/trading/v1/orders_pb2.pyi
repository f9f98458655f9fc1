from google.rpc import status_pb2 as _status_pb2
from trading.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_EVENT_TYPE_UNSPECIFIED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_ACCEPTED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_FILLED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_CANCELED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_REJECTED: _ClassVar[OrderEventType]
ORDER_EVENT_TYPE_UNSPECIFIED: OrderEventType
ORDER_EVENT_TYPE_ACCEPTED: OrderEventType
ORDER_EVENT_TYPE_FILLED: OrderEventType
ORDER_EVENT_TYPE_CANCELED: OrderEventType
ORDER_EVENT_TYPE_REJECTED: OrderEventType

class Order(_message.Message):
    __slots__ = ("order_id", "client_order_id", "account_id", "symbol", "side", "type", "time_in_force", "quantity", "price", "filled_quantity", "filled_notional", "status", "reject_reason", "created_at_ns", "updated_at_ns")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FILLED_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    client_order_id: str
    account_id: str
    symbol: str
    side: _common_pb2.Side
    type: _common_pb2.OrderType
    time_in_force: _common_pb2.TimeInForce
    quantity: int
    price: int
    filled_quantity: int
    filled_notional: int
    status: _common_pb2.OrderStatus
    reject_reason: str
    created_at_ns: int
    updated_at_ns: int
    def __init__(self, order_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., account_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., type: _Optional[_Union[_common_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_common_pb2.TimeInForce, str]] = ..., quantity: _Optional[int] = ..., price: _Optional[int] = ..., filled_quantity: _Optional[int] = ..., filled_notional: _Optional[int] = ..., status: _Optional[_Union[_common_pb2.OrderStatus, str]] = ..., reject_reason: _Optional[str] = ..., created_at_ns: _Optional[int] = ..., updated_at_ns: _Optional[int] = ...) -> None: ...

class Fill(_message.Message):
    __slots__ = ("trade_id", "order_id", "price", "quantity", "aggressor", "timestamp_ns")
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AGGRESSOR_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    trade_id: str
    order_id: str
    price: int
    quantity: int
    aggressor: bool
    timestamp_ns: int
    def __init__(self, trade_id: _Optional[str] = ..., order_id: _Optional[str] = ..., price: _Optional[int] = ..., quantity: _Optional[int] = ..., aggressor: _Optional[bool] = ..., timestamp_ns: _Optional[int] = ...) -> None: ...

class PlaceOrderRequest(_message.Message):
    __slots__ = ("account_id", "client_order_id", "symbol", "side", "type", "time_in_force", "quantity", "price")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    client_order_id: str
    symbol: str
    side: _common_pb2.Side
    type: _common_pb2.OrderType
    time_in_force: _common_pb2.TimeInForce
    quantity: int
    price: int
    def __init__(self, account_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., type: _Optional[_Union[_common_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_common_pb2.TimeInForce, str]] = ..., quantity: _Optional[int] = ..., price: _Optional[int] = ...) -> None: ...

class PlaceOrderResponse(_message.Message):
    __slots__ = ("order", "fills", "replayed")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    FILLS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    order: Order
    fills: _containers.RepeatedCompositeFieldContainer[Fill]
    replayed: bool
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ..., fills: _Optional[_Iterable[_Union[Fill, _Mapping]]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("account_id", "order_id", "client_order_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    order_id: str
    client_order_id: str
    def __init__(self, account_id: _Optional[str] = ..., order_id: _Optional[str] = ..., client_order_id: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("order", "canceled_quantity")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    CANCELED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    order: Order
    canceled_quantity: int
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ..., canceled_quantity: _Optional[int] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("account_id", "order_id", "client_order_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    order_id: str
    client_order_id: str
    def __init__(self, account_id: _Optional[str] = ..., order_id: _Optional[str] = ..., client_order_id: _Optional[str] = ...) -> None: ...

class ListOrdersRequest(_message.Message):
    __slots__ = ("account_id", "symbol", "statuses", "page_size", "page_token")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    symbol: str
    statuses: _containers.RepeatedScalarFieldContainer[_common_pb2.OrderStatus]
    page_size: int
    page_token: str
    def __init__(self, account_id: _Optional[str] = ..., symbol: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_common_pb2.OrderStatus, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOrdersResponse(_message.Message):
    __slots__ = ("orders", "next_page_token")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[Order]
    next_page_token: str
    def __init__(self, orders: _Optional[_Iterable[_Union[Order, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StreamOrderEventsRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class OrderEvent(_message.Message):
    __slots__ = ("type", "order", "fill", "sequence")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    FILL_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    type: OrderEventType
    order: Order
    fill: Fill
    sequence: int
    def __init__(self, type: _Optional[_Union[OrderEventType, str]] = ..., order: _Optional[_Union[Order, _Mapping]] = ..., fill: _Optional[_Union[Fill, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...

class OrderEntryRequest(_message.Message):
    __slots__ = ("batch_id", "orders")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    orders: _containers.RepeatedCompositeFieldContainer[PlaceOrderRequest]
    def __init__(self, batch_id: _Optional[int] = ..., orders: _Optional[_Iterable[_Union[PlaceOrderRequest, _Mapping]]] = ...) -> None: ...

class OrderEntryResponse(_message.Message):
    __slots__ = ("batch_id", "results")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    results: _containers.RepeatedCompositeFieldContainer[OrderEntryResult]
    def __init__(self, batch_id: _Optional[int] = ..., results: _Optional[_Iterable[_Union[OrderEntryResult, _Mapping]]] = ...) -> None: ...

class OrderEntryResult(_message.Message):
    __slots__ = ("placed", "error")
    PLACED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    placed: PlaceOrderResponse
    error: _status_pb2.Status
    def __init__(self, placed: _Optional[_Union[PlaceOrderResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...
