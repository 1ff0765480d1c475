"""A TypeScript client generated from the OpenAPI document compiles typed usage.

openapi-typescript turns the app's document into types; `tsc --strict` then compiles
tests/typescript/usage.ts, which reads what the document promises (required fields, enums,
typed bodies) without `?`, casts or `any`. Each file in tests/typescript/must_fail/ must NOT
compile, so the check cannot pass vacuously (say, on types that became `any`).

`--default-non-nullable false`: a field is required because the document says so, never
because it has a default (openapi-typescript's own default would turn every request field with
a default into a required one). The pinned tools are in tests/typescript/package-lock.json;
`npm ci` installs them when node_modules is missing. Without npm the test is skipped, except
under CI=true, where it fails.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi import FastAPI

TYPESCRIPT_DIR = Path(__file__).resolve().parent / "typescript"
BIN = TYPESCRIPT_DIR / "node_modules" / ".bin"
TSC_OPTIONS = [
    "--strict",
    "--noEmit",
    "--target",
    "es2022",
    "--module",
    "esnext",
    "--moduleResolution",
    "bundler",
]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def typescript_tools() -> Path:
    if shutil.which("npm") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("npm is not on PATH (CI must be able to generate the TypeScript client)")
        pytest.skip("npm is not on PATH")
    if not (BIN / "tsc").exists() or not (BIN / "openapi-typescript").exists():
        installed = _run(["npm", "ci", "--no-audit", "--no-fund"], TYPESCRIPT_DIR)
        assert installed.returncode == 0, installed.stdout + installed.stderr
    return BIN


@pytest.fixture(scope="module")
def generated_client(
    typescript_tools: Path, app: FastAPI, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The app's OpenAPI document as TypeScript types: `schema.d.ts` in a folder of its own."""
    folder = tmp_path_factory.mktemp("typescript")
    document = folder / "openapi.json"
    document.write_text(json.dumps(app.openapi()))
    generated = _run(
        [
            str(typescript_tools / "openapi-typescript"),
            str(document),
            "--default-non-nullable",
            "false",
            "--output",
            str(folder / "schema.d.ts"),
        ],
        folder,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    return folder


def _compile(folder: Path, usage: Path) -> subprocess.CompletedProcess[str]:
    shutil.copy(usage, folder / usage.name)
    return _run([str(BIN / "tsc"), *TSC_OPTIONS, usage.name], folder)


def test_the_generated_client_types_what_the_api_always_sends(generated_client: Path) -> None:
    compiled = _compile(generated_client, TYPESCRIPT_DIR / "usage.ts")
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ("batch_status.ts", "Type '\"deleted\"' is not assignable"),
        ("token_type.ts", "Property 'token_type' is missing"),
        ("catalog_direction.ts", "Type '\"sideways\"' is not assignable"),
    ],
)
def test_the_generated_client_rejects_what_the_api_never_sends(
    generated_client: Path, usage: str, expected: str
) -> None:
    compiled = _compile(generated_client, TYPESCRIPT_DIR / "must_fail" / usage)
    output = compiled.stdout + compiled.stderr
    assert compiled.returncode != 0, f"{usage} compiled, but must not"
    assert f"{usage}(" in output, output
    assert expected in output, output
