"""Bus interface and its two implementations."""

from billing_runtime.bus.base import TARGET_QUEUES_HEADER, Bus, DeadLettered, Handler, Message, topic_matches
from billing_runtime.bus.memory import MemoryBus


def create_bus(url: str) -> Bus:
    """``memory://`` gives the in-process bus; ``amqp://`` gives RabbitMQ."""
    if url.startswith("memory"):
        return MemoryBus()
    from billing_runtime.bus.rabbit import RabbitBus  # imported lazily: embedded mode never needs aio-pika

    return RabbitBus(url)


__all__ = [
    "TARGET_QUEUES_HEADER",
    "Bus",
    "DeadLettered",
    "Handler",
    "MemoryBus",
    "Message",
    "create_bus",
    "topic_matches",
]
