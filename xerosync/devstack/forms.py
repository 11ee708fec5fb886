"""Reading the HTML forms the connector and the sandbox's consent page serve, as a script
(a benchmark, a test) walking them without a browser needs to."""

import re
from html import unescape

_HIDDEN = re.compile(r'<input[^>]*type="hidden"[^>]*>', re.IGNORECASE)


def hidden_fields(html: str) -> dict[str, str]:
    """A page's hidden form fields (the CSRF token, the consent request)."""
    fields = {}
    for tag in _HIDDEN.findall(html):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[unescape(name.group(1))] = unescape(value.group(1)) if value else ""
    return fields
