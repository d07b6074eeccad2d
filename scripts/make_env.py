"""Write .env from .env.example, replacing every `change-me` with its own random secret."""
import re
import secrets
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
target = root / ".env"
if target.exists():
    sys.exit(0)
text = (root / ".env.example").read_text()
target.write_text(re.sub(r"(?m)(?<==)change-me$", lambda _: secrets.token_urlsafe(24), text))
target.chmod(0o600)
print("wrote .env with fresh random secrets")
