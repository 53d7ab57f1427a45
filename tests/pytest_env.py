"""Early pytest plugin: give the test session its own COVERPICK_HOME before Django's settings load.

Loaded with ``-p tests.pytest_env`` (see pyproject.toml), because
pytest-django reads the settings before any conftest.py is imported.
"""

import os
import tempfile

if not os.environ.get("COVERPICK_TEST_HOME"):
    os.environ["COVERPICK_TEST_HOME"] = tempfile.mkdtemp(prefix="coverpick-test-")
os.environ["COVERPICK_HOME"] = os.environ["COVERPICK_TEST_HOME"]

# Cover text vectors are keyed by image content, so one folder serves every
# home a test makes, and later runs, instead of reading the sample's covers
# again in each (about 0.4 s per cover).
os.environ.setdefault(
    "COVERPICK_TEXT_CACHE", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-artifacts", "text-cache")
)
