"""Notification service (:8004): stores notifications and pushes them to clinicians over WebSocket."""
