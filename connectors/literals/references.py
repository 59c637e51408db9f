"""Files, directories and DataFrames: references to data, never the data itself.

The flyte SDK writes ``flyte.io.File`` and ``flyte.io.Dir`` as a Blob literal (uri, format,
single or multipart) and ``flyte.io.DataFrame`` as a StructuredDataset literal (uri, format,
the declared columns); a content hash, when there is one, rides on the literal's ``hash``. A
connector receives and returns the small frozen dataclasses below; the service never reads or
writes the data behind them.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from flyteidl2.core.literals_pb2 import (
    Blob,
    BlobMetadata,
    Literal,
    Scalar,
    StructuredDataset,
    StructuredDatasetMetadata,
)
from flyteidl2.core.types_pb2 import BlobType, StructuredDatasetType

__all__ = [
    "PICKLE_FORMAT",
    "DataFrameRef",
    "DirRef",
    "FileRef",
    "blob_literal",
    "blob_to_ref",
    "dataframe_literal",
    "dataframe_to_ref",
    "flyte_io_to_ref",
    "ref_class",
]

# The blob format of the flyte SDK's pickle fallback: Python objects the service cannot read.
PICKLE_FORMAT = "PythonPickle"


@dataclass(frozen=True)
class _BlobRef:
    """What a file and a directory reference share: a Blob literal's uri, format and hash."""

    uri: str
    format: str = ""
    hash: str | None = None

    @property
    def path(self) -> str:
        """The uri, under the name ``flyte.io.File`` and ``flyte.io.Dir`` give it."""
        return self.uri

    @property
    def name(self) -> str:
        """The last part of the uri, as ``flyte.io.File.name`` and ``flyte.io.Dir.name`` have it."""
        return posixpath.basename(self.uri.rstrip("/"))


@dataclass(frozen=True)
class FileRef(_BlobRef):
    """A file in blob storage, as ``flyte.io.File`` refers to one."""


@dataclass(frozen=True)
class DirRef(_BlobRef):
    """A directory (a prefix) in blob storage, as ``flyte.io.Dir`` refers to one."""


@dataclass(frozen=True)
class DataFrameRef:
    """A DataFrame stored in blob storage (``flyte.io.DataFrame``): where, and in which format."""

    uri: str
    format: str = ""
    hash: str | None = None


def flyte_io_to_ref(value: object) -> object:
    """The reference for a ``flyte.io.File``/``Dir``/``DataFrame`` (or a subclass), recognised by
    its class without importing flyte; any other value as it is. A connector written for the flyte
    SDK may return these wherever a FileRef/DirRef/DataFrameRef is accepted."""
    for cls in type(value).__mro__:
        ref = _FLYTE_IO_REFS.get(cls.__name__)
        if ref is not None and cls.__module__.startswith("flyte.io"):
            uri = getattr(value, "uri" if ref is DataFrameRef else "path", None)
            return ref(
                uri=uri or "", format=getattr(value, "format", None) or "", hash=getattr(value, "hash", None) or None
            )
    return value


_FLYTE_IO_REFS: dict[str, type] = {"File": FileRef, "Dir": DirRef, "DataFrame": DataFrameRef}


def ref_class(dimensionality: BlobType.BlobDimensionality.ValueType) -> type[FileRef] | type[DirRef]:
    """The reference for a blob of this dimensionality: multipart is a directory, single a file."""
    return DirRef if dimensionality == BlobType.MULTIPART else FileRef


def blob_to_ref(literal: Literal, dimensionality: BlobType.BlobDimensionality.ValueType | None) -> FileRef | DirRef:
    """The reference in a Blob literal; ``dimensionality`` is the declared one (None: any).

    Raises ``TypeError`` when the blob has the other dimensionality or is a pickle.
    """
    blob = literal.scalar.blob
    blob_type = blob.metadata.type
    if blob_type.format == PICKLE_FORMAT:
        raise TypeError("the blob is a pickled Python object, which connectors cannot read")
    if dimensionality is not None and blob_type.dimensionality != dimensionality:
        raise TypeError(
            "the blob is a directory" if blob_type.dimensionality == BlobType.MULTIPART else "the blob is a file"
        )
    return ref_class(blob_type.dimensionality)(uri=blob.uri, format=blob_type.format, hash=literal.hash or None)


def blob_literal(ref: FileRef | DirRef) -> Literal:
    """The Blob literal the flyte SDK writes for a File or Dir with this uri, format and hash."""
    dimensionality = BlobType.MULTIPART if isinstance(ref, DirRef) else BlobType.SINGLE
    return Literal(
        scalar=Scalar(
            blob=Blob(
                metadata=BlobMetadata(type=BlobType(format=ref.format, dimensionality=dimensionality)),
                uri=ref.uri,
            )
        ),
        hash=ref.hash or "",
    )


def dataframe_to_ref(literal: Literal) -> DataFrameRef:
    """The reference in a StructuredDataset literal."""
    dataset = literal.scalar.structured_dataset
    return DataFrameRef(
        uri=dataset.uri,
        format=dataset.metadata.structured_dataset_type.format,
        hash=literal.hash or None,
    )


def dataframe_literal(ref: DataFrameRef, declared: StructuredDatasetType | None) -> Literal:
    """The StructuredDataset literal the flyte SDK writes for a DataFrame with this uri and format.

    Like the SDK, the declared dataset type (columns, format, external schema) is written as is;
    the reference's format fills in only where the declared format is the generic ``""``.
    """
    if not ref.uri:
        raise TypeError("a DataFrameRef needs a uri")
    dataset_type = StructuredDatasetType()
    if declared is not None:
        dataset_type.CopyFrom(declared)
    if not dataset_type.format and ref.format:
        dataset_type.format = ref.format
    return Literal(
        scalar=Scalar(
            structured_dataset=StructuredDataset(
                uri=ref.uri, metadata=StructuredDatasetMetadata(structured_dataset_type=dataset_type)
            )
        ),
        hash=ref.hash or "",
    )
