"""The availability service: the catalogue of directorates, branches and services, and slot search."""
