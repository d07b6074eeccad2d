"""Incident management service (:8002): turns alerts into incidents, assigns them and
tracks their lifecycle."""
