"""How numbers are shown to people: rounded, never 0.22499999999999998."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.utils.html import format_html


def number(value: Any, digits: int = 4) -> str:
    """`value` rounded to `digits` decimals without trailing zeros; "–" for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{round(float(value), digits):g}"


def admin_number(field: str, description: str, digits: int = 4) -> Callable:
    """An admin column or read-only field showing a float field rounded."""

    @admin.display(description=description, ordering=field)
    def show(self, obj) -> str:
        return number(getattr(obj, field), digits)

    show.__name__ = f"{field}_display"
    return show


def rounded(value: Any, digits: int = 4) -> Any:
    """JSON-like data with every float rounded, for people to read."""
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else value
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    return value


def admin_json(field: str, description: str, digits: int = 4) -> Callable:
    """An admin read-only field showing a JSON field with its floats rounded."""

    @admin.display(description=description)
    def show(self, obj) -> str:
        text = json.dumps(rounded(getattr(obj, field), digits), indent=1)
        return format_html('<pre class="json">{}</pre>', text)

    show.__name__ = f"{field}_display"
    return show
