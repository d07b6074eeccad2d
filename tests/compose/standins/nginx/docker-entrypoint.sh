#!/bin/sh
# The part of nginx's docker-entrypoint.sh (20-envsubst-on-templates.sh) the suite relies on:
# before nginx starts, each /etc/nginx/templates/<name>.template is written to
# /etc/nginx/conf.d/<name> with the environment's variables substituted (only those defined, so
# nginx's own $variables stay). Not emulated: NGINX_ENVSUBST_* settings, the other
# /docker-entrypoint.d scripts (IPv6 listen, worker tuning).
set -eu
if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
    defined=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
    for template in /etc/nginx/templates/*.template; do
        [ -f "$template" ] || continue
        output=/etc/nginx/conf.d/$(basename "$template" .template)
        echo "$0: rendering $template to $output"
        envsubst "$defined" < "$template" > "$output"
    done
fi
exec "$@"
