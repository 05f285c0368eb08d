"""Backend-specific fast paths, one module per Keras backend (`tensorflow`).

Imported only under the backend it names; see each module.
"""
