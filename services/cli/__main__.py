"""`python -m services.cli` is the `mawaeed` command."""
from services.cli import main

raise SystemExit(main())
