"""``python -m ray_jobs.report``: see :mod:`ray_jobs.report.cli`."""

from ray_jobs.report.cli import main

raise SystemExit(main())
