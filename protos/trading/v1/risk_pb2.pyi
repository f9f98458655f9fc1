from google.rpc import status_pb2 as _status_pb2
from trading.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReserveRequest(_message.Message):
    __slots__ = ("reservation_id", "account_id", "symbol", "side", "quantity", "price")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    account_id: str
    symbol: str
    side: _common_pb2.Side
    quantity: int
    price: int
    def __init__(self, reservation_id: _Optional[str] = ..., account_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., quantity: _Optional[int] = ..., price: _Optional[int] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("reservation_id", "account_id", "symbol", "side", "open_quantity", "price", "reserved_cash")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    OPEN_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    RESERVED_CASH_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    account_id: str
    symbol: str
    side: _common_pb2.Side
    open_quantity: int
    price: int
    reserved_cash: int
    def __init__(self, reservation_id: _Optional[str] = ..., account_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., open_quantity: _Optional[int] = ..., price: _Optional[int] = ..., reserved_cash: _Optional[int] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("reservation", "replayed")
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    reservation: Reservation
    replayed: bool
    def __init__(self, reservation: _Optional[_Union[Reservation, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("reservation_id", "account_id")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    account_id: str
    def __init__(self, reservation_id: _Optional[str] = ..., account_id: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("released_quantity", "released_cash")
    RELEASED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RELEASED_CASH_FIELD_NUMBER: _ClassVar[int]
    released_quantity: int
    released_cash: int
    def __init__(self, released_quantity: _Optional[int] = ..., released_cash: _Optional[int] = ...) -> None: ...

class ApplyFillRequest(_message.Message):
    __slots__ = ("reservation_id", "trade_id", "price", "quantity", "account_id")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    trade_id: str
    price: int
    quantity: int
    account_id: str
    def __init__(self, reservation_id: _Optional[str] = ..., trade_id: _Optional[str] = ..., price: _Optional[int] = ..., quantity: _Optional[int] = ..., account_id: _Optional[str] = ...) -> None: ...

class ApplyFillResponse(_message.Message):
    __slots__ = ("account", "replayed")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    account: Account
    replayed: bool
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class RiskLimits(_message.Message):
    __slots__ = ("max_order_quantity", "max_order_notional", "max_position")
    MAX_ORDER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDER_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    MAX_POSITION_FIELD_NUMBER: _ClassVar[int]
    max_order_quantity: int
    max_order_notional: int
    max_position: int
    def __init__(self, max_order_quantity: _Optional[int] = ..., max_order_notional: _Optional[int] = ..., max_position: _Optional[int] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("symbol", "quantity", "reserved_buy", "reserved_sell")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RESERVED_BUY_FIELD_NUMBER: _ClassVar[int]
    RESERVED_SELL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quantity: int
    reserved_buy: int
    reserved_sell: int
    def __init__(self, symbol: _Optional[str] = ..., quantity: _Optional[int] = ..., reserved_buy: _Optional[int] = ..., reserved_sell: _Optional[int] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("account_id", "cash", "reserved_cash", "buying_power", "positions", "limits")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CASH_FIELD_NUMBER: _ClassVar[int]
    RESERVED_CASH_FIELD_NUMBER: _ClassVar[int]
    BUYING_POWER_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    cash: int
    reserved_cash: int
    buying_power: int
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    limits: RiskLimits
    def __init__(self, account_id: _Optional[str] = ..., cash: _Optional[int] = ..., reserved_cash: _Optional[int] = ..., buying_power: _Optional[int] = ..., positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ..., limits: _Optional[_Union[RiskLimits, _Mapping]] = ...) -> None: ...

class SettleRequest(_message.Message):
    __slots__ = ("account_id", "fills", "releases")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    FILLS_FIELD_NUMBER: _ClassVar[int]
    RELEASES_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    fills: _containers.RepeatedCompositeFieldContainer[ApplyFillRequest]
    releases: _containers.RepeatedCompositeFieldContainer[ReleaseRequest]
    def __init__(self, account_id: _Optional[str] = ..., fills: _Optional[_Iterable[_Union[ApplyFillRequest, _Mapping]]] = ..., releases: _Optional[_Iterable[_Union[ReleaseRequest, _Mapping]]] = ...) -> None: ...

class SettledFill(_message.Message):
    __slots__ = ("replayed", "error")
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    replayed: bool
    error: _status_pb2.Status
    def __init__(self, replayed: _Optional[bool] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class SettledRelease(_message.Message):
    __slots__ = ("released", "error")
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    released: ReleaseResponse
    error: _status_pb2.Status
    def __init__(self, released: _Optional[_Union[ReleaseResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class SettleResponse(_message.Message):
    __slots__ = ("fills", "releases")
    FILLS_FIELD_NUMBER: _ClassVar[int]
    RELEASES_FIELD_NUMBER: _ClassVar[int]
    fills: _containers.RepeatedCompositeFieldContainer[SettledFill]
    releases: _containers.RepeatedCompositeFieldContainer[SettledRelease]
    def __init__(self, fills: _Optional[_Iterable[_Union[SettledFill, _Mapping]]] = ..., releases: _Optional[_Iterable[_Union[SettledRelease, _Mapping]]] = ...) -> None: ...

class ReserveBatchRequest(_message.Message):
    __slots__ = ("account_id", "reservations")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    reservations: _containers.RepeatedCompositeFieldContainer[ReserveRequest]
    def __init__(self, account_id: _Optional[str] = ..., reservations: _Optional[_Iterable[_Union[ReserveRequest, _Mapping]]] = ...) -> None: ...

class ReservedItem(_message.Message):
    __slots__ = ("reserved", "error")
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    reserved: ReserveResponse
    error: _status_pb2.Status
    def __init__(self, reserved: _Optional[_Union[ReserveResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class ReserveBatchResponse(_message.Message):
    __slots__ = ("reservations",)
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    reservations: _containers.RepeatedCompositeFieldContainer[ReservedItem]
    def __init__(self, reservations: _Optional[_Iterable[_Union[ReservedItem, _Mapping]]] = ...) -> None: ...
