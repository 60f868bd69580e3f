"""The two groups curation needs: `curators` change, `viewers` read."""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db import migrations

CURATOR_PERMS = [
    ("datasets", "view_label"),
    ("datasets", "add_label"),
    ("datasets", "change_label"),
    ("datasets", "view_image"),
    ("datasets", "change_image"),
    ("datasets", "view_imagechange"),
    ("datasets", "view_scrapejob"),
    ("datasets", "add_scrapejob"),
]
VIEWER_MODELS = [
    ("datasets", "label"),
    ("datasets", "image"),
    ("datasets", "scrapejob"),
]


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    def perms(pairs):
        return [
            Permission.objects.get(content_type__app_label=app, codename=codename)
            for app, codename in pairs
        ]

    curators, _ = Group.objects.get_or_create(name="curators")
    curators.permissions.add(*perms(CURATOR_PERMS))
    viewers, _ = Group.objects.get_or_create(name="viewers")
    viewers.permissions.add(
        *perms((app, f"view_{model}") for app, model in VIEWER_MODELS)
    )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=["curators", "viewers"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
