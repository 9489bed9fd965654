"""The private PostgreSQL the DuckLake tests run on lives in itscm/private_postgres.py, since
`python -m itscm bench --backend ducklake` starts one too."""

from itscm.private_postgres import BIN_FOLDERS, PrivatePostgres, binaries

__all__ = ["BIN_FOLDERS", "PrivatePostgres", "binaries"]
