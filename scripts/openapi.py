"""Write the committed OpenAPI schemas (``make openapi``): docs/openapi/app.yaml and
docs/openapi/sandbox.yaml.

Generated at the default preset's default paths, whatever presets the environment
configures, so the file only changes when the API does. The test
tests/maestrano_integration/test_platform_api.py and tests/sandbox/test_openapi.py fail
when a file and the code differ.
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

    from maestrano_integration import schema as app
    from maestrano_sandbox import schema as sandbox

    with override_settings(MAESTRANO={}):
        for name, text in [
            ("app.yaml", app.render_yaml(app.app_schema())),
            ("sandbox.yaml", sandbox.render_yaml(sandbox.sandbox_schema())),
        ]:
            target = ROOT / "docs" / "openapi" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
