import pytest

from tests.support.sink import Sink


@pytest.fixture
def sink():
    endpoint = Sink()
    yield endpoint
    endpoint.close()
