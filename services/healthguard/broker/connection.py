"""Connecting to RabbitMQ: one set of parameters per node of the cluster, and the errors that
mean the connection (not the message) failed."""
import pika
import pika.exceptions

CONNECTION_ERRORS = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    pika.exceptions.ConnectionWrongStateError,
    pika.exceptions.ChannelWrongStateError,
    OSError,
)


class BrokerError(RuntimeError):
    """The broker did not accept a message (unreachable, nacked or unroutable)."""


def node_urls(url: str) -> list[str]:
    """RABBITMQ_URL is one AMQP URL or a comma-separated list of them, one per node of a
    cluster: `amqp://u:p@rabbit1:5672/hg,amqp://u:p@rabbit2:5672/hg,...`."""
    urls = [part.strip() for part in url.split(",") if part.strip()]
    if not urls:
        raise ValueError("RABBITMQ_URL names no broker")
    return urls


def connection_parameters(url: str, *, timeout: float = 5.0) -> list[pika.URLParameters]:
    """One set of parameters per node, in the order given: pika tries them in turn, so a
    connection (a publisher's, or a consumer's after it lost its node) goes to the first node
    that answers. A cluster's nodes serve every queue, whichever node leads it."""
    nodes = []
    for node_url in node_urls(url):
        params = pika.URLParameters(node_url)
        params.connection_attempts = 1
        params.socket_timeout = timeout
        params.stack_timeout = timeout * 2
        params.blocked_connection_timeout = 30
        params.heartbeat = 30
        nodes.append(params)
    return nodes


def connect(url: str, *, timeout: float = 5.0) -> pika.BlockingConnection:
    return pika.BlockingConnection(connection_parameters(url, timeout=timeout))


def ping(url: str) -> None:
    """Raise unless a node of the broker accepts a connection now."""
    connect(url, timeout=2.0).close()

