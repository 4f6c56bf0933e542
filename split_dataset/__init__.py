"""split_dataset: N-d arrays stored as folders of numbered HDF5 blocks, read and written fast."""

from __future__ import annotations

__version__ = "0.5.0.dev0"

from .blocks import Blocks
from .channels import ChannelStack, Recording, open_recording
from .dataset import SplitDataset
from .errors import (
    BlockFileError,
    BlockWriteError,
    ChunkReadError,
    DestinationError,
    IncompleteDatasetWarning,
    MetadataError,
    NoStackError,
    NotASplitDatasetError,
    SplitDatasetError,
)
from .exports import export
from .inspection import describe, verify
from .metadata import Origin
from .profiling import ReadProfile, profile_reads
from .streaming import SplitDatasetWriter
from .threads import get_default_threads, set_default_threads
from .view import DatasetView
from .writer import EmptySplitDataset, save_to_split_dataset

__all__ = [
    "Blocks",
    "ChannelStack",
    "DatasetView",
    "Origin",
    "Recording",
    "open_recording",
    "EmptySplitDataset",
    "save_to_split_dataset",
    "SplitDataset",
    "SplitDatasetWriter",
    "BlockFileError",
    "BlockWriteError",
    "ChunkReadError",
    "DestinationError",
    "IncompleteDatasetWarning",
    "MetadataError",
    "NoStackError",
    "NotASplitDatasetError",
    "SplitDatasetError",
    "describe",
    "export",
    "get_default_threads",
    "set_default_threads",
    "verify",
    "ReadProfile",
    "profile_reads",
]
