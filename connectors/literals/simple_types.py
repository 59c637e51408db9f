"""The ``SimpleType`` enum values as plain class attributes.

``SimpleType.INTEGER`` goes through protobuf's ``EnumTypeWrapper.__getattr__`` on every access,
which showed up as the largest single cost of reading a long list; these are looked up once.
"""

from flyteidl2.core.types_pb2 import SimpleType

__all__ = ["Simple"]


class Simple:
    NONE = SimpleType.Value("NONE")
    INTEGER = SimpleType.Value("INTEGER")
    FLOAT = SimpleType.Value("FLOAT")
    STRING = SimpleType.Value("STRING")
    BOOLEAN = SimpleType.Value("BOOLEAN")
    DATETIME = SimpleType.Value("DATETIME")
    DURATION = SimpleType.Value("DURATION")
    BINARY = SimpleType.Value("BINARY")
    ERROR = SimpleType.Value("ERROR")
    STRUCT = SimpleType.Value("STRUCT")
