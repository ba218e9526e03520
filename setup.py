"""The repository root is the `placecell` import package.

The owner's layout keeps agents/ graphs/ tools/ prompts/ evals/ at the top level of the
repository; installed, they live under one name (`placecell.agents`, ...) so that embedding
placecell never collides with other top-level packages (`agents` is taken by a popular SDK).
setuptools' `package_dir` mapping does that renaming, for wheels and editable installs alike.
Tests and eval data (evals/data, evals/cache, evals/reports) are not packages and stay out.
"""

from setuptools import find_packages, setup

sub = find_packages(".", exclude=["tests", "tests.*", "build", "build.*", ".venv", ".venv.*"])
packages = ["placecell"] + [f"placecell.{name}" for name in sub]

setup(
    packages=packages,
    package_dir={"placecell": "."},
    package_data={
        "placecell": ["py.typed"],
        "placecell.prompts": ["*.txt", "*.md"],
        "placecell.tools": ["assets/*", "assets/**/*"],
        "placecell.tools.ctr": ["artifacts/*"],
        "placecell.tools.recsys_data": ["SOURCE.md", "goodbooks_399/*", "movielens/*"],
    },
    include_package_data=False,
)
