"""Pinyin initials of Chinese names, so a phone user finds 油烟扰民 by typing ``yy``.

pypinyin (a maintained dictionary of readings, with phrases for polyphonic characters) does the
reading; nothing here is a hand-made table. Characters without a reading (Latin letters,
digits) are kept as they are, lowercased.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4096)
def initials(text: str) -> str:
    """The first letter of each syllable of ``text`` (``"油烟扰民"`` → ``"yyrm"``)."""
    from pypinyin import Style, lazy_pinyin

    # errors="default" keeps what has no reading (Latin letters, digits) as it is.
    letters = lazy_pinyin(text, style=Style.FIRST_LETTER, errors="default")
    return "".join("".join(part.split()) for part in letters).lower()
