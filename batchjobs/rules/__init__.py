"""Pure parsers and validators: no database, no Django models, no I/O. Models, services, forms
and serializers all call these, so one rule is written once (DESIGN.md §5)."""
