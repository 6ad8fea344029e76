"""Text data sets on the grouped-data contract: tokenization into the text input format with an
on-disk cache (:mod:`~robustml.text.tokens`), the shared split builder (:mod:`~robustml.text.splits`)
and the data sets ``civilcomments``, ``multinli`` and ``text_csv``.

A layer above :mod:`robustml.models` (tokenizers come from :mod:`robustml.models.pretrained`) and
below the mechanisms that use text inputs. Modules are imported on use: none is loaded by
``robustml-train`` before a text data config asks for it.
"""
