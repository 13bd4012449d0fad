"""Write the committed OpenAPI schemas (``make openapi``): docs/openapi/app.yaml.

Generated at the default preset's default paths, whatever presets the environment
configures, so the file only changes when the API does. The test
tests/maestrano_integration/test_openapi.py fails when the file and the code differ.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.test import override_settings

    from maestrano_integration.schema import app_schema, render_yaml

    with override_settings(MAESTRANO={}):
        target = ROOT / "docs" / "openapi" / "app.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_yaml(app_schema()))
        print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
