"""Passwords out of anything others read: the spec on the parent run, messages, error lines.

Database and server URLs may carry `user:password@`; every copy the sweep shows or stores
elsewhere (the MLflow parent run, the terminal, the journal's refusal file) goes through
`redact`, which keeps the user and host so the line still says which store it means.
"""

from __future__ import annotations

import re

# scheme://user:password@ ; the password runs to the last @ before the path, as URL parsers read it
_CREDENTIALS = re.compile(r"(\b[A-Za-z][\w+.-]*://[^/:@\s]*):[^/\s]*@")


def redact(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return _CREDENTIALS.sub(r"\1:***@", text)
