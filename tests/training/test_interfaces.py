"""Every way to start a run accepts the same TrainConfig fields with the same bounds."""

from __future__ import annotations

import argparse

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from training.interfaces import TrainingRunCreateSerializer, TrainingRunForm
from training.management.commands.train import Command as TrainCommand
from training.ml import TrainConfig
from training.ml.cli import add_config_arguments
from training.ml.config import field_choices, field_kind

PUBLIC = {f.name for f in TrainConfig.public_fields()}
BOUNDED = [f for f in TrainConfig.public_fields() if f.metadata.get("min") is not None]


def command_dests() -> set[str]:
    parser = TrainCommand().create_parser("manage.py", "train")
    return {a.dest for a in parser._actions} & (
        {f.name for f in TrainConfig.public_fields()} | {"num_workers"}
    )


def ml_cli_dests() -> set[str]:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return {a.dest for a in parser._actions} - {"help"}


def test_every_interface_offers_the_same_fields():
    assert set(TrainingRunForm().fields) == PUBLIC
    assert set(TrainingRunCreateSerializer().fields) == PUBLIC
    assert command_dests() == PUBLIC
    # The ML core's own CLI also sets where to find weights and loader processes.
    assert ml_cli_dests() == PUBLIC | {"num_workers", "weights_dir"}


def below(f) -> float:
    return field_kind(f)(f.metadata["min"]) - (1 if field_kind(f) is int else 1e-9)


def above(f) -> float:
    return field_kind(f)(f.metadata["max"]) + (1 if field_kind(f) is int else 1e-9)


@pytest.mark.parametrize("f", BOUNDED, ids=lambda f: f.name)
def test_bounds_are_the_same_in_the_form_and_the_serializer(f):
    for value, ok in ((f.metadata["min"], True), (below(f), False), (above(f), False)):
        form = TrainingRunForm({f.name: value})
        serializer = TrainingRunCreateSerializer(data={f.name: value})
        assert form.is_valid() is ok, (f.name, value, form.errors)
        assert serializer.is_valid() is ok, (f.name, value, serializer.errors)


@pytest.mark.parametrize("f", BOUNDED, ids=lambda f: f.name)
def test_the_command_refuses_what_the_form_refuses(f, db):
    flag = f"--{f.name.replace('_', '-')}={above(f)}"
    with pytest.raises(CommandError, match=f.name):
        call_command("train", flag)


def test_choices_are_the_same_everywhere():
    for f in TrainConfig.public_fields():
        choices = field_choices(f)
        if choices is None:
            continue
        form_choices = [c for c, _ in TrainingRunForm().fields[f.name].choices]
        serializer_choices = list(TrainingRunCreateSerializer().fields[f.name].choices)
        assert form_choices == serializer_choices == list(choices), f.name


def test_fields_left_empty_take_the_servers_defaults(settings):
    form = TrainingRunForm({"epochs": "3", "base_lr": ""})
    assert form.is_valid(), form.errors
    assert form.overrides() == {"epochs": 3}
