"""Contract fuzzing: Schemathesis over the whole OpenAPI schema, against a real server.

What the run covers and checks is configured in `schemathesis.toml` at the repository root:
every operation (including ones added later), positive and negative data, stateful sequences
along inferred links (path parameters are named after what they identify, e.g.
`session_id`), and the object-level authorization check with two users as `peers`. The pass is
bounded (`max-examples`, `max-steps`) and fails on any 5xx, any response that does not match
its declared schema, any undeclared status code.

Generated `date-time` values include the edges of the calendar (years 1 and 9999 at offsets up
to ±23:59): `tests/fuzz_hooks.py` registers that strategy.

Reproduce a failure by hand: start the server, write a WFC auth file like the one below,
`RELEASELOG_FUZZ_AUTH=auth.json RELEASELOG_FUZZ_HOOKS=tests/fuzz_hooks.py
.venv/bin/st run http://127.0.0.1:8000/openapi.json`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from serverproc import ROOT, ServerProcess, fresh_database

PASSWORD = "correct horse battery staple"
FUZZ_TIMEOUT_SECONDS = 600


def _login(base_url: str, name: str) -> str:
    email = f"{name}@example.com"
    registered = httpx.post(
        f"{base_url}/v1/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": name},
    )
    assert registered.status_code == 201, registered.text
    token = httpx.post(f"{base_url}/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


def test_the_api_honours_its_openapi_contract(tmp_path: Path) -> None:
    database_url, drop = fresh_database(tmp_path)
    server = ServerProcess(database_url, tmp_path / "server.log")
    try:
        server.start()
        tokens = {name: _login(server.base_url, name) for name in ("alice", "bob")}
        # Fixed headers, not a login flow: the fuzzer then never spends the login rate limit.
        auth = {
            "auth": [
                {
                    "name": name,
                    "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {token}"}],
                }
                for name, token in tokens.items()
            ]
        }
        auth_path = tmp_path / "auth.json"
        auth_path.write_text(json.dumps(auth))
        st = Path(sys.executable).parent / "st"
        result = subprocess.run(
            [
                str(st),
                "--config-file",
                str(ROOT / "schemathesis.toml"),
                "run",
                f"{server.base_url}/openapi.json",
                "--no-color",
            ],
            cwd=tmp_path,  # Schemathesis writes nothing into the repository
            env={
                **os.environ,
                "RELEASELOG_FUZZ_AUTH": str(auth_path),
                "RELEASELOG_FUZZ_HOOKS": str(ROOT / "tests" / "fuzz_hooks.py"),
            },
            capture_output=True,
            text=True,
            timeout=FUZZ_TIMEOUT_SECONDS,
            check=False,
        )
    finally:
        server.stop()
        drop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        output[-20_000:]
        + "\n--- server log ---\n"
        + ((tmp_path / "server.log").read_text()[-5_000:])
    )
    # The run really exercised the API, with both users.
    assert "Stateful" in output
