"""Reading SQL: split statements, recognise what each touches, cache the analyses."""
