#!/bin/sh
# As upstream's entrypoint: the data volume belongs to the rabbitmq user, who runs the server.
set -eu
if [ "$(id -u)" = 0 ]; then
    chown rabbitmq:rabbitmq /var/lib/rabbitmq
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$0" "$@"
fi
exec "$@"
