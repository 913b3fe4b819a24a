import base64
import json

import pytest

from batchjobs.tasks import execute

QUEUE = "test-publish"


def execution_id(message: dict) -> int:
    """The execution id a message carries (its first task argument)."""
    return json.loads(base64.b64decode(message["body"]))[0][0]


@pytest.fixture
def broker_channel():
    """A kombu channel of the broker (its key names, its client)."""
    with execute.app.connection_for_write() as connection:
        yield connection.default_channel


@pytest.fixture
def redis_client(broker_channel):
    """A client of the broker's Redis database."""
    return broker_channel.client


@pytest.fixture
def raw_queue(redis_client):
    """Read and clear the raw Redis lists behind QUEUE (all its priority sub-lists)."""

    def messages(*, take: bool = False) -> list[dict]:
        """The messages in consumption order (kombu pops from the right, and the list of
        priority 0, named as the queue, first); `take` empties the queue after reading it."""
        found = []
        for key in sorted(redis_client.keys(f"{QUEUE}*")):
            found += [json.loads(raw) for raw in reversed(redis_client.lrange(key, 0, -1))]
            if take:
                redis_client.delete(key)
        return found

    yield messages
    for key in redis_client.keys(f"{QUEUE}*"):
        redis_client.delete(key)


@pytest.fixture
def refusing_queue(redis_client):
    """A queue name whose Redis key holds a string: Redis refuses to push a message of
    priority 0 there (its list is the queue's name)."""
    name = "test-refusing-queue"
    redis_client.set(name, "not a list")
    yield name
    for key in redis_client.keys(f"{name}*"):
        redis_client.delete(key)
