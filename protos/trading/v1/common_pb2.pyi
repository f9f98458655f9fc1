from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    SIDE_BUY: _ClassVar[Side]
    SIDE_SELL: _ClassVar[Side]

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    ORDER_TYPE_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_MARKET: _ClassVar[OrderType]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_IN_FORCE_UNSPECIFIED: _ClassVar[TimeInForce]
    TIME_IN_FORCE_GTC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_IOC: _ClassVar[TimeInForce]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_NEW: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELED: _ClassVar[OrderStatus]
    ORDER_STATUS_REJECTED: _ClassVar[OrderStatus]
SIDE_UNSPECIFIED: Side
SIDE_BUY: Side
SIDE_SELL: Side
ORDER_TYPE_UNSPECIFIED: OrderType
ORDER_TYPE_LIMIT: OrderType
ORDER_TYPE_MARKET: OrderType
TIME_IN_FORCE_UNSPECIFIED: TimeInForce
TIME_IN_FORCE_GTC: TimeInForce
TIME_IN_FORCE_IOC: TimeInForce
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_NEW: OrderStatus
ORDER_STATUS_PARTIALLY_FILLED: OrderStatus
ORDER_STATUS_FILLED: OrderStatus
ORDER_STATUS_CANCELED: OrderStatus
ORDER_STATUS_REJECTED: OrderStatus

class Trade(_message.Message):
    __slots__ = ("trade_id", "symbol", "price", "quantity", "maker_order_id", "taker_order_id", "taker_side", "maker_account_id", "taker_account_id", "timestamp_ns", "sequence")
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MAKER_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TAKER_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TAKER_SIDE_FIELD_NUMBER: _ClassVar[int]
    MAKER_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TAKER_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    trade_id: str
    symbol: str
    price: int
    quantity: int
    maker_order_id: str
    taker_order_id: str
    taker_side: Side
    maker_account_id: str
    taker_account_id: str
    timestamp_ns: int
    sequence: int
    def __init__(self, trade_id: _Optional[str] = ..., symbol: _Optional[str] = ..., price: _Optional[int] = ..., quantity: _Optional[int] = ..., maker_order_id: _Optional[str] = ..., taker_order_id: _Optional[str] = ..., taker_side: _Optional[_Union[Side, str]] = ..., maker_account_id: _Optional[str] = ..., taker_account_id: _Optional[str] = ..., timestamp_ns: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class Quote(_message.Message):
    __slots__ = ("symbol", "bid_price", "bid_quantity", "ask_price", "ask_quantity", "last_price", "last_quantity", "volume", "trade_count", "timestamp_ns", "sequence")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BID_PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ASK_PRICE_FIELD_NUMBER: _ClassVar[int]
    ASK_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_FIELD_NUMBER: _ClassVar[int]
    LAST_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    TRADE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    bid_price: int
    bid_quantity: int
    ask_price: int
    ask_quantity: int
    last_price: int
    last_quantity: int
    volume: int
    trade_count: int
    timestamp_ns: int
    sequence: int
    def __init__(self, symbol: _Optional[str] = ..., bid_price: _Optional[int] = ..., bid_quantity: _Optional[int] = ..., ask_price: _Optional[int] = ..., ask_quantity: _Optional[int] = ..., last_price: _Optional[int] = ..., last_quantity: _Optional[int] = ..., volume: _Optional[int] = ..., trade_count: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class PriceLevel(_message.Message):
    __slots__ = ("price", "quantity", "order_count")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_COUNT_FIELD_NUMBER: _ClassVar[int]
    price: int
    quantity: int
    order_count: int
    def __init__(self, price: _Optional[int] = ..., quantity: _Optional[int] = ..., order_count: _Optional[int] = ...) -> None: ...
