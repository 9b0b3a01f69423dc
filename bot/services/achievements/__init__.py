"""The achievements feature: the achievements database, the novelty check, spreadsheet import and awards."""
