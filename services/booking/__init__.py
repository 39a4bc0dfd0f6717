"""The booking service: book, cancel, reschedule; it alone decides whether a slot has room."""
