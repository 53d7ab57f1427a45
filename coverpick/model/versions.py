"""Classifier versions: registering trained checkpoints, activating one, and the phase-1 version."""

from __future__ import annotations

import logging
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from coverpick import conf
from coverpick.catalogue.models import AuditEvent, ClassifierVersion
from coverpick.model.heads import Heads, load_heads
from coverpick.vision.phase1 import PHASE1_VERSION

logger = logging.getLogger(__name__)


class NoActiveModel(RuntimeError):
    """No trained heads are active yet."""


def register_version(name: str, backbone_id: str, folder: Path, meta: dict) -> ClassifierVersion:
    relative = str(Path(folder).resolve().relative_to(conf.model_dir().resolve()))
    version, _ = ClassifierVersion.objects.update_or_create(
        name=name,
        defaults={"kind": ClassifierVersion.KIND_HEADS, "backbone": backbone_id, "checkpoint": relative, "metrics": meta.get("metrics", {})},
    )
    return version


def activate_version(version: ClassifierVersion, user=None) -> None:
    """Make ``version`` the active heads in one transaction.

    The checkpoint files are complete on disk (written and renamed) before
    this runs, and the ONNX export is made first, so the database never points
    at a model that cannot load.
    """
    load_heads(conf.model_dir() / version.checkpoint, version.backbone, conf.backbone_precision())
    from coverpick.vision.extract import ensure_onnx

    ensure_onnx(version.backbone)
    with transaction.atomic():
        ClassifierVersion.objects.filter(kind=version.kind, is_active=True).exclude(pk=version.pk).update(is_active=False)
        ClassifierVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=timezone.now())
        AuditEvent.objects.create(action="activate", user=user, detail={"version": version.name})
    logger.info("Activated classifier version %s", version.name)


def active_heads_version() -> ClassifierVersion | None:
    return ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS, is_active=True).first()


def load_active_heads() -> tuple[ClassifierVersion, Heads]:
    version = active_heads_version()
    if version is None:
        raise NoActiveModel("No trained heads are active. Run `coverpick train --activate` first.")
    return version, load_heads(conf.model_dir() / version.checkpoint, version.backbone, conf.backbone_precision())


def phase1_version() -> ClassifierVersion:
    """Return this code's phase-1 version, making it the active phase-1 version if it is not yet."""
    version, _ = ClassifierVersion.objects.get_or_create(name=PHASE1_VERSION, defaults={"kind": ClassifierVersion.KIND_PHASE1})
    if not version.is_active:
        with transaction.atomic():
            ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_PHASE1, is_active=True).update(is_active=False)
            ClassifierVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=timezone.now())
        version.is_active = True
    return version


def derive_version(base: ClassifierVersion, suffix: str, meta_changes: dict) -> ClassifierVersion:
    """Copy a checkpoint folder under a new version name with changed metadata, and register it.

    Checkpoints are never edited in place, so a verdict row always names the
    exact weights and thresholds that produced it.
    """
    import json
    import shutil

    from coverpick.model.heads import META_FILE

    source = conf.model_dir() / base.checkpoint
    name = f"{base.name}-{suffix}-{timezone.now():%H%M%S}"
    target = conf.model_dir() / name
    partial = conf.model_dir() / f"{name}.partial"
    shutil.copytree(source, partial)
    meta = json.loads((partial / META_FILE).read_text())
    meta.update(meta_changes)
    meta["version"] = name
    meta["derived_from"] = base.name
    (partial / META_FILE).write_text(json.dumps(meta, indent=2))
    partial.rename(target)
    return register_version(name, base.backbone, target, meta)
