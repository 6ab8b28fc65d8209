"""Managing recorded history over years: deleting runs, retention (gc), export and import.

Behaviour over both stores (metadata records and artifact files); the CLI and
``Repository.delete_run`` call it. Private modules; nothing here is public API yet.
"""
