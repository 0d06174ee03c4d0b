from frontend.tests.conftest import login  # noqa: F401  (pages signed in as the cast)
