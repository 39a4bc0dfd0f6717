"""The queue service: filled in by a later issue (see ../shared/DESIGN.md)."""
