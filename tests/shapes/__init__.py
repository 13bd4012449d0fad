"""Models of shapes adopters' projects have that the example app (``crm``) has not.

Installed by the test settings only (``tests/settings.py``): keys that are not integers
(``UUIDField`` with ``default=uuid.uuid4``, text keys with or without a default) on the
adopter's tenant and on synced models. Their mappers are registered only by the tests that
use them (``tests/shapes/mappers.py``, ``shape_mappers``), in place of the example app's.
"""
