"""shopline: orders, inventory, pricing and reports over one SQLite database."""
