"""Local KIE that learns: candidate values ranked by a small torch model.

For each field of the schema, ``candidates`` lists the values an OCR record could hold
(blocks of rows for text and addresses, every date and every amount), with what surrounds
them; ``model`` scores them, one small head per field over shared hashed text embeddings;
the best-scoring value wins, formatted by the same normalisers as the rules. ``training``
finds each label among the candidates (fuzzily: OCR makes mistakes) and fits the model.
"""
