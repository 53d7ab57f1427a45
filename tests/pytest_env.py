"""Early pytest plugin: give the test session its own COVERPICK_HOME before Django's settings load.

Loaded with ``-p tests.pytest_env`` (see pyproject.toml), because
pytest-django reads the settings before any conftest.py is imported.
"""

import os
import tempfile

if not os.environ.get("COVERPICK_TEST_HOME"):
    os.environ["COVERPICK_TEST_HOME"] = tempfile.mkdtemp(prefix="coverpick-test-")
os.environ["COVERPICK_HOME"] = os.environ["COVERPICK_TEST_HOME"]
