"""Test-suite settings shared by every area."""

import os

from hypothesis import settings

# No example database in the working tree (tests write only under tmp_path); in CI the
# property tests draw the same examples on every run, so a landing is reproducible.
settings.register_profile("hwsim", database=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("hwsim")
