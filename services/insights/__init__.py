"""Insights: the figures of the suite (bookings, waits, service levels, satisfaction), a projection of the logs."""
