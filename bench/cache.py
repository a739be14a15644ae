"""Old name of :mod:`bench.embedding_cache`, kept for the callers in ``bench.run`` and ``bench.run_memo``
until they import the new modules (nothing else is defined here)."""

from bench.embedding_cache import EmbeddingCache, chunk_size, embed_split, key_for
from bench.store import writable as _writable


def default_root():  # noqa: ANN201 - bench.run_memo's trust check of the cache folder
    from bench.store import kind_root

    return kind_root("embeddings")


__all__ = ["EmbeddingCache", "_writable", "chunk_size", "default_root", "embed_split", "key_for"]
