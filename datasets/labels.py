"""Labels from what people type: names, derived slugs, queries, clashes in words.

The new-classifier page, its API and `manage.py classify`, the dataset page and the
admin all make and change labels through these functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils.text import slugify

from config.errors import Conflict, DomainError
from datasets.models import ImageStatus, Label
from datasets.search.urls import clean_urls

MAX_NAME = 64
MAX_QUERY = 255
MAX_QUERIES = 20


class InvalidClasses(DomainError):
    code = "invalid_classes"


class LabelClash(Conflict):
    code = "label_clash"


@dataclass(frozen=True)
class ClassSpec:
    """One class someone asked for: its name, search queries and pasted URLs."""

    name: str
    queries: tuple[str, ...] = ()
    urls: tuple[str, ...] = field(default=(), repr=False)

    @property
    def slug(self) -> str:
        return label_slug(self.name)


def label_slug(name: str) -> str:
    return slugify((name or "").strip())[:MAX_NAME]


def lines(text: str | None) -> list[str]:
    """Stripped, non-empty lines; `#` starts a comment line."""
    return [
        line.strip()
        for line in (text or "").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def queries_clean(queries: Iterable[str]) -> list[str]:
    """Stripped queries, first occurrence kept; too long ones refused in words."""
    kept: dict[str, None] = {}
    for query in queries:
        query = " ".join(str(query).split())
        if not query:
            continue
        if len(query) > MAX_QUERY:
            raise InvalidClasses(
                f"The query “{query[:40]}…” is longer than {MAX_QUERY} characters."
            )
        kept.setdefault(query, None)
    if len(kept) > MAX_QUERIES:
        raise InvalidClasses(f"At most {MAX_QUERIES} search queries per class.")
    return list(kept)


def sections_parse(
    text: str | None, names: Iterable[str], *, what: str
) -> dict[str, list[str]]:
    """Plain lines grouped under class names: a line that names a class starts its
    section, the lines after it belong to it. Keys are slugs.

    `what` ("queries" or "URLs") only words the error for lines before any class.
    """
    by_slug = {label_slug(name): name for name in names}
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines(text):
        heading = line[:-1].strip() if line.endswith(":") else line
        if label_slug(heading) in by_slug and not line.lower().startswith("http"):
            current = label_slug(heading)
            sections.setdefault(current, [])
            continue
        if current is None:
            raise InvalidClasses(
                f"“{line[:60]}” comes before any class name: put the {what} of a "
                "class on the lines after a line with its name."
            )
        sections[current].append(line)
    return sections


def class_specs_build(
    names: Iterable[str],
    *,
    queries: dict[str, list[str]] | None = None,
    urls: dict[str, list[str]] | None = None,
) -> list[ClassSpec]:
    """Check typed class names (and their queries and URLs, keyed by name or slug)
    and say in words what is wrong: empty, too long, no usable slug, two names
    that make one label."""
    queries = {label_slug(k): v for k, v in (queries or {}).items()}
    urls = {label_slug(k): v for k, v in (urls or {}).items()}
    problems: list[str] = []
    clashes: list[str] = []
    specs: list[ClassSpec] = []
    seen: dict[str, str] = {}
    for raw in names:
        name = " ".join(str(raw).split())
        if not name:
            continue
        slug = label_slug(name)
        if len(name) > MAX_NAME:
            problems.append(f"“{name[:40]}…” is longer than {MAX_NAME} characters.")
            continue
        if not slug:
            problems.append(
                f"“{name}” has no letters or digits to make a label slug from "
                "(use Latin letters or digits)."
            )
            continue
        if slug in seen:
            clashes.append(
                f"“{seen[slug]}” and “{name}” would both be the label “{slug}”: "
                "give them different names, or list the class once."
            )
            continue
        seen[slug] = name
        try:
            class_queries = queries_clean(queries.get(slug, ()))
        except InvalidClasses as exc:
            problems.append(f"{name}: {exc.message}")
            continue
        specs.append(
            ClassSpec(
                name=name,
                queries=tuple(class_queries),
                urls=tuple(clean_urls(urls.get(slug, ()))),
            )
        )
    unknown = sorted((set(queries) | set(urls)) - {spec.slug for spec in specs} - {""})
    if unknown:
        problems.append(
            "Queries or URLs were given for classes that are not in the list: "
            + ", ".join(unknown)
            + "."
        )
    if not specs and not problems and not clashes:
        problems.append("Type at least one class name.")
    if problems:
        raise InvalidClasses(" ".join(problems + clashes))
    if clashes:  # well-formed names that would make one label: a conflict
        raise LabelClash(" ".join(clashes))
    return specs


@dataclass(frozen=True)
class LabelOutcome:
    label: Label
    created: bool
    note: str = ""


@transaction.atomic
def labels_for_classes(specs: Iterable[ClassSpec]) -> list[LabelOutcome]:
    """The label of each class, created when new; an existing one is reused (and
    reactivated), its images kept, its queries replaced when new ones are given."""
    outcomes = []
    for spec in specs:
        label = Label.objects.select_for_update().filter(slug=spec.slug).first()
        if label is None:
            label = Label.objects.filter(name__iexact=spec.name).first()
        if label is None:
            label = Label.objects.create(
                slug=spec.slug, name=spec.name, queries=list(spec.queries)
            )
            outcomes.append(LabelOutcome(label, True))
            continue
        notes = []
        if label.name != spec.name:
            notes.append(f"“{spec.name}” is the existing label “{label.name}”")
        else:
            notes.append(f"“{label.name}” already exists")
        n = label.images.filter(status=ImageStatus.ACTIVE).count()
        notes.append(f"its {n} active image{'s' if n != 1 else ''} are kept")
        changed = []
        if not label.is_active:
            label.is_active = True
            changed.append("is_active")
            notes.append("it was inactive and is active again")
        if spec.queries and list(spec.queries) != label.queries:
            label.queries = list(spec.queries)
            changed.append("queries")
        if changed:
            label.save(update_fields=changed)
        outcomes.append(LabelOutcome(label, False, "; ".join(notes) + "."))
    return outcomes


def _check_free(name: str, *, exclude: int | None = None) -> str:
    slug = label_slug(name)
    name = " ".join(name.split())
    if not name or not slug:
        raise InvalidClasses(
            f"“{name}” has no letters or digits to make a label slug from."
        )
    if len(name) > MAX_NAME:
        raise InvalidClasses(f"A label name is at most {MAX_NAME} characters.")
    other = (
        Label.objects.filter(Q(slug=slug) | Q(name__iexact=name))
        .exclude(pk=exclude)
        .first()
    )
    if other is not None:
        raise LabelClash(
            f"“{name}” would clash with the existing label “{other.name}” "
            f"(slug “{other.slug}”): choose another name or use that label."
        )
    return slug


@transaction.atomic
def label_create(*, name: str, queries: Iterable[str] = ()) -> Label:
    """A new label; its slug is derived from the name."""
    slug = _check_free(name)
    return Label.objects.create(
        slug=slug, name=" ".join(name.split()), queries=queries_clean(queries)
    )


@transaction.atomic
def label_update(
    *,
    label: Label,
    name: str | None = None,
    queries: Iterable[str] | None = None,
    is_active: bool | None = None,
) -> Label:
    """Rename (the slug follows the name), set queries, (de)activate a label.

    Images keep their label; a deactivated label is left out of the next run.
    """
    label = Label.objects.select_for_update().get(pk=label.pk)
    fields: dict[str, Any] = {}
    if name is not None and " ".join(name.split()) != label.name:
        fields["slug"] = _check_free(name, exclude=label.pk)
        fields["name"] = " ".join(name.split())
    if queries is not None:
        fields["queries"] = queries_clean(queries)
    if is_active is not None:
        fields["is_active"] = is_active
    for key, value in fields.items():
        setattr(label, key, value)
    if fields:
        label.save(update_fields=list(fields))
    return label


def labels_active_elsewhere(slugs: Iterable[str]) -> list[tuple[str, int]]:
    """Active labels with images that are not among `slugs`: the next run learns
    them too."""
    return list(
        Label.objects.filter(is_active=True)
        .exclude(slug__in=list(slugs))
        .annotate(n=Count("images", filter=Q(images__status=ImageStatus.ACTIVE)))
        .filter(n__gt=0)
        .values_list("name", "n")
    )
