"""Fixtures the server's in-process API tests share: a toy SavedModel in TF Serving's layout, served."""

from __future__ import annotations

import pytest

from shared.export import publish, serving_version
from shared.serving.repository import ModelRepository
from tests.serving_helpers import client_for, save_toy_model


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """TF Serving's layout with versions 1 and 2 of the toy model, written by `publish`."""
    root = tmp_path_factory.mktemp("serving")
    for scale in (1.0, 2.0):
        saved = save_toy_model(root / f"toy-{scale}", scale)
        publish(saved, root / "layout", "toy", serving_version(root / "layout", "toy"))
    return root / "layout"


@pytest.fixture(scope="module")
def repository(layout):
    return ModelRepository.load(base_path=str(layout))


@pytest.fixture(scope="module")
def client(repository):
    with client_for(repository) as test_client:
        yield test_client
