from google.rpc import status_pb2 as _status_pb2
from trading.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitRequest(_message.Message):
    __slots__ = ("order_id", "account_id", "symbol", "side", "type", "time_in_force", "quantity", "price")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    account_id: str
    symbol: str
    side: _common_pb2.Side
    type: _common_pb2.OrderType
    time_in_force: _common_pb2.TimeInForce
    quantity: int
    price: int
    def __init__(self, order_id: _Optional[str] = ..., account_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., type: _Optional[_Union[_common_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_common_pb2.TimeInForce, str]] = ..., quantity: _Optional[int] = ..., price: _Optional[int] = ...) -> None: ...

class ExecutionReport(_message.Message):
    __slots__ = ("order_id", "symbol", "status", "filled_quantity", "resting_quantity", "trades", "replayed")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RESTING_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    symbol: str
    status: _common_pb2.OrderStatus
    filled_quantity: int
    resting_quantity: int
    trades: _containers.RepeatedCompositeFieldContainer[_common_pb2.Trade]
    replayed: bool
    def __init__(self, order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.OrderStatus, str]] = ..., filled_quantity: _Optional[int] = ..., resting_quantity: _Optional[int] = ..., trades: _Optional[_Iterable[_Union[_common_pb2.Trade, _Mapping]]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("symbol", "order_id")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    order_id: str
    def __init__(self, symbol: _Optional[str] = ..., order_id: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("order_id", "canceled_quantity")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CANCELED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    canceled_quantity: int
    def __init__(self, order_id: _Optional[str] = ..., canceled_quantity: _Optional[int] = ...) -> None: ...

class GetBookRequest(_message.Message):
    __slots__ = ("symbol", "depth")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    depth: int
    def __init__(self, symbol: _Optional[str] = ..., depth: _Optional[int] = ...) -> None: ...

class BookSnapshot(_message.Message):
    __slots__ = ("symbol", "bids", "asks", "sequence")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    bids: _containers.RepeatedCompositeFieldContainer[_common_pb2.PriceLevel]
    asks: _containers.RepeatedCompositeFieldContainer[_common_pb2.PriceLevel]
    sequence: int
    def __init__(self, symbol: _Optional[str] = ..., bids: _Optional[_Iterable[_Union[_common_pb2.PriceLevel, _Mapping]]] = ..., asks: _Optional[_Iterable[_Union[_common_pb2.PriceLevel, _Mapping]]] = ..., sequence: _Optional[int] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("symbols",)
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class MarketEvent(_message.Message):
    __slots__ = ("trade", "quote")
    TRADE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    trade: _common_pb2.Trade
    quote: _common_pb2.Quote
    def __init__(self, trade: _Optional[_Union[_common_pb2.Trade, _Mapping]] = ..., quote: _Optional[_Union[_common_pb2.Quote, _Mapping]] = ...) -> None: ...

class MarketEventBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[MarketEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[MarketEvent, _Mapping]]] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("symbol", "orders")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    orders: _containers.RepeatedCompositeFieldContainer[SubmitRequest]
    def __init__(self, symbol: _Optional[str] = ..., orders: _Optional[_Iterable[_Union[SubmitRequest, _Mapping]]] = ...) -> None: ...

class SubmittedOrder(_message.Message):
    __slots__ = ("report", "error")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    report: ExecutionReport
    error: _status_pb2.Status
    def __init__(self, report: _Optional[_Union[ExecutionReport, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[SubmittedOrder]
    def __init__(self, orders: _Optional[_Iterable[_Union[SubmittedOrder, _Mapping]]] = ...) -> None: ...
