"""Write requirements.lock: the exact version and sha256 of every package installed in .venv (runtime and dev).

    make lock        (after changing pyproject.toml: install the new ranges, then pin what was installed)

The wheels are fetched again with ``pip download`` so the hashes are those of the files pip will install.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = """\
# Exact versions and hashes of every dependency (runtime and dev) that `make install` and CI install,
# with `pip install --require-hashes -r requirements.lock`; pyproject.toml keeps the compatible ranges.
# Regenerate after changing pyproject.toml: `make lock`.
"""


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    pip = [sys.executable, "-m", "pip"]
    frozen = subprocess.run([*pip, "freeze", "--exclude-editable"], check=True, capture_output=True, text=True)
    pins = [line for line in frozen.stdout.splitlines() if "==" in line and not line.startswith("alliance-bot")]
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "pins.txt"
        listing.write_text("\n".join(pins) + "\n")
        subprocess.run([*pip, "download", "-q", "--no-deps", "-r", str(listing), "-d", folder], check=True)
        files: dict[str, list[Path]] = {}
        for path in Path(folder).iterdir():
            if path.suffix in (".whl", ".gz", ".zip"):
                files.setdefault(_key(re.split(r"-\d", path.name, maxsplit=1)[0]), []).append(path)
        blocks = []
        for pin in pins:
            name, version = pin.split("==")
            hashes = sorted({hashlib.sha256(p.read_bytes()).hexdigest() for p in files[_key(name)]})
            blocks.append(f"{name}=={version} \\\n" + " \\\n".join(f"    --hash=sha256:{h}" for h in hashes))
    (ROOT / "requirements.lock").write_text(HEADER + "\n" + "\n".join(blocks) + "\n")
    print(f"requirements.lock: {len(blocks)} packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
