"""EmoMusic's split rule, shared by the loader (:mod:`bench_tasks.emomusic`) and the demo generator."""

import hashlib


def artist_split(artist: str) -> str:
    """``train`` or ``valid`` for a development song by its artist (MARBLE's and jukemir's rule).

    The artist name is lower-cased and kept to ASCII letters and spaces, runs of
    spaces collapsed; its SHA-1, read as an integer, modulo 10 is 8 or 9 for valid.
    """
    norm = "".join(c for c in artist.lower() if ord(c) < 128 and (c.isalpha() or c.isspace()))
    norm = " ".join(norm.split())
    return "train" if int(hashlib.sha1(norm.encode("utf-8")).hexdigest(), 16) % 10 < 8 else "valid"
