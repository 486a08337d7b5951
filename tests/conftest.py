"""Session-wide test settings.

pytest's temporary directories are private to root (0700), so a Mosquitto that drops to its own user could
not reach a data directory inside one. Servers the tests start therefore run their broker as the test's own
user; tests/server/test_file_modes.py runs the production default (Mosquitto as `mosquitto`) in a directory
that user can reach."""

import getpass
import os

os.environ.setdefault("TINYFLEET_BROKER_USER", getpass.getuser())
