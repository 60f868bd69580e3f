"""JSON input that is what the schema says: DRF coerces 0 to "0" and "5" to 5."""

from __future__ import annotations

from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def _json_types(field: serializers.Field) -> tuple[type, ...] | None:
    if isinstance(field, serializers.BooleanField):
        return (bool,)
    if isinstance(field, serializers.IntegerField):
        return (int,)
    if isinstance(field, serializers.FloatField):
        return (int, float)
    if isinstance(
        field,
        (serializers.CharField, serializers.ChoiceField, serializers.RelatedField),
    ):
        return (str,)
    if isinstance(field, serializers.ListField):
        return (list,)
    if isinstance(field, (serializers.DictField, serializers.Serializer)):
        return (dict,)
    return None


def _type_error(field: serializers.Field, value) -> str | None:
    types = _json_types(field)
    if value is None:
        return None if field.allow_null else "This field may not be null."
    if types is None:
        return None
    wrong = not isinstance(value, types) or (
        isinstance(value, bool) and bool not in types
    )
    if wrong:
        names = {bool: "boolean", int: "integer", float: "number", str: "string"}
        names |= {list: "array", dict: "object"}
        return f"Expected {' or '.join(names[t] for t in types)}."
    if isinstance(field, serializers.ListField) and not isinstance(
        field.child, serializers.Serializer
    ):
        for i, item in enumerate(value):
            if (error := _type_error(field.child, item)) is not None:
                return f"Item {i}: {error}"
    return None


class StrictJSONSerializer(serializers.Serializer):
    """A serializer for JSON bodies that refuses values of the wrong JSON type."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {
                name: [error]
                for name, field in self.fields.items()
                if not field.read_only
                and name in data
                and (error := _type_error(field, data[name])) is not None
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.URI)
class URIField(serializers.CharField):
    """Text the schema calls a URI; the service that fetches it says what is wrong
    with it (a bad scheme, a private address) with its own codes."""
