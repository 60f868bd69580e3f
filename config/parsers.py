from __future__ import annotations

from rest_framework import exceptions, parsers


class SafeJSONParser(parsers.JSONParser):
    """JSONParser that answers 400, not 500, to absurdly nested input."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(
                "JSON parse error - nested too deeply."
            ) from None
