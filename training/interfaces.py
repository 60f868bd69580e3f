"""The run form, the API serializer and the `train` command's flags, all generated
from TrainConfig's field metadata (training.ml.config.option), so that every
interface accepts the same fields with the same bounds, choices and help.

`python -m training.ml` builds its flags from the same metadata
(training/ml/cli.py), without Django.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from django import forms
from rest_framework import serializers

from config.fields import StrictJSONSerializer
from training.ml import TrainConfig
from training.ml.cli import config_help
from training.ml.config import field_choices, field_kind

# The run form shows these first; the others are under "More settings".
MAIN_FIELDS = ("backbone", "epochs", "image_size")


def public_fields() -> list[dataclasses.Field]:
    return TrainConfig.public_fields()


def config_overrides(values: dict[str, Any]) -> dict[str, Any]:
    """The values a user gave (empty fields keep the server's defaults)."""
    names = {f.name for f in public_fields()}
    return {k: v for k, v in values.items() if k in names and v not in (None, "")}


def _bounds(f: dataclasses.Field) -> dict[str, Any]:
    kind = field_kind(f)
    bounds = {}
    for key in ("min", "max"):
        value = f.metadata.get(key)
        if value is not None:
            bounds[f"{key}_value"] = kind(value)
    return bounds


def form_field(f: dataclasses.Field) -> forms.Field:
    choices = field_choices(f)
    common = {
        "required": False,
        "help_text": config_help(f),
        "initial": f.default,
        "label": f.name.replace("_", " ").capitalize(),
    }
    if choices is not None:
        return forms.TypedChoiceField(
            choices=[(c, c) for c in choices], coerce=str, **common
        )
    if field_kind(f) is int:
        return forms.IntegerField(**_bounds(f), **common)
    if field_kind(f) is float:
        return forms.FloatField(**_bounds(f), **common)
    return forms.CharField(max_length=255, **common)


def serializer_field(f: dataclasses.Field) -> serializers.Field:
    choices = field_choices(f)
    common = {"required": False, "help_text": config_help(f)}
    if choices is not None:
        return serializers.ChoiceField(choices=list(choices), **common)
    if field_kind(f) is int:
        return serializers.IntegerField(**_bounds(f), **common)
    if field_kind(f) is float:
        return serializers.FloatField(allow_null=True, **_bounds(f), **common)
    return serializers.CharField(max_length=255, **common)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One optional flag per public field; unset flags keep the server's defaults."""
    for f in public_fields():
        flags = [f"--{f.name.replace('_', '-')}"]
        if f.name == "base_lr":
            flags.append("--lr")
        parser.add_argument(
            *flags,
            dest=f.name,
            type=field_kind(f),
            choices=field_choices(f),
            default=None,
            help=config_help(f),
        )


class TrainingRunForm(forms.Form):
    """Start a run: every public TrainConfig field, empty ones take the defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for f in public_fields():
            self.fields[f.name] = form_field(f)
        self.order_fields(MAIN_FIELDS)

    def overrides(self) -> dict[str, Any]:
        return config_overrides(self.cleaned_data)


TrainingRunCreateSerializer = type(
    "TrainingRunCreateSerializer",
    # JSON values of the documented types only: DRF would read "5" as 5.
    (StrictJSONSerializer,),
    {
        "__doc__": "Start a run; fields left out take the server's defaults.",
        **{f.name: serializer_field(f) for f in public_fields()},
    },
)
