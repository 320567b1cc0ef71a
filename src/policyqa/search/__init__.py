"""Question -> ranked passages: the legs and their fusion, filters, confidence, results, evaluation."""
