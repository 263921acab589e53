"""The L1 -> L2 tier: archive chunks (Parquet + JSON manifest) in the ObjectStore.

chunkfile.py  one chunk's bytes: Parquet, compressed with the policy's codec
manifest.py   the JSON manifest beside each chunk, and the object keys
archiver.py   plan / run / verify / restore / list (flarectl archive drives it)
reader.py     messages_after over L1 and L2, for sync
"""

from __future__ import annotations

from .archiver import ArchivePolicy, Archiver, ChunkMismatch, RunReport, VerifyResult
from .reader import TieredHistory

__all__ = ["ArchivePolicy", "Archiver", "ChunkMismatch", "RunReport", "TieredHistory", "VerifyResult"]
