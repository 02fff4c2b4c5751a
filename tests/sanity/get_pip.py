"""Offline stand-in for the pip bootstrap script ansible-test downloads for its sanity venvs.

ansible-test fetches get-pip.py from a CI file host this machine cannot reach. This script
does the same job with what Python ships: it imports pip from ensurepip's bundled wheel and
runs `pip install` with ansible-test's arguments (pinned pip, setuptools, wheel), which then
come from the package index as usual. tests/run-suite.sh places it in ansible-test's cache.
"""

import glob
import os
import sys

import ensurepip

bundled = glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))
if not bundled:
    sys.exit("ensurepip has no bundled pip wheel")
sys.path.insert(0, bundled[0])

from pip._internal.cli.main import main  # noqa: E402

# get-pip.py's own flags: by default it also installs setuptools and wheel.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if "--no-setuptools" not in sys.argv:
    args.append("setuptools")
if "--no-wheel" not in sys.argv:
    args.append("wheel")
sys.exit(main(["install", "--upgrade", "--force-reinstall", *args]))
