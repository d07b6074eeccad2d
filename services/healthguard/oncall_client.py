"""The on-call service's answers, asked as a service (SERVICE_TOKEN): the one client every other
service uses to ask who is on duty and who is available (incident management's routing, the
notification service's reachability)."""
import requests


class OnCallClient:
    """One per thread (a requests.Session is not shared), or one per request as a context
    manager. Raises one of ONCALL_ERRORS when the on-call service cannot answer."""

    def __init__(self, base_url: str, service_token: str, *, timeout: tuple = (1.0, 3.0)):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {service_token}"

    def available(self) -> list[dict]:
        """Everyone on duty, signed in and not away, least busy first, each with their role."""
        response = self.session.get(f"{self.base_url}/api/v1/oncall/available", timeout=self.timeout)
        response.raise_for_status()
        return response.json()["clinicians"]

    def on_duty(self, role: str | None = None) -> list[dict]:
        """Everyone on duty now by the rota (GET /api/v1/oncall/current), signed in or not."""
        params = {"role": role} if role else {}
        response = self.session.get(f"{self.base_url}/api/v1/oncall/current", params=params,
                                    timeout=self.timeout)
        response.raise_for_status()
        return response.json()["clinicians"]

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "OnCallClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# What a call may raise when the service is down, slow or answers something unexpected.
ONCALL_ERRORS = (requests.RequestException, ValueError, KeyError, TypeError)
