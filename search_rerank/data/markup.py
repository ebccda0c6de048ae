"""A description written in HTML, as the words it shows.

Shops' exports (Shopify's ``Body (HTML)``, Merchant Center feeds, PIM exports) hold descriptions as the HTML their
product page renders. Indexed as written, a tag's attributes are words: ``<span style="color:red">`` made "red
chair" find a teak chair, and ``&amp;`` the word "amp". The text is read with the standard library's HTML parser,
which keeps a lone ``<`` as text ("size < 10 cm" has no tag), decodes every entity (``&amp;``, ``&nbsp;``,
``&#8482;``) and drops what a browser does not show (comments, scripts, styles); a text with neither a tag nor an
entity is no HTML and is kept exactly as written.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_MARKUP = re.compile(r"</?[A-Za-z][^<>]*>|<!--|&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")
"""What tells HTML from plain text: a tag, a comment or an entity."""
_HIDDEN = frozenset({"script", "style", "template"})
"""Elements whose content a page does not show as text."""


class _ShownText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def shown_text(text: str) -> str:
    """``text`` as a browser shows it, in words one space apart (a tag between two words parts them, as a block
    does on the page), where it holds HTML; as given where it does not."""
    if _MARKUP.search(text) is None:
        return text
    parser = _ShownText()
    parser.feed(text)
    parser.close()
    return " ".join(" ".join(parser.parts).split())
