"""The emulated Connec! data hub (docs/protocol.md, 'Connec! API v2'
and 'Connec! notifications').

``schema`` validates entity fields, ``queries`` parses ``$filter``/``$orderby``/
paging, ``references`` resolves and renders ids and external ids, ``services``
writes records, ``selectors`` reads them, ``api`` answers HTTP and batch
operations, ``notifications`` delivers changes to the other apps of a group.
"""
