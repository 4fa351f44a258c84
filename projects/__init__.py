"""The projects. Each `projects/<name>/` is run as `python -m projects.<name> ...`."""

import os

# Quiet TensorFlow's C++ start-up chatter; set before any project imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
