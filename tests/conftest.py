"""Shared fixtures: an isolated COVERPICK_HOME, the sample catalogue, and a trained pipeline on it.

COVERPICK_HOME is set before Django's settings load, so the SQLite test
database, image store, feature cache and model files all live in a temporary
folder. The ONNX export and the feature cache persist for the whole session.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# tests/pytest_env.py has already set COVERPICK_HOME; this keeps a run without it isolated too.
if not os.environ.get("COVERPICK_TEST_HOME"):
    os.environ["COVERPICK_TEST_HOME"] = tempfile.mkdtemp(prefix="coverpick-test-")
    os.environ["COVERPICK_HOME"] = os.environ["COVERPICK_TEST_HOME"]

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COVERPICK_SHARED", REPO.parent / "shared"))
SAMPLE_CATALOGUE = Path(os.environ.get("COVERPICK_SAMPLE_CATALOGUE", SHARED / "catalogue"))
HOSTILE_IMAGES = SHARED / "hostile-images"
ARTIFACTS = REPO / "test-artifacts"


def pytest_collection_modifyitems(session, config, items):
    """Run the tests that share ``trained_sample`` after all the others.

    That fixture commits the whole sample catalogue to the test database for
    the rest of the session, so a test collected after it would find tables it
    expects empty already full. Moving its users to the end keeps every other
    test on a clean database whatever order the files are collected in.
    """
    uses_sample = [item for item in items if "trained_sample" in getattr(item, "fixturenames", ())]
    if uses_sample:
        others = [item for item in items if "trained_sample" not in getattr(item, "fixturenames", ())]
        items[:] = others + uses_sample


@pytest.fixture(autouse=True)
def _empty_page_cache():
    """Start every test with an empty page cache.

    A test's rolled-back transaction also rolls back the catalogue
    generation and the id sequences, so the next test can render another
    game under the same id and generation as a page cached by an earlier test.
    """
    from django.core.cache import caches

    from coverpick.web.page_cache import PAGE_CACHE_ALIAS

    caches[PAGE_CACHE_ALIAS].clear()
    yield


@pytest.fixture(scope="session")
def sample_catalogue() -> Path:
    if not (SAMPLE_CATALOGUE / "feeds").is_dir():
        pytest.fail(
            f"Sample catalogue not found at {SAMPLE_CATALOGUE}. Set COVERPICK_SHARED to the folder that holds "
            "catalogue/ and hostile-images/, or COVERPICK_SAMPLE_CATALOGUE to the catalogue folder itself."
        )
    return SAMPLE_CATALOGUE


@pytest.fixture(scope="session")
def sample_text_cached(sample_catalogue) -> Path:
    """The sample catalogue, with its covers' words read on every core into the session's text cache (see tests/text_warmup.py)."""
    from tests.text_warmup import read_text_on_all_cores

    read_text_on_all_cores(sample_catalogue)
    return sample_catalogue


@pytest.fixture(scope="session")
def trained_sample(django_db_setup, django_db_blocker, sample_text_cached):
    """Import the whole sample catalogue, train and activate heads, sweep and rank, once per session.

    Returns the import summary and the trained ClassifierVersion. Tests that
    use it must not flush the database (no transactional_db).
    """
    from coverpick.catalogue.importer import import_catalogue
    from coverpick.model.sweep import sweep
    from coverpick.model.train import train
    from coverpick.ranking import compute_primaries

    with django_db_blocker.unblock():
        summary = import_catalogue(sample_text_cached)
        version = train(activate=True, out=lambda line: None)
        sweep_summary = sweep(apply=True)
        compute_primaries()
    return {"import": summary, "version": version, "sweep": sweep_summary}


def activate_checkpoint_or_train():
    """Activate the newest checkpoint already trained in this session's COVERPICK_HOME, or train one.

    Tests on a transactional database start from empty tables, but the model
    files of an earlier test in the session are still on disk; re-registering
    them avoids training the same heads twice.
    """
    from coverpick import conf
    from coverpick.model.heads import META_FILE, CheckpointMismatch, load_heads
    from coverpick.model.train import train
    from coverpick.model.versions import activate_version, register_version

    folders = sorted(path for path in conf.model_dir().glob("heads-*") if (path / META_FILE).is_file())
    for folder in reversed(folders):
        try:
            heads = load_heads(folder)
        except (CheckpointMismatch, OSError, ValueError):
            continue
        version = register_version(heads.version, heads.backbone, folder, heads.meta)
        activate_version(version)
        return version
    return train(activate=True, out=lambda line: None)
