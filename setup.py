"""The packages pip installs (the rest of the metadata is in pyproject.toml): service
and workers, not devtools/ (bin/dev's), tests/ nor bench/; and migrations/, which stays
at the top of the repository, shipped inside the package as service/migrations, where
service.migrate finds it in an installed copy (the image's)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["service", "service.*", "workers", "workers.*"]),
              "service.migrations"],
    package_dir={"service.migrations": "migrations"},
    package_data={"service.migrations": ["*.sql"]},
)  # fmt: skip
