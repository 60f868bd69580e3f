"""Near duplicates are grouped, not withheld.

Adds Image.group_key (the sha256 of the group's first image), Image.review_reason,
ScrapeJob.grouped / conflicts and the "flag" change. Existing rows: every image
gets its group from its `near_duplicate_of` chain; near duplicates that waited for
review although their look-alike has the same label become active members of
their group (recorded as reviewed by the system, so the next scheduled retrain
counts them); those that stay in review get their reason.
"""

from django.db import migrations, models
from django.db.models import Q


def _root(pk, parent_of):
    seen = set()
    while parent_of.get(pk) is not None and pk not in seen:
        seen.add(pk)
        pk = parent_of[pk]
    return pk


def group_and_release(apps, schema_editor):
    Image = apps.get_model("datasets", "Image")
    ImageChange = apps.get_model("datasets", "ImageChange")
    rows = {
        pk: (sha, parent, label, status, kind)
        for pk, sha, parent, label, status, kind in Image.objects.values_list(
            "pk", "sha256", "near_duplicate_of_id", "label_id", "status", "source_kind"
        ).iterator(chunk_size=5000)
    }
    parent_of = {pk: row[1] for pk, row in rows.items() if row[1] in rows}
    by_group = {}
    released, conflicts, deleted_like, feedback = [], [], [], []
    for pk, (sha, parent, label, status, kind) in rows.items():
        by_group.setdefault(rows[_root(pk, parent_of)][0], []).append(pk)
        if status != "review":
            continue
        if kind == "feedback":
            feedback.append(pk)
        elif parent not in rows:
            continue  # in review for another reason (none existed before this)
        elif rows[parent][3] == "deleted":
            deleted_like.append(pk)
        elif rows[parent][2] == label:
            released.append(pk)
        else:
            conflicts.append(pk)
    for key, pks in by_group.items():
        for start in range(0, len(pks), 500):
            Image.objects.filter(pk__in=pks[start : start + 500]).update(group_key=key)
    for reason, pks in (
        ("conflict", conflicts),
        ("deleted", deleted_like),
        ("feedback", feedback),
    ):
        Image.objects.filter(pk__in=pks).update(review_reason=reason)
    ImageChange.objects.bulk_create(
        [
            ImageChange(
                image_id=pk,
                action="review",
                old_label_id=rows[pk][2],
                old_status="review",
                new_status="active",
            )
            for pk in released
        ],
        batch_size=500,
    )
    for start in range(0, len(released), 500):
        Image.objects.filter(pk__in=released[start : start + 500]).update(
            status="active"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0002_groups"),
    ]

    operations = [
        migrations.AddField(
            model_name="image",
            name="group_key",
            field=models.CharField(db_index=True, default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="image",
            name="review_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("conflict", "Looks like an image of another label"),
                    ("deleted", "Looks like an image a curator deleted"),
                    ("feedback", "Prediction feedback"),
                    ("flagged", "Flagged by a curator"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="scrapejob",
            name="grouped",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="scrapejob",
            name="conflicts",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name="imagechange",
            name="action",
            field=models.CharField(
                choices=[
                    ("relabel", "Relabel"),
                    ("delete", "Delete"),
                    ("restore", "Restore"),
                    ("review", "Mark reviewed"),
                    ("keep", "Keep"),
                    ("flag", "Send to review"),
                ],
                max_length=16,
            ),
        ),
        migrations.RemoveConstraint(
            model_name="imagechange",
            name="imagechange_action_valid",
        ),
        migrations.AddConstraint(
            model_name="imagechange",
            constraint=models.CheckConstraint(
                condition=Q(
                    action__in=["relabel", "delete", "restore", "review", "keep", "flag"]
                ),
                name="imagechange_action_valid",
            ),
        ),
        migrations.RunPython(group_and_release, migrations.RunPython.noop),
    ]
