"""Test-suite settings shared by every area."""

import os
import tempfile

from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

# Tests never write into the working tree: hypothesis keeps its caches in a temporary folder and
# uses no example database. In CI the property tests draw the same examples on every run, so
# whether a submission lands does not depend on luck.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="hwsim-hypothesis-"))
settings.register_profile("hwsim", database=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("hwsim")
